//! The transformer being costed: one struct holding every hyperparameter the cost model reads.
//!
//! The model is a decoder-only, pre-norm transformer in the LLaMA style: token embedding, `n_layers`
//! blocks of (RMSNorm, attention with rotary positions, residual add, RMSNorm, MLP, residual add), a
//! final RMSNorm and an output projection to the vocabulary (tied to the embedding or not). No biases,
//! no learned position embeddings; RMSNorm has one weight vector of `d_model`.

use crate::error::{Error, Result};

/// MLP kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mlp {
    /// Two matrices: `d_model x d_ff` up, GELU, `d_ff x d_model` down.
    Gelu,
    /// Three matrices: gate and up (`d_model x d_ff` each, computed as one `d_model x 2 d_ff`
    /// matmul), SiLU(gate) * up, `d_ff x d_model` down (Shazeer 2020).
    Swiglu,
}

impl Mlp {
    /// Number of `d_model x d_ff` matrices in the block.
    pub fn n_matrices(self) -> u32 {
        match self {
            Mlp::Gelu => 2,
            Mlp::Swiglu => 3,
        }
    }
    /// Width of the input projection's output (`d_ff`, or `2 d_ff` for the fused gate+up).
    pub fn input_width_factor(self) -> u32 {
        self.n_matrices() - 1
    }
    pub fn name(self) -> &'static str {
        match self {
            Mlp::Gelu => "gelu",
            Mlp::Swiglu => "swiglu",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "gelu" => Ok(Mlp::Gelu),
            "swiglu" => Ok(Mlp::Swiglu),
            _ => Err(Error::invalid("mlp", format!("'{s}'"), "'gelu' or 'swiglu'")),
        }
    }
}

/// Attention implementation, which decides what attention reads, writes and saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attention {
    /// Scores and probabilities (`batch x heads x seq x seq`) are written to and read from HBM.
    Materialized,
    /// FlashAttention (Dao et al. 2022): scores stay on chip; only Q, K, V, the output and the
    /// per-row log-sum-exp touch HBM.
    Flash,
}

impl Attention {
    pub fn name(self) -> &'static str {
        match self {
            Attention::Materialized => "materialized",
            Attention::Flash => "flash",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "materialized" => Ok(Attention::Materialized),
            "flash" => Ok(Attention::Flash),
            _ => Err(Error::invalid("attention", format!("'{s}'"), "'materialized' or 'flash'")),
        }
    }
}

/// Bytes per element of the three kinds of tensor a training step touches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Precision {
    /// Master parameters and their gradients (default 4: fp32).
    pub param_bytes: f64,
    /// Activations and activation gradients (default 2: bf16).
    pub activation_bytes: f64,
    /// Each of AdamW's two moment estimates (default 4: fp32).
    pub optimizer_bytes: f64,
}

impl Default for Precision {
    fn default() -> Self {
        Precision { param_bytes: 4.0, activation_bytes: 2.0, optimizer_bytes: 4.0 }
    }
}

/// Largest accepted value of any single dimension: keeps every product of dimensions the cost
/// model forms (at most four factors, e.g. batch x heads x seq x seq) exactly representable in f64.
pub const MAX_DIM: u32 = 1 << 24;

/// One transformer configuration with its training batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Architecture {
    pub d_model: u32,
    pub n_layers: u32,
    pub n_heads: u32,
    /// Key/value heads (grouped-query attention); `n_heads` means ordinary multi-head attention.
    pub n_kv_heads: u32,
    pub head_dim: u32,
    pub d_ff: u32,
    pub mlp: Mlp,
    pub attention: Attention,
    /// Output projection shares the embedding matrix.
    pub tied_embeddings: bool,
    /// Tokens per sequence.
    pub seq_len: u32,
    /// Sequences per optimizer step.
    pub batch_size: u32,
    pub vocab_size: u32,
    pub precision: Precision,
}

impl Architecture {
    /// Width of all query heads together (`n_heads x head_dim`); equals `d_model` in most models.
    #[inline]
    pub fn q_dim(&self) -> f64 {
        f64::from(self.n_heads) * f64::from(self.head_dim)
    }
    /// Width of all key (or all value) heads together (`n_kv_heads x head_dim`).
    #[inline]
    pub fn kv_dim(&self) -> f64 {
        f64::from(self.n_kv_heads) * f64::from(self.head_dim)
    }
    /// Tokens processed per optimizer step (`batch_size x seq_len`).
    #[inline]
    pub fn tokens_per_step(&self) -> f64 {
        f64::from(self.batch_size) * f64::from(self.seq_len)
    }

    /// Checks every field against its accepted range. Errors name the field and the range.
    pub fn validate(&self) -> Result<()> {
        let dims = [
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("head_dim", self.head_dim),
            ("d_ff", self.d_ff),
            ("seq_len", self.seq_len),
            ("batch_size", self.batch_size),
            ("vocab_size", self.vocab_size),
        ];
        for (field, v) in dims {
            if v == 0 || v > MAX_DIM {
                return Err(Error::invalid(field, v, &format!("an integer in [1, {MAX_DIM}]")));
            }
        }
        if self.n_kv_heads > self.n_heads || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return Err(Error::invalid(
                "n_kv_heads",
                self.n_kv_heads,
                &format!("a divisor of n_heads = {}", self.n_heads),
            ));
        }
        let p = self.precision;
        for (field, v) in [
            ("param_bytes", p.param_bytes),
            ("activation_bytes", p.activation_bytes),
            ("optimizer_bytes", p.optimizer_bytes),
        ] {
            if !(v.is_finite() && (0.5..=8.0).contains(&v)) {
                return Err(Error::invalid(field, v, "bytes per element in [0.5, 8] (e.g. 2 for bf16, 4 for fp32)"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// LLaMA-7B (Touvron et al. 2023, Table 2): d 4096, 32 layers, 32 heads, SwiGLU d_ff 11008,
    /// vocab 32000, untied, context 2048.
    pub fn llama_7b() -> Architecture {
        Architecture {
            d_model: 4096,
            n_layers: 32,
            n_heads: 32,
            n_kv_heads: 32,
            head_dim: 128,
            d_ff: 11008,
            mlp: Mlp::Swiglu,
            attention: Attention::Flash,
            tied_embeddings: false,
            seq_len: 2048,
            batch_size: 1,
            vocab_size: 32000,
            precision: Precision::default(),
        }
    }

    /// d 4, 1 layer, 2 heads of 2, 1 KV head, GELU d_ff 8, materialized, untied, S 4, batch 1,
    /// vocab 8, fp32 params/moments, bf16 activations. T 4, q 4, kv 2, P = 1 x 2 x 16 = 32,
    /// N = 188. Hand-derived counts for it are in memcpy.rs and memory.rs.
    pub fn tiny() -> Architecture {
        Architecture {
            d_model: 4,
            n_layers: 1,
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 2,
            d_ff: 8,
            mlp: Mlp::Gelu,
            attention: Attention::Materialized,
            tied_embeddings: false,
            seq_len: 4,
            batch_size: 1,
            vocab_size: 8,
            precision: Precision::default(),
        }
    }

    #[test]
    fn validate_accepts_llama_and_names_bad_fields() {
        assert!(llama_7b().validate().is_ok());
        let bad = Architecture { n_kv_heads: 5, ..llama_7b() };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("n_kv_heads") && err.contains("divisor of n_heads = 32"), "{err}");
        let bad = Architecture { d_model: 0, ..llama_7b() };
        assert!(bad.validate().unwrap_err().to_string().starts_with("d_model = 0"));
        let bad = Architecture { precision: Precision { activation_bytes: f64::NAN, ..Precision::default() }, ..llama_7b() };
        assert!(bad.validate().unwrap_err().to_string().contains("activation_bytes"));
    }

    #[test]
    fn parse_names_round_trip() {
        for m in [Mlp::Gelu, Mlp::Swiglu] {
            assert_eq!(Mlp::parse(m.name()).unwrap(), m);
        }
        for a in [Attention::Materialized, Attention::Flash] {
            assert_eq!(Attention::parse(a.name()).unwrap(), a);
        }
        assert!(Mlp::parse("relu").is_err());
    }
}
