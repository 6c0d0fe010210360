"""Measurements of training steps, and what is done with them without measuring again: fit the
step-time models and write the hardware file (``fit_and_write``, ``refit``), and score every model
on measured steps (``load_measurements``, ``validate``). Needs no JAX."""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from timescale_frontier.architecture import FIELDS, Architecture
from timescale_frontier.calibrate import fit, hwfile
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


def fit_and_write(
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
    reports = fit.fit_all(fit_archs, np.array([r["step_time_s"] for r in fit_rows]), ceilings, hw.core)
    chosen = fit.choose(reports)
    validation: dict[str, dict[str, float]] = {}
    if val_rows:
        val_archs = [_arch_of(r) for r in val_rows]
        tv = np.array([r["step_time_s"] for r in val_rows])
        for name, rep in reports.items():
            validation[name] = fit.scores(rep.fit.predict(val_archs, hw.core), tv)
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
        missing = [k for k in FIELDS if k not in r]
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
    return fit_and_write(
        hw, out, rows, micro, act.pop() if len(act) == 1 else 4.0, device_kind, backend, str(steps[0].get("jax_version", "unknown")),
        f"timescale calibrate --refit {measurements} (measured on {device_kind}; refitted {dt.date.today()})",
        measurements, t_start,
    )  # fmt: skip


def _arch_of(r: dict[str, Any]) -> Architecture:
    return Architecture(**{k: r[k] for k in FIELDS})


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
        # Fields a record leaves out take the core's defaults (Architecture's).
        arch.update({k: str(r[k]) for k in ("mlp", "attention") if k in r})
        arch.update({k: float(r[k]) for k in ("activation_bytes", "param_bytes", "optimizer_bytes") if k in r})
        if "tied_embeddings" in r:
            tied = r["tied_embeddings"]
            arch["tied_embeddings"] = tied if isinstance(tied, bool) else str(tied).lower() in ("true", "1")
        arch["step_time_s"] = t
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
    for name in hw.calibration.get("alternatives") or {}:
        alt = hw.using(name)
        pred = np.array([alt.step_time_for(a) for a in archs])
        out[f"{name} (calibrated)"] = {**fit.scores(pred, t), "spearman": fit.spearman(pred, t)}
    pred = np.array([hw.core.step_time_for(a) for a in archs])
    label = f"{hw.step_time_model} (hardware file default)" if hw.calibrated else "datasheet roofline (uncalibrated)"
    out[label] = {**fit.scores(pred, t), "spearman": fit.spearman(pred, t)}
    return out
