"""Where a MEMCPY-based and a FLOPs-based planner disagree (issue 25.4): the paper's central claim
on real runs. With the calibrated CPU file of ``experiments/versus_recipe`` (its ``memcpy``,
``flops`` and ``rates`` step-time models, all fitted to the same measured steps) and its law:

    python experiments/memcpy_vs_flops/run.py                    # full (~45 min on one core)
    python experiments/memcpy_vs_flops/run.py --quick --out /tmp/mf   # reduced (CI: tests/calibration/test_train.py)

Stages (each writes into --out as it goes; a rerun skips training runs already done):
  a. scan: ``search`` with each step-time model over budgets and batch sizes of the experiment's
     family (d_model 32-256 by 32, 1-8 layers, seq 128, heads of 32, GELU 4x, fp32, bytes) -> scan.json,
     the table of picks: where do the planners disagree?
  b. at held-out budgets (the law was fitted at 20, 45 and 100 s), trains the MEMCPY-only pick, the
     FLOPs-only pick and the file's own (``rates``) pick, each with several seeds, interleaved (seed
     0 of every pick, then seed 1, ...) so drift of the machine hits all alike; every run's measured
     step time beside each model's prediction -> runs.jsonl;
  c. results.json and results.md: per pick mean, sd and seeds of the held-out loss; a difference is a
     win only when it exceeds twice the larger sd and holds in every seed (paired by seed), else a tie.

The learning-rate schedule follows the wall clock (``--schedule clock``), never a predicted step
count. Everything runs pinned to one core (``--no-pin`` to not).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timescale_frontier import Hardware, search
from timescale_frontier.calibrate import train

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("time_budget_run", HERE.parent / "time_budget" / "run.py")
assert _spec and _spec.loader
tb = importlib.util.module_from_spec(_spec)
sys.modules["time_budget_run"] = tb
_spec.loader.exec_module(tb)

#: The planners compared: the calibrated file's step-time models (``[calibration.alternatives]``).
MODELS = ("memcpy", "flops", "rates")
INPUTS = HERE.parent / "versus_recipe" / "results"


@dataclass(frozen=True)
class Setup:
    scan_budgets_s: list[float]
    scan_batches: list[int]
    budgets_s: list[float]  # trained; held out from the law's 20, 45 and 100 s
    batch_size: int
    seeds: tuple[int, ...]
    eval_batches: int


FULL = Setup(
    scan_budgets_s=[10.0, 20.0, 30.0, 60.0, 120.0, 240.0, 600.0],
    scan_batches=[1, 2, 4, 8, 16],
    budgets_s=[60.0, 120.0],
    batch_size=8,
    seeds=(0, 1, 2, 3, 4),
    eval_batches=32,
)
QUICK = Setup(  # batch 16 at 2 s: the planners disagree (64 x 1 against 32 x 1) within seconds
    scan_budgets_s=[2.0, 60.0],
    scan_batches=[16],
    budgets_s=[2.0],
    batch_size=16,
    seeds=(0, 1),
    eval_batches=2,
)


def family(batch_size: int) -> Any:
    """versus_recipe's family (time_budget's full plan) at ``batch_size``."""
    return tb.Plan(**{**tb.FULL.__dict__, "batch_size": batch_size})


def space(batch_size: int) -> dict[str, Any]:
    return {
        "d_model": list(range(32, 257, 32)),
        "n_layers": list(range(1, 9)),
        "head_dim": [32],
        "kv_group": [1],
        "mlp": ["gelu"],
        "ffn_mult": [4.0],
        "attention": ["materialized"],
        "tied_embeddings": [False],
        "vocab_size": [256],
        "seq_len": [128],
        "batch_size": [batch_size],
        "activation_bytes": 4.0,
    }


def pick(hw: Hardware, law: Path, budget_s: float, batch_size: int) -> dict[str, Any]:
    """The planner's answer: its architecture and its own predictions."""
    r = search(hw, budget_s / 3600, space(batch_size), law=law, aspect_ratio=(1.0, 1000.0),
               max_tokens_per_step=1e9, top_k=1)  # fmt: skip
    b = r.best
    a = b.architecture
    return {"d_model": a.d_model, "n_layers": a.n_layers, "params": b.params, "step_s": b.step_time_s,
            "tokens": b.tokens, "loss": b.loss}  # fmt: skip


#: The win rule and the seed summary, shared with experiments/versus_recipe (issue 25).
summary = tb.summary
verdict = tb.verdict


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the reduced CI version (seconds)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: results/; --quick needs one)")
    ap.add_argument("--no-pin", action="store_true")
    args = ap.parse_args()
    tb.SCHEDULE = "clock"
    setup = QUICK if args.quick else FULL
    if args.quick and args.out is None:
        ap.error("--quick needs --out (the committed results/ are the full run's)")
    out: Path = args.out or HERE / "results"
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        tb.cache_compiles(out)
    if not args.no_pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    started = datetime.datetime.now(datetime.UTC)
    hw_path, law = INPUTS / "cpu.toml", INPUTS / "law.toml"
    base = Hardware.load(hw_path)
    hws = {m: base.using(m) for m in MODELS}
    tb.log(f"{hw_path}: {', '.join(f'{m}: {hws[m].step_time_formula}' for m in MODELS)}")

    # a. where do the planners disagree?
    scan = []
    for b in setup.scan_batches:
        for t in setup.scan_budgets_s:
            picks = {m: pick(hws[m], law, t, b) for m in MODELS}
            scan.append({"batch_size": b, "budget_s": t, "picks": picks})
            tb.log(
                f"a. batch {b}, {t:g} s: " + ", ".join(f"{m} {p['d_model']}x{p['n_layers']}" for m, p in picks.items())
            )
    (out / "scan.json").write_text(json.dumps(scan, indent=1) + "\n")

    # b. train every distinct pick at the held-out budgets, seeds interleaved
    corpus = train.stdlib_corpus()
    fam = tb.Plan(**{**family(setup.batch_size).__dict__, "eval_batches": setup.eval_batches})
    budgets = []
    for t in setup.budgets_s:
        picks = {m: pick(hws[m], law, t, setup.batch_size) for m in MODELS}
        shapes: dict[tuple[int, int], list[str]] = {}
        for m, p in picks.items():
            shapes.setdefault((p["d_model"], p["n_layers"]), []).append(m)
        runs: dict[tuple[int, int], list[dict[str, Any]]] = {s: [] for s in shapes}
        for seed in setup.seeds:
            for d, n in shapes:
                arch = tb.arch_of(fam, d, n)
                row = tb.run_training(fam, out, "runs", arch, t, hws["rates"], corpus, seed=seed)
                runs[d, n].append(row)
        rows = []
        for (d, n), planners in shapes.items():
            arch = tb.arch_of(fam, d, n)
            rs = runs[d, n]
            losses = [r["heldout_loss"] for r in rs]
            rows.append({
                "d_model": d, "n_layers": n, "picked_by": planners, "params": rs[0]["params"],
                "predicted_step_s": {m: hws[m].step_time_for(arch) for m in MODELS},
                "predicted_loss": {m: picks[m]["loss"] for m in planners},
                "measured_step_s": [r["measured_step_s"] for r in rs], "tokens": [r["tokens"] for r in rs],
                "losses_by_seed": {r["seed"]: r["heldout_loss"] for r in rs}, **summary(losses),
            })  # fmt: skip
        by_model = {m: next(r for r in rows if m in r["picked_by"]) for m in MODELS}
        a, b = by_model["memcpy"], by_model["flops"]
        budgets.append({
            "budget_s": t, "rows": rows, "picks": picks,
            "memcpy_vs_flops": "same pick" if a is b else {"a": "memcpy", "b": "flops", "tie": "tie"}[verdict(a, b)],
        })  # fmt: skip
        tb.log(f"b. {t:g} s: memcpy vs flops -> {budgets[-1]['memcpy_vs_flops']}")

    doc = {
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, pinned to {sorted(os.sched_getaffinity(0))}"
        if hasattr(os, "sched_getaffinity") else platform.machine(),
        "hardware": str(hw_path.relative_to(HERE.parent.parent)), "law": str(law.relative_to(HERE.parent.parent)),
        "heldout_median_abs_pct_error": {
            m: base.calibration["alternatives"][m].get("heldout_median_abs_pct_error") for m in MODELS},
        "seeds": list(setup.seeds), "scan": scan, "budgets": budgets,
    }  # fmt: skip
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "results.md").write_text(render(doc))
    tb.log(f"wrote {out / 'results.md'}")


def render(doc: dict[str, Any]) -> str:
    lines = ["# MEMCPY-only against FLOPs-only planning (generated by run.py)", "",
             f"Started {doc['started']}, finished {doc['finished']}; {doc['machine']}.", "",
             "## a. The planners' picks (d_model x layers)", "",
             "| batch | budget | memcpy | flops | rates (the file's) |", "|---:|---:|---|---|---|"]  # fmt: skip
    for s in doc["scan"]:
        p = s["picks"]
        cell = {m: f"{p[m]['d_model']}x{p[m]['n_layers']}" for m in MODELS}
        mark = " **differ**" if cell["memcpy"] != cell["flops"] else ""
        lines.append(
            f"| {s['batch_size']} | {s['budget_s']:g} s | {cell['memcpy']}{mark} | {cell['flops']} | {cell['rates']} |"
        )
    lines += ["", f"## b. Trained ({len(doc['seeds'])} seeds each, interleaved)", "",
              "| budget | model | picked by | params | step ms: memcpy / flops / rates pred, measured (median of seeds) "
              "| loss: mean, sd, n | per seed |", "|---:|---|---|---:|---|---|---|"]  # fmt: skip
    for b in doc["budgets"]:
        for r in b["rows"]:
            pred = " / ".join(f"{r['predicted_step_s'][m] * 1e3:.1f}" for m in MODELS)
            meas = statistics.median(r["measured_step_s"]) * 1e3
            seeds = ", ".join(f"{r['losses_by_seed'][s]:.4f}" for s in sorted(r["losses_by_seed"], key=int))
            lines.append(
                f"| {b['budget_s']:g} s | {r['d_model']}x{r['n_layers']} | {', '.join(r['picked_by'])} | {r['params']:,.0f} "
                f"| {pred}, **{meas:.1f}** | {r['mean']:.4f}, {r['sd']:.4f}, {r['n']} | {seeds} |"
            )
        lines.append(f"| {b['budget_s']:g} s | memcpy vs flops | | | | **{b['memcpy_vs_flops']}** | |")
    lines += ["", "A win: the mean difference exceeds twice the larger sd and holds in every seed (paired); "
              "otherwise a tie.", ""]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
