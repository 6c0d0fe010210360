"""Pictures that answer the question (optional extra ``[plot]``: matplotlib). Every number drawn
comes from the core through the public API; this module only lays it out."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from timescale_frontier._core import NO_ASPECT_GUARD, check_width_depth_grid
from timescale_frontier._files import write_atomic
from timescale_frontier.budget import Budget
from timescale_frontier.errors import InfeasibleError, InvalidInputError
from timescale_frontier.frontier import SearchResult, default_aspect_ratio, search
from timescale_frontier.hardware import Hardware
from timescale_frontier.loss import DEFAULT_LAW, get_law
from timescale_frontier.metrics import evaluate
from timescale_frontier.space import make_space


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise InvalidInputError(f"plots need matplotlib: pip install 'timescale-frontier[plot]' ({e})") from None
    return plt


def _save(fig: Any, path: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]] = ()) -> None:
    """Renders in memory, in the format the name's suffix asks for (png otherwise), then writes it
    as every output is written (``write_atomic``: a failed render or write leaves the old file,
    errors name ``path``, and none of ``inputs``, the files the run read, is overwritten)."""
    if os.fspath(path) == "-":
        raise InvalidInputError(
            "-: a picture cannot go to standard output (the report goes there); give a file name",
            field="plot",
            value="-",
            expected="a file name",
        )
    suffix = Path(path).suffix.lstrip(".").lower()
    fmt = suffix if suffix in fig.canvas.get_supported_filetypes() else "png"
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=120, bbox_inches="tight")
    write_atomic(path, buf.getvalue(), inputs)


def frontier(
    result: SearchResult,
    hardware: Sequence[Hardware],
    space: dict[str, Any] | None,
    path: str | os.PathLike[str],
    factors: Sequence[float] = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16),
    inputs: Sequence[str | os.PathLike[str]] = (),
    progress: Callable[[int, int], None] | None = None,
    **search_kwargs: Any,
) -> dict[str, tuple[list[float], list[float]]]:
    """Left: best predicted loss against the budget, one line per hardware file: against hours for
    an hours budget; for a money budget against dollars, each file at its own price (what the money
    buys on each chip; a file without a price is left out, said in the legend). Right: the Pareto
    set of ``result`` (loss against parameters), the winner marked. ``progress(done, total)`` is
    called after each of the frontier's searches. Returns what the left panel drew: each file's
    name -> (budgets, in USD or hours; best losses)."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    money = result.budget.limit == "money"
    usd = result.budget.usd or 0.0
    total, done = len(hardware) * len(factors), 0
    drawn: dict[str, tuple[list[float], list[float]]] = {}
    for hw in hardware:
        xs, losses = [], []
        priced = True
        # The searched file at the price the search used (an override included), the others at theirs.
        price = result.budget.usd_per_chip_hour if hw.path == result.hardware.path else None
        for f in factors:
            if priced:
                try:
                    budget = Budget(usd=usd * f, usd_per_chip_hour=price) if money else Budget(result.hours * f)
                    r = search(hw, budget, space, **search_kwargs)
                    xs.append(usd * f if money else result.hours * f)
                    losses.append(r.best.loss)
                except InfeasibleError:
                    pass
                except InvalidInputError:  # e.g. a compared chip without a price or enough interconnect
                    priced = False
            done += 1
            if progress is not None:
                progress(done, total)
        label = hw.name + ("" if hw.calibrated else " (uncalibrated)") + ("" if priced else " (no price: left out)")
        ax1.plot(xs, losses, marker="o", label=label)
        drawn[hw.name] = (xs, losses)
    ax1.axvline(usd if money else result.hours, color="grey", linestyle=":", linewidth=1)
    ax1.set_xscale("log")
    chips = "one chip" if result.chips == 1 else f"{result.chips} chips"
    ax1.set_xlabel(
        f"money budget (USD, {chips}, each file at its own price per chip-hour)"
        if money
        else f"training budget (hours, {chips})"
    )
    ax1.set_ylabel("best predicted loss (nats/token)")
    ax1.set_title(f"Frontier: best loss vs {'money' if money else 'time'} ({result.law_name} law)")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend()
    p = result.pareto
    ax2.plot(p.params(), p.loss(), marker=".", linestyle="-", label="Pareto set")
    b = result.best
    a = b.architecture
    ax2.scatter([b.params], [b.loss], color="red", zorder=3, label=f"best: d_model {a.d_model}, {a.n_layers} layers")
    ax2.set_xscale("log")
    ax2.set_xlabel("total parameters")
    ax2.set_ylabel("predicted loss (nats/token)")
    spent = f"${usd:,.0f} ({result.hours:.4g} h)" if money else f"{result.hours:.4g} h"
    ax2.set_title(
        f"{result.hardware.name} x {result.chips}, {spent}: loss vs size"
        if result.chips > 1
        else f"{result.hardware.name}, {spent}: loss vs size"
    )
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend()
    _save(fig, path, inputs)
    plt.close(fig)
    return drawn


def best_cells(
    grid: np.ndarray, d_models: Sequence[int], n_layers: Sequence[int], guard: tuple[float, float] | None = None
) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """The (d_model, n_layers) of the lowest-loss cell of a width-depth grid inside the aspect-ratio
    guard (default: the search's for the default law; what the search answers on the same grid) and
    anywhere (None where nothing is feasible)."""
    guard = guard if guard is not None else default_aspect_ratio()
    dd, ll = np.meshgrid(np.asarray(d_models, float), np.asarray(n_layers, float))
    inside = np.where((dd / ll >= guard[0]) & (dd / ll <= guard[1]), grid, np.nan)

    def at(g: np.ndarray) -> tuple[int, int] | None:
        if not np.isfinite(g).any():
            return None
        i, j = np.unravel_index(np.nanargmin(g), g.shape)
        return int(d_models[int(j)]), int(n_layers[int(i)])

    return at(inside), at(grid)


@dataclass(frozen=True)
class WidthDepthPicture:
    """What ``width_depth`` drew: the grid of best losses (rows: depths, columns: widths; NaN where
    nothing is feasible), the search's own answer over the whole space (d_model, n_layers, loss;
    None when nothing is feasible), and the best cells of the grid inside the guard and anywhere."""

    grid: np.ndarray
    answer: tuple[int, int, float] | None
    best_cell: tuple[int, int] | None
    lowest_cell: tuple[int, int] | None


def width_depth(
    hardware: Hardware,
    hours: float,
    d_models: Sequence[int],
    n_layers: Sequence[int],
    path: str | os.PathLike[str],
    space: dict[str, Any] | None = None,
    inputs: Sequence[str | os.PathLike[str]] = (),
    **search_kwargs: Any,
) -> WidthDepthPicture:
    """Heatmap of the best predicted loss over (d_model, n_layers) at a fixed budget (every other
    axis searched), with iso-curves of non-embedding parameters: the picture behind "wider, not
    deeper". Every cell is shown, also outside the aspect-ratio guard (``guard``, dashed). The red
    star is the search's own answer over the whole space (``space``, or the default one, inside the
    guard: it need not be a cell of this grid); a white plus marks the grid's best cell inside the
    guard, an orange cross the lowest cell anywhere when it differs."""
    law = get_law(
        search_kwargs.get("law", DEFAULT_LAW),
        loss_terms=search_kwargs.get("loss_terms"),
        eval_context=search_kwargs.get("eval_context"),
    )
    guard = search_kwargs.pop("guard", None) or default_aspect_ratio(law)
    search_kwargs.setdefault("aspect_ratio", (1e-3, 1e6))
    # Bounded before any search (one per cell): the cells, and all the cells' spaces together as
    # one search's space would be.
    check_width_depth_grid(len(d_models), len(n_layers))
    make_space({**(space or {}), "d_model": list(d_models), "n_layers": list(n_layers)}, origin="width-depth grid")
    plt = _pyplot()
    grid = np.full((len(n_layers), len(d_models)), np.nan)
    for i, layers in enumerate(n_layers):
        for j, d in enumerate(d_models):
            try:
                r = search(hardware, hours, {**(space or {}), "d_model": [d], "n_layers": [layers]}, **search_kwargs)
            except InfeasibleError:
                continue
            grid[i, j] = r.best.loss
    # Non-embedding parameters of the plain shape (4 d^2 attention + 8 d^2 MLP per layer), from the core.
    dd, ll = np.meshgrid(np.asarray(d_models), np.asarray(n_layers))
    n = evaluate(
        hardware,
        hours,
        d_model=dd.ravel(),
        n_layers=ll.ravel(),
        n_heads=1,
        head_dim=dd.ravel(),
        batch_size=1,
        seq_len=128,
    ).non_embedding_params.reshape(dd.shape)
    fig, ax = plt.subplots(figsize=(8, 6))
    mesh = ax.pcolormesh(dd, ll, np.ma.masked_invalid(grid), shading="nearest", cmap="viridis_r")
    fig.colorbar(mesh, ax=ax, label="best predicted loss (nats/token)")
    levels = [v for v in (1e7, 3e7, 1e8, 3e8, 1e9, 3e9, 1e10) if n.min() < v < n.max()]
    if levels:
        cs = ax.contour(dd, ll, n, levels=levels, colors="white", linewidths=0.8)
        ax.clabel(cs, fmt=lambda v: f"{v:.0e} non-embedding params", fontsize=7)
    guarded, anywhere = best_cells(grid, d_models, n_layers, guard)
    answer_kwargs = {k: v for k, v in search_kwargs.items() if k not in ("aspect_ratio", "top_k")}
    try:
        best = search(hardware, hours, space, aspect_ratio=guard, top_k=1, **answer_kwargs).best
        answer: tuple[int, int, float] | None = (best.architecture.d_model, best.architecture.n_layers, best.loss)
    except InfeasibleError:
        answer = None
    if answer is not None:
        ax.scatter(
            [answer[0]], [answer[1]], color="red", marker="*", s=180, zorder=4,
            label=f"the search's answer (whole space): d_model {answer[0]}, {answer[1]} layers, loss {answer[2]:.4f}",
        )  # fmt: skip
    if guarded is not None and (answer is None or guarded != answer[:2]):
        ax.scatter(
            [guarded[0]], [guarded[1]], color="white", marker="P", s=80, zorder=3,
            label=f"best cell of this grid: d_model {guarded[0]}, {guarded[1]} layers",
        )  # fmt: skip
    if anywhere is not None and anywhere != guarded:
        ax.scatter(
            [anywhere[0]], [anywhere[1]], color="orange", marker="x", s=80, zorder=3,
            label=f"lowest anywhere: d_model {anywhere[0]}, {anywhere[1]} layers (outside: untested shape)",
        )  # fmt: skip
    if answer is not None or guarded is not None or anywhere is not None:
        ax.legend(loc="upper right", fontsize=7)
    unguarded = tuple(guard) == tuple(NO_ASPECT_GUARD)
    for ratio in () if unguarded else guard:  # Kaplan's shape-insensitive range, the search's default guard
        xs = np.asarray(d_models, float)
        ax.plot(xs, xs / ratio, color="white", linestyle="--", linewidth=0.8)
    ax.set_ylim(min(n_layers) - 0.5, max(n_layers) + 0.5)
    ax.set_xscale("log", base=2)
    ax.set_xlabel(
        "d_model (no aspect-ratio guard)"
        if unguarded
        else f"d_model (dashed: d_model / n_layers = {guard[0]:g} and {guard[1]:g}, the search's guard)"
    )
    ax.set_ylabel("n_layers")
    chips = int(search_kwargs.get("chips", 1))
    on = hardware.name if chips == 1 else f"{hardware.name} x {chips}"
    ax.set_title(f"{on}, {hours:g} h: best loss by width and depth (blank: nothing fits)")
    _save(fig, path, inputs)
    plt.close(fig)
    return WidthDepthPicture(grid, answer, guarded, anywhere)
