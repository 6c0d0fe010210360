//! `Architecture`: one Python class over the core's struct, plus its operation table.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use timescale_core::memcpy::{hardware_flops_per_step, kernels_per_step, op_table, per_op_roofline_s, Pass, Scope};
use timescale_core::{Attention, Mlp, Precision};

use crate::error::to_py;

/// One transformer configuration and its training batch (see the core's `architecture.rs`).
#[pyclass(module = "timescale_frontier._core", name = "Architecture", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyArchitecture(pub timescale_core::Architecture);

#[pymethods]
impl PyArchitecture {
    #[new]
    #[pyo3(signature = (d_model, n_layers, n_heads, *, n_kv_heads=None, head_dim=None, d_ff=None,
        mlp="gelu", attention="flash", tied_embeddings=false, seq_len=2048, batch_size=32,
        vocab_size=32000, param_bytes=4.0, activation_bytes=2.0, optimizer_bytes=4.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        d_model: u32,
        n_layers: u32,
        n_heads: u32,
        n_kv_heads: Option<u32>,
        head_dim: Option<u32>,
        d_ff: Option<u32>,
        mlp: &str,
        attention: &str,
        tied_embeddings: bool,
        seq_len: u32,
        batch_size: u32,
        vocab_size: u32,
        param_bytes: f64,
        activation_bytes: f64,
        optimizer_bytes: f64,
    ) -> PyResult<Self> {
        let mlp = Mlp::parse(mlp).map_err(to_py)?;
        let head_dim = match head_dim {
            Some(h) => h,
            None if n_heads > 0 && d_model.is_multiple_of(n_heads) => d_model / n_heads,
            None => {
                return Err(to_py(timescale_core::Error::invalid(
                    "head_dim",
                    "unset",
                    &format!("given explicitly when n_heads = {n_heads} does not divide d_model = {d_model}"),
                )))
            }
        };
        let default_d_ff = match mlp {
            Mlp::Gelu => 4 * d_model,
            // LLaMA's rule: 2/3 of 4 d, rounded up to a multiple of 256.
            Mlp::Swiglu => (8 * d_model / 3).div_ceil(256) * 256,
        };
        let a = timescale_core::Architecture {
            d_model,
            n_layers,
            n_heads,
            n_kv_heads: n_kv_heads.unwrap_or(n_heads),
            head_dim,
            d_ff: d_ff.unwrap_or(default_d_ff),
            mlp,
            attention: Attention::parse(attention).map_err(to_py)?,
            tied_embeddings,
            seq_len,
            batch_size,
            vocab_size,
            precision: Precision { param_bytes, activation_bytes, optimizer_bytes },
        };
        a.validate().map_err(to_py)?;
        Ok(PyArchitecture(a))
    }

    #[getter]
    fn d_model(&self) -> u32 {
        self.0.d_model
    }
    #[getter]
    fn n_layers(&self) -> u32 {
        self.0.n_layers
    }
    #[getter]
    fn n_heads(&self) -> u32 {
        self.0.n_heads
    }
    #[getter]
    fn n_kv_heads(&self) -> u32 {
        self.0.n_kv_heads
    }
    #[getter]
    fn head_dim(&self) -> u32 {
        self.0.head_dim
    }
    #[getter]
    fn d_ff(&self) -> u32 {
        self.0.d_ff
    }
    #[getter]
    fn mlp(&self) -> &'static str {
        self.0.mlp.name()
    }
    #[getter]
    fn attention(&self) -> &'static str {
        self.0.attention.name()
    }
    #[getter]
    fn tied_embeddings(&self) -> bool {
        self.0.tied_embeddings
    }
    #[getter]
    fn seq_len(&self) -> u32 {
        self.0.seq_len
    }
    #[getter]
    fn batch_size(&self) -> u32 {
        self.0.batch_size
    }
    #[getter]
    fn vocab_size(&self) -> u32 {
        self.0.vocab_size
    }
    #[getter]
    fn param_bytes(&self) -> f64 {
        self.0.precision.param_bytes
    }
    #[getter]
    fn activation_bytes(&self) -> f64 {
        self.0.precision.activation_bytes
    }
    #[getter]
    fn optimizer_bytes(&self) -> f64 {
        self.0.precision.optimizer_bytes
    }

    /// Every field as a dict (the keyword arguments that rebuild it).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let a = &self.0;
        let d = PyDict::new(py);
        d.set_item("d_model", a.d_model)?;
        d.set_item("n_layers", a.n_layers)?;
        d.set_item("n_heads", a.n_heads)?;
        d.set_item("n_kv_heads", a.n_kv_heads)?;
        d.set_item("head_dim", a.head_dim)?;
        d.set_item("d_ff", a.d_ff)?;
        d.set_item("mlp", a.mlp.name())?;
        d.set_item("attention", a.attention.name())?;
        d.set_item("tied_embeddings", a.tied_embeddings)?;
        d.set_item("seq_len", a.seq_len)?;
        d.set_item("batch_size", a.batch_size)?;
        d.set_item("vocab_size", a.vocab_size)?;
        d.set_item("param_bytes", a.precision.param_bytes)?;
        d.set_item("activation_bytes", a.precision.activation_bytes)?;
        d.set_item("optimizer_bytes", a.precision.optimizer_bytes)?;
        Ok(d)
    }

    /// The MEMCPY operation table: one dict per op with `name`, `pass`, `scope`, `read_bytes`,
    /// `write_bytes` (one occurrence) and `bytes_per_step` (all layers).
    fn op_table<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let l = f64::from(self.0.n_layers);
        op_table(&self.0)
            .ops()
            .iter()
            .map(|op| {
                let d = PyDict::new(py);
                d.set_item("name", op.name)?;
                d.set_item(
                    "pass",
                    match op.pass {
                        Pass::Forward => "forward",
                        Pass::Backward => "backward",
                        Pass::Optimizer => "optimizer",
                    },
                )?;
                d.set_item("scope", if op.scope == Scope::PerLayer { "per_layer" } else { "per_step" })?;
                d.set_item("read_bytes", op.read_bytes)?;
                d.set_item("write_bytes", op.write_bytes)?;
                d.set_item("bytes_per_step", op.bytes_per_step(l))?;
                d.set_item("flops", op.flops)?;
                d.set_item("flops_per_step", op.flops * op.multiplicity(l))?;
                Ok(d)
            })
            .collect()
    }

    /// Training FLOPs of one step (Chinchilla App. F model FLOPs).
    fn flops_per_step(&self) -> f64 {
        timescale_core::flops::flops_per_step(&self.0)
    }

    /// MEMCPY bytes of one step (the op table's sum).
    fn memcpy_bytes_per_step(&self) -> f64 {
        timescale_core::memcpy::memcpy_bytes_per_step(&self.0)
    }

    /// The batch-independent part of MEMCPY (parameters, gradients, optimizer moments), bytes.
    fn memcpy_fixed_bytes_per_step(&self) -> f64 {
        timescale_core::memcpy::memcpy_fixed_bytes_per_step(&self.0)
    }

    /// One pass over the materialized attention scores of every layer, bytes (0 for flash).
    fn attention_score_bytes_per_step(&self) -> f64 {
        timescale_core::memcpy::attention_score_bytes_per_step(&self.0)
    }

    /// Hardware FLOPs of one step (the op table's sum; see the core's memcpy.rs).
    fn hardware_flops_per_step(&self) -> f64 {
        hardware_flops_per_step(&self.0)
    }

    /// Kernels (op-table rows executed) per step.
    fn kernels_per_step(&self) -> f64 {
        kernels_per_step(&self.0)
    }

    /// Sum over ops of max(FLOPs / flops_per_s, bytes / bytes_per_s), in seconds.
    fn per_op_roofline_s(&self, flops_per_s: f64, bytes_per_s: f64) -> f64 {
        per_op_roofline_s(&self.0, flops_per_s, bytes_per_s)
    }

    fn __repr__(&self) -> String {
        let a = &self.0;
        format!(
            "Architecture(d_model={}, n_layers={}, n_heads={}, n_kv_heads={}, head_dim={}, d_ff={}, mlp='{}', \
             attention='{}', tied_embeddings={}, seq_len={}, batch_size={}, vocab_size={})",
            a.d_model,
            a.n_layers,
            a.n_heads,
            a.n_kv_heads,
            a.head_dim,
            a.d_ff,
            a.mlp.name(),
            a.attention.name(),
            if a.tied_embeddings { "True" } else { "False" },
            a.seq_len,
            a.batch_size,
            a.vocab_size
        )
    }
}
