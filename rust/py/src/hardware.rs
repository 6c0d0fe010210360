//! `Hardware` and `Law`: the numbers a search needs about the chip and the scaling law.

use pyo3::prelude::*;
use timescale_core::loss::{FitRange, ParamConvention, CHINCHILLA_FIT_RANGE, LAWS};
use timescale_core::{Error, Law, StepTimeModel};

use crate::architecture::PyArchitecture;
use crate::error::to_py;
use timescale_core::flops::flops_per_step;
use timescale_core::memcpy::memcpy_bytes_per_step;

/// The chip as the core sees it: memory and step-time model. Built by `timescale_frontier.Hardware`
/// from a hardware file.
#[pyclass(module = "timescale_frontier._core", name = "CoreHardware", frozen)]
#[derive(Clone)]
pub struct PyHardware(pub timescale_core::Hardware);

#[pymethods]
impl PyHardware {
    /// `model` is `"linear"` (t = s_per_memcpy_byte M + s_per_flop F + overhead_s) or
    /// `"roofline_max"` (t = max(F / flops_per_s, M / memcpy_bytes_per_s) + overhead_s).
    #[new]
    #[pyo3(signature = (hbm_bytes, usable_hbm_fraction, model, *, s_per_memcpy_byte=0.0, s_per_flop=0.0,
        overhead_s=0.0, flops_per_s=0.0, memcpy_bytes_per_s=0.0, s_per_kernel=0.0, s_per_fixed_byte=0.0,
        s_per_token_byte=0.0, s_per_score_byte=0.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        hbm_bytes: f64,
        usable_hbm_fraction: f64,
        model: &str,
        s_per_memcpy_byte: f64,
        s_per_flop: f64,
        overhead_s: f64,
        flops_per_s: f64,
        memcpy_bytes_per_s: f64,
        s_per_kernel: f64,
        s_per_fixed_byte: f64,
        s_per_token_byte: f64,
        s_per_score_byte: f64,
    ) -> PyResult<Self> {
        let step_time = match model {
            "linear" => StepTimeModel::Linear { s_per_memcpy_byte, s_per_flop, overhead_s },
            "roofline_max" => StepTimeModel::RooflineMax { flops_per_s, memcpy_bytes_per_s, overhead_s },
            "per_op_roofline" => StepTimeModel::PerOpRoofline { flops_per_s, memcpy_bytes_per_s, s_per_kernel, overhead_s },
            "split_linear" => {
                StepTimeModel::SplitLinear { s_per_fixed_byte, s_per_token_byte, s_per_flop, s_per_score_byte, overhead_s }
            }
            _ => {
                return Err(to_py(Error::invalid(
                    "model",
                    format!("'{model}'"),
                    "'linear', 'split_linear', 'roofline_max' or 'per_op_roofline'",
                )))
            }
        };
        let hw = timescale_core::Hardware { hbm_bytes, usable_hbm_fraction, step_time };
        hw.validate().map_err(to_py)?;
        Ok(PyHardware(hw))
    }

    #[getter]
    fn hbm_bytes(&self) -> f64 {
        self.0.hbm_bytes
    }
    #[getter]
    fn usable_hbm_bytes(&self) -> f64 {
        self.0.usable_hbm_bytes()
    }

    /// Seconds per step for the given FLOPs and MEMCPY bytes (step-level models).
    fn step_time_s(&self, flops: f64, memcpy_bytes: f64) -> f64 {
        self.0.step_time.step_time_s(flops, memcpy_bytes)
    }

    /// Where the step time of `arch` goes: {"memory_s", "compute_s", "fixed_s"} in seconds.
    fn step_time_parts(&self, arch: &PyArchitecture) -> (f64, f64, f64) {
        let a = &arch.0;
        let p = self.0.step_time.parts(a, flops_per_step(a), memcpy_bytes_per_step(a));
        (p.memory_s, p.compute_s, p.fixed_s)
    }

    /// Seconds per step of `arch` (every model, per-op ones included).
    fn step_time_for(&self, arch: &PyArchitecture) -> f64 {
        let a = &arch.0;
        self.0.step_time.step_time_for(a, flops_per_step(a), memcpy_bytes_per_step(a))
    }
}

/// A Chinchilla-form law L(N, D) = E + A / N^alpha + B / D^beta.
#[pyclass(module = "timescale_frontier._core", name = "Law", frozen)]
#[derive(Clone)]
pub struct PyLaw(pub Law, pub FitRange);

/// Range used for a law whose fitting data is not known: nothing is flagged as extrapolation.
const UNKNOWN_RANGE: FitRange = FitRange { params: (0.0, f64::INFINITY), tokens: (0.0, f64::INFINITY) };

#[pymethods]
impl PyLaw {
    /// `fit_params` and `fit_tokens` (lo, hi) give the range of the data the law was fitted on;
    /// predictions outside it are flagged as extrapolations.
    #[new]
    #[pyo3(signature = (e, a, b, alpha, beta, params="total", fit_params=None, fit_tokens=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        e: f64,
        a: f64,
        b: f64,
        alpha: f64,
        beta: f64,
        params: &str,
        fit_params: Option<(f64, f64)>,
        fit_tokens: Option<(f64, f64)>,
    ) -> PyResult<Self> {
        let params = match params {
            "total" => ParamConvention::Total,
            "non_embedding" => ParamConvention::NonEmbedding,
            _ => return Err(to_py(Error::invalid("params", format!("'{params}'"), "'total' or 'non_embedding'"))),
        };
        let law = Law { e, a, b, alpha, beta, params };
        law.validate().map_err(to_py)?;
        let fit = FitRange {
            params: fit_params.unwrap_or(UNKNOWN_RANGE.params),
            tokens: fit_tokens.unwrap_or(UNKNOWN_RANGE.tokens),
        };
        for (field, (lo, hi)) in [("fit_params", fit.params), ("fit_tokens", fit.tokens)] {
            if lo.is_nan() || hi.is_nan() || lo < 0.0 || lo > hi {
                return Err(to_py(Error::invalid(field, format!("({lo}, {hi})"), "(lo, hi) with 0 <= lo <= hi")));
            }
        }
        Ok(PyLaw(law, fit))
    }

    /// A built-in law by name (`hoffmann`, `besiroglu`).
    #[staticmethod]
    fn builtin(name: &str) -> PyResult<Self> {
        Law::by_name(name).map(|l| PyLaw(l, CHINCHILLA_FIT_RANGE)).map_err(to_py)
    }

    /// Names of the built-in laws.
    #[staticmethod]
    fn builtin_names() -> Vec<&'static str> {
        LAWS.iter().map(|(n, _)| *n).collect()
    }

    #[getter]
    fn e(&self) -> f64 {
        self.0.e
    }
    #[getter]
    fn a(&self) -> f64 {
        self.0.a
    }
    #[getter]
    fn b(&self) -> f64 {
        self.0.b
    }
    #[getter]
    fn alpha(&self) -> f64 {
        self.0.alpha
    }
    #[getter]
    fn beta(&self) -> f64 {
        self.0.beta
    }
    #[getter]
    fn params(&self) -> &'static str {
        self.0.params.name()
    }

    /// (lo, hi) parameters of the data the law was fitted on.
    #[getter]
    fn fit_params(&self) -> (f64, f64) {
        self.1.params
    }
    /// (lo, hi) training tokens of the data the law was fitted on.
    #[getter]
    fn fit_tokens(&self) -> (f64, f64) {
        self.1.tokens
    }

    /// Predicted loss (nats/token) for `n_params` parameters and `tokens` training tokens.
    fn loss(&self, n_params: f64, tokens: f64) -> f64 {
        self.0.loss(n_params, tokens)
    }

    fn __repr__(&self) -> String {
        let l = &self.0;
        format!("Law(e={}, a={}, b={}, alpha={}, beta={}, params='{}')", l.e, l.a, l.b, l.alpha, l.beta, l.params.name())
    }
}
