import shutil
from pathlib import Path

import pytest

from timescale_frontier import Hardware, InvalidInputError
from timescale_frontier.hardware import SHIPPED_DIR, shipped_names

REQUIRED = {"tpu_v4", "tpu_v5e", "tpu_v5p", "tpu_v6e", "a100_40gb", "a100_80gb", "h100_sxm", "h200_sxm", "b200"}
REQUIRED |= {"mi300x", "mi325x", "gb200"}
#: Calibrated from published training throughput (data/published/): MosaicML's PyTorch FSDP runs.
PUBLISHED = {"a100_40gb", "a100_80gb", "h100_sxm"}
#: Calibrated on another stack's published runs by default (issue 24): NVIDIA's Megatron-core
#: tables, MaxText's TPU logs.
STACK_DEFAULT = {"b200": "megatron", "gb200": "megatron", "tpu_v5p": "maxtext", "tpu_v6e": "maxtext"}


def test_every_required_chip_is_shipped_and_loads():
    assert REQUIRED <= set(shipped_names())
    for name in shipped_names():
        hw = Hardware.load(name)
        # a source for every figure (the CPU file has no attention efficiency), the low-precision
        # matmul peaks where the chip has them (every accelerator has fp8 or int8)
        low = [k for k in hw.sources if k.startswith(("chip.peak_fp8", "chip.peak_int8", "chip.peak_fp4"))]
        assert all(v.strip() for v in hw.sources.values()) and len(hw.sources) - len(low) == (7 if name == "cpu" else 8)
        assert (name == "cpu") != bool(low)
        if name == "cpu":
            # measured on the development machine by `timescale calibrate` (provenance in the file)
            assert (
                hw.calibrated and hw.calibration["backend"] == "cpu" and "bench/calibration" in hw.calibration["source"]
            )
        elif name in PUBLISHED:
            # fitted to published training steps, with the provenance and the cross-validated error
            c = hw.calibration
            assert hw.calibrated and c["model"] == "rates" and "llm-foundry" in c["source"]
            assert c["heldout_median_abs_pct_error"] <= 8.0 and c["heldout_spearman"] >= 0.97
            assert hw.stack == "pytorch-fsdp"
        elif name in STACK_DEFAULT:
            # fitted to that stack's published rows: the table, the stack, the dense and MoE errors apart
            c = hw.calibration
            assert hw.calibrated and hw.stack == STACK_DEFAULT[name] and c["model"] == "rates"
            assert "throughput.csv (data/published/" in c["source"] and c["n_samples"] >= 14
            assert c["heldout_median_abs_pct_error_dense"] <= 8.0 and c["heldout_spearman"] >= 0.9
        else:
            # no measurements: a datasheet roofline with efficiencies derived from the calibrated GPUs
            assert not hw.calibrated and hw.step_time_model.startswith("roofline") and hw.device in ("gpu", "tpu")
            assert "calibrated a100_40gb, a100_80gb and h100_sxm" in hw.sources["step_time.flops_efficiency"]


def test_figures_from_the_reference_table():
    # ../shared/reference/accelerators.md
    assert Hardware.load("h100_sxm").peak_bf16_flops_per_s == 9.894e14
    assert Hardware.load("tpu_v5e").hbm_bytes == 16 * 2**30
    assert Hardware.load("mi300x").hbm_bytes_per_s == 5.3e12


def test_the_new_datasheet_files_and_the_network_tiers():
    """gb200 and mi325x as their datasheets state them (per GPU; the file cites each figure), and
    the tiers beyond one node: GPU pods with an oversubscribed tier above, TPU slices over DCN."""
    gb200 = Hardware.load("gb200")
    assert (gb200.peak_bf16_flops_per_s, gb200.hbm_bytes, gb200.hbm_bytes_per_s) == (2.5e15, 186e9, 8e12)
    network = (gb200.collective_bytes_per_s, gb200.core.chips_per_node, gb200.core.inter_node_bytes_per_s)
    assert network == (9e11, 72, 5e10)
    mi325x = Hardware.load("mi325x")
    assert (mi325x.peak_bf16_flops_per_s, mi325x.hbm_bytes, mi325x.hbm_bytes_per_s) == (1.3074e15, 256e9, 6e12)
    # The largest systems the networks describe (max_chips) and the tiers that get there.
    tiers = {
        name: (hw.max_chips, hw.core.chips_per_node, hw.core.chips_per_pod)
        for name in ("h100_sxm", "b200", "gb200", "tpu_v4", "tpu_v5e", "tpu_v5p", "tpu_v6e")
        for hw in [Hardware.load(name)]
    }
    assert tiers == {
        "h100_sxm": (100_000, 8, 3072),  # Colossus; Meta's pods of 3,072 GPUs
        "b200": (100_000, 8, 16_384),  # the DGX SuperPOD B200 RA's 64 scalable units
        "gb200": (100_000, 72, 9216),  # NVL72 racks; 128 racks in a SuperPOD
        "tpu_v4": (32_768, 3072, None),  # slices of 3,072 (PaLM ran two)
        "tpu_v5e": (50_944, 256, None),  # Google's 50,944-chip multi-slice job
        "tpu_v5p": (18_432, 6144, None),  # Multislice up to 18,432 chips
        "tpu_v6e": (100_000, 256, None),  # 100,000 Trillium chips per Jupiter fabric
    }
    # DCN per chip: v5e 2 x 100 Gbps, v6e 4 x 200 Gbps per 8-chip host; v5p 50 Gbps per chip.
    dcn = {n: Hardware.load(n).core.inter_node_bytes_per_s for n in ("tpu_v4", "tpu_v5e", "tpu_v5p", "tpu_v6e")}
    assert dcn == {"tpu_v4": 6.25e9, "tpu_v5e": 3.125e9, "tpu_v5p": 6.25e9, "tpu_v6e": 1.25e10}
    # Meta's 1:7 above the pod: the NIC's 5e10 B/s over 7.
    assert Hardware.load("h100_sxm").core.inter_pod_bytes_per_s == pytest.approx(5e10 / 7, rel=1e-4)
    assert "estimate" in Hardware.load("tpu_v4").notes["interconnect.inter_node_source"]


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("chips_per_pod = 3072", "chips_per_pod = 3076", r"interconnect.chips_per_pod = 3076 .*a multiple of"),
        ("inter_pod_bytes_per_s = 7.1429e+09\n", "", r"interconnect.inter_pod_bytes_per_s = missing"),
        ("chips_per_pod = 3072\n", "", r"interconnect.inter_pod_bytes_per_s = 7142900000 is invalid: expected absent"),
        ("inter_pod_source", "inter_pod_sauce", r"unknown key 'interconnect.inter_pod_sauce'"),
    ],
)
def test_bad_pod_tiers_name_the_key(tmp_path, old, new, message):
    text = (SHIPPED_DIR / "h100_sxm.toml").read_text()
    assert old in text
    p = tmp_path / "pods.toml"
    p.write_text(text.replace(old, new))
    with pytest.raises(InvalidInputError, match=message):
        Hardware.load(p)


def test_resolution_by_path_file_name_and_bare_name(tmp_path):
    by_name = Hardware.load("tpu_v4")
    assert Hardware.load("tpu_v4.toml").path == by_name.path
    copy = tmp_path / "mine.toml"
    shutil.copy(SHIPPED_DIR / "tpu_v4.toml", copy)
    assert Hardware.load(copy).hbm_bytes == by_name.hbm_bytes
    assert Hardware.load(str(copy)).path == copy


def _edit(tmp_path: Path, old: str, new: str) -> Path:
    text = (SHIPPED_DIR / "tpu_v4.toml").read_text()
    assert old in text
    p = tmp_path / "edited.toml"
    p.write_text(text.replace(old, new))
    return p


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "hbm_bytes_per_s = 1.2000e+12",
            "hbm_bytes_per_s = 1200",
            r"chip.hbm_bytes_per_s = 1200 .*bytes/s in \[1e\+09",
        ),
        ("hbm_bytes = 34359738368", "hbm_bytes = 32", r"chip.hbm_bytes = 32 .*bytes"),
        ("hbm_bytes = 34359738368", "hbm_bytes = nan", r"chip.hbm_bytes = nan"),
        ("hbm_bytes = 34359738368", 'hbm_bytes = "32 GiB"', r"chip.hbm_bytes = '32 GiB'"),
        ("usable_hbm_fraction = 0.9", "usable_hbm_fraction = 1.5", r"usable_hbm_fraction"),
        (
            "flops_efficiency = 0.78",
            "flop_efficiency = 0.78",
            r"unknown key 'step_time.flop_efficiency' \(did you mean 'step_time.flops_efficiency'|did you mean 'flops_efficiency'",
        ),
        ('model = "roofline_sum"', 'model = "magic"', r"step_time.model = 'magic'"),
        ('hbm_bytes_source = "32 GiB HBM2, Google Cloud TPU v4 docs"', "", r"missing key 'chip.hbm_bytes_source'"),
        ("calibrated = false", "calibrated = true", r"no \[calibration\] section"),
        ("calibrated = false", "calibrated = 1", r"calibrated = 1"),
        ("[chip]", "[chip]\n[chip]", r"invalid TOML"),
    ],
)
def test_bad_files_name_file_key_and_range(tmp_path, old, new, message):
    p = _edit(tmp_path, old, new)
    with pytest.raises(InvalidInputError, match=message) as e:
        Hardware.load(p)
    assert str(e.value).startswith(str(p)) and "\n" not in str(e.value)


def test_missing_binary_and_unknown_names(tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        Hardware.load(tmp_path / "absent.toml")
    with pytest.raises(InvalidInputError, match="did you mean 'tpu_v4'"):
        Hardware.load("tpu_v44")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(InvalidInputError, match="UTF-8"):
        Hardware.load(binary)
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(InvalidInputError, match="missing key 'name'"):
        Hardware.load(empty)


def test_another_calibrated_model_is_checked_like_the_default(tmp_path):
    """`--step-time-model flops` reads [calibration.alternatives.flops] through the same checks as
    [calibration]: a missing or out-of-range coefficient names the file and key."""
    from click.testing import CliRunner

    from timescale_frontier.cli import frontier_main
    from timescale_frontier.hardware import SHIPPED_DIR

    hw = Hardware.load("cpu").using("flops")
    assert hw.step_time_model == "flops" and "calibrated, flops" in hw.step_time_formula
    text = (SHIPPED_DIR / "cpu.toml").read_text()
    head, tail = text.split("[calibration.alternatives.flops]\n", 1)
    bad = tmp_path / "cpu.toml"
    bad.write_text(head + "[calibration.alternatives.flops]\n" + tail.replace("s_per_flop = ", "s_per_flopp = ", 1))
    r = CliRunner().invoke(frontier_main, ["-H", str(bad), "--hours", "1", "--step-time-model", "flops", "-q"])
    assert r.exit_code == 2 and "calibration.alternatives.flops.s_per_flop = missing is invalid" in r.output, r.output
    assert "Traceback" not in r.output
