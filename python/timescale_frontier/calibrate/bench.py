"""Microbenchmarks on the default JAX device: matmul throughput, memory bandwidth, and full
training steps for a space-filling design of architectures. Every measurement is appended to a
JSONL file the moment it exists; failures are recorded, not fatal."""

from __future__ import annotations

import fcntl
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from timescale_frontier.architecture import FIELDS, Architecture
from timescale_frontier.calibrate import model, plan
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import Hardware
from timescale_frontier.prediction import predict

ARCH_FIELDS = FIELDS


class JsonlLog:
    """Appends one JSON object per line and flushes it to disk at once. The file is held with an
    exclusive lock for the whole calibration: a second calibration streaming to the same file is
    refused at once instead of interleaving its records with the first's."""

    def __init__(self, path: Path | None):
        self.path = path
        self._file: Any = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._file.close()
                raise InvalidInputError(
                    f"{path}: another calibration is writing these measurements; give --measurements another file",
                    field="measurements",
                    value=str(path),
                    expected="a file no other calibration is writing",
                ) from None

    def write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())


def _timed(fn: Callable[[], Any], reps: int = 5, target_s: float = 0.1, max_iters: int = 64) -> float:
    """Median seconds per call: warm up, pick a loop length near ``target_s``, time ``reps`` loops
    each ended by one ``block_until_ready``."""
    jax.block_until_ready(fn())
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    once = max(time.perf_counter() - t0, 1e-6)
    iters = int(min(max_iters, max(2, target_s / once)))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = None
        for _ in range(iters):
            out = fn()
        jax.block_until_ready(out)
        samples.append((time.perf_counter() - t0) / iters)
    return statistics.median(samples)


def matmul_flops_per_s(n: int, dtype: Any) -> float:
    """Achieved FLOP/s of an n x n x n matmul (2 n^3 FLOPs)."""
    a = jnp.ones((n, n), dtype)
    b = jnp.ones((n, n), dtype)
    f = jax.jit(lambda x, y: x @ y)
    return 2.0 * n**3 / _timed(lambda: f(a, b))


def copy_bytes_per_s(n_bytes: int, dtype: Any) -> float:
    """Achieved bytes/s of an elementwise op, counting bytes read plus bytes written."""
    n = n_bytes // jnp.dtype(dtype).itemsize
    x = jnp.ones((n,), dtype)
    f = jax.jit(lambda v: v * 2 + 1)
    return float(2.0 * n * jnp.dtype(dtype).itemsize / _timed(lambda: f(x)))


# The design of experiments lives in ``plan`` (no JAX needed to plan a calibration).
design = plan.design


@dataclass
class StepMeasurement:
    arch: Architecture
    step_time_s: float | None
    compile_s: float
    error: str | None = None


def _compile(arch: Architecture, scan_layers: bool = True) -> tuple[Any, tuple[Any, ...], float]:
    t0 = time.perf_counter()
    params = model.init_params(arch)
    opt = model.init_opt_state(arch, params)
    tokens, labels = model.batch(arch)
    step = jax.jit(model.make_train_step(arch, scan_layers), donate_argnums=(0, 1))
    compiled = step.lower(params, opt, tokens, labels).compile()
    return compiled, (params, opt, tokens, labels), time.perf_counter() - t0


def _time_compiled(arch: Architecture, compiled: Any, args: tuple[Any, ...], compile_s: float) -> StepMeasurement:
    params, opt, tokens, labels = args
    state = {"p": params, "o": opt}

    def run() -> Any:
        state["p"], state["o"], loss = compiled(state["p"], state["o"], tokens, labels)
        return loss

    try:
        t = _timed(run)
    except Exception as e:  # noqa: BLE001
        return StepMeasurement(arch, None, compile_s, f"run: {type(e).__name__}: {e}".splitlines()[0])
    if not math.isfinite(t) or t <= 0:
        return StepMeasurement(arch, None, compile_s, f"non-finite time {t}")
    return StepMeasurement(arch, t, compile_s)


def record(m: StepMeasurement, hw: Hardware, split: str) -> dict[str, Any]:
    """A measurement as a JSONL record: architecture fields, the core's counts, the time."""
    p = predict(m.arch, hw, 1.0)
    rec: dict[str, Any] = {k: getattr(m.arch, k) for k in ARCH_FIELDS}
    rec.update(
        kind="train_step",
        split=split,
        step_time_s=m.step_time_s,
        compile_s=round(m.compile_s, 3),
        flops_per_step=p.flops_per_step,
        memcpy_bytes_per_step=p.memcpy_bytes_per_step,
        error=m.error,
        device_kind=jax.devices()[0].device_kind,
        backend=jax.default_backend(),
    )
    return rec
