//! `predict`: every metric of one architecture (the core's `predict`), as typed objects.

use pyo3::prelude::*;
use timescale_core::predict::{predict as core_predict, PredictOptions, Prediction, ShardingOption};
use timescale_core::sharding::{check_layout, sharded_step as core_sharded_step, DataParallel, ShardedStep, Sharding};
use timescale_core::Chips;

use crate::architecture::{PyArchitecture, PyStepWork};
use crate::budget::{PyBudget, PyChips, PyResolvedBudget};
use crate::error::IntoPy;
use crate::hardware::{PyHardware, PyLaw, PyStepTimeParts};

/// One sharded training step, per chip (seconds and bytes); on one chip, no communication.
#[pyclass(module = "timescale_frontier._core", name = "ShardedStep", frozen, get_all)]
#[derive(Clone)]
pub struct PyShardedStep {
    /// e.g. "DP 8", "FSDP 4 x TP 2", "single chip", "ZeRO-1 DP 8 x TP 4 SP x PP 8 (VP 5)".
    pub sharding: String,
    /// The layout itself (every degree).
    pub layout: PyLayout,
    pub dp: u32,
    pub tp: u32,
    pub fsdp: bool,
    /// Peak device memory on one chip (bytes).
    pub memory_bytes: f64,
    pub memcpy_bytes: f64,
    /// The chip's step without communication (s).
    pub compute_s: f64,
    /// Data-parallel collectives (s), overlapped with `compute_s`.
    pub dp_comm_s: f64,
    /// Tensor-parallel collectives (s), not overlapped.
    pub tp_comm_s: f64,
    /// The pipeline's fill and drain (s).
    pub bubble_s: f64,
    /// Pipeline sends (s), not overlapped.
    pub pp_comm_s: f64,
    /// Context-parallel key/value exchange (s), overlapped with compute.
    pub cp_comm_s: f64,
    /// Expert-parallel all-to-alls (s), not overlapped.
    pub ep_comm_s: f64,
    pub dp_comm_bytes: f64,
    pub tp_comm_bytes: f64,
    pub pp_comm_bytes: f64,
    pub cp_comm_bytes: f64,
    pub ep_comm_bytes: f64,
    /// `max(compute_s + bubble_s, dp_comm_s + cp_comm_s) + tp_comm_s + pp_comm_s + ep_comm_s` (s).
    pub step_time_s: f64,
    /// `memory`, `compute` or `communication`.
    pub bound: &'static str,
    /// Where `compute_s` goes.
    pub parts: PyStepTimeParts,
    /// The chip's work per step (what `compute_s` prices).
    pub work: PyStepWork,
    /// Micro-steps per optimizer step on each chip (gradient accumulation).
    pub micro_steps: f64,
    /// The pipeline bubble as a fraction of the forward and backward time.
    pub bubble_fraction: f64,
    /// Seconds per dense matmul FLOP relative to bf16 in the layout's matmul format.
    pub matmul_time_factor: f64,
}

impl From<&ShardedStep> for PyShardedStep {
    fn from(st: &ShardedStep) -> Self {
        PyShardedStep {
            sharding: st.sharding.name(),
            layout: PyLayout(st.sharding),
            dp: st.sharding.dp,
            tp: st.sharding.tp,
            fsdp: st.sharding.data == DataParallel::Sharded && st.sharding.dp > 1,
            memory_bytes: st.memory_bytes,
            memcpy_bytes: st.memcpy_bytes,
            compute_s: st.compute_s,
            dp_comm_s: st.dp_comm_s,
            tp_comm_s: st.tp_comm_s,
            bubble_s: st.bubble_s,
            pp_comm_s: st.pp_comm_s,
            cp_comm_s: st.cp_comm_s,
            ep_comm_s: st.ep_comm_s,
            dp_comm_bytes: st.dp_comm_bytes,
            tp_comm_bytes: st.tp_comm_bytes,
            pp_comm_bytes: st.pp_comm_bytes,
            cp_comm_bytes: st.cp_comm_bytes,
            ep_comm_bytes: st.ep_comm_bytes,
            step_time_s: st.step_time_s,
            bound: st.bound.name(),
            parts: st.parts.into(),
            work: st.work.into(),
            micro_steps: st.micro_steps,
            bubble_fraction: st.bubble_fraction,
            matmul_time_factor: st.matmul_time_factor,
        }
    }
}

/// How training is spread over chips: data (with a ZeRO stage), tensor (with or without sequence
/// parallelism), pipeline (with virtual stages) and context parallel degrees. The core checks
/// every degree.
#[pyclass(module = "timescale_frontier._core", name = "Layout", frozen, eq, hash)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyLayout(pub Sharding);

#[pymethods]
impl PyLayout {
    #[new]
    #[pyo3(signature = (*, dp=1, tp=1, pp=1, vp=1, cp=1, sp=false, zero=0, ep=1, matmul="bf16"))]
    #[allow(clippy::too_many_arguments)]
    fn new(dp: i64, tp: i64, pp: i64, vp: i64, cp: i64, sp: bool, zero: i64, ep: i64, matmul: &str) -> PyResult<Self> {
        let degree =
            |field: &str, v: i64| timescale_core::error::integer_in::<u32>(field, i128::from(v), 1, i128::from(u32::MAX));
        let stage: u32 = timescale_core::error::integer_in("zero", i128::from(zero), 0, i128::from(u32::MAX)).py_err()?;
        let data = timescale_core::sharding::DataParallel::from_zero_stage(stage).py_err()?;
        let s = Sharding::layout(
            degree("dp", dp).py_err()?,
            degree("tp", tp).py_err()?,
            degree("pp", pp).py_err()?,
            degree("vp", vp).py_err()?,
            degree("cp", cp).py_err()?,
            sp,
            data,
        )
        .and_then(|s| s.with_experts(degree("ep", ep)?))
        .py_err()?;
        Ok(PyLayout(s.with_matmul(timescale_core::hardware::MatmulPrecision::parse(matmul).py_err()?)))
    }
    #[getter]
    fn dp(&self) -> u32 {
        self.0.dp
    }
    #[getter]
    fn tp(&self) -> u32 {
        self.0.tp
    }
    #[getter]
    fn pp(&self) -> u32 {
        self.0.pp
    }
    #[getter]
    fn vp(&self) -> u32 {
        self.0.vp
    }
    #[getter]
    fn cp(&self) -> u32 {
        self.0.cp
    }
    #[getter]
    fn sp(&self) -> bool {
        self.0.sp
    }
    #[getter]
    fn ep(&self) -> u32 {
        self.0.ep
    }
    /// The dense matmuls' number format: bf16, fp8, int8 or fp4.
    #[getter]
    fn matmul(&self) -> &'static str {
        self.0.matmul.name()
    }
    /// ZeRO stage of the data-parallel dimension: 0 replicated, 1 optimizer, 2 gradients, 3 FSDP.
    #[getter]
    fn zero(&self) -> u32 {
        self.0.data.zero_stage()
    }
    /// dp x tp x pp x cp.
    #[getter]
    fn chips(&self) -> u32 {
        self.0.chips()
    }
    /// e.g. "ZeRO-1 DP 8 x TP 4 SP x PP 8 (VP 5)".
    #[getter]
    fn name(&self) -> String {
        self.0.name()
    }
    fn to_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let s = slf.get().0;
        let d = pyo3::types::PyDict::new(slf.py());
        for (k, v) in
            [("dp", s.dp), ("tp", s.tp), ("pp", s.pp), ("vp", s.vp), ("cp", s.cp), ("ep", s.ep), ("zero", s.data.zero_stage())]
        {
            d.set_item(k, v)?;
        }
        d.set_item("sp", s.sp)?;
        d.set_item("matmul", s.matmul.name())?;
        Ok(d.into_any())
    }
    fn __repr__(&self) -> String {
        let s = self.0;
        format!(
            "Layout(dp={}, tp={}, pp={}, vp={}, cp={}, sp={}, zero={}, ep={}, matmul='{}')",
            s.dp,
            s.tp,
            s.pp,
            s.vp,
            s.cp,
            if s.sp { "True" } else { "False" },
            s.data.zero_stage(),
            s.ep,
            s.matmul.name()
        )
    }
}

/// The step of `arch` on `hardware` trained with `layout` (the core's `sharded_step`); an error
/// naming the degree when the layout does not split the architecture or the hardware cannot hold
/// its chips.
#[pyfunction]
pub fn sharded_step(py: Python<'_>, arch: &PyArchitecture, hardware: &PyHardware, layout: &PyLayout) -> PyResult<PyShardedStep> {
    let (a, hw, l) = (arch.0, hardware.0, layout.0);
    a.validate().py_err()?;
    check_layout(&a, &hw, l).py_err()?;
    let st = py.detach(|| core_sharded_step(&a, &hw, l)).expect("check_divides accepts only layouts that split it");
    Ok((&st).into())
}

/// The fastest layout of `arch` on `chips` chips that fits (the core's `best_layout`: TP with SP
/// in a node, CP, PP with virtual stages, ZeRO-1 or FSDP, each matmul format of `matmuls` the chip
/// has), or `None`, with how many layouts were priced.
#[pyfunction]
#[pyo3(signature = (arch, hardware, chips, *, matmuls=vec!["bf16".to_string()]))]
pub fn best_layout(
    py: Python<'_>,
    arch: &PyArchitecture,
    hardware: &PyHardware,
    chips: i64,
    matmuls: Vec<String>,
) -> PyResult<(Option<PyShardedStep>, usize)> {
    let (a, hw) = (arch.0, hardware.0);
    a.validate().py_err()?;
    let chips = timescale_core::hardware::Hardware::chip_count(i128::from(chips)).py_err()?;
    hw.check_chips(chips).py_err()?;
    let formats = matmuls
        .iter()
        .map(|m| timescale_core::hardware::MatmulPrecision::parse(m))
        .collect::<timescale_core::Result<Vec<_>>>()
        .py_err()?;
    let (best, priced) = py.detach(|| timescale_core::sharding::best_layout(&a, &hw, chips, &formats));
    Ok((best.as_ref().map(Into::into), priced))
}

/// One sharding considered on several chips: whether it divides the architecture and fits.
#[pyclass(module = "timescale_frontier._core", name = "ShardingOption", frozen, get_all)]
#[derive(Clone)]
pub struct PyShardingOption {
    pub sharding: String,
    pub dp: u32,
    pub tp: u32,
    pub divides: bool,
    pub fits_memory: bool,
    /// `None` when the sharding does not divide the architecture.
    pub step: Option<PyShardedStep>,
}

impl From<&ShardingOption> for PyShardingOption {
    fn from(o: &ShardingOption) -> Self {
        PyShardingOption {
            sharding: o.sharding.name(),
            dp: o.sharding.dp,
            tp: o.sharding.tp,
            divides: o.step.is_some(),
            fits_memory: o.fits_memory,
            step: o.step.as_ref().map(Into::into),
        }
    }
}

/// A chip count considered: its budget, the predicted loss there (`None`: no step fits in the
/// budget) and whether it fits in memory (only counts where it fits are chosen, when any does).
#[pyclass(module = "timescale_frontier._core", name = "ChipCount", frozen, get_all)]
#[derive(Clone)]
pub struct PyChipCount {
    pub chips: u32,
    pub budget: PyResolvedBudget,
    pub loss: Option<f64>,
    pub fits_memory: bool,
}

#[pymethods]
impl PyChipCount {
    fn __repr__(&self) -> String {
        format!(
            "ChipCount(chips={}, hours={:.4}, loss={}, fits_memory={})",
            self.chips,
            self.budget.seconds / 3600.0,
            self.loss.map_or("None".to_owned(), |l| format!("{l:.4}")),
            if self.fits_memory { "True" } else { "False" }
        )
    }
}

/// Every field of `obj` as plain data (the package's one converter, `_data.fields_data`).
pub(crate) fn plain_data<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    obj.py().import("timescale_frontier._data")?.getattr("fields_data")?.call1((obj,))
}

/// Every metric of one architecture for one budget on `chips` chips (units in the names).
#[pyclass(module = "timescale_frontier._core", name = "Prediction", frozen, get_all)]
#[derive(Clone)]
pub struct PyPrediction {
    pub architecture: PyArchitecture,
    pub chips: u32,
    pub budget: PyResolvedBudget,
    /// Every parameter (a mixture's every expert).
    pub params: f64,
    pub non_embedding_params: f64,
    /// The parameters one token uses (`params` for a dense model; a mixture's `top_k +
    /// shared_experts` experts and router): the count the loss law sees.
    pub active_params: f64,
    pub active_non_embedding_params: f64,
    pub flops_per_step: f64,
    /// Per chip.
    pub memcpy_bytes_per_step: f64,
    /// Per chip.
    pub memory_bytes: f64,
    pub fits_memory: bool,
    pub step_time_s: f64,
    pub steps: f64,
    pub tokens: f64,
    pub tokens_per_step: f64,
    pub effective_tokens: f64,
    pub epochs: Option<f64>,
    /// Predicted final loss (nats/token); `None` when not one step fits in the budget.
    pub loss: Option<f64>,
    pub step: PyShardedStep,
    pub shardings: Vec<PyShardingOption>,
    /// The loss term by term (`None` when not one step fits in the budget).
    pub loss_terms: Option<crate::hardware::PyLossTerms>,
    /// Why not to trust the numbers, in words; `flags` are the same as short codes.
    pub warnings: Vec<String>,
    pub flags: Vec<&'static str>,
    /// False when a flag says the number is an extrapolation outside the measured domain.
    pub in_domain: bool,
    /// With several chip counts, each count that splits the architecture.
    pub chip_counts: Vec<PyChipCount>,
}

#[pymethods]
impl PyPrediction {
    /// Every field as plain data (JSON-ready), the loss terms included.
    fn to_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        plain_data(slf.as_any())
    }

    /// The answer in one line (every field stays an attribute).
    fn __repr__(&self) -> String {
        let a = &self.architecture.0;
        format!(
            "Prediction(d_model={}, n_layers={}, chips={}, loss={}, step_time_s={:.4}, tokens={:.4e}, params={:.4e}, \
             memory_bytes={:.4e}, fits_memory={}, in_domain={})",
            a.d_model,
            a.n_layers,
            self.chips,
            self.loss.map_or("None".to_owned(), |l| format!("{l:.4}")),
            self.step_time_s,
            self.tokens,
            self.params,
            self.memory_bytes,
            if self.fits_memory { "True" } else { "False" },
            if self.in_domain { "True" } else { "False" },
        )
    }
}

impl From<&Prediction> for PyPrediction {
    fn from(p: &Prediction) -> Self {
        let m = &p.metrics;
        PyPrediction {
            architecture: PyArchitecture(p.arch),
            chips: p.chips,
            budget: p.budget.into(),
            params: m.params,
            non_embedding_params: m.non_embedding_params,
            active_params: timescale_core::params::active_params(&p.arch),
            active_non_embedding_params: timescale_core::params::active_non_embedding_params(&p.arch),
            flops_per_step: m.flops_per_step,
            memcpy_bytes_per_step: m.memcpy_bytes_per_step,
            memory_bytes: m.memory_bytes,
            fits_memory: m.fits_memory,
            step_time_s: m.step_time_s,
            steps: m.steps,
            tokens: m.tokens,
            tokens_per_step: p.tokens_per_step,
            effective_tokens: m.effective_tokens,
            epochs: p.epochs,
            // No NaN or inf crosses the boundary: a budget shorter than one step has no loss.
            loss: m.loss.is_finite().then_some(m.loss),
            step: (&p.step).into(),
            shardings: p.shardings.iter().map(Into::into).collect(),
            loss_terms: m.loss.is_finite().then(|| p.loss_terms().into()),
            warnings: p.warnings(),
            flags: p.validity.iter().map(|v| v.code()).collect(),
            in_domain: timescale_core::metrics::in_domain(&p.validity),
            chip_counts: p
                .chip_counts
                .iter()
                .map(|(chips, budget, loss, fits_memory)| PyChipCount {
                    chips: *chips,
                    budget: (*budget).into(),
                    loss: loss.is_finite().then_some(*loss),
                    fits_memory: *fits_memory,
                })
                .collect(),
        }
    }
}

/// Every metric of `arch` trained on `hardware` for `budget` (the core's `predict`): on `chips`
/// chips (an int, a list to choose from, or "auto") with the fastest sharding that fits.
#[pyfunction]
#[pyo3(signature = (arch, hardware, budget, law, *, chips=None, unique_tokens=None, layout=None))]
#[allow(clippy::too_many_arguments)]
pub fn predict(
    py: Python<'_>,
    arch: &PyArchitecture,
    hardware: &PyHardware,
    budget: &PyBudget,
    law: &PyLaw,
    chips: Option<PyChips>,
    unique_tokens: Option<f64>,
    layout: Option<PyRef<'_, PyLayout>>,
) -> PyResult<PyPrediction> {
    let opts = PredictOptions { law: law.0, fit: law.1, unique_tokens, layout: layout.map(|l| l.0) };
    let (a, hw, b) = (arch.0, hardware.0, budget.core());
    let p = py.detach(|| core_predict(&a, &hw, &b, &chips.map_or_else(Chips::default, |c| c.0), &opts)).py_err()?;
    Ok((&p).into())
}

/// `arch` trained for `tokens` tokens on `chips` chips (one count; the core's `predict_tokens`):
/// whole steps, the wall-clock time they take (`budget`) and the loss term by term.
#[pyfunction]
#[pyo3(signature = (arch, hardware, tokens, law, *, chips=None, unique_tokens=None, layout=None))]
#[allow(clippy::too_many_arguments)]
pub fn predict_tokens(
    py: Python<'_>,
    arch: &PyArchitecture,
    hardware: &PyHardware,
    tokens: Option<f64>,
    law: &PyLaw,
    chips: Option<PyChips>,
    unique_tokens: Option<f64>,
    layout: Option<PyRef<'_, PyLayout>>,
) -> PyResult<PyPrediction> {
    let opts = PredictOptions { law: law.0, fit: law.1, unique_tokens, layout: layout.map(|l| l.0) };
    let Some(tokens) = tokens else {
        return Err(timescale_core::Error::invalid("budget", "none", "hours, budget_usd, or tokens to train for")).py_err();
    };
    let chips = match chips.map(|c| c.0) {
        None | Some(Chips::One) => 1,
        Some(Chips::Count(n)) => n,
        Some(_) => {
            return Err(timescale_core::Error::invalid("chips", "several counts", "one chip count when training for tokens"))
                .py_err()
        }
    };
    let (a, hw) = (arch.0, hardware.0);
    let p = py.detach(|| timescale_core::predict::predict_tokens(&a, &hw, tokens, chips, &opts)).py_err()?;
    Ok((&p).into())
}
