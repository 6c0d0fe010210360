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
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from timescale_frontier.architecture import FIELDS, Architecture
from timescale_frontier.calibrate import model
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import Hardware
from timescale_frontier.predict import predict

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
                    f"{path}: another calibration is writing these measurements; give --measurements another file"
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


# ---------------------------------------------------------------- design of experiments
_GRID: dict[str, list[Any]] = {
    "d_model": [64, 96, 128, 192, 256, 384, 512],
    "n_layers": [1, 2, 3, 4, 6, 8],
    "head_dim": [16, 32, 64],
    "kv_group": [1, 2, 4],
    "mlp": ["gelu", "swiglu"],
    "ffn_mult": [2.0, 8 / 3, 4.0],
    "attention": ["flash", "materialized"],
    "tied_embeddings": [False, True],
    "seq_len": [32, 64, 128, 256, 512],
    "batch_size": [1, 2, 4, 8, 16],
    "vocab_size": [256, 1024, 4096],
}


def _arch(c: dict[str, Any], activation_bytes: float) -> Architecture | None:
    d, hd, g = c["d_model"], c["head_dim"], c["kv_group"]
    if d % hd or (d // hd) % g:
        return None
    heads = d // hd
    return Architecture(
        d,
        c["n_layers"],
        heads,
        n_kv_heads=heads // g,
        head_dim=hd,
        d_ff=max(1, round(c["ffn_mult"] * d)),
        mlp=c["mlp"],
        attention=c["attention"],
        tied_embeddings=c["tied_embeddings"],
        seq_len=c["seq_len"],
        batch_size=c["batch_size"],
        vocab_size=c["vocab_size"],
        activation_bytes=activation_bytes,
    )


def design(
    n: int,
    hw: Hardware,
    activation_bytes: float,
    seed: int = 0,
    step_time_range_s: tuple[float, float] = (5e-4, 0.06),
    attentions: tuple[str, ...] = ("flash", "materialized"),
) -> list[Architecture]:
    """``n`` architectures spread over the grid (greedy farthest-point sampling in normalized
    index coordinates), each fitting in memory with a predicted step time in range."""
    rng = np.random.default_rng(seed)
    axes = list(_GRID)
    pool: list[tuple[np.ndarray, Architecture]] = []
    for _ in range(4000):
        idx = np.array([rng.integers(len(_GRID[a])) for a in axes])
        arch = _arch({a: _GRID[a][i] for a, i in zip(axes, idx, strict=True)}, activation_bytes)
        if arch is None or arch.attention not in attentions:
            continue
        p = predict(arch, hw, 1.0)
        if not p.fits_memory or not step_time_range_s[0] <= p.step_time_s <= step_time_range_s[1]:
            continue
        pool.append((idx / np.array([max(1, len(_GRID[a]) - 1) for a in axes]), arch))
    if not pool:
        return []
    chosen = [0]
    dist = np.linalg.norm(np.stack([v for v, _ in pool]) - pool[0][0], axis=1)
    while len(chosen) < min(n, len(pool)):
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(np.stack([v for v, _ in pool]) - pool[i][0], axis=1))
    return [pool[i][1] for i in chosen]


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


def measure_steps(archs: list[Architecture], compile_workers: int = 2) -> Iterator[StepMeasurement]:
    """Compiles ``compile_workers`` programs at a time in parallel, then times each step alone:
    compilation never overlaps a timed loop (it would steal the cores being measured)."""
    with ThreadPoolExecutor(max_workers=compile_workers) as pool:
        for start in range(0, len(archs), compile_workers):
            group = archs[start : start + compile_workers]
            futures: list[Future[Any]] = [pool.submit(_compile, a) for a in group]
            compiled_group: list[tuple[Architecture, Any, str | None]] = []
            for arch, fut in zip(group, futures, strict=True):
                try:
                    compiled_group.append((arch, fut.result(), None))
                except Exception as e:  # noqa: BLE001 - recorded, not fatal (e.g. out of memory)
                    compiled_group.append((arch, None, f"compile: {type(e).__name__}: {e}".splitlines()[0]))
            for arch, result, error in compiled_group:
                if result is None:
                    yield StepMeasurement(arch, None, 0.0, error)
                    continue
                yield _time_compiled(arch, *result)


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
