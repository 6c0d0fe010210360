"""Scaling laws L(N, D) = E + A / N^alpha + B / D^beta (the core's ``Law``): the built-in sets by
name, laws fitted to a user's own runs (``fit_law``) and saved as TOML files usable by ``--law``."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tomlkit

from timescale_frontier import _core, _toml
from timescale_frontier._core import Law, LawFit, ShapeFit
from timescale_frontier._files import write_atomic
from timescale_frontier.errors import InvalidInputError, in_file

__all__ = [
    "Law",
    "LawFit",
    "ShapeFit",
    "fit_law",
    "fit_shape",
    "get_law",
    "law_bootstrap",
    "law_names",
    "load_runs",
    "load_shape_runs",
    "loss_interval",
    "save_law",
]


def law_names() -> list[str]:
    """Names of the built-in laws (``hoffmann``: Hoffmann et al. 2022 eq. 10; ``besiroglu``:
    Besiroglu et al. 2024). Both count N as total parameters, embeddings included."""
    return list(Law.builtin_names())


def get_law(law: str | os.PathLike[str] | Law) -> Law:
    """A ``Law``: a built-in name, a law file written by ``timescale fit-law``, or the law itself."""
    if isinstance(law, Law):
        return law
    spec = os.fspath(law)
    if spec in law_names():
        return Law.builtin(spec)
    return _read_law_file(spec)[0]


def law_bootstrap(law: str | os.PathLike[str] | Law) -> list[Law]:
    """The bootstrap refits saved with a fitted law file (empty for built-in laws and Law objects):
    the joint samples that give a prediction interval on the loss."""
    if isinstance(law, Law) or os.fspath(law) in law_names():
        return []
    return _read_law_file(os.fspath(law))[1]


def loss_interval(
    laws: Sequence[Law], n_params: float, tokens: float, shape: tuple[float, float] | None = None
) -> tuple[float, float] | None:
    """2.5% and 97.5% percentiles of the loss predicted by ``laws`` (None without samples);
    ``shape`` (d_model, n_layers) adds the laws' shape term, if they have one."""
    if shape is None:
        values = sorted(law.loss(n_params, tokens) for law in laws)
    else:
        values = sorted(law.loss_of_shape(n_params, tokens, shape[0], shape[1]) for law in laws)
    if not values:
        return None
    return values[round(0.025 * (len(values) - 1))], values[round(0.975 * (len(values) - 1))]


_LAW_KEYS = [
    "name", "e", "a", "b", "alpha", "beta", "params", "fit_params", "fit_tokens", "intervals", "n_runs", "source",
    "bootstrap", "bootstrap_rejected", "shape",
]  # fmt: skip
_SHAPE_KEYS = [
    "c", "aspect_opt", "c_interval", "aspect_opt_interval", "aspect_range", "rms_residual", "effect", "n_runs",
    "bootstrap_rejected", "source",
]  # fmt: skip


def _pair(doc: dict[str, Any], key: str) -> tuple[float, float]:
    v = doc.get(key)
    if not (
        isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
    ):
        raise InvalidInputError(f"law.{key} = {v!r} is invalid: expected [lo, hi]", field=f"law.{key}")
    return float(v[0]), float(v[1])


def _read_law_file(spec: str) -> tuple[Law, list[Law]]:
    path = Path(spec)
    if not path.suffix == ".toml" and not path.exists():
        raise InvalidInputError(
            f"law = '{spec}' is invalid: expected one of {', '.join(law_names())} or a law .toml file", field="law"
        )
    return _parse_law(path, _toml.read_toml(path, "law"))


def _parse_law(path: Path, top: dict[str, Any]) -> tuple[Law, list[Law]]:
    """The law and its bootstrap refits from a parsed law file (``path`` names it in errors)."""
    with in_file(path):
        doc = _toml.table(path, top, "law")
        _toml.check_keys(path, "law", doc, _LAW_KEYS)
        e, a, b, alpha, beta = (_toml.number(path, "law", doc, k) for k in ("e", "a", "b", "alpha", "beta"))
        params = _toml.optional_string(path, "law", doc, "params") or "total"
        fit_params, fit_tokens = _pair(doc, "fit_params"), _pair(doc, "fit_tokens")
        shape = None
        if "shape" in doc:
            sdoc = _toml.table(path, doc, "shape")
            _toml.check_keys(path, "law.shape", sdoc, _SHAPE_KEYS)
            shape = (_toml.number(path, "law.shape", sdoc, "c"), _toml.number(path, "law.shape", sdoc, "aspect_opt"))
        law = Law(e, a, b, alpha, beta, params, fit_params, fit_tokens, shape)
        boot = []
        for i, row in enumerate(doc.get("bootstrap", []), 1):
            if not (isinstance(row, list) and len(row) == 5 and all(isinstance(x, int | float) for x in row)):
                raise InvalidInputError(f"law.bootstrap row {i} = {row!r} is invalid: expected [e, a, b, alpha, beta]")
            e_, a_, b_, alpha_, beta_ = (float(x) for x in row)
            boot.append(Law(e_, a_, b_, alpha_, beta_, params, fit_params, fit_tokens, shape))
    return law, boot


def load_runs(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(params, tokens, loss) columns from a CSV with those headers (one run per row; run N is
    line N + 1). Numbers only here: ``fit_law`` (the core) checks their ranges."""
    return _load_columns(path, ("params", "tokens", "loss"))  # type: ignore[return-value]


def load_shape_runs(path: str | os.PathLike[str]) -> tuple[np.ndarray, ...]:
    """(d_model, n_layers, params, tokens, loss) columns from a shape study's CSV (``fit_shape``
    checks their ranges)."""
    return _load_columns(path, ("d_model", "n_layers", "params", "tokens", "loss"))


def _load_columns(path: str | os.PathLike[str], names: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{p}: runs file not found")
    try:
        with p.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise InvalidInputError(f"{p}: not a CSV file ({e})") from None
    cols: dict[str, list[float]] = {k: [] for k in names}
    for i, row in enumerate(rows, 2):
        for k in cols:
            try:
                v = float(row[k])
            except (KeyError, TypeError, ValueError):
                raise InvalidInputError(
                    f"{p}: line {i}: column '{k}' missing or not a number (need {', '.join(names)})"
                ) from None
            cols[k].append(v)
    return tuple(np.array(cols[k], dtype=np.float64) for k in names)


def fit_law(
    params: Any,
    tokens: Any,
    loss: Any,
    n_bootstrap: int = 200,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> LawFit:
    """Fits E, A, B, alpha, beta to runs (the core's Huber fit on log loss, as Hoffmann et al.
    2022 App. D.2), with ``n_bootstrap`` resampled refits for intervals; ``progress(done, total)``
    is called after each refit, and Ctrl-C stops the fit between refits."""
    n, d, l_ = (np.ascontiguousarray(x, dtype=np.float64) for x in (params, tokens, loss))
    return _core.fit_law(n, d, l_, n_bootstrap, seed, progress)


def fit_shape(
    law: Law, d_model: Any, n_layers: Any, params: Any, tokens: Any, loss: Any, n_bootstrap: int = 200, seed: int = 0
) -> ShapeFit:
    """Fits the shape term c (ln(d_model / n_layers / aspect_opt))^2 to runs that differ in shape
    (the core's least squares on the runs' residuals from ``law``, with bootstrap intervals): the
    returned ``ShapeFit.law`` is ``law`` carrying the term, which predict and search then use."""
    d, n, p, t, l_ = (np.ascontiguousarray(x, dtype=np.float64) for x in (d_model, n_layers, params, tokens, loss))
    return _core.fit_shape(law, d, n, p, t, l_, n_bootstrap=n_bootstrap, seed=seed)


def law_file_text(name: str, fit: LawFit, source: str, shape: ShapeFit | None = None, shape_source: str = "") -> str:
    """A law file (TOML, written by tomlkit: any name or source string round-trips), with the
    shape term and its intervals when ``shape`` is given."""
    law = fit.law
    doc = tomlkit.document()
    doc.add(
        tomlkit.comment("A Chinchilla-form law fitted by `timescale fit-law`: L(N, D) = e + a / N^alpha + b / D^beta.")
    )
    table = tomlkit.table()
    for key, value in [
        ("name", name),
        ("e", law.e),
        ("a", law.a),
        ("b", law.b),
        ("alpha", law.alpha),
        ("beta", law.beta),
        ("params", law.params),
        ("fit_params", list(law.fit_params)),
        ("fit_tokens", list(law.fit_tokens)),
        ("n_runs", fit.n_runs),
        ("source", source),
        ("bootstrap_rejected", fit.bootstrap_rejected),
    ]:
        table[key] = value
    table.add(tomlkit.comment("bootstrap refits [e, a, b, alpha, beta]: joint samples for prediction intervals"))
    boot = tomlkit.array()
    boot.multiline(True)
    for b in fit.bootstrap:
        boot.append([b.e, b.a, b.b, b.alpha, b.beta])
    table["bootstrap"] = boot
    intervals = tomlkit.table()
    for iv in fit.intervals:
        intervals[iv.name] = [iv.lo, iv.hi]
    table["intervals"] = intervals
    if shape is not None:
        c, aspect_opt = shape.law.shape or (0.0, 0.0)
        st = tomlkit.table()
        st.add(
            tomlkit.comment("shape term c (ln(d_model / n_layers / aspect_opt))^2, nats/token (fit-law --shape-runs)")
        )
        for key, value in [
            ("c", c),
            ("aspect_opt", aspect_opt),
            ("c_interval", list(shape.c_interval)),
            ("aspect_opt_interval", list(shape.aspect_opt_interval)),
            ("aspect_range", list(shape.aspect_range)),
            ("rms_residual", shape.rms_residual),
            ("effect", shape.effect),
            ("n_runs", shape.n_runs),
            ("bootstrap_rejected", shape.bootstrap_rejected),
            ("source", shape_source),
        ]:
            st[key] = value
        table["shape"] = st
    doc["law"] = table
    return tomlkit.dumps(doc)


def save_law(
    path: str | os.PathLike[str],
    name: str,
    fit: LawFit,
    source: str,
    inputs: Sequence[str | os.PathLike[str]] = (),
    shape: ShapeFit | None = None,
    shape_source: str = "",
) -> None:
    """Writes a law file that ``--law PATH`` and ``get_law`` accept: checked by the same loader
    first, then written atomically (refused over one of ``inputs``, the files the run read)."""
    text = law_file_text(name, fit, source, shape, shape_source)
    _parse_law(Path(path), _toml.parse_toml(text, Path(path)))
    write_atomic(path, text, inputs)
