//! MEMCPY: the bytes one training step reads from and writes to device memory (HBM).
//!
//! Inbar & Sernau 2024 ("Time Matters", arXiv 2406.18922) fit step time as a linear function of
//! the memory copies of a step rather than its FLOPs. Their formula is not published, so this file
//! derives the count from first principles: an explicit table with one row per operation of a
//! training step (forward, backward, optimizer), saying what it reads and what it writes, in which
//! precision. MEMCPY is the sum of every row's reads and writes, per-layer rows times `n_layers`.
//!
//! Notation: T = batch_size x seq_len tokens; d = d_model; q = n_heads x head_dim;
//! kv = n_kv_heads x head_dim; f = d_ff; f_in = f (GELU) or 2 f (SwiGLU's fused gate+up);
//! V = vocab; P = batch x n_heads x seq^2 (attention scores); a, p, o = activation, parameter and
//! optimizer-state bytes per element. Logits, their log-sum-exp and the attention log-sum-exp are
//! fp32 (4 bytes) for a stable softmax; token ids are int32.
//!
//! Fusion assumption (what is *not* a separate pass over HBM):
//! 1. A residual add is fused with the RMSNorm that follows it: one op reads x and the branch
//!    output and writes both the new residual x' (saved for backward) and norm(x').
//! 2. The scale, causal mask and softmax of materialized attention are one op; rotary position
//!    embeddings are applied inside the ops that read Q and K (no pass of their own).
//! 3. The MLP activation (GELU, or SiLU(gate) x up) is one op of its own between the two matmuls:
//!    GEMM libraries do not fuse it, so its input is written once and read back.
//! 4. A matmul reads each operand once and writes its output once (tiles re-read from on-chip
//!    memory are free); weights are read in parameter precision (the cast is fused into the read).
//! 5. FlashAttention reads Q, K, V once and writes the output and log-sum-exp (ideal tiling).
//! 6. Cross-entropy forward reads the logits once; its backward reads them again with the saved
//!    log-sum-exp and writes the logit gradient in activation precision.
//! 7. Backward of `Y = X W`: dX = dY W^T reads dY and W, writes dX; dW = X^T dY reads X (saved) and
//!    dY, writes dW in parameter precision. Single micro-batch: gradients are written once.
//! 8. AdamW reads parameter, gradient and both moments and writes parameter and both moments.
//!
//! Every block is counted alike: layer 0's first add has no branch, so this overstates forward
//! traffic by 2 T d a bytes per step (well under 1% for any model with a real MLP).

use crate::architecture::{Architecture, Attention};
use crate::params::total_params;

/// Phase of the training step an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Forward,
    Backward,
    Optimizer,
}

/// Whether a row happens once per layer or once per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    PerLayer,
    PerStep,
}

/// One row of the operation table. Bytes are for one occurrence (one layer for per-layer rows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Op {
    pub name: &'static str,
    pub pass: Pass,
    pub scope: Scope,
    /// Bytes read from HBM.
    pub read_bytes: f64,
    /// Bytes written to HBM.
    pub write_bytes: f64,
}

impl Op {
    /// Bytes moved by this row in one step: (reads + writes) x layers for per-layer rows.
    #[inline]
    pub fn bytes_per_step(&self, n_layers: f64) -> f64 {
        let once = self.read_bytes + self.write_bytes;
        match self.scope {
            Scope::PerLayer => once * n_layers,
            Scope::PerStep => once,
        }
    }
}

/// Most rows a table can have (materialized attention has the most).
pub const MAX_OPS: usize = 32;

/// The operation table of one training step, in execution order. Fixed capacity, no allocation,
/// so the search can build one per configuration.
#[derive(Debug, Clone, Copy)]
pub struct OpTable {
    ops: [Op; MAX_OPS],
    len: usize,
}

impl OpTable {
    pub fn ops(&self) -> &[Op] {
        &self.ops[..self.len]
    }
    fn push(&mut self, op: Op) {
        self.ops[self.len] = op;
        self.len += 1;
    }
    /// Finds a row by name (for tests and reports).
    pub fn get(&self, name: &str) -> Option<&Op> {
        self.ops().iter().find(|o| o.name == name)
    }
}

/// Builds the operation table of one training step (see the module docs for notation and the
/// fusion assumption). Units: bytes.
pub fn op_table(arch: &Architecture) -> OpTable {
    let mut tb = OpTable { ops: [Op { name: "", pass: Pass::Forward, scope: Scope::PerStep, read_bytes: 0.0, write_bytes: 0.0 }; MAX_OPS], len: 0 };
    for_each_op(arch, |op| tb.push(op));
    tb
}

/// The table itself: calls `emit` once per row, in execution order. Both [`op_table`] and the
/// allocation-free sums below consume it, so the table is written once.
#[inline(always)]
fn for_each_op(arch: &Architecture, mut emit: impl FnMut(Op)) {
    use Pass::{Backward, Forward, Optimizer};
    use Scope::{PerLayer, PerStep};
    const FP32: f64 = 4.0;
    const INT32: f64 = 4.0;
    let t = arch.tokens_per_step();
    let d = f64::from(arch.d_model);
    let (q, kv) = (arch.q_dim(), arch.kv_dim());
    let qkv = q + 2.0 * kv;
    let f = f64::from(arch.d_ff);
    let f_in = f64::from(arch.mlp.input_width_factor()) * f;
    let v = f64::from(arch.vocab_size);
    let s = f64::from(arch.seq_len);
    let bh = f64::from(arch.batch_size) * f64::from(arch.n_heads);
    let scores = bh * s * s;
    let lse = bh * s;
    let (a, p, o) = (arch.precision.activation_bytes, arch.precision.param_bytes, arch.precision.optimizer_bytes);
    let n = total_params(arch);

    let mut tb = Emitter(&mut emit);
    // Backward of a matmul Y[T x m] = X[T x m_in] W[m_in x m]: reads dY twice, W and X; writes dX, dW.
    let matmul_bwd = |x: f64, w_in: f64, w_out: f64| (a * (2.0 * t * w_out + x) + p * w_in * w_out, a * x + p * w_in * w_out);

    // ---- forward ----
    tb.push("embedding lookup", Forward, PerStep, INT32 * t + p * t * d, a * t * d);
    tb.push("attention add+rmsnorm", Forward, PerLayer, a * 2.0 * t * d + p * d, a * 2.0 * t * d);
    tb.push("qkv projection", Forward, PerLayer, a * t * d + p * d * qkv, a * t * qkv);
    match arch.attention {
        Attention::Materialized => {
            tb.push("scores q k^T", Forward, PerLayer, a * t * (q + kv), a * scores);
            tb.push("softmax", Forward, PerLayer, a * scores, a * scores);
            tb.push("probs @ v", Forward, PerLayer, a * (scores + t * kv), a * t * q);
        }
        Attention::Flash => {
            tb.push("flash attention", Forward, PerLayer, a * t * qkv, a * t * q + FP32 * lse);
        }
    }
    tb.push("output projection", Forward, PerLayer, a * t * q + p * q * d, a * t * d);
    tb.push("mlp add+rmsnorm", Forward, PerLayer, a * 2.0 * t * d + p * d, a * 2.0 * t * d);
    tb.push("mlp input projection", Forward, PerLayer, a * t * d + p * d * f_in, a * t * f_in);
    tb.push("mlp activation", Forward, PerLayer, a * t * f_in, a * t * f);
    tb.push("mlp output projection", Forward, PerLayer, a * t * f + p * f * d, a * t * d);
    tb.push("final add+rmsnorm", Forward, PerStep, a * 2.0 * t * d + p * d, a * 2.0 * t * d);
    tb.push("logits projection", Forward, PerStep, a * t * d + p * d * v, FP32 * t * v);
    tb.push("cross-entropy", Forward, PerStep, FP32 * t * v + INT32 * t, FP32 * t);

    // ---- backward (reverse order) ----
    tb.push("cross-entropy backward", Backward, PerStep, FP32 * t * v + FP32 * t + INT32 * t, a * t * v);
    let (r, w) = matmul_bwd(t * d, d, v);
    tb.push("logits projection backward", Backward, PerStep, r, w);
    // Norm backward reads the saved input, dy and the weight; writes dx and the weight gradient.
    tb.push("final rmsnorm backward", Backward, PerStep, a * 2.0 * t * d + p * d, a * t * d + p * d);
    let (r, w) = matmul_bwd(t * f, f, d);
    tb.push("mlp output projection backward", Backward, PerLayer, r, w);
    tb.push("mlp activation backward", Backward, PerLayer, a * (t * f_in + t * f), a * t * f_in);
    let (r, w) = matmul_bwd(t * d, d, f_in);
    tb.push("mlp input projection backward", Backward, PerLayer, r, w);
    // Add+norm backward also reads the residual stream's incoming gradient (3 T d reads).
    tb.push("mlp add+rmsnorm backward", Backward, PerLayer, a * 3.0 * t * d + p * d, a * t * d + p * d);
    let (r, w) = matmul_bwd(t * q, q, d);
    tb.push("output projection backward", Backward, PerLayer, r, w);
    match arch.attention {
        Attention::Materialized => {
            // dP = dO V^T and dV = P^T dO.
            tb.push("probs @ v backward", Backward, PerLayer, a * (2.0 * t * q + t * kv + scores), a * (scores + t * kv));
            tb.push("softmax backward", Backward, PerLayer, a * 2.0 * scores, a * scores);
            // dQ = dS K and dK = dS^T Q.
            tb.push("scores q k^T backward", Backward, PerLayer, a * (2.0 * scores + t * kv + t * q), a * (t * q + t * kv));
        }
        Attention::Flash => {
            // Reads Q, K, V, O, dO and the log-sum-exp; writes dQ, dK, dV.
            tb.push("flash attention backward", Backward, PerLayer, a * (t * qkv + 2.0 * t * q) + FP32 * lse, a * t * qkv);
        }
    }
    let (r, w) = matmul_bwd(t * d, d, qkv);
    tb.push("qkv projection backward", Backward, PerLayer, r, w);
    tb.push("attention add+rmsnorm backward", Backward, PerLayer, a * 3.0 * t * d + p * d, a * t * d + p * d);
    if arch.tied_embeddings {
        // Scatter-add into the rows of the gradient the logits projection already wrote.
        tb.push("embedding backward", Backward, PerStep, a * t * d + INT32 * t + p * t * d, p * t * d);
    } else {
        // A dense gradient table is written (zeros plus the scattered rows).
        tb.push("embedding backward", Backward, PerStep, a * t * d + INT32 * t, p * v * d);
    }

    // ---- optimizer ----
    tb.push("adamw update", Optimizer, PerStep, n * (2.0 * p + 2.0 * o), n * (p + 2.0 * o));
}

/// Adapts a row callback to the `push(name, pass, scope, read, write)` shape the table is written in.
struct Emitter<'a, F: FnMut(Op)>(&'a mut F);

impl<F: FnMut(Op)> Emitter<'_, F> {
    #[inline(always)]
    fn push(&mut self, name: &'static str, pass: Pass, scope: Scope, read_bytes: f64, write_bytes: f64) {
        (self.0)(Op { name, pass, scope, read_bytes, write_bytes });
    }
}

/// MEMCPY bytes of one training step: the sum of the operation table. Unit: bytes.
/// Source: this file's operation table (first-principles derivation, see module docs).
#[inline]
pub fn memcpy_bytes_per_step(arch: &Architecture) -> f64 {
    let l = f64::from(arch.n_layers);
    let mut total = 0.0;
    for_each_op(arch, |op| total += op.bytes_per_step(l));
    total
}

/// MEMCPY of one pass (forward, backward or optimizer). Unit: bytes.
pub fn memcpy_bytes_in_pass(arch: &Architecture, pass: Pass) -> f64 {
    let l = f64::from(arch.n_layers);
    let mut total = 0.0;
    for_each_op(arch, |op| {
        if op.pass == pass {
            total += op.bytes_per_step(l);
        }
    });
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::{Mlp, Precision};

    /// d 4, 1 layer, 2 heads of 2, 1 KV head, GELU d_ff 8, materialized, untied, S 4, batch 1,
    /// vocab 8, fp32 params/moments, bf16 activations. T 4, q 4, kv 2, P = 1 x 2 x 16 = 32, N = 188.
    fn tiny() -> Architecture {
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
    fn tiny_config_by_hand_row_by_row() {
        let a = tiny();
        assert_eq!(total_params(&a), 188.0);
        let t = op_table(&a);
        let row = |n: &str| {
            let o = t.get(n).unwrap_or_else(|| panic!("no row {n}"));
            (o.read_bytes, o.write_bytes)
        };
        // embedding: ids 4 x 4 + rows 16 x 4 = 80 read; 16 x 2 = 32 written.
        assert_eq!(row("embedding lookup"), (80.0, 32.0));
        // add+norm: 32 elems x 2 + weight 4 x 4 = 80; writes 32 x 2 = 64.
        assert_eq!(row("attention add+rmsnorm"), (80.0, 64.0));
        // qkv: x 16 x 2 = 32 + W 4 x 8 x 4 = 128; writes T x 8 x 2 = 64.
        assert_eq!(row("qkv projection"), (160.0, 64.0));
        // scores: q 16 + k 8 elems x 2 = 48; writes 32 x 2 = 64.
        assert_eq!(row("scores q k^T"), (48.0, 64.0));
        assert_eq!(row("softmax"), (64.0, 64.0));
        // probs @ v: (32 + 8) x 2 = 80; writes 16 x 2 = 32.
        assert_eq!(row("probs @ v"), (80.0, 32.0));
        assert_eq!(row("output projection"), (96.0, 32.0));
        assert_eq!(row("mlp input projection"), (160.0, 64.0));
        assert_eq!(row("mlp activation"), (64.0, 64.0));
        assert_eq!(row("mlp output projection"), (192.0, 32.0));
        // logits: 32 + W 32 x 4 = 160; writes 32 fp32 = 128. Cross-entropy: 128 + ids 16; writes 16.
        assert_eq!(row("logits projection"), (160.0, 128.0));
        assert_eq!(row("cross-entropy"), (144.0, 16.0));
        // backward rows
        assert_eq!(row("cross-entropy backward"), (160.0, 64.0));
        // logits bwd: dY 2 x 32 x 2 = 128 + W 128 + X 32 = 288; dX 32 + dW 128 = 160.
        assert_eq!(row("logits projection backward"), (288.0, 160.0));
        assert_eq!(row("final rmsnorm backward"), (80.0, 48.0));
        assert_eq!(row("mlp output projection backward"), (256.0, 192.0));
        assert_eq!(row("mlp activation backward"), (128.0, 64.0));
        assert_eq!(row("mlp input projection backward"), (288.0, 160.0));
        assert_eq!(row("mlp add+rmsnorm backward"), (112.0, 48.0));
        assert_eq!(row("output projection backward"), (160.0, 96.0));
        assert_eq!(row("probs @ v backward"), (144.0, 80.0));
        assert_eq!(row("softmax backward"), (128.0, 64.0));
        assert_eq!(row("scores q k^T backward"), (176.0, 48.0));
        assert_eq!(row("qkv projection backward"), (288.0, 160.0));
        // untied embedding gradient: reads dx 32 + ids 16; writes the dense 8 x 4 fp32 table = 128.
        assert_eq!(row("embedding backward"), (48.0, 128.0));
        // AdamW: 188 x (4 + 4 + 4 + 4) read, 188 x (4 + 4 + 4) written.
        assert_eq!(row("adamw update"), (3008.0, 2256.0));

        // Pass totals summed by hand: forward 2272, backward 3728, optimizer 5264.
        assert_eq!(memcpy_bytes_in_pass(&a, Pass::Forward), 2272.0);
        assert_eq!(memcpy_bytes_in_pass(&a, Pass::Backward), 3728.0);
        assert_eq!(memcpy_bytes_in_pass(&a, Pass::Optimizer), 5264.0);
        assert_eq!(memcpy_bytes_per_step(&a), 11_264.0);
    }

    #[test]
    fn flash_avoids_quadratic_traffic() {
        let long = Architecture { seq_len: 8192, d_model: 512, n_heads: 8, n_kv_heads: 8, head_dim: 64, ..tiny() };
        let flash = Architecture { attention: Attention::Flash, ..long };
        assert!(memcpy_bytes_per_step(&flash) < 0.2 * memcpy_bytes_per_step(&long));
        // flash forward row: reads T x qkv x 2, writes T x q x 2 + 4 x B h S.
        let tb = op_table(&flash);
        let op = tb.get("flash attention").unwrap();
        assert_eq!(op.read_bytes, 2.0 * 8192.0 * (512.0 + 2.0 * 512.0));
        assert_eq!(op.write_bytes, 2.0 * 8192.0 * 512.0 + 4.0 * 8.0 * 8192.0);
    }

    #[test]
    fn table_fits_capacity_for_every_variant() {
        for attention in [Attention::Materialized, Attention::Flash] {
            for tied_embeddings in [false, true] {
                let a = Architecture { attention, tied_embeddings, mlp: Mlp::Swiglu, ..tiny() };
                let n = op_table(&a).ops().len();
                assert!((20..=MAX_OPS).contains(&n));
            }
        }
    }
}
