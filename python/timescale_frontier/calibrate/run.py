"""``calibrate``: measure the default JAX device, fit the step-time models, write the hardware
file; ``load_measurements`` and ``validate``: score every model on measured steps."""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from timescale_frontier.architecture import Architecture
from timescale_frontier.calibrate import bench, fit, hwfile
from timescale_frontier.errors import InvalidInputError, TimescaleError
from timescale_frontier.hardware import Hardware

MIN_FIT_SAMPLES = 4


@dataclass
class CalibrationResult:
    hardware: Hardware
    chosen: str
    reports: dict[str, fit.Report]
    validation: dict[str, dict[str, float]]
    n_fit: int
    n_validation: int
    measurements_path: Path | None
    elapsed_s: float


def _check_device(hw: Hardware, force: bool) -> str:
    backend = jax.default_backend()
    if backend != hw.device and not force:
        raise InvalidInputError(
            f"{hw.path}: device = {hw.device!r} but JAX runs on {backend!r}: coefficients measured here would be wrong "
            f"for this chip (pass --force to write them anyway)"
        )
    return backend


def calibrate(
    spec: str | Path,
    out: Path | None = None,
    time_budget_s: float = 100.0,
    n_fit: int = 12,
    n_validate: int = 6,
    measurements: Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    step_time_range_s: tuple[float, float] = (5e-4, 0.06),
) -> CalibrationResult:
    """Measures, fits and writes the ``[calibration]`` section. The hardware file is replaced only
    after everything succeeded (atomically)."""
    say = progress or (lambda _msg: None)
    t_start = time.perf_counter()
    hw = Hardware.load(spec)
    backend = _check_device(hw, force)
    out = Path(out) if out is not None else hw.path
    log = bench.JsonlLog(measurements)
    device_kind = jax.devices()[0].device_kind
    act_bytes = 4.0 if backend == "cpu" else 2.0  # bf16 is emulated (slow) on CPUs
    dtype = "float32" if act_bytes == 4.0 else "bfloat16"

    micro: dict[str, float] = {}
    for n in (256, 512, 1024) if backend == "cpu" else (4096, 8192):
        v = bench.matmul_flops_per_s(n, dtype)
        micro["measured_matmul_flops_per_s"] = max(micro.get("measured_matmul_flops_per_s", 0.0), v)
        log.write({"kind": "matmul", "n": n, "dtype": dtype, "flops_per_s": v, "device_kind": device_kind})
        say(f"matmul {n}^3 {dtype}: {v:.3g} FLOP/s")
    size = (64 << 20) if backend == "cpu" else (1 << 30)
    v = bench.copy_bytes_per_s(size, dtype)
    micro["measured_copy_bytes_per_s"] = v
    log.write({"kind": "copy", "bytes": size, "dtype": dtype, "bytes_per_s": v, "device_kind": device_kind})
    say(f"elementwise copy of {size >> 20} MiB: {v:.3g} B/s (read + write)")

    # XLA's CPU backend has no fused attention kernel: "flash" there materializes the scores, which
    # the op table's flash rows do not describe. Calibrate CPUs on materialized attention only.
    attentions = ("materialized",) if backend == "cpu" else ("flash", "materialized")
    archs = bench.design(n_fit + n_validate, hw, act_bytes, step_time_range_s=step_time_range_s, attentions=attentions)
    if len(archs) < MIN_FIT_SAMPLES + 1:
        raise TimescaleError(
            f"{hw.path}: found only {len(archs)} architectures that fit this device's memory and time range"
        )
    # Held-out points spread evenly through the design order, so a cut budget leaves both sets.
    total = len(archs)
    held = {min(total - 1, int((k + 0.5) * total / n_validate)) for k in range(n_validate)} if n_validate else set()
    splits = ["validation" if i in held else "fit" for i in range(total)]
    rows: list[dict[str, Any]] = []
    for i, m in enumerate(bench.measure_steps(archs)):
        rec = bench.record(m, hw, splits[i])
        log.write(rec)
        rows.append(rec)
        status = f"{m.step_time_s * 1e3:.2f} ms" if m.step_time_s else f"failed ({m.error})"
        say(
            f"[{i + 1}/{len(archs)}] {splits[i]:10s} d_model {m.arch.d_model:4d} layers {m.arch.n_layers} "
            f"seq {m.arch.seq_len:4d} batch {m.arch.batch_size:3d} {m.arch.mlp:6s} {m.arch.attention:12s} "
            f"compile {m.compile_s:.1f} s, step {status}"
        )
        if time.perf_counter() - t_start > time_budget_s:
            say(f"time budget of {time_budget_s:g} s reached after {i + 1} configurations")
            break

    return _fit_and_write(
        hw, out, rows, micro, act_bytes, device_kind, backend, jax.__version__,
        f"timescale calibrate on {device_kind} ({backend}); measurements: {measurements or 'not saved'}",
        measurements, t_start,
    )  # fmt: skip


def _fit_and_write(
    hw: Hardware,
    out: Path,
    rows: list[dict[str, Any]],
    micro: dict[str, float],
    act_bytes: float,
    device_kind: str,
    backend: str,
    jax_version: str,
    source: str,
    measurements: Path | None,
    t_start: float,
) -> CalibrationResult:
    """Fits every model on the ``fit`` rows, scores them on the ``validation`` rows, and writes the
    best held-out one (with the others as alternatives) into the hardware file, atomically."""
    ok = [r for r in rows if r["step_time_s"]]
    fit_rows = [r for r in ok if r["split"] == "fit"]
    val_rows = [r for r in ok if r["split"] == "validation"]
    if len(fit_rows) < MIN_FIT_SAMPLES:
        raise TimescaleError(
            f"only {len(fit_rows)} training steps were measured for the fit (need {MIN_FIT_SAMPLES}); "
            "give a longer --time-budget-s"
        )
    ceilings = fit.Ceilings(micro["measured_matmul_flops_per_s"], micro["measured_copy_bytes_per_s"])
    fit_archs = [_arch_of(r) for r in fit_rows]
    reports = fit.fit_all(fit_archs, np.array([r["step_time_s"] for r in fit_rows]), ceilings)
    chosen = fit.choose(reports)
    validation: dict[str, dict[str, float]] = {}
    if val_rows:
        val_archs = [_arch_of(r) for r in val_rows]
        tv = np.array([r["step_time_s"] for r in val_rows])
        for name, rep in reports.items():
            validation[name] = fit.scores(rep.fit.predict(val_archs), tv)
    best = reports[chosen]
    section: dict[str, Any] = {
        "model": chosen,
        **best.fit.coeffs,
        "r2": round(best.r2, 6),
        "mean_abs_pct_error": round(best.mean_abs_pct_error, 3),
        "median_abs_pct_error": round(best.median_abs_pct_error, 3),
        "max_abs_pct_error": round(best.max_abs_pct_error, 3),
        "heldout_mean_abs_pct_error": round(best.heldout_mean_abs_pct_error, 3),
        "heldout_median_abs_pct_error": round(best.heldout_median_abs_pct_error, 3),
        "n_samples": len(fit_rows),
        "n_validation": len(val_rows),
        "activation_bytes": act_bytes,
        "device_kind": device_kind,
        "backend": backend,
        "jax_version": jax_version,
        "date": dt.date.today().isoformat(),
        "source": source,
        **{k: round(v, 1) for k, v in micro.items()},
    }
    if val_rows:
        section["validation_median_abs_pct_error"] = round(validation[chosen]["median_abs_pct_error"], 3)
    alternatives = {
        name: {
            **r.fit.coeffs,
            "r2": round(r.r2, 6),
            "heldout_mean_abs_pct_error": round(r.heldout_mean_abs_pct_error, 3),
        }
        for name, r in reports.items()
    }
    new_hw = hwfile.write_calibration(hw.path, out, section, alternatives)
    return CalibrationResult(
        new_hw, chosen, reports, validation, len(fit_rows), len(val_rows), measurements, time.perf_counter() - t_start
    )


def _backend_of(device_kind: str) -> str:
    """The hardware-file ``device`` a JAX ``device_kind`` belongs to ("cpu", "TPU v4", "NVIDIA H100 ...")."""
    kind = device_kind.lower()
    return "cpu" if kind == "cpu" else "tpu" if "tpu" in kind else "gpu"


def refit(spec: str | Path, measurements: Path, out: Path | None = None, force: bool = False) -> CalibrationResult:
    """Fits and writes the ``[calibration]`` section from a JSONL file that ``calibrate`` wrote
    (microbenchmarks and timed training steps with their fit/validation split), without measuring
    again: e.g. after a new step-time model was added, or on another machine than the one measured.
    Refuses measurements of another device kind than the file's unless ``force``."""
    t_start = time.perf_counter()
    hw = Hardware.load(spec)
    out = Path(out) if out is not None else hw.path
    if not measurements.is_file():
        raise InvalidInputError(f"{measurements}: measurements file not found")
    records = []
    for i, line in enumerate(measurements.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise InvalidInputError(f"{measurements}: line {i}: not JSON ({e})") from None

    def rate(kind: str, key: str) -> list[float]:
        out = []
        for i, r in enumerate(records, 1):
            if not isinstance(r, dict) or r.get("kind") != kind:
                continue
            v = r.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v) or v <= 0:
                raise InvalidInputError(
                    f"{measurements}: record {i}: {kind} {key} = {v!r} is invalid: expected a number > 0"
                )
            out.append(float(v))
        return out

    matmul = rate("matmul", "flops_per_s")
    copy = rate("copy", "bytes_per_s")
    steps = [r for r in records if isinstance(r, dict) and r.get("kind") == "train_step"]
    for i, r in enumerate(steps, 1):
        missing = [k for k in bench.ARCH_FIELDS if k not in r]
        if missing or "step_time_s" not in r:
            raise InvalidInputError(
                f"{measurements}: train_step record {i} lacks {', '.join(missing or ['step_time_s'])}"
            )
    if not matmul or not copy or not steps:
        raise InvalidInputError(
            f"{measurements}: expected matmul, copy and train_step records written by `timescale calibrate`"
        )
    backends = {_backend_of(str(r.get("device_kind", ""))) for r in records if isinstance(r, dict)}
    if len(backends) != 1:
        raise InvalidInputError(
            f"{measurements}: measurements from several kinds of device: {', '.join(sorted(backends))}"
        )
    backend = backends.pop()
    if backend != hw.device and not force:
        raise InvalidInputError(
            f"{hw.path}: device = {hw.device!r} but {measurements} holds {backend} measurements (pass --force)"
        )
    device_kind = str(steps[0].get("device_kind", backend))
    act = {float(r.get("activation_bytes", 4.0)) for r in steps}
    micro = {"measured_matmul_flops_per_s": max(matmul), "measured_copy_bytes_per_s": max(copy)}
    rows = [{**r, "split": r.get("split", "fit")} for r in steps]
    return _fit_and_write(
        hw, out, rows, micro, act.pop() if len(act) == 1 else 4.0, device_kind, backend, str(jax.__version__),
        f"timescale calibrate --refit {measurements} (measured on {device_kind}; refitted {dt.date.today()})",
        measurements, t_start,
    )  # fmt: skip


def _arch_of(r: dict[str, Any]) -> Architecture:
    return Architecture(**{k: r[k] for k in bench.ARCH_FIELDS})


# ---------------------------------------------------------------- validation
_NUMERIC = {"d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff", "seq_len", "batch_size", "vocab_size"}


def load_measurements(path: Path, split: str = "all") -> list[dict[str, Any]]:
    """Training-step measurements from JSONL or CSV (architecture fields + ``step_time_s``)."""
    if not path.is_file():
        raise InvalidInputError(f"{path}: measurements file not found")
    rows: list[dict[str, Any]] = []
    try:
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        else:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rows.append(json.loads(line))
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as e:
        raise InvalidInputError(f"{path}: not valid JSONL or CSV ({e})") from None
    out = []
    for i, r in enumerate(rows, 1):
        if not isinstance(r, dict) or r.get("kind", "train_step") != "train_step" or r.get("error"):
            continue
        if split != "all" and r.get("split", "all") != split:
            continue
        try:
            t = float(r["step_time_s"])
            arch: dict[str, Any] = {k: int(float(r[k])) for k in _NUMERIC if k in r}
            for k in ("d_model", "n_layers", "n_heads"):
                if k not in arch:
                    raise KeyError(k)
        except (KeyError, ValueError, TypeError) as e:
            raise InvalidInputError(f"{path}: row {i}: missing or non-numeric field {e}") from None
        if not np.isfinite(t) or t <= 0:
            raise InvalidInputError(
                f"{path}: row {i}: step_time_s = {r['step_time_s']!r} is invalid: expected seconds > 0"
            )
        tied = r.get("tied_embeddings", False)
        arch.update(
            mlp=r.get("mlp", "gelu"),
            attention=r.get("attention", "flash"),
            tied_embeddings=tied if isinstance(tied, bool) else str(tied).lower() in ("true", "1"),
            activation_bytes=float(r.get("activation_bytes", 2.0)),
            param_bytes=float(r.get("param_bytes", 4.0)),
            optimizer_bytes=float(r.get("optimizer_bytes", 4.0)),
            step_time_s=t,
        )
        out.append(arch)
    if not out:
        raise InvalidInputError(
            f"{path}: no training-step measurements{'' if split == 'all' else f' in split {split!r}'}"
        )
    return out


def validate(hw: Hardware, rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per model (each calibrated alternative in the hardware file, and the file's current
    default): R^2, mean / median / max absolute percentage error, Spearman rank correlation."""
    archs = [Architecture(**{k: v for k, v in r.items() if k != "step_time_s"}) for r in rows]
    t = np.array([r["step_time_s"] for r in rows], float)
    out: dict[str, dict[str, float]] = {}
    for name, c in (hw.calibration.get("alternatives") or {}).items():
        pred = fit.Fit(name, {k: float(c[k]) for k in fit.COEFFICIENTS[name]}).predict(archs)
        out[f"{name} (calibrated)"] = {**fit.scores(pred, t), "spearman": fit.spearman(pred, t)}
    pred = np.array([hw.core.step_time_for(a) for a in archs])
    label = f"{hw.step_time_model} (hardware file default)" if hw.calibrated else "datasheet roofline (uncalibrated)"
    out[label] = {**fit.scores(pred, t), "spearman": fit.spearman(pred, t)}
    return out
