//! `fit_law`: a Chinchilla-form law fitted to the user's own runs (the core's `law_fit`).

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use timescale_core::law_fit::{fit_law_with_progress as core_fit, fit_shape as core_fit_shape, Run, ShapeRun};
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

/// A shape term fitted to a shape study's runs: the law carrying it, 95% bootstrap intervals of
/// its curvature `c` (nats/token per (ln aspect)^2) and best aspect ratio, the aspect ratios
/// measured, the residual, the largest value of the term over the measured shapes (`effect`,
/// nats/token), and the resamples that showed no optimum.
#[pyclass(module = "timescale_frontier._core", name = "ShapeFit", frozen, get_all)]
#[derive(Clone)]
pub struct PyShapeFit {
    pub law: PyLaw,
    pub c_interval: (f64, f64),
    pub aspect_opt_interval: (f64, f64),
    pub aspect_range: (f64, f64),
    pub rms_residual: f64,
    pub effect: f64,
    pub bootstrap_rejected: usize,
    pub n_runs: usize,
}

/// Fits the shape term c (ln(d_model / n_layers / aspect_opt))^2 to runs that differ in shape
/// (the core's `fit_shape`), against `law`.
#[pyfunction]
#[pyo3(signature = (law, d_model, n_layers, params, tokens, loss, n_bootstrap=200, seed=0))]
#[allow(clippy::too_many_arguments)]
pub fn fit_shape(
    py: Python<'_>,
    law: &PyLaw,
    d_model: PyReadonlyArray1<'_, f64>,
    n_layers: PyReadonlyArray1<'_, f64>,
    params: PyReadonlyArray1<'_, f64>,
    tokens: PyReadonlyArray1<'_, f64>,
    loss: PyReadonlyArray1<'_, f64>,
    n_bootstrap: usize,
    seed: u64,
) -> PyResult<PyShapeFit> {
    let cols = [d_model.as_array(), n_layers.as_array(), params.as_array(), tokens.as_array(), loss.as_array()];
    let n = cols[0].len();
    if cols.iter().any(|c| c.len() != n) {
        let lens: Vec<String> = cols.iter().map(|c| c.len().to_string()).collect();
        return Err(to_py(Error::invalid("shape runs", format!("{} values", lens.join("/")), "columns of one length")));
    }
    let runs: Vec<ShapeRun> = (0..n)
        .map(|i| ShapeRun { d_model: cols[0][i], n_layers: cols[1][i], params: cols[2][i], tokens: cols[3][i], loss: cols[4][i] })
        .collect();
    let core_law = law.0;
    let fit = py.detach(|| core_fit_shape(&core_law, &runs, n_bootstrap, seed)).py_err()?;
    Ok(PyShapeFit {
        law: PyLaw(fit.law, law.1),
        c_interval: fit.c_interval,
        aspect_opt_interval: fit.aspect_opt_interval,
        aspect_range: fit.aspect_range,
        rms_residual: fit.rms_residual,
        effect: fit.effect,
        bootstrap_rejected: fit.bootstrap_rejected,
        n_runs: fit.n_runs,
    })
}
