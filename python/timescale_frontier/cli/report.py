"""``timescale report width-depth``: the heatmap behind "wider, not deeper"."""

from __future__ import annotations

import click
import numpy as np

from timescale_frontier.cli._common import handle_errors
from timescale_frontier.hardware import Hardware
from timescale_frontier.space import parse_axis


@click.group(name="report")
def report_group() -> None:
    """Pictures (need matplotlib: pip install 'timescale-frontier[plot]')."""


@report_group.command(name="width-depth")
@click.option("--hardware", "-H", required=True)
@click.option("--hours", type=float, required=True)
@click.option("--d-model", "d_model", default="128:4096:*2", show_default=True, metavar="VALUES")
@click.option("--n-layers", "n_layers", default="2:48:2", show_default=True, metavar="VALUES")
@click.option("--law", default="hoffmann", show_default=True)
@click.option("--chips", type=int, default=1, show_default=True, help="Chips (each cell's fastest sharding).")
@click.option("--out", type=click.Path(dir_okay=False), default="width-depth.png", show_default=True)
@click.option("--debug", is_flag=True)
@handle_errors
def width_depth_cmd(
    hardware: str, hours: float, d_model: str, n_layers: str, law: str, chips: int, out: str, debug: bool
) -> None:
    """Heatmap of the best predicted loss over (d_model, n_layers) with iso-parameter curves."""
    from timescale_frontier import plot

    hw = Hardware.load(hardware)
    widths, depths = parse_axis("d_model", d_model), parse_axis("n_layers", n_layers)
    grid = plot.width_depth(hw, hours, widths, depths, out, law=law, aspect_ratio=(1e-3, 1e6), top_k=1, chips=chips)
    if np.isfinite(grid).any():
        i, j = np.unravel_index(np.nanargmin(grid), grid.shape)
        click.echo(f"best cell: n_layers {depths[i]}, d_model {widths[j]}, loss {np.nanmin(grid):.4f} nats/token")
    click.echo(f"wrote {out}")
