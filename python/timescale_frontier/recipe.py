"""The usual recipe beside the tool's answer: the plan a practitioner makes today (the time budget
in FLOPs at an assumed utilisation, Chinchilla's compute-optimal size for them, a conventional
shape; the core's ``recipe``), predicted by the same model under the same budget, next to what the
search picks, with the predicted gap and whether the model can tell them apart.

>>> from timescale_frontier import Hardware
>>> c = compare_with_recipe(Hardware.load("h100_sxm"), 12, {"d_model": [1024, 1536, 2048]})
>>> c.recipe.params > 1e8 and c.gap > 0
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from timescale_frontier import _core
from timescale_frontier._core import Prediction
from timescale_frontier._core import Recipe as CoreRecipe
from timescale_frontier._data import as_data
from timescale_frontier._defaults import RECIPE
from timescale_frontier.architecture import Architecture
from timescale_frontier.budget import Budget, as_budget
from timescale_frontier.frontier import SearchResult, candidate_row, search
from timescale_frontier.hardware import Hardware
from timescale_frontier.loss import DEFAULT_LAW, Law, LossTerms, get_law
from timescale_frontier.prediction import predict
from timescale_frontier.space import SearchSpace

__all__ = ["RecipeComparison", "compare_with_recipe"]


@dataclass(frozen=True)
class RecipeComparison:
    """The recipe's plan and the tool's, predicted by the same model for the same budget."""

    recipe: CoreRecipe
    #: The recipe's architecture under the budget (its step time, tokens and loss by the tool's model).
    recipe_prediction: Prediction
    tool: SearchResult
    #: The practitioner's assumptions, as given.
    rule: dict[str, Any] = field(default_factory=dict)

    @property
    def gap(self) -> float:
        """Predicted loss of the recipe's model minus the tool's pick (nats/token; > 0: the tool's
        pick is predicted better). +inf when the recipe's model cannot train one step."""
        loss = self.recipe_prediction.loss
        return math.inf if loss is None else loss - self.tool.best.loss

    @property
    def resolution(self) -> float:
        """How far apart the two losses must be for the model to tell them apart: the loss change
        the step-time error causes on each, combined (see ``SearchResult.loss_resolution``)."""
        p = self.recipe_prediction
        err = self.tool.step_time_error[0]
        mine = self.tool.law.loss_change_for_step_time_error(p.effective_tokens, err) if p.loss is not None else 0.0
        return math.hypot(self.tool.loss_resolution(self.tool.best), mine)

    @property
    def tie_reason(self) -> str | None:
        """Why the model cannot rank the two plans (the core's ``tie``: the step-time error on both,
        or a published alternative of the loss model ranking them the other way), or None."""
        p = self.recipe_prediction
        if p.loss is None:
            return None
        t, err = self.tool, self.tool.step_time_error[0]
        return _core.tie(t.law, t.best.architecture, t.best.tokens, err, p.architecture, p.tokens, err, t.unique_tokens)

    @property
    def verdict(self) -> str:
        """ "tool", "recipe" (predicted better beyond the model's uncertainty) or "tie"."""
        if self.tie_reason is not None:
            return "tie"
        return "tool" if self.gap > 0 else "recipe"

    def to_dict(self) -> dict[str, Any]:
        r = self.recipe
        return {
            "rule": self.rule,
            "recipe": {
                "flops": r.flops,
                "compute_optimal_params": r.params,
                "compute_optimal_tokens": r.tokens,
                "architecture": r.architecture.to_dict(),
                "prediction": as_data(self.recipe_prediction),
            },
            "tool": {**as_data(candidate_row(self.tool.best)), "chips": self.tool.chips},
            "gap": self.gap,
            "resolution": self.resolution,
            "tie_reason": self.tie_reason,
            "verdict": self.verdict,
            "tool_better_beyond_error": self.verdict == "tool",
        }


def compare_with_recipe(
    hardware: Hardware,
    budget: Budget | float,
    space: SearchSpace | dict[str, Any] | None = None,
    *,
    chips: int = 1,
    law: str | Law = DEFAULT_LAW,
    loss_terms: LossTerms = None,
    eval_context: float | None = None,
    utilization: float | str = float(RECIPE["utilization"]),
    tokens_per_param: float | None = float(RECIPE["tokens_per_param"]),
    aspect_ratio: float = float(RECIPE["aspect_ratio"]),
    head_dim: int = int(RECIPE["head_dim"]),
    mlp: str = str(RECIPE["mlp"]),
    ffn_mult: float = float(RECIPE["ffn_mult"]),
    seq_len: int = int(RECIPE["seq_len"]),
    batch_size: int = int(RECIPE["batch_size"]),
    vocab_size: int = int(RECIPE["vocab_size"]),
    attention: str | None = None,
    activation_bytes: float | None = None,
    aspect_ratio_guard: tuple[float, float] | None = None,
    **search_kwargs: Any,
) -> RecipeComparison:
    """The recipe (``tokens_per_param=None``: the law's own compute-optimal split instead of a fixed
    ratio; ``utilization="calibrated"``: the utilisation the hardware file predicts for the recipe's
    own model instead of an assumed one, a recipe that knows this machine) and the tool's search for ``budget`` on ``chips`` chips of ``hardware`` (by default over
    the default space at the recipe's sequence length; ``aspect_ratio_guard`` and ``search_kwargs``
    are the search's guards). ``attention`` and ``activation_bytes`` set the recipe model's (default:
    the core's, as ``Architecture``), to compare like for like with a space that fixes them."""
    law_obj = get_law(law, loss_terms=loss_terms, eval_context=eval_context)
    resolved = as_budget(budget).resolve(hardware.core, chips)
    base = Architecture(
        64,
        1,
        1,
        seq_len=seq_len,
        batch_size=batch_size,
        vocab_size=vocab_size,
        attention=attention,
        activation_bytes=activation_bytes,
    )
    r = _core.recipe(
        resolved.seconds,
        chips,
        hardware.core,
        law_obj,
        base,
        utilization=utilization,
        tokens_per_param=tokens_per_param,
        aspect_ratio=aspect_ratio,
        head_dim=head_dim,
        mlp=mlp,
        ffn_mult=ffn_mult,
    )
    rule = {
        "utilization": r.utilization,
        "utilization_source": r.utilization_source,
        "predicted_utilization": r.predicted_utilization,
        "tokens_per_param": tokens_per_param if tokens_per_param is not None else "law optimum",
        "aspect_ratio": aspect_ratio,
        "head_dim": head_dim,
        "mlp": mlp,
        "ffn_mult": ffn_mult,
        "seq_len": seq_len,
        "batch_size": batch_size,
        "tool_space": "the given space" if space is not None else f"the default space at seq {seq_len}",
    }
    p = predict(r.architecture, hardware, budget, law=law_obj, chips=chips)
    # Like for like: the tool searches at the recipe's context length unless given a space.
    tool = search(
        hardware,
        budget,
        space if space is not None else {"seq_len": [seq_len]},
        law=law,
        loss_terms=loss_terms,
        eval_context=eval_context,
        chips=chips,
        aspect_ratio=aspect_ratio_guard,
        **search_kwargs,
    )
    return RecipeComparison(r, p, tool, rule)
