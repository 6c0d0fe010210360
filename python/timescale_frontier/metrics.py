"""``evaluate``: every metric of many architectures given as numpy columns, on one chip (the
core's ``evaluate_columns``: the same defaults and checks as one ``Architecture``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from timescale_frontier import _core
from timescale_frontier.budget import Budget, as_budget
from timescale_frontier.errors import InvalidInputError, masked_entries, not_one_dimensional
from timescale_frontier.hardware import Hardware, as_hardware
from timescale_frontier.loss import DEFAULT_LAW, Law, LossTerms, get_law

__all__ = ["Evaluation", "evaluate"]

_INT: tuple[str, ...] = ("d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff", "seq_len")
_INT += ("batch_size", "vocab_size", "micro_batch", "experts", "top_k", "shared_experts")
_CATEGORICAL = ("mlp", "attention", "recompute")
_FLOAT = ("param_bytes", "activation_bytes", "optimizer_bytes")
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Evaluation:
    """Metric columns of ``evaluate`` (numpy arrays, one value per row; units in the names).
    ``loss`` is masked where not one step fits in the budget (the masked entries hold inf; no
    entry is NaN)."""

    params: FloatArray
    non_embedding_params: FloatArray
    flops_per_step: FloatArray
    memcpy_bytes_per_step: FloatArray
    memory_bytes: FloatArray
    fits_memory: npt.NDArray[np.bool_]
    step_time_s: FloatArray
    steps: FloatArray
    tokens: FloatArray
    effective_tokens: FloatArray
    loss: np.ma.MaskedArray[Any, np.dtype[np.float64]]

    def __len__(self) -> int:
        return len(self.params)


def _convert(name: str, value: Any) -> Any:
    """A column as the core takes it: a Python scalar, or a C-contiguous 1-D array of the core's
    dtype; categorical columns as a name or ``(names, codes)``. Types only; the core checks values."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if np.ma.isMaskedArray(value) and np.ma.getmaskarray(value).any():
        raise masked_entries(name)
    if name in _CATEGORICAL and _is_names_and_codes(value):  # (names, codes), as given
        names, codes = value
        if isinstance(names, str):
            raise InvalidInputError(
                f"{name}: (names, codes) needs a list of names, got {names!r}",
                field=name,
                value=repr(names),
                expected="(names, codes) with names a list, e.g. (['gelu', 'swiglu'], codes)",
            )
        codes = np.asarray(codes)
        if codes.ndim != 1 or codes.dtype.kind not in "iu":
            raise InvalidInputError(
                f"{name}: codes must be a one-dimensional integer array, got shape {codes.shape} dtype {codes.dtype}",
                field=name,
                value=f"codes of shape {codes.shape}, dtype {codes.dtype}",
                expected="(names, codes) with codes a one-dimensional integer array",
            )
        return ([str(n) for n in names], _int64(codes))
    try:
        arr = np.asarray(value)
    except ValueError as e:  # ragged nested sequences
        raise InvalidInputError(
            f"{name}: not a column ({e})", field=name, value=type(value).__name__, expected="a one-dimensional column"
        ) from None
    if name == "micro_batch" and arr.dtype == object:  # None: the whole batch (0 in a column)
        arr = np.array([0 if v is None else v for v in arr.ravel()]).reshape(arr.shape)
    if arr.ndim == 0:
        return arr.item()
    if arr.ndim != 1:
        raise not_one_dimensional(name, arr.shape)
    if name in _CATEGORICAL:
        names, codes = np.unique(arr.astype(str), return_inverse=True)
        return ([str(n) for n in names], np.ascontiguousarray(codes, dtype=np.int64))
    if name == "tied_embeddings":
        if arr.dtype.kind != "b":
            raise InvalidInputError(
                f"tied_embeddings: expected booleans, got dtype {arr.dtype}",
                field=name,
                value=f"dtype {arr.dtype}",
                expected="booleans",
            )
        return np.ascontiguousarray(arr)
    if name in _FLOAT:
        if arr.dtype.kind not in "iuf":
            raise InvalidInputError(
                f"{name}: expected numbers, got dtype {arr.dtype}",
                field=name,
                value=f"dtype {arr.dtype}",
                expected="numbers",
            )
        return np.ascontiguousarray(arr, dtype=np.float64)
    if arr.dtype.kind not in "iu":
        raise InvalidInputError(
            f"{name}: expected an integer array, got dtype {arr.dtype}",
            field=name,
            value=f"dtype {arr.dtype}",
            expected="an integer array",
        )
    return _int64(arr)


def _is_names_and_codes(value: Any) -> bool:
    """Whether a categorical column is given as ``(names, codes)``: a pair whose second item is an
    array or a list of codes (a pair of two names, ``("gelu", "swiglu")``, is a column of names)."""
    return isinstance(value, tuple) and len(value) == 2 and not isinstance(value[1], str) and np.ndim(value[1]) >= 1


def _int64(arr: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """An integer array as int64, C-contiguous; unsigned values beyond int64 saturate (the core's
    range check then refuses them, naming the row) instead of wrapping to negative numbers."""
    if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
        arr = np.minimum(arr, np.iinfo(np.int64).max)
    return np.ascontiguousarray(arr, dtype=np.int64)


def evaluate(
    hardware: Hardware | str | os.PathLike[str],
    budget: Budget | float,
    *,
    law: str | Law = DEFAULT_LAW,
    loss_terms: LossTerms = None,
    eval_context: float | None = None,
    unique_tokens: float | None = None,
    **columns: Any,
) -> Evaluation:
    """Every metric of the architectures given as columns (``d_model``, ``n_layers``, ``n_heads``
    required; the other ``Architecture`` fields optional, with its defaults): numpy arrays of one
    length, or scalars for every row; ``mlp``, ``attention`` and ``recompute`` as names, arrays of
    names, or ``(names, codes)`` (codes index names, as a categorical); ``micro_batch`` 0 runs the
    whole batch at once; ``experts`` 0 is a dense MLP (a mixture needs ``top_k``; ``params`` counts
    every expert). One chip of ``hardware``, ``budget`` a ``Budget`` or hours.

    Examples
    --------
    >>> import numpy as np
    >>> from timescale_frontier import Hardware
    >>> m = evaluate(Hardware.load("tpu_v4"), 12, d_model=np.array([512, 1024]), n_layers=8, n_heads=8)
    >>> bool(m.params[1] > m.params[0])
    True
    """
    hardware = as_hardware(hardware)
    known = {*_INT, *_CATEGORICAL, "tied_embeddings", *_FLOAT}
    unknown = sorted(set(columns) - known)
    if unknown:
        fields = ", ".join(sorted(known))
        raise InvalidInputError(
            f"{unknown[0]}: not an architecture field (fields: {fields})",
            field=unknown[0],
            value=repr(unknown[0]),
            expected=f"one of {fields}",
        )
    out = _core.evaluate(
        hardware.core,
        as_budget(budget),
        get_law(law, loss_terms=loss_terms, eval_context=eval_context),
        unique_tokens=unique_tokens,
        **{k: _convert(k, v) for k, v in columns.items()},
    )
    return Evaluation(
        params=out.params,
        non_embedding_params=out.non_embedding_params,
        flops_per_step=out.flops_per_step,
        memcpy_bytes_per_step=out.memcpy_bytes_per_step,
        memory_bytes=out.memory_bytes,
        fits_memory=out.fits_memory,
        step_time_s=out.step_time_s,
        steps=out.steps,
        tokens=out.tokens,
        effective_tokens=out.effective_tokens,
        loss=np.ma.masked_invalid(out.loss),
    )
