"""Many chips: shardings chosen by the core, their memory and communication, the CLI's chip-count
choice under a money budget, and the communication volumes checked against XLA's compiled
collectives on a mesh of host devices."""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from timescale_frontier import Architecture, Hardware, InvalidInputError, predict, search
from timescale_frontier.cli import frontier_main, main

LLAMA_7B = dict(d_model=4096, n_layers=32, n_heads=32, d_ff=11008, mlp="swiglu", vocab_size=32000, batch_size=16)


def test_collective_bandwidth_from_links_by_hand():
    # TPU v4: 6 one-way ICI links of 4.5e10 B/s, all driven at once by a torus collective.
    assert Hardware.load("tpu_v4").collective_bytes_per_s == pytest.approx(6 * 4.5e10)
    # H100: NVLink 4's 9e11 B/s per GPU counts both directions.
    assert Hardware.load("h100_sxm").collective_bytes_per_s == pytest.approx(4.5e11)
    assert Hardware.load("cpu").collective_bytes_per_s is None


def test_a_model_too_big_for_one_chip_trains_sharded_on_eight():
    hw = Hardware.load("h100_sxm")
    a = Architecture(**LLAMA_7B)
    one = predict(a, hw, 24)
    assert not one.fits_memory and "does not fit in the chip's usable memory" in one.warnings
    eight = predict(a, hw, 24, chips=8)
    assert eight.fits_memory and eight.loss is not None and eight.chips == 8
    st = eight.step
    assert st.sharding != "DP 8" and st.memory_bytes <= hw.hbm_bytes * hw.usable_hbm_fraction
    by_name = {s.sharding: s for s in eight.shardings}
    # Plain data parallelism keeps all 16 bytes per parameter on every chip: it cannot fit.
    assert not by_name["DP 8"].fits_memory and by_name["DP 8"].step.memory_bytes > 16 * one.params
    # The chosen sharding is the fastest of those that fit.
    fitting = [s.step for s in eight.shardings if s.divides and s.fits_memory]
    assert st.step_time_s == min(s.step_time_s for s in fitting)
    # Step time = max(compute, data-parallel communication) + tensor-parallel communication.
    assert st.step_time_s == pytest.approx(max(st.compute_s, st.dp_comm_s) + st.tp_comm_s)
    assert st.bound in ("memory", "compute", "communication")
    assert eight.tokens == eight.steps * a.batch_size * a.seq_len


def test_data_parallel_volumes_by_hand():
    """DP over 4 chips of a small model: each chip all-reduces its fp32 gradients,
    2 (n-1)/n x params x 4 bytes; FSDP gathers the bf16 weights twice (2 (n-1)/n x params x 2)
    and reduce-scatters the fp32 gradients once ((n-1)/n x params x 4)."""
    hw = Hardware.load("h100_sxm")
    a = Architecture(64, 2, 4, seq_len=32, batch_size=8, vocab_size=256)
    p = predict(a, hw, 1, chips=4)
    n = p.params  # the whole model: DP and FSDP shards keep every layer
    by_name = {s.sharding: s.step for s in p.shardings}
    assert by_name["DP 4"].dp_comm_bytes == pytest.approx(2 * 3 / 4 * n * 4)
    assert by_name["FSDP 4"].dp_comm_bytes == pytest.approx(2 * 3 / 4 * n * 2 + 3 / 4 * n * 4)
    assert by_name["DP 4"].tp_comm_bytes == 0
    # TP 4 over 4 heads: (4 L + 2) all-reduces of (8 x 32 tokens) x 64 x 2 bytes, 2 x 3/4 each.
    assert by_name["TP 4"].tp_comm_bytes == pytest.approx((4 * 2 + 2) * 2 * 3 / 4 * 8 * 32 * 64 * 2)


def test_chips_must_be_backed_by_an_interconnect():
    with pytest.raises(InvalidInputError, match="needs an \\[interconnect\\] section"):
        predict(Architecture(64, 2, 4), Hardware.load("cpu"), 1, chips=2)
    with pytest.raises(InvalidInputError, match="at most interconnect.max_chips = 50944"):
        search(Hardware.load("tpu_v5e"), 1, {"d_model": [1024]}, chips=65536)


def test_many_nodes_send_a_share_of_each_collective_between_nodes():
    """16 H100s in 2 nodes of 8: a DP all-reduce of the S gradient bytes runs hierarchically,
    2 x 7/8 S over NVLink and 2 x 1/2 x S/8 (each GPU's 1/8 share) over InfiniBand; on 8 chips
    the same tensor stays inside NVLink (2 x 7/8 S)."""
    hw = Hardware.load("h100_sxm")
    a = Architecture(1024, 8, 8, seq_len=1024, batch_size=64)
    one_node = {s.sharding: s.step for s in predict(a, hw, 1, chips=8).shardings}["DP 8"]
    two_nodes = {s.sharding: s.step for s in predict(a, hw, 1, chips=16).shardings}["DP 16"]
    grads = predict(a, hw, 1).params * 4  # fp32 gradients of the whole model
    nvlink, ib = hw.collective_bytes_per_s, hw.core.inter_node_bytes_per_s
    assert (nvlink, ib) == (4.5e11, 5e10)
    assert one_node.dp_comm_s == pytest.approx(2 * 7 / 8 * grads / nvlink)
    assert two_nodes.dp_comm_s == pytest.approx(2 * 7 / 8 * grads / nvlink + 2 * 1 / 2 * grads / 8 / ib)
    assert two_nodes.dp_comm_bytes == pytest.approx(2 * 7 / 8 * grads + grads / 8)


def test_groups_beyond_a_slice_or_a_pod_send_a_share_over_the_tier_above():
    """Multi-slice TPUs and GPU pods (rust/core/src/network.rs): a DP all-reduce of the S gradient
    bytes over 6,144 chips runs one ring per tier, each over the share the tier below left."""
    a = Architecture(512, 2, 4, seq_len=128, batch_size=6144)
    grads = predict(a, Hardware.load("tpu_v4"), 1).params * 4  # fp32 gradients of the whole model
    # TPU v4, PaLM's layout: two slices of 3,072 over the data-centre network, 2 x (1 - 1/3072) S
    # over ICI (6 links of 4.5e10 B/s) and 2 x (1/3072 - 1/6144) S = 2 x S/6144 over DCN.
    v4 = Hardware.load("tpu_v4")
    ici, dcn = v4.collective_bytes_per_s, v4.core.inter_node_bytes_per_s
    assert (ici, dcn, v4.core.chips_per_node) == (2.7e11, 6.25e9, 3072)
    dp = {s.sharding: s.step for s in predict(a, v4, 1, chips=6144).shardings}["DP 6144"]
    assert dp.dp_comm_s == pytest.approx(2 * (1 - 1 / 3072) * grads / ici + 2 * grads / 6144 / dcn)
    # H100 in Meta's pods of 3,072 (1:7 above them): 2 x 7/8 S over NVLink, 2 x (1/8 - 1/3072) S
    # between the 384 nodes of a pod, 2 x (1/3072 - 1/6144) S between the two pods.
    h100 = Hardware.load("h100_sxm")
    nvlink, ib, pods = h100.collective_bytes_per_s, h100.core.inter_node_bytes_per_s, h100.core.inter_pod_bytes_per_s
    assert (h100.core.chips_per_pod, ib / pods) == (3072, pytest.approx(7, rel=1e-4))
    dp = {s.sharding: s.step for s in predict(a, h100, 1, chips=6144).shardings}["DP 6144"]
    expected = 2 * 7 / 8 * grads / nvlink + 2 * (1 / 8 - 1 / 3072) * grads / ib + 2 * grads / 6144 / pods
    assert dp.dp_comm_s == pytest.approx(expected)
    assert dp.dp_comm_bytes == pytest.approx(2 * (1 - 1 / 6144) * grads)


@pytest.mark.parametrize(
    "hardware, chips, space",
    [
        # Meta-scale H100 (pods of 3,072 at 1:7 above them) and PaLM's 6,144 TPU v4 chips (two
        # slices over DCN): models large enough to use the chips.
        ("h100_sxm", 16384, ["--d-model", "8192,12288", "--n-layers", "64,96", "--batch-size", "4096,8192"]),
        ("tpu_v4", 6144, ["--d-model", "6144,12288", "--n-layers", "48,96", "--batch-size", "6144,12288"]),
    ],
)
def test_the_cli_answers_on_tens_of_thousands_of_gpus_and_palms_tpu_count(hardware, chips, space):
    args = ["--hardware", hardware, "--hours", "24", "--chips", str(chips), *space, "--format", "json", "-q"]
    r = CliRunner().invoke(frontier_main, args)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["chips"] == chips and doc["feasible"] > 0 and " x " in doc["best"]["sharding"]


def test_search_on_many_chips_reports_the_sharding_and_beats_one_chip():
    hw = Hardware.load("h100_sxm")
    space = {"d_model": "1024:4096:512", "n_layers": "8:32:8", "seq_len": [2048], "batch_size": [64, 256]}
    one = search(hw, 24, space)
    eight = search(hw, 24, space, chips=8)
    assert eight.chips == 8 and eight.best.step.sharding != "single chip"
    # Eight times the chips for the same hours: more tokens, a lower loss.
    assert eight.best.loss < one.best.loss
    assert any("On 8 chips it trains with" in line for line in eight.explain())
    doc = eight.to_dict()
    assert doc["chips"] == 8 and doc["best"]["sharding"] == eight.best.step.sharding


def test_cli_chooses_the_chip_count_for_a_money_budget():
    args = ["--hardware", "h100_sxm", "--budget-usd", "2000", "--chips", "1,2,4,8", "-q"]
    args += ["--d-model", "1024:4096:512", "--n-layers", "8:32:8", "--seq-len", "2048", "--batch-size", "64,256"]
    r = CliRunner().invoke(frontier_main, [*args, "--format", "json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    counts = doc["chip_counts"]
    assert [c["chips"] for c in counts] == [1, 2, 4, 8]
    # The same money buys 1/N of the hours on N chips.
    for c in counts:
        assert c["hours"] == pytest.approx(2000 / 3.0 / c["chips"])
    lowest = min(counts, key=lambda c: (c["loss"], c["chips"]))
    assert lowest["lowest_loss"] and sum(c["lowest_loss"] for c in counts) == 1
    # The chosen count is the lowest loss, or one tied with it within the model's uncertainty that
    # runs for fewer wall-clock hours (the same chip-hours: the money buys them).
    chosen = next(c for c in counts if c["chosen"])
    assert doc["chips"] == chosen["chips"] and doc["best"]["loss"] == pytest.approx(chosen["loss"])
    assert chosen is lowest or (lowest["tie_reason"] is not None and chosen["hours"] < lowest["hours"])
    assert all(c["hours"] >= chosen["hours"] for c in counts if c["tie_reason"] is not None)
    table = CliRunner().invoke(frontier_main, args)
    assert "Chip counts searched" in table.output and "*" in table.output
    if chosen is not lowest:
        assert "~ tied with the chosen count:" in table.output and "(lowest)" in table.output


def test_predict_cli_lists_every_sharding():
    r = CliRunner().invoke(
        main,
        ["predict", "--d-model", "4096", "--n-layers", "32", "--n-heads", "32", "--batch-size", "64",
         "-H", "h100_sxm", "--hours", "24", "--chips", "8"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "FSDP 8" in r.output and "TP 8" in r.output and "DOES NOT FIT" in r.output


XLA_CHECK = textwrap.dedent(
    """
    import json
    from timescale_frontier import Architecture, Hardware, predict
    from timescale_frontier.calibrate import collectives

    a = Architecture(64, 2, 4, seq_len=32, batch_size=8, vocab_size=256, activation_bytes=4.0,
                     attention="materialized")
    p = predict(a, Hardware.load("h100_sxm"), 1, chips=4)
    core = {s.sharding: s.step.dp_comm_bytes for s in p.shardings if s.step}
    out = {"params": p.params, "core": core}
    for name, fsdp in (("DP 4", False), ("FSDP 4", True)):
        out[name] = collectives.compiled_collectives(a, 4, fsdp)
    print(json.dumps(out))
    """
)


def test_communication_volumes_match_xlas_compiled_collectives():
    """DP and FSDP over a mesh of 4 host devices: the collectives XLA compiles into the training
    step carry the volume the core charges (ring factors applied to each collective's tensor)."""
    pytest.importorskip("jax", reason="the XLA check needs JAX (pip install '.[calibrate]')")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    p = subprocess.run([sys.executable, "-c", XLA_CHECK], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout.strip().splitlines()[-1])
    grad_bytes = doc["params"] * 4  # fp32 gradients
    n = 4
    ring = {"all-reduce": 2 * (n - 1) / n, "all-gather": (n - 1) / n, "reduce-scatter": (n - 1) / n}
    for name in ("DP 4", "FSDP 4"):
        coll = doc[name]
        assert set(coll) <= set(ring), coll
        # Every byte of gradient is reduced once (a 4-byte loss scalar rides along).
        reduced = coll.get("all-reduce", {}).get("tensor_bytes", 0) + coll.get("reduce-scatter", {}).get(
            "tensor_bytes", 0
        )
        assert reduced == pytest.approx(grad_bytes, rel=0.01), coll
        link = sum(ring[k] * v["tensor_bytes"] for k, v in coll.items())
        if name == "DP 4":
            assert link == pytest.approx(doc["core"][name], rel=0.01)
        else:
            # XLA gathers the weights once and keeps them for the backward pass, where ZeRO-3
            # gathers again to hold only two layers (the memory the core charges); XLA's CPU
            # backend all-reduces the gradients where ZeRO-3 reduce-scatters them. Both move
            # 3 (n-1)/n x params bytes through each chip's links.
            assert coll["all-gather"]["tensor_bytes"] == pytest.approx(grad_bytes, rel=0.01)
            assert link == pytest.approx(doc["core"][name], rel=0.01)


def test_tokens_grow_sublinearly_with_chips_as_communication_rises():
    """Issue 6: on TPU v5e a 1.1B model needs 64 chips to fit (FSDP); from there, 4x the chips buy
    more tokens but less than 4x, and communication takes a growing share of each step."""
    hw = Hardware.load("tpu_v5e")
    a = Architecture(2048, 20, 16, seq_len=2048, batch_size=256)
    assert not predict(a, hw, 12, chips=32).fits_memory
    runs = [predict(a, hw, 12, chips=c) for c in (64, 128, 256)]
    assert all(p.fits_memory for p in runs)
    tokens = [p.tokens for p in runs]
    assert tokens[0] < tokens[1] < tokens[2]
    per_chip = [p.tokens / p.chips for p in runs]
    assert per_chip[0] > per_chip[1] > per_chip[2]
    share = [p.step.dp_comm_s / p.step.compute_s for p in runs]
    assert share[0] < share[1] < share[2]


def test_cli_256_chips_on_tpu_v5e_returns_a_sharded_plan():
    r = CliRunner().invoke(frontier_main, ["--chips", "256", "--hardware", "tpu_v5e", "--hours", "12", "-q",
                                           "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    best = json.loads(r.output)["best"]
    assert best["sharding"] != "single chip" and best["dp"] * best["tp"] == 256
    assert best["memory_bytes"] <= 16 * 2**30


@settings(max_examples=60, deadline=None)
@given(
    d=st.sampled_from([64, 256, 1024, 4096, 8192]),
    layers=st.integers(1, 96),
    heads=st.sampled_from([1, 2, 3, 8, 32]),
    batch=st.integers(1, 512),
    chips=st.sampled_from([2, 3, 4, 8]),
    hours=st.floats(1e-4, 1e4),
)
def test_many_chip_predictions_are_finite_or_a_clear_error(d, layers, heads, batch, chips, hours):
    """No valid input gives a NaN or an infinity on many chips: a configuration that no sharding
    divides raises InvalidInputError; one that fits nowhere reports its smallest sharding."""
    hw = Hardware.load("h100_sxm")
    a = Architecture(d, layers, heads, head_dim=64, batch_size=batch, seq_len=1024)
    try:
        p = predict(a, hw, hours, chips=chips)
    except InvalidInputError as e:
        assert "split over" in str(e)
        return
    for k in ("params", "flops_per_step", "memcpy_bytes_per_step", "memory_bytes", "step_time_s", "steps", "tokens"):
        v = getattr(p, k)
        assert math.isfinite(v) and v >= 0, (k, v)
    assert p.loss is None or math.isfinite(p.loss)
    assert p.step.dp * p.step.tp == chips
    # The file's capacity, read from it by hand: 80 GiB, 90% usable.
    assert p.fits_memory == (p.memory_bytes <= 0.9 * 80 * 2**30)
