"""What a new user trips over (issue 14): answers that agree with each other, nothing overwritten,
nothing over-precise. One test (or more) per point of the issue, through the CLI as a user runs it."""

import csv
import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from timescale_frontier import Architecture, Hardware, search
from timescale_frontier.calibrate.fit import MODELS
from timescale_frontier.cli import frontier_main, main
from timescale_frontier.hardware import SHIPPED_DIR, user_dir

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = ROOT / "data" / "published" / "llm-foundry-throughput.csv"


def invoke(entry, *args: str):
    return CliRunner().invoke(entry, list(args))


def flat(text: str) -> str:
    """Output with runs of whitespace as one space (explanations are wrapped to the terminal)."""
    return " ".join(text.split())


# 1. A search never fails in its own explanation.


def test_a_chip_count_the_winner_cannot_fully_use_still_gets_an_answer():
    """6 and 24 H100s: the winner trains on them, and an alternative the explanation looks at
    (a deeper-narrower reshape) cannot be split over them: said, not raised."""
    for chips in ("6", "24"):
        r = invoke(frontier_main, "-H", "h100_sxm", "--hours", "12", "--chips", chips)
        assert r.exit_code == 0, r.output
        assert "Best: d_model" in flat(r.output) and f"on {chips} chips" in flat(r.output)
    # An alternative no sharding of 24 chips divides (one KV head, so no tensor parallelism; 256
    # sequences, so data parallelism in powers of two only) is said to be so, not raised.
    from timescale_frontier.frontier import _compare, _predict_like

    res = search("h100_sxm", 12, {"d_model": [2304], "n_layers": [24], "kv_group": [1], "batch_size": [256]}, chips=24)
    alt = Architecture(1024, 8, 8, n_kv_heads=1, batch_size=256)
    p, why = _compare(res, _predict_like(res, res.best.architecture), alt)
    assert p is None and why == "cannot be split over 24 chips"


# 2. Calibrations go to the user's hardware directory; the package's files are never rewritten.


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.extras
def test_calibrating_a_shipped_file_writes_the_users_copy_and_leaves_the_package_alone():
    shipped = SHIPPED_DIR / "h100_sxm.toml"
    before = _digest(shipped)
    r = invoke(main, "calibrate", "-H", "h100_sxm", "--from", str(PUBLISHED), "--source", "my logs")
    assert r.exit_code == 0, r.output
    mine = user_dir() / "h100_sxm.toml"
    assert _digest(shipped) == before and mine.is_file()
    assert f"wrote {mine}" in flat(r.output) and "--hardware h100_sxm uses it from now on" in flat(r.output)
    # The comparison with the file it replaced (the shipped calibration) is printed.
    assert f"supersedes {shipped}: a calibration (rates, cross-validated median error 3.6%), now 3.6%" in flat(r.output)
    # The name now finds the user's file; the list says where each file comes from.
    assert Hardware.load("h100_sxm").path == mine and Hardware.load("h100_sxm").calibration["source"] == "my logs"
    listing = invoke(main, "hardware", "list").output
    line = next(x for x in listing.splitlines() if x.split()[0] == "h100_sxm")
    assert line.split()[1] == "user" and str(user_dir()) in listing
    assert next(x for x in listing.splitlines() if x.split()[0] == "tpu_v4").split()[1] == "shipped"
    # The user's own comments and layout survive a calibration (tomlkit edits the file).
    text = mine.read_text()
    mine.write_text(text.replace("[chip]", "# my note about this chip\n[chip]"))
    assert invoke(main, "calibrate", "-H", "h100_sxm", "--from", str(PUBLISHED)).exit_code == 0
    assert "# my note about this chip\n[chip]" in mine.read_text()


def _noisy_published(path: Path, rows: int | None = None) -> Path:
    """The published steps (the first ``rows``) with every time scattered by up to +-40%."""
    published = list(csv.DictReader(PUBLISHED.open()))[:rows]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(published[0]))
        w.writeheader()
        for i, row in enumerate(published):
            k = (0.6, 1.4, 1.0, 0.75, 1.3)[i % 5]
            row["measured_step_time_s"] = str(float(row["measured_step_time_s"]) * k)
            row["measured_tokens_per_s_per_chip"] = str(float(row["measured_tokens_per_s_per_chip"]) / k)
            w.writerow(row)
    return path


@pytest.mark.extras
def test_calibration_errors_name_the_files_they_are_about(tmp_path):
    # --out the very file --from reads: refused as an input (before, read back as "invalid TOML").
    steps = tmp_path / "steps.csv"
    steps.write_bytes(PUBLISHED.read_bytes())
    r = invoke(main, "calibrate", "-H", "h100_sxm", "--from", str(steps), "--out", str(steps))
    assert r.exit_code == 2 and f"{steps}: is one of this run's inputs" in flat(r.output), r.output
    assert steps.read_bytes() == PUBLISHED.read_bytes()
    # A first calibration of a shipped file, worse than the shipped calibration: the refusal names
    # the shipped file it was compared with (the user's copy it would create does not exist).
    r = invoke(main, "calibrate", "-H", "h100_sxm", "--from", str(_noisy_published(tmp_path / "noisy.csv")))
    mine, shipped = user_dir() / "h100_sxm.toml", SHIPPED_DIR / "h100_sxm.toml"
    assert r.exit_code == 2 and not mine.exists(), r.output
    assert f"{mine}: not written: the calibration it would replace ({shipped}: rates) has" in flat(r.output)
    # Too few steps for any model (the smallest, memcpy: 2 coefficients, needs 4): refused; with 5,
    # only the models of at most 3 coefficients are fitted, and the answer says its errors are rough.
    r = invoke(main, "calibrate", "-H", "h100_sxm", "--from", str(_noisy_published(tmp_path / "three.csv", 3)))
    assert r.exit_code == 1 and "only 3 training steps for the fit (need 4)" in flat(r.output), r.output
    out = tmp_path / "five.toml"
    # Five noisy steps fit far worse than the shipped file (issue 26.7): refused, and with --force
    # written with a warning.
    five = ["calibrate", "-H", "h100_sxm", "--from", str(_noisy_published(tmp_path / "5.csv", 5)), "--out", str(out)]
    r = invoke(main, *five)
    assert r.exit_code == 2 and "is far above the calibration of" in flat(r.output) and not out.exists(), r.output
    r = invoke(main, *five, "--force")
    assert r.exit_code == 0 and "WARNING:" in r.output, r.output
    fitted = {line.split()[0] for line in r.output.splitlines() if line.split()[:1] and line.split()[0] in MODELS}
    # (rates needs 6; split and roofline need one chip per step, and these ran on many.)
    assert fitted == {"memcpy", "flops", "linear"}
    # The chosen model (memcpy, 2 coefficients) has at least twice as many steps; a model with fewer
    # than that is said to have rough errors.
    import dataclasses

    from timescale_frontier import render
    from timescale_frontier.calibrate.records import calibrate_from

    res = calibrate_from("h100_sxm", _noisy_published(tmp_path / "7.csv", 7), tmp_path / "seven.toml", force=True)
    assert not res.few_samples and "few measurements" not in render.calibration_text(res)
    rough = dataclasses.replace(res, chosen="linear", n_fit=5)  # 3 coefficients: 6 steps or more are not few
    assert rough.few_samples
    assert "few measurements: 5 steps for a model of 3 coefficients" in flat(render.calibration_text(rough))


@pytest.mark.extras
def test_a_worse_calibration_does_not_replace_a_better_one_without_force(tmp_path):
    """A file calibrated on the published steps (cross-validated median error about 3.6%), then a
    calibration from the same steps with every time scattered by up to +-40% (a noisy machine):
    its fit is far worse, so the file is kept unless --force; the comparison is printed."""
    good = tmp_path / "h100.toml"
    assert invoke(main, "calibrate", "-H", "h100_sxm", "--from", str(PUBLISHED), "--out", str(good)).exit_code == 0
    before = _digest(good)
    noisy = _noisy_published(tmp_path / "noisy.csv")
    r = invoke(main, "calibrate", "-H", str(good), "--from", str(noisy))
    assert r.exit_code == 2 and f"{good}: kept: its calibration (rates) has a cross-validated median" in flat(r.output)
    assert "--force" in flat(r.output) and _digest(good) == before
    r = invoke(main, "calibrate", "-H", str(good), "--from", str(noisy), "--force")
    assert r.exit_code == 0 and "(worse: --force)" in flat(r.output) and _digest(good) != before


# 4. The width-depth picture agrees with the search's answer.


@pytest.mark.extras
def test_the_width_depth_report_names_the_searchs_answer_and_the_unguarded_optimum(tmp_path):
    pytest.importorskip("matplotlib")
    from timescale_frontier import search

    widths, depths = "512:4096:512", "2:32:2"
    out = tmp_path / "wd.png"
    r = invoke(main, "report", "width-depth", "-H", "h100_sxm", "--hours", "12", "--d-model", widths,
               "--n-layers", depths, "--out", str(out))  # fmt: skip
    assert r.exit_code == 0, r.output
    best = search(Hardware.load("h100_sxm"), 12, {"d_model": widths, "n_layers": depths}).best.architecture
    # The default law prices shape: no guard, the best cell is the search's answer on this grid.
    assert f"(no aspect-ratio guard): d_model {best.d_model}, {best.n_layers} layers" in flat(r.output)
    assert out.stat().st_size > 0
    # The plain law (no shape term) has Kaplan's guard; the lowest cell overall is then a wide,
    # shallow shape outside it: named as such.
    r = invoke(main, "report", "width-depth", "-H", "h100_sxm", "--hours", "12", "--d-model", widths,
               "--n-layers", depths, "--out", str(out), "--loss-terms", "none")  # fmt: skip
    plain = search(Hardware.load("h100_sxm"), 12, {"d_model": widths, "n_layers": depths}, loss_terms="none")
    best = plain.best.architecture
    assert (
        f"inside the aspect-ratio guard (d_model/n_layers 20 to 200): d_model {best.d_model}, {best.n_layers} layers"
        in flat(r.output)
    )
    assert "lowest cell anywhere: d_model" in flat(r.output) and "outside the guard" in flat(r.output)


# 6. Rankings no finer than the model.


def test_head_splits_share_a_row_and_ties_within_the_models_error_are_marked():
    r = invoke(frontier_main, "-H", "h100_sxm", "--hours", "12")
    assert r.exit_code == 0, r.output
    top = flat(r.output).split("Top 10 by predicted loss")[1].split("Pareto set")[0]
    # The head split is shown (heads x head_dim / KV heads), and splits that change nothing share a row.
    assert "heads x dim/kv" in top and "10x128/10,20x64/20" in top and "distinct (head splits" in top
    # The calibration's error (3.64%) is part of what counts as a tie, and the table says so.
    assert "~ within the model's uncertainty of #1: a step time off by 3.64%" in top
    from timescale_frontier import search

    res = search(Hardware.load("h100_sxm"), 12)
    groups = res.top_groups()
    assert sum(len(g) for g in groups) == len(res.top) and len(groups) < len(res.top)
    for g in groups:  # members differ only in the head split
        assert len({(c.architecture.d_model, c.architecture.d_ff, c.params) for c in g}) == 1
    # A tie: |difference| <= the step-time error's effect on both, beta x B / D^beta x error (by hand).
    b, last = res.best, res.top[-1]
    assert abs(res.step_time_error[0] - 0.03638) < 1e-15  # h100_sxm.toml's heldout_median_abs_pct_error / 100
    resolution = res.loss_resolution(b)
    data_term = res.law.b / b.effective_tokens**res.law.beta
    assert abs(resolution - res.law.beta * data_term * 0.03638) < 1e-12
    both = (resolution**2 + res.loss_resolution(last) ** 2) ** 0.5
    reason = res.tie_reason(last)
    if abs(last.loss - b.loss) <= both:
        assert reason is not None and reason.startswith("within the step time's error")
    else:  # tied only if a published alternative of the loss model orders them the other way
        assert reason is None or "rank them the other way" in reason


# 7. When a guard decides the answer, the answer says so; context length is explained.


def test_a_guard_that_decides_the_answer_is_named_with_the_unguarded_optimum():
    # The plain law (no shape term, so Kaplan's 20-200 guard; no context term).
    r = invoke(frontier_main, "-H", "h100_sxm", "--hours", "12", "--loss-terms", "none")
    why = flat(r.output).split("Why:")[1].split("Top 10")[0]
    assert "The aspect-ratio guard decides this answer: the winner's d_model/n_layers is 192" in why
    assert "Without it the law would pick d_model" in why and "2 layers" in why
    assert "The context length (512; searched: " in why and "is chosen by throughput alone" in why
    # The default law prices shape and context: no guard to decide, and the context is explained.
    r = invoke(frontier_main, "-H", "h100_sxm", "--hours", "12")
    why = flat(r.output).split("Why:")[1].split("Top 10")[0]
    assert "The aspect-ratio guard decides" not in why and "evaluated at 2,048 tokens of context" in why


# 9. One wording for memory (the usable limit); figures that can be told apart; counts explained.


def test_memory_is_quoted_against_the_usable_limit_and_infeasible_figures_differ_from_the_limit():
    r = invoke(frontier_main, "-H", "tpu_v4", "--hours", "12", *"--d-model 512:2048:512 --n-layers 4:16:4".split())
    assert "GiB usable, predicted loss" in flat(r.output) and "of 32 GiB" not in flat(r.output)
    assert "malformed (axis combinations that make no model" in flat(r.output) or "malformed" not in flat(r.output)
    r = invoke(frontier_main, "-H", "tpu_v4", "--hours", "0.0000121")
    assert r.exit_code == 1
    msg = flat(r.output)
    # The budget and the fastest step, with the digits that tell them apart; counts with separators.
    assert "cannot finish one step in the 0.04356 s budget (the fastest of them needs 0.04" in msg
    fastest = msg.split("the fastest of them needs ")[1].split(" s")[0]
    assert float(fastest) > 0.04356
    assert "of 62,914,560 configurations" in msg and "the micro-batch the batch" in msg


# 10. The law's own compute-optimal ratio, and a hint when one chip's memory caps the answer.


def test_tokens_per_parameter_are_compared_with_the_active_laws_optimum():
    r = invoke(frontier_main, "-H", "h100_sxm", "--hours", "12")
    why = flat(r.output).split("Why:")[1]
    assert "Chinchilla's compute-optimal ratio is about 20" not in why
    from timescale_frontier import search

    res = search(Hardware.load("h100_sxm"), 12)
    b = res.best
    n = res.law.loss_terms(b.architecture, b.tokens).law_params
    n_opt, d_opt = res.law.compute_optimal(6 * n * b.effective_tokens)
    assert "the law's own compute-optimal split is" in why and f"({d_opt / n_opt:.0f} per parameter)" in why
    # A winner that fills one chip gets the hint (the plain law's answer at 12 h does).
    r = invoke(frontier_main, "-H", "h100_sxm", "--hours", "12", "--loss-terms", "none", "--batch-size", "8:512:*2",
               "--micro-batch", "none,1,4")  # fmt: skip
    assert "larger models need more chips" in flat(r.output).split("Why:")[1]


# 11. Smaller things a new user meets.


def test_hardware_files_cite_public_sources_and_the_list_fits_a_terminal():
    for path in SHIPPED_DIR.glob("*.toml"):
        assert "../shared" not in path.read_text(), path.name  # a path users do not have
    listing = invoke(main, "hardware", "list").output
    assert max(len(line) for line in listing.splitlines()) <= 100


# 8. Widths accelerators run well, by default; the exact ratio on request.


def test_d_ff_is_a_multiple_of_64_by_default_and_exact_on_request():
    import json

    args = ["-H", "h100_sxm", "--hours", "12", "--d-model", "1280,3584", "--n-layers", "8:24:8", "--format", "json"]
    doc = json.loads(invoke(frontier_main, *args, "--ffn-mult", "2.6666666667").output)
    assert {c["d_ff"] for c in doc["top"]} <= {3392, 9536}  # 8/3 x 1280 = 3413.3, 8/3 x 3584 = 9557.3
    doc = json.loads(invoke(frontier_main, *args, "--ffn-mult", "2.6666666667", "--d-ff-multiple", "1").output)
    assert {c["d_ff"] for c in doc["top"]} <= {3413, 9557}
    r = invoke(frontier_main, *args, "--d-ff-multiple", "0")
    assert r.exit_code == 2 and "d_ff_multiple = 0 is invalid: expected an integer in [1, 4096]" in flat(r.output)


def test_a_money_budget_over_chip_counts_says_its_hours_are_wall_clock_on_every_chip():
    from timescale_frontier import Budget, search

    args = ["-H", "h100_sxm", "--budget-usd", "20000", "--chips", "1,2,4", "--d-model", "1024:2048:512"]
    out = flat(invoke(frontier_main, *args).output)
    assert "a money budget buys chip-hours, so more chips run for fewer wall-clock hours" in out
    chips = search(Hardware.load("h100_sxm"), Budget(usd=20000), {"d_model": "1024:2048:512"}, chips=[1, 2, 4]).chips
    assert chips > 1  # here more chips win
    hours = 20000 / 3.0 / chips
    assert f"= {hours:.4g} h of wall clock on each of {chips} chips" in out


@pytest.mark.extras
def test_the_readmes_python_runs_and_its_calibration_figures_are_the_files():
    """The README's Python block runs as written; every calibration error it quotes is the one the
    hardware file records (and calibrate/--refit print, and hardware list shows), to its digits."""
    import re

    readme = (ROOT / "README.md").read_text()
    block = readme.split("```python\n")[1].split("```")[0]
    exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - the project's own documentation
    fsdp_part, stacks_part = readme.split("### Other stacks")
    table = {
        row.split("|")[1].strip(): row
        for row in fsdp_part.splitlines()
        if row.startswith("| a100_") or row.startswith("| h100_sxm")
    }
    assert set(table) == {"a100_40gb", "a100_80gb", "h100_sxm"}
    # The per-stack table: each figure is the one the file's calibration of that stack records.
    stack_rows = [r for r in stacks_part.split("## Honest limits")[0].splitlines() if r.startswith("| ")][1:]
    checked = 0
    for row in stack_rows:
        cells = [c.strip().strip("*") for c in row.split("|")[1:-1]]
        chip, stack = cells[0], cells[1].split()[0]
        if "/" in chip:
            continue  # the FSDP files' summary row, checked above
        cal = Hardware.load(chip, stack=stack).calibration
        assert cells[4] == f"{cal['heldout_median_abs_pct_error']:.1f}%", row
        assert cells[5] == f"{cal['heldout_median_abs_pct_error_dense']:.1f}%", row
        assert cells[6] == f"{cal['heldout_median_abs_pct_error_moe']:.1f}%", row
        assert cells[7] == f"{cal['heldout_spearman']:.3f}", row
        assert cells[2].startswith(f"{cal['n_samples']} ({cal['n_dense']} / {cal['n_moe']})"), row
        checked += 1
    assert checked == 5
    for name, row in table.items():
        cal = Hardware.load(name).calibration
        rates = re.search(r"\*\*([\d.]+)% / ([\d.]+)% / ([\d.]+)\*\*", row)
        assert rates is not None, row
        assert rates.group(1) == f"{cal['heldout_median_abs_pct_error']:.1f}", name
        assert rates.group(2) == f"{cal['heldout_max_abs_pct_error']:.1f}", name
        assert rates.group(3) == f"{cal['heldout_spearman']:.3f}", name
    cpu = Hardware.load("cpu").calibration
    text = " ".join(readme.split())
    assert f"median step-time error {cpu['heldout_median_abs_pct_error']:.1f}%" in text
    assert f"{cpu['validation_median_abs_pct_error']:.1f}% on the {cpu['n_validation']} held-out" in text
