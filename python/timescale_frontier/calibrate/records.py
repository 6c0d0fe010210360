"""Measured training steps, and what is done with them without measuring again (no JAX needed):
load them from any CSV or JSONL (``load_measurements``: a user's own training logs, a published
table, or what ``timescale calibrate`` streamed), fit the step-time models and write the hardware
file (``fit_and_write``, ``calibrate_from``, ``refit``), and score every model on them
(``validate``).

A measurement row gives the architecture's fields (those of ``Architecture``; missing ones take
its defaults), how it ran (``chips``, ``sharding`` = fsdp or dp over the chips, ``recompute``,
``micro_batch`` per chip) and its time: ``step_time_s``, or ``tokens_per_s_per_chip`` with
``batch_size`` the global batch. The column names of the published benchmark tables
(``data/published/``: MosaicML llm-foundry, NVIDIA Megatron-core, MaxText on TPUs) are accepted as
aliases (``global_batch_seqs``, ``micro_batch_per_chip``, ``activation_checkpointing``,
``measured_step_time_s``, ...), and their layout columns are read as the layout the row ran with:
``tp``, ``pp``, ``vp`` (virtual stages), ``cp``, ``ep`` and ``fsdp`` (0 or blank: none; ``yes`` or
a group of more than one chip: FSDP, ZeRO-3), the data-parallel degree being what the chips leave
(``chips / (tp pp cp)``); ``precision`` names the matmuls' format (``fp8*``, ``nvfp4``, ``int8``,
else bf16); ``moe = true`` rows take their experts, top-k and shared experts from ``notes``
("256 routed experts top-8 + 1 shared"). Conventions of the stacks, stated because the tables do
not print them: NVIDIA's Megatron-core recipes (``stack`` nemo-megatron, nemo2-megatron,
megatron-bridge) run the distributed optimizer (ZeRO-1) and sequence parallelism whenever tp > 1;
an ``activation_checkpointing`` that is "not stated" is none, ``recompute_num_layers=N`` is priced
as full recomputation. A hybrid FSDP group smaller than the data-parallel chips (MaxText's
multi-slice runs) is priced as FSDP over all of them. A Megatron row whose expert-parallel degree
exceeds the chips of one pipeline stage (``tp x dp x cp``: Megatron-core cannot run it, so the table
misprints something) is priced at the largest degree the stage holds that divides the printed one,
with a note. A row marked ``approximate = true`` (a bound: the TPU table's MLPerf intervals that
include an evaluation pass, a "more than" throughput) is kept with the core's
``APPROXIMATE_ROW_WEIGHT`` in the fits; ``validate --format json`` lists each row's weight and note."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import math
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from timescale_frontier._core import (
    APPROXIMATE_ROW_WEIGHT,
    MAX_MEASUREMENT_RECORDS,
    Architecture,
    Layout,
    calibration_is_far_worse,
    calibration_is_worse,
    check_calibration_record,
    check_measured_rate,
    check_measured_step,
    check_measurement_file_bytes,
    check_measurement_records,
    choice_is_stable,
    measured_step_time_s,
)
from timescale_frontier._files import check_readable, record_lines, refuse_inputs
from timescale_frontier.architecture import FIELD_KINDS, FIELDS
from timescale_frontier.calibrate import fit, hwfile
from timescale_frontier.errors import InvalidInputError, TimescaleError, file_error, in_file, invalid_value
from timescale_frontier.hardware import Hardware

#: The fewest distinct measured steps a calibration fits: what the smallest model needs (``fit.min_rows``).
MIN_FIT_SAMPLES = min(fit.min_rows(m) for m in fit.MODELS)
#: Column aliases: the published table's names (and other common spellings) -> ours.
ALIASES = {
    "global_batch_seqs": "batch_size",
    "micro_batch_per_chip": "micro_batch",
    "activation_checkpointing": "recompute",
    "measured_step_time_s": "step_time_s",
    "measured_tokens_per_s_per_chip": "tokens_per_s_per_chip",
    "tied": "tied_embeddings",
    "source_parallelism": "sharding",
}
# Each column's kind: the architecture's from the core's field list (`Architecture::FIELDS`), and
# the measurement's own columns.
_INT_FIELDS = {k for k, kind in FIELD_KINDS.items() if kind in ("int", "count", "optional int")} | {"chips"}
_FLOAT_FIELDS = {k for k, kind in FIELD_KINDS.items() if kind == "float"} | {"step_time_s", "tokens_per_s_per_chip"}
_TEXT_FIELDS = {k for k, kind in FIELD_KINDS.items() if kind == "text"}
#: Architecture fields added since the first measurement files were written: absent means the default.
_ADDED_FIELDS = ("recompute", "micro_batch", "experts", "top_k", "shared_experts")
_REQUIRED = ("d_model", "n_layers", "n_heads")
#: The layout columns of the published tables.
_LAYOUT_COLUMNS = ("tp", "pp", "vp", "cp", "ep", "fsdp")
#: Stacks whose recipes run Megatron-LM's distributed optimizer (ZeRO-1) and sequence parallelism
#: with tensor parallelism (NVIDIA's NeMo and Megatron-Bridge performance recipes).
MEGATRON_STACKS = ("nemo-megatron", "nemo2-megatron", "megatron-bridge")
#: How the published tables' ``activation_checkpointing`` texts begin, and what each is priced as.
_RECOMPUTE_PREFIXES = (
    ("none", "none"),
    ("not stated", "none"),
    ("cpu_offloading", "none"),
    ("selective", "selective"),
    ("full", "full"),
    ("recompute_num_layers", "full"),
)
_YES, _NO = ("true", "1", "yes"), ("false", "0", "no", "")
_TIED = (*_YES, "tied")
_UNTIED = (*_NO, "untied")


@dataclass
class CalibrationResult:
    hardware: Hardware
    chosen: str
    reports: dict[str, fit.Report]
    validation: dict[str, dict[str, float]]
    n_fit: int
    n_validation: int
    measurements_path: Path | None
    elapsed_s: float
    #: The file the calibration replaced, if one was there.
    replaced: Replaced | None = None
    #: What the quality checks found and ``--force`` overrode (printed loudly by the CLI).
    warnings: tuple[str, ...] = ()

    @property
    def n_coefficients(self) -> int:
        """How many coefficients the chosen model fitted."""
        return fit.coefficients(self.chosen)

    @property
    def few_samples(self) -> bool:
        """Fewer fit steps than twice the chosen model's coefficients: its errors are rough."""
        return self.n_fit < 2 * self.n_coefficients


@dataclass(frozen=True)
class Unpriced:
    """A row the model cannot price, and why (its layout does not split the model, the chip lacks
    its matmul format, more chips than the network holds, ...)."""

    row: int
    row_id: str
    reason: str


@dataclass(frozen=True)
class Replaced:
    """What a calibration replaced and how the two compare: each one's cross-validated median
    absolute percentage error on the steps it was fitted to (the old one as its file records it),
    and the old model's error on the new steps."""

    path: Path
    old_model: str
    old_calibrated: bool
    #: The replaced file's recorded cross-validated median error (None: uncalibrated or unrecorded).
    old_heldout_median_abs_pct_error: float | None
    new_heldout_median_abs_pct_error: float
    #: The replaced model's median error on the new fit's steps.
    old_on_new_steps_median_abs_pct_error: float
    n: int

    @property
    def old_error(self) -> float | None:
        """The replaced model's error the new fit must beat: its recorded cross-validated error, or,
        for an uncalibrated datasheet roofline (nothing fitted, so every step is held out), its error
        on the new fit's steps."""
        if self.old_heldout_median_abs_pct_error is not None:
            return self.old_heldout_median_abs_pct_error
        return None if self.old_calibrated else self.old_on_new_steps_median_abs_pct_error

    @property
    def worse(self) -> bool:
        """Whether the new fit is clearly worse than the model it replaces (core
        ``calibration_is_worse``: its cross-validated error above ``old_error`` by more than 5% of it
        and 0.1 points): a fit that predicts held-out steps worse than the datasheet does is no
        calibration."""
        old = self.old_error
        return old is not None and calibration_is_worse(self.new_heldout_median_abs_pct_error, old)

    @property
    def far_worse(self) -> bool:
        """Whether the new fit is far worse than the hardware file it calibrates (core
        ``calibration_is_far_worse``): the check for a fit written to a file of its own."""
        old = self.old_error
        return old is not None and calibration_is_far_worse(self.new_heldout_median_abs_pct_error, old)


def _number(path: Path, row: int, key: str, raw: Any, integer: bool) -> float | int:
    """A number from a CSV cell or a JSON value (types only; the core checks ranges)."""
    if isinstance(raw, bool):
        raise invalid_value(key, raw, "a number", path=path, row=row)
    try:
        v = float(raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond a float's range
        raise invalid_value(key, raw, "a number", path=path, row=row) from None
    if integer:
        if not math.isfinite(v) or v != int(v):
            raise invalid_value(key, raw, "a whole number", path=path, row=row)
        return int(v)
    return v


def _sharding(path: Path, row: int, raw: Any) -> bool:
    """Whether data parallelism shards the model (FSDP) or replicates it (DP)."""
    text = str(raw).strip().lower()
    if text.startswith("fsdp") or text in ("zero3", "zero-3"):
        return True
    if text in ("dp", "ddp", "data parallel", "single"):
        return False
    raise invalid_value("sharding", raw, "fsdp or dp", path=path, row=row)


#: Suffixes read as JSON lines (any case); ``.csv`` is CSV; another suffix is told by its first line.
_JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")


def _is_jsonl(path: Path, first_line: str) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return False
    return suffix in _JSONL_SUFFIXES or first_line.lstrip().startswith("{")


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(row number, record) of every record: CSV rows numbered from 1 after the header, JSONL lines.
    At most the core's ``MAX_MEASUREMENT_RECORDS`` records, counted while reading (a larger file is
    refused before it is read whole), of at most ``MAX_MEASUREMENT_FILE_BYTES`` bytes (refused by its
    size) and ``MAX_RECORD_BYTES`` a line; a UTF-8 byte-order mark (Excel's CSV) is skipped."""
    size = check_readable(path, "measurements", "measurements", "an existing CSV or JSONL file").st_size
    with in_file(path):
        check_measurement_file_bytes(size)

    def invalid(why: str, expected: str) -> InvalidInputError:
        return InvalidInputError(f"{path}: {why}", field="measurements", value=str(path), expected=expected)

    out: list[tuple[int, dict[str, Any]]] = []
    try:
        lines = record_lines(path)
        first = next(lines, "")
        if not _is_jsonl(path, first):
            for i, r in enumerate(csv.DictReader(itertools.chain([first], lines)), 1):
                if i > MAX_MEASUREMENT_RECORDS:
                    with in_file(path):
                        check_measurement_records(i)
                out.append((i, dict(r)))
            return out
        for i, line in enumerate(itertools.chain([first], lines), 1):
            if not line.strip():
                continue
            if len(out) >= MAX_MEASUREMENT_RECORDS:
                with in_file(path):
                    check_measurement_records(len(out) + 1)
            try:
                out.append((i, json.loads(line)))
            except json.JSONDecodeError as e:
                raise invalid(f"line {i}: not JSON ({e.msg})", "one JSON object per line") from None
            except RecursionError:
                raise invalid(
                    f"line {i}: nested too deeply (a record is one flat object)", "one flat JSON object per line"
                ) from None
            except ValueError as e:  # an integer of more digits than Python converts
                raise invalid(
                    f"line {i}: not a record ({e})", "one JSON object of numbers and names per line"
                ) from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise invalid(f"not a UTF-8 CSV or JSONL file ({e})", "a UTF-8 CSV or JSONL file") from None
    except OSError as e:
        raise invalid(f"cannot read ({e.strerror})", "a readable CSV or JSONL file") from None
    return out


def measured(path: Path, row: int, record: dict[str, Any]) -> fit.Measured:
    """One measured step from a record; errors name the file, the row and the field."""
    r = {ALIASES.get(k, k): v for k, v in record.items() if v not in (None, "")}
    for k in _REQUIRED:
        if k not in r:
            raise file_error(
                path,
                f"{k} is missing (measurements need {', '.join(_REQUIRED)} and a time)",
                row=row,
                field=k,
                expected="present in every measurement",
            )
    kw: dict[str, Any] = {}
    for k, v in r.items():
        if k in _INT_FIELDS:
            kw[k] = _number(path, row, k, v, True)
        elif k in _FLOAT_FIELDS:
            kw[k] = _number(path, row, k, v, False)
        elif k in _TEXT_FIELDS:
            if (
                isinstance(v, bool)
                or not isinstance(v, str | int | float)  # never an object's text
                or (isinstance(v, str) and any(0xD800 <= ord(c) < 0xE000 for c in v))  # JSON's lone "\ud800"
            ):
                raise invalid_value(k, v, "a name", path=path, row=row)
            kw[k] = str(v).strip().lower()
        elif k == "tied_embeddings":
            text = str(v).strip().lower() if isinstance(v, str | int) else v
            if not isinstance(text, bool) and text not in _TIED + _UNTIED:
                raise invalid_value(k, v, "true or false (tied or untied)", path=path, row=row)
            kw[k] = text if isinstance(text, bool) else text in _TIED
    if "recompute" in kw:
        kw["recompute"] = _recompute(kw["recompute"])
    if kw.get("recompute") == "none" or kw.get("recompute") is None:
        kw.pop("recompute", None)
    if str(r.get("moe", "")).strip().lower() == "true" and "experts" not in kw:
        try:
            kw.update(_experts(path, row, str(r.get("notes", ""))))
        except InvalidInputError as e:
            raise CannotPrice(str(e)) from None
    chips = int(kw.pop("chips", 1))
    step, rate = kw.pop("step_time_s", None), kw.pop("tokens_per_s_per_chip", None)
    published = any(k in r for k in _LAYOUT_COLUMNS)
    # The published tables' source_parallelism is a description; their layout columns say it.
    fsdp = _sharding(path, row, r["sharding"]) if "sharding" in r and not published else True
    with in_file(path, row):
        arch = Architecture(**{k: v for k, v in kw.items() if k in FIELDS})
        t = measured_step_time_s(step, rate, arch.tokens_per_step, chips)
    matmul = _matmul(str(r.get("precision", "")))
    note = ""
    try:
        if published:
            layout, note = _layout(path, row, r, chips, matmul)
        elif matmul != "bf16":
            with in_file(path, row):
                layout = Layout(dp=chips, zero=3 if fsdp and chips > 1 else 0, matmul=matmul)
        else:
            layout = None
    except InvalidInputError as e:
        raise CannotPrice(str(e)) from None
    weight = 1.0
    approximate = str(r.get("approximate", "")).strip().lower()
    if approximate not in _YES + _NO:
        raise invalid_value("approximate", r.get("approximate"), "true or false", path=path, row=row)
    if approximate in _YES:
        weight = APPROXIMATE_ROW_WEIGHT
        bound = f"approximate (a bound, not a measured step): weight {weight:g} in fits"
        note = f"{bound}; {note}" if note else bound
    return fit.Measured(arch, t, chips, fsdp, row, layout, str(r.get("row_id", "")), row_stack(r), weight, note)


def row_stack(record: dict[str, Any]) -> str:
    """The software stack a row names, as a hardware file's calibrations are named: ``megatron``
    for NVIDIA's Megatron-core stacks (``MEGATRON_STACKS``), the ``stack`` column as written
    otherwise (``maxtext``, ...), empty when the row names none."""
    text = str(record.get("stack", "")).strip().lower()
    return "megatron" if text in MEGATRON_STACKS else text


class CannotPrice(InvalidInputError):
    """A well-formed row whose layout or mixture the model cannot express (see ``Unpriced``)."""


def _recompute(text: str) -> str:
    """A recompute name, or what a published table's description of it is priced as (see the
    module docs); anything else is left for the core to refuse."""
    for prefix, name in _RECOMPUTE_PREFIXES:
        if text.startswith(prefix):
            return name
    return text


_EXPERTS = re.compile(r"(\d+) (?:routed )?experts,? top-(\d+)")
_SHARED = re.compile(r"\+ (\d+) shared")


def _experts(path: Path, row: int, notes: str) -> dict[str, int]:
    """Experts, top-k and shared experts of an MoE row, from its notes ("256 routed experts top-8 +
    1 shared")."""
    m = _EXPERTS.search(notes)
    if m is None:
        raise file_error(
            path,
            "moe = true but notes name no 'N experts top-K'",
            row=row,
            field="notes",
            expected="'N experts top-K' in the notes of an MoE row",
        )
    shared = _SHARED.search(notes[m.end() : m.end() + 40])
    return {
        "experts": int(m.group(1)),
        "top_k": int(m.group(2)),
        "shared_experts": int(shared.group(1)) if shared else 0,
    }


def _matmul(precision: str) -> str:
    """The matmul format a published ``precision`` names (see the module docs)."""
    text = precision.strip().lower()
    for prefix, name in (("fp8", "fp8"), ("nvfp4", "fp4"), ("fp4", "fp4"), ("int8", "int8")):
        if text.startswith(prefix):
            return name
    return "bf16"


def _layout(path: Path, row: int, r: dict[str, Any], chips: int, matmul: str) -> tuple[Layout, str]:
    """The layout of a row of a published table (see the module docs), and a note when it is not
    the one printed."""
    degree = {k: int(_number(path, row, k, r[k], True)) if k in r else 1 for k in ("tp", "pp", "vp", "cp", "ep")}
    tp, pp, cp = degree["tp"], degree["pp"], degree["cp"]
    if min(tp, pp, cp) < 1 or chips % (tp * pp * cp):
        raise file_error(
            path,
            f"chips = {chips} is not a multiple of tp x pp x cp = {tp * pp * cp}",
            row=row,
            field="chips",
            value=str(chips),
            expected=f"a multiple of tp x pp x cp = {tp * pp * cp}",
        )
    fsdp = str(r.get("fsdp", "0")).strip().lower()
    sharded = fsdp == "yes" or (fsdp.isdigit() and int(fsdp) > 1)
    megatron = str(r.get("stack", "")).strip().lower() in MEGATRON_STACKS
    zero = 3 if sharded else (1 if megatron else 0)
    # Expert parallelism draws on one pipeline stage's chips (tp x dp x cp; Megatron-core's MoE
    # parallel folding): a larger EP cannot run as printed, so the row is priced at the largest EP
    # the stage holds that divides the printed one, and says so.
    stage, ep, note = chips // pp, degree["ep"], ""
    if megatron and ep > stage:
        ep = math.gcd(ep, stage)
        note = (
            f"ep = {degree['ep']} exceeds the {stage} chips of a pipeline stage (tp x dp x cp), a layout Megatron "
            f"cannot run: priced at ep = {ep}"
        )
    with in_file(path, row):
        return Layout(
            dp=chips // (tp * pp * cp),
            tp=tp,
            pp=pp,
            vp=degree["vp"] if pp > 1 else 1,
            cp=cp,
            sp=megatron and tp > 1,
            zero=zero,
            ep=ep,
            matmul=matmul,
        ), note


def _measured_rows(
    path: Path, hardware: str | None = None, skipped: list[Unpriced] | None = None
) -> list[tuple[fit.Measured, str]]:
    """Every measured step of the file with its split (``fit`` unless the record says); with
    ``hardware``, only the rows whose ``accelerator`` column (when there is one) names it. A row
    the model cannot express is an error, or with ``skipped`` is listed there and left out."""
    out = []
    for i, r in _rows(path):
        if not isinstance(r, dict):
            raise InvalidInputError(
                f"{path}: line {i}: expected a JSON object",
                field="measurements",
                value=repr(r),
                expected="a JSON object",
            )
        if r.get("kind", "train_step") != "train_step" or r.get("error"):
            continue
        if hardware is not None and r.get("accelerator", hardware) != hardware:
            continue
        try:
            out.append((measured(path, i, r), str(r.get("split", "fit"))))
        except CannotPrice as e:
            if skipped is None:
                raise
            skipped.append(Unpriced(i, str(r.get("row_id", "")), str(e)))
    return out


def load_measurements(
    path: Path,
    split: str = "all",
    hardware: Hardware | None = None,
    skipped: list[Unpriced] | None = None,
    stack: str | None = None,
) -> list[fit.Measured]:
    """Measured training steps from JSONL or CSV (see the module docs). Records of other kinds
    (microbenchmarks) and failed measurements (``error`` set) are skipped; with ``split``, only
    the records of that split (``fit`` or ``validation``); with ``hardware``, only the rows of that
    accelerator when the file has an ``accelerator`` column, each checked to run on it. A row the
    model cannot price is an error, or with ``skipped`` is listed there (with the reason) and left
    out."""
    rows = _measured_rows(path, hardware.name if hardware else None, skipped)
    out = [m for m, s in rows if (split == "all" or s == split) and (stack is None or m.stack in ("", stack))]
    if not out:
        which = ("" if split == "all" else f" in split {split!r}") + ("" if stack is None else f" of stack {stack!r}")
        on = f" on {hardware.name}" if hardware else ""
        raise InvalidInputError(
            f"{path}: no training-step measurements{which}{on}",
            field="measurements",
            value=str(path),
            expected=f"training-step measurements{which}{on}",
        )
    if hardware is not None:
        out = _check_shardings(path, out, hardware, skipped)
        if not out:
            raise InvalidInputError(
                f"{path}: no measured step on {hardware.name} the model can price ({len(skipped or [])} cannot be)",
                field="measurements",
                value=str(path),
                expected=f"training-step measurements on {hardware.name} the model can price",
            )
    return out


def _check_shardings(
    path: Path, rows: list[fit.Measured], hw: Hardware, skipped: list[Unpriced] | None = None
) -> list[fit.Measured]:
    """The rows whose chips and layout are possible on ``hw`` (else their features do not exist):
    any other is an error, or with ``skipped`` listed there. A measured step faster than the chip
    allows is always an error (a bad measurement, not a limit of the model)."""
    out = []
    for m in rows:
        with in_file(path, m.row):
            try:
                fit.step_of(m, hw.core)
            except InvalidInputError as e:
                if skipped is None:
                    raise
                skipped.append(Unpriced(m.row, m.row_id, str(e)))
                continue
            check_measured_step(hw.core, m.arch, m.chips, m.step_time_s)
        out.append(m)
    return out


def fit_and_write(
    hw: Hardware,
    out: Path,
    rows: list[fit.Measured],
    validation_rows: list[fit.Measured],
    section_extra: dict[str, Any],
    source: str,
    measurements: Path | None,
    t_start: float,
    ceilings: fit.Ceilings | None = None,
    force: bool = False,
    stack: str | None = None,
    unpriced: list[Unpriced] | None = None,
) -> CalibrationResult:
    """Fits every applicable model on ``rows``, scores them on ``validation_rows``, and writes the
    one with the lowest cross-validated error (with the others as alternatives) into the hardware
    file, atomically; with ``stack``, as that software stack's calibration (``[stacks.STACK]``
    beside a default of another stack). Rows with low-precision matmuls also fit each format's
    time factor (``fit.matmul_time_factors``). A calibrated file already at ``out`` is compared with
    the new fit on the same steps first and kept, unless ``force``, when the new fit predicts them
    clearly worse."""
    refuse_inputs(out, [measurements] if measurements else [])  # before reading `out` as the file it replaces
    if len(rows) < MIN_FIT_SAMPLES:
        raise TimescaleError(
            f"only {len(rows)} training steps for the fit (need {MIN_FIT_SAMPLES}): measure more (a longer"
            " --time-budget-s for a live calibration) or give more measured steps (--from, --refit)"
        )
    distinct = {(tuple(sorted(m.arch.to_dict().items())), m.chips, m.fsdp) for m in rows}
    if len(distinct) < MIN_FIT_SAMPLES:
        raise InvalidInputError(
            f"only {len(distinct)} distinct measured configurations for the fit (need {MIN_FIT_SAMPLES}): repeated"
            " steps of one configuration measure its noise, not how step time depends on the work",
            field="measurements",
            value=f"{len(distinct)} distinct configurations",
            expected=f"at least {MIN_FIT_SAMPLES} distinct configurations",
        )
    if len({m.step_time_s for m in rows}) < 2:
        raise InvalidInputError(
            f"every measured step took {rows[0].step_time_s:g} s: times that do not vary with the work fit no"
            " step-time model",
            field="step_time_s",
            value=f"{rows[0].step_time_s:g}",
            expected="step times that differ between configurations",
        )
    base, factors = fit.matmul_time_factors(rows, hw.core.uncalibrated())
    hw = replace(hw, core=base)
    reports = fit.fit_all(rows, hw.core, ceilings)
    assert reports, "MIN_FIT_SAMPLES steps fit the smallest model"
    chosen = fit.choose(reports)
    validation: dict[str, dict[str, float]] = {}
    if validation_rows:
        tv = np.array([m.step_time_s for m in validation_rows])
        for name, rep in reports.items():
            validation[name] = fit.scores(rep.fit.predict(validation_rows, hw.core), tv)
    best = reports[chosen]
    section: dict[str, Any] = {
        "model": chosen,
        **best.fit.coeffs,
        "r2": round(best.r2, 6),
        "mean_abs_pct_error": round(best.mean_abs_pct_error, 3),
        "median_abs_pct_error": round(best.median_abs_pct_error, 3),
        "max_abs_pct_error": round(best.max_abs_pct_error, 3),
        "heldout_mean_abs_pct_error": round(best.heldout_mean_abs_pct_error, 3),
        "heldout_median_abs_pct_error": round(best.heldout_median_abs_pct_error, 3),
        "heldout_max_abs_pct_error": round(best.heldout_max_abs_pct_error, 3),
        "heldout_spearman": round(best.heldout_spearman, 4),
        "n_samples": len(rows),
        "n_validation": len(validation_rows),
        "date": dt.date.today().isoformat(),
        "source": source,
        **{k: round(v, 4) for k, v in factors.items()},
        **_dense_and_moe(reports[chosen], rows, hw.core),
        **({"n_unpriced": len(unpriced)} if unpriced else {}),
        **section_extra,
    }
    if validation_rows:
        section["validation_median_abs_pct_error"] = round(validation[chosen]["median_abs_pct_error"], 3)
    alternatives = {
        name: {
            **r.fit.coeffs,
            "r2": round(r.r2, 6),
            "heldout_mean_abs_pct_error": round(r.heldout_mean_abs_pct_error, 3),
            "heldout_median_abs_pct_error": round(r.heldout_median_abs_pct_error, 3),
        }
        for name, r in reports.items()
    }
    # The file this calibration replaces: the one at `out`, or, when `out` is the user's copy of a
    # shipped file made now, the shipped file that `--hardware NAME` found until now.
    previous = out if out.exists() else hw.path if out == hwfile.default_out(hw) else None
    replaced = _compare_with(previous, rows, best.heldout_median_abs_pct_error, stack)
    if replaced is not None and replaced.worse and not force:
        # `out` itself, or (a first calibration of a shipped file) the shipped file `--hardware NAME` found.
        what = "calibration" if replaced.old_calibrated else "uncalibrated datasheet roofline"
        head = (
            f"{out}: kept: its {what} ({replaced.old_model})"
            if replaced.path == out
            else f"{out}: not written: the {what} it would replace ({replaced.path}: {replaced.old_model})"
        )
        measure = "a cross-validated" if replaced.old_calibrated else "on these steps a"
        raise InvalidInputError(
            f"{head} has {measure} median step-time error of "
            f"{replaced.old_error:.1f}%, the new fit {replaced.new_heldout_median_abs_pct_error:.1f}% cross-validated "
            f"(on these {replaced.n} steps the old model errs {replaced.old_on_new_steps_median_abs_pct_error:.1f}%); "
            "write the new one elsewhere with --out, or replace it anyway with --force",
            field="out",
            value=str(out),
            expected="a file whose calibration the new fit does not predict worse (or --force)",
        )
    # A fit written to a file of its own replaces nothing, but it must still be a calibration: far
    # worse than the file it calibrates (an interrupted run's few steps, a noisy machine), or a
    # model choice the folds do not agree on, is refused unless --force (issue 26.7).
    problems = []
    own = replaced if replaced is not None else _compare_with(hw.path, rows, best.heldout_median_abs_pct_error, stack)
    if own is not None and own.far_worse:
        what = "calibration" if own.old_calibrated else "uncalibrated datasheet roofline"
        problems.append(
            f"its cross-validated median step-time error, {own.new_heldout_median_abs_pct_error:.1f}%, is far above "
            f"the {what} of {own.path} ({own.old_model}: {own.old_error:.1f}%)"
        )
    wins = fit.choice_resamples(reports, np.array([m.step_time_s for m in rows]))
    if not choice_is_stable(wins[chosen], fit.CHOICE_RESAMPLES):
        won = ", ".join(f"{name} {n}" for name, n in sorted(wins.items(), key=lambda kv: -kv[1]) if n)
        problems.append(
            f"the model choice is unstable: {chosen} is chosen in {wins[chosen]} of {fit.CHOICE_RESAMPLES} bootstrap "
            f"resamples of the steps ({won}), so these steps cannot tell the models apart"
        )
    if problems and not force:
        raise InvalidInputError(
            f"{out}: not written: {'; '.join(problems)}; measure more steps (a longer --time-budget-s, a quieter "
            "machine), or write it anyway with --force",
            field="calibration",
            value=f"{best.heldout_median_abs_pct_error:.1f}% cross-validated ({chosen})",
            expected="a fit not far worse than the file's model, with a model choice the folds agree on (or --force)",
        )
    new_hw = hwfile.write_calibration(
        hw.path, out, section, alternatives, [measurements] if measurements else [], stack
    )
    return CalibrationResult(
        new_hw,
        chosen,
        reports,
        validation,
        len(rows),
        len(validation_rows),
        measurements,
        time.perf_counter() - t_start,
        replaced,
        tuple(f"written with --force although {p}" for p in problems),
    )


def _dense_and_moe(report: fit.Report, rows: list[fit.Measured], base: Any) -> dict[str, Any]:
    """The chosen model's cross-validated median error on the dense and the mixture-of-experts rows
    apart, when there are both."""
    moe = np.array([m.arch.experts > 0 for m in rows])
    if not moe.any() or moe.all():
        return {}
    t = np.array([m.step_time_s for m in rows])
    feats = fit.features(rows, base)
    cv = fit.cross_validate(report.fit.model, rows, feats, t, base)
    err = 100.0 * np.abs(cv - t) / t
    return {
        "n_dense": int((~moe).sum()),
        "n_moe": int(moe.sum()),
        "heldout_median_abs_pct_error_dense": round(float(np.median(err[~moe])), 3),
        "heldout_median_abs_pct_error_moe": round(float(np.median(err[moe])), 3),
    }


def _compare_with(
    previous: Path | None, rows: list[fit.Measured], new_heldout_median: float, stack: str | None = None
) -> Replaced | None:
    """The hardware file ``previous`` (if any) beside the new fit: its recorded error, and how its
    model predicts ``rows`` (with ``stack``, the calibration of that stack, when it has one: a new
    stack replaces nothing)."""
    if previous is None:
        return None
    old = Hardware.load(previous)
    if stack is not None and old.calibrated:
        if stack not in old.stacks:
            return None
        old = Hardware.load(previous, stack=stack)
    t = np.array([m.step_time_s for m in rows])
    pred = np.array([fit.step_of(m, old.core).step_time_s for m in rows])
    recorded = old.calibration.get("heldout_median_abs_pct_error") if old.calibrated else None
    return Replaced(
        previous,
        old.step_time_model,
        old.calibrated,
        float(recorded) if isinstance(recorded, int | float) else None,
        new_heldout_median,
        fit.scores(pred, t)["median_abs_pct_error"],
        len(rows),
    )


def calibrate_from(
    spec: str | Path,
    measurements: Path,
    out: Path | None = None,
    source: str | None = None,
    force: bool = False,
    stack: str | None = None,
) -> CalibrationResult:
    """Fits and writes the ``[calibration]`` section from any file of measured steps (a user's
    training logs, a published table): every applicable model with 5-fold cross-validation, the
    best written with its provenance. Rows marked ``split = validation`` are held out. With
    ``stack``, only the rows of that software stack (rows that name none count as any), written as
    that stack's calibration. Rows the model cannot price are left out and counted."""
    t_start = time.perf_counter()
    if source is not None and (not source.strip() or not source.isprintable()):
        # Written into the hardware file and printed by `hardware show`.
        raise invalid_value("source", source, "plain text (no control characters)")
    hw = Hardware.load(spec)
    out = Path(out) if out is not None else hwfile.default_out(hw)
    hwfile.check_targets(hw, out, measurements)  # before any work
    unpriced: list[Unpriced] = []
    rows = _measured_rows(measurements, hw.name, unpriced)
    if stack is not None:
        rows = [(m, s) for m, s in rows if m.stack in ("", stack)]
    if not rows:
        on = f" of stack {stack!r}" if stack is not None else ""
        raise InvalidInputError(
            f"{measurements}: no training-step measurements on {hw.name}{on}",
            field="measurements",
            value=str(measurements),
            expected=f"training-step measurements on {hw.name}{on}",
        )
    priced = _check_shardings(measurements, [m for m, _ in rows], hw, unpriced)
    keep = {id(m) for m in priced}
    val = [m for m, s in rows if s == "validation" and id(m) in keep]
    fit_rows = [m for m, s in rows if s != "validation" and id(m) in keep]
    return fit_and_write(
        hw,
        out,
        fit_rows,
        val,
        {"chips_measured": f"{min(m.chips for m in fit_rows)}-{max(m.chips for m in fit_rows)}"},
        source or f"timescale calibrate --from {measurements.name} ({len(fit_rows)} measured steps)",
        measurements,
        t_start,
        force=force,
        stack=stack,
        unpriced=unpriced,
    )


def _backend_of(device_kind: str) -> str:
    """The hardware-file ``device`` a JAX ``device_kind`` belongs to ("cpu", "TPU v4", "NVIDIA H100 ...")."""
    kind = device_kind.lower()
    return "cpu" if kind == "cpu" else "tpu" if "tpu" in kind else "gpu"


def refit(spec: str | Path, measurements: Path, out: Path | None = None, force: bool = False) -> CalibrationResult:
    """Fits and writes the ``[calibration]`` section from a JSONL file that ``calibrate`` wrote
    (microbenchmarks and timed training steps with their fit/validation split), without measuring
    again: e.g. after a new step-time model was added, or on another machine than the one measured.
    Refuses measurements of another device kind than the file's unless ``force``."""
    t_start = time.perf_counter()
    hw = Hardware.load(spec)
    out = Path(out) if out is not None else hwfile.default_out(hw)
    hwfile.check_targets(hw, out, measurements)  # before any work
    records = [r for _, r in _rows(measurements)]

    def rate(kind: str, key: str) -> list[float]:
        out = []
        for i, r in enumerate(records, 1):
            if not isinstance(r, dict) or r.get("kind") != kind:
                continue
            v = r.get(key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v) or v <= 0:
                raise InvalidInputError(
                    f"{measurements}: record {i}: {kind} {key} = {v!r} is invalid: expected a number > 0",
                    field=key,
                    value=repr(v),
                    expected="a number > 0",
                )
            out.append(float(v))
        return out

    matmul = rate("matmul", "flops_per_s")
    copy = rate("copy", "bytes_per_s")
    for kind, values in (("matmul", matmul), ("copy", copy)):
        for v in values:
            # The fits are scaled by these ceilings: the core's ranges for a measured one.
            with in_file(measurements):
                check_measured_rate(kind, v)
    steps = [r for r in records if isinstance(r, dict) and r.get("kind") == "train_step"]
    for i, r in enumerate(steps, 1):
        # Fields added since a file was recorded (recompute, micro_batch, the MoE counts) take their defaults.
        missing = [k for k in FIELDS if k not in r and k not in _ADDED_FIELDS]
        if missing or "step_time_s" not in r:
            lacks = missing or ["step_time_s"]
            raise InvalidInputError(
                f"{measurements}: train_step record {i} lacks {', '.join(lacks)}",
                field=lacks[0],
                expected="present in every train_step record",
            )
    if not matmul or not copy or not steps:
        raise InvalidInputError(
            f"{measurements}: expected matmul, copy and train_step records written by `timescale calibrate`",
            field="measurements",
            value=str(measurements),
            expected="matmul, copy and train_step records written by `timescale calibrate`",
        )
    backends = {_backend_of(str(r.get("device_kind", ""))) for r in records if isinstance(r, dict)}
    if len(backends) != 1:
        raise InvalidInputError(
            f"{measurements}: measurements from several kinds of device: {', '.join(sorted(backends))}",
            field="device_kind",
            value=", ".join(sorted(backends)),
            expected="one kind of device",
        )
    backend = backends.pop()
    if backend != hw.device and not force:
        raise InvalidInputError(
            f"{hw.path}: device = {hw.device!r} but {measurements} holds {backend} measurements (pass --force)",
            field="device",
            value=repr(hw.device),
            expected=f"{backend!r}, the measurements' device (or --force)",
        )
    device_kind = str(steps[0].get("device_kind", backend))
    act = set()
    for i, r in enumerate(steps, 1):
        v = r.get("activation_bytes", 4.0)
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise invalid_value("activation_bytes", v, "a number of bytes", path=measurements, row=i)
        with in_file(measurements, i):
            act.add(check_calibration_record("activation_bytes", float(v)))
    micro = {"measured_matmul_flops_per_s": max(matmul), "measured_copy_bytes_per_s": max(copy)}
    rows = _measured_rows(measurements)
    _check_shardings(measurements, [m for m, _ in rows], hw)
    fit_rows = [m for m, s in rows if s == "fit"]
    val_rows = [m for m, s in rows if s == "validation"]
    extra = {
        "activation_bytes": act.pop() if len(act) == 1 else 4.0,
        "device_kind": device_kind,
        "backend": backend,
        "jax_version": str(steps[0].get("jax_version", "unknown")),
        **{k: round(v, 1) for k, v in micro.items()},
    }
    return fit_and_write(
        hw, out, fit_rows, val_rows, extra,
        f"timescale calibrate --refit {measurements} (measured on {device_kind}; refitted {dt.date.today()})",
        measurements, t_start, fit.Ceilings(micro["measured_matmul_flops_per_s"], micro["measured_copy_bytes_per_s"]),
        force,
    )  # fmt: skip


def row_predictions(hw: Hardware, rows: list[fit.Measured]) -> list[dict[str, Any]]:
    """Each row as the file's model prices it: its identifier, layout, measured and predicted step
    time (s) and the signed error (%)."""
    out = []
    for m in rows:
        st = fit.step_of(m, hw.core)
        out.append(
            {
                "row": m.row,
                "row_id": m.row_id,
                "stack": m.stack,
                "layout": st.sharding,
                "moe": m.arch.experts > 0,
                "measured_step_time_s": m.step_time_s,
                "predicted_step_time_s": st.step_time_s,
                "error_pct": 100.0 * (st.step_time_s / m.step_time_s - 1.0),
                "weight": m.weight,
                "note": m.note,
            }
        )
    return out


def validate(hw: Hardware, rows: list[fit.Measured]) -> dict[str, dict[str, float]]:
    """The paper's headline table for these measurements, side by side: the file's datasheet
    roofline, the MEMCPY-only and FLOPs-only models fitted here (5-fold cross-validated), every
    calibrated model of the file and its default. Per model: R^2, mean / median / max absolute
    percentage error, Spearman rank correlation."""
    t = np.array([m.step_time_s for m in rows])
    out: dict[str, dict[str, float]] = {}
    datasheet = hw.core.uncalibrated()
    out["datasheet roofline (uncalibrated)"] = fit.scores(
        np.array([fit.step_of(m, datasheet).step_time_s for m in rows]), t
    )
    if len(rows) >= 2 * MIN_FIT_SAMPLES:
        feats = fit.features(rows, hw.core)
        for name in ("memcpy", "flops"):
            cv = fit.cross_validate(name, rows, feats, t, hw.core)
            out[f"{name}-only (fitted here, 5-fold CV)"] = fit.scores(cv, t)
    for name in hw.calibration.get("alternatives") or {}:
        alt = hw.using(name).core
        out[f"{name} (calibrated)"] = fit.scores(np.array([fit.step_of(m, alt).step_time_s for m in rows]), t)
    if hw.calibrated:
        pred = np.array([fit.step_of(m, hw.core).step_time_s for m in rows])
        out[f"{hw.step_time_model} (hardware file default)"] = fit.scores(pred, t)
    return out
