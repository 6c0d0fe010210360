//! Training FLOPs per step, term by term as in Hoffmann et al. 2022 (Chinchilla), Appendix F.
//!
//! Per sequence of length S (2 FLOPs per multiply-accumulate), with k h = q_dim:
//! embeddings 2 S V d; per layer: Q/K/V projections 2 S d (q_dim + 2 kv_dim) (Chinchilla's
//! 2 x 3 S d k h generalised to grouped-query attention), K Q^T 2 S^2 q_dim, softmax 3 h S^2,
//! softmax @ V 2 S^2 q_dim, output projection 2 S q_dim d, MLP 2 S n_matrices d d_ff (Chinchilla's
//! 2 S (2 d d_ff) for two matrices); logits 2 S d V. Backward = 2 x forward. Like Chinchilla, norms,
//! activations, residual adds and the causal mask's savings are not counted, and FlashAttention's
//! backward recomputation of the scores is not added (these are model FLOPs, not hardware FLOPs).
//!
//! A mixture of experts: each token's MLP term is paid for the `top_k + shared_experts` experts
//! it goes to, `2 S n_matrices d d_ff (top_k + shared_experts)`, plus the router's scores, a
//! `d x experts` matmul, `2 S d experts` (the same per-token accounting as Fedus et al. 2022's
//! FLOPs-matched Switch models; the weighted combine, like the activations, is not counted).

use crate::architecture::Architecture;

/// The forward-pass FLOPs of one sequence, split by Chinchilla App. F term.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForwardFlopsPerSequence {
    pub embeddings: f64,
    /// Sum over all layers of each per-layer term.
    pub qkv_projections: f64,
    pub kq_logits: f64,
    pub softmax: f64,
    pub softmax_times_v: f64,
    pub output_projection: f64,
    /// The MLP; a mixture's `top_k + shared_experts` experts per token.
    pub mlp: f64,
    pub logits: f64,
    /// The MoE router's scores (`2 S d experts` per layer; 0 for a dense MLP).
    pub router: f64,
}

impl ForwardFlopsPerSequence {
    pub fn total(&self) -> f64 {
        self.embeddings
            + self.qkv_projections
            + self.kq_logits
            + self.softmax
            + self.softmax_times_v
            + self.output_projection
            + self.mlp
            + self.logits
            + self.router
    }
}

/// Forward FLOPs of one sequence, by term (Chinchilla App. F).
pub fn forward_flops_per_sequence(a: &Architecture) -> ForwardFlopsPerSequence {
    let s = f64::from(a.seq_len);
    let d = f64::from(a.d_model);
    let v = f64::from(a.vocab_size);
    let l = f64::from(a.n_layers);
    let h = f64::from(a.n_heads);
    let (q, kv) = (a.q_dim(), a.kv_dim());
    ForwardFlopsPerSequence {
        embeddings: 2.0 * s * v * d,
        qkv_projections: l * 2.0 * s * d * (q + 2.0 * kv),
        kq_logits: l * 2.0 * s * s * q,
        softmax: l * 3.0 * h * s * s,
        softmax_times_v: l * 2.0 * s * s * q,
        output_projection: l * 2.0 * s * q * d,
        mlp: l * 2.0 * s * f64::from(a.mlp.n_matrices()) * d * f64::from(a.d_ff) * a.experts_per_token(),
        logits: 2.0 * s * d * v,
        router: l * 2.0 * s * d * f64::from(a.experts),
    }
}

/// Training FLOPs of one optimizer step (forward + backward = 3 x forward, times `batch_size`
/// sequences). Unit: FLOP. Source: Hoffmann et al. 2022, App. F.
#[inline]
pub fn flops_per_step(a: &Architecture) -> f64 {
    3.0 * f64::from(a.batch_size) * forward_flops_per_sequence(a).total()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::tests::llama_7b;
    use crate::architecture::{Attention, Mlp, Precision};

    #[test]
    fn worked_config_by_hand() {
        // d 512, 8 layers, 8 heads of 64 (MHA), GELU d_ff 2048, vocab 32000, S 1024, batch 4.
        // embeddings 2 x 1024 x 32000 x 512 = 33,554,432,000
        // per layer: QKV 2 x 1024 x 512 x 1536 = 1,610,612,736; KQ 2 x 1024^2 x 512 = 1,073,741,824;
        //   softmax 3 x 8 x 1024^2 = 25,165,824; SV 1,073,741,824; out 2 x 1024 x 512 x 512 = 536,870,912;
        //   MLP 2 x 1024 x 2 x 512 x 2048 = 4,294,967,296; layer sum 8,615,100,416, x 8 = 68,920,803,328
        // logits 33,554,432,000. Forward 136,029,667,328; training step 3 x 4 x that = 1,632,356,007,936.
        let a = Architecture {
            d_model: 512,
            n_layers: 8,
            n_heads: 8,
            n_kv_heads: 8,
            head_dim: 64,
            d_ff: 2048,
            mlp: Mlp::Gelu,
            attention: Attention::Materialized,
            tied_embeddings: false,
            seq_len: 1024,
            batch_size: 4,
            vocab_size: 32000,
            precision: Precision::default(),
            recompute: crate::architecture::Recompute::None,
            micro_batch: None,
            experts: 0,
            top_k: 0,
            shared_experts: 0,
        };
        let f = forward_flops_per_sequence(&a);
        assert_eq!(f.embeddings, 33_554_432_000.0);
        assert_eq!(f.softmax, 8.0 * 25_165_824.0);
        assert_eq!(f.total(), 136_029_667_328.0);
        assert_eq!(flops_per_step(&a), 1_632_356_007_936.0);
        assert_eq!(f.router, 0.0);
    }

    #[test]
    fn tiny_moe_by_hand() {
        // tiny_moe: S 4, d 8, 1 layer, 2 heads, q 8, kv 4, GELU experts of 16, top-2 + 1 shared,
        // 4 experts, V 8, batch 1. MLP: 3 experts a token, 2 x 4 x 2 x 8 x 16 x 3 = 6144; router
        // 2 x 4 x 8 x 4 = 256. The rest as for a dense model: embeddings 2 x 4 x 8 x 8 = 512 = logits;
        // QKV 2 x 4 x 8 x 16 = 1024; KQ 2 x 16 x 8 = 256 = SV; softmax 3 x 2 x 16 = 96; out 2 x 4 x 8 x 8
        // = 512. Forward 512 + 1024 + 256 + 96 + 256 + 512 + 6144 + 512 + 256 = 9568; step 3 x 9568.
        let a = crate::architecture::tests::tiny_moe();
        let f = forward_flops_per_sequence(&a);
        assert_eq!((f.mlp, f.router), (6144.0, 256.0));
        assert_eq!(f.total(), 9568.0);
        assert_eq!(flops_per_step(&a), 28_704.0);
    }

    #[test]
    fn mixtral_is_about_six_active_params_per_token() {
        // Per token, the model FLOPs of an MoE follow its active parameters (6 N_active, plus
        // attention), not its total: Mixtral at S 2048 is within 10% above 6 x 12.9B.
        let a = crate::architecture::tests::mixtral_8x7b();
        let per_token = flops_per_step(&a) / a.tokens_per_step();
        let ratio = per_token / (6.0 * crate::params::active_params(&a));
        assert!((1.0..1.1).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn close_to_six_n_d_for_a_big_model() {
        // Chinchilla App. F (Table A4) finds its count within a few percent of 6 N D for large models;
        // for LLaMA-7B at S 2048 the attention terms add ~ 6 L S d / (N) ~ 4%.
        let a = llama_7b();
        let six_nd = 6.0 * crate::params::total_params(&a) * a.tokens_per_step();
        let ratio = flops_per_step(&a) / six_nd;
        assert!((1.0..1.1).contains(&ratio), "ratio {ratio}");
    }
}
