"""``predict``: every metric of one architecture on one or more chips for a budget (the core's
``predict``; the answer is the core's typed ``Prediction``)."""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from timescale_frontier import _core
from timescale_frontier._core import Architecture, Layout, Prediction
from timescale_frontier.budget import Budget, as_budget
from timescale_frontier.hardware import Hardware, as_hardware
from timescale_frontier.loss import DEFAULT_LAW, Law, LossTerms, get_law

__all__ = ["Prediction", "predict", "Chips", "as_chips"]

#: Chip counts: one count, several to choose from, or ``"auto"`` (powers of two up to the
#: interconnect's ``max_chips``, at most ``_core.DEFAULTS["auto_max_chips"]``).
Chips = int | Sequence[int] | Literal["auto"]


def as_chips(chips: Any) -> Any:
    """``chips`` as the core takes it: a count (numpy integers too), ``"auto"``, or a list of
    counts from any iterable; anything else as given, for the core to refuse with its message."""
    if isinstance(chips, str | numbers.Integral) or not isinstance(chips, Iterable):
        return int(chips) if isinstance(chips, numbers.Integral) and not isinstance(chips, bool) else chips
    return [int(c) if isinstance(c, numbers.Integral) and not isinstance(c, bool) else c for c in chips]


def predict(
    arch: Architecture,
    hardware: Hardware | str | os.PathLike[str],
    budget: Budget | float | None = None,
    *,
    law: str | Law = DEFAULT_LAW,
    loss_terms: LossTerms = None,
    eval_context: float | None = None,
    unique_tokens: float | None = None,
    chips: Chips = 1,
    tokens: float | None = None,
    layout: Layout | None = None,
) -> Prediction:
    """Every metric of ``arch`` trained on ``hardware`` for ``budget`` (a ``Budget``, or hours):
    on ``chips`` chips with the fastest sharding that fits (data parallel, FSDP, tensor parallel or
    a mix); with several counts, among those where it fits in memory, the one with the lowest
    predicted loss (a money budget buys fewer hours on more chips; ``chip_counts`` lists every
    count's loss, also where it does not fit). With ``unique_tokens``, repeated data counts for less
    (Muennighoff et al. 2023). With ``tokens`` instead of a budget: trained for that many tokens
    (whole steps), the loss term by term (``loss_terms``) and the wall-clock time it takes
    (``budget.hours``), on one chip count. With ``layout`` (a ``Layout``: tensor, pipeline, context
    and expert parallel degrees, ZeRO stage, matmul precision), exactly that layout on its chips.

    Examples
    --------
    >>> from timescale_frontier import Architecture, Hardware
    >>> p = predict(Architecture(1024, 16, 16, seq_len=2048, batch_size=16), Hardware.load("h100_sxm"), 12)
    >>> p.fits_memory, p.tokens > 0, p.step.sharding
    (True, True, 'single chip')
    """
    hardware = as_hardware(hardware)
    law_obj = get_law(law, loss_terms=loss_terms, eval_context=eval_context)
    if tokens is not None or budget is None:
        return _core.predict_tokens(
            arch, hardware.core, tokens, law_obj, chips=as_chips(chips), unique_tokens=unique_tokens, layout=layout
        )
    return _core.predict(
        arch,
        hardware.core,
        as_budget(budget),
        law_obj,
        chips=as_chips(chips),
        unique_tokens=unique_tokens,
        layout=layout,
    )
