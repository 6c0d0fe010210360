"""Pictures that answer the question (optional extra ``[plot]``: matplotlib). Every number drawn
comes from the core through the public API; this module only lays it out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from timescale_frontier.errors import InfeasibleError, InvalidInputError
from timescale_frontier.hardware import Hardware
from timescale_frontier.metrics import evaluate
from timescale_frontier.search import SearchResult, search


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise InvalidInputError(f"plots need matplotlib: pip install 'timescale-frontier[plot]' ({e})") from None
    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> None:
    """Renders to a temporary file beside ``path`` and renames it (a failed render leaves nothing)."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def frontier(
    result: SearchResult,
    hardware: Sequence[Hardware],
    space: dict[str, Any] | None,
    path: str | os.PathLike[str],
    factors: Sequence[float] = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8, 16),
    **search_kwargs: Any,
) -> None:
    """Left: best predicted loss against the budget (log hours), one line per hardware file.
    Right: the Pareto set of ``result`` (loss against parameters), the winner marked."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    for hw in hardware:
        hours, losses = [], []
        for f in factors:
            try:
                r = search(hw, result.hours * f, space, **search_kwargs)
            except InfeasibleError:
                continue
            except InvalidInputError:  # e.g. a compared chip without enough interconnect for --chips
                break
            hours.append(result.hours * f)
            losses.append(r.best.loss)
        label = hw.name + ("" if hw.calibrated else " (uncalibrated)")
        ax1.plot(hours, losses, marker="o", label=label)
    ax1.axvline(result.hours, color="grey", linestyle=":", linewidth=1)
    ax1.set_xscale("log")
    chips = "one chip" if result.chips == 1 else f"{result.chips} chips"
    ax1.set_xlabel(f"training budget (hours, {chips})")
    ax1.set_ylabel("best predicted loss (nats/token)")
    ax1.set_title(f"Frontier: best loss vs budget ({result.law_name} law)")
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
    ax2.set_title(
        f"{result.hardware.name} x {result.chips}, {result.hours:g} h: loss vs size"
        if result.chips > 1
        else f"{result.hardware.name}, {result.hours:g} h: loss vs size"
    )
    ax2.grid(True, which="both", alpha=0.3)
    ax2.legend()
    _save(fig, path)
    plt.close(fig)


def width_depth(
    hardware: Hardware,
    hours: float,
    d_models: Sequence[int],
    n_layers: Sequence[int],
    path: str | os.PathLike[str],
    space: dict[str, Any] | None = None,
    **search_kwargs: Any,
) -> np.ndarray:
    """Heatmap of the best predicted loss over (d_model, n_layers) at a fixed budget (every other
    axis searched), with iso-parameter curves: the picture behind "wider, not deeper". Returns
    the loss grid (NaN where nothing is feasible)."""
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
        ax.clabel(cs, fmt=lambda v: f"{v:.0e} params", fontsize=7)
    if np.isfinite(grid).any():
        bi, bj = (int(x) for x in np.unravel_index(np.nanargmin(grid), grid.shape))
        ax.scatter(
            [d_models[bj]],
            [n_layers[bi]],
            color="red",
            marker="*",
            s=150,
            zorder=3,
            label=f"best: d_model {d_models[bj]}, {n_layers[bi]} layers",
        )
        ax.legend(loc="upper right")
    for ratio in (20, 200):  # Kaplan's shape-insensitive range, the search's default guard
        xs = np.asarray(d_models, float)
        ax.plot(xs, xs / ratio, color="white", linestyle="--", linewidth=0.8)
    ax.set_ylim(min(n_layers) - 0.5, max(n_layers) + 0.5)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("d_model (dashed: d_model / n_layers = 20 and 200)")
    ax.set_ylabel("n_layers")
    chips = int(search_kwargs.get("chips", 1))
    on = hardware.name if chips == 1 else f"{hardware.name} x {chips}"
    ax.set_title(f"{on}, {hours:g} h: best loss by width and depth (blank: nothing fits)")
    _save(fig, path)
    plt.close(fig)
    return grid
