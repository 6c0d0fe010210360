"""``predict`` (every metric of one configuration) and ``evaluate`` (numpy columns of many).
Both call the core; nothing here computes a formula."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from timescale_frontier import _core
from timescale_frontier.architecture import Architecture
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import Hardware
from timescale_frontier.loss import Law, get_law

SECONDS_PER_HOUR = 3600.0


def budget_seconds(hours: float, field: str = "hours") -> float:
    """Validates a budget in hours and converts it to seconds."""
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not math.isfinite(hours) or hours <= 0:
        raise InvalidInputError(f"{field} = {hours!r} is invalid: expected a finite number of hours > 0")
    seconds = float(hours) * SECONDS_PER_HOUR
    if seconds > 1e10:
        raise InvalidInputError(f"{field} = {hours!r} is invalid: expected at most {1e10 / SECONDS_PER_HOUR:.3g} hours")
    return seconds


@dataclass(frozen=True)
class Prediction:
    """Every metric of one configuration trained for a budget on one chip. Units in the names."""

    params: float
    non_embedding_params: float
    flops_per_step: float
    memcpy_bytes_per_step: float
    memory_bytes: float
    fits_memory: bool
    step_time_s: float
    steps: float
    tokens: float
    #: Tokens the loss law sees (fewer than ``tokens`` when limited unique data is repeated).
    effective_tokens: float
    #: Passes over the unique data (``None`` when the data is unlimited).
    epochs: float | None
    tokens_per_step: float
    #: Predicted final loss (nats/token); ``None`` when not one step fits in the budget.
    loss: float | None
    #: Why the prediction may not be trusted (outside the law's fitted range, the shape guard,
    #: the critical batch, memory, or the budget); empty when inside every validated range.
    warnings: list[str]
    #: Chips trained on; with more than one, memory and MEMCPY are per chip.
    chips: int = 1
    #: The step as trained: ``sharding`` (e.g. "FSDP 4 x TP 2"), ``dp``, ``tp``, ``fsdp``,
    #: per-chip ``memory_bytes``, ``compute_s``, ``dp_comm_s``, ``tp_comm_s``, ``dp_comm_bytes``,
    #: ``tp_comm_bytes``, ``step_time_s`` and ``bound`` (memory, compute or communication); when no
    #: sharding fits, the one with the least memory per chip (``fits_memory`` is then false).
    step: dict[str, Any] | None = None
    #: Every sharding considered, for chips > 1: the ``step`` fields of those that divide the
    #: configuration, with ``divides`` and ``fits_memory``.
    shardings: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predict(
    arch: Architecture,
    hardware: Hardware,
    hours: float,
    law: str | Law = "hoffmann",
    unique_tokens: float | None = None,
    chips: int = 1,
) -> Prediction:
    """Every metric of ``arch`` trained for ``hours`` on ``chips`` chips of ``hardware`` (with
    more than one, the fastest sharding that fits: data parallel, FSDP, tensor parallel or a
    combination; see the core's ``sharding`` module); with ``unique_tokens``, repeated data counts
    for less (Muennighoff et al. 2023).

    Examples
    --------
    >>> from timescale_frontier import Architecture, Hardware
    >>> p = predict(Architecture(d_model=1024, n_layers=16, n_heads=16, seq_len=2048, batch_size=16),
    ...             Hardware.load("h100_sxm"), hours=12)
    >>> p.fits_memory, p.tokens > 0
    (True, True)
    """
    hardware.check_chips(chips)
    return Prediction(
        **_core.predict(
            arch,
            hardware.core,
            budget_seconds(hours),
            get_law(law),
            unique_tokens,
            chips,
            hardware.collective_bytes_per_s if chips > 1 else None,
        )
    )


def hours_from_usd(budget_usd: float, usd_per_chip_hour: float, chips: int = 1) -> float:
    """Hours of training a money budget buys (the core's ``budget_s_from_usd``)."""
    return _core.budget_s_from_usd(budget_usd, usd_per_chip_hour, float(chips)) / SECONDS_PER_HOUR


_INT_COLUMNS = (
    "d_model",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "head_dim",
    "d_ff",
    "seq_len",
    "batch_size",
    "vocab_size",
)
_CODES = {"mlp": {"gelu": 0, "swiglu": 1}, "attention": {"materialized": 0, "flash": 1}}


def _int_column(name: str, values: Any, n: int) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise InvalidInputError(f"{name}: expected whole numbers")
    elif arr.dtype.kind not in "iub":
        raise InvalidInputError(f"{name}: expected integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(np.broadcast_to(arr, (n,)), dtype=np.int64)


def _code_column(name: str, values: Any, n: int) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.dtype.kind in "US":
        codes = _CODES[name]
        bad = sorted(set(arr.ravel().tolist()) - set(codes))
        if bad:
            raise InvalidInputError(f"{name}: {bad[0]!r} is invalid: expected one of {', '.join(codes)}")
        arr = np.vectorize(codes.__getitem__, otypes=[np.int64])(arr)
    return np.ascontiguousarray(np.broadcast_to(arr, (n,)), dtype=np.int64)


def evaluate(
    hardware: Hardware,
    hours: float,
    *,
    d_model: Any,
    n_layers: Any,
    n_heads: Any,
    n_kv_heads: Any = None,
    head_dim: Any = None,
    d_ff: Any = None,
    mlp: Any = "gelu",
    attention: Any = "flash",
    tied_embeddings: Any = False,
    seq_len: Any = 2048,
    batch_size: Any = 32,
    vocab_size: Any = 32000,
    param_bytes: float = 4.0,
    activation_bytes: float = 2.0,
    optimizer_bytes: float = 4.0,
    law: str | Law = "hoffmann",
    unique_tokens: float | None = None,
) -> dict[str, npt.NDArray[Any]]:
    """Vectorized metrics over numpy columns (scalars broadcast). Defaults as in ``Architecture``:
    ``n_kv_heads = n_heads``, ``head_dim = d_model // n_heads``, ``d_ff = 4 d_model``.

    Returns a dict of arrays: ``params``, ``non_embedding_params``, ``flops_per_step``,
    ``memcpy_bytes_per_step``, ``memory_bytes``, ``fits_memory``, ``step_time_s``, ``steps``,
    ``tokens`` and ``loss``, a masked array masked where not one step fits in the budget (no
    NaN or infinity is ever returned).

    Examples
    --------
    >>> import numpy as np
    >>> from timescale_frontier import Hardware
    >>> m = evaluate(Hardware.load("tpu_v4"), 12, d_model=np.array([512, 1024]), n_layers=8, n_heads=8)
    >>> bool(m["params"][1] > m["params"][0])
    True
    """
    given = [
        v
        for v in (
            d_model,
            n_layers,
            n_heads,
            n_kv_heads,
            head_dim,
            d_ff,
            mlp,
            attention,
            tied_embeddings,
            seq_len,
            batch_size,
            vocab_size,
        )
        if v is not None
    ]
    try:
        shape = np.broadcast_shapes(*(np.shape(v) for v in given))
    except ValueError:
        raise InvalidInputError("columns have different lengths (give arrays of one length, or scalars)") from None
    if len(shape) > 1:
        raise InvalidInputError(f"columns must be one-dimensional, got shape {shape}")
    n = shape[0] if shape else 1
    cols = dict(d_model=d_model, n_layers=n_layers, n_heads=n_heads)
    ints = {k: _int_column(k, v, n) for k, v in cols.items()}
    ints["n_kv_heads"] = ints["n_heads"] if n_kv_heads is None else _int_column("n_kv_heads", n_kv_heads, n)
    if head_dim is None:
        if np.any(ints["n_heads"] <= 0) or np.any(ints["d_model"] % np.maximum(ints["n_heads"], 1)):
            raise InvalidInputError("head_dim: give it explicitly where n_heads does not divide d_model")
        ints["head_dim"] = ints["d_model"] // ints["n_heads"]
    else:
        ints["head_dim"] = _int_column("head_dim", head_dim, n)
    ints["d_ff"] = 4 * ints["d_model"] if d_ff is None else _int_column("d_ff", d_ff, n)
    for k, v in dict(seq_len=seq_len, batch_size=batch_size, vocab_size=vocab_size).items():
        ints[k] = _int_column(k, v, n)
    out: dict[str, npt.NDArray[Any]] = _core.evaluate(
        ints["d_model"],
        ints["n_layers"],
        ints["n_heads"],
        ints["n_kv_heads"],
        ints["head_dim"],
        ints["d_ff"],
        _code_column("mlp", mlp, n),
        _code_column("attention", attention, n),
        _int_column("tied_embeddings", tied_embeddings, n),
        ints["seq_len"],
        ints["batch_size"],
        ints["vocab_size"],
        float(param_bytes),
        float(activation_bytes),
        float(optimizer_bytes),
        hardware.core,
        budget_seconds(hours),
        get_law(law),
        unique_tokens,
    )
    out["loss"] = np.ma.masked_invalid(out["loss"])
    return out
