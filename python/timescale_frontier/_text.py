"""Small wording helpers shared by the explanations (search) and the renderers."""

from __future__ import annotations

__all__ = ["plural"]


def plural(n: int, noun: str) -> str:
    """``n`` with its noun: "1 layer", "2 layers"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
