"""Published step times of other stacks (issue 24): the Megatron-core and MaxText tables read as
they are (layout columns, precision, MoE notes), every row priced or reported with the reason,
per-stack calibrations in a hardware file, --stack and --layout through the CLI."""

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from timescale_frontier._core import APPROXIMATE_ROW_WEIGHT
from timescale_frontier.calibrate import fit
from timescale_frontier.calibrate.records import load_measurements
from timescale_frontier.cli import frontier_main, main
from timescale_frontier.errors import InvalidInputError
from timescale_frontier.hardware import Hardware

DATA = Path(__file__).resolve().parents[2] / "data" / "published"
MEGATRON = DATA / "nvidia-megatron-throughput.csv"
MAXTEXT = DATA / "tpu-maxtext-throughput.csv"
BIN = Path(sys.executable).parent


def test_megatron_rows_read_with_their_layout_precision_and_experts():
    skipped = []
    rows = load_measurements(MEGATRON, "all", Hardware.load("gb200"), skipped)
    by_id = {m.row_id: m for m in rows}
    # Row 2001 (DeepSeek-V3 on 256 GB200, MXFP8): TP 1, PP 4 (VP 4), EP 64, DP 256 / 4 = 64, the
    # distributed optimizer; 256 routed experts top-8 + 1 shared (its notes).
    ds = by_id["2001"]
    lay = ds.as_layout()
    assert (lay.dp, lay.tp, lay.pp, lay.vp, lay.cp, lay.ep, lay.zero, lay.matmul) == (64, 1, 4, 4, 1, 64, 1, "fp8")
    assert (ds.arch.experts, ds.arch.top_k, ds.arch.shared_experts) == (256, 8, 1)
    assert ds.stack == "megatron"
    # Every GB200 row is priced. Row 2120 prints EP 64 at TP 1 x PP 8 x DP 32: a pipeline stage has
    # 256 / 8 = 32 chips, so EP 64 cannot run; it is priced at gcd(64, 32) = 32 and says so.
    assert skipped == []
    odd = by_id["2120"]
    assert (odd.as_layout().ep, odd.as_layout().dp, odd.as_layout().pp) == (32, 32, 8)
    assert "ep = 64 exceeds the 32 chips of a pipeline stage" in odd.note and "priced at ep = 32" in odd.note
    assert ds.note == "" and ds.weight == 1.0


def test_approximate_rows_are_kept_at_the_cores_weight_and_say_so(tmp_path):
    # The TPU table marks its MLPerf rows approximate (intervals that include an evaluation pass):
    # rows 1053-1063 on v5p. They count half (the core's APPROXIMATE_ROW_WEIGHT); recipe rows 1.
    rows = {m.row_id: m for m in load_measurements(MAXTEXT, "all", Hardware.load("tpu_v5p"))}
    assert APPROXIMATE_ROW_WEIGHT == 0.5
    assert rows["1053"].weight == 0.5 and "approximate (a bound" in rows["1053"].note
    assert sorted(k for k, m in rows.items() if m.weight == 0.5) == [
        "1053",
        "1054",
        "1055",
        "1056",
        "1061",
        "1062",
        "1063",
    ]
    assert all(m.note == "" for k, m in rows.items() if m.weight == 1.0)
    # The fit sees them: the features carry each row's weight, and the rates differ from a fit
    # that counts every row once.
    hw = Hardware.load("tpu_v5p").core
    ordered = list(rows.values())
    feats = fit.features(ordered, hw)
    assert feats["weight"].tolist() == [m.weight for m in ordered]
    t = np.array([m.step_time_s for m in ordered])
    weighted = fit.fit_model("rates", feats, t).coeffs["overhead_s"]
    flat = fit.fit_model("rates", {**feats, "weight": np.ones(len(t))}, t).coeffs["overhead_s"]
    assert weighted != pytest.approx(flat, rel=0.01)
    # Anything but a yes or a no in the column is an error naming it.
    with MAXTEXT.open(newline="") as f:
        table = list(csv.DictReader(f))
    row = next(r for r in table if r["row_id"] == "1053")
    bad = tmp_path / "bad.csv"
    with bad.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow({**row, "approximate": "maybe"})
    with pytest.raises(InvalidInputError, match="approximate = 'maybe' is invalid: expected true or false"):
        load_measurements(bad, "all", Hardware.load("tpu_v5p"))


def test_a_rows_weight_scales_its_squared_error_in_the_fit():
    # One term, two rows of the same work (x = 1) measured at 1 s and 2 s; relative error is
    # minimised: sum w_i (c / t_i - 1)^2 -> c = (w1 + w2 / 2) / (w1 + w2 / 4). Equal weights: 1.5 /
    # 1.25 = 1.2 s; the 2 s row at weight 1/2: 1.25 / 1.125 = 1.111 s (by hand).
    t = np.array([1.0, 2.0])
    feats = {"flops": np.ones(2), "exposed": np.zeros(2), "comm": np.zeros(2)}
    for weight, expected in ((np.ones(2), 1.2), (np.array([1.0, 0.5]), 1.25 / 1.125)):
        c = fit._solve({**feats, "weight": weight}, ("flops",), t)
        assert fit._compute(c, feats, ("flops",)) == pytest.approx([expected, expected])


def test_maxtext_rows_read_with_fsdp_and_int8():
    rows = load_measurements(MAXTEXT, "all", Hardware.load("tpu_v6e"))
    first = next(m for m in rows if m.row_id == "1001")  # GPT-3 175B, FSDP over 256 v6e chips, AQT int8
    lay = first.as_layout()
    assert (lay.dp, lay.tp, lay.zero, lay.matmul) == (256, 1, 3, "int8")
    assert first.arch.recompute == "full" and first.stack == "maxtext"


def test_validate_json_lists_every_row_and_every_unpriced_row():
    r = CliRunner().invoke(
        main, ["validate", "-H", "gb200", "--measurements", str(MEGATRON), "--stack", "megatron", "--format", "json"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["stack"] == "megatron" and doc["n"] == len(doc["rows"]) == 94
    assert doc["unpriced"] == []
    odd = next(x for x in doc["rows"] if x["row_id"] == "2120")
    assert "EP 32" in odd["layout"] and "priced at ep = 32" in odd["note"] and odd["weight"] == 1.0
    row = next(x for x in doc["rows"] if x["row_id"] == "2001")
    assert row["moe"] and row["layout"].startswith("ZeRO-1 DP 64 x PP 4 (VP 4) x EP 64")
    assert row["error_pct"] == pytest.approx(100 * (row["predicted_step_time_s"] / row["measured_step_time_s"] - 1))


def test_a_row_the_model_cannot_express_is_reported_not_fatal(tmp_path):
    # Row 2001 twice, the second an MoE row whose notes name no experts: priced and reported.
    lines = MEGATRON.read_text().splitlines()
    row = next(line for line in lines if line.startswith("2001,"))
    f = tmp_path / "two.csv"
    f.write_text("\n".join([lines[0], row, "9001," + row[5:].replace("256 routed experts top-8", "routed experts")]))
    r = CliRunner().invoke(main, ["validate", "-H", "gb200", "--measurements", str(f), "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert [x["row_id"] for x in doc["rows"]] == ["2001"]
    assert [u["row_id"] for u in doc["unpriced"]] == ["9001"] and "N experts top-K" in doc["unpriced"][0]["reason"]


def test_a_file_holds_a_calibration_per_stack():
    h100 = Hardware.load("h100_sxm")
    assert h100.stack == "pytorch-fsdp" and h100.stacks == ("pytorch-fsdp", "megatron")
    mega = Hardware.load("h100_sxm", stack="megatron")
    assert mega.stack == "megatron" and mega.calibration["n_samples"] >= 150
    assert mega.core.calibrated_model == "rates" and mega.core != h100.core
    with pytest.raises(
        InvalidInputError, match="stack = 'maxtext' is invalid: expected one of the file's calibrations"
    ):
        Hardware.load("h100_sxm", stack="maxtext")
    # The default of a file calibrated on one stack only.
    assert Hardware.load("tpu_v6e").stack == "maxtext" and Hardware.load("b200").stack == "megatron"


def test_calibrate_from_a_stack_writes_it_beside_the_default(tmp_path):
    out = tmp_path / "h100.toml"
    shutil.copy(Hardware.load("h100_sxm").path, out)
    text = out.read_text()
    # A file without the megatron stack: calibrating it adds [stacks.megatron], the default stays.
    start = text.index("\n[stacks.megatron]")
    out.write_text(text[:start] + "\n")
    r = CliRunner().invoke(
        main, ["calibrate", "-H", str(out), "--from", str(MEGATRON), "--stack", "megatron", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    hw = Hardware.load(out)
    assert hw.stack == "pytorch-fsdp" and hw.stacks == ("pytorch-fsdp", "megatron")
    assert Hardware.load(out, stack="megatron").calibration["heldout_median_abs_pct_error"] < 8.0


def test_predict_with_a_layout_and_a_stack_through_the_cli():
    args = ["predict", "-H", "h100_sxm", "--stack", "megatron", "--hours", "24", "--d-model", "8192",
            "--n-layers", "80", "--n-heads", "64", "--n-kv-heads", "8", "--d-ff", "28672", "--mlp", "swiglu",
            "--seq-len", "4096", "--batch-size", "512", "--micro-batch", "1", "--format", "json",
            "--layout", "tp=8,pp=4,vp=5,dp=8,zero=1,sp=true,matmul=fp8"]  # fmt: skip
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["chips"] == 256 and doc["step"]["sharding"] == "ZeRO-1 DP 8 x TP 8 SP x PP 4 (VP 5), FP8 matmuls"
    assert doc["step"]["bubble_s"] > 0 and doc["step"]["pp_comm_s"] > 0
    bad = CliRunner().invoke(main, [*args[:-1], "tp=8,pp=4,bogus=1"])
    assert bad.exit_code != 0 and "layout = 'tp=8,pp=4,bogus=1' is invalid" in bad.output


@pytest.mark.parametrize(
    ("hardware", "hours", "chips", "low"), [("tpu_v5p", "12", "256", "INT8"), ("h100_sxm", "24", "1024", "FP8")]
)
def test_many_chip_answers_name_their_layout(hardware, hours, chips, low):
    r = CliRunner().invoke(frontier_main, ["-H", hardware, "--hours", hours, "--chips", chips, "-q", "--top", "1"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert f"layouts of this configuration on {chips} chips" in text and "the fastest that fits is" in text
    assert f"With {low} matmuls" in text and "the loss law does not price low-precision training" in text


def test_an_answer_names_the_per_step_overhead_its_batch_spreads():
    """TPU v5p's MaxText calibration fits a per-step overhead (1.23 s, poorly identified by 7B-405B
    rows, README) that pushes its answers to large batches: the batch's explanation names it, read
    here from the shipped file. TPU v6e's calibration fits none, and its answer says nothing of it."""
    import tomllib

    from timescale_frontier.hardware import SHIPPED_DIR

    def overhead(name: str) -> float:
        return tomllib.loads((SHIPPED_DIR / f"{name}.toml").read_text())["calibration"]["overhead_s"]

    r = CliRunner().invoke(frontier_main, ["-H", "tpu_v5p", "--hours", "12", "--chips", "256", "-q", "--top", "1"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert f"includes the file's fixed {overhead('tpu_v5p'):.4g} s per step (its per-step overhead, calibrated)" in text
    assert overhead("tpu_v6e") == 0.0
    r = CliRunner().invoke(frontier_main, ["-H", "tpu_v6e", "--hours", "12", "--chips", "256", "-q", "--top", "1"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert "Its batch is a trade-off" in text and "per-step overhead" not in text
