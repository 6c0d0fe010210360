"""Train the reference transformer on real text for a wall-clock budget (optional ``[calibrate]``
extra): the end-to-end test of the tool's chain, step time -> tokens in the budget -> loss.

Corpus: the Python standard library's own ``.py`` sources (they ship with every interpreter, and
nobody here wrote them), byte-level (vocabulary 256), split by file: a file is held out when the
CRC-32 of its path relative to the library root is 0 modulo ``heldout_every``. The same
interpreter version gives the same bytes, so runs are reproducible offline.

Recipe: AdamW (b1 0.9, b2 0.95, weight decay 0.1) with a learning-rate schedule that follows the
wall clock (``schedule="clock"``, the default since issue 25): linear warm-up over the first
``warmup_fraction`` of the budget's *time*, cosine decay to ``floor`` x peak at the end of the
budget, the rate of each step computed from the time elapsed when it starts. So no run's schedule
depends on a predicted step count: a model that steps slower than predicted still decays to the
floor when its time runs out, and one that steps faster does not sit at the floor for its last
third (issue 25 found the recipe's model stopped at 82% of its step-planned cosine, one-layer models
ran 31-38% past theirs). ``schedule="steps"`` keeps the earlier recipe (cosine over the planned
steps = budget / predicted step time, held at the floor past them), to reproduce the recorded
experiments. Training stops at the first step that ends after the budget.
Compilation happens before the clock starts (the tool's step time excludes it, and a real run
compiles once). The batch sampling on the host is inside the clock.
"""

from __future__ import annotations

import math
import sys
import sysconfig
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from timescale_frontier.architecture import Architecture
from timescale_frontier.calibrate import model


@dataclass(frozen=True)
class Corpus:
    """Byte-level text, split by file into training and held-out parts."""

    train: np.ndarray = field(repr=False)
    heldout: np.ndarray = field(repr=False)
    n_train_files: int
    n_heldout_files: int
    source: str

    def describe(self) -> str:
        return (
            f"{self.source}: {self.n_train_files} files / {self.train.size / 1e6:.1f} MB for training, "
            f"{self.n_heldout_files} files / {self.heldout.size / 1e6:.1f} MB held out (split by file)"
        )


def stdlib_corpus(heldout_every: int = 10, root: Path | None = None) -> Corpus:
    """The standard library's ``.py`` files (outside ``site-packages``), in sorted path order."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    files = sorted(f for f in root.rglob("*.py") if "site-packages" not in f.parts and f.is_file())
    if not files:
        raise FileNotFoundError(f"{root}: no .py files found for the corpus")
    parts: dict[bool, list[bytes]] = {False: [], True: []}
    for f in files:
        rel = f.relative_to(root).as_posix()
        parts[zlib.crc32(rel.encode()) % heldout_every == 0].append(f.read_bytes() + b"\n")
    version = ".".join(map(str, sys.version_info[:3]))
    return Corpus(
        train=np.frombuffer(b"".join(parts[False]), np.uint8),
        heldout=np.frombuffer(b"".join(parts[True]), np.uint8),
        n_train_files=len(parts[False]),
        n_heldout_files=len(parts[True]),
        source=f"Python {version} standard library ({root})",
    )


def sample(data: np.ndarray, rng: np.random.Generator, batch: int, seq: int) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` random windows of ``seq + 1`` bytes: inputs and next-byte labels (int32)."""
    starts = rng.integers(0, data.size - seq - 1, batch)
    windows = data[starts[:, None] + np.arange(seq + 1)].astype(np.int32)
    return windows[:, :-1], windows[:, 1:]


def schedule(
    peak: float, planned_steps: int, warmup_fraction: float = 0.05, floor: float = 0.1
) -> Callable[[jax.Array], jax.Array]:
    """Warm-up then cosine decay to ``floor x peak`` at ``planned_steps``, flat after it."""
    planned = max(2, int(planned_steps))
    warm = max(1, int(round(warmup_fraction * planned)))

    def lr(t: jax.Array) -> jax.Array:
        s = t.astype(jnp.float32)
        progress = jnp.clip((s - warm) / max(1, planned - warm), 0.0, 1.0)
        decay = floor + (1 - floor) * 0.5 * (1 + jnp.cos(jnp.pi * progress))
        return peak * jnp.where(s <= warm, s / warm, decay)

    return lr


def clock_schedule(peak: float, warmup_fraction: float = 0.05, floor: float = 0.1) -> Callable[[float], float]:
    """The rate at ``progress`` = time elapsed / budget (0 to 1): linear warm-up over the first
    ``warmup_fraction``, then cosine from ``peak`` to ``floor x peak`` at 1, held there after it."""
    warm = max(1e-9, warmup_fraction)

    def lr(progress: float) -> float:
        p = min(max(progress, 0.0), 1.0)
        if p < warm:
            return peak * max(p, 1e-3 * warm) / warm
        decay = (p - warm) / max(1e-9, 1 - warm)
        return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * decay)))

    return lr


@dataclass
class TrainResult:
    arch: dict[str, Any]
    budget_s: float
    planned_steps: int
    steps: int
    tokens: int
    train_s: float
    measured_step_s: float
    compile_s: float
    final_train_loss: float
    heldout_loss: float
    curve: list[tuple[int, float, float]]  # (step, seconds, training loss) at ~20 points
    #: "clock" (the rate follows elapsed time) or "steps" (a cosine over planned_steps).
    schedule: str = "clock"
    #: The rate of the last step (by the clock, about floor x peak when the budget ran out).
    final_lr: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def heldout_loss(
    arch: Architecture, params: model.Params, corpus: Corpus, n_batches: int = 16, seed: int = 1234
) -> float:
    """Mean next-byte cross-entropy (nats/byte) on fixed windows of the held-out files."""
    rng = np.random.default_rng(seed)
    fn = jax.jit(lambda p, x, y: model.loss_fn(arch, p, x, y))
    total = 0.0
    for _ in range(n_batches):
        x, y = sample(corpus.heldout, rng, arch.batch_size, arch.seq_len)
        total += float(fn(params, jnp.asarray(x), jnp.asarray(y)))
    return total / n_batches


def train(
    arch: Architecture,
    budget_s: float,
    planned_steps: int,
    corpus: Corpus,
    peak_lr: float = 2e-3,
    seed: int = 0,
    eval_batches: int = 16,
    progress: Callable[[str], None] | None = None,
    max_steps: int | None = None,
    schedule_kind: str = "clock",
) -> TrainResult:
    """Trains ``arch`` from scratch until ``budget_s`` seconds of training have passed (or
    ``max_steps`` steps, for a fixed token count: then the clock schedule's progress is steps /
    ``max_steps``). ``planned_steps`` only paces the progress messages (and the "steps" schedule)."""
    if schedule_kind not in ("clock", "steps"):
        raise ValueError(f"schedule_kind = {schedule_kind!r}: expected 'clock' or 'steps'")
    if arch.vocab_size < 256:
        raise ValueError("byte-level training needs vocab_size >= 256")
    say = progress or (lambda _m: None)
    rng = np.random.default_rng(seed)
    params = model.init_params(arch, seed)
    opt = model.init_opt_state(arch, params)
    clock = schedule_kind == "clock"
    by_clock = clock_schedule(peak_lr)
    step_fn = jax.jit(
        model.make_train_step(arch, lr=schedule(peak_lr, planned_steps), lr_argument=clock), donate_argnums=(0, 1)
    )
    x, y = sample(corpus.train, rng, arch.batch_size, arch.seq_len)
    extra = (jnp.asarray(0.0, jnp.float32),) if clock else ()
    t0 = time.perf_counter()
    compiled = step_fn.lower(params, opt, jnp.asarray(x), jnp.asarray(y), *extra).compile()
    compile_s = time.perf_counter() - t0
    rate = math.nan

    every = max(1, planned_steps // 20)
    curve: list[tuple[int, float, float]] = []
    steps, loss = 0, jnp.asarray(math.nan)
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < budget_s and (max_steps is None or steps < max_steps):
        x, y = sample(corpus.train, rng, arch.batch_size, arch.seq_len)
        if clock:
            progress_now = steps / max_steps if max_steps is not None else elapsed / budget_s
            rate = by_clock(progress_now)
            params, opt, loss = compiled(params, opt, jnp.asarray(x), jnp.asarray(y), jnp.asarray(rate, jnp.float32))
        else:
            params, opt, loss = compiled(params, opt, jnp.asarray(x), jnp.asarray(y))
        loss.block_until_ready()
        steps += 1
        elapsed = time.perf_counter() - start
        if steps % every == 0:
            curve.append((steps, round(elapsed, 3), float(loss)))
            say(f"  step {steps}/{planned_steps} planned, {elapsed:.0f}/{budget_s:.0f} s, loss {float(loss):.3f}")
    final = float(loss)
    held = heldout_loss(arch, params, corpus, eval_batches)
    if not (math.isfinite(final) and math.isfinite(held)):
        raise FloatingPointError(f"training diverged (loss {final}, held-out {held})")
    return TrainResult(
        arch=arch.to_dict(),
        budget_s=budget_s,
        planned_steps=int(planned_steps),
        steps=steps,
        tokens=steps * arch.batch_size * arch.seq_len,
        train_s=elapsed,
        measured_step_s=elapsed / steps,
        compile_s=compile_s,
        final_train_loss=final,
        heldout_loss=held,
        curve=curve,
        schedule=schedule_kind,
        final_lr=rate,
    )
