//! `fit_law`: a Chinchilla-form law fitted to the user's own runs (the core's `law_fit`).

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use timescale_core::law_fit::{fit_law as core_fit, Run};
use timescale_core::loss::FitRange;
use timescale_core::Error;

use crate::error::to_py;
use crate::hardware::PyLaw;

/// Fits E, A, B, alpha, beta (Huber on log loss, grid of starts) with `n_bootstrap` resampled
/// refits. Returns a dict: `law` (a Law whose fit range is the data's), `objective`, `intervals`
/// ({"E": (lo, hi), ...}, 95% bootstrap percentiles), `bootstrap` (list of valid Laws) and
/// `bootstrap_rejected` (refits outside the law's valid domain, left out).
#[pyfunction]
#[pyo3(signature = (params, tokens, loss, n_bootstrap=200, seed=0))]
pub fn fit_law<'py>(
    py: Python<'py>,
    params: PyReadonlyArray1<'py, f64>,
    tokens: PyReadonlyArray1<'py, f64>,
    loss: PyReadonlyArray1<'py, f64>,
    n_bootstrap: usize,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let (n, d, l) = (params.as_array(), tokens.as_array(), loss.as_array());
    if n.len() != d.len() || n.len() != l.len() {
        return Err(to_py(Error::invalid("runs", format!("{}/{}/{} values", n.len(), d.len(), l.len()), "columns of one length")));
    }
    let runs: Vec<Run> = (0..n.len()).map(|i| Run { params: n[i], tokens: d[i], loss: l[i] }).collect();
    let fit = py.detach(|| core_fit(&runs, n_bootstrap, seed)).map_err(to_py)?;
    let range = |f: fn(&Run) -> f64| {
        runs.iter().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
    };
    let fit_range = FitRange { params: range(|r| r.params), tokens: range(|r| r.tokens) };
    let out = PyDict::new(py);
    out.set_item("law", PyLaw(fit.law, fit_range))?;
    out.set_item("objective", fit.objective)?;
    let intervals = PyDict::new(py);
    for (name, iv) in ["E", "A", "B", "alpha", "beta"].iter().zip(fit.intervals) {
        intervals.set_item(name, iv)?;
    }
    out.set_item("intervals", intervals)?;
    let boot: Vec<PyLaw> = fit.bootstrap.into_iter().map(|l| PyLaw(l, fit_range)).collect();
    out.set_item("bootstrap", boot)?;
    out.set_item("bootstrap_rejected", fit.bootstrap_rejected)?;
    Ok(out)
}
