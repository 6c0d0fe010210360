"""The command line: ``timescale-frontier`` (the search) and the ``timescale`` group (``search``,
``predict``, ``hardware list|show``, ``fit-law``, ``calibrate``, ``validate``, ``report
width-depth``). One module per command group; each parses its flags, calls the public API and
renders through ``timescale_frontier.render``. Errors are one line on stderr with exit code 2 (bad
input) or 1 (nothing feasible, runtime failure); ``--debug`` shows the traceback."""

from __future__ import annotations

import click

from timescale_frontier.cli.calibrate import calibrate_cmd, validate_cmd
from timescale_frontier.cli.hardware import hardware_group
from timescale_frontier.cli.law import fit_law_cmd
from timescale_frontier.cli.predict import predict_cmd
from timescale_frontier.cli.recipe import recipe_cmd
from timescale_frontier.cli.report import report_group
from timescale_frontier.cli.search import frontier_main, search_cmd

__all__ = ["main", "frontier_main"]


@click.group()
@click.version_option(package_name="timescale-frontier")
def main() -> None:
    """timescale-frontier: step time, loss and the best transformer for a wall-clock budget."""


for command in (
    search_cmd,
    predict_cmd,
    recipe_cmd,
    hardware_group,
    fit_law_cmd,
    calibrate_cmd,
    validate_cmd,
    report_group,
):
    main.add_command(command)
