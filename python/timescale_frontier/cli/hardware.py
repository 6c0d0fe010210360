"""``timescale hardware list|show``: the hardware files a name finds (the user's and the shipped)."""

from __future__ import annotations

import sys

import click

from timescale_frontier import render
from timescale_frontier.cli._common import echo, handle_errors
from timescale_frontier.hardware import Hardware, load_available


@click.group(name="hardware")
def hardware_group() -> None:
    """Hardware files: the shipped ones and the user's (calibrations)."""


@hardware_group.command(name="list")
@click.option("--debug", is_flag=True)
@handle_errors
def hardware_list(debug: bool) -> None:
    """List the hardware files a name finds: the user's hardware directory first, then the shipped files.
    A file that does not load is listed after the table with its error (exit 2)."""
    loaded, broken = load_available()
    echo(render.hardware_list(loaded), nl=False)
    for _path, message in broken:
        echo(f"error: {message}", err=True)
    if broken:
        sys.exit(2)


@hardware_group.command(name="show")
@click.argument("name")
@click.option("--debug", is_flag=True)
@handle_errors
def hardware_show(name: str, debug: bool) -> None:
    """Show one hardware file's figures, sources and step-time model."""
    echo(render.hardware_show(Hardware.load(name)), nl=False)
