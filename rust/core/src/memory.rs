//! Device memory a training step needs, and whether it fits the chip.
//!
//! Static: parameters (p bytes each), gradients (p), AdamW's two moments (2 o). Activations saved
//! for backward, per layer, exactly the tensors the backward rows of the operation table in
//! `memcpy.rs` read: residual x' and norm output after each add+norm (4 T d), Q/K/V (T qkv),
//! attention output (T q), the MLP input projection's output (T f_in) and activation output (T f);
//! plus the probabilities (P = B h S^2) for materialized attention or the fp32 log-sum-exp (B h S)
//! for flash attention. Per step: the embedding output, the final norm's input and output
//! (3 T d), the fp32 logits (4 T V) and their gradient (a T V), which coexist at the loss.
//! No rematerialization, one micro-batch; allocator fragmentation and workspaces are covered by the
//! hardware file's `usable_hbm_fraction`.

use crate::architecture::{Architecture, Attention};
use crate::params::total_params;

/// Bytes of the parameters, gradients and optimizer moments.
#[inline]
pub fn static_bytes(a: &Architecture) -> f64 {
    let p = a.precision;
    total_params(a) * (2.0 * p.param_bytes + 2.0 * p.optimizer_bytes)
}

/// Activation bytes one layer saves for the backward pass.
#[inline]
pub fn saved_activation_bytes_per_layer(a: &Architecture) -> f64 {
    let t = a.tokens_per_step();
    let d = f64::from(a.d_model);
    let f = f64::from(a.d_ff);
    let f_in = f64::from(a.mlp.input_width_factor()) * f;
    let (q, kv) = (a.q_dim(), a.kv_dim());
    let act = a.precision.activation_bytes;
    let bhs = f64::from(a.batch_size) * f64::from(a.n_heads) * f64::from(a.seq_len);
    let attention = match a.attention {
        Attention::Materialized => act * bhs * f64::from(a.seq_len),
        Attention::Flash => 4.0 * bhs,
    };
    act * t * (4.0 * d + (q + 2.0 * kv) + q + f_in + f) + attention
}

/// Peak device memory of one training step. Unit: bytes. Source: module docs.
#[inline]
pub fn memory_bytes(a: &Architecture) -> f64 {
    let t = a.tokens_per_step();
    let act = a.precision.activation_bytes;
    let d = f64::from(a.d_model);
    let v = f64::from(a.vocab_size);
    static_bytes(a) + f64::from(a.n_layers) * saved_activation_bytes_per_layer(a) + act * 3.0 * t * d + (4.0 + act) * t * v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_config_by_hand() {
        // Same tiny config as memcpy.rs: N 188, T 4, d 4, q 4, kv 2, f 8, V 8, P 32.
        // static 188 x 16 = 3008; per layer 2 x (4Td 64 + T qkv 32 + T q 16 + T f_in 32 + T f 32 + P 32) = 416;
        // per step: 2 x 48 = 96, logits 4 x 32 = 128, dlogits 2 x 32 = 64. Total 3712.
        let a = crate::architecture::tests::tiny();
        assert_eq!(static_bytes(&a), 3008.0);
        assert_eq!(saved_activation_bytes_per_layer(&a), 416.0);
        assert_eq!(memory_bytes(&a), 3712.0);
    }

    #[test]
    fn llama_7b_static_memory_is_16_bytes_per_param() {
        let a = crate::architecture::tests::llama_7b();
        assert_eq!(static_bytes(&a), 16.0 * 6_738_415_616.0);
    }
}
