//! `fit_law`: a Chinchilla-form law fitted to the user's own runs (the core's `law_fit`).

use numpy::PyReadonlyArray1;
use pyo3::prelude::*;
use timescale_core::law_fit::{
    bootstrap_count, fit_law_with_progress as core_fit, fit_law_with_shape as core_fit_with_shape, seed as core_seed, Run,
    ShapeRun,
};
use timescale_core::loss::FitRange;
use timescale_core::Error;

use crate::error::{to_py, AnyInt, IntoPy};
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
#[pyo3(signature = (params, tokens, loss, n_bootstrap=AnyInt(200), seed=AnyInt(0), progress=None),
    text_signature = "(params, tokens, loss, n_bootstrap=200, seed=0, progress=None)")]
pub fn fit_law(
    py: Python<'_>,
    params: PyReadonlyArray1<'_, f64>,
    tokens: PyReadonlyArray1<'_, f64>,
    loss: PyReadonlyArray1<'_, f64>,
    n_bootstrap: AnyInt,
    seed: AnyInt,
    progress: Option<Py<PyAny>>,
) -> PyResult<PyLawFit> {
    let (n_bootstrap, seed) = (bootstrap_count(n_bootstrap.0).py_err()?, core_seed(seed.0).py_err()?);
    let (n, d, l) = (params.as_array(), tokens.as_array(), loss.as_array());
    if n.len() != d.len() || n.len() != l.len() {
        return Err(to_py(Error::invalid(
            "runs",
            format!("{}/{}/{} values", n.len(), d.len(), l.len()),
            "columns of one length",
        )));
    }
    let runs: Vec<Run> = (0..n.len()).map(|i| Run { params: n[i], tokens: d[i], loss: l[i] }).collect();
    let fit = with_progress(py, progress.as_ref(), n_bootstrap, |on_refit| core_fit(&runs, n_bootstrap, seed, on_refit))?;
    Ok(wrap_fit(fit.py_err()?, &runs))
}

/// Runs a core fit without the GIL, calling `progress(done, total)` and honouring Ctrl-C after each
/// refit (with the GIL taken back for each); the Python error that stopped it, if any, is returned.
fn with_progress<T: Send>(
    py: Python<'_>,
    progress: Option<&Py<PyAny>>,
    total: usize,
    fit: impl FnOnce(&mut dyn FnMut(usize) -> bool) -> T + Send,
) -> PyResult<T> {
    let mut stopped: Option<PyErr> = None;
    let out = py.detach(|| {
        fit(&mut |done| {
            Python::attach(|py| {
                let r = py.check_signals().and_then(|()| progress.map_or(Ok(()), |cb| cb.call1(py, (done, total)).map(drop)));
                r.map_err(|e| stopped = Some(e)).is_ok()
            })
        })
    });
    stopped.map_or(Ok(out), Err)
}

/// The binding's LawFit of a core fit: the law's fit range is the runs' range.
fn wrap_fit(fit: timescale_core::law_fit::LawFit, runs: &[Run]) -> PyLawFit {
    let range =
        |f: fn(&Run) -> f64| runs.iter().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let fit_range = FitRange { params: range(|r| r.params), tokens: range(|r| r.tokens) };
    let at_edge = fit.at_edge();
    PyLawFit {
        law: PyLaw(fit.law, fit_range),
        objective: fit.objective,
        intervals: ["E", "A", "B", "alpha", "beta"]
            .iter()
            .zip(fit.intervals)
            .map(|(name, (lo, hi))| PyInterval { name, lo, hi })
            .collect(),
        at_edge,
        bootstrap: fit.bootstrap.into_iter().map(|l| PyLaw(l, fit_range)).collect(),
        bootstrap_rejected: fit.bootstrap_rejected,
        n_runs: runs.len(),
    }
}

/// The shape term of a law fitted with `fit_law_with_shape`: the term (c, aspect_opt,
/// aspect_min, aspect_max), 95% bootstrap intervals of its curvature `c` (nats/token per
/// (ln aspect)^2) and best aspect ratio, the residual, the largest value of the term over the
/// measured shapes (`effect`, nats/token), and the resamples that showed no optimum.
#[pyclass(module = "timescale_frontier._core", name = "ShapeFit", frozen, get_all)]
#[derive(Clone)]
pub struct PyShapeFit {
    pub term: (f64, f64, f64, f64),
    pub c_interval: (f64, f64),
    pub aspect_opt_interval: (f64, f64),
    pub rms_residual: f64,
    pub effect: f64,
    pub bootstrap_rejected: usize,
    pub n_runs: usize,
}

fn shape_runs(what: &str, cols: [PyReadonlyArray1<'_, f64>; 5]) -> PyResult<Vec<ShapeRun>> {
    let cols = cols.each_ref().map(|c| c.as_array());
    let n = cols[0].len();
    if cols.iter().any(|c| c.len() != n) {
        let lens: Vec<String> = cols.iter().map(|c| c.len().to_string()).collect();
        return Err(to_py(Error::invalid(what, format!("{} values", lens.join("/")), "columns of one length")));
    }
    Ok((0..n)
        .map(|i| ShapeRun { d_model: cols[0][i], n_layers: cols[1][i], params: cols[2][i], tokens: cols[3][i], loss: cols[4][i] })
        .collect())
}

/// Fits a law with a shape term (the core's `fit_law_with_shape`): the law to the runs
/// (d_model, n_layers, params, tokens, loss), the shape term to `shape_*` runs that differ in shape,
/// then the law again net of the term. Progress and Ctrl-C as `fit_law` (the final fit).
#[pyfunction]
#[pyo3(signature = (d_model, n_layers, params, tokens, loss, shape_d_model, shape_n_layers, shape_params, shape_tokens,
    shape_loss, n_bootstrap=AnyInt(200), seed=AnyInt(0), progress=None),
    text_signature = "(d_model, n_layers, params, tokens, loss, shape_d_model, shape_n_layers, shape_params, shape_tokens, \
    shape_loss, n_bootstrap=200, seed=0, progress=None)")]
#[allow(clippy::too_many_arguments)]
pub fn fit_law_with_shape(
    py: Python<'_>,
    d_model: PyReadonlyArray1<'_, f64>,
    n_layers: PyReadonlyArray1<'_, f64>,
    params: PyReadonlyArray1<'_, f64>,
    tokens: PyReadonlyArray1<'_, f64>,
    loss: PyReadonlyArray1<'_, f64>,
    shape_d_model: PyReadonlyArray1<'_, f64>,
    shape_n_layers: PyReadonlyArray1<'_, f64>,
    shape_params: PyReadonlyArray1<'_, f64>,
    shape_tokens: PyReadonlyArray1<'_, f64>,
    shape_loss: PyReadonlyArray1<'_, f64>,
    n_bootstrap: AnyInt,
    seed: AnyInt,
    progress: Option<Py<PyAny>>,
) -> PyResult<(PyLawFit, PyShapeFit)> {
    let (n_bootstrap, seed) = (bootstrap_count(n_bootstrap.0).py_err()?, core_seed(seed.0).py_err()?);
    let runs = shape_runs("runs", [d_model, n_layers, params, tokens, loss])?;
    let shaped = shape_runs("shape runs", [shape_d_model, shape_n_layers, shape_params, shape_tokens, shape_loss])?;
    let fit = with_progress(py, progress.as_ref(), n_bootstrap, |on_refit| {
        core_fit_with_shape(&runs, &shaped, n_bootstrap, seed, on_refit)
    })?;
    let (fit, shape) = fit.py_err()?;
    let plain: Vec<Run> = runs.iter().map(ShapeRun::plain).collect();
    let t = shape.term;
    Ok((
        wrap_fit(fit, &plain),
        PyShapeFit {
            term: (t.c, t.aspect_opt, t.measured.0, t.measured.1),
            c_interval: shape.c_interval,
            aspect_opt_interval: shape.aspect_opt_interval,
            rms_residual: shape.rms_residual,
            effect: shape.effect,
            bootstrap_rejected: shape.bootstrap_rejected,
            n_runs: shape.n_runs,
        },
    ))
}

/// Checks a law file's coefficients (`e, a, b, alpha, beta[, c, aspect_opt]`) against its own
/// bootstrap rows (the core's `check_law_within_bootstrap`).
#[pyfunction]
pub fn check_law_within_bootstrap(coefficients: Vec<f64>, bootstrap: Vec<Vec<f64>>) -> PyResult<()> {
    timescale_core::law_fit::check_law_within_bootstrap(&coefficients, &bootstrap).py_err()
}
