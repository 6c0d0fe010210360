"""``timescale-frontier`` and ``timescale search``: parse the flags, call ``search``, render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from timescale_frontier import render
from timescale_frontier._defaults import ASPECT_RATIO_TEXT, AUTO_MAX_CHIPS, TOP_K
from timescale_frontier._files import check_output, refuse_inputs
from timescale_frontier.cli._common import (
    INT64,
    F,
    aspect_guard,
    budget_of,
    budget_options,
    echo,
    emit,
    handle_errors,
    law_options,
    parse_chips,
    progress_bar,
    stack_option,
)
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.frontier import search
from timescale_frontier.hardware import Hardware
from timescale_frontier.loss import law_file
from timescale_frontier.space import AXES, load_space, make_space, parse_axis


def search_options(f: F) -> F:
    """Options of ``timescale-frontier`` and ``timescale search``."""
    for axis in reversed(list(AXES)):
        kind = AXES[axis]
        #: Examples in each integer axis's own units.
        int_examples = {
            "d_model": "512,1024 or 128:8192:128",
            "n_layers": "4,8 or 2:48:2",
            "head_dim": "64,128",
            "kv_group": "1,4: query heads per KV head",
            "vocab_size": "32000,50304",
            "seq_len": "512,2048 or 256:8192:*2",
            "batch_size": "32,64 or 8:512:*2",
        }
        example = {
            "int": int_examples.get(axis, "1,2 or 1:8:1"),
            "float": "2.667,4",
            "bool": "true,false",
            "micro": "none,1,4: sequences per micro-step per chip, none = the whole per-chip batch",
        }.get(kind, kind.split(":", 1)[-1])
        f = click.option(
            f"--{axis.replace('_', '-')}",
            axis,
            default=None,
            metavar="VALUES",
            help=f"Search-space axis {axis} ({example}).",
        )(f)
    options = [
        click.option(
            "--hardware",
            "-H",
            required=True,
            help="Hardware file: a path, a shipped file name (tpu_v4.toml) or a bare name (tpu_v4).",
        ),
        budget_options,
        click.option(
            "--unique-tokens",
            type=float,
            default=None,
            help="Unique training tokens available; repeated data counts for less (Muennighoff 2023).",
        ),
        click.option(
            "--chips",
            default="1",
            show_default=True,
            metavar="N|N,M,..|auto",
            help="Chips to train on (each config gets its fastest sharding: DP, FSDP, TP or a mix). Several counts"
            f" (1,2,4,8) or auto (powers of two up to the interconnect's max_chips, at most {AUTO_MAX_CHIPS}):"
            " the answer also"
            " chooses how many, which matters with --budget-usd.",
        ),
        click.option(
            "--step-time-model",
            default=None,
            metavar="NAME",
            help="Use another calibrated step-time model of the hardware file (e.g. flops, memcpy) instead"
            " of its default, to see what that model would recommend.",
        ),
        stack_option,
        law_options,
        click.option(
            "--top",
            "top_k",
            type=INT64,
            default=TOP_K,
            show_default=True,
            help="How many of the best configurations to list.",
        ),
        click.option(
            "--format", "out_format", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
        ),
        click.option(
            "--output",
            "-o",
            type=click.Path(),
            default=None,
            help="Write the output to this file (atomically) instead of stdout.",
        ),
        click.option(
            "--space",
            "space_file",
            type=click.Path(),
            default=None,
            help="TOML file of search-space axes (flags override it).",
        ),
        click.option(
            "--d-ff-multiple",
            type=INT64,
            default=None,
            metavar="M",
            help="d_ff = ffn_mult x d_model rounded to a multiple of M (default 64: widths accelerators run well;"
            " 1: the exact ratio).",
        ),
        click.option(
            "--aspect-ratio",
            default=None,
            callback=aspect_guard,
            help="Accepted d_model/n_layers range MIN:MAX, or none (default: none with a shape term in the loss, which"
            f" prices shape; {ASPECT_RATIO_TEXT}, Kaplan 2020's shape-insensitive range, without one).",
        ),
        click.option(
            "--max-tokens-per-step",
            type=float,
            default=None,
            help="Cap on batch x seq_len (default: none with the batch term, which prices the batch; Kaplan's critical"
            " batch at the predicted loss without it).",
        ),
        click.option(
            "--plot",
            "plot_path",
            type=click.Path(),
            default=None,
            help="Also draw the frontier (loss vs budget) and the Pareto set to this PNG (needs matplotlib).",
        ),
        click.option(
            "--plot-compare",
            default=None,
            metavar="NAMES",
            help="More hardware files (comma-separated) drawn as extra lines of the --plot frontier.",
        ),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
        click.option("--debug", is_flag=True, help="Show tracebacks."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


def run_search(
    hardware: str,
    hours: float | None,
    budget_usd: float | None,
    usd_per_chip_hour: float | None,
    unique_tokens: float | None,
    chips: str,
    step_time_model: str | None,
    stack: str | None,
    law: str,
    loss_terms: str | None,
    eval_context: float | None,
    top_k: int,
    out_format: str,
    output: str | None,
    space_file: str | None,
    d_ff_multiple: int | None,
    aspect_ratio: tuple[float, float] | None,
    max_tokens_per_step: float | None,
    plot_path: str | None,
    plot_compare: str | None,
    quiet: bool,
    debug: bool,
    **axes: str | None,
) -> None:
    hw = Hardware.load(hardware, stack=stack)
    if step_time_model is not None:
        hw = hw.using(step_time_model)
    compare = [Hardware.load(name.strip()) for name in (plot_compare or "").split(",") if name.strip()]
    # Every file this run reads; no output may replace one, and that is refused before any work.
    inputs: list[str | Path] = [
        p for p in (hw.path, space_file, law_file(law), *(h.path for h in compare)) if p is not None
    ]
    for target in (output, plot_path):
        if target is not None:
            check_output(target, inputs)
    if output and plot_path:
        refuse_inputs(output, [plot_path])
    overrides: dict[str, Any] = load_space(space_file) if space_file else {}
    for axis, value in axes.items():
        if value is not None:
            overrides[axis] = parse_axis(axis, value)
    if d_ff_multiple is not None:
        overrides["d_ff_multiple"] = d_ff_multiple
    space = make_space(overrides, origin=space_file or "search space")
    update, close = progress_bar(quiet)
    try:
        result = search(
            hw,
            budget_of(hours, budget_usd, usd_per_chip_hour),
            space,
            law=law,
            loss_terms=loss_terms,
            eval_context=eval_context,
            top_k=top_k,
            aspect_ratio=aspect_ratio,
            max_tokens_per_step=max_tokens_per_step,
            unique_tokens=unique_tokens,
            chips=parse_chips(chips),
            progress=update,
        )
    finally:
        close()
    text = render.search_document(result, out_format)
    if plot_path:
        from timescale_frontier import plot

        extra = []
        for other in compare:
            try:
                other.check_chips(result.chips)
            except InvalidInputError as e:
                echo(f"note: {other.name} left out of the plot: {e}", err=True)
                continue
            extra.append(other)
        plotting, done = progress_bar(quiet, label="plotting", unit="searches/s", scale=1)
        try:
            plot.frontier(
                result,
                [hw, *extra],
                overrides,
                plot_path,
                inputs=inputs,
                progress=plotting,
                law=law,
                loss_terms=loss_terms,
                eval_context=eval_context,
                aspect_ratio=aspect_ratio,
                max_tokens_per_step=max_tokens_per_step,
                unique_tokens=unique_tokens,
                chips=result.chips,
            )
        finally:
            done()
        echo(f"wrote {plot_path}", err=True)
    emit(text, output, inputs)


@click.command(name="timescale-frontier")
@click.version_option(package_name="timescale-frontier")
@search_options
@handle_errors
def frontier_main(**kwargs: Any) -> None:
    """Which transformer reaches the lowest loss when the wall-clock budget runs out?

    Example: timescale-frontier --hardware tpu_v4.toml --hours 12
    """
    run_search(**kwargs)


@click.command(name="search")
@search_options
@handle_errors
def search_cmd(**kwargs: Any) -> None:
    """Search a space of architectures (same as timescale-frontier)."""
    run_search(**kwargs)
