"""Command line: ``timescale-frontier`` (the search) and the ``timescale`` group (``search``,
``predict``, ``hardware list|show``). Calls the public API only; errors become one line on
stderr with exit code 2 (bad input) or 1 (nothing feasible, runtime failure); ``--debug`` shows
the traceback."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from timescale_frontier import format as fmt
from timescale_frontier.architecture import Architecture
from timescale_frontier.errors import InfeasibleError, InvalidInputError, TimescaleError
from timescale_frontier.hardware import Hardware, shipped_names
from timescale_frontier.loss import law_names
from timescale_frontier.metrics import hours_from_usd, predict
from timescale_frontier.search import SearchResult, search
from timescale_frontier.space import AXES, load_space, make_space, parse_axis

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def handle_errors(f: F) -> F:
    """Turns the exception tree into one-line messages and exit codes (2 usage, 1 runtime)."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = kwargs.get("debug", False)
        try:
            return f(*args, **kwargs)
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
            sys.exit(130)
        except OSError as e:
            if debug:
                raise
            _fail(f"{getattr(e, 'filename', '') or ''}: {e.strerror or e}".lstrip(": "), 1)
        except Exception as e:  # noqa: BLE001 - a bug: still one line, the traceback behind --debug
            if debug:
                raise
            _fail(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", 1)

    return wrapper  # type: ignore[return-value]


def _hours(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    import math

    if value is not None and (not math.isfinite(value) or value <= 0):
        raise click.BadParameter(f"{value} is invalid: expected a finite number of hours > 0")
    return value


def _positive(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    import math

    if value is not None and (not math.isfinite(value) or value <= 0):
        raise click.BadParameter(f"{value} is invalid: expected a finite number > 0")
    return value


def budget_hours(
    hw: Hardware, hours: float | None, budget_usd: float | None, usd_per_chip_hour: float | None, chips: int
) -> tuple[float, str]:
    """The training budget in hours from --hours and/or --budget-usd (the smaller wins), and how
    it was set, for display."""
    options: list[tuple[float, str]] = []
    if hours is not None:
        options.append((hours, f"{hours:g} h"))
    if budget_usd is not None:
        price = usd_per_chip_hour if usd_per_chip_hour is not None else hw.price.get("usd_per_chip_hour")
        if price is None:
            raise InvalidInputError(f"{hw.path}: no price.usd_per_chip_hour for --budget-usd; give --usd-per-chip-hour")
        h = hours_from_usd(budget_usd, price, chips)
        options.append((h, f"${budget_usd:,.0f} at ${price:g}/chip-hour = {h:.4g} h"))
    if not options:
        raise InvalidInputError("no budget: give --hours, --budget-usd, or both")
    return min(options)


def _step_range(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in value.split(":"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is invalid: expected MIN:MAX seconds, e.g. 0.0005:0.06") from None
    if not (0 < lo < hi <= 3600):
        raise click.BadParameter(f"'{value}' is invalid: expected 0 < MIN < MAX <= 3600 seconds")
    return lo, hi


def _aspect(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in value.split(":"))
    except ValueError:
        raise click.BadParameter(f"'{value}' is invalid: expected MIN:MAX, e.g. 20:200") from None
    return lo, hi


def search_options(f: F) -> F:
    """Options shared by ``timescale-frontier`` and ``timescale search``."""
    for axis in reversed(list(AXES)):
        kind = AXES[axis]
        example = {"int": "512,1024 or 128:8192:128", "float": "2.667,4", "bool": "true,false"}.get(
            kind, kind.split(":", 1)[-1]
        )
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
        click.option("--hours", type=float, default=None, callback=_hours, help="Wall-clock training budget in hours."),
        click.option(
            "--budget-usd",
            type=float,
            default=None,
            callback=_positive,
            help="Money budget in USD (with or instead of --hours; the smaller budget wins).",
        ),
        click.option(
            "--usd-per-chip-hour",
            type=float,
            default=None,
            callback=_positive,
            help="Price override (default: the hardware file's [price]).",
        ),
        click.option(
            "--unique-tokens",
            type=float,
            default=None,
            callback=_positive,
            help="Unique training tokens available; repeated data counts for less (Muennighoff 2023).",
        ),
        click.option(
            "--chips",
            default="1",
            show_default=True,
            metavar="N|N,M,..|auto",
            help="Chips to train on (each config gets its fastest sharding: DP, FSDP, TP or a mix). Several counts"
            " (1,2,4,8) or auto (powers of two up to the interconnect's max_chips, at most 64): the answer also"
            " chooses how many, which matters with --budget-usd.",
        ),
        click.option(
            "--step-time-model",
            default=None,
            metavar="NAME",
            help="Use another calibrated step-time model of the hardware file (e.g. flops, memcpy) instead"
            " of its default, to see what that model would recommend.",
        ),
        click.option(
            "--law",
            default="hoffmann",
            show_default=True,
            help=f"Scaling law: {', '.join(law_names())}, or a law file from `timescale fit-law`.",
        ),
        click.option(
            "--top",
            "top_k",
            type=click.IntRange(1, 100_000),
            default=10,
            show_default=True,
            help="How many of the best configurations to list.",
        ),
        click.option(
            "--format", "out_format", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
        ),
        click.option(
            "--output",
            "-o",
            type=click.Path(dir_okay=False),
            default=None,
            help="Write the output to this file (atomically) instead of stdout.",
        ),
        click.option(
            "--space",
            "space_file",
            type=click.Path(dir_okay=False),
            default=None,
            help="TOML file of search-space axes (flags override it).",
        ),
        click.option(
            "--aspect-ratio",
            default="20:200",
            show_default=True,
            callback=_aspect,
            help="Accepted d_model/n_layers range MIN:MAX (Kaplan 2020's shape-insensitive range).",
        ),
        click.option(
            "--max-tokens-per-step",
            type=click.FloatRange(min=1),
            default=None,
            help="Cap on batch x seq_len (default: Kaplan's critical batch at the predicted loss).",
        ),
        click.option(
            "--plot",
            "plot_path",
            type=click.Path(dir_okay=False),
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


def _progress(quiet: bool, prefix: str = "") -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    """A progress bar on stderr (with configs/s) for searches that run past about a second; none
    when stderr is not a terminal or --quiet is given."""
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
            bars.append(
                click.progressbar(
                    length=total, label=f"{prefix}searching", file=sys.stderr, show_pos=True, show_eta=True
                )
            )
            bars[0].__enter__()
        bars[0].label = f"{prefix}searching ({done / max(elapsed, 1e-9) / 1e6:.3g} M configs/s)"
        bars[0].update(done - shown[0])
        shown[0] = done

    def close() -> None:
        if bars:
            bars[0].__exit__(None, None, None)

    return update, close


def run_search(
    hardware: str,
    hours: float | None,
    budget_usd: float | None,
    usd_per_chip_hour: float | None,
    unique_tokens: float | None,
    chips: str,
    step_time_model: str | None,
    law: str,
    top_k: int,
    out_format: str,
    output: str | None,
    space_file: str | None,
    aspect_ratio: tuple[float, float],
    max_tokens_per_step: float | None,
    plot_path: str | None,
    plot_compare: str | None,
    quiet: bool,
    debug: bool,
    **axes: str | None,
) -> None:
    hw = Hardware.load(hardware)
    if step_time_model is not None:
        hw = hw.using(step_time_model)
    counts = parse_chips(chips, hw)
    budgets = {c: budget_hours(hw, hours, budget_usd, usd_per_chip_hour, c) for c in counts}
    overrides: dict[str, Any] = load_space(space_file) if space_file else {}
    for axis, value in axes.items():
        if value is not None:
            overrides[axis] = parse_axis(axis, value)
    space = make_space(overrides, origin=space_file or "search space")
    results: dict[int, SearchResult | str] = {}
    for c in counts:
        update, close = _progress(quiet, f"{c} chip{'s' if c > 1 else ''}: " if len(counts) > 1 else "")
        try:
            results[c] = search(
                hw,
                budgets[c][0],
                space,
                law=law,
                top_k=top_k,
                aspect_ratio=aspect_ratio,
                max_tokens_per_step=max_tokens_per_step,
                unique_tokens=unique_tokens,
                chips=c,
                progress=update,
            )
        except InfeasibleError as e:
            if len(counts) == 1:
                raise
            results[c] = str(e)
        finally:
            close()
    found = {c: r for c, r in results.items() if isinstance(r, SearchResult)}
    if not found:
        raise InfeasibleError(
            "no feasible configuration on any chip count: " + "; ".join(f"{c} chips: {r}" for c, r in results.items())
        )
    best_count = min(found, key=lambda c: (found[c].best["loss"], c))
    result = found[best_count]
    hours, budget_text = budgets[best_count]
    text = render(result, out_format, budget_text, chip_counts(results, budgets) if len(counts) > 1 else None)
    if plot_path:
        from timescale_frontier import plot

        extra = []
        for name in (plot_compare or "").split(","):
            if not name.strip():
                continue
            other = Hardware.load(name.strip())
            try:
                other.check_chips(result.chips)
            except InvalidInputError as e:
                click.echo(f"note: {other.name} left out of the plot: {e}", err=True)
                continue
            extra.append(other)
        plot.frontier(
            result,
            [hw, *extra],
            overrides,
            plot_path,
            law=law,
            aspect_ratio=aspect_ratio,
            max_tokens_per_step=max_tokens_per_step,
            unique_tokens=unique_tokens,
            chips=result.chips,
        )
        click.echo(f"wrote {plot_path}", err=True)
    if output:
        fmt.write_atomic(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


def _arch_cells(r: dict[str, Any]) -> list[str]:
    return [
        str(r["d_model"]),
        str(r["n_layers"]),
        f"{r['n_heads']}/{r['n_kv_heads']}",
        str(r["d_ff"]),
        r["mlp"],
        r["attention"][:5],
        "tied" if r["tied_embeddings"] else "untied",
        str(r["seq_len"]),
        str(r["batch_size"]),
    ]


def _metric_cells(r: dict[str, Any]) -> list[str]:
    return [
        fmt.count(r["params"]),
        fmt.seconds(r["step_time_s"]),
        fmt.count(r["tokens"]),
        fmt.binary_bytes(r["memory_bytes"]),
        f"{r['loss']:.4f}",
    ]


HEADERS = [
    "d_model",
    "layers",
    "heads/kv",
    "d_ff",
    "mlp",
    "attn",
    "embed",
    "seq",
    "batch",
    "params",
    "step",
    "tokens",
    "memory",
    "loss",
]


def _interval_text(r: SearchResult, row: dict[str, Any]) -> str:
    iv = r.loss_interval(row)
    if iv is None:
        return ""
    return f" (95% interval {iv[0]:.4f}-{iv[1]:.4f} over {len(r.law_bootstrap)} bootstrap refits of the law)"


PARETO_ROWS = 15


def _thin(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """At most ``n`` rows, evenly spaced, first and last kept."""
    if len(rows) <= n:
        return rows
    picks = sorted({round(i * (len(rows) - 1) / (n - 1)) for i in range(n)})
    return [rows[i] for i in picks]


def _pareto_title(r: SearchResult) -> str:
    n = len(r.pareto["index"])
    shown = f" ({PARETO_ROWS} of {n} shown; --format json or csv lists all)" if n > PARETO_ROWS else ""
    return f"Pareto set, loss vs parameters (nothing else is both smaller and better){shown}:"


def parse_chips(value: str, hw: Hardware) -> list[int]:
    """``N``, ``N,M,...`` or ``auto`` (powers of two up to the interconnect's max_chips, at most 64)."""
    text = str(value).strip().lower()
    if text == "auto":
        top = min(hw.max_chips, 64)
        counts = [2**k for k in range(7) if 2**k <= top]
    else:
        try:
            counts = sorted({int(x) for x in text.split(",") if x.strip()})
        except ValueError:
            raise InvalidInputError(
                f"--chips = {value!r} is invalid: expected a whole number, a list like 1,2,4,8, or auto"
            ) from None
        if not counts:
            raise InvalidInputError(f"--chips = {value!r} is invalid: expected a whole number, a list, or auto")
    for c in counts:
        hw.check_chips(c)
    return counts


def chip_counts(results: dict[int, SearchResult | str], budgets: dict[int, tuple[float, str]]) -> list[dict[str, Any]]:
    """One row per chip count searched: its budget and best configuration (or why none)."""
    rows = []
    for c, r in results.items():
        row: dict[str, Any] = {"chips": c, "hours": budgets[c][0]}
        if isinstance(r, SearchResult):
            b = r.best
            row.update(
                loss=b["loss"], d_model=b["d_model"], n_layers=b["n_layers"], params=b["params"],
                sharding=b["sharding"], step_time_s=b["step_time_s"], tokens=b["tokens"], bound=b["bound"],
            )  # fmt: skip
        else:
            row["infeasible"] = r
        rows.append(row)
    return rows


def _chip_table(rows: list[dict[str, Any]]) -> list[str]:
    best = min((r for r in rows if "loss" in r), key=lambda r: (r["loss"], r["chips"]))
    cells = []
    for r in rows:
        if "loss" not in r:
            cells.append([str(r["chips"]), f"{r['hours']:.4g} h", "-", "-", "-", "-", "infeasible"])
            continue
        cells.append(
            [
                str(r["chips"]) + (" *" if r is best else ""),
                f"{r['hours']:.4g} h",
                f"{r['d_model']} x {r['n_layers']}",
                fmt.count(r["params"]),
                r["sharding"],
                fmt.count(r["tokens"]),
                f"{r['loss']:.4f}",
            ]
        )
    return [
        "Chip counts searched (* = chosen: lowest predicted loss for the budget):",
        fmt.table(["chips", "hours", "d_model x layers", "params", "sharding", "tokens", "loss"], cells),
        "",
    ]


def render(
    r: SearchResult, out_format: str, budget_text: str | None = None, counts: list[dict[str, Any]] | None = None
) -> str:
    if out_format == "json":
        doc = {**r.to_dict(), "budget": budget_text or f"{r.hours:g} h"}
        if counts:
            doc["chip_counts"] = counts
        return fmt.to_json(doc)
    if out_format == "csv":
        rows = [{"set": "top", "rank": i + 1, **row} for i, row in enumerate(r.rows("top"))]
        rows += [{"set": "pareto", "rank": i + 1, **row} for i, row in enumerate(r.rows("pareto"))]
        return fmt.to_csv(rows)
    hw = r.hardware
    b = r.best
    headers = HEADERS + (["sharding", "bound"] if r.chips > 1 else [])

    def extra(x: dict[str, Any]) -> list[str]:
        return [x["sharding"], x["bound"]] if r.chips > 1 else []

    status = "calibrated" if hw.calibrated else "UNCALIBRATED: datasheet roofline, not measured on this chip"
    out = [
        f"{hw.description} ({hw.path}), budget {budget_text or f'{r.hours:g} h'}, law {r.law_name}"
        + (f", {r.unique_tokens:.3g} unique tokens" if r.unique_tokens else ""),
        f"step time: {hw.step_time_formula}",
        f"[{status}]",
        "",
        f"Best: d_model {b['d_model']}, {b['n_layers']} layers, {b['n_heads']} heads "
        f"({b['n_kv_heads']} KV) of {b['head_dim']}, d_ff {b['d_ff']} {b['mlp']}, {b['attention']} attention, "
        f"{'tied' if b['tied_embeddings'] else 'untied'} embeddings, seq {b['seq_len']} x batch {b['batch_size']}",
        f"  {fmt.count(b['params'])} params ({fmt.count(b['non_embedding_params'])} non-embedding), "
        f"{fmt.seconds(b['step_time_s'])}/step, {fmt.count(b['tokens'])} tokens, "
        f"memory {fmt.binary_bytes(b['memory_bytes'])} of {fmt.binary_bytes(hw.hbm_bytes)}, "
        f"predicted loss {b['loss']:.4f} nats/token" + _interval_text(r, b),
        *(
            [f"  on {r.chips} chips, {b['sharding']}: memory is per chip, step time includes communication"]
            if r.chips > 1
            else []
        ),
        "",
        *(_chip_table(counts) if counts else []),
        "Why:",
        *(f"  {line}" for line in r.explain()),
        "",
        f"Top {len(r.top['index'])} by predicted loss" + (" (memory per chip)" if r.chips > 1 else "") + ":",
        fmt.table(
            ["#"] + headers,
            [[str(i + 1)] + _arch_cells(x) + _metric_cells(x) + extra(x) for i, x in enumerate(r.rows("top"))],
        ),
        "",
        _pareto_title(r),
        fmt.table(
            headers, [_arch_cells(x) + _metric_cells(x) + extra(x) for x in _thin(r.rows("pareto"), PARETO_ROWS)]
        ),
        "",
        f"Evaluated {r.evaluated:,} configurations in {r.elapsed_s:.2f} s "
        f"({r.evaluated / max(r.elapsed_s, 1e-9) / 1e6:.1f} M/s); {r.feasible:,} feasible. Dropped: "
        + ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in r.rejected.items() if v)
        + ".",
    ]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- timescale-frontier
@click.command(name="timescale-frontier")
@search_options
@handle_errors
def frontier_main(**kwargs: Any) -> None:
    """Which transformer reaches the lowest loss when the wall-clock budget runs out?

    Example: timescale-frontier --hardware tpu_v4.toml --hours 12
    """
    run_search(**kwargs)


# ---------------------------------------------------------------- timescale
@click.group()
@click.version_option(package_name="timescale-frontier")
def main() -> None:
    """timescale-frontier: step time, loss and the best transformer for a wall-clock budget."""


@main.command(name="search")
@search_options
@handle_errors
def search_cmd(**kwargs: Any) -> None:
    """Search a space of architectures (same as timescale-frontier)."""
    run_search(**kwargs)


@main.command(name="predict")
@click.option("--d-model", type=click.IntRange(1), required=True)
@click.option("--n-layers", type=click.IntRange(1), required=True)
@click.option("--n-heads", type=click.IntRange(1), required=True)
@click.option("--n-kv-heads", type=click.IntRange(1), default=None, help="Default: n_heads.")
@click.option("--head-dim", type=click.IntRange(1), default=None, help="Default: d_model / n_heads.")
@click.option(
    "--d-ff",
    type=click.IntRange(1),
    default=None,
    help="Default: 4 d_model (gelu), 8/3 d_model to a multiple of 256 (swiglu).",
)
@click.option("--mlp", type=click.Choice(["gelu", "swiglu"]), default="gelu", show_default=True)
@click.option("--attention", type=click.Choice(["flash", "materialized"]), default="flash", show_default=True)
@click.option("--tied/--untied", default=False, show_default=True, help="Tie the output projection to the embedding.")
@click.option("--seq-len", type=click.IntRange(1), default=2048, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True, help="Sequences per step.")
@click.option("--vocab-size", type=click.IntRange(1), default=32000, show_default=True)
@click.option("--hardware", "-H", required=True)
@click.option("--hours", type=float, default=None, callback=_hours, help="Training budget in hours.")
@click.option(
    "--budget-usd", type=float, default=None, callback=_positive, help="Money budget (with or instead of --hours)."
)
@click.option("--usd-per-chip-hour", type=float, default=None, callback=_positive, help="Price override.")
@click.option("--unique-tokens", type=float, default=None, callback=_positive, help="Unique training tokens available.")
@click.option("--law", default="hoffmann", show_default=True, help="A built-in law name or a law file.")
@click.option(
    "--chips", type=click.IntRange(1), default=1, show_default=True, help="Chips (the fastest sharding that fits)."
)
@click.option("--ops", is_flag=True, help="Also list the MEMCPY operation table.")
@click.option("--format", "out_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--debug", is_flag=True)
@handle_errors
def predict_cmd(
    d_model: int,
    n_layers: int,
    n_heads: int,
    n_kv_heads: int | None,
    head_dim: int | None,
    d_ff: int | None,
    mlp: str,
    attention: str,
    tied: bool,
    seq_len: int,
    batch_size: int,
    vocab_size: int,
    hardware: str,
    hours: float | None,
    budget_usd: float | None,
    usd_per_chip_hour: float | None,
    unique_tokens: float | None,
    law: str,
    chips: int,
    ops: bool,
    out_format: str,
    debug: bool,
) -> None:
    """Every metric of one architecture on one or more chips for a budget."""
    arch = Architecture(
        d_model,
        n_layers,
        n_heads,
        n_kv_heads=n_kv_heads,
        head_dim=head_dim,
        d_ff=d_ff,
        mlp=mlp,
        attention=attention,
        tied_embeddings=tied,
        seq_len=seq_len,
        batch_size=batch_size,
        vocab_size=vocab_size,
    )
    hw = Hardware.load(hardware)
    hours, budget_text = budget_hours(hw, hours, budget_usd, usd_per_chip_hour, chips)
    p = predict(arch, hw, hours, law, unique_tokens, chips)
    if out_format == "json":
        doc = {
            "architecture": arch.to_dict(),
            "hardware": hw.name,
            "calibrated": hw.calibrated,
            "hours": hours,
            "budget": budget_text,
            "unique_tokens": unique_tokens,
            "law": law,
            **p.to_dict(),
        }
        if ops:
            doc["ops"] = arch.op_table()
        click.echo(fmt.to_json(doc), nl=False)
        return
    lines = [
        repr(arch),
        f"on {hw.description} ({'calibrated' if hw.calibrated else 'UNCALIBRATED datasheet roofline'}), {budget_text}, law {law}",
        f"  params                {fmt.count(p.params)} ({fmt.count(p.non_embedding_params)} non-embedding)",
        f"  FLOPs per step        {fmt.si(p.flops_per_step, 'FLOP')}",
        f"  MEMCPY per step       {fmt.binary_bytes(p.memcpy_bytes_per_step)} ({p.memcpy_bytes_per_step:.4g} bytes)",
        f"  memory                {fmt.binary_bytes(p.memory_bytes)} of {fmt.binary_bytes(hw.core.usable_hbm_bytes)} usable"
        f" ({'fits' if p.fits_memory else 'DOES NOT FIT'})",
        f"  step time             {fmt.seconds(p.step_time_s)}",
        f"  steps in budget       {p.steps:,.0f}",
        f"  tokens                {fmt.count(p.tokens)} ({fmt.count(p.tokens_per_step)} per step)",
        *(
            [
                f"  epochs                {p.epochs:.3g} over {fmt.count(unique_tokens)} unique tokens"
                f" (worth {fmt.count(p.effective_tokens)} fresh tokens)"
            ]
            if p.epochs is not None and unique_tokens
            else []
        ),
        f"  predicted loss        {'-' if p.loss is None else f'{p.loss:.4f} nats/token'}",
    ]
    if chips > 1:
        assert p.step is not None  # the core raises when no sharding divides the architecture
        chosen = p.step["sharding"] if p.fits_memory else f"no sharding fits; least memory: {p.step['sharding']}"
        lines.insert(2, f"  chips                 {chips} ({chosen}); memory and MEMCPY per chip")
        lines.append("  shardings (per chip):")
        for o in p.shardings:
            if not o["divides"]:
                lines.append(f"    {o['sharding']:16s} does not divide this configuration")
                continue
            mark = "*" if p.fits_memory and o["sharding"] == p.step["sharding"] else " "
            lines.append(
                f"  {mark} {o['sharding']:16s} step {fmt.seconds(o['step_time_s'])} = max(compute "
                f"{fmt.seconds(o['compute_s'])}, DP comm {fmt.seconds(o['dp_comm_s'])}) + TP comm "
                f"{fmt.seconds(o['tp_comm_s'])}; memory {fmt.binary_bytes(o['memory_bytes'])}"
                f"{'' if o['fits_memory'] else ' (DOES NOT FIT)'}; {o['bound']}-bound"
            )
    if p.loss is None and p.fits_memory:
        lines.append(f"  (one step takes {fmt.seconds(p.step_time_s)}, longer than the budget)")
    lines += [f"  warning: {w}" for w in p.warnings]
    if ops:
        rows = [
            [
                o["pass"],
                o["scope"],
                o["name"],
                fmt.binary_bytes(o["read_bytes"]),
                fmt.binary_bytes(o["write_bytes"]),
                fmt.binary_bytes(o["bytes_per_step"]),
                f"{100 * o['bytes_per_step'] / p.memcpy_bytes_per_step:.1f}%",
            ]
            for o in arch.op_table()
        ]
        lines += ["", fmt.table(["pass", "scope", "op", "read", "write", "per step", "share"], rows)]
    click.echo("\n".join(lines))


@main.command(name="fit-law")
@click.argument("runs", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="Name of the law (default: the runs file's stem).")
@click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="Write the law here (default: NAME.law.toml)."
)
@click.option(
    "--bootstrap",
    "n_bootstrap",
    type=click.IntRange(0, 5000),
    default=200,
    show_default=True,
    help="Resampled refits for the intervals.",
)
@click.option("--debug", is_flag=True)
@handle_errors
def fit_law_cmd(runs: str, name: str | None, out: str | None, n_bootstrap: int, debug: bool) -> None:
    """Fit E, A, B, alpha, beta to your own runs (CSV: params, tokens, loss) and save the law."""
    from pathlib import Path

    from timescale_frontier.loss import fit_law, load_runs, save_law

    params, tokens, loss = load_runs(runs)
    fit = fit_law(params, tokens, loss, n_bootstrap)
    name = name or Path(runs).stem
    target = out or f"{name}.law.toml"
    save_law(target, name, fit, f"timescale fit-law {runs} ({fit.n_runs} runs)")
    law = fit.law
    kept = len(fit.bootstrap)
    rows = [
        [k, f"{v:.4g}", f"[{fit.intervals[k][0]:.4g}, {fit.intervals[k][1]:.4g}]" if kept else "n/a"]
        for k, v in (("E", law.e), ("A", law.a), ("B", law.b), ("alpha", law.alpha), ("beta", law.beta))
    ]
    click.echo(fmt.table(["coefficient", "fit", f"95% bootstrap ({kept} refits)"], rows))
    if fit.bootstrap_rejected:
        click.echo(
            f"warning: {fit.bootstrap_rejected} of {n_bootstrap} bootstrap refits left the law's valid domain"
            " (exponent outside (0, 2]) and were left out: the runs barely identify the law; add runs that vary"
            " params and tokens independently",
            err=True,
        )
    click.echo(
        f"fitted on {fit.n_runs} runs: params {law.fit_params[0]:.3g}-{law.fit_params[1]:.3g}, "
        f"tokens {law.fit_tokens[0]:.3g}-{law.fit_tokens[1]:.3g}; Huber objective {fit.objective:.4g}"
    )
    click.echo(f"wrote {target} (use it with --law {target})")


@main.command(name="calibrate")
@click.option("--hardware", "-H", required=True, help="Hardware file to calibrate: a path or a shipped name.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the calibrated file here instead of replacing the input.",
)
@click.option(
    "--time-budget-s",
    type=click.FloatRange(min=1),
    default=100.0,
    show_default=True,
    help="Stop measuring after this many seconds.",
)
@click.option(
    "--n-fit", type=click.IntRange(4, 500), default=12, show_default=True, help="Architectures measured for the fit."
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
    type=click.Path(dir_okay=False),
    default=None,
    help="JSONL file to stream every measurement to (appended).",
)
@click.option(
    "--step-range-s",
    default="0.0005:0.06",
    show_default=True,
    callback=_step_range,
    help="Predicted step times (by the file's current model) of the designed architectures, MIN:MAX"
    " seconds: calibrate in the regime you will search.",
)
@click.option(
    "--refit",
    type=click.Path(dir_okay=False),
    default=None,
    help="Do not measure: fit and write from a JSONL file an earlier calibration streamed (--measurements).",
)
@click.option("--force", is_flag=True, help="Write coefficients even if JAX's device differs from the file's device.")
@click.option("--quiet", "-q", is_flag=True)
@click.option("--debug", is_flag=True)
@handle_errors
def calibrate_cmd(
    hardware: str,
    out: str | None,
    time_budget_s: float,
    n_fit: int,
    n_validate: int,
    measurements: str | None,
    step_range_s: tuple[float, float],
    refit: str | None,
    force: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Measure the default JAX device and write a [calibration] section into the hardware file."""
    try:
        from timescale_frontier.calibrate.run import calibrate
        from timescale_frontier.calibrate.run import refit as refit_from
    except ImportError as e:
        raise InvalidInputError(f"calibration needs JAX: pip install 'timescale-frontier[calibrate]' ({e})") from None
    from pathlib import Path

    say = (lambda _m: None) if quiet else (lambda m: click.echo(m, err=True))
    r = (
        refit_from(hardware, Path(refit), Path(out) if out else None, force)
        if refit
        else calibrate(
            hardware,
            Path(out) if out else None,
            time_budget_s,
            n_fit,
            n_validate,
            Path(measurements) if measurements else None,
            force,
            say,
            step_range_s,
        )
    )
    rows = []
    for name, rep in r.reports.items():
        v = r.validation.get(name, {})
        rows.append(
            [
                name + (" *" if name == r.chosen else ""),
                f"{rep.r2:.4f}",
                f"{rep.mean_abs_pct_error:.1f}%",
                f"{rep.max_abs_pct_error:.1f}%",
                f"{rep.heldout_mean_abs_pct_error:.1f}%",
                f"{rep.heldout_median_abs_pct_error:.1f}%",
                f"{v['median_abs_pct_error']:.1f}%" if v else "-",
            ]
        )
    click.echo(
        fmt.table(
            ["model", "R^2", "mean err", "max err", "CV mean err", "CV median err", "validation median err"], rows
        )
    )
    click.echo(
        f"* chosen: {r.chosen} ({r.n_fit} fit samples, {r.n_validation} validation samples, {r.elapsed_s:.0f} s)"
    )
    click.echo(f"step time: {r.hardware.step_time_formula}")
    click.echo(f"wrote {r.hardware.path}")


@main.command(name="validate")
@click.option("--hardware", "-H", required=True)
@click.option(
    "--measurements",
    required=True,
    type=click.Path(dir_okay=False),
    help="JSONL or CSV: architecture fields + step_time_s.",
)
@click.option("--split", type=click.Choice(["all", "fit", "validation"]), default="all", show_default=True)
@click.option("--format", "out_format", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--debug", is_flag=True)
@handle_errors
def validate_cmd(hardware: str, measurements: str, split: str, out_format: str, debug: bool) -> None:
    """Predict measured step times with every step-time model: R^2, errors, rank correlation."""
    from pathlib import Path

    from timescale_frontier.calibrate.run import load_measurements, validate

    hw = Hardware.load(hardware)
    rows = load_measurements(Path(measurements), split)
    res = validate(hw, rows)
    if out_format == "json":
        click.echo(fmt.to_json({"hardware": hw.name, "n": len(rows), "split": split, "models": res}), nl=False)
        return
    table_rows = [
        [
            k,
            f"{v['r2']:.4f}",
            f"{v['mean_abs_pct_error']:.1f}%",
            f"{v['median_abs_pct_error']:.1f}%",
            f"{v['max_abs_pct_error']:.1f}%",
            f"{v['spearman']:.3f}",
        ]
        for k, v in res.items()
    ]
    click.echo(f"{len(rows)} measured steps ({split}) on {hw.name}")
    click.echo(fmt.table(["model", "R^2", "mean err", "median err", "max err", "rank corr"], table_rows))


@main.group(name="report")
def report_group() -> None:
    """Pictures (need matplotlib: pip install 'timescale-frontier[plot]')."""


@report_group.command(name="width-depth")
@click.option("--hardware", "-H", required=True)
@click.option("--hours", type=float, required=True, callback=_hours)
@click.option("--d-model", "d_model", default="128:4096:*2", show_default=True, metavar="VALUES")
@click.option("--n-layers", "n_layers", default="2:48:2", show_default=True, metavar="VALUES")
@click.option("--law", default="hoffmann", show_default=True)
@click.option(
    "--chips", type=click.IntRange(1), default=1, show_default=True, help="Chips (each cell's fastest sharding)."
)
@click.option("--out", type=click.Path(dir_okay=False), default="width-depth.png", show_default=True)
@click.option("--debug", is_flag=True)
@handle_errors
def width_depth_cmd(
    hardware: str, hours: float, d_model: str, n_layers: str, law: str, chips: int, out: str, debug: bool
) -> None:
    """Heatmap of the best predicted loss over (d_model, n_layers) with iso-parameter curves."""
    from timescale_frontier import plot

    hw = Hardware.load(hardware)
    hw.check_chips(chips)
    grid = plot.width_depth(
        hw,
        hours,
        parse_axis("d_model", d_model),
        parse_axis("n_layers", n_layers),
        out,
        law=law,
        aspect_ratio=(1e-3, 1e6),
        top_k=1,
        chips=chips,
    )
    import numpy as np

    if np.isfinite(grid).any():
        i, j = np.unravel_index(np.nanargmin(grid), grid.shape)
        click.echo(
            f"best cell: n_layers {parse_axis('n_layers', n_layers)[i]}, d_model {parse_axis('d_model', d_model)[j]},"
            f" loss {np.nanmin(grid):.4f} nats/token"
        )
    click.echo(f"wrote {out}")


@main.group(name="hardware")
def hardware_group() -> None:
    """Shipped hardware files."""


@hardware_group.command(name="list")
@handle_errors
def hardware_list(debug: bool = False) -> None:
    """List the shipped hardware files."""
    rows = []
    for name in shipped_names():
        hw = Hardware.load(name)
        rows.append(
            [
                name,
                fmt.si(hw.peak_bf16_flops_per_s, "FLOP/s"),
                fmt.binary_bytes(hw.hbm_bytes),
                fmt.si(hw.hbm_bytes_per_s, "B/s"),
                "yes" if hw.calibrated else "no",
                hw.description,
            ]
        )
    click.echo(fmt.table(["name", "bf16 peak", "HBM", "HBM bandwidth", "calibrated", "description"], rows))


@hardware_group.command(name="show")
@click.argument("name")
@click.option("--debug", is_flag=True)
@handle_errors
def hardware_show(name: str, debug: bool) -> None:
    """Show one hardware file's figures, sources and step-time model."""
    hw = Hardware.load(name)
    lines = [
        f"{hw.name}: {hw.description}",
        f"file: {hw.path}",
        f"calibrated: {'yes' if hw.calibrated else 'no (datasheet roofline with assumed efficiencies)'}",
        f"step time: {hw.step_time_formula}",
        f"peak bf16: {fmt.si(hw.peak_bf16_flops_per_s, 'FLOP/s')}",
        f"HBM: {fmt.binary_bytes(hw.hbm_bytes)} ({hw.usable_hbm_fraction:g} usable), {fmt.si(hw.hbm_bytes_per_s, 'B/s')}",
    ]
    ic = hw.interconnect
    if ic:
        lines.append(
            f"interconnect: {ic['topology']}, {ic['links_per_chip']:g} x {fmt.si(ic['link_bytes_per_s'], 'B/s')}"
            f" per link, up to {hw.max_chips} chips; ring collectives at {fmt.si(hw.collective_bytes_per_s or 0, 'B/s')}"
            " per chip each way (--chips)"
        )
    else:
        lines.append("interconnect: none (single chip only)")
    if hw.price:
        lines.append(
            f"price: ${hw.price['usd_per_chip_hour']:g} per chip-hour ({hw.price.get('date', 'undated')})"
            if "usd_per_chip_hour" in hw.price
            else "price: none listed"
        )
    lines.append("sources:")
    lines += [f"  {k}: {v}" for k, v in hw.sources.items()]
    if ic.get("source"):
        lines.append(f"  interconnect: {ic['source']}")
    click.echo("\n".join(lines))


__all__ = ["main", "frontier_main"]
