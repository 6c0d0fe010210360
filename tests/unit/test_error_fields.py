"""Errors raised in Python carry ``field``, ``value`` and ``expected``, as the core's do, and their
messages are the ones they had before they carried them (each hard-coded below as it read then)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tomlkit

from timescale_frontier import EmptySpaceError, Hardware, InvalidInputError, evaluate
from timescale_frontier._files import write_atomic
from timescale_frontier.calibrate.records import load_measurements
from timescale_frontier.hardware import SHIPPED_DIR
from timescale_frontier.loss import fit_law_with_shape, get_law, load_runs, load_shape_runs
from timescale_frontier.space import load_space, make_space, parse_axis

FIELDS = (
    "activation_bytes, attention, batch_size, d_ff, d_model, experts, head_dim, micro_batch, mlp, n_heads, "
    "n_kv_heads, n_layers, optimizer_bytes, param_bytes, recompute, seq_len, shared_experts, tied_embeddings, "
    "top_k, vocab_size"
)
AXES = (
    "d_model, n_layers, head_dim, kv_group, mlp, ffn_mult, attention, tied_embeddings, vocab_size, seq_len, "
    "recompute, micro_batch, batch_size"
)


def _hardware_copy(tmp: Path, name: str, edit: Callable[[Any], None] | None = None, prefix: str = "") -> Path:
    """A copy of the shipped tpu_v4 file in ``tmp``, edited (as TOML) and prefixed (as text)."""
    doc = tomlkit.parse((SHIPPED_DIR / "tpu_v4.toml").read_text(encoding="utf-8"))
    if edit is not None:
        edit(doc)
    path = tmp / name
    path.write_text(prefix + tomlkit.dumps(doc), encoding="utf-8")
    return path


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def _evaluate(tpu_v4: Hardware, **columns: Any) -> None:
    evaluate(tpu_v4, 1, **{"d_model": 512, "n_layers": 8, "n_heads": 8, **columns})


def _set_hbm(doc: Any) -> None:
    doc["chip"]["hbm_bytes"] = "x"


def _misspell_hbm(doc: Any) -> None:
    doc["chip"]["hbm_byts"] = 1


# (id, what raises (given tmp_path and tpu_v4), error type, message, field, value, expected); "{tmp}"
# in the message, value and expected stands for tmp_path.
CASES: list[tuple[str, Callable[[Path, Hardware], object], type, str, str, str, str]] = [
    (
        "evaluate-unknown-column",
        lambda tmp, hw: _evaluate(hw, foo=1),
        InvalidInputError,
        f"foo: not an architecture field (fields: {FIELDS})",
        "foo",
        "'foo'",
        f"one of {FIELDS}",
    ),
    (
        "evaluate-2d-column",
        lambda tmp, hw: _evaluate(hw, d_model=np.ones((2, 2), dtype=int)),
        InvalidInputError,
        "d_model: columns must be one-dimensional, got shape (2, 2)",
        "d_model",
        "(2, 2)",
        "a one-dimensional column",
    ),
    (
        "evaluate-float-int-column",
        lambda tmp, hw: _evaluate(hw, d_model=np.array([1.5])),
        InvalidInputError,
        "d_model: expected an integer array, got dtype float64",
        "d_model",
        "dtype float64",
        "an integer array",
    ),
    (
        "make-space-unknown-axis",
        lambda tmp, hw: make_space({"bogus": [1]}),
        InvalidInputError,
        f"unknown search-space axis 'bogus' (axes: {AXES})",
        "bogus",
        "'bogus'",
        f"one of {AXES}",
    ),
    (
        "make-space-bad-range",
        lambda tmp, hw: make_space({"d_model": "100:10"}),
        InvalidInputError,
        "d_model: '100:10' is invalid: expected a value or start:stop:step or start:stop:*factor",
        "d_model",
        "'100:10'",
        "a value or start:stop:step or start:stop:*factor",
    ),
    (
        "parse-axis-range-bounds",
        lambda tmp, hw: parse_axis("d_model", "a:b:c"),
        InvalidInputError,
        "d_model: 'a:b:c' is invalid: range bounds and step must be ints",
        "d_model",
        "'a:b:c'",
        "int range bounds and step",
    ),
    (
        "parse-axis-range-order",
        lambda tmp, hw: parse_axis("d_model", "10:1:1"),
        InvalidInputError,
        "d_model: '10:1:1' is invalid: expected 0 < start <= stop",
        "d_model",
        "'10:1:1'",
        "0 < start <= stop",
    ),
    (
        "parse-axis-boolean",
        lambda tmp, hw: parse_axis("tied_embeddings", "maybe"),
        InvalidInputError,
        "tied_embeddings: 'maybe' is invalid: expected true/false (or tied/untied)",
        "tied_embeddings",
        "'maybe'",
        "true/false (or tied/untied)",
    ),
    (
        "make-space-empty-axis",
        lambda tmp, hw: make_space({"d_model": ""}),
        EmptySpaceError,
        "d_model: empty value list (give at least one value)",
        "d_model",
        "''",
        "at least one value",
    ),
    (
        "space-file-bad-range",
        lambda tmp, hw: load_space(_write(tmp, "space.toml", "d_model = '100:10'\n")),
        InvalidInputError,
        "{tmp}/space.toml: d_model: '100:10' is invalid: expected a value or start:stop:step or start:stop:*factor",
        "d_model",
        "'100:10'",
        "a value or start:stop:step or start:stop:*factor",
    ),
    (
        "hardware-missing-file",
        lambda tmp, hw: Hardware.load("/nonexistent.toml"),
        InvalidInputError,
        "/nonexistent.toml: hardware file not found",
        "hardware",
        "/nonexistent.toml",
        "an existing hardware file, or the name of one",
    ),
    (
        "hardware-malformed-toml",
        lambda tmp, hw: Hardware.load(_hardware_copy(tmp, "bad.toml", prefix="= broken\n")),
        InvalidInputError,
        "{tmp}/bad.toml: invalid TOML (Invalid statement (at line 1, column 1))",
        "hardware",
        "{tmp}/bad.toml",
        "valid TOML",
    ),
    (
        "hardware-wrong-type",
        lambda tmp, hw: Hardware.load(_hardware_copy(tmp, "type.toml", _set_hbm)),
        InvalidInputError,
        "{tmp}/type.toml: chip.hbm_bytes = 'x' is invalid: expected a number",
        "chip.hbm_bytes",
        "'x'",
        "a number",
    ),
    (
        "hardware-unknown-key",
        lambda tmp, hw: Hardware.load(_hardware_copy(tmp, "key.toml", _misspell_hbm)),
        InvalidInputError,
        "{tmp}/key.toml: unknown key 'chip.hbm_byts' (did you mean 'hbm_bytes'?)",
        "chip.hbm_byts",
        "'hbm_byts'",
        "one of peak_bf16_flops_per_s, peak_bf16_flops_per_s_source, hbm_bytes, hbm_bytes_source, hbm_bytes_per_s, "
        "hbm_bytes_per_s_source, usable_hbm_fraction, usable_hbm_fraction_source, peak_fp8_flops_per_s, "
        "peak_fp8_flops_per_s_source, peak_int8_ops_per_s, peak_int8_ops_per_s_source, peak_fp4_flops_per_s, "
        "peak_fp4_flops_per_s_source",
    ),
    (
        "runs-missing-file",
        lambda tmp, hw: load_runs(tmp / "nope.csv"),
        InvalidInputError,
        "{tmp}/nope.csv: runs file not found",
        "runs",
        "{tmp}/nope.csv",
        "an existing CSV file of runs",
    ),
    (
        "shape-runs-missing-file",
        lambda tmp, hw: load_shape_runs(tmp / "nope.csv"),
        InvalidInputError,
        "{tmp}/nope.csv: runs file not found",
        "shape_runs",
        "{tmp}/nope.csv",
        "an existing CSV file of runs",
    ),
    (
        "runs-bad-cell",
        lambda tmp, hw: load_runs(_write(tmp, "runs.csv", "params,tokens,loss\n1,2,x\n")),
        InvalidInputError,
        "{tmp}/runs.csv: line 2: column 'loss' missing or not a number (need params, tokens, loss)",
        "loss",
        "'x'",
        "a number",
    ),
    (
        "shape-runs-columns",
        lambda tmp, hw: fit_law_with_shape([[1.0]] * 4, [[1.0]] * 5),
        InvalidInputError,
        "runs and shape_runs need 5 columns each: d_model, n_layers, params, tokens, loss",
        "runs",
        "4 columns",
        "5 columns: d_model, n_layers, params, tokens, loss",
    ),
    (
        "law-unknown-name",
        lambda tmp, hw: get_law("nolaw"),
        InvalidInputError,
        "law = 'nolaw' is invalid: expected one of besiroglu, hoffmann, muennighoff or a law .toml file",
        "law",
        "'nolaw'",
        "one of besiroglu, hoffmann, muennighoff or a law .toml file",
    ),
    (
        "law-missing-file",
        lambda tmp, hw: get_law(tmp / "nolaw.toml"),
        InvalidInputError,
        "{tmp}/nolaw.toml: law file not found",
        "law",
        "{tmp}/nolaw.toml",
        "an existing law file",
    ),
    (
        "law-file-bad-pair",
        lambda tmp, hw: get_law(
            _write(tmp, "law.toml", "[law]\ne=1\na=1\nb=1\nalpha=1\nbeta=1\nfit_params=[1]\nfit_tokens=[1,2]\n")
        ),
        InvalidInputError,
        "{tmp}/law.toml: law.fit_params = [1] is invalid: expected [lo, hi]",
        "law.fit_params",
        "[1]",
        "[lo, hi]",
    ),
    (
        "measurements-missing-file",
        lambda tmp, hw: load_measurements(tmp / "nope.csv"),
        InvalidInputError,
        "{tmp}/nope.csv: measurements file not found",
        "measurements",
        "{tmp}/nope.csv",
        "an existing CSV or JSONL file",
    ),
    (
        "measurements-bad-sharding",
        lambda tmp, hw: load_measurements(
            _write(tmp, "m.csv", "d_model,n_layers,n_heads,step_time_s,sharding\n512,8,8,1.0,zz\n")
        ),
        InvalidInputError,
        "{tmp}/m.csv: row 1: sharding = 'zz' is invalid: expected fsdp or dp",
        "sharding",
        "'zz'",
        "fsdp or dp",
    ),
    (
        "write-over-directory",
        lambda tmp, hw: write_atomic(tmp, "text"),
        InvalidInputError,
        "{tmp}: is a directory",
        "output",
        "{tmp}",
        "a file path, not a directory",
    ),
]


@pytest.mark.parametrize(
    ("raises", "kind", "message", "field", "value", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_python_errors_carry_field_value_expected(
    tmp_path: Path,
    tpu_v4: Hardware,
    raises: Callable[[Path, Hardware], object],
    kind: type,
    message: str,
    field: str,
    value: str,
    expected: str,
) -> None:
    with pytest.raises(kind) as info:
        raises(tmp_path, tpu_v4)
    e = info.value
    assert type(e) is kind
    tmp = str(tmp_path)
    assert str(e) == message.replace("{tmp}", tmp)
    assert e.field is not None and e.value is not None and e.expected is not None
    assert e.field == field
    assert e.value == value.replace("{tmp}", tmp)
    assert e.expected == expected.replace("{tmp}", tmp)


def test_a_missing_key_names_the_field_and_what_it_must_be(tmp_path: Path) -> None:
    # Nothing was given, so there is no value.
    path = _hardware_copy(tmp_path, "missing.toml", lambda doc: doc["chip"].remove("hbm_bytes"))
    with pytest.raises(InvalidInputError) as info:
        Hardware.load(path)
    e = info.value
    assert str(e) == f"{path}: missing key 'chip.hbm_bytes' (a number)"
    assert (e.field, e.value, e.expected, e.source) == ("chip.hbm_bytes", None, "a number", str(path))
