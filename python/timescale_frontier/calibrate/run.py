"""``calibrate``: measure the default JAX device, fit the step-time models, write the hardware
file (needs JAX: the ``[calibrate]`` extra). Fitting, refitting and validation from saved
measurements need no JAX (``records``); neither does the plan (``plan``).

The time budget is a hard wall-clock limit that includes compilation: the run follows the plan
(``timescale calibrate --plan`` prints it), admits a configuration only when its compile and timing
fit the time left (compile time re-estimated from the run's own compiles), gives each compile a
deadline, overlaps the next compile with the current timing on accelerators (never on the CPU,
whose cores are the thing measured), and keeps compiled programs in JAX's persistent cache. Every
record is appended to the measurements file the moment it exists; a run cut short by the budget
or by Ctrl-C still fits and writes the hardware file from what it measured, when that is enough.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import platformdirs

from timescale_frontier._core import check_compile_deadline_s
from timescale_frontier.calibrate import bench, hwfile
from timescale_frontier.calibrate.fit import Ceilings
from timescale_frontier.calibrate.plan import COMPILE_S, Planned, compile_concurrency, make_plan, timing_cost_s
from timescale_frontier.calibrate.records import MIN_FIT_SAMPLES, CalibrationResult, fit_and_write, measured
from timescale_frontier.errors import InvalidInputError, TimescaleError
from timescale_frontier.hardware import Hardware

#: Default per-configuration compile deadline (s): a program that compiles longer is recorded as
#: failed (XLA can spend minutes on a program it then cannot fit).
COMPILE_DEADLINE_S = {"cpu": 60.0, "gpu": 180.0, "tpu": 120.0}


def _check_device(hw: Hardware, force: bool) -> str:
    try:
        backend = jax.default_backend()
    except Exception as e:  # noqa: BLE001 - JAX raises RuntimeError, or fails an assertion, when no backend starts
        asked = os.environ.get("JAX_PLATFORMS", "")
        why = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
        raise InvalidInputError(
            f"JAX cannot start a device{f' (JAX_PLATFORMS={asked})' if asked else ''}: {why}; name a platform this"
            " machine has (cpu, cuda, tpu) or unset JAX_PLATFORMS",
            field="JAX_PLATFORMS",
            value=asked,
            expected="a JAX platform this machine has",
        ) from None
    if backend != hw.device and not force:
        raise InvalidInputError(
            f"{hw.path}: device = {hw.device!r} but JAX runs on {backend!r}: coefficients measured here would be wrong "
            f"for this chip (pass --force to write them anyway)",
            field="device",
            value=repr(hw.device),
            expected=f"{backend!r}, the device JAX runs on (or --force)",
        )
    return backend


def enable_compile_cache() -> Path:
    """JAX's persistent compilation cache in the user's cache directory: a second calibration (or
    a rerun after an interruption) does not compile the same programs again."""
    cache = platformdirs.user_cache_path("timescale-frontier") / "jax-compilation-cache"
    cache.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return cache


#: Compiles given up at their deadline and still running in their threads: the process must not
#: end through the interpreter's shutdown while one runs inside XLA (C++ then aborts: "terminate
#: called ...", exit 134); ``compiles_running`` tells the command line to end it directly.
_abandoned: list[_Compile] = []


def compiles_running() -> bool:
    """Whether a compile given up at its deadline is still running."""
    return any(not c.done.is_set() for c in _abandoned)


class _Compile:
    """One program compiling in a daemon thread (an abandoned compile never holds up the exit)."""

    def __init__(self, planned: Planned):
        self.planned = planned
        self.done = threading.Event()
        self.result: Any = None
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = bench._compile(self.planned.arch)
        except Exception as e:  # noqa: BLE001 - recorded, not fatal (e.g. out of memory)
            self.error = f"compile: {type(e).__name__}: {e}".splitlines()[0]
        finally:
            self.done.set()

    def wait(self, timeout_s: float) -> bool:
        return self.done.wait(max(timeout_s, 0.0))


def run_record(backend: str, time_budget_s: float, planned: int) -> dict[str, Any]:
    """What the run's numbers depend on, recorded once at its start."""
    import importlib.metadata

    return {
        "kind": "run",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "jax_version": jax.__version__,
        "jaxlib_version": importlib.metadata.version("jaxlib"),
        "backend": backend,
        "device_kind": jax.devices()[0].device_kind,
        "device_count": jax.device_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "time_budget_s": time_budget_s,
        "planned": planned,
    }


def calibrate(
    spec: str | Path,
    out: Path | None = None,
    time_budget_s: float = 100.0,
    n_fit: int = 12,
    n_validate: int = 6,
    measurements: Path | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
    step_time_range_s: tuple[float, float] | None = None,
    compile_deadline_s: float | None = None,
) -> CalibrationResult:
    """Measures, fits and writes the ``[calibration]`` section within ``time_budget_s`` seconds of
    wall clock, compilation included (see the module docs). The hardware file is replaced only
    after the fit succeeded (atomically)."""
    say = progress or (lambda _msg: None)
    t_start = time.perf_counter()
    deadline = t_start + time_budget_s
    if compile_deadline_s is not None:
        check_compile_deadline_s(compile_deadline_s)
    hw = Hardware.load(spec)
    out = Path(out) if out is not None else hwfile.default_out(hw)
    if measurements is None:
        # Kept whatever happens next: a fit refused (worse than the file's) can be refitted from them.
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        measurements = platformdirs.user_cache_path("timescale-frontier") / "measurements" / f"{hw.name}-{stamp}.jsonl"
    hwfile.check_targets(hw, out, measurements, appending=True)  # before any work: nothing the user has is destroyed
    backend = _check_device(hw, force)
    plan = make_plan(hw, backend, time_budget_s, n_fit, n_validate, step_time_range_s)
    sequence = plan.items + plan.dropped
    if len(sequence) < MIN_FIT_SAMPLES + 1:
        raise TimescaleError(
            f"{hw.path}: found only {len(sequence)} architectures that fit this device's memory and time range"
        )
    enable_compile_cache()
    log = bench.JsonlLog(measurements)
    log.write(run_record(backend, time_budget_s, len(plan.items)))
    device_kind = jax.devices()[0].device_kind
    act_bytes = 4.0 if backend == "cpu" else 2.0
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

    rows = _measure(sequence, hw, backend, deadline, compile_deadline_s, log, say)
    ok = [(r, measured(measurements or Path("measurements"), i, r)) for i, r in enumerate(rows, 1) if r["step_time_s"]]
    fit_rows = [m for r, m in ok if r["split"] == "fit"]
    if _interrupted.is_set() and len(fit_rows) < MIN_FIT_SAMPLES:
        say(f"interrupted with {len(fit_rows)} measured fit steps (need {MIN_FIT_SAMPLES}): nothing written")
        raise KeyboardInterrupt
    extra = {
        "activation_bytes": act_bytes,
        "device_kind": device_kind,
        "backend": backend,
        "jax_version": jax.__version__,
        **{k: round(v, 1) for k, v in micro.items()},
    }
    try:
        return fit_and_write(
            hw, out,
            fit_rows, [m for r, m in ok if r["split"] == "validation"], extra,
            f"timescale calibrate on {device_kind} ({backend}); measurements: {measurements}",
            measurements, t_start,
            Ceilings(micro["measured_matmul_flops_per_s"], micro["measured_copy_bytes_per_s"]),
            force,
        )  # fmt: skip
    except TimescaleError as e:
        # What was measured stays: say where, and how to fit it again without measuring.
        e.message += f"; the measurements are kept in {measurements} (refit them: --refit {measurements})"
        raise


#: Set when Ctrl-C stopped the last measurement loop (its caller decides what to write).
_interrupted = threading.Event()


def _measure(
    sequence: list[Planned],
    hw: Hardware,
    backend: str,
    deadline: float,
    compile_deadline_s: float | None,
    log: bench.JsonlLog,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Compiles and times ``sequence`` in order while the budget lasts; returns the records written.
    On accelerators the next programs compile (``compile_concurrency`` at a time) while one is timed."""
    _interrupted.clear()
    per_compile = compile_deadline_s if compile_deadline_s is not None else COMPILE_DEADLINE_S.get(backend, 180.0)
    depth = compile_concurrency(backend)
    compiles: list[float] = []
    rows: list[dict[str, Any]] = []
    started: dict[int, _Compile] = {}

    def compile_estimate() -> float:
        return statistics.mean(compiles) if compiles else COMPILE_S.get(backend, 30.0)

    try:
        for i, p in enumerate(sequence):
            left = deadline - time.perf_counter()
            timing = timing_cost_s(p.predicted_step_s)
            if (0.0 if i in started else compile_estimate() / depth) + timing > left:
                say(
                    f"time budget: {left:.0f} s left, the next configuration needs about {compile_estimate() / depth + timing:.0f} s"
                )
                break
            # Keep `depth` programs compiling: this one and the next ones the budget may reach.
            for j in range(i, min(i + depth, len(sequence))):
                if j not in started and (
                    j == i or sum(timing_cost_s(q.predicted_step_s) for q in sequence[i : j + 1]) < left
                ):
                    started[j] = _Compile(sequence[j])
            job = started.pop(i)
            limit = min(per_compile, left - timing)
            t0 = time.perf_counter()
            finished = job.wait(limit)
            if not finished:
                _abandoned.append(job)
                error = f"compile exceeded {limit:.0f} s (deadline)"
                rows.append(_write(log, hw, p, None, time.perf_counter() - t0, error))
                say(f"[{i + 1}] {_describe(p)}: {error}")
                if depth == 1:
                    # A compile still running would share the cores being measured: stop here.
                    break
                continue
            if job.error is not None or job.result is None:
                rows.append(_write(log, hw, p, None, time.perf_counter() - t0, job.error or "compile failed"))
                say(f"[{i + 1}] {_describe(p)}: {job.error}")
                continue
            compiled, args, compile_s = job.result
            compiles.append(compile_s)
            m = bench._time_compiled(p.arch, compiled, args, compile_s)
            rows.append(_write(log, hw, p, m.step_time_s, compile_s, m.error))
            status = f"{m.step_time_s * 1e3:.2f} ms" if m.step_time_s else f"failed ({m.error})"
            say(f"[{i + 1}/{len(sequence)}] {p.split:10s} {_describe(p)} compile {compile_s:.1f} s, step {status}")
    except KeyboardInterrupt:
        _interrupted.set()
        say(f"interrupted after {len(rows)} configurations")
    return rows


def _describe(p: Planned) -> str:
    a = p.arch
    return f"d_model {a.d_model:4d} layers {a.n_layers} seq {a.seq_len:4d} batch {a.batch_size:3d} {a.mlp:6s} {a.attention:12s}"


def _write(
    log: bench.JsonlLog, hw: Hardware, p: Planned, step_time_s: float | None, compile_s: float, error: str | None
) -> dict[str, Any]:
    rec = bench.record(bench.StepMeasurement(p.arch, step_time_s, compile_s, error), hw, p.split)
    rec.update(predicted_step_s=p.predicted_step_s, predicted_compile_s=p.predicted_compile_s)
    log.write(rec)
    return rec
