"""Least-squares step-time models fitted on measurements, with cross-validation.

Models (every coefficient >= 0; b is a fixed per-step overhead):
- ``memcpy``:   t = a MEMCPY + b (Inbar & Sernau 2024);
- ``flops``:    t = c FLOPs + b (FLOPs: Chinchilla's model FLOPs);
- ``linear``:   t = a MEMCPY + c FLOPs + b;
- ``split``:    t = a_f MEMCPY_fixed + a_t MEMCPY_token + c FLOPs + a_s SCORES + b: MEMCPY split
  into its batch-independent part (parameters, gradients, moments) and the part that grows with
  tokens (activations), which devices move at different effective rates, plus one pass over the
  materialized attention scores priced on its own (backends that do not fuse scale, mask and
  softmax make extra passes over them; 0 for flash attention). (Our design.)
- ``roofline``: t = s R + k K + b, where R is the per-op roofline at the *measured* matmul and
  bandwidth ceilings (each op of the MEMCPY table is compute- or memory-bound) and K the kernels
  per step; s rescales both ceilings, k is a launch cost per kernel. (Our design.)
Fits minimise squared *relative* error (rows weighted by 1 / t), since step times span orders of
magnitude; non-negativity is exact (every subset of active terms is solved, the best feasible one
kept); each coefficient is then moved into the core's range for it (``calibrated_models()``).
Predictions are always the core's (``CoreHardware.step_time_for``)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from timescale_frontier._core import Architecture, CoreHardware, calibrated_models

MODELS: dict[str, tuple[str, ...]] = {
    "memcpy": ("memcpy",),
    "flops": ("flops",),
    "linear": ("memcpy", "flops"),
    "split": ("fixed", "token", "flops", "scores"),
    "roofline": ("roofline", "kernels"),
}
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
class Fit:
    """A fitted model: its name and the coefficients the hardware file stores."""

    model: str
    coeffs: dict[str, float]

    def core(self, base: CoreHardware) -> CoreHardware:
        """``base`` with this model as its step time (the core checks the coefficients)."""
        return base.with_calibration(self.model, self.coeffs)

    def predict(self, archs: Sequence[Architecture], base: CoreHardware) -> Array:
        core = self.core(base)
        return np.array([core.step_time_for(a) for a in archs])


def _in_range(model: str, name: str, v: float) -> float:
    """A fitted coefficient moved into the core's range for it (0 stays 0: the term is absent)."""
    if v == 0.0:
        return 0.0
    lo, hi = RANGES[model][name]
    return min(max(v, lo), hi)


def features(archs: Sequence[Architecture], ceilings: Ceilings) -> dict[str, Array]:
    """Per-architecture regressors, all computed by the core."""
    fixed = np.array([a.memcpy_fixed_bytes_per_step() for a in archs])
    memcpy = np.array([a.memcpy_bytes_per_step() for a in archs])
    return {
        "memcpy": memcpy,
        "fixed": fixed,
        "token": memcpy - fixed,
        "flops": np.array([a.flops_per_step() for a in archs]),
        "roofline": np.array([a.per_op_roofline_s(ceilings.flops_per_s, ceilings.bytes_per_s) for a in archs]),
        "kernels": np.array([a.kernels_per_step() for a in archs]),
        "scores": np.array([a.attention_score_bytes_per_step() for a in archs]),
    }


def _solve(feats: dict[str, Array], names: tuple[str, ...], t: Array) -> dict[str, float]:
    """Non-negative least squares on relative error, exactly: every subset of the terms (the
    overhead included) is solved and the best solution with no negative coefficient kept."""
    terms = (*names, "overhead")
    cols = {**feats, "overhead": np.ones_like(t)}
    best: tuple[float, dict[str, float]] | None = None
    for k in range(len(terms), 0, -1):
        for subset in itertools.combinations(terms, k):
            X = np.column_stack([cols[f] for f in subset]) / t[:, None]
            coef, *_ = np.linalg.lstsq(X, np.ones_like(t), rcond=None)
            if np.any(coef < 0):
                continue
            sse = float(np.sum((X @ coef - 1.0) ** 2))
            if best is None or sse < best[0]:
                best = (sse, {**dict.fromkeys(terms, 0.0), **dict(zip(subset, map(float, coef), strict=True))})
    assert best is not None  # the overhead alone (a positive mean) is always feasible
    return best[1]


def fit_model(name: str, feats: dict[str, Array], t: Array, ceilings: Ceilings) -> Fit:
    """The least-squares coefficients of model ``name``, each within the core's range for it."""
    c = _solve(feats, MODELS[name], t)
    if name == "roofline":
        scale = max(c["roofline"], 1e-12)  # a vanishing scale would mean infinitely fast ceilings
        coeffs = {
            "flops_per_s": ceilings.flops_per_s / scale,
            "memcpy_bytes_per_s": ceilings.bytes_per_s / scale,
            "s_per_kernel": c["kernels"],
            "overhead_s": c["overhead"],
        }
    elif name == "split":
        coeffs = {
            "s_per_fixed_byte": c["fixed"],
            # the core requires some work to cost time: the smallest rate stands in
            "s_per_token_byte": c["token"]
            if c["fixed"] or c["token"] or c["flops"]
            else RANGES[name]["s_per_token_byte"][0],
            "s_per_flop": c["flops"],
            "s_per_score_byte": c["scores"],
            "overhead_s": c["overhead"],
        }
    else:
        a, f = c.get("memcpy", 0.0), c.get("flops", 0.0)
        coeffs = {
            "s_per_memcpy_byte": a if a or f else RANGES[name]["s_per_memcpy_byte"][0],
            "s_per_flop": f,
            "overhead_s": c["overhead"],
        }
    return Fit(name, {k: _in_range(name, k, v) for k, v in coeffs.items()})


def _abs_pct(pred: Array, t: Array) -> Array:
    return 100.0 * np.abs(pred - t) / t


def scores(pred: Array, t: Array) -> dict[str, float]:
    """R^2 and absolute percentage errors of predicted against measured step times."""
    ape = _abs_pct(pred, t)
    ss_res = float(np.sum((pred - t) ** 2))
    ss_tot = float(np.sum((t - t.mean()) ** 2)) or 1e-300
    return {
        "r2": 1.0 - ss_res / ss_tot,
        "mean_abs_pct_error": float(ape.mean()),
        "median_abs_pct_error": float(np.median(ape)),
        "max_abs_pct_error": float(ape.max()),
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
    n_samples: int


def cross_validate(
    name: str,
    archs: Sequence[Architecture],
    feats: dict[str, Array],
    t: Array,
    ceilings: Ceilings,
    base: CoreHardware,
    k: int = 5,
) -> Array:
    """Held-out absolute percentage error of every sample (k-fold, deterministic folds)."""
    n = len(t)
    k = max(2, min(k, n))
    out = np.empty(n)
    for fold in range(k):
        test = np.arange(n) % k == fold
        f = fit_model(name, {kk: v[~test] for kk, v in feats.items()}, t[~test], ceilings)
        out[test] = _abs_pct(f.predict([a for a, m in zip(archs, test, strict=True) if m], base), t[test])
    return out


def fit_all(archs: Sequence[Architecture], t: Array, ceilings: Ceilings, base: CoreHardware) -> dict[str, Report]:
    """Every model fitted on ``archs`` (measured ``t``), scored in-sample and by cross-validation;
    predictions are the core's, on ``base`` (the hardware being calibrated)."""
    feats = features(archs, ceilings)
    reports = {}
    for name in MODELS:
        f = fit_model(name, feats, t, ceilings)
        m = scores(f.predict(archs, base), t)
        cv = cross_validate(name, archs, feats, t, ceilings, base)
        reports[name] = Report(
            f,
            m["r2"],
            m["mean_abs_pct_error"],
            m["median_abs_pct_error"],
            m["max_abs_pct_error"],
            float(cv.mean()),
            float(np.median(cv)),
            len(t),
        )
    return reports


def choose(reports: dict[str, Report]) -> str:
    """The model that generalises best: lowest held-out mean absolute percentage error."""
    return min(reports, key=lambda k: reports[k].heldout_mean_abs_pct_error)


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
