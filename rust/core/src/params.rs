//! Parameter counts. Source: the architecture in `architecture.rs` (LLaMA-style, no biases,
//! RMSNorm weights only, rotary positions), counted matrix by matrix.
//!
//! A mixture of experts holds every expert (`experts + shared_experts` MLPs of width `d_ff`) and
//! a router (`d_model x experts`); one token uses the router and `top_k + shared_experts` of them:
//! its *active* parameters (Fedus et al. 2022; what Mistral AI's "12.9B active of 46.7B" counts).

use crate::architecture::Architecture;

/// Parameters of one layer's attention: `d (q_dim + 2 kv_dim) + q_dim d`.
#[inline]
fn attention_params(a: &Architecture) -> f64 {
    let d = f64::from(a.d_model);
    d * (a.q_dim() + 2.0 * a.kv_dim()) + a.q_dim() * d
}

/// Parameters of one expert (or of the dense MLP): `n_matrices d d_ff`.
#[inline]
pub fn expert_params(a: &Architecture) -> f64 {
    f64::from(a.mlp.n_matrices()) * f64::from(a.d_model) * f64::from(a.d_ff)
}

/// The router of one MoE layer: `d_model x experts` (0 for a dense MLP).
#[inline]
pub fn router_params(a: &Architecture) -> f64 {
    f64::from(a.d_model) * f64::from(a.experts)
}

/// Parameters of one transformer block (count, not bytes):
/// attention `d (q_dim + 2 kv_dim) + q_dim d`, MLP `n_matrices d d_ff`, two RMSNorm weights `2 d`;
/// for a mixture of experts the MLP is `(experts + shared_experts) n_matrices d d_ff` plus the
/// router's `d experts`.
#[inline]
pub fn params_per_layer(a: &Architecture) -> f64 {
    let d = f64::from(a.d_model);
    let attention = attention_params(a);
    if a.is_moe() {
        attention + a.experts_held() * expert_params(a) + router_params(a) + 2.0 * d
    } else {
        attention + expert_params(a) + 2.0 * d
    }
}

/// Parameters of one block that one token uses: [`params_per_layer`] with the `top_k +
/// shared_experts` experts it goes to instead of all of them (the router included). Equal to
/// [`params_per_layer`] for a dense MLP.
#[inline]
pub fn active_params_per_layer(a: &Architecture) -> f64 {
    if a.is_moe() {
        let d = f64::from(a.d_model);
        attention_params(a) + a.experts_per_token() * expert_params(a) + router_params(a) + 2.0 * d
    } else {
        params_per_layer(a)
    }
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

/// Total parameters (Hoffmann et al. 2022's N, embeddings included; every expert of a mixture).
#[inline]
pub fn total_params(a: &Architecture) -> f64 {
    non_embedding_params(a) + embedding_params(a)
}

/// Non-embedding parameters one token uses (all blocks' [`active_params_per_layer`] plus the
/// final RMSNorm weight); [`non_embedding_params`] for a dense MLP.
#[inline]
pub fn active_non_embedding_params(a: &Architecture) -> f64 {
    if a.is_moe() {
        f64::from(a.n_layers) * active_params_per_layer(a) + f64::from(a.d_model)
    } else {
        non_embedding_params(a)
    }
}

/// Parameters one token uses, embeddings included (a mixture's routed experts counted `top_k`
/// times, not `experts`); [`total_params`] for a dense MLP.
#[inline]
pub fn active_params(a: &Architecture) -> f64 {
    active_non_embedding_params(a) + embedding_params(a)
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
        // Dense: every parameter is active.
        assert_eq!(active_params(&a), total_params(&a));
        assert_eq!(active_non_embedding_params(&a), non_embedding_params(&a));
    }

    #[test]
    fn tiny_moe_total_and_active_by_hand() {
        // d 8, 2 heads of 4, 1 KV head, GELU experts of d_ff 16, 4 routed + 1 shared, top-2, V 8.
        // attention 8 x (8 + 2 x 4) + 8 x 8 = 128 + 64 = 192; one expert 2 x 8 x 16 = 256; router
        // 8 x 4 = 32; norms 16. All experts (4 + 1) x 256 = 1280: layer 192 + 1280 + 32 + 16 = 1520;
        // final norm 8 -> 1528 non-embedding; embeddings 2 x 8 x 8 = 128 -> 1656 total.
        // Active: (2 + 1) x 256 = 768: layer 192 + 768 + 32 + 16 = 1008, 1016 non-embedding, 1144.
        let a = crate::architecture::tests::tiny_moe();
        assert_eq!(params_per_layer(&a), 1520.0);
        assert_eq!(non_embedding_params(&a), 1528.0);
        assert_eq!(total_params(&a), 1656.0);
        assert_eq!(active_params_per_layer(&a), 1008.0);
        assert_eq!(active_non_embedding_params(&a), 1016.0);
        assert_eq!(active_params(&a), 1144.0);
    }

    #[test]
    fn mixtral_8x7b_has_46_7b_parameters_12_9b_active() {
        // Mistral AI ("Mixtral of experts", 2023-12-11): 46.7B total, 12.9B active per token.
        // By hand: attention 4096 x (4096 + 2 x 1024) + 4096^2 = 41,943,040; one expert
        // 3 x 4096 x 14336 = 176,160,768, eight 1,409,286,144; router 32,768; norms 8,192 ->
        // 1,451,270,144 per layer, x 32 = 46,440,644,608; + final norm 4,096 + embeddings
        // 2 x 32000 x 4096 = 262,144,000 -> 46,702,792,704. Active: two experts 352,321,536 ->
        // 394,305,536 per layer, x 32 = 12,617,777,152 -> 12,879,925,248.
        let a = crate::architecture::tests::mixtral_8x7b();
        assert_eq!(total_params(&a), 46_702_792_704.0);
        assert_eq!(active_params(&a), 12_879_925_248.0);
        assert!((total_params(&a) / 46.7e9 - 1.0).abs() < 0.01);
        assert!((active_params(&a) / 12.9e9 - 1.0).abs() < 0.01);
    }

    #[test]
    fn deepseek_v3_loosely() {
        // DeepSeek-V3 (DeepSeek-AI 2024, arXiv 2412.19437): 671B total, 37B active; d 7168, 61
        // layers, 256 routed SwiGLU experts of 2048 plus 1 shared, top-8, vocab 129,280 untied.
        // Checked loosely, as an approximation: this model has no multi-head latent attention
        // (MLA); 96 heads of 128 with 8 KV heads stand for it (d (q + 2 kv) + q d = 190.8M per
        // layer against MLA's ~187M). Every layer is an MoE layer here where V3's first 3 are
        // dense MLPs of 18432 (+~33B here); the multi-token prediction module (14B, not in the
        // 671B) is left out. By hand: total 704.0B (+4.9%), active 37.8B (+2.1%).
        let a = Architecture {
            d_model: 7168,
            n_layers: 61,
            n_heads: 96,
            n_kv_heads: 8,
            head_dim: 128,
            d_ff: 2048,
            mlp: Mlp::Swiglu,
            vocab_size: 129_280,
            experts: 256,
            top_k: 8,
            shared_experts: 1,
            ..crate::architecture::tests::llama_7b()
        };
        let (total, active) = (total_params(&a), active_params(&a));
        assert!((total / 671e9 - 1.0).abs() < 0.06 && (total / 704.0e9 - 1.0).abs() < 1e-3, "{total:e}");
        assert!((active / 37e9 - 1.0).abs() < 0.05 && (active / 37.79e9 - 1.0).abs() < 1e-3, "{active:e}");
    }
}
