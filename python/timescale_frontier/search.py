"""``search``: the configuration with the lowest predicted loss when a budget runs out, the Pareto
set over (loss, parameters) and the top K, from the core's parallel search (over several chip
counts when asked, choosing the best), and ``explain``: why the winner wins, in sentences with
numbers."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from timescale_frontier import _core
from timescale_frontier._core import (
    Architecture,
    Candidate,
    Candidates,
    ChipCountOutcome,
    Rejections,
    ResolvedBudget,
    SearchOutcome,
)
from timescale_frontier._data import as_data
from timescale_frontier._text import binary_bytes, plural
from timescale_frontier.budget import Budget, as_budget
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import Hardware, as_hardware
from timescale_frontier.loss import Law, get_law, law_bootstrap, loss_interval
from timescale_frontier.predict import Chips, Prediction, as_chips, predict
from timescale_frontier.space import SearchSpace, make_space

__all__ = ["SearchResult", "search", "explain", "candidate_row", "default_aspect_ratio", "METRICS"]

#: Metric fields of a candidate, in output order (units in the names).
METRICS = (
    "params",
    "non_embedding_params",
    "flops_per_step",
    "memcpy_bytes_per_step",
    "memory_bytes",
    "step_time_s",
    "steps",
    "tokens",
    "tokens_per_step",
    "effective_tokens",
    "loss",
)


def candidate_row(c: Candidate) -> dict[str, Any]:
    """A candidate as one flat row (JSON object, CSV line): index, architecture fields, metrics,
    and its step's sharding, times and bound."""
    st = c.step
    return {
        "index": c.index,
        **c.architecture.to_dict(),
        **{k: getattr(c, k) for k in METRICS},
        "sharding": st.sharding,
        "dp": st.dp,
        "tp": st.tp,
        "compute_s": st.compute_s,
        "dp_comm_s": st.dp_comm_s,
        "tp_comm_s": st.tp_comm_s,
        "bound": st.bound,
    }


@dataclass(frozen=True)
class SearchResult:
    """What a search found (the core's ``SearchOutcome``) and what it was asked.

    ``best``, ``top[i]`` and ``pareto[i]`` are ``Candidate`` objects (``.architecture``,
    ``.loss``, ``.step_time_s``, ``.step.sharding`` ...); ``top`` and ``pareto`` also give numpy
    columns (``top.loss()``). ``top`` is by increasing loss, ``pareto`` by increasing parameters."""

    hardware: Hardware
    outcome: SearchOutcome = field(repr=False)
    law: Law
    law_name: str
    space_size: int
    elapsed_s: float
    guards: dict[str, Any] = field(default_factory=dict)
    #: Unique training tokens available (``None``: unlimited).
    unique_tokens: float | None = None
    #: Bootstrap refits of a fitted law (empty for built-in laws): prediction intervals.
    law_bootstrap: list[Law] = field(default_factory=list, repr=False)
    #: The space searched (for the explanation's what-ifs).
    space: SearchSpace | None = field(default=None, repr=False)

    @property
    def best(self) -> Candidate:
        return self.outcome.best

    @property
    def top(self) -> Candidates:
        return self.outcome.top

    @property
    def pareto(self) -> Candidates:
        return self.outcome.pareto

    @property
    def pareto_total(self) -> int:
        """Members of the whole Pareto set: ``pareto`` lists at most 10,000 of them, evenly spread."""
        return self.outcome.pareto_total

    @property
    def chips(self) -> int:
        """The chip count the answer trains on (chosen among several when asked)."""
        return self.outcome.chips

    @property
    def budget(self) -> ResolvedBudget:
        """The budget on the chosen chip count."""
        return self.outcome.budget

    @property
    def hours(self) -> float:
        return self.outcome.budget.hours

    @property
    def evaluated(self) -> int:
        return self.outcome.evaluated

    @property
    def feasible(self) -> int:
        return self.outcome.feasible

    @property
    def rejected(self) -> Rejections:
        return self.outcome.rejected

    @property
    def chip_counts(self) -> list[ChipCountOutcome]:
        """Every chip count searched, with its budget and best (or why none)."""
        return self.outcome.chip_counts

    def loss_interval(self, c: Candidate) -> tuple[float, float] | None:
        """95% interval of a candidate's predicted loss over the law's bootstrap refits (None
        without refits)."""
        n = c.params if self.law.params == "total" else c.non_embedding_params
        a = c.architecture
        return loss_interval(self.law_bootstrap, n, c.effective_tokens, (a.d_model, a.n_layers))

    @property
    def step_time_error(self) -> tuple[float, str]:
        """The relative error of the step time on this hardware, and where the figure comes from:
        its calibration's cross-validated median error, or, uncalibrated, what datasheet rooflines
        erred on published training steps (``UNCALIBRATED_STEP_TIME_ERROR``)."""
        return self.hardware.step_time_error

    def loss_resolution(self, c: Candidate) -> float:
        """How much ``c``'s predicted loss moves (nats/token) for the step-time error (first order)."""
        return self.law.loss_change_for_step_time_error(c.effective_tokens, self.step_time_error[0])

    def tied_with_best(self, c: Candidate) -> bool:
        """Whether ``c`` is within the model's own error of the best: their losses differ by less
        than the step-time error moves them (both, independently), or, with a fitted law, ``c``
        comes out better than the best in at least 2.5% of the law's bootstrap refits."""
        b = self.best
        if abs(c.loss - b.loss) <= math.hypot(self.loss_resolution(b), self.loss_resolution(c)):
            return True
        if self.law_bootstrap:

            def n(x: Candidate, law: Law) -> float:
                return x.params if law.params == "total" else x.non_embedding_params

            def loss(x: Candidate, law: Law) -> float:
                a = x.architecture
                return law.loss_of_shape(n(x, law), x.effective_tokens, a.d_model, a.n_layers)

            wins = sum(loss(c, law) < loss(b, law) for law in self.law_bootstrap)
            return wins >= 0.025 * len(self.law_bootstrap)
        return False

    def without_aspect_guard(self) -> SearchResult | None:
        """The same search (space, budget on the chosen chip count, law, batch guard) with the
        aspect-ratio guard opened: what the loss law alone would pick. None when the space is not
        known."""
        if self.space is None:
            return None
        cap = self.guards.get("max_tokens_per_step")
        r = search(
            self.hardware,
            self.hours,
            self.space,
            law=self.law,
            top_k=1,
            aspect_ratio=_core.NO_ASPECT_GUARD,
            max_tokens_per_step=cap if isinstance(cap, int | float) else None,
            unique_tokens=self.unique_tokens,
            chips=self.chips,
        )
        # The same law as this search's: its name (or file) and its bootstrap refits.
        return dataclasses.replace(r, law_name=self.law_name, law_bootstrap=self.law_bootstrap)

    def top_groups(self) -> list[list[Candidate]]:
        """``top`` with equivalent candidates together, in rank order: the same model but for how
        its width is split into heads (e.g. 12 heads of 128 or 24 of 64), with the same parameters
        and predicted losses within 2e-5 of each other, below what the table shows (attention costs
        nearly the same either way)."""
        groups: list[list[Candidate]] = []
        for c in self.top:
            key = _without_head_split(c)
            for g in groups:
                if _without_head_split(g[0]) == key and abs(g[0].loss - c.loss) <= 2e-5 * c.loss:
                    g.append(c)
                    break
            else:
                groups.append([c])
        return groups

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the request, the answer (``best``, ``top``, ``pareto``, ``chip_counts``),
        the explanation. Each ``top`` entry says which distinct model it is (``group``: equal
        numbers differ only in the head split) and whether it is ``tied_with_best`` within the
        model's error."""
        group_of = {c.index: g for g, members in enumerate(self.top_groups(), 1) for c in members}
        return {
            "hardware": self.hardware.name,
            "hardware_file": str(self.hardware.path),
            "calibrated": self.hardware.calibrated,
            "step_time_model": self.hardware.step_time_formula,
            "hours": self.hours,
            "budget_s": self.budget.seconds,
            "budget": as_data(self.budget),
            "law": self.law_name,
            "unique_tokens": self.unique_tokens,
            "chips": self.chips,
            "space_size": self.space_size,
            "evaluated": self.evaluated,
            "feasible": self.feasible,
            "rejected": as_data(self.rejected),
            "guards": self.guards,
            "elapsed_s": self.elapsed_s,
            "best": {**as_data(candidate_row(self.best)), "loss_interval_95": as_data(self.loss_interval(self.best))},
            "pareto": [as_data(candidate_row(c)) for c in self.pareto],
            "pareto_total": self.pareto_total,
            "top": [
                {**as_data(candidate_row(c)), "group": group_of[c.index], "tied_with_best": self.tied_with_best(c)}
                for c in self.top
            ],
            "step_time_error": {"relative": self.step_time_error[0], "source": self.step_time_error[1]},
            "chip_counts": [
                {
                    "chips": c.chips,
                    "hours": c.budget.hours,
                    **(as_data(candidate_row(c.best)) if c.best else {"infeasible": c.infeasible}),
                }
                for c in self.chip_counts
            ]
            if len(self.chip_counts) > 1
            else [],
            "explanation": self.explain(),
        }

    def explain(self) -> list[str]:
        """Why the best configuration wins, in a few sentences with numbers."""
        return explain(self)


def default_aspect_ratio(law: str | Law = "hoffmann") -> tuple[float, float]:
    """The search's default d_model / n_layers guard for ``law`` (the core's): Kaplan et al.
    2020's 20-200 for a law without a shape term; the shapes its term was measured on for one with it."""
    return _core.aspect_ratio_guard(get_law(law))


def search(
    hardware: Hardware | str | os.PathLike[str],
    budget: Budget | float,
    space: SearchSpace | dict[str, Any] | None = None,
    *,
    law: str | Law = "hoffmann",
    top_k: int = 10,
    aspect_ratio: tuple[float, float] | None = None,
    max_tokens_per_step: float | None = None,
    unique_tokens: float | None = None,
    chips: Chips = 1,
    progress: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """Searches ``space`` (default: several million configurations) for the lowest predicted loss
    when ``budget`` (a ``Budget``, or hours) runs out on ``chips`` chips of ``hardware``: one
    count, several, or ``"auto"`` (the answer picks the count; a money budget buys fewer hours on
    more chips). On many chips each configuration gets its fastest sharding that fits.

    ``aspect_ratio`` bounds ``d_model / n_layers`` (default: the law's ``aspect_domain``: Kaplan et
    al. 2020's shape-insensitive 20-200, or for a law with a shape term the shapes it was measured
    on, inside which the term prices shape);
    ``max_tokens_per_step`` caps batch x sequence (default: Kaplan's critical batch at the
    configuration's predicted loss). ``progress(done, total)`` is called between chunks.
    Raises ``InfeasibleError`` (with figures) when nothing is feasible.

    Examples
    --------
    >>> r = search(Hardware.load("tpu_v4"), 12, {"d_model": [1024, 2048], "n_layers": [8, 16, 24]})
    >>> r.best.loss < 4 and r.feasible > 0
    True
    """
    hardware = as_hardware(hardware)
    if isinstance(space, dict) or space is None:
        space = make_space(space)
    law_obj = get_law(law)
    lo, hi = aspect_ratio if aspect_ratio is not None else _core.aspect_ratio_guard(law_obj)
    t0 = time.perf_counter()
    outcome = _core.search(
        space,
        hardware.core,
        as_budget(budget),
        law_obj,
        chips=as_chips(chips),
        top_k=top_k,
        aspect_ratio_min=float(lo),
        aspect_ratio_max=float(hi),
        max_tokens_per_step=max_tokens_per_step,
        unique_tokens=unique_tokens,
        progress=progress,
    )
    return SearchResult(
        hardware=hardware,
        outcome=outcome,
        law=law_obj,
        law_name=str(law) if not isinstance(law, Law) else repr(law),
        space_size=space.size,
        elapsed_s=time.perf_counter() - t0,
        guards={
            "aspect_ratio_min": float(lo),
            "aspect_ratio_max": float(hi),
            "max_tokens_per_step": max_tokens_per_step if max_tokens_per_step is not None else "critical_batch",
        },
        unique_tokens=unique_tokens,
        law_bootstrap=law_bootstrap(law),
        space=space,
    )


def _without_head_split(c: Candidate) -> tuple[Any, ...]:
    fields = {k: v for k, v in c.architecture.to_dict().items() if k not in ("n_heads", "n_kv_heads", "head_dim")}
    kv_group = c.architecture.n_heads // c.architecture.n_kv_heads
    return (tuple(sorted(fields.items())), kv_group, c.params)


def _explain_guards(r: SearchResult) -> list[str]:
    """When the aspect-ratio guard decides the answer (the winner sits near one of its limits),
    what the law alone would pick and by how much; and why the context length is what it is."""
    b = r.best
    a = b.architecture
    lo, hi = r.guards["aspect_ratio_min"], r.guards["aspect_ratio_max"]
    aspect = a.d_model / a.n_layers
    lines = []
    if aspect >= 0.8 * hi or aspect <= 1.25 * lo:
        free = r.without_aspect_guard()
        fb = free.best if free is not None else None
        if fb is not None and fb.loss < b.loss:
            fa = fb.architecture
            lines.append(
                f"The aspect-ratio guard decides this answer: the winner's d_model/n_layers is {aspect:.0f}, near the "
                f"{'upper' if aspect >= 0.8 * hi else 'lower'} limit of {hi if aspect >= 0.8 * hi else lo:g}. Without "
                f"it the law would pick d_model {fa.d_model}, {plural(fa.n_layers, 'layer')} (ratio {fa.d_model / fa.n_layers:.0f}) "
                f"at loss {fb.loss:.4f}, {b.loss - fb.loss:.3g} nats/token lower: a shape outside Kaplan et al. 2020's "
                "tested range, where loss is not known to depend on parameter count alone (--aspect-ratio to widen it)."
            )
    contexts = r.space.axes().get("seq_len", []) if r.space is not None else []
    searched = f"; searched: {', '.join(map(str, contexts))}" if len(contexts) > 1 else ""
    lines.append(
        f"The context length ({a.seq_len}{searched}) is chosen by throughput alone: the loss law depends on "
        "parameters and tokens, not on context, so the context that trains the most tokens in the budget wins; "
        "search --seq-len with the context your task needs."
    )
    return lines


def _explain_sharding(r: SearchResult) -> list[str]:
    """Which sharding won on many chips, what bounds it, and how the others compare."""
    p = predict(r.best.architecture, r.hardware, r.hours, law=r.law, unique_tokens=r.unique_tokens, chips=r.chips)
    st = p.step
    hidden = "hidden behind compute" if st.dp_comm_s <= st.compute_s else "not hidden: it sets the pace"
    dp = (
        f"data-parallel communication takes {st.dp_comm_s:.4g} s ({hidden})"
        if st.dp > 1
        else "there is no data-parallel communication"
    )
    tp = f"tensor-parallel all-reduces add {st.tp_comm_s:.4g} s" if st.tp > 1 else "no tensor-parallel all-reduces"
    lines = [
        f"On {r.chips} chips it trains with {st.sharding}: {binary_bytes(st.memory_bytes)} per chip of "
        f"{binary_bytes(r.hardware.usable_hbm_bytes)} usable; each step computes for {st.compute_s:.4g} s, "
        f"{dp} and {tp}: {st.bound}-bound."
    ]
    others, indivisible = [], []
    for o in p.shardings:
        if o.sharding == st.sharding:
            continue
        if o.step is None:
            indivisible.append(o.sharding)
        elif not o.fits_memory:
            others.append(f"{o.sharding} needs {binary_bytes(o.step.memory_bytes)} per chip")
        else:
            others.append(
                f"{o.sharding} steps in {o.step.step_time_s:.4g} s ({o.step.step_time_s / st.step_time_s:.2f}x)"
            )
    if indivisible:
        a = r.best.architecture
        others.append(
            f"{', '.join(indivisible)} cannot split it ({a.n_kv_heads} KV heads, d_ff {a.d_ff}, batch {a.batch_size})"
        )
    if others:
        lines.append("Other shardings: " + "; ".join(others) + ".")
    return lines


def _best_memory_plan(alt: Architecture, r: SearchResult) -> Prediction:
    """``alt`` predicted as the search would run it: with the recomputation and micro-batch of the
    space (the winner's when the space is not known) that fit and reach the lowest loss; when none
    fits, the one needing the least memory. Raises ``InvalidInputError`` when no sharding of the
    chips divides it."""
    axes = r.space.axes() if r.space is not None else {}
    a = r.best.architecture
    # The winner's plan first, then the space's others (each predicted once).
    options = dict.fromkeys(
        [(a.recompute, a.micro_batch)]
        + [(rc, mb) for rc in axes.get("recompute", [a.recompute]) for mb in axes.get("micro_batch", [a.micro_batch])]
    )

    def rank(p: Prediction) -> tuple[int, float]:
        if p.fits_memory and p.loss is not None:
            return (0, p.loss)  # runs: the lowest loss
        return (1, p.step_time_s) if p.fits_memory else (2, p.memory_bytes)  # else the nearest miss

    runs: list[Prediction] = []
    error: InvalidInputError | None = None
    for rc, mb in options:
        try:
            candidate = Architecture(**(alt.to_dict() | {"recompute": rc, "micro_batch": mb}))
            runs.append(
                predict(candidate, r.hardware, r.hours, law=r.law, unique_tokens=r.unique_tokens, chips=r.chips)
            )
        except InvalidInputError as e:  # this micro-batch does not divide the batch, or no sharding does
            error = error or e
    if not runs:
        raise error or InvalidInputError(f"no way to run d_model {alt.d_model}, {plural(alt.n_layers, 'layer')}")
    return min(runs, key=rank)


def _explain_memory_plan(r: SearchResult) -> list[str]:
    """Why the winner runs with (or without) activation recomputation and micro-steps: what the
    plan without them would need, or what they would cost."""
    b = r.best
    a = b.architecture
    st = b.step
    per_chip = a.batch_size // st.dp
    micro = a.micro_batch or per_chip
    seqs = f"{per_chip} sequence{'s' if per_chip != 1 else ''}"
    how = (
        f"It runs {seqs} per chip in {st.micro_steps:.0f} micro-steps of {micro}"
        if st.micro_steps > 1
        else f"It runs its {seqs} per chip in one micro-step (no gradient accumulation)"
    )
    how += f", with {a.recompute} activation recomputation" if a.recompute != "none" else ", without recomputation"
    usable = r.hardware.usable_hbm_bytes
    plain = a.to_dict() | {"recompute": "none", "micro_batch": None}
    if a.recompute == "none" and a.micro_batch is None:
        full = predict(
            Architecture(**(plain | {"recompute": "full"})),
            r.hardware,
            r.hours,
            law=r.law,
            unique_tokens=r.unique_tokens,
            chips=r.chips,
        )
        fits = f"{how}: it fits ({binary_bytes(b.memory_bytes)} of {binary_bytes(usable)} per chip)"
        if full.memory_bytes >= b.memory_bytes:  # tiny models: the recomputed layer's buffers outweigh the savings
            return [f"{fits}; full recomputation would not save memory here."]
        return [
            f"{fits}; full recomputation would cut memory to {binary_bytes(full.memory_bytes)} but slow each step "
            f"{full.step_time_s / b.step_time_s:.2f}x."
        ]
    p = predict(Architecture(**plain), r.hardware, r.hours, law=r.law, unique_tokens=r.unique_tokens, chips=r.chips)
    if not p.fits_memory:
        why = f"without them it would need {binary_bytes(p.memory_bytes)} per chip of {binary_bytes(usable)} usable"
    else:
        why = (
            f"without them it would step in {p.step_time_s:.4g} s ({p.step_time_s / b.step_time_s:.2f}x) and reach "
            f"loss {p.loss:.4f}"
            if p.loss is not None
            else "without them not one step would fit the budget"
        )
    return [f"{how}: {why}; with them it needs {binary_bytes(b.memory_bytes)}."]


def explain(r: SearchResult) -> list[str]:
    """Why the best configuration of ``r`` wins: its steps and tokens, what bounds its step, how a
    deeper-narrower and a wider-shallower model of similar size would do, caveats, the Pareto set."""
    b = r.best
    arch: Architecture = b.architecture
    n_law = b.params if r.law.params == "total" else b.non_embedding_params
    n_opt, d_opt = r.law.compute_optimal(6 * n_law * b.effective_tokens)
    lines = [
        f"In {r.hours:.4g} h the winner runs {b.steps:.4g} steps of {b.step_time_s:.4g} s and sees "
        f"{b.tokens:.3g} tokens: {b.tokens / b.params:.1f} tokens per parameter. For the same FLOPs "
        f"(6 N D = {6 * n_law * b.effective_tokens:.3g}) the law's own compute-optimal split is {n_opt:.3g} parameters "
        f"and {d_opt:.3g} tokens ({d_opt / n_opt:.0f} per parameter): the time budget, through the step time, "
        "not the FLOPs, sets the size."
    ]
    if r.chips > 1:
        lines += _explain_sharding(r)
    parts = b.step.parts
    if r.chips == 1 and (parts.memory_s > 0 or parts.compute_s > 0):
        bound = "memory traffic (MEMCPY)" if parts.memory_s > parts.compute_s else "compute (FLOPs)"
        w = b.step.work
        # The FLOPs the step time prices are the ones the chip executes (causal attention, no
        # embedding matmul), not the model FLOPs of `flops_per_step` (Chinchilla's count, for MFU).
        lines.append(
            f"Its step is dominated by {bound}: moving {b.memcpy_bytes_per_step:.3g} bytes takes {parts.memory_s:.3g} s, "
            f"computing takes {parts.compute_s:.3g} s (it executes {w.flops:.3g} FLOPs, "
            f"{w.tensor_flops:.3g} of them in matmuls and attention), fixed overheads "
            f"{parts.fixed_s:.3g} s."
        )
    lines += _explain_memory_plan(r)
    usable = r.hardware.usable_hbm_bytes
    if r.chips == 1 and b.memory_bytes >= 0.85 * usable and r.hardware.max_chips > 1:
        lines.append(
            f"It fills one chip ({binary_bytes(b.memory_bytes)} of {binary_bytes(usable)} usable): larger models need "
            "more chips; compare with --chips N, or --chips auto."
        )
    lo, hi = r.guards["aspect_ratio_min"], r.guards["aspect_ratio_max"]
    if r.law.shape is not None:
        c, opt, _, _ = r.law.shape
        lines.append(
            f"The law prices shape (a term fitted from runs of different shapes: c = {c:.3g} nats/token per (ln aspect)^2, "
            f"best d_model/n_layers {opt:.3g}): this answer's d_model/n_layers of {arch.d_model / arch.n_layers:.3g} "
            f"costs {r.law.shape_term(arch.d_model, arch.n_layers):.4f} nats/token of its loss."
        )
    for label, factor in (("deeper and narrower", 4.0), ("shallower and wider", 0.25)):
        alt = arch.reshaped(factor)
        if alt is None:
            continue
        try:
            p = _best_memory_plan(alt, r)
        except InvalidInputError:
            # No sharding of the chips divides the reshaped model: not a candidate, said so.
            lines.append(
                f"A {label} model (d_model {alt.d_model}, {plural(alt.n_layers, 'layer')}, {alt.n_kv_heads} KV heads, "
                f"d_ff {alt.d_ff}) cannot be split over {r.chips} chips."
            )
            continue
        if p.loss is None or not p.fits_memory:
            why = (
                f"does not fit in memory ({binary_bytes(p.memory_bytes)} per chip at least, with "
                + (
                    "the recomputation and micro-batches of the space that divide its batch)"
                    if r.space is not None
                    else "the winner's recomputation and micro-batch)"
                )
                if not p.fits_memory
                else "cannot finish one step"
            )
            lines.append(f"A {label} model (d_model {alt.d_model}, {plural(alt.n_layers, 'layer')}) {why}.")
            continue
        plan = ""
        if (p.architecture.recompute, p.architecture.micro_batch) != (arch.recompute, arch.micro_batch):
            rc, mb = p.architecture.recompute, p.architecture.micro_batch
            how_run = [f"{rc} recomputation"] * (rc != "none") + [f"micro-batches of {mb}"] * (mb is not None)
            plan = f" (best with {' and '.join(how_run) or 'neither recomputation nor micro-batches'})"
        aspect = alt.d_model / alt.n_layers
        outside = (
            f" It lies outside the aspect-ratio guard (d_model/n_layers = {aspect:.0f}, accepted {lo:g} to {hi:g}),"
            " where loss is not known to depend on parameter count alone."
            if not lo <= aspect <= hi
            else ""
        )
        lines.append(
            f"A {label} model of similar size (d_model {alt.d_model}, {plural(alt.n_layers, 'layer')}, {p.params:.3g} params)"
            f"{plan} steps in {p.step_time_s:.3g} s ({p.step_time_s / b.step_time_s:.2f}x), sees {p.tokens:.3g} tokens "
            f"and reaches loss {p.loss:.4f} vs {b.loss:.4f}.{outside}"
        )
    lines += _explain_guards(r)
    if r.unique_tokens:
        epochs = b.tokens / r.unique_tokens
        if epochs > 1:
            lines.append(
                f"The plan makes {epochs:.2f} passes over the {r.unique_tokens:.3g} unique tokens: the law counts them as "
                f"{b.effective_tokens:.3g} fresh tokens (Muennighoff et al. 2023)."
            )
    caveats = predict(arch, r.hardware, r.hours, law=r.law, unique_tokens=r.unique_tokens, chips=r.chips).warnings
    if caveats:
        lines.append("Caveats: " + "; ".join(caveats) + ".")
    if len(r.pareto) > 1:
        small = r.pareto[0]
        lines.append(
            f"The Pareto set has {len(r.pareto)} members, from {small.params:.3g} params (loss "
            f"{small.loss:.4f}) to the winner's {b.params:.3g} (loss {b.loss:.4f})."
        )
    return lines
