"""A calibration that fits a budget (issue 12), exercised on the CPU with a test double for the
compiler and the timer: the hard budget holds when a compile is slow, an interrupted run leaves
valid files, and `--plan` lists what a run then measures, in order. (Without JAX the live module
cannot load: these skip; `--plan` itself needs no JAX and is tested here too.)"""

import json
import time
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from timescale_frontier import Hardware, predict
from timescale_frontier.calibrate import plan as plan_mod
from timescale_frontier.calibrate.plan import make_plan, timing_cost_s
from timescale_frontier.cli import main


def test_plan_needs_no_jax_and_fits_its_budget():
    r = CliRunner().invoke(main, ["calibrate", "-H", "h200_sxm", "--plan", "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["backend"] == "gpu" and doc["time_budget_s"] == 240  # the accelerator default
    assert doc["total_s"] <= 240 and len(doc["items"]) >= 8 and doc["dropped"]
    # Each item's cost: its share of a compile (two at once on a GPU) and its timing loops.
    for item in doc["items"]:
        assert item["predicted_cost_s"] == pytest.approx(
            item["predicted_compile_s"] / 2 + timing_cost_s(item["predicted_step_s"])
        )
        # Every configuration fits the chip's memory by the core's own estimate (the pre-filter).
        arch = {k: item[k] for k in ("d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "d_ff", "seq_len")}
        assert predict(_arch(item), Hardware.load("h200_sxm"), 1.0).fits_memory, arch
    table = CliRunner().invoke(main, ["calibrate", "-H", "cpu", "--plan", "--time-budget-s", "30"]).output
    assert "Calibration plan for cpu on cpu" in table and "in a budget of 30 s" in table


def test_an_accelerator_is_calibrated_on_training_sized_steps():
    # On a GPU the CPU grid's models step in about a millisecond, nearly all launch overhead: the
    # plan draws training-sized models whose predicted steps are 0.1 to 0.8 s, at least 2.5x the
    # file's per-step overhead (0.039 s in the uncalibrated h200 file), so the work is measured.
    hw = Hardware.load("h200_sxm")
    p = make_plan(hw, "gpu", 240.0, 12, 6)
    assert p.step_range_s == plan_mod.DEFAULT_STEP_RANGE_S["gpu"] == (0.1, 0.8)
    overhead = tomllib.loads(hw.path.read_text())["step_time"]["overhead_s"]
    assert overhead == 0.039
    for x in p.items + p.dropped:
        assert 0.1 <= x.predicted_step_s <= 0.8 and x.arch.d_model in plan_mod.ACCELERATOR_GRID["d_model"]
        assert x.predicted_step_s >= 2.5 * overhead
    # The CPU keeps its small models.
    cpu = make_plan(Hardware.load("cpu"), "cpu", 100.0, 12, 6)
    assert cpu.step_range_s == (5e-4, 0.06) and all(x.arch.d_model <= 512 for x in cpu.items)


def test_a_plan_refuses_bad_ranges_and_says_when_nothing_is_left():
    for args, message in [
        (["--step-range-s", "2:1"], "step_range_s = 2:1 is invalid: expected MIN < MAX"),
        (["--step-range-s", "nan:1"], "step_range_s = nan:1 is invalid"),
        (["--step-range-s", "0:0"], "step_range_s = 0:0 is invalid"),
        (["--time-budget-s", "nan"], "time_budget_s = nan is invalid: expected seconds in [1, 86400]"),
        (["--step-range-s", "30:40"], "no architecture of the gpu design grid fits"),
    ]:
        r = CliRunner().invoke(main, ["calibrate", "-H", "h200_sxm", "--plan", *args])
        assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1, r.output


def _arch(item):
    from timescale_frontier import Architecture

    fields = ("n_kv_heads", "head_dim", "d_ff", "mlp", "attention", "tied_embeddings", "seq_len", "batch_size")
    return Architecture(
        item["d_model"],
        item["n_layers"],
        item["n_heads"],
        vocab_size=item["vocab_size"],
        activation_bytes=item["activation_bytes"],
        **{k: item[k] for k in fields},
    )


# ---------------------------------------------------------------- the live loop, with test doubles


@pytest.fixture
def fake_device(monkeypatch):
    """Compiles take what the plan assumes (0.3 s here), unless told otherwise; a timed step takes
    what the CPU file predicts (no sleeping: the timing loops' cost is the double's to skip)."""
    pytest.importorskip("jax", reason="the live calibration module imports JAX")
    from timescale_frontier.calibrate import bench, run

    monkeypatch.setitem(plan_mod.COMPILE_S, "cpu", 0.3)
    monkeypatch.setattr(run, "COMPILE_S", plan_mod.COMPILE_S)
    monkeypatch.setitem(plan_mod.MICROBENCH_S, "cpu", 0.0)
    monkeypatch.setattr(bench, "matmul_flops_per_s", lambda n, dtype: 1.2e11)
    monkeypatch.setattr(bench, "copy_bytes_per_s", lambda n, dtype: 2.0e10)
    hw = Hardware.load("cpu")
    state = {"compiles": 0, "slow": set(), "interrupt_at": None, "timed": 0}

    def compile_(arch):
        state["compiles"] += 1
        time.sleep(30.0 if state["compiles"] in state["slow"] else 0.3)
        return ("program", arch), (), 0.3

    def time_compiled(arch, compiled, args, compile_s):
        state["timed"] += 1
        if state["interrupt_at"] == state["timed"]:
            raise KeyboardInterrupt
        return bench.StepMeasurement(arch, predict(arch, hw, 1.0).step_time_s * 1.1, compile_s)

    monkeypatch.setattr(bench, "_compile", compile_)
    monkeypatch.setattr(bench, "_time_compiled", time_compiled)
    return state


def test_the_budget_holds_when_a_compile_is_slow(tmp_path, fake_device):
    from timescale_frontier.calibrate.run import calibrate

    fake_device["slow"] = {9}  # the ninth program would take 30 s to compile
    m, out = tmp_path / "m.jsonl", tmp_path / "cpu.toml"
    t0 = time.perf_counter()
    r = calibrate("cpu", out, time_budget_s=12.0, measurements=m, compile_deadline_s=2.0)
    elapsed = time.perf_counter() - t0
    assert elapsed <= 12.0 + 1.0, elapsed  # the hard limit, start-up and fit included (1 s of slack)
    records = [json.loads(line) for line in m.read_text().splitlines()]
    steps = [x for x in records if x["kind"] == "train_step"]
    slow = steps[8]
    assert slow["step_time_s"] is None and slow["error"].startswith("compile exceeded 2 s")
    # On the CPU a compile still running would share the measured cores: the run stops there.
    assert len(steps) == 9 and r.n_fit + r.n_validation == 8 and out.exists()
    run_rec = records[0]
    assert run_rec["kind"] == "run" and run_rec["backend"] == "cpu" and "jax_version" in run_rec
    assert {"xla_flags", "device_count", "time_budget_s"} <= set(run_rec)
    assert all({"compile_s", "predicted_step_s", "predicted_compile_s"} <= set(x) for x in steps)


def test_an_interrupted_run_leaves_valid_files(tmp_path, fake_device):
    from timescale_frontier.calibrate.run import calibrate

    # Ctrl-C after eight configurations: enough to fit; the hardware file is written from them.
    fake_device["interrupt_at"] = 9
    m, out = tmp_path / "m.jsonl", tmp_path / "cpu.toml"
    r = calibrate("cpu", out, time_budget_s=60.0, measurements=m)
    lines = m.read_text().splitlines()
    assert all(json.loads(line) for line in lines)  # every line a complete record
    assert len([x for x in lines if '"train_step"' in x]) == 8 and r.n_fit + r.n_validation == 8
    assert Hardware.load(out).calibrated
    # Ctrl-C after two: too few to fit; nothing written, the measurements still valid, Ctrl-C passed on.
    fake_device.update(interrupt_at=fake_device["timed"] + 3)
    m2, out2 = tmp_path / "m2.jsonl", tmp_path / "cpu2.toml"
    with pytest.raises(KeyboardInterrupt):
        calibrate("cpu", out2, time_budget_s=60.0, measurements=m2)
    assert not out2.exists() and all(json.loads(line) for line in m2.read_text().splitlines())


def test_the_plan_is_what_a_run_then_measures(tmp_path, fake_device):
    from timescale_frontier.calibrate.run import calibrate

    hw = Hardware.load("cpu")
    plan = make_plan(hw, "cpu", 10.0, 12, 6)
    m = tmp_path / "m.jsonl"
    calibrate("cpu", tmp_path / "cpu.toml", time_budget_s=10.0, measurements=m)
    measured = [x for x in map(json.loads, m.read_text().splitlines()) if x["kind"] == "train_step"]
    keys = ("d_model", "n_layers", "n_heads", "seq_len", "batch_size", "mlp", "attention", "vocab_size")
    planned = [{k: getattr(p.arch, k) for k in keys} | {"split": p.split} for p in plan.items + plan.dropped]
    got = [{k: x[k] for k in keys} | {"split": x["split"]} for x in measured]
    # In plan order, every planned item first; time left over runs on into the dropped ones.
    assert len(got) >= len(plan.items) and got == planned[: len(got)]
    assert [x["predicted_step_s"] for x in measured] == [p.predicted_step_s for p in (plan.items + plan.dropped)][
        : len(got)
    ]


def test_compile_cache_is_the_users(tmp_path, monkeypatch):
    pytest.importorskip("jax")
    import jax

    from timescale_frontier.calibrate.run import enable_compile_cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    before = jax.config.jax_compilation_cache_dir
    try:
        cache = enable_compile_cache()
        assert Path(jax.config.jax_compilation_cache_dir) == cache and cache.is_dir()
    finally:
        jax.config.update("jax_compilation_cache_dir", before)
