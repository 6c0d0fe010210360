"""Issue 24: would two more fitted terms price the mixture-of-experts rows? A probe, not a model.

On the NVIDIA Megatron-core rows (data/published/nvidia-megatron-throughput.csv), for each chip's
MoE rows under its `megatron` calibration, the step is re-priced as

    compute + bubble + TP + PP  +  eps * (expert all-to-all time)  +  k * (expert matmul time)

with eps in [0, 1] the share of the all-to-all left exposed (the core exposes all of it: eps = 1)
and k >= 0 the extra time of the grouped expert GEMMs over dense ones (expert share of the matmul
time by the core's op table). Both are fitted on a grid (relative error), in-sample and by leaving
one configuration out (rows of one configuration, e.g. one recipe in several releases, left out
together). Prints the median absolute error of each.

    python bench/moe_terms_probe.py
"""

import csv
from pathlib import Path

import numpy as np

from timescale_frontier import Architecture, Hardware
from timescale_frontier.calibrate import fit, records

DATA = Path(__file__).resolve().parents[1] / "data" / "published" / "nvidia-megatron-throughput.csv"


def expert_share(a: Architecture) -> float:
    """The routed experts' share of the step's matmul FLOPs (the core's op table)."""
    ops = a.op_table()
    mm = sum(o.flops_per_step for o in ops if "projection" in o.name or o.name == "router")
    ex = sum(o.flops_per_step for o in ops if o.name.startswith("expert") and "projection" in o.name)
    return ex / mm if mm else 0.0


def _err(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.abs(p / t - 1)


def probe(name: str, moe: set[str], grid: list[tuple[float, float]]) -> str:
    hw = Hardware.load(name, stack="megatron")
    rows = [m for m in records.load_measurements(DATA, hardware=hw, skipped=[], stack="megatron") if m.row_id in moe]
    steps = [fit.step_of(m, hw.core) for m in rows]
    t = np.array([m.step_time_s for m in rows])
    base = np.array([s.compute_s + s.bubble_s + s.tp_comm_s + s.pp_comm_s for s in steps])
    ep = np.array([s.ep_comm_s for s in steps])
    ex = np.array(
        [expert_share(m.arch) * s.parts.compute_s * (1 + s.bubble_fraction) for m, s in zip(rows, steps, strict=True)]
    )
    now = np.array([s.step_time_s for s in steps])
    preds = {g: base + g[0] * ep + g[1] * ex for g in grid}
    best = min(grid, key=lambda g: float(np.median(_err(preds[g], t))))
    configs = np.round(now, 6)
    cv: list[float] = []
    for c in np.unique(configs):
        train = configs != c
        g = min(grid, key=lambda g: float(np.mean(_err(preds[g][train], t[train]))))
        cv += list(_err(preds[g][~train], t[~train]))
    return (
        f"{name}: {len(t)} MoE rows; the file's model {100 * np.median(_err(now, t)):.1f}% (in-sample); "
        f"with eps = {best[0]:.2f}, k = {best[1]:.2f}: {100 * np.median(_err(preds[best], t)):.1f}% in-sample, "
        f"{100 * np.median(cv):.1f}% leaving one configuration out"
    )


def main() -> None:
    moe = {r["row_id"] for r in csv.DictReader(DATA.open()) if r["moe"].lower() == "true"}
    grid = [(float(e), float(k)) for e in np.linspace(0, 1, 21) for k in np.linspace(0, 3, 61)]
    for name in ("h100_sxm", "b200", "gb200"):
        print(probe(name, moe, grid))


if __name__ == "__main__":
    main()
