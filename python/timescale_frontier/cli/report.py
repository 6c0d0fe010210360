"""``timescale report width-depth``: the heatmap behind "wider, not deeper"."""

from __future__ import annotations

from pathlib import Path

import click

from timescale_frontier._core import NO_ASPECT_GUARD
from timescale_frontier._defaults import ASPECT_RATIO_TEXT
from timescale_frontier._files import check_output
from timescale_frontier._text import plural
from timescale_frontier.cli._common import INT64, aspect_guard, echo, handle_errors, law_options
from timescale_frontier.frontier import default_aspect_ratio
from timescale_frontier.hardware import Hardware
from timescale_frontier.loss import get_law, law_file
from timescale_frontier.space import parse_axis


@click.group(name="report")
def report_group() -> None:
    """Pictures (need matplotlib: pip install 'timescale-frontier[plot]')."""


@report_group.command(name="width-depth")
@click.option("--hardware", "-H", required=True)
@click.option("--hours", type=float, required=True)
@click.option("--d-model", "d_model", default="128:4096:*2", show_default=True, metavar="VALUES")
@click.option("--n-layers", "n_layers", default="2:48:2", show_default=True, metavar="VALUES")
@law_options
@click.option("--chips", type=INT64, default=1, show_default=True, help="Chips (each cell's fastest sharding).")
@click.option(
    "--aspect-ratio",
    default=None,
    callback=aspect_guard,
    help="The search's d_model/n_layers guard, MIN:MAX: drawn dashed; the answer is the best cell inside it"
    f" (default: the search's: none with a shape term in the loss, {ASPECT_RATIO_TEXT} without one).",
)
@click.option("--out", type=click.Path(), default="width-depth.png", show_default=True)
@click.option("--debug", is_flag=True)
@handle_errors
def width_depth_cmd(
    hardware: str,
    hours: float,
    d_model: str,
    n_layers: str,
    law: str,
    loss_terms: str | None,
    eval_context: float | None,
    chips: int,
    aspect_ratio: tuple[float, float] | None,
    out: str,
    debug: bool,
) -> None:
    """Heatmap of the best predicted loss over (d_model, n_layers) with iso-parameter curves."""
    from timescale_frontier import plot

    hw = Hardware.load(hardware)
    inputs: list[str | Path] = [p for p in (hw.path, law_file(law)) if p is not None]
    check_output(out, inputs)  # before any work
    widths, depths = parse_axis("d_model", d_model), parse_axis("n_layers", n_layers)
    law_obj = get_law(law, loss_terms=loss_terms, eval_context=eval_context)
    lo, hi = aspect_ratio if aspect_ratio is not None else default_aspect_ratio(law_obj)
    picture = plot.width_depth(
        hw,
        hours,
        widths,
        depths,
        out,
        inputs=inputs,
        law=law,
        loss_terms=loss_terms,
        eval_context=eval_context,
        top_k=1,
        chips=chips,
        guard=(lo, hi),
    )
    grid, guarded, anywhere = picture.grid, picture.best_cell, picture.lowest_cell

    def loss(cell: tuple[int, int]) -> float:
        return float(grid[depths.index(cell[1]), widths.index(cell[0])])

    unguarded = (lo, hi) == tuple(NO_ASPECT_GUARD)
    where = (
        " (no aspect-ratio guard)"
        if unguarded
        else f" inside the aspect-ratio guard (d_model/n_layers {lo:g} to {hi:g})"
    )
    if picture.answer is not None:
        d, n, best_loss = picture.answer
        echo(
            f"the search's answer over the whole space{where}: d_model {d}, {plural(n, 'layer')}, loss "
            f"{best_loss:.4f} nats/token (the red star)"
        )
    if guarded is not None:
        echo(
            f"best cell of this grid{where}: d_model {guarded[0]}, "
            f"{plural(guarded[1], 'layer')}, loss {loss(guarded):.4f} nats/token (what the search answers on this grid)"
        )
    if anywhere is not None and anywhere != guarded:
        echo(
            f"lowest cell anywhere: d_model {anywhere[0]}, {plural(anywhere[1], 'layer')}, loss {loss(anywhere):.4f} nats/token "
            f"(d_model/n_layers = {anywhere[0] / anywhere[1]:.0f}, outside the guard: a shape the loss law was not "
            "tested on, so the search does not answer it)"
        )
    if guarded is None and anywhere is None:
        echo("no cell is feasible")
    echo(f"wrote {out}")
