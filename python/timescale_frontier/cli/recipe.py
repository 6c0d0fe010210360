"""``timescale recipe``: the usual Chinchilla-FLOPs plan beside the tool's answer for a budget."""

from __future__ import annotations

import click

from timescale_frontier import render
from timescale_frontier._defaults import ASPECT_RATIO_TEXT, RECIPE
from timescale_frontier.cli._common import INT64, budget_of, budget_options, echo, handle_errors, law_options, min_max
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import Hardware
from timescale_frontier.recipe import compare_with_recipe
from timescale_frontier.space import load_space, make_space


@click.command(name="recipe")
@click.option("--hardware", "-H", required=True)
@budget_options
@click.option("--chips", type=INT64, default=1, show_default=True, help="Chips (the recipe's FLOPs scale with them).")
@law_options
@click.option(
    "--utilization",
    default=f"{RECIPE['utilization']:g}",
    show_default=True,
    help="Model FLOPs utilisation (fraction of peak bf16 FLOP/s) that turns hours into FLOPs, or 'calibrated':"
    " the one the hardware file predicts for the recipe's own model (a recipe that knows this machine).",
)
@click.option(
    "--tokens-per-param",
    default=f"{RECIPE['tokens_per_param']:g}",
    show_default=True,
    help="Tokens per parameter of the compute-optimal size (Chinchilla's headline 20), or 'law' for the law's"
    " own optimum.",
)
@click.option(
    "--aspect-ratio",
    type=float,
    default=RECIPE["aspect_ratio"],
    show_default=True,
    help="The shape's d_model / n_layers.",
)
@click.option("--head-dim", type=INT64, default=RECIPE["head_dim"], show_default=True)
@click.option("--mlp", default=RECIPE["mlp"], show_default=True)
@click.option("--ffn-mult", type=float, default=RECIPE["ffn_mult"], show_default=True, help="d_ff / d_model.")
@click.option("--seq-len", type=INT64, default=RECIPE["seq_len"], show_default=True)
@click.option("--batch-size", type=INT64, default=RECIPE["batch_size"], show_default=True, help="Sequences per step.")
@click.option("--vocab-size", type=INT64, default=RECIPE["vocab_size"], show_default=True)
@click.option(
    "--attention",
    type=click.Choice(["flash", "materialized"]),
    default=None,
    help="The recipe model's attention (default: the core's, flash).",
)
@click.option(
    "--activation-bytes",
    type=float,
    default=None,
    help="The recipe model's bytes per activation (default: the core's).",
)
@click.option(
    "--space",
    "space_file",
    type=click.Path(),
    default=None,
    help="Search-space TOML for the tool's pick (default: the default space at --seq-len).",
)
@click.option(
    "--aspect-ratio-guard",
    default=None,
    callback=min_max,
    help="The tool's d_model/n_layers guard, MIN:MAX (default: none with a shape term in the loss,"
    f" {ASPECT_RATIO_TEXT} without).",
)
@click.option("--max-tokens-per-step", type=float, default=None, help="The tool's cap on batch x seq_len.")
@click.option("--format", "out_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--debug", is_flag=True)
@handle_errors
def recipe_cmd(
    hardware: str,
    hours: float | None,
    budget_usd: float | None,
    usd_per_chip_hour: float | None,
    chips: int,
    law: str,
    loss_terms: str | None,
    eval_context: float | None,
    utilization: str,
    tokens_per_param: str,
    aspect_ratio: float,
    head_dim: int,
    mlp: str,
    ffn_mult: float,
    seq_len: int,
    batch_size: int,
    vocab_size: int,
    attention: str | None,
    activation_bytes: float | None,
    space_file: str | None,
    aspect_ratio_guard: tuple[float, float] | None,
    max_tokens_per_step: float | None,
    out_format: str,
    debug: bool,
) -> None:
    """The plan a practitioner makes today (hours -> FLOPs at an assumed utilisation -> Chinchilla's
    compute-optimal size -> a conventional shape) beside the tool's pick, both predicted for the budget."""
    if tokens_per_param.strip().lower() == "law":
        ratio: float | None = None
    else:
        try:
            ratio = float(tokens_per_param)
        except ValueError:
            raise InvalidInputError(
                f"--tokens-per-param = {tokens_per_param!r} is invalid: expected a number or 'law'"
            ) from None
    util: float | str = utilization.strip()
    try:
        util = float(utilization)
    except ValueError:
        pass  # a word: the core accepts "calibrated" and names what it expects otherwise
    hw = Hardware.load(hardware)
    space = make_space(load_space(space_file), origin=space_file) if space_file else None
    c = compare_with_recipe(
        hw,
        budget_of(hours, budget_usd, usd_per_chip_hour),
        space,
        chips=chips,
        law=law,
        loss_terms=loss_terms,
        eval_context=eval_context,
        utilization=util,
        tokens_per_param=ratio,
        aspect_ratio=aspect_ratio,
        head_dim=head_dim,
        mlp=mlp,
        ffn_mult=ffn_mult,
        seq_len=seq_len,
        batch_size=batch_size,
        vocab_size=vocab_size,
        attention=attention,
        activation_bytes=activation_bytes,
        aspect_ratio_guard=aspect_ratio_guard,
        max_tokens_per_step=max_tokens_per_step,
    )
    echo(render.recipe_document(c, hw, out_format), nl=False)
