//! `fit_law`: a Chinchilla-form law fitted to the user's own runs (the core's `law_fit`).

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use timescale_core::law_fit::{fit_law_with_progress as core_fit, Run};
use timescale_core::loss::FitRange;
use timescale_core::Error;

use crate::error::{to_py, IntoPy};
use crate::hardware::PyLaw;

/// A 95% bootstrap interval of one coefficient.
#[pyclass(module = "timescale_frontier._core", name = "Interval", frozen, get_all)]
#[derive(Clone)]
pub struct PyInterval {
    /// `E`, `A`, `B`, `alpha` or `beta`.
    pub name: &'static str,
    pub lo: f64,
    pub hi: f64,
}

/// A law fitted to runs: the law (its fit range is the runs' range), the Huber objective, 95%
/// bootstrap intervals, the bootstrap refits kept, and how many refits left the law's domain.
#[pyclass(module = "timescale_frontier._core", name = "LawFit", frozen, get_all)]
#[derive(Clone)]
pub struct PyLawFit {
    pub law: PyLaw,
    pub objective: f64,
    pub intervals: Vec<PyInterval>,
    pub bootstrap: Vec<PyLaw>,
    pub bootstrap_rejected: usize,
    pub n_runs: usize,
    /// Exponents that ended at an edge of their domain (0 or 2): not identified by the runs.
    pub at_edge: Vec<&'static str>,
}

/// Fits E, A, B, alpha, beta (Huber on log loss, grid of starts) with `n_bootstrap` resampled
/// refits.
#[pyfunction]
#[pyo3(signature = (params, tokens, loss, n_bootstrap=200, seed=0, progress=None))]
pub fn fit_law(
    py: Python<'_>,
    params: PyReadonlyArray1<'_, f64>,
    tokens: PyReadonlyArray1<'_, f64>,
    loss: PyReadonlyArray1<'_, f64>,
    n_bootstrap: usize,
    seed: u64,
    progress: Option<Py<PyAny>>,
) -> PyResult<PyLawFit> {
    let (n, d, l) = (params.as_array(), tokens.as_array(), loss.as_array());
    if n.len() != d.len() || n.len() != l.len() {
        return Err(to_py(Error::invalid(
            "runs",
            format!("{}/{}/{} values", n.len(), d.len(), l.len()),
            "columns of one length",
        )));
    }
    let runs: Vec<Run> = (0..n.len()).map(|i| Run { params: n[i], tokens: d[i], loss: l[i] }).collect();
    // Ctrl-C and the progress callback between refits (with the GIL taken back for each).
    let mut stopped: Option<PyErr> = None;
    let fit = py.detach(|| {
        core_fit(&runs, n_bootstrap, seed, &mut |done| {
            Python::attach(|py| {
                let r = py
                    .check_signals()
                    .and_then(|()| progress.as_ref().map_or(Ok(()), |cb| cb.call1(py, (done, n_bootstrap)).map(drop)));
                r.map_err(|e| stopped = Some(e)).is_ok()
            })
        })
    });
    if let Some(e) = stopped {
        return Err(e);
    }
    let fit = fit.py_err()?;
    let range =
        |f: fn(&Run) -> f64| runs.iter().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let fit_range = FitRange { params: range(|r| r.params), tokens: range(|r| r.tokens) };
    Ok(PyLawFit {
        law: PyLaw(fit.law, fit_range),
        objective: fit.objective,
        intervals: ["E", "A", "B", "alpha", "beta"]
            .iter()
            .zip(fit.intervals)
            .map(|(name, (lo, hi))| PyInterval { name, lo, hi })
            .collect(),
        at_edge: fit.at_edge(),
        bootstrap: fit.bootstrap.into_iter().map(|l| PyLaw(l, fit_range)).collect(),
        bootstrap_rejected: fit.bootstrap_rejected,
        n_runs: runs.len(),
    })
}
