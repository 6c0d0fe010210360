"""`timescale recipe` (issue 16): the usual Chinchilla-FLOPs plan beside the tool's pick, from the
core's formulas (hand-checked in rust/core/src/recipe.rs), predicted by the same model."""

import json
import math

from click.testing import CliRunner

from timescale_frontier import Hardware, predict
from timescale_frontier.cli import main
from timescale_frontier.recipe import compare_with_recipe


def test_the_recipe_by_hand_and_beside_the_tool():
    r = CliRunner().invoke(main, ["recipe", "-H", "h100_sxm", "--hours", "12", "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    rec = doc["recipe"]
    flops = 12 * 3600 * 9.894e14 * 0.4  # hours x peak x utilisation
    assert math.isclose(rec["flops"], flops, rel_tol=1e-9)
    assert math.isclose(rec["compute_optimal_params"], math.sqrt(flops / 120), rel_tol=1e-9)  # 20 tokens/param
    arch = rec["architecture"]
    assert arch["d_model"] == 64 * arch["n_layers"] and arch["head_dim"] == 64 and arch["d_ff"] == 4 * arch["d_model"]
    # The gap is the two predicted losses' difference; the verdict: a tie when the step-time error
    # covers the gap or a published alternative of the loss model ranks them the other way.
    assert math.isclose(doc["gap"], rec["prediction"]["loss"] - doc["tool"]["loss"], rel_tol=1e-12)
    if abs(doc["gap"]) <= doc["resolution"]:
        assert doc["verdict"] == "tie" and doc["tie_reason"].startswith("within the step time's error")
    assert doc["tool_better_beyond_error"] == (doc["verdict"] == "tool") and (doc["verdict"] == "tie") == bool(
        doc["tie_reason"]
    )
    # The tool searched at the recipe's context length.
    assert doc["tool"]["seq_len"] == arch["seq_len"] == 2048
    table = CliRunner().invoke(main, ["recipe", "-H", "h100_sxm", "--hours", "12"]).output
    assert "The usual recipe (Chinchilla-FLOPs):" in table and "Predicted gap: recipe" in table


def test_the_laws_own_optimum_and_the_practitioners_batch():
    hw = Hardware.load("h100_sxm")
    c = compare_with_recipe(hw, 12, {"d_model": [1024, 2048], "seq_len": [2048]}, tokens_per_param=None)
    n, d = c.tool.law.compute_optimal(c.recipe.flops)
    assert (c.recipe.params, c.recipe.tokens) == (n, d)
    # The recipe's model runs as a practitioner would: it fits, with micro-steps only when needed.
    p = predict(c.recipe.architecture, hw, 12)
    assert p.fits_memory and p.loss == c.recipe_prediction.loss


def test_bad_recipe_assumptions_are_one_line_errors():
    for args, message in [
        (["--utilization", "0"], "utilization = 0 is invalid: expected a fraction of peak in [0.01, 1]"),
        (["--tokens-per-param", "many"], "--tokens-per-param = 'many' is invalid: expected a number or 'law'"),
        (["--aspect-ratio", "0"], "aspect_ratio = 0 is invalid"),
        # Negative counts are range errors, not failed conversions ("internal error" before).
        (["--chips", "-1"], "chips = -1 is invalid: expected an integer in [1, 1048576]"),
        (["--head-dim", "-64"], "head_dim = -64 is invalid: expected an integer in [1, 16777216]"),
    ]:
        r = CliRunner().invoke(main, ["recipe", "-H", "h100_sxm", "--hours", "12", *args])
        assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_the_recipe_model_takes_the_spaces_attention_and_precision():
    """Like for like with a space that fixes them (experiments/versus_recipe: fp32, materialized)."""
    args = ["recipe", "-H", "h100_sxm", "--hours", "12"]
    r = CliRunner().invoke(main, [*args, "--format", "json"])
    assert r.exit_code == 0, r.output
    default = json.loads(r.output)["recipe"]["architecture"]
    r = CliRunner().invoke(main, [*args, "--attention", "materialized", "--activation-bytes", "4", "--format", "json"])
    assert r.exit_code == 0, r.output
    a = json.loads(r.output)["recipe"]["architecture"]
    assert (a["attention"], a["activation_bytes"]) == ("materialized", 4.0)
    assert (default["attention"], default["activation_bytes"]) == ("flash", 2.0)
    # The size and shape come from the FLOPs budget and the shape rule, not from these.
    assert (a["d_model"], a["n_layers"]) == (default["d_model"], default["n_layers"])
