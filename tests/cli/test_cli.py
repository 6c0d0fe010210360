import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from timescale_frontier.cli import frontier_main, main

BIN = Path(sys.executable).parent
SMALL = ["--d-model", "256:2048:256", "--n-layers", "2:32:2"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=120)


def test_the_main_job_on_the_default_space():
    p = run("timescale-frontier", "--hardware", "tpu_v4.toml", "--hours", "12")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Best: d_model" in out and "UNCALIBRATED" in out and "Pareto set" in out
    assert "Evaluated 62,914,560 configurations" in out
    for unit in ("params", "ms", "GiB", "nats/token"):
        assert unit in out


def test_json_has_the_documented_fields():
    r = CliRunner().invoke(frontier_main, ["--hardware", "tpu_v4", "--hours", "12", "--format", "json", *SMALL])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    for key in ("best", "pareto", "top", "evaluated", "feasible", "elapsed_s"):
        assert key in doc
    for key in (
        "step_time_s",
        "flops_per_step",
        "memcpy_bytes_per_step",
        "memory_bytes",
        "params",
        "non_embedding_params",
        "tokens",
        "loss",
    ):
        assert key in doc["best"]
    assert doc["best"]["loss_interval_95"] is None  # built-in laws carry no bootstrap samples
    doc["best"].pop("loss_interval_95")
    # The best's loss term by term, adding up to its loss.
    terms = doc["best"].pop("loss_terms")
    parts = ("irreducible", "params", "data", "shape", "vocab", "context")
    assert sum(terms[k] for k in parts) == pytest.approx(doc["best"]["loss"], rel=1e-12)
    assert doc["loss_terms_on"] == ["shape", "vocab", "context", "batch", "repetition"] and doc["eval_context"] == 2048
    first = doc["top"][0]
    assert first.pop("group") == 1 and first.pop("tied_with_best") is True  # the best is tied with itself
    assert first.pop("tie_reason") is None
    assert doc["best"] == first and doc["calibrated"] is False
    assert doc["step_time_error"]["relative"] == 0.262 and "uncalibrated" in doc["step_time_error"]["source"]
    # 8 widths x 16 depths x head_dim, kv_group, mlp, ffn_mult, attention, tying (2 each) x 4
    # sequences x 2 recomputations x 4 micro-batches x 10 batches
    assert len(doc["top"]) == 10 and doc["evaluated"] == 8 * 16 * 2 * 2 * 2 * 2 * 2 * 2 * 4 * 2 * 4 * 10


def test_csv_and_output_file(tmp_path):
    out = tmp_path / "res.csv"
    r = CliRunner().invoke(
        frontier_main, ["-H", "h100_sxm", "--hours", "3", "--format", "csv", "--top", "3", "-o", str(out), *SMALL]
    )
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [row["set"] for row in rows[:3]] == ["top"] * 3 and rows[3]["set"] == "pareto"
    assert float(rows[0]["loss"]) <= float(rows[1]["loss"])
    # Counts are written as integers (the core holds them as floats), with the chip count.
    assert rows[0]["params"].isdigit() and rows[0]["steps"].isdigit() and rows[0]["tokens"].isdigit(), rows[0]
    assert rows[0]["chips"] == "1"
    r = CliRunner().invoke(
        frontier_main, ["-H", "h100_sxm", "--hours", "3", "--format", "csv", "--chips", "1,2", *SMALL]
    )
    rows = list(csv.DictReader(io.StringIO(r.output)))
    assert r.exit_code == 0 and {row["chips"] for row in rows} == {"2"}, r.output[:300]


def test_predict_and_hardware_commands():
    r = CliRunner().invoke(
        main,
        [
            "predict",
            "--d-model",
            "4096",
            "--n-layers",
            "32",
            "--n-heads",
            "32",
            "--d-ff",
            "11008",
            "--mlp",
            "swiglu",
            "--batch-size",
            "1",
            "--hardware",
            "h200_sxm",
            "--hours",
            "1",
            "--format",
            "json",
            "--ops",
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["params"] == 6_738_415_616
    assert sum(o["bytes_per_step"] for o in doc["ops"]) == doc["memcpy_bytes_per_step"]
    r = CliRunner().invoke(
        main,
        ["predict", "--d-model", "512", "--n-layers", "8", "--n-heads", "8", "-H", "tpu_v4", "--hours", "1", "--ops"],
    )
    assert r.exit_code == 0 and "MEMCPY per step" in r.output and "adamw update" in r.output
    r = CliRunner().invoke(main, ["hardware", "list"])
    assert r.exit_code == 0 and all(n in r.output for n in ("mi300x", "mi325x", "gb200", "tpu_v6e"))
    r = CliRunner().invoke(main, ["hardware", "show", "tpu_v4"])
    assert r.exit_code == 0 and "source" in r.output and "uncalibrated" in r.output


def test_predict_says_when_the_plan_does_not_fit():
    base = ["predict", "--d-model", "2048", "--n-layers", "16", "--n-heads", "16", "--seq-len", "2048"]
    r = CliRunner().invoke(main, [*base, "--batch-size", "64", "-H", "h100_sxm", "--hours", "12"])
    assert r.exit_code == 0 and "(DOES NOT FIT)" in r.output, r.output
    assert "DOES NOT FIT: the loss is what this plan would reach if it ran" in r.output
    r = CliRunner().invoke(main, [*base, "--batch-size", "64", "--micro-batch", "8", "-H", "h100_sxm", "--hours", "12"])
    assert r.exit_code == 0 and "(fits)" in r.output and "DOES NOT FIT" not in r.output, r.output


def test_predict_takes_a_mixture_of_experts():
    # Mixtral 8x7B's shape: both parameter counts and the dense-law warning.
    mixtral = ["predict", "--d-model", "4096", "--n-layers", "32", "--n-heads", "32", "--n-kv-heads", "8"]
    mixtral += ["--d-ff", "14336", "--mlp", "swiglu", "--experts", "8", "--top-k", "2", "--batch-size", "16"]
    r = CliRunner().invoke(main, [*mixtral, "-H", "h100_sxm", "--hours", "24", "--chips", "8", "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert (doc["params"], doc["active_params"]) == (46_702_792_704, 12_879_925_248)
    assert doc["architecture"]["experts"] == 8 and "mixture_of_experts" in doc["flags"]
    r = CliRunner().invoke(main, [*mixtral, "-H", "h100_sxm", "--hours", "24"])
    assert r.exit_code == 0 and "active params         12.9 B" in r.output and "2 of 8 routed" in r.output, r.output
    r = CliRunner().invoke(main, [*mixtral[:-4], "--experts", "8", "-H", "h100_sxm", "--hours", "24"])
    assert r.exit_code == 2 and "top_k = unset" in r.output, r.output


def test_a_broken_user_file_does_not_hide_the_others(tmp_path, monkeypatch):
    (tmp_path / "broken.toml").write_text('name = "x"\n[chip\n')
    monkeypatch.setenv("TIMESCALE_FRONTIER_HARDWARE_DIR", str(tmp_path))
    r = CliRunner().invoke(main, ["hardware", "list"])
    assert r.exit_code == 2
    assert "tpu_v6e" in r.stdout and "h100_sxm" in r.stdout and "broken" not in r.stdout
    assert r.stderr.strip().splitlines() == [f"error: {tmp_path / 'broken.toml'}: invalid TOML (Expected ']' at the end"
                                             " of a table declaration (at line 2, column 6))"]  # fmt: skip


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["--hardware", "nope.toml", "--hours", "12"], 2, "hardware file"),
        (["--hardware", "tpu_v4", "--hours", "-1"], 2, "hours"),
        (["--hardware", "tpu_v4", "--hours", "nan"], 2, "hours"),
        (["--hardware", "tpu_v4", "--hours", "inf"], 2, "hours"),
        (["--hardware", "tpu_v4", "--hours", "12", "--d-model", ""], 2, "d_model: empty"),
        (["--hardware", "tpu_v4", "--hours", "12", "--d-model", "abc"], 2, "d_model"),
        (["--hardware", "tpu_v4", "--hours", "12", "--aspect-ratio", "x"], 2, "aspect"),
        (["--hardware", "tpu_v4", "--hours", "12", "--chips", "1.5"], 2, "chips"),
        (
            [
                "--hardware",
                "tpu_v5e",
                "--hours",
                "12",
                "--d-model",
                "8192",
                "--n-layers",
                "48",
                "--batch-size",
                "512",
                "--aspect-ratio",
                "1:1000",
            ],
            1,
            "smallest of them needs",
        ),
    ],
)
def test_bad_input_is_one_line_without_traceback(args, code, message):
    p = run("timescale-frontier", *args)
    assert p.returncode == code, (p.stdout, p.stderr)
    assert message in p.stderr
    assert "Traceback" not in p.stderr and p.stdout == ""


def test_malformed_hardware_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [")
    p = run("timescale-frontier", "--hardware", str(bad), "--hours", "1")
    assert p.returncode == 2 and str(bad) in p.stderr and "invalid TOML" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_failed_run_keeps_the_previous_output(tmp_path):
    out = tmp_path / "keep.json"
    out.write_text("previous")
    r = CliRunner().invoke(frontier_main, ["-H", "tpu_v4", "--hours", "1e-9", "-o", str(out), *SMALL])
    assert r.exit_code == 1
    assert out.read_text() == "previous"
    assert list(tmp_path.iterdir()) == [out]


def test_space_file(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text('[space]\nd_model = [512, 1024]\nn_layers = "4:16:4"\nmlp = ["swiglu"]\n')
    r = CliRunner().invoke(frontier_main, ["-H", "tpu_v4", "--hours", "1", "--space", str(f), "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["space_size"] == 2 * 4 * 2 * 2 * 1 * 2 * 2 * 2 * 1 * 4 * 2 * 4 * 10
    assert {row["mlp"] for row in doc["top"]} == {"swiglu"}
    f.write_text("[space]\nd_modle = [512]\n")
    r = CliRunner().invoke(frontier_main, ["-H", "tpu_v4", "--hours", "1", "--space", str(f)])
    assert r.exit_code == 2 and "did you mean 'd_model'" in r.output


@pytest.mark.parametrize("chips", ["1", "8"])
def test_ctrl_c_stops_a_long_search_cleanly(chips):
    import signal
    import time

    # ~5.5e9 configurations with the guards opened: many seconds of work.
    p = subprocess.Popen(
        [
            str(BIN / "timescale-frontier"),
            "-H",
            "tpu_v4",
            "--hours",
            "12",
            "--d-model",
            "64:65536:64",
            "--n-layers",
            "1:3000:1",
            "--aspect-ratio",
            "0.0001:1e9",
            "--recompute",
            "none",
            "--micro-batch",
            "none",
            "--chips",
            chips,
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(2.0)
    assert p.poll() is None, "search finished before it could be interrupted"
    sent = time.perf_counter()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    waited = time.perf_counter() - sent
    assert p.returncode == 130 and err.strip() == "interrupted" and out == ""
    # The search checks for Ctrl-C between chunks of 2^21 configurations (milliseconds each); the
    # bound here is loose on purpose (shared CI machine), the measured figure is in bench/RESULTS.md.
    assert waited < 5.0


def test_killing_an_output_write_never_truncates_the_previous_file(tmp_path):
    """SIGKILL at many points of a run that writes --output: the file is always either the old
    content or a complete new answer."""
    import os
    import signal
    import time

    out = tmp_path / "answer.json"
    out.write_text('{"previous": true}\n')
    args = [
        str(BIN / "timescale-frontier"),
        "-H",
        "tpu_v4",
        "--hours",
        "12",
        "--format",
        "json",
        "--top",
        "2000",
        "-o",
        str(out),
        "-q",
    ]
    outcomes = set()
    for delay in [0.05 * i for i in range(16)]:
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        doc = json.loads(out.read_text())  # never truncated: always parses
        outcomes.add("previous" if doc == {"previous": True} else "new")
        if "best" in doc:
            assert len(doc["top"]) == 2000
        out.write_text('{"previous": true}\n')
    assert "previous" in outcomes


def test_many_nodes_answer_with_a_sharding_a_micro_batch_and_a_recompute_choice():
    """Issue 11: 64 H100s (8 nodes) answer with a sharding, a micro-batch and a recomputation
    choice, and say why; 512 H100s and 256 TPU v5e chips answer too."""
    r = CliRunner().invoke(frontier_main, ["--hardware", "h100_sxm", "--hours", "12", "--chips", "64", "-q"])
    assert r.exit_code == 0, r.output
    best = next(line for line in r.output.splitlines() if line.startswith("Best:"))
    assert "recompute" in best and ("micro-batch" in best or "no gradient accumulation" in best)
    assert "on 64 chips, FSDP" in r.output or "on 64 chips, DP" in r.output
    why = r.output.split("Why:")[1]
    assert "micro-step" in why and "recomputation" in why and "Other shardings" in why
    for args in (["-H", "h100_sxm", "--chips", "512"], ["-H", "tpu_v5e", "--chips", "256"]):
        r = CliRunner().invoke(frontier_main, [*args, "--hours", "12", "-q", "--format", "json"])
        assert r.exit_code == 0, r.output
        doc = json.loads(r.output)
        assert doc["chips"] == int(args[-1]) and doc["best"]["dp"] * doc["best"]["tp"] == doc["chips"]


def test_json_keys_come_out_in_the_same_order_in_every_process():
    # Core objects without their own to_dict (the budget, the rejection counts) were rendered in
    # PyO3's hash order, different in every process: piped or committed JSON changed from run to run.
    def key_paths(x: object, at: str = "") -> list[str]:
        if isinstance(x, dict):
            return [p for k, v in x.items() for p in [f"{at}/{k}", *key_paths(v, f"{at}/{k}")]]
        if isinstance(x, list):
            return [p for v in x[:3] for p in key_paths(v, at + "[]")]
        return []

    args = ("timescale-frontier", "-H", "tpu_v4", "--hours", "1", "--d-model", "512,1024", "--n-layers", "4,8",
            "--format", "json")  # fmt: skip
    orders = {tuple(key_paths(json.loads(run(*args).stdout))) for _ in range(3)}
    assert len(orders) == 1
    paths = next(iter(orders))
    budget = [p.rsplit("/", 1)[1] for p in paths if p.startswith("/budget/")]
    assert budget == sorted(budget) and "seconds" in budget
