//! `SearchSpace` and `search`: the core's search plan (one search per chip count) run in GIL-free
//! chunks that report progress and honour Ctrl-C, answered with typed objects.

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use timescale_core::architecture::Recompute;
use timescale_core::search::{rows, Guards, Rejections, Row, SearchOutcome, SearchParams, SearchPlan, SearchRequest};
use timescale_core::{Attention, Chips, Error, Mlp, Precision, SearchSpace};

use crate::architecture::PyArchitecture;
use crate::budget::{PyBudget, PyChips, PyResolvedBudget};
use crate::error::{to_py, AnyInt, IntoPy};
use crate::hardware::{PyHardware, PyLaw};
use crate::predict::PyShardedStep;

/// The Cartesian product of hyperparameter axes (see the core's `SearchSpace`).
#[pyclass(module = "timescale_frontier._core", name = "SearchSpace", frozen)]
#[derive(Clone)]
pub struct PySearchSpace(pub SearchSpace);

fn parse_all<T>(names: Vec<String>, parse: fn(&str) -> timescale_core::Result<T>) -> PyResult<Vec<T>> {
    names.iter().map(|s| parse(s).py_err()).collect()
}

#[pymethods]
impl PySearchSpace {
    /// Every axis is optional; a missing axis takes the default space's values.
    #[new]
    #[pyo3(signature = (*, d_model=None, n_layers=None, head_dim=None, kv_group=None, mlp=None, ffn_mult=None,
        attention=None, tied_embeddings=None, vocab_size=None, seq_len=None, recompute=None, micro_batch=None,
        batch_size=None, param_bytes=None, activation_bytes=None, optimizer_bytes=None, d_ff_multiple=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        d_model: Option<Vec<i64>>,
        n_layers: Option<Vec<i64>>,
        head_dim: Option<Vec<i64>>,
        kv_group: Option<Vec<i64>>,
        mlp: Option<Vec<String>>,
        ffn_mult: Option<Vec<f64>>,
        attention: Option<Vec<String>>,
        tied_embeddings: Option<Vec<bool>>,
        vocab_size: Option<Vec<i64>>,
        seq_len: Option<Vec<i64>>,
        recompute: Option<Vec<String>>,
        micro_batch: Option<Vec<Option<i64>>>,
        batch_size: Option<Vec<i64>>,
        param_bytes: Option<f64>,
        activation_bytes: Option<f64>,
        optimizer_bytes: Option<f64>,
        d_ff_multiple: Option<AnyInt>,
    ) -> PyResult<Self> {
        let d = SearchSpace::default();
        let p = Precision::default();
        let int = |field: &str, given: Option<Vec<i64>>, default: Vec<u32>| -> PyResult<Vec<u32>> {
            given.map_or(Ok(default), |v| SearchSpace::int_axis(field, &v).py_err())
        };
        let s = SearchSpace {
            d_model: int("d_model", d_model, d.d_model)?,
            n_layers: int("n_layers", n_layers, d.n_layers)?,
            head_dim: int("head_dim", head_dim, d.head_dim)?,
            kv_group: int("kv_group", kv_group, d.kv_group)?,
            mlp: mlp.map_or(Ok(d.mlp), |v| parse_all(v, Mlp::parse))?,
            ffn_mult: ffn_mult.unwrap_or(d.ffn_mult),
            attention: attention.map_or(Ok(d.attention), |v| parse_all(v, Attention::parse))?,
            tied_embeddings: tied_embeddings.unwrap_or(d.tied_embeddings),
            vocab_size: int("vocab_size", vocab_size, d.vocab_size)?,
            seq_len: int("seq_len", seq_len, d.seq_len)?,
            recompute: recompute.map_or(Ok(d.recompute), |v| parse_all(v, Recompute::parse))?,
            micro_batch: match micro_batch {
                None => d.micro_batch,
                Some(v) => v
                    .into_iter()
                    .map(|m| m.map(|x| timescale_core::architecture::dim("micro_batch", x)).transpose())
                    .collect::<timescale_core::Result<Vec<_>>>()
                    .py_err()?,
            },
            batch_size: int("batch_size", batch_size, d.batch_size)?,
            precision: Precision {
                param_bytes: param_bytes.unwrap_or(p.param_bytes),
                activation_bytes: activation_bytes.unwrap_or(p.activation_bytes),
                optimizer_bytes: optimizer_bytes.unwrap_or(p.optimizer_bytes),
            },
            d_ff_multiple: match d_ff_multiple {
                Some(m) => timescale_core::search::d_ff_multiple(m.0).py_err()?,
                None => d.d_ff_multiple,
            },
        };
        s.validate().py_err()?;
        Ok(PySearchSpace(s))
    }

    /// Number of configurations (malformed ones included).
    #[getter]
    fn size(&self) -> u64 {
        self.0.size_f64() as u64
    }

    /// The axes as a dict of lists.
    fn axes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = &self.0;
        let d = PyDict::new(py);
        d.set_item("d_model", s.d_model.clone())?;
        d.set_item("n_layers", s.n_layers.clone())?;
        d.set_item("head_dim", s.head_dim.clone())?;
        d.set_item("kv_group", s.kv_group.clone())?;
        d.set_item("mlp", s.mlp.iter().map(|m| m.name()).collect::<Vec<_>>())?;
        d.set_item("ffn_mult", s.ffn_mult.clone())?;
        d.set_item("attention", s.attention.iter().map(|a| a.name()).collect::<Vec<_>>())?;
        d.set_item("tied_embeddings", s.tied_embeddings.clone())?;
        d.set_item("vocab_size", s.vocab_size.clone())?;
        d.set_item("seq_len", s.seq_len.clone())?;
        d.set_item("recompute", s.recompute.iter().map(|r| r.name()).collect::<Vec<_>>())?;
        d.set_item("micro_batch", s.micro_batch.clone())?;
        d.set_item("batch_size", s.batch_size.clone())?;
        d.set_item("d_ff_multiple", s.d_ff_multiple)?;
        Ok(d)
    }

    /// The configuration at `index` in enumeration order; `None` when malformed.
    fn config_at(&self, index: u64) -> PyResult<Option<PyArchitecture>> {
        if index >= self.size() {
            return Err(to_py(Error::invalid("index", index, &format!("below the space size {}", self.size()))));
        }
        Ok(self.0.config_at(index).map(PyArchitecture))
    }
}

/// Configurations dropped by a search, by reason.
#[pyclass(module = "timescale_frontier._core", name = "Rejections", frozen, get_all)]
#[derive(Clone)]
pub struct PyRejections {
    /// head_dim does not divide d_model, or kv_group the head count.
    pub malformed: u64,
    /// d_model / n_layers outside the guard.
    pub aspect_ratio: u64,
    /// Needs more than the usable memory (per chip).
    pub memory: u64,
    /// Not one step fits in the budget.
    pub budget: u64,
    /// Tokens per step above the cap (or the critical batch).
    pub batch_cap: u64,
    /// No sharding over the chips divides the configuration.
    pub unshardable: u64,
}

impl From<&Rejections> for PyRejections {
    fn from(r: &Rejections) -> Self {
        PyRejections {
            malformed: r.malformed,
            aspect_ratio: r.aspect_ratio,
            memory: r.memory,
            budget: r.budget,
            batch_cap: r.batch_cap,
            unshardable: r.unshardable,
        }
    }
}

/// One configuration of a search's answer: its architecture, every metric and its step.
#[pyclass(module = "timescale_frontier._core", name = "Candidate", frozen, get_all)]
#[derive(Clone)]
pub struct PyCandidate {
    /// Position in the search space's enumeration order.
    pub index: u64,
    pub architecture: PyArchitecture,
    pub params: f64,
    pub non_embedding_params: f64,
    pub flops_per_step: f64,
    pub memcpy_bytes_per_step: f64,
    pub memory_bytes: f64,
    pub step_time_s: f64,
    pub steps: f64,
    pub tokens: f64,
    pub tokens_per_step: f64,
    pub effective_tokens: f64,
    pub loss: f64,
    pub step: PyShardedStep,
}

#[pymethods]
impl PyCandidate {
    /// The candidate in one line (every field stays an attribute).
    fn __repr__(&self) -> String {
        let a = &self.architecture.0;
        format!(
            "Candidate(index={}, d_model={}, n_layers={}, loss={:.4}, step_time_s={:.4}, tokens={:.4e}, params={:.4e}, \
             sharding='{}')",
            self.index, a.d_model, a.n_layers, self.loss, self.step_time_s, self.tokens, self.params, self.step.sharding
        )
    }
}

impl From<&Row> for PyCandidate {
    fn from(r: &Row) -> Self {
        let m = &r.metrics;
        PyCandidate {
            index: r.index,
            architecture: PyArchitecture(r.arch),
            params: m.params,
            non_embedding_params: m.non_embedding_params,
            flops_per_step: m.flops_per_step,
            memcpy_bytes_per_step: m.memcpy_bytes_per_step,
            memory_bytes: m.memory_bytes,
            step_time_s: m.step_time_s,
            steps: m.steps,
            tokens: m.tokens,
            tokens_per_step: r.arch.tokens_per_step(),
            effective_tokens: m.effective_tokens,
            loss: m.loss,
            step: (&r.step).into(),
        }
    }
}

/// A list of candidates with numpy columns of their numbers (`loss()`, `params()`, ...).
#[pyclass(module = "timescale_frontier._core", name = "Candidates", frozen, sequence)]
pub struct PyCandidates {
    rows: Vec<PyCandidate>,
}

impl PyCandidates {
    fn column<'py>(&self, py: Python<'py>, f: fn(&PyCandidate) -> f64) -> Bound<'py, PyArray1<f64>> {
        self.rows.iter().map(f).collect::<Vec<f64>>().into_pyarray(py)
    }
}

#[pymethods]
impl PyCandidates {
    fn __len__(&self) -> usize {
        self.rows.len()
    }
    /// One candidate (`top[0]`), or a list of them for a slice (`top[:3]`).
    fn __getitem__<'py>(&self, py: Python<'py>, key: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let n = self.rows.len() as isize;
        if let Ok(slice) = key.cast::<pyo3::types::PySlice>() {
            let idx = slice.indices(n)?;
            let picked = (0..idx.slicelength).map(|k| self.rows[(idx.start + k as isize * idx.step) as usize].clone());
            return Ok(pyo3::types::PyList::new(py, picked)?.into_any());
        }
        let i: isize = key.extract()?;
        let j = if i < 0 { i + n } else { i };
        let c = usize::try_from(j)
            .ok()
            .and_then(|j| self.rows.get(j))
            .cloned()
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err(format!("candidate {i} of {n}")))?;
        Ok(Bound::new(py, c)?.into_any())
    }
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyIterator>> {
        pyo3::types::PyList::new(py, self.rows.iter().cloned())?.as_any().try_iter()
    }
    /// Predicted losses (nats/token).
    fn loss<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.column(py, |c| c.loss)
    }
    /// Total parameters.
    fn params<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.column(py, |c| c.params)
    }
    /// Seconds per step.
    fn step_time_s<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.column(py, |c| c.step_time_s)
    }
    /// Tokens trained in the budget.
    fn tokens<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f64>> {
        self.column(py, |c| c.tokens)
    }
}

/// One chip count's search: its budget, and its best configuration or why there is none.
#[pyclass(module = "timescale_frontier._core", name = "ChipCountOutcome", frozen, get_all)]
#[derive(Clone)]
pub struct PyChipCountOutcome {
    pub chips: u32,
    pub budget: PyResolvedBudget,
    pub best: Option<PyCandidate>,
    /// Why nothing was feasible on this count (`None` when something was).
    pub infeasible: Option<String>,
    /// Why this count's best is tied with the chosen count's, in words (`None`: ranked by the
    /// model, or the chosen count).
    pub tie: Option<String>,
    /// Whether this count has the lowest best loss (the chosen count, or one tied with it that
    /// costs more chip-hours or wall-clock).
    pub lowest: bool,
}

#[pymethods]
impl PyChipCountOutcome {
    fn __repr__(&self) -> String {
        let best = self.best.as_ref().map_or_else(
            || format!("infeasible={:?}", self.infeasible.clone().unwrap_or_default()),
            |b| format!("d_model={}, n_layers={}, loss={:.4}", b.architecture.0.d_model, b.architecture.0.n_layers, b.loss),
        );
        format!(
            "ChipCountOutcome(chips={}, hours={:.4}, {best}, tie={}, lowest={})",
            self.chips,
            self.budget.seconds / 3600.0,
            self.tie.as_ref().map_or("None".to_owned(), |t| format!("{t:?}")),
            if self.lowest { "True" } else { "False" }
        )
    }

    /// Every field as plain data (JSON-ready).
    fn to_dict<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        crate::predict::plain_data(slf.as_any())
    }
}

/// The answer of a search: the chosen chip count's best, top K and Pareto set, and every count.
#[pyclass(module = "timescale_frontier._core", name = "SearchOutcome", frozen, get_all)]
pub struct PySearchOutcome {
    pub chips: u32,
    pub budget: PyResolvedBudget,
    /// Configurations evaluated over every chip count.
    pub evaluated: u64,
    /// Feasible configurations on the chosen count.
    pub feasible: u64,
    pub rejected: PyRejections,
    pub best: PyCandidate,
    /// By increasing loss.
    pub top: Py<PyCandidates>,
    /// By increasing parameters (so decreasing loss); at most 10,000, evenly spread.
    pub pareto: Py<PyCandidates>,
    /// Members of the whole Pareto set (more than `len(pareto)` when it was thinned).
    pub pareto_total: u64,
    /// Every chip count searched (one entry for a single count).
    pub chip_counts: Vec<PyChipCountOutcome>,
}

fn candidates(space: &SearchSpace, params: &SearchParams, cands: &[timescale_core::pareto::Candidate]) -> Vec<PyCandidate> {
    rows(space, params, cands).iter().map(Into::into).collect()
}

/// Why `other` (an architecture trained on `other_tokens` tokens with a relative step-time error
/// `other_error`) is tied with `best`, in words, or None when the model ranks them (the core's
/// `analysis::tie`: the step time's error, then each published alternative of the law).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (law, best, best_tokens, best_error, other, other_tokens, other_error, unique_tokens=None))]
pub fn tie(
    law: &PyLaw,
    best: &PyArchitecture,
    best_tokens: f64,
    best_error: f64,
    other: &PyArchitecture,
    other_tokens: f64,
    other_error: f64,
    unique_tokens: Option<f64>,
) -> Option<String> {
    use timescale_core::analysis::Plan;
    let b = Plan { arch: best.0, tokens: best_tokens, rel_step_error: best_error };
    let o = Plan { arch: other.0, tokens: other_tokens, rel_step_error: other_error };
    timescale_core::analysis::tie(&law.0, unique_tokens, &b, &o).map(|t| t.reason())
}

/// The relative step-time error of one configuration (the core's `configuration_step_error`):
/// the file's `base` error, or the largest disagreement of its equally good calibrated models.
#[pyfunction]
pub fn configuration_step_error(base: f64, step_time_s: f64, alternatives: Vec<(f64, f64)>) -> f64 {
    timescale_core::analysis::configuration_step_error(base, step_time_s, &alternatives)
}

/// The published alternatives of `law` the ties consider: (what each changes, the law with it).
#[pyfunction]
pub fn loss_scenarios(law: &PyLaw) -> Vec<(&'static str, PyLaw)> {
    timescale_core::analysis::loss_scenarios(&law.0).into_iter().map(|s| (s.name, PyLaw(s.law, law.1))).collect()
}

/// The default aspect-ratio guard (MIN, MAX) for `law` (the core's `Guards::for_law`): 20-200
/// without a shape term, every shape with one (the term prices shape).
#[pyfunction]
pub fn aspect_ratio_guard(law: &PyLaw) -> (f64, f64) {
    let g = Guards::for_law(&law.0);
    (g.aspect_ratio_min, g.aspect_ratio_max)
}

/// Searches `space` for the configuration with the lowest predicted loss when `budget` runs out on
/// `chips` chips of `hardware` (an int, a list to choose from, or "auto"). Runs without the GIL in
/// chunks; between chunks calls `progress(done, total)` (if given) and honours Ctrl-C.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (space, hardware, budget, law, *, chips=None, top_k=AnyInt(10),
    aspect_ratio_min=None, aspect_ratio_max=None, max_tokens_per_step=None, unique_tokens=None, progress=None),
    text_signature = "(space, hardware, budget, law, *, chips=None, top_k=10, aspect_ratio_min=None, \
    aspect_ratio_max=None, max_tokens_per_step=None, unique_tokens=None, progress=None)")]
pub fn search<'py>(
    py: Python<'py>,
    space: &PySearchSpace,
    hardware: &PyHardware,
    budget: &PyBudget,
    law: &PyLaw,
    chips: Option<PyChips>,
    top_k: AnyInt,
    aspect_ratio_min: Option<f64>,
    aspect_ratio_max: Option<f64>,
    max_tokens_per_step: Option<f64>,
    unique_tokens: Option<f64>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<PySearchOutcome> {
    let (lo, hi) = aspect_ratio_guard(law);
    let (aspect_ratio_min, aspect_ratio_max) = (aspect_ratio_min.unwrap_or(lo), aspect_ratio_max.unwrap_or(hi));
    let req = SearchRequest {
        hardware: hardware.0,
        budget: budget.core(),
        chips: chips.map_or_else(Chips::default, |c| c.0),
        law: law.0,
        guards: Guards { aspect_ratio_min, aspect_ratio_max, max_tokens_per_step, ..Guards::for_law(&law.0) },
        top_k: timescale_core::search::top_k(top_k.0).py_err()?,
        unique_tokens,
    };
    let s = &space.0;
    let plan = SearchPlan::new(s, &req).py_err()?;
    // The core's driver, without the interpreter; between chunks, with it: Ctrl-C and progress.
    let progress = progress.map(Bound::unbind);
    let partials = py.detach(|| {
        plan.run(s, |done, total| {
            Python::attach(|py| -> PyResult<()> {
                py.check_signals()?;
                if let Some(cb) = &progress {
                    cb.bind(py).call1((done, total))?;
                }
                Ok(())
            })
        })
    })?;
    let out = plan.finish(s, partials).py_err()?;
    let (params, budget) = &plan.runs[out.chosen];
    let best: &SearchOutcome = out.best();
    let chip_counts = plan
        .runs
        .iter()
        .zip(&out.counts)
        .enumerate()
        .map(|(i, ((p, b), c))| PyChipCountOutcome {
            chips: b.chips,
            budget: (*b).into(),
            best: c.outcome.as_ref().ok().and_then(|o| candidates(s, p, std::slice::from_ref(&o.best)).pop()),
            infeasible: c.outcome.as_ref().err().map(ToString::to_string),
            tie: c.tie.map(|t| t.reason()),
            lowest: i == out.lowest,
        })
        .collect();
    let top = candidates(s, params, &best.top);
    Ok(PySearchOutcome {
        chips: params.chips,
        budget: (*budget).into(),
        evaluated: plan.total(),
        feasible: best.feasible,
        rejected: (&best.rejected).into(),
        best: top[0].clone(),
        top: Py::new(py, PyCandidates { rows: top })?,
        pareto: Py::new(py, PyCandidates { rows: candidates(s, params, &best.pareto) })?,
        pareto_total: best.pareto_total,
        chip_counts,
    })
}
