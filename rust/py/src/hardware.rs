//! `CoreHardware` (the core's `Hardware`, built from a hardware file's numbers), `Law`, and the
//! core's registry of calibrated step-time models with their coefficient ranges.

use std::collections::HashMap;

use pyo3::prelude::*;
use timescale_core::error::{non_negative, positive, Range};
use timescale_core::loss::{FitRange, LossInput, LossTerms, ParamConvention, CHINCHILLA_FIT_RANGE, LAWS};
use timescale_core::shape::{FittedShape, ShapeTerm};
use timescale_core::step_time::CALIBRATED_MODELS;
use timescale_core::{Datasheet, Error, Hardware, Law, Network, Roofline, Topology};

use crate::architecture::PyArchitecture;
use crate::error::{AnyInt, IntoPy};

/// The chip as the core sees it. Built by `timescale_frontier.Hardware` from a hardware file; the
/// keyword names are the file's keys, and every range is checked by the core.
#[pyclass(module = "timescale_frontier._core", name = "CoreHardware", frozen)]
#[derive(Clone)]
pub struct PyHardware(pub Hardware);

/// Where a step's time goes, in seconds: moving bytes, computing, fixed overheads.
#[pyclass(module = "timescale_frontier._core", name = "StepTimeParts", frozen, get_all)]
#[derive(Clone)]
pub struct PyStepTimeParts {
    pub memory_s: f64,
    pub compute_s: f64,
    pub fixed_s: f64,
}

impl From<timescale_core::step_time::StepTimeParts> for PyStepTimeParts {
    fn from(p: timescale_core::step_time::StepTimeParts) -> Self {
        PyStepTimeParts { memory_s: p.memory_s, compute_s: p.compute_s, fixed_s: p.fixed_s }
    }
}

/// An accepted interval of a figure: `[lo, hi]` in `unit`, and 0 too when `zero_ok`.
#[pyclass(module = "timescale_frontier._core", name = "Range", frozen, get_all)]
#[derive(Clone)]
pub struct PyRange {
    pub lo: f64,
    pub hi: f64,
    pub unit: &'static str,
    pub zero_ok: bool,
}

impl From<Range> for PyRange {
    fn from(r: Range) -> Self {
        PyRange { lo: r.lo, hi: r.hi, unit: r.unit, zero_ok: r.zero_ok }
    }
}

/// One coefficient of a calibrated model: its key, range and default (files may leave it out).
#[pyclass(module = "timescale_frontier._core", name = "Coefficient", frozen, get_all)]
#[derive(Clone)]
pub struct PyCoefficient {
    pub name: &'static str,
    pub range: PyRange,
    pub default: Option<f64>,
}

/// A calibrated step-time model a hardware file may name (the core's `CALIBRATED_MODELS`).
#[pyclass(module = "timescale_frontier._core", name = "CalibratedModel", frozen, get_all)]
#[derive(Clone)]
pub struct PyCalibratedModel {
    pub name: &'static str,
    pub description: &'static str,
    pub coefficients: Vec<PyCoefficient>,
    /// The work each fitted coefficient multiplies (the fit's feature names).
    pub terms: Vec<&'static str>,
    /// Whether the model needs the whole step on one chip.
    pub one_chip: bool,
}

/// Every calibrated step-time model, in the core's order.
#[pyfunction]
pub fn calibrated_models() -> Vec<PyCalibratedModel> {
    CALIBRATED_MODELS
        .iter()
        .map(|m| PyCalibratedModel {
            name: m.name,
            description: m.description,
            coefficients: m
                .coefficients
                .iter()
                .map(|c| PyCoefficient { name: c.name, range: c.range.into(), default: c.default })
                .collect(),
            terms: m.terms.to_vec(),
            one_chip: m.one_chip,
        })
        .collect()
}

/// The accepted range of every number of a hardware file, by key (`chip.hbm_bytes`, ...).
#[pyfunction]
pub fn hardware_ranges() -> HashMap<&'static str, PyRange> {
    timescale_core::hardware::RANGES.iter().map(|(k, r)| (*k, (*r).into())).collect()
}

fn required<T>(v: Option<T>, field: &str) -> PyResult<T> {
    v.ok_or_else(|| crate::error::to_py(Error::invalid(field, "missing", "a value (the section has the other keys)")))
}

#[pymethods]
impl PyHardware {
    /// A chip with its datasheet roofline (`roofline` is `roofline_sum` or `roofline_max`); the
    /// interconnect when `topology` is given (then its three figures too); the price if known.
    #[new]
    #[pyo3(signature = (*, peak_bf16_flops_per_s, hbm_bytes, hbm_bytes_per_s, usable_hbm_fraction, roofline,
        flops_efficiency, bandwidth_efficiency, overhead_s, attention_efficiency=None, topology=None,
        link_bytes_per_s=None, links_per_chip=None, max_chips=None, chips_per_node=None,
        inter_node_bytes_per_s=None, chips_per_pod=None, inter_pod_bytes_per_s=None, usd_per_chip_hour=None,
        peak_fp8_flops_per_s=None, peak_int8_ops_per_s=None, peak_fp4_flops_per_s=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        peak_bf16_flops_per_s: f64,
        hbm_bytes: f64,
        hbm_bytes_per_s: f64,
        usable_hbm_fraction: f64,
        roofline: &str,
        flops_efficiency: f64,
        bandwidth_efficiency: f64,
        overhead_s: f64,
        attention_efficiency: Option<f64>,
        topology: Option<&str>,
        link_bytes_per_s: Option<f64>,
        links_per_chip: Option<f64>,
        max_chips: Option<AnyInt>,
        chips_per_node: Option<AnyInt>,
        inter_node_bytes_per_s: Option<f64>,
        chips_per_pod: Option<AnyInt>,
        inter_pod_bytes_per_s: Option<f64>,
        usd_per_chip_hour: Option<f64>,
        peak_fp8_flops_per_s: Option<f64>,
        peak_int8_ops_per_s: Option<f64>,
        peak_fp4_flops_per_s: Option<f64>,
    ) -> PyResult<Self> {
        let datasheet = Datasheet {
            peak_bf16_flops_per_s,
            hbm_bytes_per_s,
            roofline: Roofline::parse(roofline).py_err()?,
            flops_efficiency,
            attention_efficiency,
            bandwidth_efficiency,
            overhead_s,
        };
        let network = match topology {
            None => None,
            Some(t) => Some(Network {
                topology: Topology::parse(t).py_err()?,
                link_bytes_per_s: required(link_bytes_per_s, "interconnect.link_bytes_per_s")?,
                links_per_chip: required(links_per_chip, "interconnect.links_per_chip")?,
                max_chips: Hardware::network_count("interconnect.max_chips", required(max_chips, "interconnect.max_chips")?.0)
                    .py_err()?,
                chips_per_node: chips_per_node
                    .map(|k| Hardware::network_count("interconnect.chips_per_node", k.0))
                    .transpose()
                    .py_err()?,
                inter_node_bytes_per_s,
                chips_per_pod: chips_per_pod
                    .map(|k| Hardware::network_count("interconnect.chips_per_pod", k.0))
                    .transpose()
                    .py_err()?,
                inter_pod_bytes_per_s,
            }),
        };
        Hardware::from_datasheet(hbm_bytes, usable_hbm_fraction, datasheet, network, usd_per_chip_hour)
            .and_then(|hw| hw.with_matmul_peaks(peak_fp8_flops_per_s, peak_int8_ops_per_s, peak_fp4_flops_per_s))
            .py_err()
            .map(PyHardware)
    }

    /// The same chip with a calibrated time factor for `precision`'s dense matmuls (fp8, int8 or
    /// fp4; seconds per FLOP relative to bf16); `field` names the file key in errors.
    fn with_matmul_time_factor(&self, precision: &str, field: &str, factor: f64) -> PyResult<PyHardware> {
        let p = timescale_core::hardware::MatmulPrecision::parse(precision).py_err()?;
        self.0.with_matmul_time_factor(p, field, factor).py_err().map(PyHardware)
    }

    /// Seconds per dense matmul FLOP in `precision` relative to bf16 (an error when the chip has no
    /// such format).
    fn matmul_time_factor(&self, precision: &str) -> PyResult<f64> {
        let p = timescale_core::hardware::MatmulPrecision::parse(precision).py_err()?;
        self.0.matmul_time_factor(p).py_err()
    }

    /// The same chip with a calibrated step-time model (`model` names one of
    /// `calibrated_models()`; `coefficients` by key); `section` names the file section in errors.
    #[pyo3(signature = (model, coefficients, section="calibration"))]
    fn with_calibration(&self, model: &str, coefficients: HashMap<String, f64>, section: &str) -> PyResult<PyHardware> {
        self.0.with_calibration(model, |k| coefficients.get(k).copied(), section).py_err().map(PyHardware)
    }

    /// The same chip with its datasheet roofline (no calibration).
    fn uncalibrated(&self) -> PyHardware {
        PyHardware(self.0.uncalibrated())
    }

    /// The same chip with `pct` percent as its step time's error (the file's key `field`;
    /// checked by the core).
    fn with_step_time_error_pct(&self, field: &str, pct: f64) -> PyResult<PyHardware> {
        self.0.with_step_time_error_pct(field, pct).py_err().map(PyHardware)
    }

    /// The step time's relative error: the calibration's cross-validated median error, or the
    /// core's assumption for a datasheet roofline.
    #[getter]
    fn step_time_error(&self) -> f64 {
        self.0.step_time_error
    }

    #[getter]
    fn hbm_bytes(&self) -> f64 {
        self.0.hbm_bytes
    }
    #[getter]
    fn usable_hbm_fraction(&self) -> f64 {
        self.0.usable_hbm_fraction
    }
    #[getter]
    fn usable_hbm_bytes(&self) -> f64 {
        self.0.usable_hbm_bytes()
    }
    #[getter]
    fn peak_bf16_flops_per_s(&self) -> f64 {
        self.0.datasheet.peak_bf16_flops_per_s
    }
    #[getter]
    fn hbm_bytes_per_s(&self) -> f64 {
        self.0.datasheet.hbm_bytes_per_s
    }
    /// The calibrated model's name, or `None` when the step time is the datasheet roofline.
    #[getter]
    fn calibrated_model(&self) -> Option<&'static str> {
        self.0.calibrated.map(|m| m.name)
    }
    /// `roofline_sum` or `roofline_max` (the datasheet model).
    #[getter]
    fn roofline(&self) -> &'static str {
        self.0.datasheet.roofline.name()
    }
    /// The step-time formula with its numbers.
    #[getter]
    fn step_time_formula(&self) -> String {
        self.0.step_time_formula()
    }
    /// Bytes/s one chip sends in a ring collective inside its node (`None` without an interconnect).
    #[getter]
    fn collective_bytes_per_s(&self) -> Option<f64> {
        self.0.interconnect().map(|ic| ic.intra_bytes_per_s)
    }
    /// Chips per node (the whole network when it has no nodes; 1 without an interconnect).
    #[getter]
    fn chips_per_node(&self) -> u32 {
        self.0.interconnect().map_or(1, |ic| ic.chips_per_node)
    }
    /// Bytes/s one chip sends to other nodes (`None` without nodes).
    #[getter]
    fn inter_node_bytes_per_s(&self) -> Option<f64> {
        self.0.network.and_then(|n| n.inter_node_bytes_per_s)
    }
    /// Chips per pod of nodes (`None` without a tier above the nodes).
    #[getter]
    fn chips_per_pod(&self) -> Option<u32> {
        self.0.network.and_then(|n| n.chips_per_pod)
    }
    /// Bytes/s one chip sends to other pods (`None` without pods).
    #[getter]
    fn inter_pod_bytes_per_s(&self) -> Option<f64> {
        self.0.network.and_then(|n| n.inter_pod_bytes_per_s)
    }
    /// Most chips the interconnect joins (1 without one).
    #[getter]
    fn max_chips(&self) -> u32 {
        self.0.max_chips()
    }
    #[getter]
    fn topology(&self) -> Option<&'static str> {
        self.0.network.map(|n| n.topology.name())
    }
    #[getter]
    fn usd_per_chip_hour(&self) -> Option<f64> {
        self.0.usd_per_chip_hour
    }

    /// Raises `InvalidInputError` unless `chips` chips of this hardware can train together.
    fn check_chips(&self, chips: AnyInt) -> PyResult<()> {
        self.0.check_chips(Hardware::chip_count(chips.0).py_err()?).py_err()
    }

    /// Seconds per step of `arch` on one chip (every model kind).
    fn step_time_for(&self, arch: &PyArchitecture) -> f64 {
        self.0.step_time.seconds(&arch.0)
    }

    /// Where the one-chip step time of `arch` goes.
    fn step_time_parts(&self, arch: &PyArchitecture) -> PyStepTimeParts {
        let a = &arch.0;
        self.0.step_time.parts(a, &timescale_core::memcpy::step_work(a)).into()
    }
}

/// A Chinchilla-form law L(N, D) = E + A / N^alpha + B / D^beta and the evidence terms it is used
/// with (shape, vocabulary, context, batch, repetition; `terms` names those that are on).
#[pyclass(module = "timescale_frontier._core", name = "Law", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyLaw(pub Law, pub FitRange);

/// Range used for a law whose fitting data is not known: nothing is flagged as extrapolation.
const UNKNOWN_RANGE: FitRange = FitRange { params: (0.0, f64::INFINITY), tokens: (0.0, f64::INFINITY) };

#[pymethods]
impl PyLaw {
    /// `fit_params` and `fit_tokens` (lo, hi) give the range of the data the law was fitted on;
    /// predictions outside it are flagged as extrapolations.
    /// `shape` (c, aspect_opt, aspect_min, aspect_max) adds the shape term
    /// c (ln(d_model / n_layers / aspect_opt))^2 measured on aspect ratios aspect_min..aspect_max.
    /// A law built from coefficients has no other evidence term (`with_terms` adds them).
    #[new]
    #[pyo3(signature = (e, a, b, alpha, beta, params="total", fit_params=None, fit_tokens=None, shape=None))]
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
        shape: Option<(f64, f64, f64, f64)>,
    ) -> PyResult<Self> {
        let shape = shape.map(|(c, aspect_opt, lo, hi)| ShapeTerm::Fitted(FittedShape { c, aspect_opt, measured: (lo, hi) }));
        let law = Law {
            e,
            a,
            b,
            alpha,
            beta,
            params: ParamConvention::parse(params).py_err()?,
            shape,
            ..timescale_core::loss::BESIROGLU.plain()
        };
        law.validate().py_err()?;
        let fit =
            FitRange { params: fit_params.unwrap_or(UNKNOWN_RANGE.params), tokens: fit_tokens.unwrap_or(UNKNOWN_RANGE.tokens) };
        fit.validate().py_err()?;
        Ok(PyLaw(law, fit))
    }

    /// A built-in law by name (`besiroglu`, the default; `hoffmann`; `muennighoff`), with every
    /// evidence term on.
    #[staticmethod]
    fn builtin(name: &str) -> PyResult<Self> {
        Law::by_name(name).map(|l| PyLaw(l, CHINCHILLA_FIT_RANGE)).py_err()
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

    /// A fitted shape term (c, aspect_opt, aspect_min, aspect_max), or None (no shape term, or
    /// the default one: see `shape_kind`).
    #[getter]
    fn shape(&self) -> Option<(f64, f64, f64, f64)> {
        match self.0.shape {
            Some(ShapeTerm::Fitted(s)) => Some((s.c, s.aspect_opt, s.measured.0, s.measured.1)),
            _ => None,
        }
    }

    /// Which shape term the law has: "gemstones" (the default), "fitted", or None.
    #[getter]
    fn shape_kind(&self) -> Option<&'static str> {
        self.0.shape.map(|s| s.kind())
    }

    /// The shape the law's shape term prices best among those of the size of `d_model` x
    /// `n_layers` (the same n_layers x d_model^2), as (d_model, n_layers), continuous; None
    /// without a shape term.
    fn best_shape(&self, d_model: f64, n_layers: f64) -> PyResult<Option<(f64, f64)>> {
        let (d, l) = (positive("d_model", d_model).py_err()?, positive("n_layers", n_layers).py_err()?);
        Ok(self.0.shape.map(|s| s.best_shape(d, l)))
    }

    /// The shape term (nats/token) at `d_model` x `n_layers` for each of the law's alternatives
    /// (for the default term, the three Gemstones fits): (lowest, highest); None without a shape
    /// term.
    fn shape_term_range(&self, d_model: f64, n_layers: f64) -> PyResult<Option<(f64, f64)>> {
        let (d, l) = (positive("d_model", d_model).py_err()?, positive("n_layers", n_layers).py_err()?);
        Ok(self.0.shape.map(|s| match s {
            ShapeTerm::WidthDepth(_) => timescale_core::shape::gemstones_penalty_range(d, l),
            ShapeTerm::Fitted(f) => (f.at(d, l), f.at(d, l)),
        }))
    }

    /// The evidence terms that are on, in order (`shape`, `vocab`, `context`, `batch`,
    /// `repetition`).
    #[getter]
    fn terms(&self) -> Vec<&'static str> {
        self.0.term_names()
    }

    /// The evidence terms a law may have, in order.
    #[staticmethod]
    fn term_names() -> Vec<&'static str> {
        timescale_core::loss::TERM_NAMES.to_vec()
    }

    /// The default law's name.
    #[staticmethod]
    fn default_name() -> &'static str {
        timescale_core::loss::DEFAULT_LAW
    }

    /// This law with only the evidence terms in `terms` on (each at its default; a fitted shape
    /// term is kept when "shape" is named).
    fn with_terms(&self, terms: Vec<String>) -> PyResult<Self> {
        let names: Vec<&str> = terms.iter().map(String::as_str).collect();
        Ok(PyLaw(self.0.with_terms(&names).py_err()?, self.1))
    }

    /// The law alone, as published (no evidence term).
    fn plain(&self) -> Self {
        PyLaw(self.0.plain(), self.1)
    }

    /// This law evaluated at `eval_context` tokens of context (the context term on).
    fn with_eval_context(&self, eval_context: f64) -> PyResult<Self> {
        Ok(PyLaw(self.0.with_eval_context(eval_context).py_err()?, self.1))
    }

    /// The evaluation context (tokens), or None without the context term.
    #[getter]
    fn eval_context(&self) -> Option<f64> {
        self.0.context.map(|c| c.eval_context)
    }

    /// The reference vocabulary losses are per token of, or None without the vocabulary term
    /// (losses per token of each model's own vocabulary).
    #[getter]
    fn reference_vocab(&self) -> Option<f64> {
        self.0.vocab.map(|v| v.reference_vocab)
    }

    /// Reference tokens per token of a `vocab_size` vocabulary (1 without the vocabulary term).
    fn reference_ratio(&self, vocab_size: f64) -> PyResult<f64> {
        Ok(self.0.reference_ratio(positive("vocab_size", vocab_size).py_err()?))
    }

    /// Tao et al. 2024's optimal vocabulary for `non_vocab` non-vocabulary parameters (their
    /// Approach 3 at the FLOPs their Approach 1 calls compute-optimal).
    #[staticmethod]
    fn tao_optimal_vocab(non_vocab: f64) -> PyResult<f64> {
        Ok(timescale_core::vocab::tao_optimal_vocab(positive("non_vocab", non_vocab).py_err()?))
    }

    /// The loss of `arch` trained on `tokens` tokens with `unique_tokens` unique (reference)
    /// tokens, term by term.
    #[pyo3(signature = (arch, tokens, unique_tokens=None))]
    fn loss_terms(&self, arch: &PyArchitecture, tokens: f64, unique_tokens: Option<f64>) -> PyResult<PyLossTerms> {
        let tokens = non_negative("tokens", tokens).py_err()?;
        timescale_core::predict::check_unique_tokens(unique_tokens).py_err()?;
        Ok(self.0.terms(&LossInput::of(&arch.0, tokens, unique_tokens)).into())
    }

    /// The loss of `arch` trained on `tokens` tokens (nats per reference token), as the search
    /// computes it.
    #[pyo3(signature = (arch, tokens, unique_tokens=None))]
    fn loss_of(&self, arch: &PyArchitecture, tokens: f64, unique_tokens: Option<f64>) -> PyResult<f64> {
        let tokens = non_negative("tokens", tokens).py_err()?;
        timescale_core::predict::check_unique_tokens(unique_tokens).py_err()?;
        Ok(self.0.loss_of(&LossInput::of(&arch.0, tokens, unique_tokens)))
    }

    /// The aspect ratios d_model / n_layers the law has evidence for: those its shape term was
    /// measured on, or Kaplan et al. 2020's 20-200 without one (the search's default guard).
    #[getter]
    fn aspect_domain(&self) -> (f64, f64) {
        self.0.aspect_domain()
    }

    /// Predicted loss (nats/token) for `n_params` parameters and `tokens` training tokens (without
    /// the shape term; see `loss_of_shape`).
    fn loss(&self, n_params: f64, tokens: f64) -> PyResult<f64> {
        Ok(self.0.loss(positive("n_params", n_params).py_err()?, positive("tokens", tokens).py_err()?))
    }

    /// Predicted loss (nats/token) of a model `d_model` wide and `n_layers` deep, with the shape
    /// term if the law has one.
    fn loss_of_shape(&self, n_params: f64, tokens: f64, d_model: f64, n_layers: f64) -> PyResult<f64> {
        let (d, l) = (positive("d_model", d_model).py_err()?, positive("n_layers", n_layers).py_err()?);
        Ok(self.0.loss_of_shape(positive("n_params", n_params).py_err()?, positive("tokens", tokens).py_err()?, d, l))
    }

    /// The shape term (nats/token) at `d_model` / `n_layers`; 0 without one.
    fn shape_term(&self, d_model: f64, n_layers: f64) -> PyResult<f64> {
        Ok(self.0.shape_term(positive("d_model", d_model).py_err()?, positive("n_layers", n_layers).py_err()?))
    }

    /// (parameters, tokens) minimising the loss for `flops` training FLOPs under C = 6 N D
    /// (Hoffmann et al. 2022, eq. 4): the law's own compute-optimal split.
    fn compute_optimal(&self, flops: f64) -> PyResult<(f64, f64)> {
        Ok(self.0.compute_optimal(positive("flops", flops).py_err()?))
    }

    /// How much the loss moves (nats/token) at `tokens` when the step time is off by the relative
    /// error `rel_step_error` (first order): below this, two candidates are not ranked by the model.
    fn loss_change_for_step_time_error(&self, tokens: f64, rel_step_error: f64) -> PyResult<f64> {
        Ok(self.0.loss_change_for_step_time_error(
            positive("tokens", tokens).py_err()?,
            non_negative("rel_step_error", rel_step_error).py_err()?,
        ))
    }

    fn __repr__(&self) -> String {
        let l = &self.0;
        let shape = match l.shape {
            Some(ShapeTerm::Fitted(s)) => format!(", shape=({}, {}, {}, {})", s.c, s.aspect_opt, s.measured.0, s.measured.1),
            _ => String::new(),
        };
        let base = format!(
            "Law(e={}, a={}, b={}, alpha={}, beta={}, params='{}'{shape})",
            l.e,
            l.a,
            l.b,
            l.alpha,
            l.beta,
            l.params.name()
        );
        // A law with evidence terms evaluates back to an equal law through `with_terms`.
        let terms = l.term_names();
        let fitted = matches!(l.shape, Some(ShapeTerm::Fitted(_)));
        if terms.is_empty() || (fitted && terms == ["shape"]) {
            base
        } else {
            let context = l.context.map_or(String::new(), |c| format!(".with_eval_context({})", c.eval_context));
            format!("{base}.with_terms({terms:?}){context}")
        }
    }
}

/// A predicted loss term by term (nats per token of the law's reference vocabulary) and what the
/// law saw: `loss = (irreducible + params) + (shape + vocab + context) + data`; `batch` and
/// `repetition` say how much of `data` (and `params`) the batch size and repeated data cost.
#[pyclass(module = "timescale_frontier._core", name = "LossTerms", frozen, get_all)]
#[derive(Clone)]
pub struct PyLossTerms {
    pub irreducible: f64,
    pub params: f64,
    pub data: f64,
    pub shape: f64,
    pub vocab: f64,
    pub context: f64,
    pub loss: f64,
    pub batch: f64,
    pub repetition: f64,
    pub law_params: f64,
    pub effective_params: f64,
    pub reference_tokens: f64,
    pub effective_tokens: f64,
    pub batch_efficiency: f64,
    pub optimal_batch_tokens: f64,
    pub reference_ratio: f64,
    pub bits_per_char: f64,
}

impl From<LossTerms> for PyLossTerms {
    fn from(t: LossTerms) -> Self {
        PyLossTerms {
            irreducible: t.irreducible,
            params: t.params,
            data: t.data,
            shape: t.shape,
            vocab: t.vocab,
            context: t.context,
            loss: t.loss,
            batch: t.batch,
            repetition: t.repetition,
            law_params: t.law_params,
            effective_params: t.effective_params,
            reference_tokens: t.reference_tokens,
            effective_tokens: t.effective_tokens,
            batch_efficiency: t.batch_efficiency,
            optimal_batch_tokens: t.optimal_batch_tokens,
            reference_ratio: t.reference_ratio,
            bits_per_char: t.bits_per_char,
        }
    }
}

#[pymethods]
impl PyLossTerms {
    /// Every field by name (JSON-ready).
    fn to_dict(&self) -> std::collections::BTreeMap<&'static str, f64> {
        [
            ("irreducible", self.irreducible),
            ("params", self.params),
            ("data", self.data),
            ("shape", self.shape),
            ("vocab", self.vocab),
            ("context", self.context),
            ("loss", self.loss),
            ("batch", self.batch),
            ("repetition", self.repetition),
            ("law_params", self.law_params),
            ("effective_params", self.effective_params),
            ("reference_tokens", self.reference_tokens),
            ("effective_tokens", self.effective_tokens),
            ("batch_efficiency", self.batch_efficiency),
            ("optimal_batch_tokens", self.optimal_batch_tokens),
            ("reference_ratio", self.reference_ratio),
            ("bits_per_char", self.bits_per_char),
        ]
        .into_iter()
        .collect()
    }

    fn __repr__(&self) -> String {
        format!(
            "LossTerms(loss={:.4}, irreducible={:.4}, params={:.4}, data={:.4}, shape={:.4}, vocab={:.4}, context={:.4}, \
             batch={:.4}, repetition={:.4})",
            self.loss,
            self.irreducible,
            self.params,
            self.data,
            self.shape,
            self.vocab,
            self.context,
            self.batch,
            self.repetition
        )
    }
}
