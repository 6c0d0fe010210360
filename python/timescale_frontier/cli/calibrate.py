"""``timescale calibrate`` (measure, or ``--refit`` from saved measurements) and ``timescale
validate`` (score every step-time model on measured steps). Only live measurement needs JAX."""

from __future__ import annotations

from pathlib import Path

import click

from timescale_frontier import render
from timescale_frontier._core import check_compile_deadline_s
from timescale_frontier.calibrate import hwfile
from timescale_frontier.calibrate.plan import default_budget_s, make_plan
from timescale_frontier.calibrate.records import (
    MIN_FIT_SAMPLES,
    Unpriced,
    calibrate_from,
    load_measurements,
    refit,
    row_predictions,
    validate,
)
from timescale_frontier.cli._common import echo, handle_errors, min_max
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import Hardware


@click.command(name="calibrate")
@click.option("--hardware", "-H", required=True, help="Hardware file to calibrate: a path or a shipped name.")
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="Write the calibrated file here. Default: a shipped file's calibration goes to the user's hardware"
    " directory under the same name (found first by --hardware NAME; `timescale hardware list` shows it), a"
    " user's file is updated in place. The shipped files are never rewritten.",
)
@click.option(
    "--time-budget-s",
    type=float,
    default=None,
    help="Hard wall-clock limit of the whole calibration, compilation included (default: 100 s on a CPU,"
    " 240 s on an accelerator). A configuration runs only when its compile and timing fit the time left.",
)
@click.option(
    "--compile-deadline-s",
    type=float,
    default=None,
    help="Give up a configuration whose compilation takes longer, 1 s to a day (default: 60 s CPU, 180 s GPU,"
    " 120 s TPU).",
)
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="Print what the calibration would run (configurations, predicted step and compile times, the total"
    " against the budget) and stop; no JAX needed.",
)
@click.option("--format", "out_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--n-fit",
    type=click.IntRange(MIN_FIT_SAMPLES, 500),
    default=12,
    show_default=True,
    help="Architectures measured for the fit.",
)
@click.option(
    "--n-validate",
    type=click.IntRange(0, 500),
    default=6,
    show_default=True,
    help="Architectures held out for validation.",
)
@click.option(
    "--measurements",
    type=click.Path(),
    default=None,
    help="JSONL file to stream every measurement to (appended).",
)
@click.option(
    "--step-range-s",
    default=None,
    callback=min_max,
    help="Predicted step times (by the file's current model) of the designed architectures, MIN:MAX"
    " seconds: calibrate in the regime you will search. Default: 0.0005:0.06 on a CPU (small models),"
    " 0.1:0.8 on an accelerator (training-sized models, so the work, not the per-step overhead, is measured).",
)
@click.option(
    "--refit",
    "refit_path",
    type=click.Path(),
    default=None,
    help="Do not measure: fit and write from a JSONL file an earlier calibration streamed (--measurements).",
)
@click.option(
    "--from",
    "from_path",
    type=click.Path(),
    default=None,
    help="Do not measure: fit from any CSV/JSONL of measured steps (architecture fields, chips, sharding,"
    " recompute, micro_batch, and step_time_s or tokens_per_s_per_chip): your training logs or a published table.",
)
@click.option("--source", default=None, help="With --from: where the measurements come from (written as provenance).")
@click.option(
    "--stack",
    default=None,
    metavar="NAME",
    help="With --from: fit only the rows of this software stack (the table's stack column: megatron for NVIDIA's"
    " Megatron-core stacks, maxtext, ...; rows naming none count) and write it as that stack's calibration:"
    " [stacks.NAME] beside a default [calibration] of another stack.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Write coefficients even if JAX's device differs from the file's device, or if the calibrated file"
    " they replace predicts the same steps clearly better.",
)
@click.option("--quiet", "-q", is_flag=True)
@click.option("--debug", is_flag=True)
@handle_errors
def calibrate_cmd(
    hardware: str,
    out: str | None,
    time_budget_s: float | None,
    compile_deadline_s: float | None,
    plan_only: bool,
    out_format: str,
    n_fit: int,
    n_validate: int,
    measurements: str | None,
    step_range_s: tuple[float, float] | None,
    refit_path: str | None,
    from_path: str | None,
    source: str | None,
    stack: str | None,
    force: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Measure the default JAX device (or fit saved measurements) and write a [calibration] section."""
    if plan_only:
        hw = Hardware.load(hardware)
        budget = time_budget_s if time_budget_s is not None else default_budget_s(hw.device)
        p = make_plan(hw, hw.device, budget, n_fit, n_validate, step_range_s)
        echo(render.plan_document(p, hw, out_format), nl=False)
        return
    if from_path:
        r = calibrate_from(hardware, Path(from_path), Path(out) if out else None, source, force, stack)
    elif refit_path:
        r = refit(hardware, Path(refit_path), Path(out) if out else None, force)
    else:
        # Refused before JAX starts and anything is measured (calibrate checks it again itself).
        if compile_deadline_s is not None:
            check_compile_deadline_s(compile_deadline_s)
        hw = Hardware.load(hardware)
        hwfile.check_targets(
            hw, Path(out) if out else hwfile.default_out(hw), Path(measurements) if measurements else None, True
        )
        try:
            from timescale_frontier.calibrate.run import calibrate
        except ImportError as e:
            raise InvalidInputError(
                f"measuring needs JAX: pip install 'timescale-frontier[calibrate]' ({e}); --refit does not"
            ) from None
        say = (lambda _m: None) if quiet else (lambda m: echo(m, err=True))
        r = calibrate(
            hardware,
            Path(out) if out else None,
            time_budget_s if time_budget_s is not None else default_budget_s(hw.device),
            n_fit,
            n_validate,
            Path(measurements) if measurements else None,
            force,
            say,
            step_range_s,
            compile_deadline_s,
        )
    echo(render.calibration_text(r), nl=False)
    for warning in r.warnings:  # what --force overrode: loud, even with -q
        echo(f"WARNING: {r.hardware.path}: {warning}", err=True)


@click.command(name="validate")
@click.option("--hardware", "-H", required=True)
@click.option(
    "--measurements",
    required=True,
    type=click.Path(),
    help="JSONL or CSV of measured steps (see calibrate --from).",
)
@click.option("--split", type=click.Choice(["all", "fit", "validation"]), default="all", show_default=True)
@click.option("--format", "out_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--stack",
    default=None,
    metavar="NAME",
    help="Use the hardware file's calibration of this software stack, and only the rows of that stack (rows"
    " naming none count).",
)
@click.option("--debug", is_flag=True)
@handle_errors
def validate_cmd(hardware: str, measurements: str, split: str, out_format: str, stack: str | None, debug: bool) -> None:
    """Predict measured step times with every step-time model: R^2, errors, rank correlation; with
    --format json, every row too (measured and predicted, or why the model cannot price it)."""
    hw = Hardware.load(hardware, stack=stack)
    unpriced: list[Unpriced] = []
    rows = load_measurements(Path(measurements), split, hw, unpriced, stack=stack)
    res = validate(hw, rows)
    if out_format == "json":
        doc = {
            "hardware": hw.name,
            "stack": hw.stack,
            "n": len(rows),
            "split": split,
            "models": res,
            "rows": row_predictions(hw, rows),
            "unpriced": [{"row": u.row, "row_id": u.row_id, "reason": u.reason} for u in unpriced],
        }
        echo(render.to_json(doc), nl=False)
    else:
        echo(render.validation_text(hw, len(rows), split, res, len(unpriced)), nl=False)
