"""Property-based fuzzing: loaders and the vectorized evaluate either return finite numbers or
raise a TimescaleError; nothing else (no other exception, no NaN, no infinity)."""

import dataclasses
import math
import string
import tomllib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import timescale_frontier as tf
from timescale_frontier._data import _fields
from timescale_frontier.hardware import SHIPPED_DIR

BASE = tomllib.loads((SHIPPED_DIR / "tpu_v4.toml").read_text())
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.text(max_size=12),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.text(string.ascii_lowercase, max_size=5), scalars, max_size=2),
)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f'"{k}" = {toml_value(x)}' for k, x in v.items()) + "}"


def dump(doc: dict) -> str:
    top = [f'"{k}" = {toml_value(v)}' for k, v in doc.items() if not isinstance(v, dict)]
    tables = [
        f'["{k}"]\n' + "\n".join(f'"{kk}" = {toml_value(vv)}' for kk, vv in v.items())
        for k, v in doc.items()
        if isinstance(v, dict)
    ]
    return "\n".join(top) + "\n\n" + "\n\n".join(tables) + "\n"


def assert_finite_hardware(hw: tf.Hardware) -> None:
    for v in (
        hw.peak_bf16_flops_per_s,
        hw.hbm_bytes,
        hw.hbm_bytes_per_s,
        hw.usable_hbm_fraction,
        hw.step_time_for(tf.Architecture(1024, 8, 8)),
    ):
        assert math.isfinite(v) and v > 0


@FUZZ
@given(
    section=st.sampled_from(["", "chip", "step_time", "price", "interconnect"]),
    key=st.text(max_size=25),
    value=values,
    action=st.sampled_from(["replace", "replace", "replace", "drop", "add"]),
)
def test_mutated_hardware_files(tmp_path_factory, section, key, value, action):
    """Mostly an existing key's value replaced (so the range checks, not the unknown-key check,
    are what the fuzzer reaches), sometimes a key dropped or an unknown one added."""
    doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    target = doc if not section else doc[section]
    keys = list(target)
    existing = keys[len(key) % len(keys)] if keys else "x"
    if action == "drop" and keys:
        target.pop(existing)
    elif action == "add":
        target[key if key and not key.isdigit() else "x"] = value
    else:
        target[existing] = value
    p = tmp_path_factory.mktemp("hw") / "h.toml"
    p.write_text(dump(doc))
    try:
        hw = tf.Hardware.load(p)
    except tf.TimescaleError as e:
        assert str(e).startswith(str(p)) and "\n" not in str(e)
        return
    assert_finite_hardware(hw)


@FUZZ
@given(data=st.binary(max_size=300))
def test_random_bytes_as_hardware_and_space(tmp_path_factory, data):
    p: Path = tmp_path_factory.mktemp("raw") / "x.toml"
    p.write_bytes(data)
    for load in (tf.Hardware.load, tf.load_space):
        try:
            loaded = load(p)
        except tf.TimescaleError as e:
            # A one-line error that names the file, whatever the bytes.
            assert str(e).startswith(str(p)) and "\n" not in str(e), str(e)
        else:
            # Random bytes that happen to parse: a complete hardware file or a space of known axes.
            assert loaded is not None


@FUZZ
@given(
    axis=st.sampled_from(["d_model", "n_layers", "ffn_mult", "mlp", "tied_embeddings", "batch_size"]),
    text=st.text(alphabet="0123456789:.,*-e abcnaf", max_size=20),
)
def test_axis_strings(axis, text):
    try:
        values = tf.parse_axis(axis, text)
    except tf.TimescaleError:
        return
    assert values and len(values) <= 1_000_000


ints = st.integers(min_value=-(2**40), max_value=2**40)


@FUZZ
@given(
    cols=st.fixed_dictionaries(
        {
            k: st.lists(ints, min_size=1, max_size=4)
            for k in ("d_model", "n_layers", "n_heads", "d_ff", "seq_len", "batch_size", "vocab_size")
        }
    ),
    hours=st.floats(allow_nan=True, allow_infinity=True),
)
def test_evaluate_outputs_are_finite_or_refused(cols, hours):
    n = min(len(v) for v in cols.values())
    arrays = {k: np.array(v[:n]) for k, v in cols.items()}
    arrays["head_dim"] = np.ones(n, dtype=np.int64)
    try:
        out = tf.evaluate(tf.Hardware.load("tpu_v4"), hours, **arrays)
    except tf.TimescaleError:
        return
    for f in dataclasses.fields(out):
        v = getattr(out, f.name)
        if f.name == "loss":
            assert np.all(np.isfinite(v.compressed()))
        else:
            assert np.all(np.isfinite(np.asarray(v, dtype=float))), f.name


@FUZZ
@given(
    hours=st.floats(allow_nan=True, allow_infinity=True),
    d=st.integers(1, 1 << 24),
    layers=st.integers(1, 1 << 24),
    b=st.integers(1, 1 << 24),
    s=st.integers(1, 1 << 24),
)
def test_predict_is_finite_or_refused(hours, d, layers, b, s):
    try:
        p = tf.predict(
            tf.Architecture(d, layers, 1, head_dim=d, seq_len=s, batch_size=b), tf.Hardware.load("h200_sxm"), hours
        )
    except tf.TimescaleError:
        return

    def floats(x, path=""):
        """Every float reachable from a core result, raw (not through as_data, which drops inf)."""
        if isinstance(x, float):
            yield path, x
        elif isinstance(x, list):
            for i, v in enumerate(x):
                yield from floats(v, f"{path}[{i}]")
        elif type(x).__module__ == "timescale_frontier._core":
            for k in _fields(type(x)):
                yield from floats(getattr(x, k), f"{path}.{k}")

    found = dict(floats(p))
    assert ".step.step_time_s" in found and ".budget.seconds" in found
    for k, v in found.items():
        assert math.isfinite(v), k
    assert p.loss is None or p.loss > 0
