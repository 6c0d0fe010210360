//! `SearchSpace` and `search`: the chunked, interruptible, GIL-free frontier search.

use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use timescale_core::pareto::Candidate;
use timescale_core::search::{finish, search_range, Guards, Partial, SearchParams};
use timescale_core::{Attention, Mlp, Precision, SearchSpace};

use crate::architecture::PyArchitecture;
use crate::error::to_py;
use crate::hardware::{PyHardware, PyLaw};
use crate::metrics::{interconnect_for, metric_columns, single_chip_step};

/// Configurations per GIL-free call: small enough that Ctrl-C and progress are checked several
/// times a second, large enough that the per-call overhead is invisible.
const CALL_CHUNK: u64 = 1 << 21;

/// The Cartesian product of hyperparameter axes (see the core's `SearchSpace`).
#[pyclass(module = "timescale_frontier._core", name = "SearchSpace", frozen)]
#[derive(Clone)]
pub struct PySearchSpace(pub SearchSpace);

fn parse_all<T>(names: Vec<String>, parse: fn(&str) -> timescale_core::Result<T>) -> PyResult<Vec<T>> {
    names.iter().map(|s| parse(s).map_err(to_py)).collect()
}

#[pymethods]
impl PySearchSpace {
    /// Every axis is optional; a missing axis takes the default space's values.
    #[new]
    #[pyo3(signature = (*, d_model=None, n_layers=None, head_dim=None, kv_group=None, mlp=None, ffn_mult=None,
        attention=None, tied_embeddings=None, vocab_size=None, seq_len=None, batch_size=None,
        param_bytes=4.0, activation_bytes=2.0, optimizer_bytes=4.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        d_model: Option<Vec<u32>>,
        n_layers: Option<Vec<u32>>,
        head_dim: Option<Vec<u32>>,
        kv_group: Option<Vec<u32>>,
        mlp: Option<Vec<String>>,
        ffn_mult: Option<Vec<f64>>,
        attention: Option<Vec<String>>,
        tied_embeddings: Option<Vec<bool>>,
        vocab_size: Option<Vec<u32>>,
        seq_len: Option<Vec<u32>>,
        batch_size: Option<Vec<u32>>,
        param_bytes: f64,
        activation_bytes: f64,
        optimizer_bytes: f64,
    ) -> PyResult<Self> {
        let d = SearchSpace::default();
        let s = SearchSpace {
            d_model: d_model.unwrap_or(d.d_model),
            n_layers: n_layers.unwrap_or(d.n_layers),
            head_dim: head_dim.unwrap_or(d.head_dim),
            kv_group: kv_group.unwrap_or(d.kv_group),
            mlp: match mlp {
                Some(v) => parse_all(v, Mlp::parse)?,
                None => d.mlp,
            },
            ffn_mult: ffn_mult.unwrap_or(d.ffn_mult),
            attention: match attention {
                Some(v) => parse_all(v, Attention::parse)?,
                None => d.attention,
            },
            tied_embeddings: tied_embeddings.unwrap_or(d.tied_embeddings),
            vocab_size: vocab_size.unwrap_or(d.vocab_size),
            seq_len: seq_len.unwrap_or(d.seq_len),
            batch_size: batch_size.unwrap_or(d.batch_size),
            precision: Precision { param_bytes, activation_bytes, optimizer_bytes },
        };
        s.validate().map_err(to_py)?;
        // Precision is shared by every configuration: validate it once on any member.
        timescale_core::Architecture {
            d_model: 1,
            n_layers: 1,
            n_heads: 1,
            n_kv_heads: 1,
            head_dim: 1,
            d_ff: 1,
            mlp: Mlp::Gelu,
            attention: Attention::Flash,
            tied_embeddings: false,
            seq_len: 1,
            batch_size: 1,
            vocab_size: 1,
            precision: s.precision,
        }
        .validate()
        .map_err(to_py)?;
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
        d.set_item("batch_size", s.batch_size.clone())?;
        Ok(d)
    }

    /// The configuration at `index` in enumeration order; `None` when malformed.
    fn config_at(&self, index: u64) -> PyResult<Option<PyArchitecture>> {
        if index >= self.size() {
            return Err(to_py(timescale_core::Error::invalid("index", index, &format!("below the space size {}", self.size()))));
        }
        Ok(self.0.config_at(index).map(PyArchitecture))
    }
}

/// Columns (architecture fields and every metric) for a list of candidates.
fn candidate_columns<'py>(
    py: Python<'py>,
    space: &SearchSpace,
    params: &SearchParams,
    cands: &[Candidate],
) -> PyResult<Bound<'py, PyDict>> {
    let archs: Vec<_> = cands.iter().map(|c| space.config_at(c.index).expect("feasible configs are well-formed")).collect();
    let evaluated: Vec<_> = archs
        .iter()
        .map(|a| match params.evaluate_with_sharding(a) {
            (m, Some(st)) => (m, Some(st)),
            (m, None) => (m, single_chip_step(a, &params.hardware)),
        })
        .collect();
    let metrics: Vec<_> = evaluated.iter().map(|(m, _)| *m).collect();
    let steps: Vec<_> = evaluated.iter().map(|(_, st)| st.expect("feasible configs have a step")).collect();
    let out = PyDict::new(py);
    out.set_item("sharding", steps.iter().map(|st| st.sharding.name()).collect::<Vec<String>>())?;
    out.set_item("dp", steps.iter().map(|st| i64::from(st.sharding.dp)).collect::<Vec<i64>>().into_pyarray(py))?;
    out.set_item("tp", steps.iter().map(|st| i64::from(st.sharding.tp)).collect::<Vec<i64>>().into_pyarray(py))?;
    out.set_item("compute_s", steps.iter().map(|st| st.compute_s).collect::<Vec<f64>>().into_pyarray(py))?;
    out.set_item("dp_comm_s", steps.iter().map(|st| st.dp_comm_s).collect::<Vec<f64>>().into_pyarray(py))?;
    out.set_item("tp_comm_s", steps.iter().map(|st| st.tp_comm_s).collect::<Vec<f64>>().into_pyarray(py))?;
    out.set_item("bound", steps.iter().map(|st| st.bound.name()).collect::<Vec<&str>>())?;
    let int = |f: fn(&timescale_core::Architecture) -> u32| archs.iter().map(|a| i64::from(f(a))).collect::<Vec<i64>>();
    out.set_item("index", cands.iter().map(|c| c.index).collect::<Vec<u64>>().into_pyarray(py))?;
    out.set_item("d_model", int(|a| a.d_model).into_pyarray(py))?;
    out.set_item("n_layers", int(|a| a.n_layers).into_pyarray(py))?;
    out.set_item("n_heads", int(|a| a.n_heads).into_pyarray(py))?;
    out.set_item("n_kv_heads", int(|a| a.n_kv_heads).into_pyarray(py))?;
    out.set_item("head_dim", int(|a| a.head_dim).into_pyarray(py))?;
    out.set_item("d_ff", int(|a| a.d_ff).into_pyarray(py))?;
    out.set_item("mlp", archs.iter().map(|a| a.mlp.name()).collect::<Vec<_>>())?;
    out.set_item("attention", archs.iter().map(|a| a.attention.name()).collect::<Vec<_>>())?;
    out.set_item("tied_embeddings", archs.iter().map(|a| a.tied_embeddings).collect::<Vec<bool>>().into_pyarray(py))?;
    out.set_item("seq_len", int(|a| a.seq_len).into_pyarray(py))?;
    out.set_item("batch_size", int(|a| a.batch_size).into_pyarray(py))?;
    out.set_item("vocab_size", int(|a| a.vocab_size).into_pyarray(py))?;
    out.set_item("tokens_per_step", archs.iter().map(|a| a.tokens_per_step()).collect::<Vec<f64>>().into_pyarray(py))?;
    metric_columns(py, &out, &metrics)?;
    Ok(out)
}

/// Searches `space` for the configuration with the lowest predicted loss after `budget_s` seconds.
/// Runs without the GIL in chunks; between chunks calls `progress(done, total)` (if given) and
/// honours Ctrl-C (`KeyboardInterrupt`). Returns a dict: `evaluated`, `feasible`, `rejected`
/// (counts by reason), and column dicts `best`, `top`, `pareto`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (space, hardware, budget_s, law, *, top_k=10, aspect_ratio_min=20.0, aspect_ratio_max=200.0,
    max_tokens_per_step=None, unique_tokens=None, chips=1, collective_bytes_per_s=None, progress=None))]
pub fn search<'py>(
    py: Python<'py>,
    space: &PySearchSpace,
    hardware: &PyHardware,
    budget_s: f64,
    law: &PyLaw,
    top_k: usize,
    aspect_ratio_min: f64,
    aspect_ratio_max: f64,
    max_tokens_per_step: Option<f64>,
    unique_tokens: Option<f64>,
    chips: u32,
    collective_bytes_per_s: Option<f64>,
    progress: Option<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let interconnect = interconnect_for(chips, collective_bytes_per_s)?;
    let params = SearchParams {
        hardware: hardware.0,
        budget_s,
        law: law.0,
        guards: Guards { aspect_ratio_min, aspect_ratio_max, max_tokens_per_step },
        top_k,
        unique_tokens,
        chips,
        interconnect,
    };
    params.validate().map_err(to_py)?;
    let s = &space.0;
    let size = s.validate().map_err(to_py)?;
    let mut acc = Partial::empty();
    let mut start = 0;
    // Many chips evaluate every sharding of every configuration: smaller calls keep Ctrl-C prompt.
    let call_chunk = if chips > 1 { CALL_CHUNK / 16 } else { CALL_CHUNK };
    while start < size {
        let end = (start + call_chunk).min(size);
        let part = py.detach(|| search_range(s, &params, start, end));
        acc = acc.merge(part, top_k);
        start = end;
        py.check_signals()?;
        if let Some(cb) = &progress {
            cb.call1((start, size))?;
        }
    }
    let out = finish(acc, &params).map_err(to_py)?;
    let d = PyDict::new(py);
    d.set_item("evaluated", out.evaluated)?;
    d.set_item("feasible", out.feasible)?;
    let r = PyDict::new(py);
    r.set_item("malformed", out.rejected.malformed)?;
    r.set_item("aspect_ratio", out.rejected.aspect_ratio)?;
    r.set_item("memory", out.rejected.memory)?;
    r.set_item("budget", out.rejected.budget)?;
    r.set_item("batch_cap", out.rejected.batch_cap)?;
    r.set_item("unshardable", out.rejected.unshardable)?;
    d.set_item("rejected", r)?;
    d.set_item("best", candidate_columns(py, s, &params, std::slice::from_ref(&out.best))?)?;
    d.set_item("top", candidate_columns(py, s, &params, &out.top)?)?;
    d.set_item("pareto", candidate_columns(py, s, &params, &out.pareto)?)?;
    Ok(d)
}
