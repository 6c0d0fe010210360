"""``timescale fit-law``: fit a Chinchilla-form law to your own runs and save it."""

from __future__ import annotations

from pathlib import Path

import click

from timescale_frontier import render
from timescale_frontier._defaults import N_BOOTSTRAP
from timescale_frontier._files import check_output
from timescale_frontier.cli._common import echo, handle_errors, progress_bar
from timescale_frontier.errors import in_file
from timescale_frontier.loss import check_law_name, fit_law, fit_law_with_shape, load_runs, load_shape_runs, save_law


@click.command(name="fit-law")
@click.argument("runs", type=click.Path())
@click.option(
    "--name",
    default=None,
    help="Name of the law (default: the runs file's stem); without --out the law goes to NAME.law.toml in the"
    " current directory, so a name is a plain file name (no / or \\, not . or ..).",
)
@click.option("--out", type=click.Path(), default=None, help="Write the law here (default: NAME.law.toml).")
@click.option(
    "--bootstrap",
    "n_bootstrap",
    type=click.IntRange(min=0),
    default=N_BOOTSTRAP,
    show_default=True,
    help="Resampled refits for the intervals (a progress bar shows on a terminal; Ctrl-C stops).",
)
@click.option(
    "--shape-runs",
    type=click.Path(),
    default=None,
    help="Also fit a shape term c (ln(d_model/n_layers/aspect_opt))^2 from runs that differ in shape at a similar"
    " size and token count (CSV: d_model, n_layers, params, tokens, loss; RUNS then needs d_model and n_layers"
    " too, so the law is fitted net of the term); predict and search then use it.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--debug", is_flag=True)
@handle_errors
def fit_law_cmd(
    runs: str, name: str | None, out: str | None, n_bootstrap: int, shape_runs: str | None, quiet: bool, debug: bool
) -> None:
    """Fit E, A, B, alpha, beta to your own runs (CSV: params, tokens, loss) and save the law."""
    name = name if name is not None else Path(runs).stem
    if out is None:
        check_law_name(name)  # it names the file written: NAME.law.toml, here
    target = out or f"{name}.law.toml"
    inputs = [runs, *([shape_runs] if shape_runs else [])]
    check_output(target, inputs)  # before any work
    shape = None
    if shape_runs:
        with_shapes = load_shape_runs(runs)
        shaped = load_shape_runs(shape_runs)
    else:
        params, tokens, loss = load_runs(runs)
    update, close = progress_bar(quiet, "bootstrap", "refits/s", 1.0)
    try:
        if shape_runs:
            with in_file(f"{runs} and {shape_runs}"):
                fit, shape = fit_law_with_shape(with_shapes, shaped, n_bootstrap, progress=update)
        else:
            with in_file(runs):
                fit = fit_law(params, tokens, loss, n_bootstrap, progress=update)
    finally:
        close()
    save_law(
        target,
        name,
        fit,
        f"timescale fit-law {runs} ({fit.n_runs} runs)",
        inputs=inputs,
        shape=shape,
        shape_source=f"timescale fit-law --shape-runs {shape_runs}" if shape_runs else "",
    )
    echo(render.law_fit_text(fit, n_bootstrap), nl=False)
    if shape is not None:
        echo(render.shape_fit_text(shape, n_bootstrap), nl=False)
        _, opt, lo, hi = shape.term
        if not lo <= opt <= hi:
            echo(
                f"warning: the best aspect ratio {opt:.3g} lies outside the shapes measured ({lo:.3g}-{hi:.3g}):"
                " the search keeps to the shapes measured; measure shapes on both sides of it",
                err=True,
            )
    if fit.bootstrap_rejected:
        echo(
            f"warning: {fit.bootstrap_rejected} of {n_bootstrap} bootstrap refits left the law's valid domain"
            " (exponent outside (0, 2]) and were left out: the runs barely identify the law; add runs that vary"
            " params and tokens independently",
            err=True,
        )
    for name_ in fit.at_edge:
        value = getattr(fit.law, name_)
        echo(
            f"warning: {name_} = {value:.3g} ended at the edge of its range (0, 2]: the runs do not identify it"
            " (the fit is held inside the law's domain); add runs that vary params and tokens independently",
            err=True,
        )
    echo(f"wrote {target} (use it with --law {target})")
