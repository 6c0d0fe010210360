//! Device memory a training step needs, and whether it fits the chip.
//!
//! Static: parameters (p bytes each), gradients (p, accumulated over micro-steps), AdamW's two
//! moments (2 o). Activations saved for backward, per layer and per micro-step (activations live
//! for one micro-step at a time), exactly the tensors the backward rows of the operation table in
//! `memcpy.rs` read: residual x' and norm output after each add+norm (4 T d), Q/K/V (T qkv),
//! attention output (T q), the MLP input projection's output (T f_in) and activation output (T f);
//! plus the probabilities (P = b h S^2) for materialized attention or the fp32 log-sum-exp (b h S)
//! for flash attention. Recomputation keeps less (see [`kept_bytes_per_layer`]). Per micro-step:
//! the embedding output, the final norm's input and output (3 T d) and the fp32 logits (4 T V);
//! the logit gradient is written in place of the logits (fused cross-entropy, as Megatron-LM's and
//! FlashAttention's do), so the two do not coexist. Allocator fragmentation and workspaces are
//! covered by the hardware file's `usable_hbm_fraction`.
//!
//! A mixture of experts keeps every expert's parameters, gradients and moments (all of
//! [`total_params`]), and per layer saves what its backward rows read in place of the MLP's two
//! tensors: for each of the T k routed token copies its dispatched input, the expert's input
//! projection and activation outputs and its output (`a T k (2 d + f_in + f)`), the shared
//! experts' two hidden tensors (`a T s (f_in + f)`), the router's fp32 scores (`4 T E`) and each
//! token's k weights and indices (`8 T k`).

use crate::architecture::{Architecture, Attention, Recompute};
use crate::params::total_params;

/// Bytes of the parameters, gradients and optimizer moments.
#[inline]
pub fn static_bytes(a: &Architecture) -> f64 {
    let p = a.precision;
    total_params(a) * (2.0 * p.param_bytes + 2.0 * p.optimizer_bytes)
}

/// Activation bytes one layer saves for the backward pass without recomputation, per micro-step.
#[inline]
pub fn saved_activation_bytes_per_layer(a: &Architecture) -> f64 {
    let t = a.tokens_per_micro_step();
    let d = f64::from(a.d_model);
    let f = f64::from(a.d_ff);
    let f_in = f64::from(a.mlp.input_width_factor()) * f;
    let (q, kv) = (a.q_dim(), a.kv_dim());
    let act = a.precision.activation_bytes;
    if !a.is_moe() {
        return act * t * (4.0 * d + (q + 2.0 * kv) + f_in + f) + attention_core_bytes(a);
    }
    let (k, s, e) = (f64::from(a.top_k), f64::from(a.shared_experts), f64::from(a.experts));
    let experts = act * t * (k * (2.0 * d + f_in + f) + s * (f_in + f));
    let router = t * (4.0 * e + 8.0 * k);
    act * t * (4.0 * d + (q + 2.0 * kv)) + experts + router + attention_core_bytes(a)
}

/// What the attention core of one layer saves for backward (per micro-step): its output (T q)
/// and the probabilities (materialized, a b h S^2) or the fp32 log-sum-exp (flash, 4 b h S).
#[inline]
fn attention_core_bytes(a: &Architecture) -> f64 {
    let act = a.precision.activation_bytes;
    let bhs = f64::from(a.micro_batch_size()) * f64::from(a.n_heads) * f64::from(a.seq_len);
    let scores = match a.attention {
        Attention::Materialized => act * bhs * f64::from(a.seq_len),
        Attention::Flash => 4.0 * bhs,
    };
    act * a.tokens_per_micro_step() * a.q_dim() + scores
}

/// Bytes one layer keeps between its forward and backward passes (per micro-step): every saved
/// activation without recomputation; without the attention core's outputs (recomputed from the
/// saved Q, K, V) for `selective`; only the block's input (a T d) for `full`.
#[inline]
pub fn kept_bytes_per_layer(a: &Architecture) -> f64 {
    match a.recompute {
        Recompute::None => saved_activation_bytes_per_layer(a),
        Recompute::Selective => saved_activation_bytes_per_layer(a) - attention_core_bytes(a),
        Recompute::Full => a.precision.activation_bytes * a.tokens_per_micro_step() * f64::from(a.d_model),
    }
}

/// Peak device memory of one training step. Unit: bytes. Source: module docs. With `full`
/// recomputation one layer's activations exist again while its backward runs.
#[inline(always)]
pub fn memory_bytes(a: &Architecture) -> f64 {
    let t = a.tokens_per_micro_step();
    let act = a.precision.activation_bytes;
    let d = f64::from(a.d_model);
    let v = f64::from(a.vocab_size);
    let recomputing = if a.recompute == Recompute::Full { saved_activation_bytes_per_layer(a) } else { 0.0 };
    static_bytes(a) + f64::from(a.n_layers) * kept_bytes_per_layer(a) + recomputing + act * 3.0 * t * d + 4.0 * t * v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_config_by_hand() {
        // Same tiny config as memcpy.rs: N 188, T 4, d 4, q 4, kv 2, f 8, V 8, P 32.
        // static 188 x 16 = 3008; per layer 2 x (4Td 64 + T qkv 32 + T q 16 + T f_in 32 + T f 32 + P 32) = 416;
        // per step: 2 x 48 = 96, fp32 logits 4 x 32 = 128. Total 3648.
        let a = crate::architecture::tests::tiny();
        assert_eq!(static_bytes(&a), 3008.0);
        assert_eq!(saved_activation_bytes_per_layer(&a), 416.0);
        assert_eq!(memory_bytes(&a), 3648.0);
    }

    #[test]
    fn recomputation_and_micro_batches_by_hand() {
        let a = crate::architecture::tests::tiny();
        // Selective: without the attention output (T q 16 elements) and the probabilities (32):
        // 416 - 2 x 48 = 320 per layer.
        let sel = Architecture { recompute: Recompute::Selective, ..a };
        assert_eq!(kept_bytes_per_layer(&sel), 320.0);
        assert_eq!(memory_bytes(&sel), 3648.0 - 96.0);
        // Full, 3 layers: each keeps its input (T d = 16 elements, 32 bytes) and one layer's 416
        // come back while its backward runs: static 3 layers + 3 x 32 + 416 + 96 + 128.
        let deep = Architecture { n_layers: 3, ..a };
        let full = Architecture { recompute: Recompute::Full, ..deep };
        assert_eq!(memory_bytes(&full), static_bytes(&deep) + 3.0 * 32.0 + 416.0 + 96.0 + 128.0);
        assert!(memory_bytes(&full) < memory_bytes(&deep));
        // Batch 8 in micro-steps of 1 needs the activations of batch 1, not 8.
        let accumulated = Architecture { batch_size: 8, micro_batch: Some(1), ..a };
        assert_eq!(memory_bytes(&accumulated), memory_bytes(&a));
        assert!(memory_bytes(&Architecture { batch_size: 8, ..a }) > memory_bytes(&a) + 7.0 * 416.0);
    }

    #[test]
    fn tiny_moe_by_hand() {
        // tiny_moe: N 1656 (every expert), T 4, d 8, q 8, kv 4, f = f_in 16, k 2, s 1, E 4, V 8,
        // P 32. static 1656 x 16 = 26,496. Per layer: 2 x 4 x (4 d 32 + qkv 16) = 384; routed copies
        // 2 x 4 x 2 x (2 d 16 + f_in 16 + f 16) = 768, shared 2 x 4 x 1 x 32 = 256; router scores
        // 4 x 4 x 4 = 64, weights and indices 8 x 4 x 2 = 64; attention output 2 x 32 + probabilities
        // 2 x 32 = 128: 1664. Per step 2 x 3 x 32 = 192 + logits 4 x 32 = 128. Total 28,480.
        let a = crate::architecture::tests::tiny_moe();
        assert_eq!(static_bytes(&a), 26_496.0);
        assert_eq!(saved_activation_bytes_per_layer(&a), 1664.0);
        assert_eq!(memory_bytes(&a), 28_480.0);
        // Selective recomputation drops the attention core's 128; full keeps the block input
        // (2 x 32 = 64) and has one layer's 1664 back while its backward runs.
        assert_eq!(memory_bytes(&Architecture { recompute: Recompute::Selective, ..a }), 28_480.0 - 128.0);
        assert_eq!(memory_bytes(&Architecture { recompute: Recompute::Full, ..a }), 26_496.0 + 64.0 + 1664.0 + 192.0 + 128.0);
    }

    #[test]
    fn llama_7b_static_memory_is_16_bytes_per_param() {
        let a = crate::architecture::tests::llama_7b();
        assert_eq!(static_bytes(&a), 16.0 * 6_738_415_616.0);
    }
}
