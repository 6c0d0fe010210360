"""Does a plan made in time beat the usual recipe (issues 16 and 25)? Real training on this CPU,
where the two disagree.

    python experiments/versus_recipe/run.py             # issue 25's design -> results_v2/ (~2.5 h, 1 core)
    python experiments/versus_recipe/run.py --recorded --schedule steps --recipe-utilization 0.4
                                                        # the recorded results/ of 2026-11-29 (~50 min)
    python experiments/versus_recipe/run.py --quick --out /tmp/vr   # the reduced CI version (about 30 s on one core)

Stages (files written into --out as they come; a rerun skips runs already done; while the file
``PAUSE`` exists in --out, the next run waits, so another job can have the machine between runs):
  a. ``timescale calibrate`` a copy of the cpu hardware file (as experiments/time_budget does);
  b. the law: ``timescale fit-law`` on the spread runs of experiments/time_budget (the same family,
     corpus and training code, trained at 20, 45 and 100 s; the full run reuses its committed
     ``spread.jsonl``, the quick one trains its own small spread);
  c. shape at a fixed parameter count and a fixed token count: 5 shapes from wide-shallow to
     deep-narrow, two seeds each, to see whether depth changes the loss beyond the seed noise; if
     it does, ``timescale fit-law --shape-runs`` fits the shape term from them (law_shape.toml);
     (issue 25's design reuses stages a-c of the recorded results/: the same calibration and law)
  d. at each held-out budget (not one the law was fitted at): the tool's pick (``timescale
     search``; depth from 1, because the recipe itself picks one-layer models at these budgets and
     one layer is the least depth a model can have, not an edge of the search), the usual recipe's
     pick (``timescale recipe``: the budget in FLOPs at the utilisation the calibrated file predicts
     for the recipe's model, 20 tokens per parameter, d_model / n_layers = 64, heads of 32, GELU 4x),
     the FLOPs-only step-time model's pick, with a shape term the pick of the law carrying it, and
     the pick with the product's published loss terms (``--loss-terms shape,batch``: issue 21's
     evidence; vocabulary and context are fixed in this family); every distinct pick trained with
     every seed, interleaved (seed 0 of every pick at every budget, then seed 1, ...); each
     contender judged against the tool's pick by issue 25's rule (a win exceeds twice the larger
     seed sd and holds in every seed, else a tie);
  e. results.md, results.json (every number, every loss curve), loss.png.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timescale_frontier import Architecture, Hardware, predict
from timescale_frontier.calibrate import train
from timescale_frontier.hardware import SHIPPED_DIR

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("time_budget_run", HERE.parent / "time_budget" / "run.py")
assert _spec is not None and _spec.loader is not None
tb = importlib.util.module_from_spec(_spec)
sys.modules["time_budget_run"] = tb
_spec.loader.exec_module(tb)


@dataclass(frozen=True)
class Setup:
    family: Any  # time_budget's Plan: seq_len, batch_size, spread, calibration, eval batches, bootstrap
    budgets_s: list[float]  # held out from the law's spread budgets
    seeds: tuple[int, ...]
    d_model_axis: str
    n_layers_axis: str
    shape_steps: int  # steps of the shape study (fixed tokens)
    shapes: list[tuple[int, int]]  # (d_model, n_layers), wide-shallow to deep-narrow, similar size
    shape_seeds: tuple[int, ...]
    reuse_spread: bool
    #: The published loss terms of the "tool + published terms" contender (issue 25.5), or None.
    published_terms: str | None = None
    #: A results folder whose stages a-c (calibration, spread, shape runs) this one reuses.
    reuse: Path | None = None


#: Issue 25.3: five seeds, three held-out budgets from 0.5x the law's lowest fitted budget (20 s) to
#: 4x its highest (100 s), runs interleaved, the recorded calibration, law and shape runs reused.
FULL = Setup(
    family=tb.FULL,
    budgets_s=[10.0, 60.0, 400.0],
    seeds=(0, 1, 2, 3, 4),
    d_model_axis="32:256:32",
    n_layers_axis="1:8:1",
    shape_steps=500,
    shapes=[(224, 1), (160, 2), (128, 3), (96, 6), (64, 12)],  # 0.59-0.66 M non-embedding parameters
    shape_seeds=(0, 1),
    reuse_spread=True,
    published_terms="shape,batch",
    reuse=HERE / "results",
)
#: The recorded results of 2026-11-29 (results/): two budgets, three seeds, each contender's seeds in
#: turn; with ``--schedule steps --recipe-utilization 0.4`` exactly as recorded.
RECORDED = Setup(
    family=tb.FULL,
    budgets_s=[60.0, 150.0],
    seeds=(0, 1, 2),
    d_model_axis="32:256:32",
    n_layers_axis="1:8:1",
    shape_steps=500,
    shapes=[(224, 1), (160, 2), (128, 3), (96, 6), (64, 12)],
    shape_seeds=(0, 1),
    reuse_spread=True,
)
QUICK = Setup(
    family=tb.QUICK,
    budgets_s=[0.5, 1.0],  # held out: time_budget's quick spread trains at 0.75 and 1.5 s
    seeds=(0, 1),
    d_model_axis="32:96:32",
    n_layers_axis="1:3:1",
    shape_steps=30,
    shapes=[(64, 1), (48, 2), (32, 4)],
    shape_seeds=(0, 1),
    reuse_spread=False,
    published_terms="shape,batch",
)

#: The files of stages a-c that a ``reuse`` folder provides.
REUSED = ("cpu.toml", "calibration.jsonl", "spread.jsonl", "shape.jsonl")


#: The recipe's utilisation (`--recipe-utilization`): "calibrated", the one the calibrated file
#: predicts for the recipe's own model (issue 25.2, a recipe that knows this machine); "0.4", the
#: assumed utilisation of the recorded results.
RECIPE_UTILIZATION = "calibrated"


def recipe_pick(
    setup: Setup, hw_path: Path, law: Path, budget_s: float, space: Path
) -> tuple[Architecture, dict[str, Any]]:
    """The usual recipe's architecture for the budget, in the experiment's family (the tool's pick
    beside it from the same space as stage c's search), at ``RECIPE_UTILIZATION``."""
    fam = setup.family
    doc = json.loads(
        tb.tool(
            "recipe", "-H", str(hw_path), "--hours", repr(budget_s / 3600), "--law", str(law), "--head-dim", "32",
            "--seq-len", str(fam.seq_len), "--batch-size", str(fam.batch_size), "--vocab-size", "256", "--format", "json",
            "--space", str(space), "--aspect-ratio-guard", "1:1000", "--max-tokens-per-step", "1e9",
            "--attention", "materialized", "--activation-bytes", "4", "--utilization", RECIPE_UTILIZATION,
        )
    )  # fmt: skip
    a = doc["recipe"]["architecture"]
    return tb.arch_of(fam, a["d_model"], a["n_layers"]), doc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--recorded", action="store_true", help="the design of the recorded results/ (2 budgets, 3 seeds)")
    ap.add_argument("--out", type=Path, default=None, help="default: results_v2/ (--recorded: results/)")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument(
        "--schedule",
        choices=["clock", "steps"],
        default="clock",
        help="learning-rate schedule (see experiments/time_budget: 'steps' reproduces the recorded results)",
    )
    ap.add_argument(
        "--recipe-utilization",
        default="calibrated",
        help="the recipe's utilisation: 'calibrated' (the file's prediction for the recipe's model) or a"
        " fraction of peak ('0.4' reproduces the recorded results)",
    )
    args = ap.parse_args()
    tb.SCHEDULE = args.schedule
    global RECIPE_UTILIZATION
    RECIPE_UTILIZATION = args.recipe_utilization
    setup = QUICK if args.quick else RECORDED if args.recorded else FULL
    if args.quick and args.out is None:
        ap.error("--quick needs --out (the committed results are the full runs')")
    fam = setup.family
    out: Path = args.out or HERE / ("results" if args.recorded else "results_v2")
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        tb.cache_compiles(out)
    if setup.reuse is not None and setup.reuse.resolve() != out.resolve():
        for name in REUSED:
            if not (out / name).exists():
                shutil.copy(setup.reuse / name, out / name)
    if not args.no_pin and hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    started = datetime.datetime.now(datetime.UTC)

    # a. calibration
    hw_path = out / "cpu.toml"
    if not hw_path.exists():
        src = out / "cpu.uncalibrated.toml"
        shutil.copy(SHIPPED_DIR / "cpu.toml", src)
        tb.log("a. calibrating the cpu hardware file")
        tb.tool("calibrate", "-H", str(src), "--out", str(hw_path), "--measurements", str(out / "calibration.jsonl"),
                "-q", *fam.calibrate_args)  # fmt: skip
        src.unlink()
    hw = Hardware.load(hw_path)
    tb.log(f"   {hw.step_time_formula}")
    corpus = train.stdlib_corpus()

    # b. the law, from spread runs at budgets none of c's
    committed = HERE.parent / "time_budget" / "results" / "spread.jsonl"
    if setup.reuse_spread and committed.exists() and not (out / "spread.jsonl").exists():
        shutil.copy(committed, out / "spread.jsonl")
    spread = [
        tb.run_training(fam, out, "spread", tb.arch_of(fam, d, n), b, hw, corpus)
        for b in fam.spread_budgets_s
        for d, n in fam.spread
    ]
    # With their shapes: a law with a shape term is fitted net of it (stage c).
    (out / "runs.csv").write_text(
        "d_model,n_layers,params,tokens,loss\n"
        + "".join(f"{r['d_model']},{r['n_layers']},{r['params']},{r['tokens']},{r['heldout_loss']}\n" for r in spread)
    )
    law = out / "law.toml"
    tb.tool(
        "fit-law", str(out / "runs.csv"), "--name", "stdlib-bytes", "--out", str(law), "--bootstrap", str(fam.bootstrap)
    )
    assert not set(setup.budgets_s) & set(fam.spread_budgets_s), "held-out budgets must differ from the law's"

    # c. shape at a fixed parameter count and token count (before the contenders: if shape matters
    #    beyond the seed noise, a shape term fitted from these runs gives the search a contender)
    shapes = []
    for d, n in setup.shapes:
        arch = tb.arch_of(fam, d, n)
        runs = []
        for s in setup.shape_seeds:
            path = out / "shape.jsonl"
            key = {"d_model": d, "n_layers": n, "seed": s}
            old = [r for r in tb.load_jsonl(path) if all(r.get(k) == v for k, v in key.items())]
            if old:
                runs.append(old[0])
                continue
            tb.log(f"[shape] d_model {d} x {n} layers, {setup.shape_steps} steps, seed {s}")
            r = train.train(
                arch,
                1e9,
                setup.shape_steps,
                corpus,
                seed=s,
                eval_batches=fam.eval_batches,
                max_steps=setup.shape_steps,
                schedule_kind=tb.SCHEDULE,
            )
            row = {**key, "non_embedding_params": predict(arch, hw, 1.0).non_embedding_params, **{
                k: v for k, v in r.to_dict().items() if k not in ("arch", "budget_s")}}  # fmt: skip
            with path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            runs.append(row)
        losses = [r["heldout_loss"] for r in runs]
        shapes.append({"d_model": d, "n_layers": n, "non_embedding_params": runs[0]["non_embedding_params"],
                       "tokens": runs[0]["tokens"], "losses": losses, "mean": statistics.mean(losses)})  # fmt: skip

    shape_law, shape_fit_error = None, None
    sds = [statistics.stdev(x["losses"]) for x in shapes if len(x["losses"]) > 1]
    means = [x["mean"] for x in shapes]
    if sds and max(means) - min(means) > 2 * max(sds):
        # N in the law's convention (total parameters: the spread runs' too).
        total = {(d, n): predict(tb.arch_of(fam, d, n), hw, 1.0).params for d, n in setup.shapes}
        rows_csv = "".join(
            f"{r['d_model']},{r['n_layers']},{total[r['d_model'], r['n_layers']]},{r['tokens']},{r['heldout_loss']}\n"
            for r in tb.load_jsonl(out / "shape.jsonl")
            if (r["d_model"], r["n_layers"]) in setup.shapes and r["seed"] in setup.shape_seeds
        )
        (out / "shape_runs.csv").write_text("d_model,n_layers,params,tokens,loss\n" + rows_csv)
        fit = subprocess.run(
            [str(tb.BIN / "timescale"), "fit-law", str(out / "runs.csv"), "--shape-runs", str(out / "shape_runs.csv"),
             "--name", "stdlib-bytes-shape", "--out", str(out / "law_shape.toml"), "--bootstrap", str(fam.bootstrap)],
            capture_output=True, text=True,
        )  # fmt: skip
        tb.log(fit.stdout + fit.stderr)
        if fit.returncode == 0:
            shape_law = out / "law_shape.toml"
        else:  # e.g. the runs show no optimum: reported, and the search keeps the plain law
            shape_fit_error = fit.stderr.strip().splitlines()[-1] if fit.stderr.strip() else f"exit {fit.returncode}"

    # d. the contenders at each held-out budget: every pick first, then the runs interleaved (seed 0
    #    of every distinct pick at every budget, then seed 1, ...) so drift of the machine hits all alike
    plan = tb.Plan(**{**fam.__dict__, "d_model_axis": setup.d_model_axis, "n_layers_axis": setup.n_layers_axis})
    picks = []
    for budget in setup.budgets_s:
        tool_doc = tb.search(plan, out, hw_path, law, budget, [], f"search_{budget:g}")
        flops_doc = tb.search(
            plan, out, hw_path, law, budget, ["--step-time-model", "flops"], f"search_flops_{budget:g}"
        )
        rec_arch, rec_doc = recipe_pick(setup, hw_path, law, budget, out / "space.toml")
        # label -> (architecture, the law it was planned with, its loss terms)
        contenders: dict[str, tuple[Architecture, Path, str | None]] = {
            "tool": (tb.arch_of(fam, tool_doc["best"]["d_model"], tool_doc["best"]["n_layers"]), law, None),
            "recipe": (rec_arch, law, None),
            "FLOPs-only": (tb.arch_of(fam, flops_doc["best"]["d_model"], flops_doc["best"]["n_layers"]), law, None),
        }
        if shape_law is not None:
            shape_doc = tb.search(plan, out, hw_path, shape_law, budget, [], f"search_shape_{budget:g}")
            contenders["tool + shape term"] = (
                tb.arch_of(fam, shape_doc["best"]["d_model"], shape_doc["best"]["n_layers"]), shape_law, None)  # fmt: skip
        if setup.published_terms is not None:
            pub_doc = tb.search(plan, out, hw_path, law, budget, ["--loss-terms", setup.published_terms],
                                f"search_published_{budget:g}")  # fmt: skip
            contenders["tool + published terms"] = (
                tb.arch_of(fam, pub_doc["best"]["d_model"], pub_doc["best"]["n_layers"]), law, setup.published_terms)  # fmt: skip
        picks.append((budget, contenders, rec_doc))
    runs: dict[tuple[float, int, int], list[dict[str, Any]]] = {}
    for s in setup.seeds:
        for budget, contenders, _ in picks:
            for arch, _, _ in contenders.values():
                key = (budget, arch.d_model, arch.n_layers)
                if len(runs.setdefault(key, [])) <= setup.seeds.index(s):
                    runs[key].append(tb.run_training(fam, out, "final", arch, budget, hw, corpus, s))
    budgets = []
    for budget, contenders, rec_doc in picks:
        rows: list[dict[str, Any]] = []
        for label, (arch, label_law, terms) in contenders.items():
            key = (arch.d_model, arch.n_layers)
            rs = runs[(budget, *key)]
            p = predict(arch, hw, budget / 3600, law=str(label_law), loss_terms=terms)
            losses = [r["heldout_loss"] for r in rs]
            rows.append(
                {
                    "label": label,
                    "d_model": arch.d_model,
                    "n_layers": arch.n_layers,
                    "law": label_law.name,
                    "loss_terms": terms,
                    "params": p.params,
                    "predicted_step_s": p.step_time_s,
                    "measured_step_s": statistics.mean(r["measured_step_s"] for r in rs),
                    "predicted_tokens": p.tokens,
                    "measured_tokens": statistics.mean(r["tokens"] for r in rs),
                    "predicted_loss": p.loss,
                    "measured_loss": statistics.mean(losses),
                    "measured_losses": losses,
                    "losses_by_seed": {r["seed"]: r["heldout_loss"] for r in rs},
                    "seed_sd": statistics.stdev(losses) if len(losses) > 1 else 0.0,
                    **tb.summary(losses),
                    "same_as": next((x["label"] for x in rows if (x["d_model"], x["n_layers"]) == key), None),
                    # this architecture's loss as each contender's model (law and terms) predicts it
                    "predicted_loss_by": {
                        other: predict(arch, hw, budget / 3600, law=str(o_law), loss_terms=o_terms).loss
                        for other, (_, o_law, o_terms) in contenders.items()
                    },
                }
            )
        tool_row = rows[0]
        versus = {
            r["label"]: "same pick" if (r["d_model"], r["n_layers"]) == (tool_row["d_model"], tool_row["n_layers"])
            else {"a": "tool", "b": r["label"], "tie": "tie"}[tb.verdict(tool_row, r)]
            for r in rows[1:]
        }  # fmt: skip
        budgets.append({"budget_s": budget, "rows": rows, "recipe": rec_doc["recipe"], "predicted_gap": rec_doc["gap"],
                        "tool_versus": versus})  # fmt: skip

    doc = {
        "started_utc": started.isoformat(timespec="seconds"),
        "cpu_model": tb._cpu_model(),
        "jax": tb._jax_version(),
        "python": sys.version.split()[0],
        "step_time_model": hw.step_time_formula,
        "law": law.read_text(),
        "shape_law": shape_law.read_text() if shape_law is not None else None,
        "shape_fit_error": shape_fit_error,
        "setup": {k: v for k, v in setup.__dict__.items() if k != "family"} | {"family": fam.__dict__},
        "budgets": budgets,
        "shapes": shapes,
    }
    (out / "results.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
    (out / "results.md").write_text(report(doc))
    try:
        plot(doc, out / "loss.png")
    except ImportError:
        tb.log("matplotlib not installed: no plot")
    print(report(doc))


def report(doc: dict[str, Any]) -> str:
    lines = ["# Plan in time vs the usual recipe: measured", ""]
    seeds = doc["setup"]["seeds"]
    lines += [
        f"{len(seeds)} seeds per pick ({', '.join(map(str, seeds))}); a difference is a win only when it exceeds"
        " twice the larger seed sd and holds in every seed (paired by seed), otherwise a tie.",
        "",
    ]
    for b in doc["budgets"]:
        lines += [
            f"## Budget {b['budget_s']:g} s (held out: the law was fitted at other budgets)",
            "",
            "| contender | d_model x layers | params | step ms (pred / meas) | tokens (pred / meas) | loss pred | loss meas (mean ± sd, n) | per seed |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]  # fmt: skip
        for r in b["rows"]:
            same = f" (= {r['same_as']})" if r["same_as"] else ""
            lines.append(
                f"| {r['label']}{same} | {r['d_model']} x {r['n_layers']} | {r['params'] / 1e3:.0f} k | "
                f"{r['predicted_step_s'] * 1e3:.1f} / {r['measured_step_s'] * 1e3:.1f} | "
                f"{r['predicted_tokens'] / 1e6:.2f} M / {r['measured_tokens'] / 1e6:.2f} M | "
                f"{r['predicted_loss']:.4f} | {r['measured_loss']:.4f} ± {r['seed_sd']:.4f} ({len(r['measured_losses'])}) | "
                f"{', '.join(f'{x:.4f}' for x in r['measured_losses'])} |"
            )
        lines.append("")
        tool = b["rows"][0]
        for r in b["rows"][1:]:
            v = b.get("tool_versus", {}).get(r["label"])
            if v is None or v == "same pick":
                continue
            gap = r["measured_loss"] - tool["measured_loss"]
            by_tool = r["predicted_loss_by"]["tool"] - tool["predicted_loss_by"]["tool"]
            by_own = r["predicted_loss_by"][r["label"]] - tool["predicted_loss_by"][r["label"]]
            own = "" if r["label"] in ("recipe", "FLOPs-only") else f", by the {r['label']} model {by_own:+.4f}"
            said = {"tool": "the tool's pick won", "tie": "a tie"}.get(v, f"the {r['label']} pick won")
            lines.append(
                f"- tool vs {r['label']}: measured {r['label']} - tool {gap:+.4f} nats/byte (predicted by the "
                f"tool's model {by_tool:+.4f}{own}); larger sd {max(tool['seed_sd'], r['seed_sd']):.4f}: **{said}**."
            )
        lines.append("")
    lines += [
        "## Shape at a fixed parameter count and token count",
        "",
        "| d_model x layers | non-embedding params | tokens | loss per seed | mean |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in doc["shapes"]:
        lines.append(
            f"| {s['d_model']} x {s['n_layers']} | {s['non_embedding_params'] / 1e3:.0f} k | {s['tokens'] / 1e6:.2f} M | "
            f"{', '.join(f'{x:.4f}' for x in s['losses'])} | {s['mean']:.4f} |"
        )
    means = [s["mean"] for s in doc["shapes"]]
    sds = [statistics.stdev(s["losses"]) for s in doc["shapes"] if len(s["losses"]) > 1]
    if sds:
        spread = max(means) - min(means)
        lines += [
            "",
            f"Shape effect (max - min of the means): {spread:.4f} nats/byte; seed sd (largest): {max(sds):.4f}: "
            + ("larger than the noise." if spread > 2 * max(sds) else "not larger than the noise."),
        ]
    if doc.get("shape_fit_error"):
        lines += ["", f"No shape term: `timescale fit-law --shape-runs` refused these runs: {doc['shape_fit_error']}"]
    if doc.get("shape_law"):
        sh = tomllib.loads(doc["shape_law"])["law"]["shape"]
        lines += [
            "",
            "Shape term fitted from these runs (`timescale fit-law --shape-runs`, law_shape.toml): "
            f"c = {sh['c']:.4f} nats/byte per (ln aspect)^2 (95% {sh['c_interval'][0]:.4f}-{sh['c_interval'][1]:.4f}), "
            f"best d_model / n_layers = {sh['aspect_opt']:.1f} (95% {sh['aspect_opt_interval'][0]:.1f}-"
            f"{sh['aspect_opt_interval'][1]:.1f}); residual {sh['rms_residual']:.4f} nats/byte rms.",
        ]
    return "\n".join(lines) + "\n"


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    ax = axes[0]
    for b in doc["budgets"]:
        for r in b["rows"]:
            if r["same_as"]:
                continue
            ax.errorbar(r["predicted_loss"], r["measured_loss"], yerr=r["seed_sd"], fmt="o", capsize=3)
            ax.annotate(f"{r['label']} {b['budget_s']:g}s", (r["predicted_loss"], r["measured_loss"]), fontsize=7)
    lo = min(r["measured_loss"] for b in doc["budgets"] for r in b["rows"]) * 0.98
    hi = max(r["measured_loss"] for b in doc["budgets"] for r in b["rows"]) * 1.02
    ax.plot([lo, hi], [lo, hi], "k--", linewidth=0.8)
    ax.set_xlabel("predicted loss (nats/byte)")
    ax.set_ylabel("measured held-out loss (mean of seeds)")
    ax.set_title("tool vs recipe vs FLOPs-only")
    ax = axes[1]
    xs = [s["n_layers"] for s in doc["shapes"]]
    ax.errorbar(xs, [s["mean"] for s in doc["shapes"]],
                yerr=[statistics.stdev(s["losses"]) if len(s["losses"]) > 1 else 0 for s in doc["shapes"]],
                fmt="o-", capsize=3)  # fmt: skip
    ax.set_xlabel("n_layers (same parameters, same tokens)")
    ax.set_ylabel("held-out loss")
    ax.set_title("shape at fixed size")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
