"""Search spaces: the core's ``SearchSpace`` built from CLI flags (``--d-model 512,1024`` or
``--d-model 128:8192:128``) and TOML space files (``--space space.toml``).

Axis value syntax, shared by flags and files: a comma-separated list of items, each a value or an
inclusive range ``start:stop:step`` (arithmetic) or ``start:stop:*factor`` (geometric). In a TOML
file an axis may also be a list of values.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from timescale_frontier import _toml
from timescale_frontier._core import SearchSpace
from timescale_frontier.errors import EmptySpaceError, InvalidInputError, in_file, invalid_value

__all__ = ["SearchSpace", "AXES", "parse_axis", "load_space", "make_space"]

#: Axis name -> value kind. ``n_heads = d_model / head_dim``, ``n_kv_heads = n_heads / kv_group``,
#: ``d_ff = round(ffn_mult x d_model)``; ``micro_batch``: sequences per micro-step on one chip, or
#: ``none`` (the whole per-chip batch at once).
AXES: dict[str, str] = {
    "d_model": "int",
    "n_layers": "int",
    "head_dim": "int",
    "kv_group": "int",
    "mlp": "choice:gelu,swiglu",
    "ffn_mult": "float",
    "attention": "choice:flash,materialized",
    "tied_embeddings": "bool",
    "vocab_size": "int",
    "seq_len": "int",
    "recompute": "choice:none,full,selective",
    "micro_batch": "micro",
    "batch_size": "int",
}
PRECISION_KEYS = ("param_bytes", "activation_bytes", "optimizer_bytes")
#: Settings of a space that are not axes: the precisions (bytes) and ``d_ff_multiple`` (``d_ff`` is
#: ``ffn_mult x d_model`` rounded to a multiple of it; default 64, 1 for the exact ratio).
SETTINGS = (*PRECISION_KEYS, "d_ff_multiple")
MAX_AXIS_VALUES = 1_000_000
_TRUE = {"true", "tied", "yes", "1"}
_FALSE = {"false", "untied", "no", "0"}


def _range(name: str, item: str, kind: str) -> list[Any]:
    parts = item.split(":")
    given = repr(item)
    if len(parts) != 3:
        raise InvalidInputError(
            f"{name}: '{item}' is invalid: expected a value or start:stop:step or start:stop:*factor",
            field=name,
            value=given,
            expected="a value or start:stop:step or start:stop:*factor",
        )
    conv = float if kind == "float" else int
    try:
        start, stop = conv(parts[0]), conv(parts[1])
        geometric = parts[2].startswith("*")
        step = conv(parts[2][1:] if geometric else parts[2])
    except ValueError:
        raise InvalidInputError(
            f"{name}: '{item}' is invalid: range bounds and step must be {kind}s",
            field=name,
            value=given,
            expected=f"{kind} range bounds and step",
        ) from None
    if conv is int and not all(-(2**63) <= x < 2**63 for x in (start, stop, step)):
        raise InvalidInputError(
            f"{name}: '{item}' is invalid: expected integers of at most 64 bits",
            field=name,
            value=given,
            expected="integers of at most 64 bits",
        )
    # A range must end: bounds finite, going up, a geometric one from a positive start.
    if not all(math.isfinite(x) for x in (start, stop, step)) or start <= 0 or stop < start:
        raise InvalidInputError(
            f"{name}: '{item}' is invalid: expected 0 < start <= stop",
            field=name,
            value=given,
            expected="0 < start <= stop",
        )
    if (geometric and step <= 1) or (not geometric and step <= 0):
        raise InvalidInputError(
            f"{name}: '{item}' is invalid: step must be > 0 (factor > 1)",
            field=name,
            value=given,
            expected="step > 0 (factor > 1)",
        )
    count = math.log(stop / start, step) + 1 if geometric else (stop - start) / step + 1
    if count > MAX_AXIS_VALUES:
        raise InvalidInputError(
            f"{name}: '{item}' has {count:.3g} values; at most {MAX_AXIS_VALUES} per axis",
            field=name,
            value=given,
            expected=f"at most {MAX_AXIS_VALUES} values per axis",
        )
    # The k-th value from the start (never a running sum: 1e16 + 1 or 4 + 1e-300 would never advance),
    # `count` of them, which the check above bounded.
    out = []
    for k in range(math.floor(count * (1 + 1e-12) + 1e-9)):
        x = start * step**k if geometric else start + k * step
        if x > stop * (1 + 1e-12):
            break
        out.append(conv(round(x, 12)) if kind == "float" else conv(x))
    return out


def _scalar(name: str, raw: Any, kind: str) -> Any:
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        s = str(raw).strip().lower()
        if s in _TRUE or s in _FALSE:
            return s in _TRUE
        raise InvalidInputError(
            f"{name}: {raw!r} is invalid: expected true/false (or tied/untied)",
            field=name,
            value=repr(raw),
            expected="true/false (or tied/untied)",
        )
    if kind.startswith("choice:"):  # the core checks the name
        return str(raw).strip().lower()
    if kind == "micro":
        if raw is None or str(raw).strip().lower() in ("none", "whole"):
            return None
        kind = "int"
    if isinstance(raw, bool):
        raise InvalidInputError(
            f"{name}: {raw!r} is invalid: expected a number", field=name, value=repr(raw), expected="a number"
        )
    try:
        return float(raw) if kind == "float" else _to_int(raw)
    except OverflowError:
        raise InvalidInputError(
            f"{name}: {raw!r} is invalid: expected an integer of at most 64 bits",
            field=name,
            value=repr(raw),
            expected="an integer of at most 64 bits",
        ) from None
    except (TypeError, ValueError):
        expected = "a number" if kind == "float" else "an integer"
        raise InvalidInputError(
            f"{name}: {raw!r} is invalid: expected {expected}", field=name, value=repr(raw), expected=expected
        ) from None


def _to_int(raw: Any) -> int:
    """An integer that fits in 64 bits (the core's ranges are checked next, by the core)."""
    if isinstance(raw, numbers.Integral):  # int, numpy integers (exact beyond 2^53)
        v = int(raw)
    else:
        f = float(raw)
        if not f.is_integer():
            raise ValueError(raw)
        v = int(f)
    if not -(2**63) <= v < 2**63:
        raise OverflowError(raw)
    return v


def parse_axis(name: str, value: Any) -> list[Any]:
    """Values of axis ``name`` from a flag string, a TOML list or a scalar; sorted, de-duplicated."""
    if name not in AXES:
        raise InvalidInputError(
            f"unknown search-space axis '{name}' (axes: {', '.join(AXES)})",
            field=name,
            value=repr(name),
            expected=f"one of {', '.join(AXES)}",
        )
    kind = AXES[name]
    items: list[Any]
    if isinstance(value, str):
        items = [s.strip() for s in value.split(",")]
    elif isinstance(value, Iterable) and not isinstance(value, bytes | dict):  # a list, tuple, range, 1-D array
        items = list(value)
    else:
        items = [value]
    if not items or any(isinstance(i, str) and not i for i in items):
        raise EmptySpaceError(
            f"{name}: empty value list (give at least one value)",
            field=name,
            value=repr(value),
            expected="at least one value",
        )
    out: list[Any] = []
    for item in items:
        if isinstance(item, str) and ":" in item and kind in ("int", "float", "micro"):
            out.extend(_range(name, item, kind))
        else:
            out.append(_scalar(name, item, kind))
        if len(out) > MAX_AXIS_VALUES:
            raise InvalidInputError(
                f"{name}: more than {MAX_AXIS_VALUES} values",
                field=name,
                value=f"{len(out)} values",
                expected=f"at most {MAX_AXIS_VALUES} values per axis",
            )
    if kind in ("int", "micro") and any(v is not None and not -(2**63) <= v < 2**63 for v in out):
        raise InvalidInputError(
            f"{name}: '{value}' is invalid: expected integers of at most 64 bits",
            field=name,
            value=repr(value),
            expected="integers of at most 64 bits",
        )
    if kind in ("int", "float"):
        return sorted(set(out))
    if kind == "micro":
        return sorted(set(out), key=lambda m: (m is not None, m or 0))
    return list(dict.fromkeys(out))


def load_space(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Axis overrides from a TOML space file: keys at top level or under ``[space]``."""
    p = Path(path)
    doc = _toml.read_toml(p, "search-space", "space")
    if "space" in doc:
        _toml.check_keys(p, "", doc, ["space"])
        doc = _toml.table(p, doc, "space")
    _toml.check_keys(p, "space", doc, list(AXES) + list(SETTINGS))
    with in_file(p):
        return {k: v if k in SETTINGS else parse_axis(k, v) for k, v in doc.items()}


def make_space(overrides: dict[str, Any] | None = None, origin: str = "") -> SearchSpace:
    """The default space with ``overrides`` (axis -> values; precision keys -> bytes;
    ``d_ff_multiple`` -> the multiple ``d_ff`` is rounded to) applied.

    Examples
    --------
    >>> make_space().size
    62914560
    >>> make_space({"d_model": parse_axis("d_model", "512,1024")}).size
    1966080
    """
    with in_file(origin) if origin else nullcontext():
        kwargs: dict[str, Any] = {k: v if k in SETTINGS else parse_axis(k, v) for k, v in (overrides or {}).items()}
        for key in PRECISION_KEYS:
            v = kwargs.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real)):
                raise invalid_value(key, v, "a number of bytes")
        multiple = kwargs.get("d_ff_multiple")
        if multiple is not None and (isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1):
            raise invalid_value("d_ff_multiple", multiple, "an integer in [1, 4096] (1: the exact ratio)")
        return SearchSpace(**kwargs)
