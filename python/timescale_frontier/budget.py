"""Budgets: wall-clock hours, money, or both (the smaller wins; the core's ``Budget``).

Examples
--------
>>> from timescale_frontier import Hardware
>>> b = resolve(Budget(usd=5000), Hardware.load("tpu_v4"))
>>> round(b.hours), b.limit
(1553, 'money')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from timescale_frontier._core import Budget, ResolvedBudget

if TYPE_CHECKING:
    from timescale_frontier.hardware import Hardware

__all__ = ["Budget", "ResolvedBudget", "as_budget", "resolve"]


def as_budget(budget: Budget | float) -> Budget:
    """A ``Budget``, or hours given as a number (``12`` means ``Budget(hours=12)``)."""
    return budget if isinstance(budget, Budget) else Budget(budget)


def resolve(budget: Budget | float, hardware: Hardware, chips: int = 1) -> ResolvedBudget:
    """What ``budget`` allows on ``chips`` chips of ``hardware``: the seconds, and whether the
    hours or the money limit it (a money budget buys hours at the file's price)."""
    return as_budget(budget).resolve(hardware.core, chips)
