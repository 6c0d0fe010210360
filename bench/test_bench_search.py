"""Benchmarks (pytest-benchmark) of the core against a NumPy implementation of the same formulas.
With --benchmark-disable (CI) each runs once as a smoke test; the assertions are on numbers, never
on time. Figures: bench/RESULTS.md."""

import os
import tomllib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from numpy_reference import metrics as np_metrics
from numpy_reference import search as np_search
from workloads import HARDWARE, HOURS, WIDTHS, dense_axes, random_columns, space_axes

from timescale_frontier import Hardware, evaluate, get_law, make_space, search

HW = Hardware.load(HARDWARE)
DENSE_HW = Hardware.load("b200")
# The NumPy reference implements the law as published (no evidence terms): compare against that.
LAW = get_law("hoffmann", loss_terms="none")
LAW_T = (LAW.e, LAW.a, LAW.b, LAW.alpha, LAW.beta)
# The file's calibrated `rates` model, from its own figures.
_FILE = tomllib.loads(HW.path.read_text())
assert _FILE["calibration"]["model"] == "rates" and HW.calibrated
MODEL = {k: _FILE["calibration"][k] for k in ("s_per_matmul_flop", "s_per_attention_flop", "s_per_byte", "overhead_s")}
COLS = random_columns(1_000_000)
#: The same rows as the API takes them: categorical columns as (names, codes), booleans as bools.
API_COLS = {
    **COLS,
    "mlp": (["gelu", "swiglu"], COLS["mlp"]),
    "attention": (["materialized", "flash"], COLS["attention"]),
    "tied_embeddings": COLS["tied_embeddings"].astype(bool),
}


def _np_space(size):
    axes = space_axes(size)
    axes = dict(
        axes,
        recompute=[0],
        micro_batch=[0],
        mlp=[0 if m == "gelu" else 1 for m in axes["mlp"]],
        attention=[1 if a == "flash" else 0 for a in axes["attention"]],
        tied_embeddings=[int(t) for t in axes["tied_embeddings"]],
    )
    return axes


def test_evaluate_1m_rust(benchmark):
    out = benchmark(evaluate, HW, HOURS, law=LAW, **API_COLS)
    ref = np_metrics(COLS, 4.0, 2.0, 4.0, MODEL, HOURS * 3600, LAW_T)
    for k, v in ref.items():
        np.testing.assert_allclose(getattr(out, k), v, rtol=1e-9, err_msg=k)


def test_evaluate_1m_numpy(benchmark):
    benchmark(np_metrics, COLS, 4.0, 2.0, 4.0, MODEL, HOURS * 3600, LAW_T)


_CORES = os.cpu_count() or 1
_POOL = ThreadPoolExecutor(_CORES)


def _move_bytes_only(cols: dict[str, np.ndarray], n: int) -> list[np.ndarray]:
    """What `evaluate` of these rows costs with no computation: read every input column once and
    allocate and write `evaluate`'s eleven output columns (ten float64, one bool), on every core
    (numpy's copies release the GIL). A floor for any implementation on this machine."""
    outs = [np.empty(n) for _ in range(10)] + [np.empty(n, dtype=bool)]
    ins = list(cols.values())
    parts = _CORES

    def part(k: int) -> int:
        lo, hi = k * n // parts, (k + 1) * n // parts
        total = sum(int(c[lo:hi].sum()) for c in ins)
        for o in outs:
            o[lo:hi] = 1
        return total

    sums = list(_POOL.map(part, range(parts)))
    assert sum(sums) == sum(int(c.sum()) for c in ins)
    return outs


def test_evaluate_1m_memory_floor(benchmark):
    """The floor under `evaluate 1M` (see _move_bytes_only): read in and write out, nothing else."""
    outs = benchmark(_move_bytes_only, COLS, len(COLS["d_model"]))
    assert len(outs) == 11 and all(len(o) == len(COLS["d_model"]) and o.all() for o in outs)


@pytest.mark.parametrize("size", list(WIDTHS))
def test_search_rust(benchmark, size):
    """The default law, every evidence term on (and so no aspect-ratio guard)."""
    space = make_space(space_axes(size))
    r = benchmark.pedantic(search, args=(HW, HOURS, space), kwargs={"top_k": 10}, rounds=3, iterations=1)
    assert r.evaluated == space.size and r.feasible > 0
    benchmark.extra_info.update(configs=space.size, feasible=r.feasible)


@pytest.mark.parametrize("size", list(WIDTHS))
def test_search_rust_plain_law(benchmark, size):
    """The same space with the law as published (its guards): the evidence terms' cost is the ratio
    of this run to test_search_rust's, measured in the same session."""
    space = make_space(space_axes(size))
    r = benchmark.pedantic(search, args=(HW, HOURS, space), kwargs={"top_k": 10, "law": LAW}, rounds=3, iterations=1)
    assert r.evaluated == space.size and r.feasible > 0
    benchmark.extra_info.update(configs=space.size, feasible=r.feasible)


def test_search_rust_dense_10m(benchmark):
    """Worst case for the kernel: guards opened so most configurations reach the loss (two powers)."""
    space = make_space(dense_axes())
    r = benchmark.pedantic(
        search,
        args=(DENSE_HW, HOURS, space),
        rounds=3,
        iterations=1,
        kwargs={"top_k": 10, "aspect_ratio": (1e-3, 1e6), "max_tokens_per_step": 1e12},
    )
    benchmark.extra_info.update(configs=space.size, feasible=r.feasible)
    assert r.feasible > 0.4 * space.size


@pytest.mark.parametrize("size", ["1M"])
def test_search_numpy_same_answer(benchmark, size):
    space = make_space(space_axes(size))
    ref = benchmark.pedantic(
        np_search,
        args=(
            _np_space(size),
            space.size,
            HW.hbm_bytes * HW.usable_hbm_fraction,
            MODEL,
            HOURS * 3600,
            LAW_T,
            10,
            (20.0, 200.0),
        ),
        rounds=1,
        iterations=1,
    )
    r = search(HW, HOURS, space, top_k=10, law=LAW)
    assert ref["feasible"] == r.feasible
    assert ref["best_index"] == r.best.index
    assert list(ref["top_index"]) == [c.index for c in r.top]
    np.testing.assert_allclose(ref["top_loss"], r.top.loss(), rtol=1e-12)
    assert list(ref["pareto_index"]) == sorted(c.index for c in r.pareto)


@pytest.mark.parametrize("chips", [2, 8])
def test_search_rust_many_chips_1m(benchmark, chips):
    """Many chips: every configuration under every sharding of the chips (3 for 2 chips, 7 for 8),
    each taking its fastest that fits. Same 1M space as test_search_rust[1M]."""
    space = make_space(space_axes("1M"))
    r = benchmark.pedantic(
        search, args=(HW, HOURS, space), kwargs={"top_k": 10, "chips": chips}, rounds=2, iterations=1
    )
    assert r.evaluated == space.size and r.feasible > 0 and r.chips == chips
    benchmark.extra_info.update(configs=space.size, feasible=r.feasible, sharding=r.best.step.sharding)
    # More chips for the same hours never leave the best loss worse than one chip's on this space.
    assert r.best.loss <= search(HW, HOURS, space, top_k=1).best.loss


def test_search_plan_512_h100(benchmark):
    """A 512-GPU plan over the default space (63M configurations with the recomputation and
    micro-batch axes): 64 nodes of 8, 19 shardings per configuration."""
    space = make_space()
    r = benchmark.pedantic(search, args=(HW, HOURS, space), kwargs={"chips": 512}, rounds=2, iterations=1)
    assert r.chips == 512 and r.evaluated == space.size and r.feasible > 0
    benchmark.extra_info.update(configs=space.size, feasible=r.feasible, sharding=r.best.step.sharding)


def test_search_plan_tpu_v5e_pod_auto(benchmark):
    """A TPU v5e pod, the counts --chips auto gave it when the file's network was one pod: the default
    space at 1, 2, 4, ..., 256 chips (9 searches of 63M configurations each, 566M in all), the best
    count chosen. (auto now goes on to 4096 over the data-centre network; the bench keeps its work.)"""
    # With --benchmark-disable (the test command) it checks the answer on a 16th of the space
    # (4 of 64 widths), 2.5 s instead of 18.5 s on one core; `make bench` times the whole.
    space = make_space({"d_model": "1024,2048,4096,8192"} if benchmark.disabled else None)
    tpu = Hardware.load("tpu_v5e")
    counts = [2**k for k in range(9)]
    r = benchmark.pedantic(search, args=(tpu, HOURS, space), kwargs={"chips": counts}, rounds=1, iterations=1)
    assert [c.chips for c in r.chip_counts] == [2**k for k in range(9)] and r.feasible > 0
    benchmark.extra_info.update(configs=9 * space.size, chips=r.chips)


@pytest.mark.parametrize("terms", [None, "none"])
def test_explain_tpu_v4_12h(benchmark, terms):
    """The explanation of the default run (tpu_v4, 12 h, default space) against the search itself
    (issue 22: at most 10% of it); with the plain law it also searches the shape without the guard."""
    import dataclasses

    r = search(Hardware.load("tpu_v4"), 12, law=get_law("besiroglu", loss_terms=terms), top_k=10)
    lines = benchmark.pedantic(lambda: dataclasses.replace(r).explain(), rounds=3, iterations=1)
    assert lines and lines == r.explain()
    benchmark.extra_info.update(search_s=r.elapsed_s)
