//! `evaluate`: every metric of many architectures given as numpy columns (the core's
//! `evaluate_columns_into`: the same defaults and checks as one `Architecture`), zero-copy in and
//! out (the core fills the numpy arrays it returns).

use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyTuple};
use timescale_core::architecture::Recompute;
use timescale_core::metrics::{evaluate_columns_into, ArchitectureColumns, Column, MetricSlices};
use timescale_core::{Attention, Error, Mlp};

use crate::budget::PyBudget;
use crate::error::{to_py, IntoPy};
use crate::hardware::{PyHardware, PyLaw};

/// Rows per GIL-free call (about 25 ms on two cores): Ctrl-C is checked between calls.
const CALL_ROWS: usize = 1 << 18;

/// Metric columns of `evaluate` (numpy arrays, one value per row; units in the names).
#[pyclass(module = "timescale_frontier._core", name = "MetricColumns", frozen, get_all)]
pub struct PyMetricColumns {
    pub params: Py<PyArray1<f64>>,
    pub non_embedding_params: Py<PyArray1<f64>>,
    pub flops_per_step: Py<PyArray1<f64>>,
    pub memcpy_bytes_per_step: Py<PyArray1<f64>>,
    pub memory_bytes: Py<PyArray1<f64>>,
    pub fits_memory: Py<PyArray1<bool>>,
    pub step_time_s: Py<PyArray1<f64>>,
    pub steps: Py<PyArray1<f64>>,
    pub tokens: Py<PyArray1<f64>>,
    pub effective_tokens: Py<PyArray1<f64>>,
    /// +inf where not one step fits in the budget.
    pub loss: Py<PyArray1<f64>>,
}

#[pymethods]
impl PyMetricColumns {
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.params.bind(py).len()
    }
}

/// A numeric column as given: absent, a scalar, or a 1-D C-contiguous array (borrowed).
enum Given<'py, T: numpy::Element> {
    Absent,
    Scalar(T),
    Array(PyReadonlyArray1<'py, T>),
}

impl<'py, T: numpy::Element + Copy + for<'a> FromPyObject<'a, 'py>> Given<'py, T> {
    fn from(field: &str, v: Option<&Bound<'py, PyAny>>, kind: &str) -> PyResult<Self> {
        let Some(v) = v else { return Ok(Given::Absent) };
        if let Ok(a) = v.extract::<PyReadonlyArray1<'py, T>>() {
            if a.as_slice().is_err() {
                return Err(to_py(Error::invalid(field, "a strided array", "a C-contiguous array")));
            }
            return Ok(Given::Array(a));
        }
        v.extract::<T>().map(Given::Scalar).map_err(|_| {
            to_py(Error::invalid(
                field,
                v.repr().map_or_else(|_| "?".into(), |r| r.to_string()),
                &format!("{kind}, or a 1-D array of them"),
            ))
        })
    }
    fn column(&self) -> Column<'_, T> {
        match self {
            Given::Absent => Column::Absent,
            Given::Scalar(v) => Column::Scalar(*v),
            Given::Array(a) => Column::Values(a.as_slice().expect("checked contiguous")),
        }
    }
}

/// A categorical column: absent, one name, or `(names, codes)` (codes index `names`; the core
/// looks each row's code up and names a row whose code is outside).
enum Category<'py, T> {
    Absent,
    Scalar(T),
    Coded(Vec<T>, PyReadonlyArray1<'py, i64>),
}

impl<'py, T: Copy> Category<'py, T> {
    fn from(field: &str, v: Option<&Bound<'py, PyAny>>, parse: fn(&str) -> timescale_core::Result<T>) -> PyResult<Self> {
        let Some(v) = v else { return Ok(Category::Absent) };
        if let Ok(s) = v.extract::<String>() {
            return parse(&s).py_err().map(Category::Scalar);
        }
        let pair = v.cast::<PyTuple>().map_err(|_| to_py(Error::invalid(field, "?", "a name, or (names, codes)")))?;
        let (names, codes): (Vec<String>, PyReadonlyArray1<'py, i64>) = pair.extract()?;
        if codes.as_slice().is_err() {
            return Err(to_py(Error::invalid(field, "a strided array of codes", "a C-contiguous array")));
        }
        let kinds = names.iter().map(|n| parse(n)).collect::<timescale_core::Result<Vec<T>>>().py_err()?;
        Ok(Category::Coded(kinds, codes))
    }
    fn column(&self) -> Column<'_, T> {
        match self {
            Category::Absent => Column::Absent,
            Category::Scalar(v) => Column::Scalar(*v),
            Category::Coded(kinds, codes) => Column::Coded { kinds, codes: codes.as_slice().expect("checked contiguous") },
        }
    }
}

impl PyMetricColumns {
    /// `n` rows of zeros, allocated by numpy (whose allocator asks Linux for huge pages on large
    /// arrays: a fifth of the first-touch cost of 4 KiB pages on the benchmark machine).
    fn zeros(py: Python<'_>, n: usize) -> Self {
        let f = || PyArray1::<f64>::zeros(py, n, false).unbind();
        PyMetricColumns {
            params: f(),
            non_embedding_params: f(),
            flops_per_step: f(),
            memcpy_bytes_per_step: f(),
            memory_bytes: f(),
            fits_memory: PyArray1::<bool>::zeros(py, n, false).unbind(),
            step_time_s: f(),
            steps: f(),
            tokens: f(),
            effective_tokens: f(),
            loss: f(),
        }
    }
}

/// Every metric of the architectures given as columns, on one chip of `hardware` for `budget`.
/// Integer columns: a Python int or a C-contiguous int64 array (`micro_batch` 0: the whole batch;
/// `experts` 0: a dense MLP);
/// `mlp`, `attention` and `recompute`: a name or `(names, codes)`; `tied_embeddings`: a bool or a bool array; precisions: a float or a float64
/// array. Absent columns take the core's defaults. The first bad row raises `InvalidInputError`
/// naming the row and the field.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (hardware, budget, law, *, d_model, n_layers, n_heads, n_kv_heads=None, head_dim=None,
    d_ff=None, mlp=None, attention=None, tied_embeddings=None, seq_len=None, batch_size=None,
    vocab_size=None, param_bytes=None, activation_bytes=None, optimizer_bytes=None, recompute=None, micro_batch=None,
    experts=None, top_k=None, shared_experts=None, unique_tokens=None))]
pub fn evaluate<'py>(
    py: Python<'py>,
    hardware: &PyHardware,
    budget: &PyBudget,
    law: &PyLaw,
    d_model: Bound<'py, PyAny>,
    n_layers: Bound<'py, PyAny>,
    n_heads: Bound<'py, PyAny>,
    n_kv_heads: Option<Bound<'py, PyAny>>,
    head_dim: Option<Bound<'py, PyAny>>,
    d_ff: Option<Bound<'py, PyAny>>,
    mlp: Option<Bound<'py, PyAny>>,
    attention: Option<Bound<'py, PyAny>>,
    tied_embeddings: Option<Bound<'py, PyAny>>,
    seq_len: Option<Bound<'py, PyAny>>,
    batch_size: Option<Bound<'py, PyAny>>,
    vocab_size: Option<Bound<'py, PyAny>>,
    param_bytes: Option<Bound<'py, PyAny>>,
    activation_bytes: Option<Bound<'py, PyAny>>,
    optimizer_bytes: Option<Bound<'py, PyAny>>,
    recompute: Option<Bound<'py, PyAny>>,
    micro_batch: Option<Bound<'py, PyAny>>,
    experts: Option<Bound<'py, PyAny>>,
    top_k: Option<Bound<'py, PyAny>>,
    shared_experts: Option<Bound<'py, PyAny>>,
    unique_tokens: Option<f64>,
) -> PyResult<PyMetricColumns> {
    const INT: &str = "an integer";
    const FLOAT: &str = "a number";
    let int = |f: &str, v: Option<&Bound<'py, PyAny>>| Given::<i64>::from(f, v, INT);
    let float = |f: &str, v: Option<&Bound<'py, PyAny>>| Given::<f64>::from(f, v, FLOAT);
    let given = [
        int("d_model", Some(&d_model))?,
        int("n_layers", Some(&n_layers))?,
        int("n_heads", Some(&n_heads))?,
        int("n_kv_heads", n_kv_heads.as_ref())?,
        int("head_dim", head_dim.as_ref())?,
        int("d_ff", d_ff.as_ref())?,
        int("seq_len", seq_len.as_ref())?,
        int("batch_size", batch_size.as_ref())?,
        int("vocab_size", vocab_size.as_ref())?,
        int("micro_batch", micro_batch.as_ref())?,
        int("experts", experts.as_ref())?,
        int("top_k", top_k.as_ref())?,
        int("shared_experts", shared_experts.as_ref())?,
    ];
    let bytes = [
        float("param_bytes", param_bytes.as_ref())?,
        float("activation_bytes", activation_bytes.as_ref())?,
        float("optimizer_bytes", optimizer_bytes.as_ref())?,
    ];
    let tied = match &tied_embeddings {
        Some(v) if v.is_instance_of::<PyBool>() => Given::Scalar(v.extract::<bool>()?),
        v => Given::<bool>::from("tied_embeddings", v.as_ref(), "true or false")?,
    };
    let mlp = Category::from("mlp", mlp.as_ref(), Mlp::parse)?;
    let attention = Category::from("attention", attention.as_ref(), Attention::parse)?;
    let recompute = Category::from("recompute", recompute.as_ref(), Recompute::parse)?;
    let cols = ArchitectureColumns {
        d_model: given[0].column(),
        n_layers: given[1].column(),
        n_heads: given[2].column(),
        n_kv_heads: given[3].column(),
        head_dim: given[4].column(),
        d_ff: given[5].column(),
        mlp: mlp.column(),
        attention: attention.column(),
        tied_embeddings: tied.column(),
        seq_len: given[6].column(),
        batch_size: given[7].column(),
        vocab_size: given[8].column(),
        param_bytes: bytes[0].column(),
        activation_bytes: bytes[1].column(),
        optimizer_bytes: bytes[2].column(),
        recompute: recompute.column(),
        micro_batch: given[9].column(),
        experts: given[10].column(),
        top_k: given[11].column(),
        shared_experts: given[12].column(),
    };
    let n = cols.rows().py_err()?;
    let (hw, law) = (hardware.0, law.0);
    timescale_core::predict::check_unique_tokens(unique_tokens).py_err()?;
    let budget_s = budget.core().resolve(&hw, 1).py_err()?.seconds;
    let out = PyMetricColumns::zeros(py, n);
    {
        let w = |a: &Py<PyArray1<f64>>| a.bind(py).readwrite();
        let mut f = [
            w(&out.params),
            w(&out.non_embedding_params),
            w(&out.flops_per_step),
            w(&out.memcpy_bytes_per_step),
            w(&out.memory_bytes),
            w(&out.step_time_s),
            w(&out.steps),
            w(&out.tokens),
            w(&out.effective_tokens),
            w(&out.loss),
        ];
        let mut fits = out.fits_memory.bind(py).readwrite();
        let [p, ne, fl, mc, mem, st, steps, tok, eff, loss] =
            f.each_mut().map(|a| a.as_slice_mut().expect("new contiguous array"));
        let mut slices = MetricSlices {
            params: p,
            non_embedding_params: ne,
            flops_per_step: fl,
            memcpy_bytes_per_step: mc,
            memory_bytes: mem,
            fits_memory: fits.as_slice_mut().expect("new contiguous array"),
            step_time_s: st,
            steps,
            tokens: tok,
            effective_tokens: eff,
            loss,
        };
        for lo in (0..n).step_by(CALL_ROWS) {
            let part = slices.rows(lo..(lo + CALL_ROWS).min(n));
            py.detach(|| evaluate_columns_into(&cols, lo, part, &hw, budget_s, &law, unique_tokens)).py_err()?;
            py.check_signals()?;
        }
    }
    Ok(out)
}
