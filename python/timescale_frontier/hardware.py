"""Hardware files: one TOML per chip (``hardware/*.toml``), units in key names, a source for every
figure. ``Hardware.load`` validates a file and builds the core's step-time model from it.

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

from timescale_frontier import _core, _toml
from timescale_frontier._core import Architecture, CoreHardware
from timescale_frontier.errors import InvalidInputError

#: Directory of the hardware files shipped with the package.
SHIPPED_DIR = Path(__file__).resolve().parent / "hardware"

_TOP_KEYS = ["name", "description", "device", "calibrated", "chip", "step_time", "calibration", "interconnect", "price"]
# (key, lower bound, upper bound, unit). Bounds catch unit mistakes (GB/s where bytes/s are due).
_CHIP = [
    ("peak_bf16_flops_per_s", 1e9, 1e17, "FLOP/s"),
    ("hbm_bytes", 2.0**20, 2.0**50, "bytes"),
    ("hbm_bytes_per_s", 1e9, 1e14, "bytes/s"),
    ("usable_hbm_fraction", 0.01, 1.0, "a fraction"),
]
_STEP = [
    ("flops_efficiency", 0.001, 1.0, "a fraction of peak"),
    ("bandwidth_efficiency", 0.001, 1.0, "a fraction of peak"),
    ("overhead_s", 0.0, 3600.0, "seconds"),
]
_STEP_MODELS = ("roofline_sum", "roofline_max")
_LINEAR_COEFFS = [
    ("s_per_memcpy_byte", 0.0, 1e-3, "seconds per byte"),
    ("s_per_flop", 0.0, 1e-3, "seconds per FLOP"),
    ("overhead_s", 0.0, 3600.0, "seconds"),
]
#: Each calibrated step-time model: the core's model kind and the coefficients it stores (names
#: are the core's keyword arguments), with accepted ranges and units.
CALIBRATED_MODELS: dict[str, tuple[str, list[tuple[str, float, float, str]]]] = {
    "memcpy": ("linear", _LINEAR_COEFFS),
    "flops": ("linear", _LINEAR_COEFFS),
    "linear": ("linear", _LINEAR_COEFFS),
    "split": ("split_linear", [
        ("s_per_fixed_byte", 0.0, 1e-3, "seconds per byte"),
        ("s_per_token_byte", 0.0, 1e-3, "seconds per byte"),
        ("s_per_flop", 0.0, 1e-3, "seconds per FLOP"),
        ("s_per_score_byte", 0.0, 1e-3, "seconds per byte"),
        ("overhead_s", 0.0, 3600.0, "seconds"),
    ]),
    "roofline": ("per_op_roofline", [
        ("flops_per_s", 1e6, 1e18, "FLOP/s"),
        ("memcpy_bytes_per_s", 1e6, 1e16, "bytes/s"),
        ("s_per_kernel", 0.0, 1.0, "seconds per kernel"),
        ("overhead_s", 0.0, 3600.0, "seconds"),
    ]),
}  # fmt: skip


#: Coefficients a file may leave out (files calibrated before the term existed), with their value.
OPTIONAL_COEFFICIENTS: dict[str, float] = {"s_per_score_byte": 0.0}


def _coefficients(path: Path, section: str, table: dict[str, Any], model: str) -> dict[str, float]:
    """A calibrated model's coefficients from ``table``, each checked against its range and unit
    (optional ones default); errors name the file and key."""
    return {
        k: (
            OPTIONAL_COEFFICIENTS[k]
            if k in OPTIONAL_COEFFICIENTS and k not in table
            else _toml.number(path, section, table, k, lo, hi, unit)
        )
        for k, lo, hi, unit in CALIBRATED_MODELS[model][1]
    }


def calibrated_core(
    model: str, coeffs: dict[str, float], hbm_bytes: float = 2.0**40, usable_hbm_fraction: float = 1.0
) -> CoreHardware:
    """The core's step-time model for a calibrated model name and its coefficients."""
    kind, _ = CALIBRATED_MODELS[model]
    return CoreHardware(hbm_bytes, usable_hbm_fraction, kind, **coeffs)


def calibrated_formula(model: str, c: dict[str, float]) -> str:
    """The calibrated step-time formula with its numbers, for display."""
    if model == "split":
        return (
            f"{c['s_per_fixed_byte']:.4g} s/byte x MEMCPY(parameters) + {c['s_per_token_byte']:.4g} s/byte"
            f" x MEMCPY(activations) + {c['s_per_flop']:.4g} s/FLOP x FLOPs"
            + (f" + {c['s_per_score_byte']:.4g} s/byte x attention scores" if c.get("s_per_score_byte") else "")
            + f" + {c['overhead_s']:.4g} s (calibrated, split)"
        )
    if model == "roofline":
        return (
            f"sum over ops of max(FLOPs / {c['flops_per_s']:.4g} FLOP/s, bytes / {c['memcpy_bytes_per_s']:.4g}"
            f" B/s) + {c['s_per_kernel']:.4g} s per kernel + {c['overhead_s']:.4g} s (calibrated, per-op roofline)"
        )
    return (
        f"{c['s_per_memcpy_byte']:.4g} s/byte x MEMCPY + {c['s_per_flop']:.4g} s/FLOP x FLOPs"
        f" + {c['overhead_s']:.4g} s (calibrated, {model})"
    )


_CALIBRATION_META = [
    "model", "r2", "mean_abs_pct_error", "median_abs_pct_error", "max_abs_pct_error",
    "heldout_mean_abs_pct_error", "heldout_median_abs_pct_error", "n_samples", "n_validation",
    "validation_median_abs_pct_error", "activation_bytes", "device_kind", "backend", "jax_version", "date",
    "source", "alternatives", "measured_matmul_flops_per_s", "measured_copy_bytes_per_s",
]  # fmt: skip
_DEVICES = ("cpu", "gpu", "tpu")
_INTERCONNECT = [
    ("link_bytes_per_s", 1e6, 1e14, "bytes/s"),
    ("links_per_chip", 1, 64, "links"),
    ("max_chips", 1, 1e6, "chips"),
]
#: Interconnect topologies, and whether the file's link figure counts both directions: switched
#: fabrics quote a per-GPU bidirectional total (NVLink 4's "900 GB/s"), TPU torus links are quoted
#: one-way per link. The core turns links into a collective bandwidth (``Interconnect::from_links``).
TOPOLOGIES: dict[str, bool] = {"3d_torus": False, "2d_torus": False, "nvlink_switch": True, "infinity_fabric": True}
_PRICE = [("usd_per_chip_hour", 0.001, 1000.0, "USD per chip-hour")]


@dataclass(frozen=True)
class Hardware:
    """One accelerator chip, loaded from a hardware file.

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
    calibrated: bool
    peak_bf16_flops_per_s: float
    hbm_bytes: float
    hbm_bytes_per_s: float
    usable_hbm_fraction: float
    #: ``roofline_sum`` / ``roofline_max`` (uncalibrated) or ``memcpy`` / ``flops`` / ``linear``.
    step_time_model: str
    #: The step-time formula with its numbers, for display.
    step_time_formula: str
    core: CoreHardware = field(repr=False)
    sources: dict[str, str] = field(default_factory=dict, repr=False)
    interconnect: dict[str, Any] = field(default_factory=dict, repr=False)
    price: dict[str, Any] = field(default_factory=dict, repr=False)
    calibration: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, spec: str | os.PathLike[str]) -> Hardware:
        """Loads a hardware file from a path, a shipped file name (``tpu_v4.toml``) or a bare name
        (``tpu_v4``). Raises ``InvalidInputError`` naming the file and key on any problem."""
        return _parse(resolve(spec))

    @property
    def collective_bytes_per_s(self) -> float | None:
        """Bytes/s one chip sends in a ring collective (``None`` without ``[interconnect]``)."""
        ic = self.interconnect
        if not ic:
            return None
        return _core.collective_bytes_per_s(
            float(ic["link_bytes_per_s"]), float(ic["links_per_chip"]), TOPOLOGIES[ic["topology"]]
        )

    @property
    def max_chips(self) -> int:
        """Most chips the interconnect joins (1 without ``[interconnect]``)."""
        return int(self.interconnect.get("max_chips", 1)) if self.interconnect else 1

    def check_chips(self, chips: int) -> None:
        """Raises ``InvalidInputError`` unless ``chips`` can train together on this hardware."""
        if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
            raise InvalidInputError(f"chips = {chips!r} is invalid: expected an integer >= 1")
        if chips > 1 and not self.interconnect:
            raise InvalidInputError(
                f"{self.path}: chips = {chips} needs an [interconnect] section (link_bytes_per_s, links_per_chip,"
                " topology, max_chips)"
            )
        if chips > self.max_chips:
            raise InvalidInputError(
                f"{self.path}: chips = {chips} is invalid: expected at most interconnect.max_chips = {self.max_chips}"
            )

    def using(self, model: str) -> Hardware:
        """The same chip with another of its calibrated step-time models (one of the
        ``[calibration.alternatives]`` the calibration fitted), e.g. ``"flops"`` to see what a
        FLOPs-only time model would recommend. Raises ``InvalidInputError`` if there is none."""
        alts = self.calibration.get("alternatives") or {}
        if model not in alts or model not in CALIBRATED_MODELS:
            have = ", ".join(sorted(alts)) if alts else "none (the file is not calibrated)"
            raise InvalidInputError(
                f"{self.path}: --step-time-model {model!r} is invalid: expected a calibrated model of this file ({have})"
            )
        coeffs = _coefficients(self.path, f"calibration.alternatives.{model}", alts[model], model)
        core = calibrated_core(model, coeffs, self.hbm_bytes, self.usable_hbm_fraction)
        return replace(self, step_time_model=model, step_time_formula=calibrated_formula(model, coeffs), core=core)

    def step_time_s(self, flops: float, memcpy_bytes: float) -> float:
        """Seconds per step for ``flops`` FLOP and ``memcpy_bytes`` bytes (step-level models; use
        ``step_time_for`` for per-op and split models)."""
        return self.core.step_time_s(flops, memcpy_bytes)

    def step_time_for(self, arch: Architecture) -> float:
        """Seconds per step of ``arch`` (the core's model, whatever its kind)."""
        return self.core.step_time_for(arch)

    def step_time_parts(self, arch: Architecture) -> tuple[float, float, float]:
        """(memory_s, compute_s, fixed_s): where the step time of ``arch`` goes."""
        return self.core.step_time_parts(arch)


def shipped_names() -> list[str]:
    """Names of the hardware files shipped with the package, sorted."""
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.toml"))


def resolve(spec: str | os.PathLike[str]) -> Path:
    """Path of a hardware file given as a path, a shipped file name or a bare name."""
    path = Path(spec)
    if path.exists():
        return path
    text = os.fspath(spec)
    if not text or "/" in text or os.sep in text:
        raise InvalidInputError(f"{text or repr(text)}: hardware file not found")
    name = text.removesuffix(".toml")
    candidate = SHIPPED_DIR / f"{name}.toml"
    if candidate.is_file():
        return candidate
    names = shipped_names()
    near = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    raise InvalidInputError(f"{text}: no such hardware file or shipped name ({hint}shipped: {', '.join(names)})")


def _figure(
    path: Path, section: str, tbl: dict[str, Any], spec: tuple[str, float, float, str], sources: dict[str, str]
) -> float:
    key, lo, hi, unit = spec
    v = _toml.number(path, section, tbl, key, lo, hi, unit)
    src = _toml.string(path, section, tbl, f"{key}_source")
    sources[f"{section}.{key}"] = src or ""
    return v


def _parse(path: Path) -> Hardware:
    doc = _toml.read_toml(path, "hardware")
    _toml.check_keys(path, "", doc, _TOP_KEYS)
    name = _toml.string(path, "", doc, "name") or path.stem
    description = _toml.string(path, "", doc, "description", required=False) or name
    device = _toml.string(path, "", doc, "device")
    if device not in _DEVICES:
        raise InvalidInputError(f"{path}: device = {device!r} is invalid: expected one of {', '.join(_DEVICES)}")
    calibrated = doc.get("calibrated", False)
    if not isinstance(calibrated, bool):
        raise InvalidInputError(f"{path}: calibrated = {calibrated!r} is invalid: expected true or false")

    sources: dict[str, str] = {}
    chip = _toml.table(path, doc, "chip")
    _toml.check_keys(path, "chip", chip, [k for s in _CHIP for k in (s[0], f"{s[0]}_source")])
    flops, hbm, bw, usable = (_figure(path, "chip", chip, s, sources) for s in _CHIP)

    step = _toml.table(path, doc, "step_time")
    _toml.check_keys(path, "step_time", step, ["model"] + [k for s in _STEP for k in (s[0], f"{s[0]}_source")])
    model = _toml.string(path, "step_time", step, "model")
    if model not in _STEP_MODELS:
        raise InvalidInputError(
            f"{path}: step_time.model = {model!r} is invalid: expected one of {', '.join(_STEP_MODELS)}"
        )
    eff_f, eff_b, overhead = (_figure(path, "step_time", step, s, sources) for s in _STEP)

    calibration = _toml.table(path, doc, "calibration", required=False)
    if calibrated and not calibration:
        raise InvalidInputError(
            f"{path}: calibrated = true but there is no [calibration] section (run `timescale calibrate`)"
        )
    if calibration and not calibrated:
        raise InvalidInputError(
            f"{path}: has a [calibration] section but calibrated = false; set calibrated = true to use it"
        )

    try:
        if calibrated:
            known = {k for _, specs in CALIBRATED_MODELS.values() for k, *_ in specs}
            _toml.check_keys(path, "calibration", calibration, sorted(known) + _CALIBRATION_META)
            model = _toml.string(path, "calibration", calibration, "model")
            if model not in CALIBRATED_MODELS:
                raise InvalidInputError(
                    f"{path}: calibration.model = {model!r} is invalid: expected one of {', '.join(CALIBRATED_MODELS)}"
                )
            c = _coefficients(path, "calibration", calibration, model)
            core = calibrated_core(model, c, hbm, usable)
            formula = calibrated_formula(model, c)
        elif model == "roofline_sum":
            core = CoreHardware(
                hbm,
                usable,
                "linear",
                s_per_memcpy_byte=1.0 / (bw * eff_b),
                s_per_flop=1.0 / (flops * eff_f),
                overhead_s=overhead,
            )
            formula = (
                f"FLOPs / ({eff_f:g} x {flops:.4g} FLOP/s) + MEMCPY / ({eff_b:g} x {bw:.4g} B/s)"
                f" + {overhead:g} s (uncalibrated datasheet roofline)"
            )
        else:
            core = CoreHardware(
                hbm,
                usable,
                "roofline_max",
                flops_per_s=flops * eff_f,
                memcpy_bytes_per_s=bw * eff_b,
                overhead_s=overhead,
            )
            formula = (
                f"max(FLOPs / ({eff_f:g} x {flops:.4g} FLOP/s), MEMCPY / ({eff_b:g} x {bw:.4g} B/s))"
                f" + {overhead:g} s (uncalibrated datasheet roofline)"
            )
    except InvalidInputError as e:
        msg = str(e)
        raise InvalidInputError(msg if msg.startswith(str(path)) else f"{path}: {msg}") from None

    interconnect = _toml.table(path, doc, "interconnect", required=False)
    if interconnect:
        _toml.check_keys(path, "interconnect", interconnect, [s[0] for s in _INTERCONNECT] + ["topology", "source"])
        for s in _INTERCONNECT:
            _toml.number(path, "interconnect", interconnect, *s)
        _toml.string(path, "interconnect", interconnect, "source")
        topology = _toml.string(path, "interconnect", interconnect, "topology")
        if topology not in TOPOLOGIES:
            raise InvalidInputError(
                f"{path}: interconnect.topology = {topology!r} is invalid: expected one of {', '.join(TOPOLOGIES)}"
            )
    price = _toml.table(path, doc, "price", required=False)
    if price:
        _toml.check_keys(path, "price", price, ["usd_per_chip_hour", "date", "source"])
        if "usd_per_chip_hour" in price:
            _toml.number(path, "price", price, *_PRICE[0])
            _toml.string(path, "price", price, "date")
        _toml.string(path, "price", price, "source")

    return Hardware(
        name=name,
        description=description,
        path=path,
        device=device,
        calibrated=calibrated,
        peak_bf16_flops_per_s=flops,
        hbm_bytes=hbm,
        hbm_bytes_per_s=bw,
        usable_hbm_fraction=usable,
        step_time_model=model,
        step_time_formula=formula,
        core=core,
        sources=sources,
        interconnect=dict(interconnect),
        price=dict(price),
        calibration=dict(calibration),
    )
