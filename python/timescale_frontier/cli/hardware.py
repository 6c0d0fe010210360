"""``timescale hardware list|show``: the shipped hardware files."""

from __future__ import annotations

import click

from timescale_frontier import render
from timescale_frontier.cli._common import handle_errors
from timescale_frontier.hardware import Hardware, shipped_names


@click.group(name="hardware")
def hardware_group() -> None:
    """Shipped hardware files."""


@hardware_group.command(name="list")
@click.option("--debug", is_flag=True)
@handle_errors
def hardware_list(debug: bool) -> None:
    """List the shipped hardware files."""
    click.echo(render.hardware_list([Hardware.load(n) for n in shipped_names()]), nl=False)


@hardware_group.command(name="show")
@click.argument("name")
@click.option("--debug", is_flag=True)
@handle_errors
def hardware_show(name: str, debug: bool) -> None:
    """Show one hardware file's figures, sources and step-time model."""
    click.echo(render.hardware_show(Hardware.load(name)), nl=False)
