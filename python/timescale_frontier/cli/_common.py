"""What every command shares: error handling (one line on stderr, exit 2 for bad input, 1 when
nothing is feasible), the budget and chip-count flags, the progress bar, writing the output."""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from timescale_frontier._core import Layout
from timescale_frontier._defaults import ASPECT_RATIO_TEXT
from timescale_frontier._files import write_atomic
from timescale_frontier._text import printable
from timescale_frontier.budget import Budget
from timescale_frontier.errors import InvalidInputError, TimescaleError
from timescale_frontier.loss import DEFAULT_LAW, law_names, loss_term_names
from timescale_frontier.prediction import Chips

F = TypeVar("F", bound=Callable[..., Any])


class _Int64(click.types.IntParamType):
    """Any 64-bit integer (a type only: the core checks each field's own range), shown in the
    help as INTEGER rather than as the 64-bit range."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        v = super().convert(value, param, ctx)
        if not -(2**63) <= v < 2**63:
            self.fail(f"{v} is not a 64-bit integer", param, ctx)
        return v


#: Integer options: any 64-bit integer here; the core checks each field's own range.
INT64 = _Int64()


def echo(text: str, *, err: bool = False, nl: bool = True) -> None:
    """Prints ``text`` (stdout, or stderr with ``err``) with every terminal control character
    escaped (``printable``): what the commands print often comes from files (names, sources,
    dates, keys, values). Every command prints through here. A closed standard output is an
    error (exit 1), not an answer silently lost."""
    if not err and sys.stdout is None:
        raise TimescaleError("cannot print the answer: standard output is closed (use -o FILE)")
    try:
        click.echo(printable(text), err=err, nl=nl)
    except BrokenPipeError:
        raise  # a reader that stopped early (`| head`): handled as before, not renamed
    except OSError as e:  # e.g. a full disk behind `> file`: the error names the stream, as a file's names its path
        raise TimescaleError(f"standard {'error' if err else 'output'}: cannot write ({e.strerror or e})") from None


#: The exit status the command chose, once it has finished (for ``_end_directly``).
_exit_code = 0
_finished = False


def _exit(code: int) -> None:
    _finish(code)
    sys.exit(code)


def _nothing_left_to_interrupt(_signum: int, _frame: object) -> None:
    """Ctrl-C once the command has finished: its answer is printed and its files are written."""


def _finish(code: int) -> None:
    """The command has finished with status ``code``. In a console script, a Ctrl-C from now on has
    nothing left to interrupt and is ignored: met by click's own unwinding it would print "Aborted!"
    (exit 1), and met in the interpreter's teardown (after Python puts the default action back) it
    would kill the process (issue 26: the README test command failed on it under load)."""
    global _exit_code, _finished
    _exit_code, _finished = code, True
    if _console_script:
        # A Python handler, not SIG_IGN: a Ctrl-C caught just before this call still runs it.
        signal.signal(signal.SIGINT, _nothing_left_to_interrupt)


def _end_directly() -> None:
    """At the end of a command-line process whose command has finished (or while a calibration's
    compile given up at its deadline still runs inside XLA, where the interpreter's shutdown would
    abort in C++, "terminate called ...", exit 134): end the process directly with the command's
    exit status, skipping the interpreter's teardown, where Ctrl-C has its default action again."""
    run = sys.modules.get("timescale_frontier.calibrate.run")
    if _finished or (run is not None and run.compiles_running()):
        code = _exit_code
        try:
            if sys.stdout is not None:
                sys.stdout.flush()
        except BrokenPipeError:  # a reader that stopped early (`| head`): nothing left to tell it
            pass
        except (OSError, ValueError) as e:  # an answer not written (a full disk) is not a success
            sys.stderr.write(f"error: standard output: cannot write ({getattr(e, 'strerror', None) or e})\n")
            code = code or 1
        try:
            if sys.stderr is not None:
                sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os._exit(code)


#: Whether this process is one of the console scripts (not a host such as a test runner).
_console_script = os.path.basename(sys.argv[0]) in ("timescale", "timescale-frontier")
if _console_script:
    atexit.register(_end_directly)


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {printable(message, one_line=True)}", err=True)
    _exit(code)


def handle_errors(f: F) -> F:
    """Turns the exception tree into one-line messages and exit codes (2 bad input, 1 runtime)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.get("debug", False)
        if _console_script:
            # The command starts: Ctrl-C raises KeyboardInterrupt again (handled below: exit 130, after
            # every temporary file is removed) instead of the start-up handler's immediate exit.
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            result = f(*args, **kwargs)
            _finish(0)
            return result
        except InvalidInputError as e:
            if debug:
                raise
            _fail(str(e), 2)
        except TimescaleError as e:
            if debug:
                raise
            _fail(str(e), 1)
        except KeyboardInterrupt:
            if debug:
                raise
            click.echo("interrupted", err=True)
            if _console_script:
                # Every temporary file is gone (the writers' own handlers ran while unwinding); skip
                # the interpreter's teardown, which frees a large answer's objects one by one (0.3 s).
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(130)
            _exit(130)
        except UnicodeEncodeError as e:  # a lone surrogate: an argument that was not UTF-8, or JSON's "\ud800"
            if debug:
                raise
            _fail(f"{e.object[e.start : e.end]!r} is not text (not valid UTF-8): {e.reason}", 2)
        except OSError as e:
            if debug:
                raise
            _fail(f"{getattr(e, 'filename', '') or ''}: {e.strerror or e}".lstrip(": "), 1)
        except Exception as e:  # noqa: BLE001 - a bug: still one line, the traceback behind --debug
            if debug:
                raise
            _fail(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", 1)

    return wrapper  # type: ignore[return-value]


def budget_options(f: F) -> F:
    """--hours, --budget-usd, --usd-per-chip-hour: parsed here, checked by the core's Budget."""
    for opt in reversed(
        [
            click.option(
                "--hours",
                "--max-hours",
                "hours",
                type=float,
                default=None,
                help="Wall-clock training budget in hours; with --budget-usd a cap on the wall clock (--max-hours"
                " says so): the smaller budget wins.",
            ),
            click.option(
                "--budget-usd",
                type=float,
                default=None,
                help="Money budget in USD (with or instead of --hours; the smaller wins).",
            ),
            click.option(
                "--usd-per-chip-hour",
                type=float,
                default=None,
                help="Price override (default: the hardware file's [price]).",
            ),
        ]
    ):
        f = opt(f)
    return f


def law_options(f: F) -> F:
    """--law, --loss-terms, --eval-context: parsed here, resolved by ``get_law`` (the core checks)."""
    for opt in reversed(
        [
            click.option(
                "--law",
                default=DEFAULT_LAW,
                show_default=True,
                help=f"Scaling law: {', '.join(law_names())}, or a law file from `timescale fit-law`.",
            ),
            click.option(
                "--loss-terms",
                default=None,
                metavar="all|none|NAMES",
                help=f"Evidence terms of the loss ({', '.join(loss_term_names())}; comma-separated): all, none (the "
                "law as published), or some (default: the law's own: all for a built-in law).",
            ),
            click.option(
                "--eval-context",
                type=float,
                default=None,
                metavar="TOKENS",
                help="Context the loss is evaluated at; training shorter is charged by Xiong et al. 2023's curve"
                " (default: the law's fit context, 2048 for the built-in laws).",
            ),
        ]
    ):
        f = opt(f)
    return f


def budget_of(hours: float | None, budget_usd: float | None, usd_per_chip_hour: float | None) -> Budget:
    return Budget(hours, usd=budget_usd, usd_per_chip_hour=usd_per_chip_hour)


#: The keys ``--layout`` takes (the keyword arguments of ``Layout``).
LAYOUT_KEYS = ("dp", "tp", "pp", "vp", "cp", "ep", "zero", "sp", "matmul")


def parse_layout(value: str | None) -> Layout | None:
    """``tp=4,pp=2,vp=5,dp=8,zero=1,sp=true,matmul=fp8`` as a ``Layout`` (the syntax here; the core
    checks every degree)."""
    if value is None:
        return None
    kwargs: dict[str, Any] = {}
    for part in str(value).split(","):
        key, sep, raw = part.partition("=")
        key, raw = key.strip().lower(), raw.strip()
        if not sep or key not in LAYOUT_KEYS or key in kwargs:
            raise InvalidInputError(
                f"layout = {printable(value)!r} is invalid: expected KEY=VALUE pairs, each key once, of "
                f"{', '.join(LAYOUT_KEYS)} (e.g. tp=4,pp=2,dp=8,zero=1,sp=true,matmul=fp8)",
                field="layout",
                value=repr(value),
                expected=f"KEY=VALUE pairs of {', '.join(LAYOUT_KEYS)}",
            )
        if key == "matmul":
            kwargs[key] = raw.lower()
        elif key == "sp":
            if raw.lower() not in ("true", "false"):
                raise InvalidInputError(
                    f"layout sp = {printable(raw)!r} is invalid: expected true or false",
                    field="sp",
                    value=repr(raw),
                    expected="true or false",
                )
            kwargs[key] = raw.lower() == "true"
        else:
            try:
                kwargs[key] = int(raw)
            except ValueError:
                raise InvalidInputError(
                    f"layout {key} = {printable(raw)!r} is invalid: expected a whole number",
                    field=key,
                    value=repr(raw),
                    expected="a whole number",
                ) from None
    return Layout(**kwargs)


def stack_option(f: F) -> F:
    """``--stack NAME``: the hardware file's calibration of that software stack."""
    return click.option(
        "--stack",
        default=None,
        metavar="NAME",
        help="Use the hardware file's calibration of this software stack (e.g. megatron, maxtext, pytorch-fsdp;"
        " `timescale hardware list` shows each file's) instead of its default [calibration].",
    )(f)


def parse_chips(value: str) -> Chips:
    """``N``, ``N,M,...`` or ``auto`` (the syntax; the core checks the counts)."""
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InvalidInputError(
            f"--chips = {value!r} is invalid: expected a whole number, a list like 1,2,4,8, or auto"
        ) from None
    return counts[0] if len(counts) == 1 else counts


def progress_bar(
    quiet: bool, label: str = "searching", unit: str = "M configs/s", scale: float = 1e6
) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A progress bar on stderr (with the rate, ``done / scale`` per second in ``unit``) for work
    that runs past about a second; none when stderr is not a terminal or --quiet is given."""
    if quiet or not sys.stderr.isatty():
        return None, lambda: None
    t0 = time.perf_counter()
    bars: list[Any] = []  # the bar, once shown
    shown = [0]

    def update(done: int, total: int) -> None:
        elapsed = time.perf_counter() - t0
        if not bars:
            if elapsed < 1.0:
                return
            bars.append(click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True, show_eta=True))
            bars[0].__enter__()
        bars[0].label = f"{label} ({done / max(elapsed, 1e-9) / scale:.3g} {unit})"
        bars[0].update(done - shown[0])
        shown[0] = done

    def close() -> None:
        if bars:
            bars[0].__exit__(None, None, None)

    return update, close


def emit(text: str, output: str | None, inputs: Sequence[str | os.PathLike[str]] = ()) -> None:
    """Writes ``text`` to ``output`` (see ``write_atomic``: never over one of ``inputs``, the files
    this run read), or to stdout."""
    if output and output != "-":
        write_atomic(output, text, inputs)
        echo(f"wrote {output}", err=True)
    else:
        echo(text, nl=False)


def aspect_guard(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, float] | None:
    """``--aspect-ratio``: ``MIN:MAX``, or ``none`` for no guard (the core's ``NO_ASPECT_GUARD``)."""
    if value is not None and value.strip().lower() == "none":
        from timescale_frontier import _core

        return _core.NO_ASPECT_GUARD
    return min_max(ctx, param, value)


def min_max(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, float] | None:
    """``MIN:MAX`` as two numbers (the syntax; the core checks the values); None when not given."""
    if value is None:
        return None
    try:
        lo, hi = (float(x) for x in value.split(":"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is invalid: expected MIN:MAX, e.g. {ASPECT_RATIO_TEXT}") from None
    return lo, hi
