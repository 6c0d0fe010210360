"""Hardware files: one TOML per chip (``hardware/*.toml``), units in key names, a source for every
figure. ``Hardware.load`` reads a file, checks its shape (sections, keys, types) and hands the
numbers to the core, which checks every range and builds the step-time model.

Until a chip is calibrated, its step time is a datasheet roofline with stated efficiency factors
(``[step_time]``); a ``[calibration]`` section written by ``timescale calibrate`` replaces it with
coefficients measured on the chip.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from timescale_frontier import _toml
from timescale_frontier._core import (
    Architecture,
    CalibratedModel,
    CoreHardware,
    StepTimeParts,
    calibrated_models,
    check_calibration_record,
    configuration_step_error,
)
from timescale_frontier.errors import InvalidInputError, file_error, in_file, invalid_value

__all__ = [
    "Hardware",
    "SHIPPED_DIR",
    "USER_DIR_ENV",
    "shipped_names",
    "user_dir",
    "available",
    "load_available",
    "as_hardware",
    "origin",
    "resolve",
    "calibrated_model",
    "CALIBRATION_META",
]

#: Directory of the hardware files shipped with the package.
SHIPPED_DIR = Path(__file__).resolve().parent / "hardware"

_TOP_KEYS = [
    "name", "description", "device", "calibrated", "chip", "step_time", "calibration", "stacks", "interconnect",
    "price",
]  # fmt: skip
#: The name of a ``[calibration]`` that does not name its software stack.
DEFAULT_STACK = "default"
_CHIP_KEYS = ["peak_bf16_flops_per_s", "hbm_bytes", "hbm_bytes_per_s", "usable_hbm_fraction"]
_STEP_KEYS = ["flops_efficiency", "bandwidth_efficiency", "overhead_s"]
_STEP_OPTIONAL = ["attention_efficiency"]
#: Dense low-precision matmul peaks a chip may state (each with its ``_source``).
_CHIP_OPTIONAL = ["peak_fp8_flops_per_s", "peak_int8_ops_per_s", "peak_fp4_flops_per_s"]
#: Calibrated low-precision matmul time factors (seconds per FLOP relative to bf16), by precision.
MATMUL_FACTOR_KEYS = {p: f"{p}_matmul_time_factor" for p in ("fp8", "int8", "fp4")}
_INTERCONNECT_KEYS = ["link_bytes_per_s", "links_per_chip", "max_chips", "topology", "source"]
_NODE_KEYS = ["chips_per_node", "inter_node_bytes_per_s", "inter_node_source"]
_POD_KEYS = ["chips_per_pod", "inter_pod_bytes_per_s", "inter_pod_source"]
#: Keys of ``[calibration]`` that describe the calibration (the rest are the model's coefficients).
CALIBRATION_META = [
    "model", "r2", "mean_abs_pct_error", "median_abs_pct_error", "max_abs_pct_error",
    "heldout_mean_abs_pct_error", "heldout_median_abs_pct_error", "heldout_max_abs_pct_error", "heldout_spearman",
    "n_samples", "n_validation", "chips_measured",
    "validation_median_abs_pct_error", "activation_bytes", "device_kind", "backend", "jax_version", "date",
    "source", "alternatives", "measured_matmul_flops_per_s", "measured_copy_bytes_per_s",
    *MATMUL_FACTOR_KEYS.values(), "stack", "n_unpriced", "n_dense", "n_moe",
    "heldout_median_abs_pct_error_dense", "heldout_median_abs_pct_error_moe",
]  # fmt: skip
_DEVICES = ("cpu", "gpu", "tpu")


def calibrated_model(name: str) -> CalibratedModel:
    """The core's description of a calibrated step-time model (coefficients, ranges)."""
    for m in calibrated_models():
        if m.name == name:
            return m
    raise invalid_value("model", name, f"one of {', '.join(m.name for m in calibrated_models())}")


@dataclass(frozen=True)
class Hardware:
    """One accelerator chip, loaded from a hardware file: the core's model of it (``core``) and
    what the file says about it (name, sources, calibration record).

    Examples
    --------
    >>> hw = Hardware.load("tpu_v4")
    >>> hw.name, hw.calibrated
    ('tpu_v4', False)
    >>> round(hw.hbm_bytes / 2**30)
    32
    """

    name: str
    description: str
    path: Path
    #: ``cpu``, ``gpu`` or ``tpu``: the JAX backend that may calibrate this file.
    device: str
    core: CoreHardware = field(repr=False)
    #: ``{"chip.hbm_bytes": "source text", ...}``: where each figure comes from.
    sources: dict[str, str] = field(default_factory=dict, repr=False)
    #: The file's ``[calibration]`` section as written (coefficients, errors, provenance).
    calibration: dict[str, Any] = field(default_factory=dict, repr=False)
    #: The interconnect's ``source`` and the price's ``date`` and ``source``, as written.
    notes: dict[str, str] = field(default_factory=dict, repr=False)
    #: The software stack whose calibration is in use (``None``: the datasheet roofline).
    stack: str | None = None
    #: Every calibrated stack of the file, the default (``[calibration]``) first.
    stacks: tuple[str, ...] = ()

    @classmethod
    def load(cls, spec: str | os.PathLike[str], stack: str | None = None) -> Hardware:
        """Loads a hardware file from a path, a shipped file name (``tpu_v4.toml``) or a bare name
        (``tpu_v4``); with ``stack``, that calibration of the file (its ``[calibration]`` when it
        names that stack, else its ``[stacks.NAME]``). Raises ``InvalidInputError`` naming the file
        and key on any problem."""
        path = resolve(spec)
        with in_file(path):
            return _parse(path, stack=stack)

    @property
    def calibrated(self) -> bool:
        return self.core.calibrated_model is not None

    @property
    def step_time_model(self) -> str:
        """The calibrated model's name, or the datasheet roofline's (``roofline_sum``/``_max``)."""
        return self.core.calibrated_model or self.core.roofline

    @property
    def step_time_formula(self) -> str:
        return self.core.step_time_formula

    @property
    def peak_bf16_flops_per_s(self) -> float:
        return self.core.peak_bf16_flops_per_s

    @property
    def hbm_bytes(self) -> float:
        return self.core.hbm_bytes

    @property
    def hbm_bytes_per_s(self) -> float:
        return self.core.hbm_bytes_per_s

    @property
    def usable_hbm_fraction(self) -> float:
        return self.core.usable_hbm_fraction

    @property
    def usable_hbm_bytes(self) -> float:
        return self.core.usable_hbm_bytes

    @property
    def collective_bytes_per_s(self) -> float | None:
        """Bytes/s one chip sends in a ring collective (``None`` without ``[interconnect]``)."""
        return self.core.collective_bytes_per_s

    @property
    def max_chips(self) -> int:
        """Most chips the interconnect joins (1 without ``[interconnect]``)."""
        return self.core.max_chips

    @property
    def usd_per_chip_hour(self) -> float | None:
        return self.core.usd_per_chip_hour

    def check_chips(self, chips: int) -> None:
        """Raises ``InvalidInputError`` unless ``chips`` can train together on this hardware."""
        with in_file(self.path):
            self.core.check_chips(chips)

    def using(self, model: str) -> Hardware:
        """The same chip with another of its calibrated step-time models (one of the
        ``[calibration.alternatives]`` the calibration fitted), e.g. ``"flops"`` to see what a
        FLOPs-only time model would recommend. Raises ``InvalidInputError`` if there is none."""
        alts = self.calibration.get("alternatives") or {}
        if model not in alts:
            have = ", ".join(sorted(alts)) if alts else "none (the file is not calibrated)"
            raise invalid_value("step_time_model", model, f"a calibrated model of this file ({have})", path=self.path)
        with in_file(self.path):
            core = self.core.with_calibration(model, _coefficients(alts[model]), f"calibration.alternatives.{model}")
        return replace(self, core=core)

    @property
    def step_time_error(self) -> tuple[float, str]:
        """Relative error of this file's step time and its source: the calibration's cross-validated
        median error, or the core's assumption for an uncalibrated datasheet roofline."""
        if self.calibrated and "heldout_median_abs_pct_error" in self.calibration:
            return self.core.step_time_error, "the calibration's cross-validated median error"
        return self.core.step_time_error, "uncalibrated: what datasheet rooflines erred on published training steps"

    def step_time_error_for(self, arch: Architecture) -> float:
        """The relative step-time error of ``arch`` on one chip (the core's
        ``configuration_step_error``): the calibration's cross-validated error, or more where the
        file's other calibrated models that fit its data about as well disagree on ``arch``."""
        base = self.step_time_error[0]
        alts = self.calibration.get("alternatives") or {} if self.calibrated else {}
        measured = []
        for name, alt in alts.items():
            err = alt.get("heldout_median_abs_pct_error")
            if isinstance(err, int | float) and not isinstance(err, bool):
                measured.append((float(err) / 100, self.using(name).step_time_for(arch)))
        return configuration_step_error(base, self.step_time_for(arch), measured)

    def step_time_for(self, arch: Architecture) -> float:
        """Seconds per step of ``arch`` on one chip (the core's model, whatever its kind)."""
        return self.core.step_time_for(arch)

    def step_time_parts(self, arch: Architecture) -> StepTimeParts:
        """Where the one-chip step time of ``arch`` goes (``memory_s``, ``compute_s``, ``fixed_s``)."""
        return self.core.step_time_parts(arch)


def shipped_names() -> list[str]:
    """Names of the hardware files shipped with the package, sorted."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.toml"))


#: Environment variable naming the user's hardware directory (default: the platform's per-user
#: configuration directory, e.g. ``~/.config/timescale-frontier/hardware`` on Linux).
USER_DIR_ENV = "TIMESCALE_FRONTIER_HARDWARE_DIR"


def user_dir() -> Path:
    """Directory of the user's own hardware files: calibrations are written here (the shipped files
    are never rewritten) and a name given to ``--hardware`` is looked up here first."""
    env = os.environ.get(USER_DIR_ENV)
    return Path(env).expanduser() if env else platformdirs.user_config_path("timescale-frontier") / "hardware"


def available() -> dict[str, Path]:
    """Every hardware file a bare name finds, by name, sorted: the user's files, and the shipped
    files no user file of the same name replaces."""
    found = {p.stem: p for p in SHIPPED_DIR.glob("*.toml")}
    directory = user_dir()
    if directory.is_dir():
        found |= {p.stem: p for p in directory.glob("*.toml") if p.is_file()}
    return dict(sorted(found.items()))


def as_hardware(hardware: Hardware | str | os.PathLike[str]) -> Hardware:
    """``hardware`` itself, or the file a name or path finds (``Hardware.load``)."""
    return hardware if isinstance(hardware, Hardware) else Hardware.load(hardware)


#: ``hbm_bytes = "machine"`` in a CPU file: the physical memory of the machine the tool runs on.
MACHINE_MEMORY = "machine"


def _machine_memory_bytes(path: Path, device: str) -> int:
    """The machine's physical memory (bytes), for a CPU file's ``hbm_bytes = "machine"``."""
    if device != "cpu":
        raise file_error(
            path,
            f"chip.hbm_bytes = '{MACHINE_MEMORY}' is only for device = \"cpu\" (an accelerator's memory is its own)",
            field="chip.hbm_bytes",
            expected="a number of bytes",
        )
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        raise file_error(
            path,
            f"chip.hbm_bytes = '{MACHINE_MEMORY}': this system does not report its memory; write the bytes instead",
            field="chip.hbm_bytes",
            expected="a number of bytes",
        ) from None


def load_available() -> tuple[list[Hardware], list[tuple[Path, str]]]:
    """Every file of ``available`` loaded, and those that do not load, each with its one-line
    error (one broken file in the user's directory does not hide the others)."""
    loaded: list[Hardware] = []
    broken: list[tuple[Path, str]] = []
    for path in available().values():
        try:
            loaded.append(Hardware.load(path))
        except InvalidInputError as e:
            broken.append((path, str(e)))
    return loaded, broken


def origin(path: Path) -> str:
    """Where a hardware file comes from: "shipped" (the package's), "user" (the user's hardware
    directory) or "file" (a path given directly)."""
    parent = path.resolve().parent
    if parent == SHIPPED_DIR.resolve():
        return "shipped"
    return "user" if parent == user_dir().resolve() else "file"


def resolve(spec: str | os.PathLike[str]) -> Path:
    """Path of a hardware file given as a path, or a bare name: the user's hardware directory
    first (a calibration there replaces the shipped file of the same name), then the shipped files."""
    text = os.fspath(spec)
    path = Path(spec)
    if text.strip() and os.path.lexists(path):  # Path("") is ".", which exists; a broken link is the reader's to name
        return path
    if not text or "/" in text or os.sep in text:
        raise InvalidInputError(
            f"{text or repr(text)}: hardware file not found",
            field="hardware",
            value=text,
            expected="an existing hardware file, or the name of one",
        )
    name = text.removesuffix(".toml")
    found = available()
    if name in found:
        return found[name]
    near = difflib.get_close_matches(name, list(found), n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    raise InvalidInputError(
        f"{text}: no such hardware file or name ({hint}known: {', '.join(found)})",
        field="hardware",
        value=text,
        expected=f"a hardware file or one of {', '.join(found)}",
    )


def _coefficients(section: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a calibration section (the core picks and checks the coefficients)."""
    return {
        k: float(v)
        for k, v in section.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in CALIBRATION_META
    }


#: Keys of ``[calibration]`` that hold text (the other keys of ``CALIBRATION_META`` are figures).
_CALIBRATION_TEXT = ("model", "date", "source", "device_kind", "backend", "jax_version", "chips_measured", "stack")


def _check_record(path: Path, section: str, table: dict[str, Any]) -> None:
    """The figures a calibration recorded about its fit (errors, R^2, rank correlation, counts):
    numbers (types here), each in its range (the core's ``check_calibration_record``), so
    ``hardware show`` and the search never print nan%, inf% or -50% nor fail on text."""
    for key, v in table.items():
        if key not in CALIBRATION_META or key == "alternatives":
            continue
        if key in _CALIBRATION_TEXT:
            if not isinstance(v, str):
                raise invalid_value(f"{section}.{key}", v, "a string", path=path)
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise invalid_value(f"{section}.{key}", v, "a number", path=path)
        with in_file(path):
            check_calibration_record(f"{section}.{key}", float(v))


def _with_sources(path: Path, section: str, tbl: dict[str, Any], keys: list[str], sources: dict[str, str]) -> None:
    _toml.check_keys(path, section, tbl, [k for key in keys for k in (key, f"{key}_source")])
    for key in keys:
        sources[f"{section}.{key}"] = _toml.string(path, section, tbl, f"{key}_source")


def _parse(path: Path, text: str | None = None, stack: str | None = None) -> Hardware:
    """Reads and checks one hardware file (shape and types here; ranges in the core); with
    ``text``, checks that text as the content of ``path`` (before it is written there); with
    ``stack``, the calibration of that software stack."""
    doc = _toml.read_toml(path, "hardware") if text is None else _toml.parse_toml(text, path, "hardware")
    _toml.check_keys(path, "", doc, _TOP_KEYS)
    name = _toml.string(path, "", doc, "name")
    description = _toml.optional_string(path, "", doc, "description") or name
    device = _toml.string(path, "", doc, "device")
    if device not in _DEVICES:
        raise invalid_value("device", device, f"one of {', '.join(_DEVICES)}")
    calibrated = _toml.boolean(path, "", doc, "calibrated", False)

    sources: dict[str, str] = {}
    chip = _toml.table(path, doc, "chip")
    _toml.check_keys(path, "chip", chip, [k for key in _CHIP_KEYS + _CHIP_OPTIONAL for k in (key, f"{key}_source")])
    _with_sources(path, "chip", chip, _CHIP_KEYS + [k for k in _CHIP_OPTIONAL if k in chip], sources)
    step = _toml.table(path, doc, "step_time")
    step_keys = _STEP_KEYS + [k for k in _STEP_OPTIONAL if k in step]
    _toml.check_keys(
        path, "step_time", step, ["model"] + [k for s in _STEP_KEYS + _STEP_OPTIONAL for k in (s, f"{s}_source")]
    )
    _with_sources(path, "step_time", {k: v for k, v in step.items() if k != "model"}, step_keys, sources)
    interconnect = _toml.table(path, doc, "interconnect", required=False)
    notes: dict[str, str] = {}
    topology, link, links, max_chips, per_node, inter = None, None, None, None, None, None
    per_pod, inter_pod = None, None
    if interconnect:
        _toml.check_keys(path, "interconnect", interconnect, _INTERCONNECT_KEYS + _NODE_KEYS + _POD_KEYS)
        link = _toml.number(path, "interconnect", interconnect, "link_bytes_per_s")
        links = _toml.number(path, "interconnect", interconnect, "links_per_chip")
        max_chips = _toml.integer(path, "interconnect", interconnect, "max_chips")
        topology = _toml.string(path, "interconnect", interconnect, "topology")
        notes["interconnect.source"] = _toml.string(path, "interconnect", interconnect, "source")
        if "chips_per_node" in interconnect:
            per_node = _toml.integer(path, "interconnect", interconnect, "chips_per_node")
        inter = _toml.optional_number(path, "interconnect", interconnect, "inter_node_bytes_per_s")
        if inter is not None:
            notes["interconnect.inter_node_source"] = _toml.string(
                path, "interconnect", interconnect, "inter_node_source"
            )
        if "chips_per_pod" in interconnect:
            per_pod = _toml.integer(path, "interconnect", interconnect, "chips_per_pod")
        inter_pod = _toml.optional_number(path, "interconnect", interconnect, "inter_pod_bytes_per_s")
        if inter_pod is not None:
            notes["interconnect.inter_pod_source"] = _toml.string(
                path, "interconnect", interconnect, "inter_pod_source"
            )
    price = _toml.table(path, doc, "price", required=False)
    usd = None
    if price:
        _toml.check_keys(path, "price", price, ["usd_per_chip_hour", "date", "source"])
        usd = _toml.optional_number(path, "price", price, "usd_per_chip_hour")
        notes["price.source"] = _toml.string(path, "price", price, "source")
        date = (
            _toml.string(path, "price", price, "date")
            if usd is not None
            else _toml.optional_string(path, "price", price, "date")
        )
        notes["price.date"] = date or ""
    if chip.get("hbm_bytes") == MACHINE_MEMORY:
        chip = {**chip, "hbm_bytes": _machine_memory_bytes(path, device)}
    chip_figure = {k: _toml.number(path, "chip", chip, k) for k in _CHIP_KEYS}
    step_figure = {k: _toml.number(path, "step_time", step, k) for k in _STEP_KEYS}
    core = CoreHardware(
        peak_bf16_flops_per_s=chip_figure["peak_bf16_flops_per_s"],
        hbm_bytes=chip_figure["hbm_bytes"],
        hbm_bytes_per_s=chip_figure["hbm_bytes_per_s"],
        usable_hbm_fraction=chip_figure["usable_hbm_fraction"],
        roofline=_toml.string(path, "step_time", step, "model"),
        flops_efficiency=step_figure["flops_efficiency"],
        bandwidth_efficiency=step_figure["bandwidth_efficiency"],
        overhead_s=step_figure["overhead_s"],
        attention_efficiency=_toml.optional_number(path, "step_time", step, "attention_efficiency"),
        topology=topology,
        link_bytes_per_s=link,
        links_per_chip=links,
        max_chips=max_chips,
        chips_per_node=per_node,
        inter_node_bytes_per_s=inter,
        chips_per_pod=per_pod,
        inter_pod_bytes_per_s=inter_pod,
        usd_per_chip_hour=usd,
        **{k: _toml.optional_number(path, "chip", chip, k) for k in _CHIP_OPTIONAL},
    )

    calibration = _toml.table(path, doc, "calibration", required=False)
    if calibrated and not calibration:
        raise InvalidInputError(
            "calibrated = true but there is no [calibration] section (run `timescale calibrate`)",
            field="calibrated",
            value="true",
            expected="false without a [calibration] section",
        )
    if calibration and not calibrated:
        raise InvalidInputError(
            "has a [calibration] section but calibrated = false; set calibrated = true to use it",
            field="calibrated",
            value="false",
            expected="true with a [calibration] section",
        )
    stacks = _toml.table(path, doc, "stacks", required=False)
    if stacks and not calibrated:
        raise InvalidInputError(
            "has [stacks.*] calibrations but no default [calibration] (calibrated = false)",
            field="stacks",
            value=", ".join(stacks),
            expected="a [calibration] section (the default stack) beside them",
        )
    default_stack = str(calibration.get("stack", DEFAULT_STACK)) if calibrated else None
    for name_, tbl in stacks.items():
        if not isinstance(tbl, dict):
            raise invalid_value(f"stacks.{name_}", tbl, "a table of one calibration", path=path)
        _calibrated_core(path, core, tbl, f"stacks.{name_}")  # every stack is checked, in use or not
    in_use, section_name = calibration, "calibration"
    if stack is not None and stack != default_stack:
        if stack not in stacks:
            known = [s_ for s_ in (default_stack, *stacks) if s_]
            raise InvalidInputError(
                f"stack = {stack!r} is invalid: expected one of the file's calibrations: {', '.join(known) or 'none'}",
                field="stack",
                value=repr(stack),
                expected=f"one of {', '.join(known) or 'none (the file is not calibrated)'}",
            )
        in_use, section_name = stacks[stack], f"stacks.{stack}"
    if calibrated:
        core = _calibrated_core(path, core, in_use, section_name)
    return Hardware(
        name=name,
        description=description,
        path=path,
        device=device,
        core=core,
        sources=sources,
        calibration=dict(in_use),
        notes=notes,
        stack=(stack or default_stack) if calibrated else None,
        stacks=tuple(s_ for s_ in (default_stack, *stacks) if s_),
    )


def _calibrated_core(path: Path, core: CoreHardware, calibration: dict[str, Any], section: str) -> CoreHardware:
    """``core`` with the calibration of one section (``calibration`` or ``stacks.NAME``), checked."""
    model = _toml.string(path, section, calibration, "model")
    known = {c.name for m in calibrated_models() for c in m.coefficients}
    _toml.check_keys(path, section, calibration, sorted(known) + CALIBRATION_META)
    alternatives = calibration.get("alternatives", {})
    if not isinstance(alternatives, dict) or not all(isinstance(v, dict) for v in alternatives.values()):
        raise InvalidInputError(
            f"{section}.alternatives must hold one [{section}.alternatives.NAME] per model",
            field=f"{section}.alternatives",
            value=repr(alternatives),
            expected=f"one [{section}.alternatives.NAME] per model",
        )
    _check_record(path, section, calibration)
    for alt_name, alt in alternatives.items():
        _check_record(path, f"{section}.alternatives.{alt_name}", alt)
    core = core.with_calibration(model, _coefficients(calibration), section)
    for precision, key in MATMUL_FACTOR_KEYS.items():
        if key in calibration:
            factor = _toml.number(path, section, calibration, key)
            with in_file(path):
                core = core.with_matmul_time_factor(precision, f"{section}.{key}", factor)
    if "heldout_median_abs_pct_error" in calibration:
        err = _toml.number(path, section, calibration, "heldout_median_abs_pct_error")
        with in_file(path):
            core = core.with_step_time_error_pct(f"{section}.heldout_median_abs_pct_error", err)
    return core
