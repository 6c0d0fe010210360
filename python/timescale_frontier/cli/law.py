"""``timescale fit-law``: fit a Chinchilla-form law to your own runs and save it."""

from __future__ import annotations

from pathlib import Path

import click

from timescale_frontier import render
from timescale_frontier.cli._common import handle_errors, progress_bar
from timescale_frontier.errors import in_file
from timescale_frontier.loss import fit_law, load_runs, save_law


@click.command(name="fit-law")
@click.argument("runs", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="Name of the law (default: the runs file's stem).")
@click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="Write the law here (default: NAME.law.toml)."
)
@click.option(
    "--bootstrap",
    "n_bootstrap",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Resampled refits for the intervals (a progress bar shows on a terminal; Ctrl-C stops).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--debug", is_flag=True)
@handle_errors
def fit_law_cmd(runs: str, name: str | None, out: str | None, n_bootstrap: int, quiet: bool, debug: bool) -> None:
    """Fit E, A, B, alpha, beta to your own runs (CSV: params, tokens, loss) and save the law."""
    params, tokens, loss = load_runs(runs)
    update, close = progress_bar(quiet, "bootstrap", "refits/s", 1.0)
    try:
        with in_file(runs):
            fit = fit_law(params, tokens, loss, n_bootstrap, progress=update)
    finally:
        close()
    name = name or Path(runs).stem
    target = out or f"{name}.law.toml"
    save_law(target, name, fit, f"timescale fit-law {runs} ({fit.n_runs} runs)", inputs=[runs])
    click.echo(render.law_fit_text(fit, n_bootstrap), nl=False)
    if fit.bootstrap_rejected:
        click.echo(
            f"warning: {fit.bootstrap_rejected} of {n_bootstrap} bootstrap refits left the law's valid domain"
            " (exponent outside (0, 2]) and were left out: the runs barely identify the law; add runs that vary"
            " params and tokens independently",
            err=True,
        )
    for name_ in fit.at_edge:
        value = getattr(fit.law, name_)
        click.echo(
            f"warning: {name_} = {value:.3g} ended at the edge of its range (0, 2]: the runs do not identify it"
            " (the fit is held inside the law's domain); add runs that vary params and tokens independently",
            err=True,
        )
    click.echo(f"wrote {target} (use it with --law {target})")
