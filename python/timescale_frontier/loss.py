"""Scaling laws L(N, D) = E + A / N^alpha + B / D^beta (the core's ``Law``): the built-in sets by
name, laws fitted to a user's own runs (``fit_law``) and saved as TOML files usable by ``--law``."""

from __future__ import annotations

import csv
import itertools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import tomlkit

from timescale_frontier import _core, _defaults, _toml
from timescale_frontier._core import Architecture, Law, LawFit, ShapeFit
from timescale_frontier._files import check_readable, record_lines, write_atomic
from timescale_frontier.errors import InvalidInputError, in_file, invalid_value, masked_entries, not_one_dimensional

__all__ = [
    "DEFAULT_LAW",
    "Law",
    "LawFit",
    "ShapeFit",
    "fit_law",
    "fit_law_with_shape",
    "get_law",
    "check_law_name",
    "law_bootstrap",
    "law_file",
    "law_names",
    "loss_term_names",
    "load_runs",
    "load_shape_runs",
    "loss_interval",
    "save_law",
]


#: The default law's name (the core's: ``besiroglu``, Besiroglu et al. 2024's refit of Chinchilla).
DEFAULT_LAW: str = _defaults.LAW


def law_names() -> list[str]:
    """Names of the built-in laws, the default first (``besiroglu``: Besiroglu et al. 2024;
    ``hoffmann``: Hoffmann et al. 2022 eq. 10; ``muennighoff``: Muennighoff et al. 2023). Each
    counts N as total parameters with one embedding matrix at its reference vocabulary, and comes
    with every evidence term on (``Law.terms``)."""
    return list(Law.builtin_names())


def loss_term_names() -> list[str]:
    """The evidence terms a law may have, in order: shape, vocab, context, batch, repetition."""
    return list(Law.term_names())


#: What ``loss_terms`` accepts: "all", "none", a comma-separated list, or a sequence of names.
LossTerms = str | Sequence[str] | None


def _term_list(loss_terms: str | Sequence[str]) -> list[str]:
    """The term names of ``loss_terms`` ("all", "none", "shape,batch" or a sequence); the core
    checks each name."""
    if isinstance(loss_terms, str):
        text = loss_terms.strip().lower()
        if text == "all":
            return loss_term_names()
        if text in ("none", ""):
            return []
        return [t.strip() for t in text.split(",") if t.strip()]
    return [str(t) for t in loss_terms]


def _with_options(law: Law, loss_terms: LossTerms, eval_context: float | None) -> Law:
    if loss_terms is not None:
        law = law.with_terms(_term_list(loss_terms))
    if eval_context is not None:
        law = law.with_eval_context(eval_context)
    return law


def get_law(
    law: str | os.PathLike[str] | Law = DEFAULT_LAW,
    *,
    loss_terms: LossTerms = None,
    eval_context: float | None = None,
) -> Law:
    """A ``Law``: a built-in name, a law file written by ``timescale fit-law``, or the law itself;
    ``loss_terms`` ("all", "none" or names) switches evidence terms on and off (default: the law's
    own: every term for a built-in law, those a law file names), ``eval_context`` sets the
    evaluation context (tokens; the context term on)."""
    if isinstance(law, Law):
        base = law
    else:
        spec = os.fspath(law)
        base = Law.builtin(spec) if spec in law_names() else _read_law_file(spec)[0]
    return _with_options(base, loss_terms, eval_context)


def law_file(law: str | os.PathLike[str] | Law) -> Path | None:
    """The file a ``--law`` value reads (any path, with or without ``.toml``), or None for a
    built-in name or a ``Law``: one of the run's inputs, which no output may replace."""
    if isinstance(law, Law) or os.fspath(law) in law_names():
        return None
    return Path(law)


def law_bootstrap(
    law: str | os.PathLike[str] | Law,
    *,
    loss_terms: LossTerms = None,
    eval_context: float | None = None,
) -> list[Law]:
    """The bootstrap refits saved with a fitted law file (empty for built-in laws and Law objects):
    the joint samples that give a prediction interval on the loss (with the same evidence terms
    as ``get_law`` gives the law)."""
    if isinstance(law, Law) or os.fspath(law) in law_names():
        return []
    return [_with_options(b, loss_terms, eval_context) for b in _read_law_file(os.fspath(law))[1]]


def loss_interval(
    laws: Sequence[Law], arch: Architecture, tokens: float, unique_tokens: float | None = None
) -> tuple[float, float] | None:
    """2.5% and 97.5% percentiles of the loss ``laws`` predict for ``arch`` trained on ``tokens``
    tokens (None without samples): every term of each law, as the search computes it."""
    values = sorted(law.loss_of(arch, tokens, unique_tokens) for law in laws)
    if not values:
        return None
    return values[round(0.025 * (len(values) - 1))], values[round(0.975 * (len(values) - 1))]


_LAW_KEYS = [
    "name", "e", "a", "b", "alpha", "beta", "params", "fit_params", "fit_tokens", "intervals", "n_runs", "source",
    "bootstrap", "bootstrap_rejected", "shape", "terms", "eval_context",
]  # fmt: skip
_SHAPE_KEYS = [
    "c", "aspect_opt", "c_interval", "aspect_opt_interval", "aspect_range", "rms_residual", "effect", "n_runs",
    "bootstrap_rejected", "source",
]  # fmt: skip


def _pair(doc: dict[str, Any], key: str, name: str | None = None) -> tuple[float, float]:
    v = doc.get(key)
    name = name or f"law.{key}"
    if not (
        isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
    ):
        raise invalid_value(name, v, "[lo, hi]")
    return float(v[0]), float(v[1])


def _read_law_file(spec: str) -> tuple[Law, list[Law]]:
    path = Path(spec)
    if not path.suffix == ".toml" and not path.exists():
        expected = f"one of {', '.join(law_names())} or a law .toml file"
        raise InvalidInputError(
            f"law = '{spec}' is invalid: expected {expected}", field="law", value=repr(spec), expected=expected
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
            if not isinstance(doc["shape"], dict):
                raise InvalidInputError(
                    "'law.shape' must be a [law.shape] section",
                    field="law.shape",
                    value=repr(doc["shape"]),
                    expected="a [law.shape] section",
                )
            sdoc = doc["shape"]
            _toml.check_keys(path, "law.shape", sdoc, _SHAPE_KEYS)
            lo, hi = _pair(sdoc, "aspect_range", "law.shape.aspect_range")
            c, opt = (_toml.number(path, "law.shape", sdoc, k) for k in ("c", "aspect_opt"))
            shape = (c, opt, lo, hi)
        law = Law(e, a, b, alpha, beta, params, fit_params, fit_tokens, shape)
        # Evidence terms the file names (a fitted law has none unless its file says so).
        terms = doc.get("terms")
        if terms is not None:
            if not (isinstance(terms, list) and all(isinstance(t, str) for t in terms)):
                raise invalid_value("law.terms", terms, f"a list of names among {', '.join(loss_term_names())}")
        eval_context = _toml.number(path, "law", doc, "eval_context") if "eval_context" in doc else None
        law = _with_options(law, terms, eval_context)
        # Rows [e, a, b, alpha, beta], and with a shape term [..., c, aspect_opt]: joint samples.
        width = 5 if shape is None else 7
        names = "e, a, b, alpha, beta" + ("" if shape is None else ", c, aspect_opt")
        boot = []
        rows = doc.get("bootstrap", [])
        if not isinstance(rows, list):
            raise invalid_value("law.bootstrap", rows, f"a list of rows [{names}]")
        values: list[list[float]] = []
        for i, row in enumerate(rows, 1):
            if not (
                isinstance(row, list)
                and len(row) == width
                and all(isinstance(x, int | float) and not isinstance(x, bool) for x in row)
            ):
                raise InvalidInputError(
                    f"law.bootstrap row {i} = {row!r} is invalid: expected [{names}]",
                    field="law.bootstrap",
                    value=repr(row),
                    expected=f"[{names}]",
                )
            v = [float(x) for x in row]
            values.append(v)
            row_shape = None if shape is None else (v[5], v[6], shape[2], shape[3])
            boot.append(
                _with_options(
                    Law(v[0], v[1], v[2], v[3], v[4], params, fit_params, fit_tokens, row_shape), terms, eval_context
                )
            )
        # A coefficient edited after the fit would make every interval of the file about another law.
        _core.check_law_within_bootstrap([e, a, b, alpha, beta, *((shape[0], shape[1]) if shape else ())], values)
    return law, boot


def load_runs(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(params, tokens, loss) columns from a CSV with those headers (one run per row; run N is
    line N + 1). Numbers only here: ``fit_law`` (the core) checks their ranges."""
    return _load_columns(path, ("params", "tokens", "loss"), "runs")  # type: ignore[return-value]


def load_shape_runs(path: str | os.PathLike[str]) -> tuple[np.ndarray, ...]:
    """(d_model, n_layers, params, tokens, loss) columns from a CSV of runs with their shapes
    (``fit_law_with_shape`` checks their ranges)."""
    return _load_columns(path, ("d_model", "n_layers", "params", "tokens", "loss"), "shape_runs")


def _load_columns(path: str | os.PathLike[str], names: tuple[str, ...], field: str) -> tuple[np.ndarray, ...]:
    """The columns ``names`` of a CSV of runs (``field``: the argument that named the file, in errors)."""
    p = Path(path)
    size = check_readable(p, "runs", field, "an existing CSV file of runs").st_size
    with in_file(p):
        _core.check_runs_file_bytes(size)
    try:  # a byte-order mark (Excel) is skipped; every line is bounded (``record_lines``)
        reader = csv.DictReader(record_lines(p))
        rows = list(itertools.islice(reader, _core.MAX_RUNS + 1))
        if len(rows) > _core.MAX_RUNS:  # counted to the end, not kept
            with in_file(p):
                _core.check_run_count(len(rows) + sum(1 for _ in reader))
    except (UnicodeDecodeError, csv.Error) as e:
        raise InvalidInputError(
            f"{p}: not a CSV file ({e})", field=field, value=str(p), expected="a UTF-8 CSV file"
        ) from None
    except OSError as e:
        raise InvalidInputError(
            f"{p}: cannot read ({e.strerror})", field=field, value=str(p), expected="a readable CSV file"
        ) from None
    cols: dict[str, list[float]] = {k: [] for k in names}
    for i, row in enumerate(rows, 2):
        for k in cols:
            try:
                v = float(row[k])
            except (KeyError, TypeError, ValueError):
                raise InvalidInputError(
                    f"{p}: line {i}: column '{k}' missing or not a number (need {', '.join(names)})",
                    field=k,
                    value=repr(row.get(k)),
                    expected="a number",
                ) from None
            cols[k].append(v)
    return tuple(np.array(cols[k], dtype=np.float64) for k in names)


#: Longest law name: NAME.law.toml must be a valid file name (255 bytes on common file systems).
MAX_LAW_NAME_BYTES = 200


def check_law_name(name: str) -> None:
    """Raises ``InvalidInputError`` unless ``name`` can name a law's default file
    ``NAME.law.toml`` in the current directory (``fit-law`` without ``--out``): plain text of at most ``MAX_LAW_NAME_BYTES`` UTF-8
    bytes, no path separator, not ``.`` or ``..`` (a name must never write outside the directory)."""
    expected = (
        f"a plain file name of at most {MAX_LAW_NAME_BYTES} bytes: no / or \\, not . or .., no control characters"
    )
    separators = {"/", "\\", os.sep, *([os.altsep] if os.altsep else [])}
    bad = (
        not name.strip()
        or name in (".", "..")
        or any(c in name for c in separators)
        or len(name.encode("utf-8", "surrogatepass")) > MAX_LAW_NAME_BYTES
        or not name.isprintable()
    )
    if bad:
        raise invalid_value("name", name, expected)


def fit_law(
    params: Any,
    tokens: Any,
    loss: Any,
    n_bootstrap: int = _defaults.N_BOOTSTRAP,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> LawFit:
    """Fits E, A, B, alpha, beta to runs (the core's Huber fit on log loss, as Hoffmann et al.
    2022 App. D.2), with ``n_bootstrap`` resampled refits for intervals; ``progress(done, total)``
    is called after each refit, and Ctrl-C stops the fit between refits."""
    n, d, l_ = (_column(k, x) for k, x in (("params", params), ("tokens", tokens), ("loss", loss)))
    return _core.fit_law(n, d, l_, n_bootstrap, seed, progress)


def _column(name: str, x: Any) -> npt.NDArray[np.float64]:
    """A column of runs as a contiguous 1-D float64 array (the core checks the values); masked entries
    are refused, as ``evaluate`` refuses them (converting would fit the values under the mask)."""
    if np.ma.isMaskedArray(x) and np.ma.getmaskarray(x).any():
        raise masked_entries(name)
    try:
        arr = np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"{name}: not a column of numbers", field=name, value=type(x).__name__, expected="a 1-D column of numbers"
        ) from None
    if arr.ndim != 1:
        raise not_one_dimensional(name, arr.shape)
    return arr


def fit_law_with_shape(
    runs: Sequence[Any],
    shape_runs: Sequence[Any],
    n_bootstrap: int = _defaults.N_BOOTSTRAP,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[LawFit, ShapeFit]:
    """A law with a shape term c (ln(d_model / n_layers / aspect_opt))^2 (the core's
    ``fit_law_with_shape``): ``runs`` and ``shape_runs`` are (d_model, n_layers, params, tokens,
    loss) columns; the term is fitted to ``shape_runs`` (runs that differ in shape at a similar size
    and token count), and the law to ``runs`` net of it, so the term is not counted twice. The
    returned ``LawFit.law`` carries the term; predict and search then use it."""
    if len(runs) != 5 or len(shape_runs) != 5:
        field, given = ("runs", runs) if len(runs) != 5 else ("shape_runs", shape_runs)
        raise InvalidInputError(
            "runs and shape_runs need 5 columns each: d_model, n_layers, params, tokens, loss",
            field=field,
            value=f"{len(given)} columns",
            expected="5 columns: d_model, n_layers, params, tokens, loss",
        )
    columns = ("d_model", "n_layers", "params", "tokens", "loss")
    d, n, p, t, l_ = (_column(k, x) for k, x in zip(columns, runs, strict=True))
    sd, sn, sp, st, sl = (_column(f"shape_runs {k}", x) for k, x in zip(columns, shape_runs, strict=True))
    return _core.fit_law_with_shape(
        d, n, p, t, l_, sd, sn, sp, st, sl, n_bootstrap=n_bootstrap, seed=seed, progress=progress
    )


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
    table.add(
        tomlkit.comment(
            "bootstrap refits [e, a, b, alpha, beta"
            + (", c, aspect_opt" if shape is not None else "")
            + "]: joint samples for prediction intervals"
        )
    )
    boot = tomlkit.array()
    boot.multiline(True)
    for b in fit.bootstrap:
        boot.append([b.e, b.a, b.b, b.alpha, b.beta, *(b.shape[:2] if shape is not None and b.shape else ())])
    table["bootstrap"] = boot
    intervals = tomlkit.table()
    for iv in fit.intervals:
        intervals[iv.name] = [iv.lo, iv.hi]
    table["intervals"] = intervals
    if shape is not None:
        c, aspect_opt, lo, hi = shape.term
        st = tomlkit.table()
        st.add(
            tomlkit.comment("shape term c (ln(d_model / n_layers / aspect_opt))^2, nats/token (fit-law --shape-runs)")
        )
        for key, value in [
            ("c", c),
            ("aspect_opt", aspect_opt),
            ("c_interval", list(shape.c_interval)),
            ("aspect_opt_interval", list(shape.aspect_opt_interval)),
            ("aspect_range", [lo, hi]),
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
    _parse_law(Path(path), _toml.parse_toml(text, Path(path), "law"))
    write_atomic(path, text, inputs)
