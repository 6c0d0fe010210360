//! `Architecture` (the core's struct, built through `ArchitectureSpec` so omitted fields take the
//! core's defaults) and `Op`, one row of its MEMCPY operation table.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use timescale_core::architecture::Recompute;
use timescale_core::architecture::{dim, FieldValue, MAX_EXPERTS};
use timescale_core::error::integer_in;
use timescale_core::memcpy::{self, Pass, Scope};
use timescale_core::{ArchitectureSpec, Attention, Mlp};

use crate::error::{AnyInt, IntoPy};

/// One transformer configuration and its training batch (see the core's `architecture.rs`).
#[pyclass(module = "timescale_frontier._core", name = "Architecture", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PyArchitecture(pub timescale_core::Architecture);

/// The work of one training step (per chip when it comes from a sharded step): what the step-time
/// models price. FLOPs here are executed tensor FLOPs (recomputation included, no embedding
/// matmul), not Chinchilla's model FLOPs.
#[pyclass(module = "timescale_frontier._core", name = "StepWork", frozen, get_all)]
#[derive(Clone)]
pub struct PyStepWork {
    /// Dense matmul FLOPs.
    pub matmul_flops: f64,
    /// Attention-score matmul FLOPs (causal flash: half the S^2 work).
    pub attention_flops: f64,
    /// Every hardware FLOP (with elementwise work).
    pub flops: f64,
    /// MEMCPY bytes.
    pub bytes: f64,
    pub kernels: f64,
    /// FLOPs of the tensor units (dense and attention-score matmuls).
    pub tensor_flops: f64,
}

impl From<memcpy::StepWork> for PyStepWork {
    fn from(w: memcpy::StepWork) -> Self {
        PyStepWork {
            matmul_flops: w.matmul_flops,
            attention_flops: w.attention_flops,
            flops: w.flops,
            bytes: w.bytes,
            kernels: w.kernels,
            tensor_flops: w.tensor_flops(),
        }
    }
}

/// One row of the MEMCPY operation table: bytes of one occurrence and of the whole step.
#[pyclass(module = "timescale_frontier._core", name = "Op", frozen, get_all)]
#[derive(Clone)]
pub struct PyOp {
    pub name: &'static str,
    /// `forward`, `backward` or `optimizer`.
    pub phase: &'static str,
    /// `per_layer` or `per_step`.
    pub scope: &'static str,
    pub read_bytes: f64,
    pub write_bytes: f64,
    pub bytes_per_step: f64,
    pub flops: f64,
    pub flops_per_step: f64,
}

pub fn parse_mlp(s: Option<&str>) -> PyResult<Option<Mlp>> {
    s.map(Mlp::parse).transpose().py_err()
}

pub fn parse_attention(s: Option<&str>) -> PyResult<Option<Attention>> {
    s.map(Attention::parse).transpose().py_err()
}

#[pymethods]
impl PyArchitecture {
    /// Omitted fields take the core's defaults (`n_kv_heads = n_heads`, `head_dim = d_model /
    /// n_heads`, `d_ff` 4 d_model for GELU or LLaMA's 8/3 rule for SwiGLU, ...).
    #[new]
    #[pyo3(signature = (d_model, n_layers, n_heads, *, n_kv_heads=None, head_dim=None, d_ff=None,
        mlp=None, attention=None, tied_embeddings=None, seq_len=None, batch_size=None,
        vocab_size=None, param_bytes=None, activation_bytes=None, optimizer_bytes=None, recompute=None,
        micro_batch=None, experts=None, top_k=None, shared_experts=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        d_model: AnyInt,
        n_layers: AnyInt,
        n_heads: AnyInt,
        n_kv_heads: Option<AnyInt>,
        head_dim: Option<AnyInt>,
        d_ff: Option<AnyInt>,
        mlp: Option<&str>,
        attention: Option<&str>,
        tied_embeddings: Option<bool>,
        seq_len: Option<AnyInt>,
        batch_size: Option<AnyInt>,
        vocab_size: Option<AnyInt>,
        param_bytes: Option<f64>,
        activation_bytes: Option<f64>,
        optimizer_bytes: Option<f64>,
        recompute: Option<&str>,
        micro_batch: Option<AnyInt>,
        experts: Option<AnyInt>,
        top_k: Option<AnyInt>,
        shared_experts: Option<AnyInt>,
    ) -> PyResult<Self> {
        let req = |f: &str, v: AnyInt| dim(f, v.0).py_err();
        let opt = |f: &str, v: Option<AnyInt>| v.map(|v| dim(f, v.0)).transpose().py_err();
        let count = |f: &str, v: Option<AnyInt>| v.map(|v| integer_in(f, v.0, 0, MAX_EXPERTS.into())).transpose().py_err();
        let spec = ArchitectureSpec {
            d_model: req("d_model", d_model)?,
            n_layers: req("n_layers", n_layers)?,
            n_heads: req("n_heads", n_heads)?,
            n_kv_heads: opt("n_kv_heads", n_kv_heads)?,
            head_dim: opt("head_dim", head_dim)?,
            d_ff: opt("d_ff", d_ff)?,
            mlp: parse_mlp(mlp)?,
            attention: parse_attention(attention)?,
            tied_embeddings,
            seq_len: opt("seq_len", seq_len)?,
            batch_size: opt("batch_size", batch_size)?,
            vocab_size: opt("vocab_size", vocab_size)?,
            param_bytes,
            activation_bytes,
            optimizer_bytes,
            recompute: recompute.map(Recompute::parse).transpose().py_err()?,
            micro_batch: opt("micro_batch", micro_batch)?,
            experts: count("experts", experts)?,
            top_k: count("top_k", top_k)?,
            shared_experts: count("shared_experts", shared_experts)?,
        };
        spec.build().py_err().map(PyArchitecture)
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
    /// `none`, `full` or `selective` activation recomputation.
    #[getter]
    fn recompute(&self) -> &'static str {
        self.0.recompute.name()
    }
    /// Sequences per micro-step (`None`: the whole batch at once).
    #[getter]
    fn micro_batch(&self) -> Option<u32> {
        self.0.micro_batch
    }
    /// Routed experts per MoE layer (0: a dense MLP).
    #[getter]
    fn experts(&self) -> u32 {
        self.0.experts
    }
    /// Routed experts each token goes to (0 when dense).
    #[getter]
    fn top_k(&self) -> u32 {
        self.0.top_k
    }
    /// Experts every token goes to besides its routed ones (DeepSeekMoE's shared experts).
    #[getter]
    fn shared_experts(&self) -> u32 {
        self.0.shared_experts
    }
    /// Micro-steps per optimizer step (gradient accumulation), on one chip.
    #[getter]
    fn micro_steps(&self) -> f64 {
        self.0.micro_steps()
    }
    /// Tokens per optimizer step (batch_size x seq_len).
    #[getter]
    fn tokens_per_step(&self) -> f64 {
        self.0.tokens_per_step()
    }

    /// Every field as a dict (the keyword arguments that rebuild it), in the core's
    /// `Architecture::FIELDS` order.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, _) in timescale_core::Architecture::FIELDS {
            match self.0.field(name).expect("a listed field has a value") {
                FieldValue::Int(v) => d.set_item(name, v)?,
                FieldValue::Float(v) => d.set_item(name, v)?,
                FieldValue::Bool(v) => d.set_item(name, v)?,
                FieldValue::Text(v) => d.set_item(name, v)?,
                FieldValue::None => d.set_item(name, py.None())?,
            }
        }
        Ok(d)
    }

    /// The same model reshaped at about the same non-embedding parameters (depth x
    /// `depth_factor`, width / sqrt(`depth_factor`)); `None` when rounding leaves the depth or the
    /// width as it was. `depth_factor` must be in [1e-3, 1e3].
    fn reshaped(&self, depth_factor: f64) -> PyResult<Option<PyArchitecture>> {
        Ok(self.0.reshaped(depth_factor).py_err()?.map(PyArchitecture))
    }

    /// The MEMCPY operation table, in execution order.
    fn op_table(&self) -> Vec<PyOp> {
        let l = f64::from(self.0.n_layers);
        memcpy::op_table(&self.0)
            .ops()
            .iter()
            .map(|op| PyOp {
                name: op.name,
                phase: match op.pass {
                    Pass::Forward => "forward",
                    Pass::Backward => "backward",
                    Pass::Optimizer => "optimizer",
                },
                scope: if op.scope == Scope::PerLayer { "per_layer" } else { "per_step" },
                read_bytes: op.read_bytes,
                write_bytes: op.write_bytes,
                bytes_per_step: op.bytes_per_step(l),
                flops: op.flops,
                flops_per_step: op.flops * op.multiplicity(l),
            })
            .collect()
    }

    /// Total parameters (count; every expert of a mixture).
    fn params(&self) -> f64 {
        timescale_core::params::total_params(&self.0)
    }

    /// Parameters one token uses (count): a mixture's `top_k + shared_experts` experts and its
    /// router; every parameter of a dense model.
    fn active_params(&self) -> f64 {
        timescale_core::params::active_params(&self.0)
    }

    /// Training FLOPs of one step (Chinchilla App. F model FLOPs).
    fn flops_per_step(&self) -> f64 {
        timescale_core::flops::flops_per_step(&self.0)
    }

    /// MEMCPY bytes of one step (the op table's sum).
    fn memcpy_bytes_per_step(&self) -> f64 {
        memcpy::memcpy_bytes_per_step(&self.0)
    }

    /// The batch-independent part of MEMCPY (parameters, gradients, optimizer moments), bytes.
    fn memcpy_fixed_bytes_per_step(&self) -> f64 {
        memcpy::memcpy_fixed_bytes_per_step(&self.0)
    }

    /// One pass over the materialized attention scores of every layer, bytes (0 for flash).
    fn attention_score_bytes_per_step(&self) -> f64 {
        memcpy::attention_score_bytes_per_step(&self.0)
    }

    /// Hardware FLOPs of one step (the op table's sum; see the core's memcpy.rs).
    fn hardware_flops_per_step(&self) -> f64 {
        memcpy::hardware_flops_per_step(&self.0)
    }

    /// Kernels (op-table rows executed) per step.
    fn kernels_per_step(&self) -> f64 {
        memcpy::kernels_per_step(&self.0)
    }

    /// The work of one step on one chip (matmul and attention FLOPs, MEMCPY bytes, kernels).
    fn step_work(&self) -> PyStepWork {
        memcpy::step_work(&self.0).into()
    }

    /// Peak device memory of one training step on one chip (bytes).
    fn memory_bytes(&self) -> f64 {
        timescale_core::memory::memory_bytes(&self.0)
    }

    /// Sum over ops of max(FLOPs / flops_per_s, bytes / bytes_per_s), in seconds.
    fn per_op_roofline_s(&self, flops_per_s: f64, bytes_per_s: f64) -> f64 {
        memcpy::per_op_roofline_s(&self.0, flops_per_s, bytes_per_s)
    }

    /// Equal architectures hash alike (every field, the precision's bytes by their bits).
    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let a = &self.0;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (a.d_model, a.n_layers, a.n_heads, a.n_kv_heads, a.head_dim, a.d_ff, a.seq_len, a.batch_size, a.vocab_size).hash(&mut h);
        (a.mlp.name(), a.attention.name(), a.tied_embeddings, a.recompute.name(), a.micro_batch).hash(&mut h);
        (a.experts, a.top_k, a.shared_experts).hash(&mut h);
        (a.precision.param_bytes.to_bits(), a.precision.activation_bytes.to_bits(), a.precision.optimizer_bytes.to_bits())
            .hash(&mut h);
        h.finish()
    }

    /// What pickle (and copy) rebuild it from: the three required fields and the rest by name.
    fn __getnewargs_ex__<'py>(&self, py: Python<'py>) -> PyResult<((u32, u32, u32), Bound<'py, PyDict>)> {
        let kwargs = self.to_dict(py)?;
        for key in ["d_model", "n_layers", "n_heads"] {
            kwargs.del_item(key)?;
        }
        Ok(((self.0.d_model, self.0.n_layers, self.0.n_heads), kwargs))
    }

    /// Every field as a keyword (a mixture's expert counts only for a mixture: a dense model's
    /// are the defaults).
    fn __repr__(&self) -> String {
        let a = &self.0;
        let moe = if a.is_moe() {
            format!(", experts={}, top_k={}, shared_experts={}", a.experts, a.top_k, a.shared_experts)
        } else {
            String::new()
        };
        format!(
            "Architecture(d_model={}, n_layers={}, n_heads={}, n_kv_heads={}, head_dim={}, d_ff={}, mlp='{}', \
             attention='{}', tied_embeddings={}, seq_len={}, batch_size={}, vocab_size={}, param_bytes={:?}, \
             activation_bytes={:?}, optimizer_bytes={:?}, recompute='{}', micro_batch={}{})",
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
            a.vocab_size,
            a.precision.param_bytes,
            a.precision.activation_bytes,
            a.precision.optimizer_bytes,
            a.recompute.name(),
            a.micro_batch.map_or("None".to_owned(), |m| m.to_string()),
            moe
        )
    }
}
