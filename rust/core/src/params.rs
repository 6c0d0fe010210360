//! Parameter counts. Source: the architecture in `architecture.rs` (LLaMA-style, no biases,
//! RMSNorm weights only, rotary positions), counted matrix by matrix.

use crate::architecture::Architecture;

/// Parameters of one transformer block (count, not bytes):
/// attention `d (q_dim + 2 kv_dim) + q_dim d`, MLP `n_matrices d d_ff`, two RMSNorm weights `2 d`.
#[inline]
pub fn params_per_layer(a: &Architecture) -> f64 {
    let d = f64::from(a.d_model);
    let attention = d * (a.q_dim() + 2.0 * a.kv_dim()) + a.q_dim() * d;
    let mlp = f64::from(a.mlp.n_matrices()) * d * f64::from(a.d_ff);
    attention + mlp + 2.0 * d
}

/// Embedding parameters: `V d`, twice when the output projection is untied.
#[inline]
pub fn embedding_params(a: &Architecture) -> f64 {
    let table = f64::from(a.vocab_size) * f64::from(a.d_model);
    if a.tied_embeddings {
        table
    } else {
        2.0 * table
    }
}

/// Non-embedding parameters (Kaplan et al. 2020's N): all blocks plus the final RMSNorm weight.
#[inline]
pub fn non_embedding_params(a: &Architecture) -> f64 {
    f64::from(a.n_layers) * params_per_layer(a) + f64::from(a.d_model)
}

/// Total parameters (Hoffmann et al. 2022's N, embeddings included).
#[inline]
pub fn total_params(a: &Architecture) -> f64 {
    non_embedding_params(a) + embedding_params(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::tests::llama_7b;
    use crate::architecture::Mlp;

    #[test]
    fn llama_7b_has_6_738_415_616_parameters() {
        // Hand count: embeddings 2 x 32000 x 4096 = 262,144,000; per layer 4 x 4096^2 = 67,108,864
        // (attention) + 3 x 4096 x 11008 = 135,266,304 (SwiGLU) + 2 x 4096 (norms) = 202,383,360;
        // 32 layers = 6,476,267,520; final norm 4096. Total 6,738,415,616 (the figure Hugging Face
        // reports for meta-llama/Llama-2-7b).
        let a = llama_7b();
        assert_eq!(params_per_layer(&a), 202_383_360.0);
        assert_eq!(total_params(&a), 6_738_415_616.0);
        assert_eq!(non_embedding_params(&a), 6_476_271_616.0);
    }

    #[test]
    fn gqa_and_tied_and_gelu_counts() {
        // d 64, 8 heads of 8, 2 KV heads, GELU d_ff 256, vocab 100, tied, 2 layers.
        // attention: 64 x (64 + 2 x 16) + 64 x 64 = 6144 + 4096 = 10240; MLP 2 x 64 x 256 = 32768;
        // norms 128 -> 43136 per layer; 2 layers 86272; final norm 64; embeddings 6400.
        let a = Architecture {
            d_model: 64,
            n_layers: 2,
            n_heads: 8,
            n_kv_heads: 2,
            head_dim: 8,
            d_ff: 256,
            mlp: Mlp::Gelu,
            tied_embeddings: true,
            vocab_size: 100,
            ..llama_7b()
        };
        assert_eq!(params_per_layer(&a), 43_136.0);
        assert_eq!(total_params(&a), 86_272.0 + 64.0 + 6_400.0);
    }
}
