"""Least-squares step-time models fitted on measured training steps, with cross-validation.

Every model is one of the core's calibrated models (``calibrated_models()``); its features are the
core's counts of each measured step's work, per chip, under the sharding it ran with
(``ShardedStep.work``): dense matmul FLOPs, attention-score FLOPs, MEMCPY bytes (and on one chip
the split and per-op features). Models (every coefficient >= 0; b a fixed per-step overhead):
- ``memcpy``:   t = a MEMCPY + b (Inbar & Sernau 2024);
- ``flops``:    t = c FLOPs + b (FLOPs: the tensor FLOPs the step executes);
- ``linear``:   t = a MEMCPY + c FLOPs + b;
- ``rates``:    t = matmul FLOPs / R_mm + attention FLOPs / R_attn + MEMCPY / R_hbm + b: each kind
  of work at its own rate (attention kernels run far below dense GEMMs);
- ``split``:    t = a_f MEMCPY_fixed + a_t MEMCPY_token + c FLOPs + a_s SCORES + b (one chip);
- ``roofline``: t = s R + k K + b, R the per-op roofline at the *measured* matmul and bandwidth
  ceilings, K the kernels per step (one chip, with microbenchmarks).
On many chips the step is ``max(compute, data-parallel communication) + tensor-parallel
communication`` with the communication the core computes from the hardware file's network; the
fit is of the compute part: rows whose communication exceeds the prediction are predicted by it
and left out of the next solve, until that set no longer changes.
Fits minimise squared *relative* error (rows weighted by 1 / t), since step times span orders of
magnitude, each row's counting its ``weight`` times (a table's approximate rows, bounds rather than
measured steps, weigh the core's ``APPROXIMATE_ROW_WEIGHT``; the weight enters the coefficients'
least squares only: the choice of model and of a low-precision time factor, and every reported
error, count each row once); non-negativity is exact (every subset of active terms is solved, the best feasible one
kept); each coefficient is then moved into the core's range for it. Predictions are always the
core's (``predict``)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from timescale_frontier._core import (
    Architecture,
    CoreHardware,
    Layout,
    ShardedStep,
    calibrated_models,
    sharded_step,
)

#: Each model's work terms (the overhead is always a candidate term too): the core's registry.
MODELS: dict[str, tuple[str, ...]] = {m.name: tuple(m.terms) for m in calibrated_models()}
#: Models whose features need the whole step on one chip (not a shard's totals).
ONE_CHIP_MODELS = tuple(m.name for m in calibrated_models() if m.one_chip)
#: Each model's coefficients as the core defines them: {model: {name: (lo, hi) of its range}}.
RANGES: dict[str, dict[str, tuple[float, float]]] = {
    m.name: {c.name: (c.range.lo, c.range.hi) for c in m.coefficients} for m in calibrated_models()
}
Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Ceilings:
    """Measured matmul FLOP/s and elementwise bytes/s (microbenchmarks)."""

    flops_per_s: float
    bytes_per_s: float


@dataclass(frozen=True)
class Measured:
    """One measured training step: the architecture (its batch the global batch), the chips it ran
    on and how: data parallel with the model sharded (FSDP) or replicated (DP) over every chip, or
    the row's own ``layout`` (tensor, pipeline, context, expert parallel, ZeRO stage, matmul
    precision) when it states one."""

    arch: Architecture
    step_time_s: float
    chips: int = 1
    fsdp: bool = True
    #: Where it came from (the file's row), for messages.
    row: int = 0
    layout: Layout | None = None
    #: The file's own identifier of the row (``row_id``), when it has one.
    row_id: str = ""
    #: The software stack that ran it (``megatron``, ``maxtext``, ...; empty when not stated).
    stack: str = ""
    #: Its weight in the fits' least squares: 1, or the core's ``APPROXIMATE_ROW_WEIGHT`` for a
    #: row its table marks approximate (a bound, not a measured step).
    weight: float = 1.0
    #: How the row was read beyond its columns (a bound, a layout the table misprints), for reports.
    note: str = ""

    def as_layout(self) -> Layout:
        """The layout the row ran with."""
        if self.layout is not None:
            return self.layout
        return Layout(dp=self.chips, zero=3 if self.fsdp and self.chips > 1 else 0)


def step_of(m: Measured, hw: CoreHardware) -> ShardedStep:
    """The core's step of a measured row under the layout it ran with."""
    return sharded_step(m.arch, hw, m.as_layout())


@dataclass(frozen=True)
class Fit:
    """A fitted model: its name and the coefficients the hardware file stores."""

    model: str
    coeffs: dict[str, float]

    def core(self, base: CoreHardware) -> CoreHardware:
        """``base`` with this model as its step time (the core checks the coefficients)."""
        return base.with_calibration(self.model, self.coeffs)

    def predict(self, rows: Sequence[Measured], base: CoreHardware) -> Array:
        """The core's step time of each row with this model."""
        hw = self.core(base)
        return np.array([step_of(m, hw).step_time_s for m in rows])


def _in_range(model: str, name: str, v: float) -> float:
    """A fitted coefficient moved into the core's range for it (0 stays 0: the term is absent)."""
    if v == 0.0:
        return 0.0
    lo, hi = RANGES[model][name]
    return min(max(v, lo), hi)


def features(rows: Sequence[Measured], base: CoreHardware, ceilings: Ceilings | None = None) -> dict[str, Array]:
    """Per-row regressors and communication, all computed by the core. The one-chip features
    (``fixed``, ``token``, ``scores``, ``roofline``, ``kernels``) are NaN for rows on many chips."""
    steps = [step_of(m, base) for m in rows]
    one = [m.chips == 1 for m in rows]

    def single(f: object) -> Array:
        return np.array([f(m.arch) if ok else np.nan for m, ok in zip(rows, one, strict=True)])  # type: ignore[operator]

    fixed = single(lambda a: a.memcpy_fixed_bytes_per_step())
    # The pipeline bubble idles the chip for a fraction of its work (the optimizer's small share
    # counted in it too); low-precision matmuls count as bf16 matmuls of factor x their FLOPs.
    bubble = np.array([1.0 + s.bubble_fraction for s in steps])
    factor = np.array([s.matmul_time_factor for s in steps])
    matmul = np.array([s.work.matmul_flops for s in steps])
    out = {
        "bytes": bubble * np.array([s.work.bytes for s in steps]),
        "flops": bubble * (np.array([s.work.flops for s in steps]) - (1.0 - factor) * matmul),
        "matmul": bubble * factor * matmul,
        "attention": bubble * np.array([s.work.attention_flops for s in steps]),
        # Overlapped with compute: data-parallel (ZeRO, FSDP) collectives and the ring attention's.
        "comm": np.array([s.dp_comm_s + s.cp_comm_s for s in steps]),
        # Added to it: tensor-parallel collectives, pipeline sends, expert all-to-alls.
        "exposed": np.array([s.tp_comm_s + s.pp_comm_s + s.ep_comm_s for s in steps]),
        # The fastest each kind of work can run (the datasheet's peaks): a fitted rate is never
        # faster (``fit_model``).
        "floor_matmul": np.full(len(rows), 1.0 / base.peak_bf16_flops_per_s),
        "floor_attention": np.full(len(rows), 1.0 / base.peak_bf16_flops_per_s),
        "floor_bytes": np.full(len(rows), 1.0 / base.hbm_bytes_per_s),
        "fixed": fixed,
        "token": single(lambda a: a.memcpy_bytes_per_step()) - fixed,
        "scores": single(lambda a: a.attention_score_bytes_per_step()),
        "kernels": single(lambda a: a.kernels_per_step()),
        # Each row's weight in the least squares (``Measured.weight``).
        "weight": np.array([m.weight for m in rows]),
    }
    if ceilings is not None:
        out["roofline"] = single(lambda a: a.per_op_roofline_s(ceilings.flops_per_s, ceilings.bytes_per_s))
    return out


def coefficients(model: str) -> int:
    """How many coefficients ``model`` fits: one per term and the per-step overhead."""
    return len(MODELS[model]) + 1


def min_rows(model: str) -> int:
    """The fewest measured steps ``model`` is fitted to: two more than its coefficients, so that each
    cross-validation fit (``cross_validate``: min(5, n) interleaved folds, each holding out at most
    two of these few steps) still has as many steps as coefficients."""
    return coefficients(model) + 2


def applicable(feats: dict[str, Array]) -> list[str]:
    """The models these rows can fit: the one-chip ones only when every row ran on one chip, and
    each only with at least ``min_rows`` steps."""
    n = min((len(v) for v in feats.values()), default=0)
    return [
        m
        for m, terms in MODELS.items()
        if n >= min_rows(m) and all(t in feats and np.isfinite(feats[t]).all() for t in terms)
    ]


def _solve(feats: dict[str, Array], names: tuple[str, ...], t: Array) -> dict[str, float]:
    """Non-negative least squares on relative error, exactly: every subset of the terms (the
    overhead included) is solved and the best solution with no negative coefficient kept. The
    target is the time less the communication the compute does not hide (``exposed``); each row's
    squared error counts ``weight`` times."""
    terms = (*names, "overhead")
    cols = {**feats, "overhead": np.ones_like(t)}
    root = np.sqrt(feats["weight"])
    target = root * (1.0 - feats["exposed"] / t)
    best: tuple[float, dict[str, float]] | None = None
    for k in range(len(terms), 0, -1):
        for subset in itertools.combinations(terms, k):
            X = np.column_stack([cols[f] for f in subset]) * (root / t)[:, None]
            scale = np.linalg.norm(X, axis=0)
            scale[scale == 0] = 1.0
            coef, *_ = np.linalg.lstsq(X / scale, target, rcond=None)
            coef = coef / scale
            if np.any(coef < 0):
                continue
            sse = float(np.sum((X @ coef - target) ** 2))
            if best is None or sse < best[0]:
                best = (sse, {**dict.fromkeys(terms, 0.0), **dict(zip(subset, map(float, coef), strict=True))})
    if best is None:  # communication alone exceeds every measured time: no work term fits
        return dict.fromkeys(terms, 0.0)
    return best[1]


def _compute(c: dict[str, float], feats: dict[str, Array], names: tuple[str, ...]) -> Array:
    return sum((c[n] * feats[n] for n in names), start=np.full(len(feats["comm"]), c["overhead"]))


def _coefficients(name: str, c: dict[str, float], ceilings: Ceilings | None) -> dict[str, float]:
    """The solved terms as the core's named coefficients."""
    if name == "roofline":
        assert ceilings is not None
        scale = max(c["roofline"], 1e-12)  # a vanishing scale would mean infinitely fast ceilings
        coeffs = {
            "flops_per_s": ceilings.flops_per_s / scale,
            "memcpy_bytes_per_s": ceilings.bytes_per_s / scale,
            "s_per_kernel": c["kernels"],
            "overhead_s": c["overhead"],
        }
    elif name == "split":
        some = c["fixed"] or c["token"] or c["flops"]
        coeffs = {
            "s_per_fixed_byte": c["fixed"],
            # the core requires some work to cost time: the smallest rate stands in
            "s_per_token_byte": c["token"] if some else RANGES[name]["s_per_token_byte"][0],
            "s_per_flop": c["flops"],
            "s_per_score_byte": c["scores"],
            "overhead_s": c["overhead"],
        }
    elif name == "rates":
        some = c["matmul"] or c["bytes"]
        coeffs = {
            "s_per_matmul_flop": c["matmul"] if some else RANGES[name]["s_per_matmul_flop"][0],
            "s_per_attention_flop": c["attention"],
            "s_per_byte": c["bytes"],
            "overhead_s": c["overhead"],
        }
    else:
        a, f = c.get("bytes", 0.0), c.get("flops", 0.0)
        coeffs = {
            "s_per_memcpy_byte": a if a or f else RANGES[name]["s_per_memcpy_byte"][0],
            "s_per_flop": f,
            "overhead_s": c["overhead"],
        }
    return {k: _in_range(name, k, v) for k, v in coeffs.items()}


def _solve_above_floors(feats: dict[str, Array], names: tuple[str, ...], t: Array) -> dict[str, float]:
    """``_solve`` with each rate of the ``rates`` model at most the chip's peak: a coefficient below
    its floor (seconds per FLOP or byte at the datasheet's peak; 0 too, a free kind of work) is
    fixed at the floor and the others solved again, until none is."""
    fixed: dict[str, float] = {}
    while True:
        free = tuple(n for n in names if n not in fixed)
        exposed = feats["exposed"] + sum((v * feats[k] for k, v in fixed.items()), start=np.zeros_like(t))
        c = _solve({**feats, "exposed": exposed}, free, t)
        low = {
            n: float(feats[f"floor_{n}"][0]) for n in free if f"floor_{n}" in feats and c[n] < feats[f"floor_{n}"][0]
        }
        if not low:
            return {**c, **fixed}
        fixed.update(low)


def fit_model(name: str, feats: dict[str, Array], t: Array, ceilings: Ceilings | None = None) -> Fit:
    """The least-squares coefficients of model ``name``: the compute part is fitted to the rows
    whose time the communication does not set (see the module docs); the ``rates`` model's rates
    no faster than the chip's peaks."""
    names = MODELS[name]
    solve = _solve_above_floors if name == "rates" else _solve
    bound = np.zeros(len(t), dtype=bool)  # rows set by communication
    c: dict[str, float] = {}
    for _ in range(20):
        keep = ~bound
        c = solve({k: v[keep] for k, v in feats.items()}, names, t[keep])
        new = feats["comm"] > _compute(c, feats, names)
        if (new == bound).all() or new.all():
            break
        bound = new
    return Fit(name, _coefficients(name, c, ceilings))


def _abs_pct(pred: Array, t: Array) -> Array:
    return 100.0 * np.abs(pred - t) / t


def scores(pred: Array, t: Array) -> dict[str, float]:
    """R^2, absolute percentage errors and rank correlation of predicted against measured times."""
    ape = _abs_pct(pred, t)
    ss_res = float(np.sum((pred - t) ** 2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return {
        # Undefined (nan) when the measured times do not vary: one row, or all equal.
        "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan,
        "mean_abs_pct_error": float(ape.mean()),
        "median_abs_pct_error": float(np.median(ape)),
        "max_abs_pct_error": float(ape.max()),
        "spearman": spearman(pred, t),
    }


@dataclass
class Report:
    """Accuracy of one model: in-sample and held-out (k-fold cross-validation)."""

    fit: Fit
    r2: float
    mean_abs_pct_error: float
    median_abs_pct_error: float
    max_abs_pct_error: float
    heldout_mean_abs_pct_error: float
    heldout_median_abs_pct_error: float
    heldout_max_abs_pct_error: float
    heldout_spearman: float
    n_samples: int
    #: Each row's held-out prediction (s): the fold that left it out predicted it.
    heldout: Array | None = None


def cross_validate(
    name: str,
    rows: Sequence[Measured],
    feats: dict[str, Array],
    t: Array,
    base: CoreHardware,
    ceilings: Ceilings | None = None,
    k: int = 5,
) -> Array:
    """Held-out prediction of every row (k-fold, deterministic interleaved folds)."""
    n = len(t)
    k = max(2, min(k, n))
    out = np.empty(n)
    for fold in range(k):
        test = np.arange(n) % k == fold
        f = fit_model(name, {kk: v[~test] for kk, v in feats.items()}, t[~test], ceilings)
        out[test] = f.predict([m for m, sel in zip(rows, test, strict=True) if sel], base)
    return out


def fit_all(
    rows: Sequence[Measured], base: CoreHardware, ceilings: Ceilings | None = None, models: Sequence[str] | None = None
) -> dict[str, Report]:
    """Every applicable model fitted on ``rows``, scored in-sample and by 5-fold cross-validation;
    predictions are the core's, on ``base`` (the hardware being calibrated: its network prices the
    communication)."""
    t = np.array([m.step_time_s for m in rows])
    feats = features(rows, base, ceilings)
    reports = {}
    for name in models or applicable(feats):
        f = fit_model(name, feats, t, ceilings)
        m = scores(f.predict(rows, base), t)
        cv = cross_validate(name, rows, feats, t, base, ceilings)
        h = scores(cv, t)
        reports[name] = Report(
            f,
            m["r2"],
            m["mean_abs_pct_error"],
            m["median_abs_pct_error"],
            m["max_abs_pct_error"],
            h["mean_abs_pct_error"],
            h["median_abs_pct_error"],
            h["max_abs_pct_error"],
            h["spearman"],
            len(t),
            cv,
        )
    return reports


#: Bootstrap resamples of the steps that judge the model choice (core ``choice_is_stable``).
CHOICE_RESAMPLES = 200


def choice_resamples(reports: dict[str, Report], t: Array, seed: int = 0) -> dict[str, int]:
    """How often each model would be chosen (lowest median held-out error, as ``choose``) on
    ``CHOICE_RESAMPLES`` bootstrap resamples of the steps (with replacement; deterministic seed),
    from the held-out predictions already made: what core ``choice_is_stable`` judges."""
    names = [name for name, r in reports.items() if r.heldout is not None]
    err = np.array([100.0 * np.abs(reports[name].heldout - t) / t for name in names])  # type: ignore[operator]
    idx = np.random.default_rng(seed).integers(0, len(t), size=(CHOICE_RESAMPLES, len(t)))
    medians = np.median(err[:, idx], axis=2)  # models x resamples
    winners = np.argmin(medians, axis=0)
    return {name: int((winners == i).sum()) for i, name in enumerate(names)}


def choose(reports: dict[str, Report]) -> str:
    """The model that generalises best: the lowest cross-validated median absolute percentage
    error (the accuracy figure the project reports; robust to the few outlier steps that dominate
    the mean on small noisy runs), then the lowest mean."""
    return min(reports, key=lambda k: (reports[k].heldout_median_abs_pct_error, reports[k].heldout_mean_abs_pct_error))


def spearman(a: Array, b: Array) -> float:
    """Rank correlation (ties by average rank)."""

    def ranks(x: Array) -> Array:
        order = np.argsort(x, kind="mergesort")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for v in np.unique(x):
            m = x == v
            r[m] = r[m].mean()
        return r

    ra, rb = ranks(np.asarray(a, float)), ranks(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


#: Candidate low-precision matmul time factors, as fractions of the way from the datasheet's peak
#: ratio (0) to bf16's rate (1): what the fit chooses among by cross-validation.
FACTOR_STEPS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def matmul_time_factors(rows: Sequence[Measured], base: CoreHardware) -> tuple[CoreHardware, dict[str, float]]:
    """``base`` with a fitted time factor for each low-precision matmul format ``rows`` ran in (fp8,
    int8, fp4), and the factors by file key (``fp8_matmul_time_factor``): each the candidate
    between the datasheet's peak ratio and 1 (bf16's rate; ``FACTOR_STEPS``) whose rates model
    predicts the rows best, cross-validated. No format, no factor."""
    formats = sorted({m.as_layout().matmul for m in rows} - {"bf16"})
    t = np.array([m.step_time_s for m in rows])
    chosen: dict[str, float] = {}
    for precision in formats:
        key = f"{precision}_matmul_time_factor"
        peak_ratio = base.matmul_time_factor(precision)
        best: tuple[float, float] | None = None
        for step in FACTOR_STEPS:
            factor = peak_ratio + step * (1.0 - peak_ratio)
            hw = base.with_matmul_time_factor(precision, f"calibration.{key}", factor)
            feats = features(rows, hw)
            error = float(np.median(np.abs(cross_validate("rates", rows, feats, t, hw) - t) / t))
            if best is None or error < best[0]:
                best = (error, factor)
        assert best is not None
        base = base.with_matmul_time_factor(precision, f"calibration.{key}", best[1])
        chosen[key] = best[1]
    return base, chosen
