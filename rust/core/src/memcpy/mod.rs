//! MEMCPY: the bytes one training step reads from and writes to device memory (HBM).
//!
//! Inbar & Sernau 2024 ("Time Matters", arXiv 2406.18922) fit step time as a linear function of
//! the memory copies of a step rather than its FLOPs. Their formula is not published, so this file
//! derives the count from first principles: an explicit table with one row per operation of a
//! training step (forward, backward, optimizer), saying what it reads and what it writes, in which
//! precision. MEMCPY is the sum of every row's reads and writes, per-layer rows times `n_layers`.
//!
//! Notation: T = tokens of one micro-step (micro_batch x seq_len; the whole batch without gradient
//! accumulation); d = d_model; q = n_heads x head_dim; kv = n_kv_heads x head_dim; f = d_ff;
//! f_in = f (GELU) or 2 f (SwiGLU's fused gate+up); V = vocab; P = micro_batch x n_heads x seq^2
//! (attention scores); a, p, o = activation, parameter and optimizer-state bytes per element.
//! Logits, their log-sum-exp and the attention log-sum-exp are fp32 (4 bytes) for a stable
//! softmax; token ids are int32.
//!
//! Micro-steps and recomputation: the forward and backward rows describe one micro-step and run
//! `micro_steps` times per optimizer step (gradients accumulate: every micro-step reads the
//! weights and writes its weight gradients again); AdamW runs once. With recomputation the
//! backward pass first runs the recomputed forward rows of each layer again (rows named
//! `recompute: ...`): every per-layer forward row for `full`, the attention core (scores, softmax,
//! probs @ v, or the flash kernel) for `selective`.
//!
//! FLOPs of each row are split by the unit that runs them: dense matmuls (`matmul_flops`), the
//! attention-score matmuls QK^T and PV (`attention_flops`, priced at their own rate by the step-time
//! models that separate them) and elementwise work (the rest of `flops`). FlashAttention skips the
//! key blocks above the diagonal of the causal mask (Dao 2023, FlashAttention-2 §3.1.1): its rows
//! count half of the S^2 work; materialized attention computes every score and masks after.
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
//!    dY, writes dW in parameter precision (each micro-step adds into the gradient: its traffic is
//!    counted as one write, the accumulating read being the next micro-step's concern).
//! 8. AdamW reads parameter, gradient and both moments and writes parameter and both moments.
//!
//! Every block is counted alike: layer 0's first add has no branch, so this overstates forward
//! traffic by 2 T d a bytes per micro-step (well under 1% for any model with a real MLP).
//!
//! The embedding lookup is a gather: bytes, no FLOPs (Chinchilla's model FLOPs in `flops.rs` count
//! it as a 2 S V d matmul; those are the FLOPs reported and fed to the loss law, these the ones the
//! step-time models price).
//!
//! Mixture of experts (E = experts, k = top_k, s = shared_experts; every block an MoE layer), in
//! place of the MLP's three rows, as a dropless grouped-GEMM implementation runs it (MegaBlocks,
//! Gale et al. 2023; Megatron-core's token dispatcher):
//! 1. the router: a `d x E` matmul writing fp32 scores (T E), then one op for the softmax and the
//!    top-k choice that writes each token's k weights (fp32) and expert indices (int32);
//! 2. dispatch (permute): each token is read once and written k times, grouped by expert (T k d a);
//! 3. the experts: grouped matmuls and the activation over the T k routed copies. Balanced
//!    routing: every expert receives tokens each micro-step, so every expert's weights are read
//!    (E x the expert's matrices) and every expert's gradient written;
//! 4. shared experts: a dense MLP of width s f on all T tokens (the s experts fused, as DeepSeek's
//!    code runs them);
//! 5. combine (unpermute): the k outputs of each token read with their weights, summed (with the
//!    shared experts' output) into one T x d tensor.
//!
//! Backward mirrors it; the norm before the MLP reads one input gradient more per extra branch
//! (router, shared experts). The load-balancing loss and capacity-factor padding are not counted
//! (dropless routing). The optimizer updates every parameter, every expert's included.

use crate::architecture::{Architecture, Attention, Recompute};
use crate::params::total_params;

const NORM: f64 = 5.0;
const ACTIVATION: f64 = 8.0;
const SOFTMAX: f64 = 3.0;
const CROSS_ENTROPY: f64 = 4.0;
const ADAMW: f64 = 12.0;
/// The router's softmax (as [`SOFTMAX`]) and top-k choice (one compare per score), per score.
const ROUTER: f64 = SOFTMAX + 1.0;
/// Fraction of the S^2 score work a causal FlashAttention kernel does (tiles above the diagonal
/// are skipped).
pub const FLASH_CAUSAL_FRACTION: f64 = 0.5;

/// Phase of the training step an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Forward,
    Backward,
    Optimizer,
}

/// Whether a row happens once per layer or once per (micro-)step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    PerLayer,
    PerStep,
}

/// One row of the operation table. Bytes and FLOPs are for one occurrence (one layer of one
/// micro-step for per-layer rows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Op {
    pub name: &'static str,
    pub pass: Pass,
    pub scope: Scope,
    /// Bytes read from HBM.
    pub read_bytes: f64,
    /// Bytes written to HBM.
    pub write_bytes: f64,
    /// Hardware FLOPs of the op (2 per multiply-accumulate; elementwise costs per element as in
    /// the constants above): matmul, attention-score and elementwise FLOPs together.
    pub flops: f64,
    /// The part of `flops` done by dense matmuls (projections, MLP, logits).
    pub matmul_flops: f64,
    /// The part of `flops` done by the attention-score matmuls (QK^T, PV, flash's recomputation).
    pub attention_flops: f64,
    /// Occurrences per optimizer step besides the layers: the micro-steps for forward and
    /// backward rows, 1 for the optimizer.
    pub repeat: f64,
}

impl Op {
    /// Bytes moved by this row in one optimizer step: (reads + writes) x occurrences.
    #[inline]
    pub fn bytes_per_step(&self, n_layers: f64) -> f64 {
        (self.read_bytes + self.write_bytes) * self.multiplicity(n_layers)
    }

    /// How many times the row runs in one optimizer step (layers x micro-steps).
    #[inline]
    pub fn multiplicity(&self, n_layers: f64) -> f64 {
        self.repeat
            * match self.scope {
                Scope::PerLayer => n_layers,
                Scope::PerStep => 1.0,
            }
    }
}

/// Most rows a table can have (a mixture of experts with shared experts, materialized attention
/// and full recomputation has the most: 60).
pub const MAX_OPS: usize = 64;

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
/// fusion assumption). Units: bytes and FLOPs.
pub fn op_table(arch: &Architecture) -> OpTable {
    let empty = Op {
        name: "",
        pass: Pass::Forward,
        scope: Scope::PerStep,
        read_bytes: 0.0,
        write_bytes: 0.0,
        flops: 0.0,
        matmul_flops: 0.0,
        attention_flops: 0.0,
        repeat: 0.0,
    };
    let mut tb = OpTable { ops: [empty; MAX_OPS], len: 0 };
    for_each_op(arch, |op| tb.push(op));
    tb
}

/// FLOPs of a row by kind (see [`Op`]).
#[derive(Clone, Copy)]
enum Work {
    /// Dense matmul FLOPs.
    Matmul(f64),
    /// Attention-score matmul FLOPs and the elementwise FLOPs that come with them (softmax).
    Attention(f64, f64),
    /// Elementwise FLOPs only.
    Vector(f64),
}

/// The forward rows of one layer whose recomputation `selective` asks for (the attention core).
fn attention_core(name: &str) -> bool {
    matches!(name, "scores q k^T" | "softmax" | "probs @ v" | "flash attention")
}

/// The table itself: calls `emit` once per row, in execution order. Both [`op_table`] and the
/// allocation-free sums below consume it, so the table is written once.
#[inline(always)]
fn for_each_op(arch: &Architecture, mut emit: impl FnMut(Op)) {
    use Pass::{Backward, Forward, Optimizer};
    use Scope::{PerLayer, PerStep};
    use Work::{Attention as Attn, Matmul, Vector};
    const FP32: f64 = 4.0;
    const INT32: f64 = 4.0;
    let t = arch.tokens_per_micro_step();
    let d = f64::from(arch.d_model);
    let (q, kv) = (arch.q_dim(), arch.kv_dim());
    let qkv = q + 2.0 * kv;
    let f = f64::from(arch.d_ff);
    let f_in = f64::from(arch.mlp.input_width_factor()) * f;
    let v = f64::from(arch.vocab_size);
    let s = f64::from(arch.seq_len);
    let bh = f64::from(arch.micro_batch_size()) * f64::from(arch.n_heads);
    let scores = bh * s * s;
    let lse = bh * s;
    let (a, p, o) = (arch.precision.activation_bytes, arch.precision.param_bytes, arch.precision.optimizer_bytes);
    let n = total_params(arch);
    let micro = arch.micro_steps();
    // A mixture of experts: E experts, T k routed token copies, shared experts fused into one MLP
    // of width s f (s f_in for its input projection).
    let moe = arch.is_moe();
    let e = f64::from(arch.experts);
    let tk = t * f64::from(arch.top_k);
    let shared = arch.shared_experts > 0;
    let (sf, sf_in) = (f64::from(arch.shared_experts) * f, f64::from(arch.shared_experts) * f_in);

    let mut row = |name: &'static str, pass: Pass, scope: Scope, read_bytes: f64, write_bytes: f64, work: Work| {
        let (flops, matmul_flops, attention_flops) = match work {
            Matmul(x) => (x, x, 0.0),
            Attn(x, e) => (x + e, 0.0, x),
            Vector(x) => (x, 0.0, 0.0),
        };
        let repeat = if pass == Optimizer { 1.0 } else { micro };
        emit(Op { name, pass, scope, read_bytes, write_bytes, flops, matmul_flops, attention_flops, repeat });
    };
    // Backward of a matmul Y[T x m] = X[T x m_in] W[m_in x m]: reads dY twice, W and X; writes dX, dW.
    // FLOPs: dX and dW each cost the forward product, 2 T w_in w_out.
    let matmul_bwd = |x: f64, w_in: f64, w_out: f64| {
        (a * (2.0 * t * w_out + x) + p * w_in * w_out, a * x + p * w_in * w_out, Matmul(4.0 * t * w_in * w_out))
    };
    // The same for the experts' grouped matmul over `rows` routed copies with E weight matrices.
    let expert_bwd = |rows: f64, w_in: f64, w_out: f64| {
        let w = p * e * w_in * w_out;
        (a * (2.0 * rows * w_out + rows * w_in) + w, a * rows * w_in + w, Matmul(4.0 * rows * w_in * w_out))
    };
    // Attention matmul FLOPs of one layer: Q K^T (or P V) is 2 x batch x heads x S^2 x head_dim.
    let attn_mm = 2.0 * t * s * q;
    let c = FLASH_CAUSAL_FRACTION;

    // ---- forward (one micro-step) ----
    // The rows of one layer's forward pass, in order, each as (name, read, written, work); written
    // out row by row (no loop over a table of rows: this runs once per configuration in
    // `evaluate`, and straight-line code is a third of the instructions).
    let forward_layer = |emit: &mut dyn FnMut(&'static str, f64, f64, Work)| {
        emit("attention add+rmsnorm", a * 2.0 * t * d + p * d, a * 2.0 * t * d, Vector(NORM * t * d));
        emit("qkv projection", a * t * d + p * d * qkv, a * t * qkv, Matmul(2.0 * t * d * qkv));
        match arch.attention {
            Attention::Materialized => {
                emit("scores q k^T", a * t * (q + kv), a * scores, Attn(attn_mm, 0.0));
                emit("softmax", a * scores, a * scores, Vector(SOFTMAX * scores));
                emit("probs @ v", a * (scores + t * kv), a * t * q, Attn(attn_mm, 0.0));
            }
            Attention::Flash => {
                emit("flash attention", a * t * qkv, a * t * q + FP32 * lse, Attn(c * 2.0 * attn_mm, c * SOFTMAX * scores));
            }
        }
        emit("output projection", a * t * q + p * q * d, a * t * d, Matmul(2.0 * t * q * d));
        emit("mlp add+rmsnorm", a * 2.0 * t * d + p * d, a * 2.0 * t * d, Vector(NORM * t * d));
        if !moe {
            emit("mlp input projection", a * t * d + p * d * f_in, a * t * f_in, Matmul(2.0 * t * d * f_in));
            emit("mlp activation", a * t * f_in, a * t * f, Vector(ACTIVATION * t * f));
            emit("mlp output projection", a * t * f + p * f * d, a * t * d, Matmul(2.0 * t * f * d));
            return;
        }
        emit("router", a * t * d + p * d * e, FP32 * t * e, Matmul(2.0 * t * d * e));
        emit("router top-k", FP32 * t * e, (FP32 + INT32) * tk, Vector(ROUTER * t * e));
        emit("moe dispatch", a * t * d + INT32 * tk, a * tk * d, Vector(0.0));
        emit("expert input projection", a * tk * d + p * e * d * f_in, a * tk * f_in, Matmul(2.0 * tk * d * f_in));
        emit("expert activation", a * tk * f_in, a * tk * f, Vector(ACTIVATION * tk * f));
        emit("expert output projection", a * tk * f + p * e * f * d, a * tk * d, Matmul(2.0 * tk * f * d));
        if shared {
            emit("shared expert input projection", a * t * d + p * d * sf_in, a * t * sf_in, Matmul(2.0 * t * d * sf_in));
            emit("shared expert activation", a * t * sf_in, a * t * sf, Vector(ACTIVATION * t * sf));
            emit("shared expert output projection", a * t * sf + p * sf * d, a * t * d, Matmul(2.0 * t * sf * d));
        }
        // Reads the k weighted outputs of each token (and the shared experts' output); writes one.
        let shared_out = if shared { a * t * d } else { 0.0 };
        emit("moe combine", a * tk * d + (FP32 + INT32) * tk + shared_out, a * t * d, Vector(2.0 * tk * d));
    };
    row("embedding lookup", Forward, PerStep, INT32 * t + p * t * d, a * t * d, Vector(0.0));
    forward_layer(&mut |name, r, w, work| row(name, Forward, PerLayer, r, w, work));
    row("final add+rmsnorm", Forward, PerStep, a * 2.0 * t * d + p * d, a * 2.0 * t * d, Vector(NORM * t * d));
    row("logits projection", Forward, PerStep, a * t * d + p * d * v, FP32 * t * v, Matmul(2.0 * t * d * v));
    row("cross-entropy", Forward, PerStep, FP32 * t * v + INT32 * t, FP32 * t, Vector(CROSS_ENTROPY * t * v));

    // ---- backward (reverse order) ----
    row(
        "cross-entropy backward",
        Backward,
        PerStep,
        FP32 * t * v + FP32 * t + INT32 * t,
        a * t * v,
        Vector(2.0 * CROSS_ENTROPY * t * v),
    );
    let (r, w, fl) = matmul_bwd(t * d, d, v);
    row("logits projection backward", Backward, PerStep, r, w, fl);
    // Norm backward reads the saved input, dy and the weight; writes dx and the weight gradient.
    row("final rmsnorm backward", Backward, PerStep, a * 2.0 * t * d + p * d, a * t * d + p * d, Vector(2.0 * NORM * t * d));
    // Recomputation: each layer's forward runs again before its backward.
    if arch.recompute != Recompute::None {
        forward_layer(&mut |name, r, w, work| {
            if arch.recompute == Recompute::Full || attention_core(name) {
                row(recomputed(name), Backward, PerLayer, r, w, work);
            }
        });
    }
    if moe {
        // Reads dY, the k expert outputs of each token (for the weights' gradient), weights and
        // indices; writes each copy's gradient and the weights' (fp32).
        row(
            "moe combine backward",
            Backward,
            PerLayer,
            a * (t * d + tk * d) + (FP32 + INT32) * tk,
            a * tk * d + FP32 * tk,
            Vector(4.0 * tk * d),
        );
        if shared {
            let (r, w, fl) = matmul_bwd(t * sf, sf, d);
            row("shared expert output projection backward", Backward, PerLayer, r, w, fl);
            let (r, w) = (a * (t * sf_in + t * sf), a * t * sf_in);
            row("shared expert activation backward", Backward, PerLayer, r, w, Vector(2.0 * ACTIVATION * t * sf));
            let (r, w, fl) = matmul_bwd(t * d, d, sf_in);
            row("shared expert input projection backward", Backward, PerLayer, r, w, fl);
        }
        let (r, w, fl) = expert_bwd(tk, f, d);
        row("expert output projection backward", Backward, PerLayer, r, w, fl);
        row(
            "expert activation backward",
            Backward,
            PerLayer,
            a * (tk * f_in + tk * f),
            a * tk * f_in,
            Vector(2.0 * ACTIVATION * tk * f),
        );
        let (r, w, fl) = expert_bwd(tk, d, f_in);
        row("expert input projection backward", Backward, PerLayer, r, w, fl);
        // Sums each token's k copy gradients into one.
        row("moe dispatch backward", Backward, PerLayer, a * tk * d + INT32 * tk, a * t * d, Vector(tk * d));
        // Reads the saved scores and the weights' gradient; writes the scores' gradient.
        row(
            "router top-k backward",
            Backward,
            PerLayer,
            FP32 * t * e + (FP32 + INT32) * tk,
            FP32 * t * e,
            Vector(2.0 * SOFTMAX * t * e),
        );
        // As `matmul_bwd`, with the fp32 score gradient for dY.
        row(
            "router backward",
            Backward,
            PerLayer,
            FP32 * 2.0 * t * e + a * t * d + p * d * e,
            a * t * d + p * d * e,
            Matmul(4.0 * t * d * e),
        );
        // The norm's output gradient arrives in one part per branch (dispatch, router, shared
        // experts): the add+norm backward reads each, besides what it reads for a dense MLP.
        let parts = if shared { 3.0 } else { 2.0 };
        let r = a * (2.0 + parts) * t * d + p * d;
        row("mlp add+rmsnorm backward", Backward, PerLayer, r, a * t * d + p * d, Vector(2.0 * NORM * t * d));
    } else {
        let (r, w, fl) = matmul_bwd(t * f, f, d);
        row("mlp output projection backward", Backward, PerLayer, r, w, fl);
        row(
            "mlp activation backward",
            Backward,
            PerLayer,
            a * (t * f_in + t * f),
            a * t * f_in,
            Vector(2.0 * ACTIVATION * t * f),
        );
        let (r, w, fl) = matmul_bwd(t * d, d, f_in);
        row("mlp input projection backward", Backward, PerLayer, r, w, fl);
        // Add+norm backward also reads the residual stream's incoming gradient (3 T d reads).
        row(
            "mlp add+rmsnorm backward",
            Backward,
            PerLayer,
            a * 3.0 * t * d + p * d,
            a * t * d + p * d,
            Vector(2.0 * NORM * t * d),
        );
    }
    let (r, w, fl) = matmul_bwd(t * q, q, d);
    row("output projection backward", Backward, PerLayer, r, w, fl);
    match arch.attention {
        Attention::Materialized => {
            // dP = dO V^T and dV = P^T dO.
            row(
                "probs @ v backward",
                Backward,
                PerLayer,
                a * (2.0 * t * q + t * kv + scores),
                a * (scores + t * kv),
                Attn(2.0 * attn_mm, 0.0),
            );
            row("softmax backward", Backward, PerLayer, a * 2.0 * scores, a * scores, Vector(2.0 * SOFTMAX * scores));
            // dQ = dS K and dK = dS^T Q.
            row(
                "scores q k^T backward",
                Backward,
                PerLayer,
                a * (2.0 * scores + t * kv + t * q),
                a * (t * q + t * kv),
                Attn(2.0 * attn_mm, 0.0),
            );
        }
        Attention::Flash => {
            // Reads Q, K, V, O, dO and the log-sum-exp; writes dQ, dK, dV. Recomputes the scores
            // (QK^T) and runs four more matmuls (dV, dP, dQ, dK): five against the forward's two.
            row(
                "flash attention backward",
                Backward,
                PerLayer,
                a * (t * qkv + 2.0 * t * q) + FP32 * lse,
                a * t * qkv,
                Attn(c * 5.0 * attn_mm, c * 3.0 * SOFTMAX * scores),
            );
        }
    }
    let (r, w, fl) = matmul_bwd(t * d, d, qkv);
    row("qkv projection backward", Backward, PerLayer, r, w, fl);
    row(
        "attention add+rmsnorm backward",
        Backward,
        PerLayer,
        a * 3.0 * t * d + p * d,
        a * t * d + p * d,
        Vector(2.0 * NORM * t * d),
    );
    if arch.tied_embeddings {
        // Scatter-add into the rows of the gradient the logits projection already wrote.
        row("embedding backward", Backward, PerStep, a * t * d + INT32 * t + p * t * d, p * t * d, Vector(t * d));
    } else {
        // A dense gradient table is written (zeros plus the scattered rows).
        row("embedding backward", Backward, PerStep, a * t * d + INT32 * t, p * v * d, Vector(t * d));
    }

    // ---- optimizer (once per step) ----
    row("adamw update", Optimizer, PerStep, n * (2.0 * p + 2.0 * o), n * (p + 2.0 * o), Vector(ADAMW * n));
}

/// The name of a recomputed forward row.
fn recomputed(name: &str) -> &'static str {
    match name {
        "attention add+rmsnorm" => "recompute: attention add+rmsnorm",
        "qkv projection" => "recompute: qkv projection",
        "scores q k^T" => "recompute: scores q k^T",
        "softmax" => "recompute: softmax",
        "probs @ v" => "recompute: probs @ v",
        "flash attention" => "recompute: flash attention",
        "output projection" => "recompute: output projection",
        "mlp add+rmsnorm" => "recompute: mlp add+rmsnorm",
        "mlp input projection" => "recompute: mlp input projection",
        "mlp activation" => "recompute: mlp activation",
        "mlp output projection" => "recompute: mlp output projection",
        "router" => "recompute: router",
        "router top-k" => "recompute: router top-k",
        "moe dispatch" => "recompute: moe dispatch",
        "expert input projection" => "recompute: expert input projection",
        "expert activation" => "recompute: expert activation",
        "expert output projection" => "recompute: expert output projection",
        "shared expert input projection" => "recompute: shared expert input projection",
        "shared expert activation" => "recompute: shared expert activation",
        "shared expert output projection" => "recompute: shared expert output projection",
        "moe combine" => "recompute: moe combine",
        _ => "recompute",
    }
}

/// The work of one optimizer step, summed over the operation table: what the step-time models
/// price. Units: FLOP and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StepWork {
    /// Dense matmul FLOPs (projections, MLP, logits; recomputation included; no embedding: a gather).
    pub matmul_flops: f64,
    /// Attention-score matmul FLOPs (QK^T, PV, flash's backward recomputation; causal flash: half).
    pub attention_flops: f64,
    /// Every hardware FLOP (matmul, attention and elementwise).
    pub flops: f64,
    /// MEMCPY: bytes read and written in HBM.
    pub bytes: f64,
    /// Kernels (table rows executed).
    pub kernels: f64,
}

impl StepWork {
    /// FLOPs of the tensor units (dense and attention-score matmuls).
    #[inline]
    pub fn tensor_flops(&self) -> f64 {
        self.matmul_flops + self.attention_flops
    }
}

/// The step's work in one pass over the table (`evaluate` runs this once per configuration).
/// Rows without matmul or attention FLOPs add nothing to those sums (skipping them leaves every
/// sum as it was: they are sums of non-negative terms).
#[inline]
pub fn step_work(arch: &Architecture) -> StepWork {
    let l = f64::from(arch.n_layers);
    let mut w = StepWork::default();
    for_each_op(arch, |op| {
        let k = op.multiplicity(l);
        if op.matmul_flops != 0.0 {
            w.matmul_flops += k * op.matmul_flops;
        }
        if op.attention_flops != 0.0 {
            w.attention_flops += k * op.attention_flops;
        }
        w.flops += k * op.flops;
        w.bytes += k * (op.read_bytes + op.write_bytes);
        w.kernels += k;
    });
    w
}

/// The step's work and, within it, the optimizer update's (AdamW's bytes and FLOPs), in one pass
/// over the table: what a sharding that splits the update (FSDP) needs besides the step's work.
#[inline]
pub fn step_and_optimizer_work(arch: &Architecture) -> (StepWork, StepWork) {
    let l = f64::from(arch.n_layers);
    let (mut w, mut opt) = (StepWork::default(), StepWork::default());
    for_each_op(arch, |op| {
        let k = op.multiplicity(l);
        let target = if op.pass == Pass::Optimizer { &mut opt } else { &mut w };
        target.matmul_flops += k * op.matmul_flops;
        target.attention_flops += k * op.attention_flops;
        target.flops += k * op.flops;
        target.bytes += k * (op.read_bytes + op.write_bytes);
        target.kernels += k;
    });
    let whole = StepWork {
        matmul_flops: w.matmul_flops + opt.matmul_flops,
        attention_flops: w.attention_flops + opt.attention_flops,
        flops: w.flops + opt.flops,
        bytes: w.bytes + opt.bytes,
        kernels: w.kernels + opt.kernels,
    };
    (whole, opt)
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

/// The part of MEMCPY that does not grow with the tokens of a micro-step: parameters, gradients
/// and optimizer moments moved by matmuls, norms and AdamW (and a dense embedding gradient),
/// repeated every micro-step except AdamW's. The rest grows in proportion to the tokens
/// (activations, logits, looked-up embedding rows). Every row is affine in the micro-batch, so a
/// row's fixed part is r(b) - b (r(b + 1) - r(b)). Unit: bytes.
pub fn memcpy_fixed_bytes_per_step(arch: &Architecture) -> f64 {
    let b = arch.micro_batch_size();
    let one = Architecture { batch_size: b, micro_batch: None, ..*arch };
    let next = Architecture { batch_size: b + 1, micro_batch: None, ..*arch };
    let (at_b, at_next) = (op_table(&one), op_table(&next));
    let l = f64::from(arch.n_layers);
    let micro = arch.micro_steps();
    at_b.ops()
        .iter()
        .zip(at_next.ops())
        .map(|(x, y)| {
            let (bx, by) = (x.read_bytes + x.write_bytes, y.read_bytes + y.write_bytes);
            let fixed = bx - f64::from(b) * (by - bx);
            let repeat = if x.pass == Pass::Optimizer { 1.0 } else { micro };
            fixed * repeat * if x.scope == Scope::PerLayer { l } else { 1.0 }
        })
        .sum()
}

/// One pass over the materialized attention scores of every layer in a step: `n_layers x B x h x
/// S^2 x a` bytes, twice when recomputation runs the attention core again (0 for flash
/// attention, which never writes them). The operation table already counts the passes its
/// fusion assumption allows (rule 2: scale, mask and softmax fused into one op); a backend that
/// does not fuse them (XLA on CPU) makes more passes over this tensor, which the split step-time
/// model prices with its own coefficient per byte of this count. Unit: bytes.
pub fn attention_score_bytes_per_step(arch: &Architecture) -> f64 {
    match arch.attention {
        Attention::Materialized => {
            let s = f64::from(arch.seq_len);
            let forward_passes = if arch.recompute == Recompute::None { 1.0 } else { 2.0 };
            forward_passes
                * f64::from(arch.n_layers)
                * f64::from(arch.batch_size)
                * f64::from(arch.n_heads)
                * s
                * s
                * arch.precision.activation_bytes
        }
        Attention::Flash => 0.0,
    }
}

/// Hardware FLOPs of one training step: the sum of the table's `flops`. Unit: FLOP.
pub fn hardware_flops_per_step(arch: &Architecture) -> f64 {
    step_work(arch).flops
}

/// Kernels (table rows executed) per step: per-layer rows x n_layers + per-step rows, per micro-step.
pub fn kernels_per_step(arch: &Architecture) -> f64 {
    step_work(arch).kernels
}

/// Per-op roofline: the sum over every executed op of max(FLOPs / `flops_per_s`,
/// bytes / `bytes_per_s`) — each op is either compute- or memory-bound. Unit: seconds.
pub fn per_op_roofline_s(arch: &Architecture, flops_per_s: f64, bytes_per_s: f64) -> f64 {
    let (memory, compute) = per_op_roofline_parts(arch, flops_per_s, bytes_per_s);
    memory + compute
}

/// The per-op roofline split by bound: (seconds of memory-bound ops, seconds of compute-bound ops).
pub fn per_op_roofline_parts(arch: &Architecture, flops_per_s: f64, bytes_per_s: f64) -> (f64, f64) {
    let l = f64::from(arch.n_layers);
    let (mut memory, mut compute) = (0.0, 0.0);
    for_each_op(arch, |op| {
        let (c, m) = (op.flops / flops_per_s, (op.read_bytes + op.write_bytes) / bytes_per_s);
        if m >= c {
            memory += op.multiplicity(l) * m;
        } else {
            compute += op.multiplicity(l) * c;
        }
    });
    (memory, compute)
}

/// FLOPs of the optimizer update (AdamW's elementwise work). Unit: FLOP.
pub fn optimizer_flops(arch: &Architecture) -> f64 {
    let mut total = 0.0;
    for_each_op(arch, |op| {
        if op.pass == Pass::Optimizer {
            total += op.flops * op.repeat;
        }
    });
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
mod tests;
