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


def test_a_recipe_that_knows_this_machine():
    """Issue 25.2, a fair recipe: `--utilization calibrated` turns hours into FLOPs at the utilisation
    the hardware file predicts for the recipe's own model (a fixed point, hand-checked in
    rust/core/src/recipe.rs), and the assumed 40% says what the file predicts."""
    args = ["recipe", "-H", "h100_sxm", "--hours", "12", "--format", "json"]
    assumed = json.loads(CliRunner().invoke(main, args).output)
    fair = json.loads(CliRunner().invoke(main, [*args, "--utilization", "calibrated"]).output)
    a, f = assumed["rule"], fair["rule"]
    assert (a["utilization"], a["utilization_source"]) == (0.4, "assumed")
    assert f["utilization_source"] == "calibrated"
    # The fair recipe's FLOPs: 12 h x 9.894e14 FLOP/s x its utilisation (by hand).
    assert math.isclose(fair["recipe"]["flops"], 12 * 3600 * 9.894e14 * f["utilization"], rel_tol=1e-12)
    # A fixed point: the utilisation it used is the one the file predicts for the model it picked
    # (or, when the rounds cycle, one below that prediction).
    assert f["utilization"] == f["predicted_utilization"] or f["utilization"] < f["predicted_utilization"]
    # The prediction for its model, recomputed from the prediction's own step time: 6 N T / (t x peak).
    p = fair["recipe"]["prediction"]
    arch = fair["recipe"]["architecture"]
    mfu = 6 * p["params"] * arch["seq_len"] * arch["batch_size"] / (p["step_time_s"] * 9.894e14)
    assert math.isclose(f["predicted_utilization"], mfu, rel_tol=1e-9)
    # H100's calibrated file predicts well below the assumed 40% for a 0.3 B model: a smaller plan.
    assert f["utilization"] < 0.4 and fair["recipe"]["flops"] < assumed["recipe"]["flops"]
    table = CliRunner().invoke(main, ["recipe", "-H", "h100_sxm", "--hours", "12"]).output
    assert "utilisation (assumed; the hardware file predicts" in " ".join(table.split())
    r = CliRunner().invoke(main, ["recipe", "-H", "h100_sxm", "--hours", "12", "--utilization", "fast"])
    assert (
        r.exit_code == 2
        and "utilization = fast is invalid: expected a fraction of peak in [0.01, 1] or 'calibrated'" in r.output
    )


def test_the_recipes_assumptions_are_the_papers_and_defined_once():
    """The usual recipe's defaults come from the core (`DEFAULTS["recipe"]`): 40% MFU, Chinchilla's
    20 tokens per parameter (Hoffmann et al. 2022), d_model / n_layers 64 with heads of 64 and GELU
    4x (GPT-3's shapes), LLaMA's 2,048 context and 32,000 vocabulary, 256 sequences per step."""
    from timescale_frontier._core import DEFAULTS

    assert DEFAULTS["recipe"] == {"utilization": 0.4, "tokens_per_param": 20.0, "aspect_ratio": 64.0, "head_dim": 64,
                                  "mlp": "gelu", "ffn_mult": 4.0, "seq_len": 2048, "batch_size": 256,
                                  "vocab_size": 32000}  # fmt: skip
    help_text = " ".join(CliRunner().invoke(main, ["recipe", "--help"]).output.split())
    for shown in ("[default: 0.4]", "[default: 20]", "[default: 64.0]", "[default: 2048]", "[default: 32000]"):
        assert shown in help_text, shown


def test_a_utilisation_that_is_not_a_fraction_or_the_word_is_one_clear_error():
    """The API's `utilization`: a number, a numeric string, or "calibrated"; a bool, None or another
    word is an InvalidInputError naming the field and what it expects (never a TypeError)."""
    import pytest

    from timescale_frontier.errors import InvalidInputError

    hw = Hardware.load("h100_sxm")
    space = {"d_model": [1024], "n_layers": [8]}
    assert compare_with_recipe(hw, 1, space, utilization="0.3").rule["utilization"] == 0.3
    for bad in (True, None, "fast", b"calibrated"):
        with pytest.raises(InvalidInputError, match=r"utilization = .* is invalid: expected a fraction of peak in"):
            compare_with_recipe(hw, 1, space, utilization=bad)  # type: ignore[arg-type]
