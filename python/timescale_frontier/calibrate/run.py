"""``calibrate``: measure the default JAX device, fit the step-time models, write the hardware
file (needs JAX: the ``[calibrate]`` extra). Fitting, refitting and validation from saved
measurements need no JAX (``records``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from timescale_frontier.calibrate import bench, hwfile
from timescale_frontier.calibrate.fit import Ceilings
from timescale_frontier.calibrate.records import MIN_FIT_SAMPLES, CalibrationResult, fit_and_write, measured
from timescale_frontier.errors import InvalidInputError, TimescaleError
from timescale_frontier.hardware import Hardware


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
    out = Path(out) if out is not None else hwfile.default_out(hw)
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

    ok = [(r, measured(measurements or Path("measurements"), i, r)) for i, r in enumerate(rows, 1) if r["step_time_s"]]
    extra = {
        "activation_bytes": act_bytes,
        "device_kind": device_kind,
        "backend": backend,
        "jax_version": jax.__version__,
        **{k: round(v, 1) for k, v in micro.items()},
    }
    return fit_and_write(
        hw, out,
        [m for r, m in ok if r["split"] == "fit"], [m for r, m in ok if r["split"] == "validation"], extra,
        f"timescale calibrate on {device_kind} ({backend}); measurements: {measurements or 'not saved'}",
        measurements, t_start,
        Ceilings(micro["measured_matmul_flops_per_s"], micro["measured_copy_bytes_per_s"]),
        force,
    )  # fmt: skip
