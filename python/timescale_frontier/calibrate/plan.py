"""What a calibration will run, before it runs (``timescale calibrate --plan``): the architectures
(a space-filling design, each fitting the chip's memory by the core's own estimate and stepping
within the requested range), the predicted step and compile time of each, and which fit in the
time budget. A live calibration measures exactly this list, in this order, until its budget ends.
No JAX here: a plan can be made on a laptop for an accelerator.

Compile time is the scarce resource on accelerators (../shared/reference/accelerator-lessons.md:
one training-step program took 20-90 s to compile with XLA's GPU autotuning): so the design
varies what the step-time models fit (bytes, matmul FLOPs, attention FLOPs, batch-independent
traffic) with programs that compile alike (layers under ``lax.scan``, so depth costs no compile
time), and a configuration is admitted only when its compile and timing fit the budget left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from timescale_frontier import _core
from timescale_frontier.architecture import Architecture
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import Hardware
from timescale_frontier.prediction import predict

__all__ = [
    "GRID",
    "ACCELERATOR_GRID",
    "COMPILE_S",
    "DEFAULT_STEP_RANGE_S",
    "Planned",
    "Plan",
    "default_budget_s",
    "design",
    "grid",
    "make_plan",
    "timing_cost_s",
]

#: Axes the design draws from on a CPU (small models: a calibration measures the chip, not a model).
GRID: dict[str, list[Any]] = {
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

#: Axes on an accelerator: the sizes training runs use there (a GPU or TPU steps a model of the
#: CPU grid in about a millisecond, mostly launch overhead, which would leave the rates unfitted).
ACCELERATOR_GRID: dict[str, list[Any]] = {
    "d_model": [512, 768, 1024, 1536, 2048, 3072, 4096],
    "n_layers": [2, 4, 6, 8, 12, 16],
    "head_dim": [64, 128],
    "kv_group": [1, 2, 4],
    "mlp": ["gelu", "swiglu"],
    "ffn_mult": [2.0, 8 / 3, 4.0],
    "attention": ["flash", "materialized"],
    "tied_embeddings": [False, True],
    "seq_len": [512, 1024, 2048, 4096],
    "batch_size": [2, 4, 8, 16, 32],
    "vocab_size": [8192, 32000, 50304],
}

#: Predicted step times (s, by the file's current model) the designed architectures must have, by
#: backend: on an accelerator at least 0.1 s, so that the work, not the per-step overhead (0.039 s
#: in an uncalibrated datasheet file), dominates what is measured; at most 0.8 s, so that about
#: ten configurations (each compiled, 15-30 s, then timed 12 times) fit the default budget.
DEFAULT_STEP_RANGE_S = {"cpu": (5e-4, 0.06), "gpu": (0.1, 0.8), "tpu": (0.1, 0.8)}


def grid(backend: str) -> dict[str, list[Any]]:
    """The axes the design draws from on ``backend`` ("cpu", "gpu" or "tpu")."""
    return GRID if backend == "cpu" else ACCELERATOR_GRID


#: Seconds to compile one training-step program, by backend, before any is measured (a run
#: replaces it with the mean of its own compiles): the CPU measured on this project's machine (1-3 s),
#: GPUs from the H200 lessons (about 20 s alone with autotuning, more when several compile), TPUs
#: assumed between. Assumptions, stated as such in the plan.
COMPILE_S = {"cpu": 2.0, "gpu": 30.0, "tpu": 15.0}

#: Microbenchmarks (matmul and copy) before the steps: seconds, by backend (measured on the CPU;
#: the accelerator figures allow for their compiles).
MICROBENCH_S = {"cpu": 8.0, "gpu": 60.0, "tpu": 40.0}


def compile_concurrency(backend: str) -> int:
    """Programs compiled at once: two on an accelerator's host (the lessons: ten at once slowed
    each to 20-90 s; one or two at a time), one on a CPU (whose cores are what is timed)."""
    return 1 if backend == "cpu" else 2


def default_budget_s(backend: str) -> float:
    """The default time budget of a calibration (s): 100 on a CPU, 240 on an accelerator (about
    four minutes of device time, start-up aside)."""
    return 100.0 if backend == "cpu" else 240.0


def timing_cost_s(step_s: float, reps: int = 5, target_s: float = 0.1, max_iters: int = 64) -> float:
    """Seconds ``bench._timed`` spends on a step of ``step_s``: two warm-up calls, then ``reps``
    loops of ``clamp(target_s / step_s, 2, max_iters)`` steps."""
    iters = min(max_iters, max(2, int(target_s / max(step_s, 1e-6))))
    return 2 * step_s + reps * iters * step_s


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
    step_time_range_s: tuple[float, float] = DEFAULT_STEP_RANGE_S["cpu"],
    attentions: tuple[str, ...] = ("flash", "materialized"),
    axes_values: dict[str, list[Any]] = GRID,
) -> list[Architecture]:
    """``n`` architectures spread over ``axes_values`` (greedy farthest-point sampling in
    normalized index coordinates), each fitting in memory with a predicted step time in range."""
    rng = np.random.default_rng(seed)
    axes = list(axes_values)
    pool: list[tuple[np.ndarray, Architecture]] = []
    for _ in range(4000):
        idx = np.array([rng.integers(len(axes_values[a])) for a in axes])
        arch = _arch({a: axes_values[a][i] for a, i in zip(axes, idx, strict=True)}, activation_bytes)
        if arch is None or arch.attention not in attentions:
            continue
        p = predict(arch, hw, 1.0)
        if not p.fits_memory or not step_time_range_s[0] <= p.step_time_s <= step_time_range_s[1]:
            continue
        pool.append((idx / np.array([max(1, len(axes_values[a]) - 1) for a in axes]), arch))
    if not pool:
        return []
    chosen = [0]
    dist = np.linalg.norm(np.stack([v for v, _ in pool]) - pool[0][0], axis=1)
    while len(chosen) < min(n, len(pool)):
        i = int(np.argmax(dist))
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(np.stack([v for v, _ in pool]) - pool[i][0], axis=1))
    return [pool[i][1] for i in chosen]


@dataclass(frozen=True)
class Planned:
    """One configuration of a plan: its split and what it is predicted to cost."""

    arch: Architecture
    split: str
    predicted_step_s: float
    #: Seconds to compile this program alone.
    predicted_compile_s: float
    #: Programs compiling at once (accelerators: 2, on the host while the device times another;
    #: the CPU: 1, never beside a timed step).
    concurrency: int = 1

    @property
    def cost_s(self) -> float:
        """Its share of the budget: its compile (shared with the others compiling beside it) and
        its timing loops."""
        return self.predicted_compile_s / self.concurrency + timing_cost_s(self.predicted_step_s)


@dataclass(frozen=True)
class Plan:
    backend: str
    time_budget_s: float
    microbench_s: float
    #: What fits the budget, in the order it runs.
    items: list[Planned]
    #: Designed but beyond the budget (a longer --time-budget-s would run them, in this order).
    dropped: list[Planned] = field(default_factory=list)
    #: The predicted step times (s) the architectures were chosen in.
    step_range_s: tuple[float, float] = DEFAULT_STEP_RANGE_S["cpu"]

    @property
    def total_s(self) -> float:
        return self.microbench_s + sum(p.cost_s for p in self.items)


def make_plan(
    hw: Hardware,
    backend: str,
    time_budget_s: float,
    n_fit: int,
    n_validate: int,
    step_time_range_s: tuple[float, float] | None = None,
    compile_s: float | None = None,
) -> Plan:
    """The calibration ``calibrate`` would run on ``backend`` ("cpu", "gpu" or "tpu") within
    ``time_budget_s`` seconds, everything included, on architectures whose predicted step times
    are in ``step_time_range_s`` (default: ``DEFAULT_STEP_RANGE_S``). Held-out (validation) points
    are spread evenly through the design order, so a budget that ends early leaves both sets."""
    if step_time_range_s is None:
        step_time_range_s = DEFAULT_STEP_RANGE_S.get(backend, DEFAULT_STEP_RANGE_S["gpu"])
    _core.check_calibration_request(time_budget_s, step_time_range_s)
    act_bytes = 4.0 if backend == "cpu" else 2.0  # bf16 is emulated (slow) on CPUs
    # XLA's CPU backend has no fused attention kernel: "flash" there materializes the scores,
    # which the op table's flash rows do not describe. CPUs are calibrated on materialized attention.
    attentions = ("materialized",) if backend == "cpu" else ("flash", "materialized")
    archs = design(
        n_fit + n_validate,
        hw,
        act_bytes,
        step_time_range_s=step_time_range_s,
        attentions=attentions,
        axes_values=grid(backend),
    )
    if not archs:
        raise InvalidInputError(
            f"{hw.path}: no architecture of the {backend} design grid fits the chip's memory with a predicted step time"
            f" in {step_time_range_s[0]:g}:{step_time_range_s[1]:g} s (by this file's current model): widen --step-range-s",
            field="step_range_s",
            value=f"{step_time_range_s[0]:g}:{step_time_range_s[1]:g}",
            expected="a range of step times some architecture of the design grid has",
        )
    total = len(archs)
    held = {min(total - 1, int((k + 0.5) * total / n_validate)) for k in range(n_validate)} if n_validate else set()
    compile_each = COMPILE_S.get(backend, 30.0) if compile_s is None else compile_s
    planned = [
        Planned(
            a,
            "validation" if i in held else "fit",
            predict(a, hw, 1.0).step_time_s,
            compile_each,
            compile_concurrency(backend),
        )
        for i, a in enumerate(archs)
    ]
    micro = MICROBENCH_S.get(backend, 60.0)
    items: list[Planned] = []
    dropped: list[Planned] = []
    used = micro
    for p in planned:
        if not dropped and used + p.cost_s <= time_budget_s:
            items.append(p)
            used += p.cost_s
        else:
            dropped.append(p)
    return Plan(backend, time_budget_s, micro, items, dropped, step_time_range_s)
