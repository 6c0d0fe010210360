"""Scaling laws L(N, D) = E + A / N^alpha + B / D^beta (the core's ``Law``), selectable by name."""

from __future__ import annotations

from timescale_frontier._core import Law

__all__ = ["Law", "get_law", "law_names"]


def law_names() -> list[str]:
    """Names of the built-in laws (``hoffmann``: Hoffmann et al. 2022 eq. 10; ``besiroglu``:
    Besiroglu et al. 2024). Both count N as total parameters, embeddings included."""
    return list(Law.builtin_names())


def get_law(law: str | Law) -> Law:
    """A ``Law`` by name, or the law itself."""
    return law if isinstance(law, Law) else Law.builtin(law)
