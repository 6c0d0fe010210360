//! `predict` (one configuration) and `evaluate` (numpy columns of configurations).

use numpy::{IntoPyArray, PyReadonlyArray1};
use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use timescale_core::metrics::validity;
use timescale_core::search::MAX_CHIPS;
use timescale_core::sharding::{evaluate_sharded, sharded_step, shardings, DataParallel, Interconnect, ShardedStep, Sharding};
use timescale_core::{Architecture, Attention, Error, Metrics, Mlp, Precision};

use crate::architecture::PyArchitecture;
use crate::error::to_py;
use crate::hardware::{PyHardware, PyLaw};

fn check_budget(budget_s: f64) -> PyResult<()> {
    if budget_s.is_finite() && budget_s > 0.0 {
        Ok(())
    } else {
        Err(to_py(Error::invalid("budget_s", budget_s, "a finite number of seconds > 0")))
    }
}

pub fn check_unique_tokens(unique_tokens: Option<f64>) -> PyResult<()> {
    match unique_tokens {
        Some(u) if !(u.is_finite() && u >= 1.0) => {
            Err(to_py(Error::invalid("unique_tokens", u, "a finite number of tokens >= 1")))
        }
        _ => Ok(()),
    }
}

/// Seconds of training a money budget buys (see the core's `budget_s_from_usd`).
#[pyfunction]
pub fn budget_s_from_usd(usd: f64, usd_per_chip_hour: f64, chips: f64) -> PyResult<f64> {
    for (field, v) in [("budget_usd", usd), ("usd_per_chip_hour", usd_per_chip_hour), ("chips", chips)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(to_py(Error::invalid(field, v, "a finite number > 0")));
        }
    }
    Ok(timescale_core::metrics::budget_s_from_usd(usd, usd_per_chip_hour, chips))
}

/// The interconnect of `chips` chips, or an error naming what is missing or out of range.
pub fn interconnect_for(chips: u32, collective_bytes_per_s: Option<f64>) -> PyResult<Option<Interconnect>> {
    if chips == 0 || chips > MAX_CHIPS {
        return Err(to_py(Error::invalid("chips", chips, &format!("an integer in [1, {MAX_CHIPS}]"))));
    }
    match (chips, collective_bytes_per_s) {
        (1, None) => Ok(None),
        (_, Some(b)) => {
            let ic = Interconnect { collective_bytes_per_s: b };
            ic.validate().map_err(to_py)?;
            Ok(Some(ic))
        }
        (_, None) => Err(to_py(Error::invalid(
            "interconnect",
            "missing",
            "an [interconnect] section to train on more than one chip",
        ))),
    }
}

/// Collective bandwidth of one chip from a hardware file's links (the core's
/// `Interconnect::from_links`). Unit: bytes/s.
#[pyfunction]
pub fn collective_bytes_per_s(link_bytes_per_s: f64, links_per_chip: f64, figure_counts_both_directions: bool) -> f64 {
    Interconnect::from_links(link_bytes_per_s, links_per_chip, figure_counts_both_directions).collective_bytes_per_s
}

/// A sharded step as a dict (sharding name, degrees, per-chip times and bytes, bound).
pub fn step_dict<'py>(py: Python<'py>, st: &ShardedStep) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("sharding", st.sharding.name())?;
    d.set_item("dp", st.sharding.dp)?;
    d.set_item("tp", st.sharding.tp)?;
    d.set_item("fsdp", st.sharding.data == DataParallel::Sharded && st.sharding.dp > 1)?;
    d.set_item("memory_bytes", st.memory_bytes)?;
    d.set_item("memcpy_bytes", st.memcpy_bytes)?;
    d.set_item("compute_s", st.compute_s)?;
    d.set_item("dp_comm_s", st.dp_comm_s)?;
    d.set_item("tp_comm_s", st.tp_comm_s)?;
    d.set_item("dp_comm_bytes", st.dp_comm_bytes)?;
    d.set_item("tp_comm_bytes", st.tp_comm_bytes)?;
    d.set_item("step_time_s", st.step_time_s)?;
    d.set_item("bound", st.bound.name())?;
    Ok(d)
}

/// The single-chip step as a sharded one (no communication), for its bound.
pub fn single_chip_step(arch: &Architecture, hw: &timescale_core::Hardware) -> Option<ShardedStep> {
    sharded_step(arch, hw, &Interconnect { collective_bytes_per_s: 1.0 }, Sharding::SINGLE)
}

/// Every metric of one configuration, as a dict keyed by the JSON field names. With `chips` > 1
/// (and the interconnect's collective bandwidth) the configuration trains on that many chips with
/// its fastest sharding that fits; `shardings` then lists every sharding considered.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (arch, hardware, budget_s, law, unique_tokens=None, chips=1, collective_bytes_per_s=None))]
pub fn predict<'py>(
    py: Python<'py>,
    arch: &PyArchitecture,
    hardware: &PyHardware,
    budget_s: f64,
    law: &PyLaw,
    unique_tokens: Option<f64>,
    chips: u32,
    collective_bytes_per_s: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    check_budget(budget_s)?;
    check_unique_tokens(unique_tokens)?;
    let ic = interconnect_for(chips, collective_bytes_per_s)?;
    let (m, step) = match ic {
        Some(ic) if chips > 1 => evaluate_sharded(&arch.0, &hardware.0, &ic, chips, budget_s, &law.0, unique_tokens),
        _ => (
            timescale_core::evaluate_with_data(&arch.0, &hardware.0, budget_s, &law.0, unique_tokens),
            single_chip_step(&arch.0, &hardware.0),
        ),
    };
    if chips > 1 && step.is_none() {
        return Err(to_py(Error::invalid(
            "chips",
            chips,
            &format!(
                "a count this architecture can be split over (data-parallel degree dividing batch_size {}, \
                 tensor-parallel degree dividing {} KV heads and d_ff {})",
                arch.0.batch_size, arch.0.n_kv_heads, arch.0.d_ff
            ),
        )));
    }
    let d = PyDict::new(py);
    d.set_item("chips", chips)?;
    d.set_item("step", step.map(|st| step_dict(py, &st)).transpose()?)?;
    let mut all = Vec::new();
    if let Some(ic) = ic {
        for s in shardings(chips) {
            if let Some(st) = sharded_step(&arch.0, &hardware.0, &ic, s) {
                let sd = step_dict(py, &st)?;
                sd.set_item("divides", true)?;
                sd.set_item("fits_memory", st.memory_bytes <= hardware.0.usable_hbm_bytes())?;
                all.push(sd);
            } else {
                let sd = PyDict::new(py);
                sd.set_item("sharding", s.name())?;
                sd.set_item("dp", s.dp)?;
                sd.set_item("tp", s.tp)?;
                sd.set_item("divides", false)?;
                sd.set_item("fits_memory", false)?;
                all.push(sd);
            }
        }
    }
    d.set_item("shardings", all)?;
    d.set_item("params", m.params)?;
    d.set_item("non_embedding_params", m.non_embedding_params)?;
    d.set_item("flops_per_step", m.flops_per_step)?;
    d.set_item("memcpy_bytes_per_step", m.memcpy_bytes_per_step)?;
    d.set_item("memory_bytes", m.memory_bytes)?;
    d.set_item("fits_memory", m.fits_memory)?;
    d.set_item("step_time_s", m.step_time_s)?;
    d.set_item("steps", m.steps)?;
    d.set_item("tokens", m.tokens)?;
    d.set_item("effective_tokens", m.effective_tokens)?;
    d.set_item("epochs", unique_tokens.map(|u| m.tokens / u))?;
    d.set_item("tokens_per_step", arch.0.tokens_per_step())?;
    // No NaN or inf crosses the boundary: a budget shorter than one step has no loss.
    d.set_item("loss", if m.loss.is_finite() { Some(m.loss) } else { None })?;
    let warnings: Vec<&str> = validity(&arch.0, &m, &law.1).into_iter().map(|v| v.message()).collect();
    d.set_item("warnings", warnings)?;
    Ok(d)
}

/// Row `i` of the columns as a validated architecture; errors name the row and the field.
fn row_architecture(
    cols: &[(&str, numpy::ndarray::ArrayView1<'_, i64>); 12],
    s: &[&[i64]],
    i: usize,
    precision: Precision,
) -> Result<Architecture, Error> {
    let named = |e: Error| match e {
        Error::InvalidValue { field, value, expected } => Error::InvalidValue { field: format!("row {i}: {field}"), value, expected },
        other => other,
    };
    let dim = |k: usize| -> Result<u32, Error> {
        u32::try_from(s[k][i]).map_err(|_| named(Error::invalid(cols[k].0, s[k][i], "an integer in [1, 16777216]")))
    };
    let flag = |k: usize, names: &str| -> Result<bool, Error> {
        match s[k][i] {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(named(Error::invalid(cols[k].0, v, names))),
        }
    };
    let a = Architecture {
        d_model: dim(0)?,
        n_layers: dim(1)?,
        n_heads: dim(2)?,
        n_kv_heads: dim(3)?,
        head_dim: dim(4)?,
        d_ff: dim(5)?,
        mlp: if flag(6, "0 (gelu) or 1 (swiglu)")? { Mlp::Swiglu } else { Mlp::Gelu },
        attention: if flag(7, "0 (materialized) or 1 (flash)")? { Attention::Flash } else { Attention::Materialized },
        tied_embeddings: flag(8, "0 or 1")?,
        seq_len: dim(9)?,
        batch_size: dim(10)?,
        vocab_size: dim(11)?,
        precision,
    };
    a.validate().map_err(named)?;
    Ok(a)
}

/// Metric columns of `metrics` as numpy arrays (shared by `evaluate` and the search results).
pub fn metric_columns<'py>(py: Python<'py>, out: &Bound<'py, PyDict>, metrics: &[Metrics]) -> PyResult<()> {
    let col = |f: fn(&Metrics) -> f64| metrics.iter().map(f).collect::<Vec<f64>>();
    out.set_item("params", col(|m| m.params).into_pyarray(py))?;
    out.set_item("non_embedding_params", col(|m| m.non_embedding_params).into_pyarray(py))?;
    out.set_item("flops_per_step", col(|m| m.flops_per_step).into_pyarray(py))?;
    out.set_item("memcpy_bytes_per_step", col(|m| m.memcpy_bytes_per_step).into_pyarray(py))?;
    out.set_item("memory_bytes", col(|m| m.memory_bytes).into_pyarray(py))?;
    out.set_item("step_time_s", col(|m| m.step_time_s).into_pyarray(py))?;
    out.set_item("steps", col(|m| m.steps).into_pyarray(py))?;
    out.set_item("tokens", col(|m| m.tokens).into_pyarray(py))?;
    out.set_item("effective_tokens", col(|m| m.effective_tokens).into_pyarray(py))?;
    out.set_item("loss", col(|m| m.loss).into_pyarray(py))?;
    out.set_item("fits_memory", metrics.iter().map(|m| m.fits_memory).collect::<Vec<bool>>().into_pyarray(py))?;
    Ok(())
}

/// Vectorized metrics. Integer columns are int64 arrays of one length; `mlp` codes 0 = gelu,
/// 1 = swiglu; `attention` codes 0 = materialized, 1 = flash; `tied_embeddings` 0/1. Every row is
/// validated; the first bad row raises `InvalidInputError` naming the row and field.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (d_model, n_layers, n_heads, n_kv_heads, head_dim, d_ff, mlp, attention,
    tied_embeddings, seq_len, batch_size, vocab_size, param_bytes, activation_bytes, optimizer_bytes,
    hardware, budget_s, law, unique_tokens=None))]
pub fn evaluate<'py>(
    py: Python<'py>,
    d_model: PyReadonlyArray1<'py, i64>,
    n_layers: PyReadonlyArray1<'py, i64>,
    n_heads: PyReadonlyArray1<'py, i64>,
    n_kv_heads: PyReadonlyArray1<'py, i64>,
    head_dim: PyReadonlyArray1<'py, i64>,
    d_ff: PyReadonlyArray1<'py, i64>,
    mlp: PyReadonlyArray1<'py, i64>,
    attention: PyReadonlyArray1<'py, i64>,
    tied_embeddings: PyReadonlyArray1<'py, i64>,
    seq_len: PyReadonlyArray1<'py, i64>,
    batch_size: PyReadonlyArray1<'py, i64>,
    vocab_size: PyReadonlyArray1<'py, i64>,
    param_bytes: f64,
    activation_bytes: f64,
    optimizer_bytes: f64,
    hardware: &PyHardware,
    budget_s: f64,
    law: &PyLaw,
    unique_tokens: Option<f64>,
) -> PyResult<Bound<'py, PyDict>> {
    check_budget(budget_s)?;
    check_unique_tokens(unique_tokens)?;
    let cols = [
        ("d_model", d_model.as_array()),
        ("n_layers", n_layers.as_array()),
        ("n_heads", n_heads.as_array()),
        ("n_kv_heads", n_kv_heads.as_array()),
        ("head_dim", head_dim.as_array()),
        ("d_ff", d_ff.as_array()),
        ("mlp", mlp.as_array()),
        ("attention", attention.as_array()),
        ("tied_embeddings", tied_embeddings.as_array()),
        ("seq_len", seq_len.as_array()),
        ("batch_size", batch_size.as_array()),
        ("vocab_size", vocab_size.as_array()),
    ];
    let n = cols[0].1.len();
    if let Some((name, c)) = cols.iter().find(|(_, c)| c.len() != n) {
        return Err(to_py(Error::invalid(name, format!("{} rows", c.len()), &format!("{n} rows like d_model"))));
    }
    let mut slices: Vec<&[i64]> = Vec::with_capacity(cols.len());
    for (name, c) in &cols {
        slices.push(c.as_slice().ok_or_else(|| to_py(Error::invalid(name, "a strided array", "a C-contiguous int64 array")))?);
    }
    let precision = Precision { param_bytes, activation_bytes, optimizer_bytes };
    let (hw, law) = (hardware.0, law.0);
    let row = |i: usize| row_architecture(&cols, &slices, i, precision);
    // One indexed parallel pass (no intermediate vectors); if any row is invalid, a sequential
    // rescan reports the first one in order.
    let failed = AtomicBool::new(false);
    let metrics = py.detach(|| {
        (0..n)
            .into_par_iter()
            .with_min_len(4096)
            .map(|i| match row(i) {
                Ok(a) => timescale_core::evaluate_with_data(&a, &hw, budget_s, &law, unique_tokens),
                Err(_) => {
                    failed.store(true, AtomicOrdering::Relaxed);
                    Metrics::default()
                }
            })
            .collect::<Vec<Metrics>>()
    });
    if failed.load(AtomicOrdering::Relaxed) {
        return Err(to_py((0..n).find_map(|i| row(i).err()).expect("a row failed")));
    }
    let out = PyDict::new(py);
    metric_columns(py, &out, &metrics)?;
    Ok(out)
}
