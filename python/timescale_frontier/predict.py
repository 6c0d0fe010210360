"""``predict``: every metric of one architecture on one or more chips for a budget (the core's
``predict``; the answer is the core's typed ``Prediction``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from timescale_frontier import _core
from timescale_frontier._core import Architecture, Prediction
from timescale_frontier.budget import Budget, as_budget
from timescale_frontier.hardware import Hardware
from timescale_frontier.loss import Law, get_law

__all__ = ["Prediction", "predict", "Chips"]

#: Chip counts: one count, several to choose from, or ``"auto"`` (powers of two up to the
#: interconnect's ``max_chips``, at most ``AUTO_MAX_CHIPS``, 4096).
Chips = int | Sequence[int] | Literal["auto"]


def predict(
    arch: Architecture,
    hardware: Hardware,
    budget: Budget | float,
    *,
    law: str | Law = "hoffmann",
    unique_tokens: float | None = None,
    chips: Chips = 1,
) -> Prediction:
    """Every metric of ``arch`` trained on ``hardware`` for ``budget`` (a ``Budget``, or hours):
    on ``chips`` chips with the fastest sharding that fits (data parallel, FSDP, tensor parallel or
    a mix); with several counts, the one with the lowest predicted loss (a money budget buys
    fewer hours on more chips). With ``unique_tokens``, repeated data counts for less
    (Muennighoff et al. 2023).

    Examples
    --------
    >>> from timescale_frontier import Architecture, Hardware
    >>> p = predict(Architecture(1024, 16, 16, seq_len=2048, batch_size=16), Hardware.load("h100_sxm"), 12)
    >>> p.fits_memory, p.tokens > 0, p.step.sharding
    (True, True, 'single chip')
    """
    law_obj = get_law(law)
    return _core.predict(
        arch,
        hardware.core,
        as_budget(budget),
        law_obj,
        chips=chips if isinstance(chips, int | str) else list(chips),
        unique_tokens=unique_tokens,
    )
