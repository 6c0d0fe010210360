"""``search``: the configuration with the lowest predicted loss after a wall-clock budget, the
Pareto set over (loss, parameters) and the top K, from the core's parallel search."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from timescale_frontier import _core
from timescale_frontier.architecture import SHAPE_FIELDS, Architecture
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import Hardware
from timescale_frontier.loss import Law, get_law, law_bootstrap, loss_interval
from timescale_frontier.metrics import budget_seconds, predict
from timescale_frontier.space import SearchSpace, make_space

Columns = dict[str, Any]

#: Architecture fields carried in result columns, in display order.
ARCH_FIELDS = SHAPE_FIELDS
#: Metric fields carried in result columns (units in the names).
METRIC_FIELDS = (
    "params",
    "non_embedding_params",
    "flops_per_step",
    "memcpy_bytes_per_step",
    "memory_bytes",
    "step_time_s",
    "steps",
    "tokens",
    "effective_tokens",
    "tokens_per_step",
    "loss",
    "sharding",
    "dp",
    "tp",
    "compute_s",
    "dp_comm_s",
    "tp_comm_s",
    "bound",
)


def _row(cols: Columns, i: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k in ("index",) + ARCH_FIELDS + METRIC_FIELDS:
        v = cols[k][i]
        out[k] = v.item() if isinstance(v, np.generic) else v
    return out


@dataclass(frozen=True)
class SearchResult:
    """What a search found. ``top`` and ``pareto`` are dicts of numpy columns (architecture fields
    and metrics); ``pareto`` is sorted by increasing parameters, ``top`` by increasing loss."""

    hardware: Hardware
    hours: float
    law: Law
    law_name: str
    space_size: int
    evaluated: int
    feasible: int
    #: Configurations dropped, by reason: malformed, aspect_ratio, memory, budget, batch_cap.
    rejected: dict[str, int]
    elapsed_s: float
    top: Columns = field(repr=False)
    pareto: Columns = field(repr=False)
    guards: dict[str, Any] = field(default_factory=dict)
    #: Unique training tokens available (``None``: unlimited).
    unique_tokens: float | None = None
    #: Bootstrap refits of a fitted law (empty for built-in laws): prediction intervals.
    law_bootstrap: list[Law] = field(default_factory=list, repr=False)
    #: Chips trained on (each configuration with its fastest sharding that fits).
    chips: int = 1

    def loss_interval(self, row: dict[str, Any]) -> tuple[float, float] | None:
        """95% interval of a row's predicted loss over the law's bootstrap refits (None without)."""
        n = row["params"] if self.law.params == "total" else row["non_embedding_params"]
        return loss_interval(self.law_bootstrap, n, row["effective_tokens"])

    @property
    def best(self) -> dict[str, Any]:
        """The configuration with the lowest predicted loss, as a dict of fields and metrics."""
        return _row(self.top, 0)

    def rows(self, which: str = "top") -> list[dict[str, Any]]:
        cols = self.top if which == "top" else self.pareto
        return [_row(cols, i) for i in range(len(cols["index"]))]

    def best_architecture(self) -> Architecture:
        b = self.best
        return Architecture(**{k: b[k] for k in ARCH_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``best``, ``pareto``, ``top``, ``evaluated``, ``feasible``, ``elapsed_s`` ..."""
        return {
            "hardware": self.hardware.name,
            "hardware_file": str(self.hardware.path),
            "calibrated": self.hardware.calibrated,
            "step_time_model": self.hardware.step_time_formula,
            "hours": self.hours,
            "budget_s": self.hours * 3600.0,
            "law": self.law_name,
            "unique_tokens": self.unique_tokens,
            "chips": self.chips,
            "space_size": self.space_size,
            "evaluated": self.evaluated,
            "feasible": self.feasible,
            "rejected": self.rejected,
            "guards": self.guards,
            "elapsed_s": self.elapsed_s,
            "best": {**self.best, "loss_interval_95": self.loss_interval(self.best)},
            "pareto": self.rows("pareto"),
            "top": self.rows("top"),
            "explanation": self.explain(),
        }

    def explain(self) -> list[str]:
        """Why the best configuration wins, in a few sentences with numbers."""
        return explain(self)


def search(
    hardware: Hardware,
    hours: float,
    space: SearchSpace | dict[str, Any] | None = None,
    *,
    law: str | Law = "hoffmann",
    top_k: int = 10,
    aspect_ratio: tuple[float, float] = (20.0, 200.0),
    max_tokens_per_step: float | None = None,
    unique_tokens: float | None = None,
    chips: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """Searches ``space`` (default: several million configurations) for the lowest predicted loss
    after ``hours`` of training on ``chips`` chips of ``hardware`` (with more than one, each
    configuration with its fastest sharding that fits; see ``predict``).

    ``aspect_ratio`` bounds ``d_model / n_layers`` (Kaplan et al. 2020's shape-insensitive range);
    ``max_tokens_per_step`` caps batch x sequence (default: Kaplan's critical batch at the
    configuration's predicted loss). ``progress(done, total)`` is called between chunks.
    Raises ``InfeasibleError`` (with figures) when nothing is feasible.

    Examples
    --------
    >>> r = search(Hardware.load("tpu_v4"), 12, {"d_model": [1024, 2048], "n_layers": [8, 16, 24]})
    >>> r.best["loss"] < 4 and r.feasible > 0
    True
    """
    budget_s = budget_seconds(hours)
    if isinstance(space, dict) or space is None:
        space = make_space(space)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 100_000:
        raise InvalidInputError(f"top = {top_k!r} is invalid: expected an integer in [1, 100000]")
    law_obj = get_law(law)
    hardware.check_chips(chips)
    lo, hi = aspect_ratio
    t0 = time.perf_counter()
    raw = _core.search(
        space,
        hardware.core,
        budget_s,
        law_obj,
        top_k=top_k,
        aspect_ratio_min=float(lo),
        aspect_ratio_max=float(hi),
        max_tokens_per_step=max_tokens_per_step,
        unique_tokens=unique_tokens,
        chips=chips,
        collective_bytes_per_s=hardware.collective_bytes_per_s if chips > 1 else None,
        progress=progress,
    )
    elapsed = time.perf_counter() - t0
    return SearchResult(
        hardware=hardware,
        hours=float(hours),
        law=law_obj,
        law_name=str(law) if not isinstance(law, Law) else repr(law),
        space_size=space.size,
        evaluated=raw["evaluated"],
        feasible=raw["feasible"],
        rejected=dict(raw["rejected"]),
        elapsed_s=elapsed,
        top=raw["top"],
        pareto=raw["pareto"],
        guards={
            "aspect_ratio_min": float(lo),
            "aspect_ratio_max": float(hi),
            "max_tokens_per_step": max_tokens_per_step if max_tokens_per_step is not None else "critical_batch",
        },
        unique_tokens=unique_tokens,
        law_bootstrap=law_bootstrap(law),
        chips=chips,
    )


def _reshaped(best: dict[str, Any], depth_factor: float) -> Architecture | None:
    """The best configuration with depth x ``depth_factor`` and width / sqrt(``depth_factor``)
    (about the same non-embedding parameters), width rounded to whole heads."""
    head_dim = best["head_dim"]
    group = best["n_heads"] // best["n_kv_heads"]
    n_layers = max(1, round(best["n_layers"] * depth_factor))
    unit = head_dim * group
    d_model = max(unit, round(best["d_model"] / math.sqrt(depth_factor) / unit) * unit)
    if n_layers == best["n_layers"] and d_model == best["d_model"]:
        return None
    n_heads = d_model // head_dim
    fields = {k: best[k] for k in ARCH_FIELDS}
    fields.update(
        d_model=d_model,
        n_layers=n_layers,
        n_heads=n_heads,
        n_kv_heads=n_heads // group,
        d_ff=round(best["d_ff"] / best["d_model"] * d_model),
    )
    return Architecture(**fields)


def _explain_sharding(r: SearchResult) -> list[str]:
    """Which sharding won on many chips, what bounds it, and how the others compare."""
    gib = 2**30
    p = predict(r.best_architecture(), r.hardware, r.hours, r.law, r.unique_tokens, r.chips)
    st = p.step
    if st is None:
        return []
    usable = r.hardware.core.usable_hbm_bytes
    hidden = "hidden behind compute" if st["dp_comm_s"] <= st["compute_s"] else "not hidden: it sets the pace"
    lines = [
        f"On {r.chips} chips it trains with {st['sharding']}: {st['memory_bytes'] / gib:.3g} GiB per chip of "
        f"{usable / gib:.3g} GiB usable; each step computes for {st['compute_s']:.4g} s, data-parallel "
        f"communication takes {st['dp_comm_s']:.4g} s ({hidden}) and tensor-parallel all-reduces add "
        f"{st['tp_comm_s']:.4g} s: {st['bound']}-bound."
    ]
    others, indivisible = [], []
    for o in p.shardings:
        if o["sharding"] == st["sharding"]:
            continue
        if not o["divides"]:
            indivisible.append(o["sharding"])
        elif not o["fits_memory"]:
            others.append(f"{o['sharding']} needs {o['memory_bytes'] / gib:.3g} GiB per chip")
        else:
            others.append(
                f"{o['sharding']} steps in {o['step_time_s']:.4g} s ({o['step_time_s'] / st['step_time_s']:.2f}x)"
            )
    if indivisible:
        b = r.best
        others.append(
            f"{', '.join(indivisible)} cannot split it ({b['n_kv_heads']} KV heads, d_ff {b['d_ff']}, batch {b['batch_size']})"
        )
    if others:
        lines.append("Other shardings: " + "; ".join(others) + ".")
    return lines


def explain(r: SearchResult) -> list[str]:
    b = r.best
    hw = r.hardware
    lines = []
    ratio = b["tokens"] / b["params"]
    lines.append(
        f"In {r.hours:g} h the winner runs {b['steps']:.4g} steps of {b['step_time_s']:.4g} s and sees "
        f"{b['tokens']:.3g} tokens: {ratio:.1f} tokens per parameter (Chinchilla's compute-optimal ratio is about 20)."
    )
    if r.chips > 1:
        lines += _explain_sharding(r)
    t_mem, t_cmp, t_fix = hw.step_time_parts(r.best_architecture())
    if r.chips == 1 and (t_mem > 0 or t_cmp > 0):
        bound = "memory traffic (MEMCPY)" if t_mem > t_cmp else "compute (FLOPs)"
        lines.append(
            f"Its step is dominated by {bound}: moving {b['memcpy_bytes_per_step']:.3g} bytes takes {t_mem:.3g} s, "
            f"{b['flops_per_step']:.3g} FLOPs take {t_cmp:.3g} s, fixed overheads {t_fix:.3g} s."
        )
    for label, factor in (("deeper and narrower", 4.0), ("shallower and wider", 0.25)):
        alt = _reshaped(b, factor)
        if alt is None:
            continue
        p = predict(alt, hw, r.hours, r.law, r.unique_tokens, r.chips)
        if p.loss is None or not p.fits_memory:
            why = "does not fit in memory" if not p.fits_memory else "cannot finish one step"
            lines.append(f"A {label} model (d_model {alt.d_model}, {alt.n_layers} layers) {why}.")
            continue
        aspect = alt.d_model / alt.n_layers
        lo, hi = r.guards["aspect_ratio_min"], r.guards["aspect_ratio_max"]
        outside = (
            (
                f" It lies outside the aspect-ratio guard (d_model/n_layers = {aspect:.0f}, accepted {lo:g} to {hi:g}),"
                " where loss is not known to depend on parameter count alone."
            )
            if not lo <= aspect <= hi
            else ""
        )
        lines.append(
            f"A {label} model of similar size (d_model {alt.d_model}, {alt.n_layers} layers, {p.params:.3g} params) "
            f"steps in {p.step_time_s:.3g} s ({p.step_time_s / b['step_time_s']:.2f}x), sees {p.tokens:.3g} tokens "
            f"and reaches loss {p.loss:.4f} vs {b['loss']:.4f}.{outside}"
        )
    if r.unique_tokens:
        epochs = b["tokens"] / r.unique_tokens
        if epochs > 1:
            lines.append(
                f"The plan makes {epochs:.2f} passes over the {r.unique_tokens:.3g} unique tokens: the law counts them as "
                f"{b['effective_tokens']:.3g} fresh tokens (Muennighoff et al. 2023)."
            )
    caveats = predict(r.best_architecture(), hw, r.hours, r.law, r.unique_tokens, r.chips).warnings
    if caveats:
        lines.append("Caveats: " + "; ".join(caveats) + ".")
    if len(r.pareto["index"]) > 1:
        small = _row(r.pareto, 0)
        lines.append(
            f"The Pareto set has {len(r.pareto['index'])} members, from {small['params']:.3g} params (loss "
            f"{small['loss']:.4f}) to the winner's {b['params']:.3g} (loss {b['loss']:.4f})."
        )
    return lines
