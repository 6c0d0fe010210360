"""timescale-frontier: which transformer to train for a wall-clock budget.

Step time comes from the bytes a training step moves through device memory (MEMCPY, Inbar &
Sernau 2024) and its FLOPs, with a model fitted per chip; the tokens a budget buys feed a
Chinchilla-form law. Every formula, default and range check lives in the Rust core
(``timescale_frontier._core``); this package reads files, converts and wraps.

>>> from timescale_frontier import Budget, Hardware, search
>>> result = search(Hardware.load("tpu_v4"), Budget(hours=12), {"d_model": [1024, 2048]})
>>> result.best.loss > 1.69
True
"""

from timescale_frontier._core import (
    Candidate,
    Candidates,
    Prediction,
    ResolvedBudget,
    ShardedStep,
    __version__,
)
from timescale_frontier.architecture import Architecture
from timescale_frontier.budget import Budget
from timescale_frontier.errors import (
    EmptySpaceError,
    InfeasibleError,
    InvalidInputError,
    SpaceTooLargeError,
    TimescaleError,
)
from timescale_frontier.hardware import Hardware
from timescale_frontier.loss import Law, LawFit, fit_law, get_law, law_names
from timescale_frontier.metrics import Evaluation, evaluate
from timescale_frontier.predict import predict
from timescale_frontier.search import SearchResult, search
from timescale_frontier.space import SearchSpace, load_space, make_space, parse_axis

__all__ = [
    "__version__",
    "Architecture",
    "Budget",
    "ResolvedBudget",
    "Hardware",
    "Law",
    "LawFit",
    "fit_law",
    "get_law",
    "law_names",
    "Prediction",
    "ShardedStep",
    "predict",
    "Evaluation",
    "evaluate",
    "Candidate",
    "Candidates",
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
