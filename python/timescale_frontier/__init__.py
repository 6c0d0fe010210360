"""timescale-frontier: which transformer to train for a wall-clock budget.

Step time comes from the bytes a training step moves through device memory (MEMCPY, Inbar &
Sernau 2024) and its FLOPs, with a model fitted per chip; the tokens a budget buys feed a
Chinchilla-form law. Every formula lives in the Rust core (``timescale_frontier._core``).

>>> from timescale_frontier import Hardware, search
>>> result = search(Hardware.load("tpu_v4"), hours=12, space={"d_model": [1024, 2048]})
>>> result.best["loss"] > 1.69
True
"""

from timescale_frontier._core import __version__
from timescale_frontier.architecture import Architecture
from timescale_frontier.errors import (
    EmptySpaceError,
    InfeasibleError,
    InvalidInputError,
    SpaceTooLargeError,
    TimescaleError,
)
from timescale_frontier.hardware import Hardware
from timescale_frontier.loss import Law, get_law, law_names
from timescale_frontier.metrics import Prediction, evaluate, predict
from timescale_frontier.search import SearchResult, search
from timescale_frontier.space import SearchSpace, load_space, make_space, parse_axis

__all__ = [
    "__version__",
    "Architecture",
    "Hardware",
    "Law",
    "get_law",
    "law_names",
    "Prediction",
    "predict",
    "evaluate",
    "SearchResult",
    "search",
    "SearchSpace",
    "make_space",
    "load_space",
    "parse_axis",
    "TimescaleError",
    "InvalidInputError",
    "EmptySpaceError",
    "SpaceTooLargeError",
    "InfeasibleError",
]
