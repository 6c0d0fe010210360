"""``search``: the configuration with the lowest predicted loss when a budget runs out, the Pareto
set over (loss, parameters) and the top K, from the core's parallel search (over several chip
counts when asked, choosing the best), and ``explain``: why the winner wins, in sentences with
numbers."""

from __future__ import annotations

import bisect
import dataclasses
import functools
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
    ShardedStep,
)
from timescale_frontier._data import as_data
from timescale_frontier._defaults import TOP_K
from timescale_frontier._text import binary_bytes, count, plural, si
from timescale_frontier.budget import Budget, as_budget
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import Hardware, as_hardware
from timescale_frontier.loss import DEFAULT_LAW, Law, LossTerms, get_law, law_bootstrap, loss_interval
from timescale_frontier.prediction import Chips, Prediction, as_chips, predict
from timescale_frontier.space import SearchSpace, make_space

__all__ = ["SearchResult", "Edge", "search", "explain", "candidate_row", "default_aspect_ratio", "METRICS"]

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
        return loss_interval(self.law_bootstrap, c.architecture, c.tokens, self.unique_tokens)

    @property
    def step_time_error(self) -> tuple[float, str]:
        """The relative error of the step time on this hardware, and where the figure comes from:
        its calibration's cross-validated median error, or, uncalibrated, what datasheet rooflines
        erred on published training steps (``UNCALIBRATED_STEP_TIME_ERROR``)."""
        return self.hardware.step_time_error

    def step_time_error_of(self, c: Candidate) -> float:
        """``c``'s own relative step-time error: the file's, widened where its equally good
        calibrated models disagree on ``c`` (``Hardware.step_time_error_for``; on many chips, the
        file's)."""
        if self.chips > 1:
            return self.step_time_error[0]
        return self.hardware.step_time_error_for(c.architecture)

    def loss_resolution(self, c: Candidate) -> float:
        """How much ``c``'s predicted loss moves (nats/token) for its step-time error (first order;
        ``step_time_error_of``)."""
        return self.law.loss_change_for_step_time_error(c.effective_tokens, self.step_time_error_of(c))

    def tie_reason(self, c: Candidate) -> str | None:
        """Why ``c`` is not ranked against the best, in words, or None when the model ranks them
        (the core's ``tie``): their losses differ by less than the step-time error moves them, a
        published alternative of the loss model (the other fit of Chinchilla's data, the other
        Gemstones shape fits, the context, vocabulary and batch terms at the ends of their
        uncertainty) orders them the other way, or, with a fitted law, ``c`` comes out better
        than the best in at least 2.5% of the law's bootstrap refits."""
        b = self.best
        if c.index == b.index:
            return None
        err = self.step_time_error[0]
        reason = _core.tie(self.law, b.architecture, b.tokens, err, c.architecture, c.tokens, err, self.unique_tokens)
        if reason is None and self.law_bootstrap:
            u = self.unique_tokens
            wins = sum(
                law.loss_of(c.architecture, c.tokens, u) < law.loss_of(b.architecture, b.tokens, u)
                for law in self.law_bootstrap
            )
            if wins >= 0.025 * len(self.law_bootstrap):
                reason = f"better in {wins} of the law's {len(self.law_bootstrap)} bootstrap refits"
        return reason

    def tied_with_best(self, c: Candidate) -> bool:
        """Whether ``c`` is within the model's own uncertainty of the best (see ``tie_reason``); the
        best is tied with itself."""
        return c.index == self.best.index or self.tie_reason(c) is not None

    def without_aspect_guard(self) -> SearchResult | None:
        """The search (budget on the chosen chip count, law, batch guard) with the aspect-ratio guard
        opened, over the space's widths, depths, head sizes, groupings, MLP ratios, batches and
        memory plans at the winner's other settings (MLP, attention, tying, vocabulary, context):
        what the loss law alone would pick for the shape, at about a tenth of the search's work.
        None when the space is not known."""
        if self.space is None:
            return None
        a = self.best.architecture
        axes = self.space.axes()
        kept = ("d_model", "n_layers", "head_dim", "kv_group", "ffn_mult", "batch_size", "recompute", "micro_batch")
        fixed = {
            "mlp": [a.mlp],
            "attention": [a.attention],
            "tied_embeddings": [a.tied_embeddings],
            "vocab_size": [a.vocab_size],
            "seq_len": [a.seq_len],
        }
        space = make_space({**{k: axes[k] for k in kept if k in axes}, **fixed})
        cap = self.guards.get("max_tokens_per_step")
        r = search(
            self.hardware,
            self.hours,
            space,
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
        # The groups of each model without its head split: one look-up per candidate (linear in K).
        by_key: dict[tuple[Any, ...], list[list[Candidate]]] = {}
        for c in self.top:
            same = by_key.setdefault(_without_head_split(c), [])
            for g in same:
                if abs(g[0].loss - c.loss) <= 2e-5 * c.loss:
                    g.append(c)
                    break
            else:
                same.append([c])
                groups.append(same[-1])
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
            "loss_terms_on": list(self.law.terms),
            "eval_context": self.law.eval_context,
            "unique_tokens": self.unique_tokens,
            "chips": self.chips,
            "space_size": self.space_size,
            "evaluated": self.evaluated,
            "feasible": self.feasible,
            "rejected": as_data(self.rejected),
            "guards": self.guards,
            "elapsed_s": self.elapsed_s,
            "explain_s": self.explain_s,
            "best": {
                **as_data(candidate_row(self.best)),
                "loss_interval_95": as_data(self.loss_interval(self.best)),
                "loss_terms": self.law.loss_terms(
                    self.best.architecture, self.best.tokens, self.unique_tokens
                ).to_dict(),
            },
            "pareto": [as_data(candidate_row(c)) for c in self.pareto],
            "pareto_total": self.pareto_total,
            "top": [
                {
                    **as_data(candidate_row(c)),
                    "group": group_of[c.index],
                    "tied_with_best": c.index == self.best.index or reason is not None,
                    "tie_reason": reason,
                }
                for c, reason in ((c, self.tie_reason(c)) for c in self.top)
            ],
            "step_time_error": {"relative": self.step_time_error[0], "source": self.step_time_error[1]},
            "chip_counts": [
                {
                    "chips": c.chips,
                    "hours": c.budget.hours,
                    "chip_hours": c.chips * c.budget.hours,
                    "chosen": c.chips == self.chips,
                    "lowest_loss": c.lowest,
                    "tie_reason": c.tie,
                    **(as_data(candidate_row(c.best)) if c.best else {"infeasible": c.infeasible}),
                }
                for c in self.chip_counts
            ]
            if len(self.chip_counts) > 1
            else [],
            "explanation": self.explain(),
        }

    @functools.cached_property
    def space_axes(self) -> dict[str, list[Any]]:
        """The searched space's axis values (empty when the space is not known); read once, since an
        axis may hold up to a million values."""
        return self.space.axes() if self.space is not None else {}

    @functools.cached_property
    def winner(self) -> Prediction:
        """The best configuration predicted under this search's settings (its loss terms, flags
        and warnings); computed once."""
        return _predict_like(self, self.best.architecture)

    @property
    def outside_the_law(self) -> str | None:
        """When the answer's loss means nothing (above a uniform guess over its vocabulary: the
        budget is far outside what the law was fitted on), why, in words; else None."""
        w = self.winner
        if "loss_above_uniform" not in w.flags:
            return None
        lo, hi = self.law.fit_tokens
        return (
            f"its predicted loss is above a uniform guess over its vocabulary (ln {self.best.architecture.vocab_size:,} "
            f"= {math.log(self.best.architecture.vocab_size):.2f} nats): this budget trains {count(self.best.tokens)} tokens, "
            f"far below the {count(lo)} to {count(hi)} the law was fitted on, so the law says nothing here; a budget this "
            "small does not train a language model on this hardware"
        )

    def explain(self) -> list[str]:
        """Why the best configuration wins, in a few sentences with numbers (computed once)."""
        return list(self._explanation)

    @functools.cached_property
    def _explanation(self) -> tuple[str, ...]:
        t0 = time.perf_counter()
        lines = tuple(explain(self))
        self.__dict__["_explain_s"] = time.perf_counter() - t0  # frozen: beside the cached value
        return lines

    @property
    def explain_s(self) -> float:
        """Seconds the explanation took (its predictions and, when the aspect-ratio guard decides,
        a second search without it: ``explained_by_search``); computed with it."""
        self._explanation  # noqa: B018 - computes it once
        return float(self.__dict__["_explain_s"])

    @property
    def explained_by_search(self) -> bool:
        """Whether the explanation ran a second search (the space without the aspect-ratio guard)."""
        self._explanation  # noqa: B018
        return bool(self.__dict__.get("_reran", False))

    def edges(self) -> list[Edge]:
        """Each axis edge (depth, width, context, batch) the answer sits on, with what the value
        beyond it would do and what keeps the answer there (``Edge.bind``: "axis" when the edge
        itself decides, i.e. the space is too narrow)."""
        return _edges(self, self.winner)


def default_aspect_ratio(law: str | Law = DEFAULT_LAW) -> tuple[float, float]:
    """The search's default d_model / n_layers guard for ``law`` (the core's): every shape for a
    law with a shape term (the term prices shape), Kaplan et al. 2020's 20-200 for one without."""
    return _core.aspect_ratio_guard(get_law(law))


def search(
    hardware: Hardware | str | os.PathLike[str],
    budget: Budget | float,
    space: SearchSpace | dict[str, Any] | None = None,
    *,
    law: str | Law = DEFAULT_LAW,
    loss_terms: LossTerms = None,
    eval_context: float | None = None,
    top_k: int = TOP_K,
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
    law_obj = get_law(law, loss_terms=loss_terms, eval_context=eval_context)
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


def _predict_like(r: SearchResult, arch: Architecture) -> Prediction:
    """``arch`` predicted under ``r``'s hardware, budget, law, data and chips."""
    return predict(arch, r.hardware, r.hours, law=r.law, unique_tokens=r.unique_tokens, chips=r.chips)


def _loss_unit(r: SearchResult) -> str:
    v = r.law.reference_vocab
    return f"nats per token of the law's {v:,.0f}-token reference vocabulary" if v else "nats/token"


def _explain_loss(r: SearchResult, winner: Prediction) -> list[str]:
    """The winner's loss term by term, with each term's source."""
    t = winner.loss_terms
    if t is None:
        return []
    law = r.law
    parts = [f"E {t.irreducible:.4f}", f"parameters {t.params:.4f}", f"data {t.data:.4f}"]
    notes = []
    a = winner.architecture
    if law.shape_kind is not None:
        parts.append(f"shape {t.shape:.4f}")
        best = law.best_shape(a.d_model, a.n_layers)
        if best is not None:
            source = "Gemstones' width-depth law" if law.shape_kind == "gemstones" else "the fitted shape term"
            notes.append(
                f"the shape term ({source}) prices the best shape of its size at about d_model {best[0]:.0f} x "
                f"{best[1]:.1f} layers (d_model/n_layers {best[0] / best[1]:.0f})"
            )
    if "vocab" in law.terms:
        parts.append(f"vocabulary {t.vocab:+.4f}")
    if "context" in law.terms:
        parts.append(f"context {t.context:.4f}")
    if "batch" in law.terms:
        notes.append(
            f"its {a.seq_len * a.batch_size:,} tokens per step are {a.seq_len * a.batch_size / t.optimal_batch_tokens:.2g}x "
            f"Step Law's optimal batch for {count(winner.tokens)} tokens ({t.optimal_batch_tokens:,.0f}): a token "
            f"efficiency of {t.batch_efficiency:.3f}, {t.batch:.4f} of the data term"
        )
    if t.repetition > 0:
        notes.append(
            f"repeated data costs {t.repetition:.4f} of the parameter and data terms (Muennighoff et al. 2023)"
        )
    bits = f" ({t.bits_per_char:.3f} bits per character)" if t.bits_per_char > 0 else ""
    line = f"Its predicted loss, {t.loss:.4f} {_loss_unit(r)}{bits}, is " + " + ".join(parts)
    return [line + (f"; {'; '.join(notes)}." if notes else ".")]


def _neighbour(a: Architecture, **changes: Any) -> Architecture | None:
    """``a`` with ``changes``, or None when that is not an architecture (e.g. heads that do not
    divide the width)."""
    fields = a.to_dict() | changes
    if "d_model" in changes:  # the same head size, grouping and MLP ratio at the new width
        d = changes["d_model"]
        group = a.n_heads // a.n_kv_heads
        if d % a.head_dim or (d // a.head_dim) % group:
            return None
        fields |= {
            "n_heads": d // a.head_dim,
            "n_kv_heads": d // a.head_dim // group,
            "d_ff": max(64, round(a.d_ff * d / a.d_model / 64) * 64),
        }
    try:
        return Architecture(**fields)
    except InvalidInputError:
        return None


def _compare(r: SearchResult, winner: Prediction, alt: Architecture) -> tuple[Prediction | None, str]:
    """``alt`` as the search would run it, and what it changes against the winner, in words: the
    terms that differ most (tokens, shape, context, batch), or why it cannot run."""
    try:
        p = _best_memory_plan(alt, r)
    except InvalidInputError:
        return None, f"cannot be split over {r.chips} chips"
    if not p.fits_memory:
        return p, f"does not fit in memory ({binary_bytes(p.memory_bytes)} per chip at least)"
    if p.loss is None or p.loss_terms is None or winner.loss_terms is None:
        return p, "cannot finish one step in the budget"
    w, o = winner.loss_terms, p.loss_terms
    deltas = {
        "its shape": o.shape - w.shape,
        "its context": o.context - w.context,
        "its vocabulary": o.vocab - w.vocab,
        "its parameters": o.params - w.params,
        "its tokens": (o.data - o.batch) - (w.data - w.batch),
        "its batch's token efficiency": o.batch - w.batch,
    }
    moved = [(k, v) for k, v in sorted(deltas.items(), key=lambda kv: -abs(kv[1])) if abs(v) >= 5e-4][:3]
    why = ", ".join(f"{k} {v:+.4f}" for k, v in moved) or "no term moves by 5e-4"
    speed = f"steps {p.step_time_s / winner.step_time_s:.2f}x as long and trains {count(p.tokens)} tokens"
    return p, f"{speed}: loss {p.loss:.4f} vs {winner.loss:.4f} ({why})"


@dataclass(frozen=True)
class Edge:
    """The answer on an edge of a search axis, and what the value beyond the edge would do."""

    axis: str
    #: "min" or "max".
    side: str
    value: int
    #: The value beyond the edge (None: nothing lies beyond, e.g. 1 layer).
    beyond: int | None
    #: Its predicted loss (None: it cannot run).
    beyond_loss: float | None
    #: What keeps the answer at the edge: "memory", "budget" (no step fits), "split" (no sharding
    #: divides it), "loss" (it runs and is worse: the evidence, not the edge, decides), "none"
    #: (nothing lies beyond), or "axis" (it would be better: the edge decides).
    bind: str
    why: str


def _edges(r: SearchResult, winner: Prediction) -> list[Edge]:
    """Each axis edge the answer sits on (depth, width, context, batch), with the value beyond it."""
    if r.space is None or winner.loss is None:
        return []
    a = r.best.architecture
    axes = r.space_axes
    out = []
    for axis in ("n_layers", "d_model", "seq_len", "batch_size"):
        values = sorted(axes.get(axis, []))
        if len(values) < 2:
            continue
        value = getattr(a, axis)
        for side, edge, beyond in (("min", values[0], values[0] // 2), ("max", values[-1], values[-1] * 2)):
            if value != edge:
                continue
            if axis == "n_layers":
                beyond = edge - 1 if side == "min" else edge + 1
            if axis == "d_model":
                beyond = edge - a.head_dim if side == "min" else edge + a.head_dim
            if beyond < 1:
                out.append(Edge(axis, side, value, None, None, "none", "nothing lies beyond"))
                continue
            changes: dict[str, Any] = {axis: beyond}
            if axis == "seq_len":  # the same tokens per step
                changes["batch_size"] = max(1, round(a.batch_size * a.seq_len / beyond))
            alt = _neighbour(a, **changes)
            if alt is None:
                out.append(
                    Edge(axis, side, value, beyond, None, "none", f"{beyond} makes no model with this head size")
                )
                continue
            p, why = _compare(r, winner, alt)
            if p is None:
                bind = "split"
            elif not p.fits_memory:
                bind = "memory"
            elif p.loss is None:
                bind = "budget"
            elif p.loss < winner.loss:
                bind = "axis"
            else:
                bind = "loss"
            out.append(Edge(axis, side, value, beyond, p.loss if p is not None else None, bind, why))
    return out


_AXIS_WORDS = {"n_layers": "depth", "d_model": "width", "seq_len": "context", "batch_size": "batch"}
_AXIS_FLAGS = {"n_layers": "--n-layers", "d_model": "--d-model", "seq_len": "--seq-len", "batch_size": "--batch-size"}


def _explain_edges(edges: list[Edge]) -> list[str]:
    lines = []
    for e in edges:
        where = f"The answer's {_AXIS_WORDS[e.axis]} ({e.value}) is the {'smallest' if e.side == 'min' else 'largest'} searched"
        if e.bind == "axis" and e.side == "min":
            lines.append(
                f"{where}, and a smaller one would do better: {e.beyond} {e.why}. The budget is too small for this "
                f"space: widen {_AXIS_FLAGS[e.axis]} below {e.value} to search the models it can train."
            )
        elif e.bind == "axis":
            lines.append(
                f"{where}, and the edge decides it: {e.beyond} {e.why}. Widen {_AXIS_FLAGS[e.axis]} to search beyond it."
            )
        elif e.bind == "none":
            lines.append(f"{where}: {e.why}.")
        else:
            binds = {
                "memory": "memory binds",
                "budget": "the budget binds",
                "split": "the chips bind",
                "loss": "the loss",
            }
            lines.append(f"{where}, but not because of the edge ({binds[e.bind]} decides): {e.beyond} {e.why}.")
    return lines


def _explain_context(r: SearchResult, winner: Prediction) -> list[str]:
    """Why the context length is what it is: the evaluation context and the curve that charges a
    shorter one, against what each other searched context would train."""
    a = r.best.architecture
    contexts = sorted(r.space_axes.get("seq_len", []))
    eval_context = r.law.eval_context
    if eval_context is None:
        searched = f"; searched: {_some(contexts)}" if len(contexts) > 1 else ""
        return [
            f"The context length ({a.seq_len}{searched}) is chosen by throughput alone: this law has no context term "
            "(--loss-terms without context), so the context that trains the most tokens in the budget wins."
        ]
    lines = [
        f"The context length is {a.seq_len}; the loss is evaluated at {eval_context:,.0f} tokens of context "
        "(--eval-context; default the law's fit context), and a shorter training context is charged by Xiong et al. "
        f"2023's context curve ({winner.loss_terms.context if winner.loss_terms else 0:.4f} nats here)."
    ]
    # The nearest contexts on either side, at most MAX_EXPLAINED_CONTEXTS: an axis may hold a
    # million values, and each one priced is a prediction per memory plan.
    nearest = _nearest(contexts, a.seq_len, MAX_EXPLAINED_CONTEXTS)
    others = []
    for s in nearest:
        alt = _neighbour(a, seq_len=s, batch_size=max(1, round(a.batch_size * a.seq_len / s)))
        if alt is None:
            continue
        _, why = _compare(r, winner, alt)
        others.append(f"at {s} it {why}")
    if others:
        n_other = len(contexts) - (a.seq_len in contexts)
        which = f"; the {len(nearest)} nearest of the {n_other:,} others" if len(nearest) < n_other else ""
        lines.append(f"Other contexts (the same tokens per step{which}): " + "; ".join(others) + ".")
    return lines


#: Most other contexts the explanation prices (the nearest to the answer's).
MAX_EXPLAINED_CONTEXTS = 8


def _nearest(values: list[int], value: int, n: int) -> list[int]:
    """The ``n`` values of sorted ``values`` nearest to ``value`` (``value`` itself left out), in order."""
    i = bisect.bisect_left(values, value)
    lo, hi = i, i + 1 if i < len(values) and values[i] == value else i
    out: list[int] = []
    while len(out) < n and (lo > 0 or hi < len(values)):
        if lo > 0 and (hi >= len(values) or value - values[lo - 1] <= values[hi] - value):
            lo -= 1
            out.append(values[lo])
        else:
            out.append(values[hi])
            hi += 1
    return sorted(out)


def _some(values: list[Any], n: int = 12) -> str:
    """``values`` comma-separated; the first and last ``n // 2`` only, when there are more than ``n``."""
    if len(values) <= n:
        return ", ".join(map(str, values))
    half = n // 2
    return f"{', '.join(map(str, values[:half]))}, ..., {', '.join(map(str, values[-half:]))} ({len(values):,} in all)"


def _explain_batch(r: SearchResult, winner: Prediction) -> list[str]:
    """Why the batch is what it is: the neighbouring batches of the space."""
    a = r.best.architecture
    batches = sorted(r.space_axes.get("batch_size", []))
    if "batch" not in r.law.terms or len(batches) < 2:
        return []
    i = batches.index(a.batch_size)
    others = []
    for j in (i - 1, i + 1):
        if 0 <= j < len(batches):
            alt = _neighbour(a, batch_size=batches[j], micro_batch=None)
            if alt is not None:
                _, why = _compare(r, winner, alt)
                others.append(f"{batches[j]} sequences {why}")
    lines = ["Its batch is a trade-off (Step Law's token efficiency against step time): " + "; ".join(others) + "."]
    fixed = r.best.step.parts.fixed_s
    if fixed > 0:
        # The per-step overhead is paid per step whatever the batch: on a calibrated file it is a
        # fitted term, and where it is large (TPU v5p's 1.23 s) it is what pushes batches up.
        how = "calibrated" if r.hardware.calibrated else "uncalibrated"
        lines.append(
            f"Its {r.best.step_time_s:.4g} s step includes the file's fixed {fixed:.4g} s per step (its per-step "
            f"overhead, {how}), paid whatever the batch: a larger batch spreads it over more tokens."
        )
    return lines


def _explain_vocab(r: SearchResult, winner: Prediction) -> list[str]:
    """The vocabulary and the tying of embeddings: what the law credits them with."""
    a = r.best.architecture
    axes = r.space_axes
    lines = []
    ref = r.law.reference_vocab
    if ref is not None and (len(axes.get("vocab_size", [])) > 1 or a.vocab_size != ref):
        opt = Law.tao_optimal_vocab(r.best.non_embedding_params)
        ratio = r.law.reference_ratio(a.vocab_size)
        lines.append(
            f"Its vocabulary is {a.vocab_size:,} tokens; Tao et al. 2024's optimum for {r.best.non_embedding_params:.3g} "
            f"non-vocabulary parameters is about {opt:,.0f}. Losses are per token of the law's {ref:,.0f}-token reference "
            f"vocabulary, so vocabularies compare: one of its tokens is {ratio:.3f} reference tokens of text (Tao et al.'s "
            "tokens per character); a larger vocabulary buys text per token and embedding capacity (Tao's term) and costs "
            "output-layer FLOPs and memory in the step time."
        )
    if len(axes.get("tied_embeddings", [])) > 1 and ref is not None:
        other = _neighbour(a, tied_embeddings=not a.tied_embeddings)
        if other is not None:
            _, why = _compare(r, winner, other)
            lines.append(
                f"Its embeddings are {'tied' if a.tied_embeddings else 'untied'}: the law counts one {ref:,.0f} x d_model "
                "embedding matrix whatever the tying (as Hoffmann et al. 2022's model sizes do; Tao et al. count one "
                "too), so tying changes the loss only through the step time; "
                f"{'untied' if a.tied_embeddings else 'tied'} it {why}."
            )
    return lines


def _explain_guards(r: SearchResult) -> list[str]:
    """When an aspect-ratio guard (a law without a shape term, or the user's) decides the answer
    (the winner sits near one of its limits), what the law alone would pick and by how much."""
    b = r.best
    a = b.architecture
    lo, hi = r.guards["aspect_ratio_min"], r.guards["aspect_ratio_max"]
    if (lo, hi) == tuple(_core.NO_ASPECT_GUARD):
        return []
    aspect = a.d_model / a.n_layers
    lines = []
    if aspect >= 0.8 * hi or aspect <= 1.25 * lo:
        free = r.without_aspect_guard()
        r.__dict__["_reran"] = True  # said with the time it took (``explained_by_search``)
        fb = free.best if free is not None else None
        if fb is not None and fb.loss < b.loss:
            fa = fb.architecture
            lines.append(
                f"The aspect-ratio guard decides this answer: the winner's d_model/n_layers is {aspect:.0f}, near the "
                f"{'upper' if aspect >= 0.8 * hi else 'lower'} limit of {hi if aspect >= 0.8 * hi else lo:g}. Without "
                f"it the law would pick d_model {fa.d_model}, {plural(fa.n_layers, 'layer')} (ratio {fa.d_model / fa.n_layers:.0f}) "
                f"at loss {fb.loss:.4f}, {b.loss - fb.loss:.3g} nats/token lower"
                + (
                    ": a shape outside Kaplan et al. 2020's tested range, where this law (no shape term) does not know "
                    "how loss depends on shape (--aspect-ratio to widen it)."
                    if r.law.shape_kind is None
                    else " (--aspect-ratio to widen it)."
                )
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
    lines += _explain_layout(r, st)
    return lines


def _explain_layout(r: SearchResult, st: ShardedStep) -> list[str]:
    """The answer's fastest layout over every kind the core prices (pipeline, context parallel,
    ZeRO-1, sequence parallel, low-precision matmuls: the search itself prices DP/FSDP x TP), and
    what it would change."""
    a = r.best.architecture
    formats = ["bf16"] + [f for f in ("fp8", "int8") if _has_format(r.hardware, f)]
    plan = f"recompute {a.recompute}, micro-batch {a.micro_batch or a.batch_size // max(st.dp, 1)}"
    bf16, priced = _core.best_layout(a, r.hardware.core, r.chips)
    if bf16 is None:
        return []
    lines = [
        f"Layout: of {priced} layouts of this configuration on {r.chips} chips (tensor parallel in a node with"
        " sequence parallelism, context and pipeline parallel with virtual stages, ZeRO-1 or FSDP), the fastest that"
        f" fits is {bf16.sharding} ({plan}): {bf16.step_time_s:.4g} s per step"
        + (f", bubble {bf16.bubble_s:.3g} s" if bf16.bubble_s > 0 else "")
        + f", {bf16.step_time_s / st.step_time_s:.2f}x the step the search priced ({st.sharding})."
        + (
            " The search ranks configurations by their DP/FSDP x TP step; a faster layout trains more tokens in the"
            " budget, so the ranking may move where it matters."
            if bf16.step_time_s < 0.98 * st.step_time_s
            else ""
        )
    ]
    for f in formats[1:]:
        low, _ = _core.best_layout(a, r.hardware.core, r.chips, matmuls=[f])
        if low is not None:
            lines.append(
                f"With {f.upper()} matmuls ({r.hardware.core.matmul_time_factor(f):.2f} of bf16's time per FLOP, "
                f"{'calibrated' if r.hardware.calibrated and f'{f}_matmul_time_factor' in r.hardware.calibration else 'the datasheet peak ratio'}):"
                f" {low.sharding}, {low.step_time_s:.4g} s per step ({low.step_time_s / bf16.step_time_s:.2f}x); the loss"
                " law does not price low-precision training (DeepSeek-V3's report finds FP8's relative loss error under"
                " 0.25% against BF16)."
            )
    return lines


def _has_format(hw: Hardware, precision: str) -> bool:
    """Whether the chip's file gives a dense peak (or a calibrated factor) for ``precision``."""
    try:
        hw.core.matmul_time_factor(precision)
    except InvalidInputError:
        return False
    return True


def _best_memory_plan(alt: Architecture, r: SearchResult) -> Prediction:
    """``alt`` predicted as the search would run it: with the recomputation and micro-batch of the
    space (the winner's when the space is not known) that fit and reach the lowest loss; when none
    fits, the one needing the least memory. Raises ``InvalidInputError`` when no sharding of the
    chips divides it."""
    axes = r.space_axes
    a = r.best.architecture
    # The winner's plan first, then the space's others (each predicted once).
    options = dict.fromkeys(
        [(a.recompute, a.micro_batch)]
        + [
            (rc, mb)
            for rc in axes.get("recompute", [a.recompute])
            for mb in axes.get("micro_batch", [a.micro_batch])
            if mb is None or alt.batch_size % mb == 0  # others cannot split the batch (an axis may hold a million)
        ]
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
    """Why the best configuration of ``r`` wins: its steps and tokens, its loss term by term, what
    bounds its step, how a deeper-narrower and a wider-shallower model of similar size would do,
    why its context, batch and vocabulary, every axis edge it sits on and what lies beyond it,
    caveats, the Pareto set."""
    b = r.best
    arch: Architecture = b.architecture
    winner = r.winner
    n_law = winner.loss_terms.law_params if winner.loss_terms is not None else b.params
    n_opt, d_opt = r.law.compute_optimal(6 * n_law * b.effective_tokens)
    split = (
        f"compute-optimal split is {count(n_opt)} parameters and {count(d_opt)} tokens ({d_opt / n_opt:.0f} per "
        "parameter)"
        if math.isfinite(n_opt) and math.isfinite(d_opt) and n_opt > 0 and d_opt > 0
        # Exponents near 0 (a hand-edited law) put the optimum beyond what a float holds.
        else f"compute-optimal split lies beyond what a number can hold (alpha {r.law.alpha:.3g}, beta {r.law.beta:.3g})"
    )
    lines = [
        f"In {r.hours:.4g} h the winner runs {b.steps:,.0f} steps of {b.step_time_s:.4g} s and sees "
        f"{count(b.tokens)} tokens: {b.tokens / b.params:.1f} tokens per parameter. For the same FLOPs "
        f"(6 N D = {si(6 * n_law * b.effective_tokens, 'FLOP')}, with the N and D the law sees) the law's own "
        f"{split}: the time budget, through the step time, not the FLOPs, sets the size."
    ]
    if r.outside_the_law is not None:
        lines.insert(0, "NOT A MEANINGFUL ANSWER: " + r.outside_the_law + ".")
    lines += _explain_loss(r, winner)
    if r.chips > 1:
        lines += _explain_sharding(r)
    parts = b.step.parts
    if r.chips == 1 and (parts.memory_s > 0 or parts.compute_s > 0):
        bound = "memory traffic (MEMCPY)" if parts.memory_s > parts.compute_s else "compute (FLOPs)"
        w = b.step.work
        # The FLOPs the step time prices are the ones the chip executes (causal attention, no
        # embedding matmul), not the model FLOPs of `flops_per_step` (Chinchilla's count, for MFU).
        lines.append(
            f"Its step is dominated by {bound}: moving {binary_bytes(b.memcpy_bytes_per_step)} takes "
            f"{parts.memory_s:.3g} s, computing takes {parts.compute_s:.3g} s (it executes {si(w.flops, 'FLOP')}, "
            f"{si(w.tensor_flops, 'FLOP')} of them in matmuls and attention), fixed overheads {parts.fixed_s:.3g} s."
        )
    lines += _explain_memory_plan(r)
    usable = r.hardware.usable_hbm_bytes
    if r.chips == 1 and b.memory_bytes >= 0.85 * usable and r.hardware.max_chips > 1:
        lines.append(
            f"It fills one chip ({binary_bytes(b.memory_bytes)} of {binary_bytes(usable)} usable): larger models need "
            "more chips; compare with --chips N, or --chips auto."
        )
    lo, hi = r.guards["aspect_ratio_min"], r.guards["aspect_ratio_max"]
    for label, factor in (("deeper and narrower", 4.0), ("shallower and wider", 0.25)):
        alt = arch.reshaped(factor)
        if alt is None:
            continue
        p, why = _compare(r, winner, alt)
        if p is None or p.loss is None or not p.fits_memory:
            lines.append(f"A {label} model (d_model {alt.d_model}, {plural(alt.n_layers, 'layer')}) {why}.")
            continue
        plan = ""
        if (p.architecture.recompute, p.architecture.micro_batch) != (arch.recompute, arch.micro_batch):
            rc, mb = p.architecture.recompute, p.architecture.micro_batch
            how_run = [f"{rc} recomputation"] * (rc != "none") + [f"micro-batches of {mb}"] * (mb is not None)
            plan = f" (best with {' and '.join(how_run) or 'neither recomputation nor micro-batches'})"
        aspect = alt.d_model / alt.n_layers
        outside = (
            f" It lies outside the aspect-ratio guard (d_model/n_layers = {aspect:.0f}, accepted {lo:g} to {hi:g})."
            if not lo <= aspect <= hi
            else ""
        )
        lines.append(
            f"A {label} model of similar size (d_model {alt.d_model}, {plural(alt.n_layers, 'layer')}, {count(p.params)} "
            f"params){plan} {why}.{outside}"
        )
    lines += _explain_guards(r)
    lines += _explain_context(r, winner)
    lines += _explain_batch(r, winner)
    lines += _explain_vocab(r, winner)
    lines += _explain_edges(_edges(r, winner))
    if r.unique_tokens:
        epochs = b.tokens * r.law.reference_ratio(arch.vocab_size) / r.unique_tokens
        if epochs > 1:
            decays = (
                "both of Muennighoff et al. 2023's decays: repeated data, and parameters beyond what the unique data "
                "can use"
                if "repetition" in r.law.terms
                else "Muennighoff et al. 2023's decay of repeated data"
            )
            lines.append(
                f"The plan makes {epochs:.2f} passes over the {r.unique_tokens:.3g} unique tokens; the law applies "
                f"{decays} (the data term sees {count(b.effective_tokens)} tokens)."
            )
    if winner.warnings:
        lines.append("Caveats: " + "; ".join(winner.warnings) + ".")
    if len(r.pareto) > 1:
        small = r.pareto[0]
        lines.append(
            f"The Pareto set has {len(r.pareto)} members, from {count(small.params)} params (loss "
            f"{small.loss:.4f}) to the winner's {count(b.params)} (loss {b.loss:.4f})."
        )
    return lines
