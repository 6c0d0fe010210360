//! Many chips: data parallel (DP, and ZeRO stages 1-3, the last being FSDP), tensor parallel (TP,
//! Megatron-LM, with or without sequence parallelism), pipeline parallel (PP: 1F1B and interleaved
//! schedules) and context parallel (CP, ring attention) training of one configuration, and the
//! communication each needs.
//!
//! A sharding puts `dp x tp x pp x cp` chips on a grid, TP innermost (a TP group sits in one node
//! when it fits), then CP, then DP, pipeline stages outermost (Megatron-LM's `tp-cp-dp-pp` order).
//! Each chip runs the *per-chip shard* of the model, an [`Architecture`] of its own, so that the
//! operation table, FLOPs, MEMCPY, memory and the hardware's step-time model apply to it
//! unchanged:
//! - data parallel (any kind) gives each chip `batch_size / dp` sequences, run in micro-steps of
//!   `micro_batch` (which must divide them);
//! - tensor parallel (Shoeybi et al. 2019, Megatron-LM) splits the attention heads (Q, K, V and
//!   output projections by head), the MLP's hidden width `d_ff` and the vocabulary (embedding and
//!   logits, vocabulary-parallel) over `tp` chips; the residual stream, norms and their
//!   activations (width `d_model`) are replicated on every TP chip, unless sequence parallelism
//!   (Korthikanti et al. 2022) splits them by token: then the norm rows of the table run on `1/tp`
//!   of the tokens and their activations take `1/tp` of the memory. So the shard has `n_heads /
//!   tp`, `n_kv_heads / tp`, `d_ff / tp` and `ceil(vocab / tp)` (padded).
//! - pipeline parallel (Huang et al. 2019; Narayanan et al. 2021) gives each of `pp` stages
//!   `ceil(n_layers / pp)` layers (the slowest stage is priced; it also holds the vocabulary's
//!   embedding and logits: Megatron puts them on the first and last stage, and the logits are the
//!   larger work). Each stage runs every micro-batch; the schedule idles it for the fill and drain,
//!   the *bubble*: `(pp - 1) / (vp m)` of its forward and backward time for `m` micro-batches and
//!   `vp` virtual stages (interleaved 1F1B; `vp = 1` is plain 1F1B). The first stage keeps
//!   `min(pp, m)` micro-batches' activations in flight (`x (1 + (pp - 1) / (pp vp))` interleaved).
//! - context parallel (Liu et al. 2023, ring attention; Megatron-core's context parallelism) gives
//!   each chip `seq_len / cp` tokens of every sequence; its queries still attend to the whole
//!   (causal, load-balanced) sequence, so its attention-score work is `cp` times its own chunk's.
//! - ZeRO (Rajbhandari et al. 2020) shards over the `dp` chips the optimizer moments (stage 1,
//!   Megatron's distributed optimizer), the gradients too (stage 2), or the parameters as well
//!   (stage 3; PyTorch FSDP `FULL_SHARD` with mixed precision): each chip updates `1/dp` of the
//!   shard's parameters; under FSDP it holds the gathered weights of two layers at a time (the one
//!   computing and the one prefetched) in compute precision, and the full gradients of one layer
//!   until they are reduce-scattered.
//!
//! Communication per chip per step, ring collectives over the chips' network ([`crate::network`]:
//! an all-gather or a reduce-scatter of a tensor of `S` bytes over `n` chips moves `(n-1)/n S`
//! through each chip's links, an all-reduce twice that, hierarchically when the group spans
//! nodes):
//! - DP: one all-reduce of the gradients per optimizer step (`S = shard params x param_bytes`;
//!   micro-steps accumulate locally, as DDP's `no_sync`); ZeRO-1: a reduce-scatter of the
//!   gradients and an all-gather of the updated parameters (compute precision) per step; ZeRO-2:
//!   the reduce-scatter every micro-step;
//! - FSDP: every micro-step all-gathers the weights in the forward pass and again in the backward
//!   pass (`S = shard params x activation_bytes`, the compute precision) and reduce-scatters the
//!   gradients (`S = shard params x param_bytes`);
//! - TP: all-reduce of the activations `S = (tokens per micro-step) x d_model x activation_bytes`,
//!   twice per layer forward (after the attention output and the MLP output projections), twice
//!   backward (the gradients entering the attention and MLP input projections), twice more per
//!   layer when full recomputation runs the forward again, plus one forward (the
//!   vocabulary-parallel embedding) and one backward (the gradient from the vocabulary-parallel
//!   logits), every micro-step; with sequence parallelism each all-reduce becomes a
//!   reduce-scatter and an all-gather, the same volume. The cross-entropy's per-token max and sum
//!   reductions (8 bytes a token) are left out.
//! - PP: point-to-point sends of each micro-batch's activations and their gradients at each
//!   model chunk ([`pp_comm`]);
//! - CP: the ring exchange of keys and values ([`cp_comm`]).
//!
//! Overlap assumption: DP/ZeRO/FSDP collectives are issued layer by layer while other layers
//! compute (DDP gradient buckets, FSDP prefetch, XLA's asynchronous collectives, Megatron's
//! overlapped gradient reduce) and overlap the step's computation entirely, as the ring
//! attention's exchange overlaps the attention; TP collectives and pipeline sends sit between
//! dependent computations and add to it: `step = max(compute + bubble, dp_comm + cp_comm) +
//! tp_comm + pp_comm`. Collective latency (per message) and the memory traffic of the
//! communication buffers are not modelled; the groups share the link budget as if they did not
//! run at the same time.

use crate::architecture::{Architecture, Recompute};
use crate::bilinear::Bilinear;
use crate::error::{Error, Range, Result};
use crate::flops::flops_per_step;
use crate::hardware::{Hardware, MatmulPrecision};
use crate::loss::Law;
use crate::memcpy::{attention_score_bytes_per_step, op_table, step_and_optimizer_work, StepWork};
use crate::memory::{kept_bytes_per_layer, memory_bytes, static_bytes};
use crate::metrics::{tokens_in_budget, Metrics};
use crate::network::{Interconnect, Volume};
use crate::params::{non_embedding_params, params_per_layer, total_params};
use crate::step_time::StepTimeParts;

/// How the data-parallel dimension treats parameters, gradients and optimizer state (Rajbhandari
/// et al. 2020, ZeRO stages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataParallel {
    /// Every chip keeps all of them (DP, PyTorch DDP).
    Replicated,
    /// ZeRO-1: the optimizer moments (and the update) sharded over the data-parallel chips;
    /// gradients reduce-scattered, updated parameters all-gathered (Megatron-LM's distributed
    /// optimizer).
    Optimizer,
    /// ZeRO-2: the gradients sharded too.
    Gradients,
    /// ZeRO-3: parameters as well (FSDP `FULL_SHARD`).
    Sharded,
}

impl DataParallel {
    /// "DP", "ZeRO-1 DP", "ZeRO-2 DP", "FSDP".
    pub fn name(self) -> &'static str {
        match self {
            DataParallel::Replicated => "DP",
            DataParallel::Optimizer => "ZeRO-1 DP",
            DataParallel::Gradients => "ZeRO-2 DP",
            DataParallel::Sharded => "FSDP",
        }
    }

    /// From a ZeRO stage: 0 DP, 1, 2, 3 FSDP.
    pub fn from_zero_stage(stage: u32) -> Result<Self> {
        match stage {
            0 => Ok(DataParallel::Replicated),
            1 => Ok(DataParallel::Optimizer),
            2 => Ok(DataParallel::Gradients),
            3 => Ok(DataParallel::Sharded),
            _ => Err(Error::invalid("zero", stage, "a ZeRO stage: 0 (replicated), 1 (optimizer), 2 (+gradients) or 3 (FSDP)")),
        }
    }

    /// The ZeRO stage (0 for replicated data parallelism).
    pub fn zero_stage(self) -> u32 {
        match self {
            DataParallel::Replicated => 0,
            DataParallel::Optimizer => 1,
            DataParallel::Gradients => 2,
            DataParallel::Sharded => 3,
        }
    }
}

/// A way to spread training over `dp x tp x pp x cp` chips (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sharding {
    /// Data-parallel degree (replicas of each model shard).
    pub dp: u32,
    /// Tensor-parallel degree.
    pub tp: u32,
    /// Pipeline stages.
    pub pp: u32,
    /// Virtual stages (model chunks) per pipeline rank: 1 is 1F1B, more is Megatron's
    /// interleaved schedule.
    pub vp: u32,
    /// Context-parallel degree (the sequence split over chips, ring attention).
    pub cp: u32,
    /// Megatron sequence parallelism with tensor parallelism (Korthikanti et al. 2022).
    pub sp: bool,
    /// Expert-parallel degree of a mixture of experts: each chip holds `experts / ep` of every MoE
    /// layer's routed experts; the group is drawn from the data- and context-parallel chips, and
    /// from the tensor-parallel ones when it needs them ([`Sharding::folds_experts`]), no chips of
    /// its own, as Megatron-core's.
    pub ep: u32,
    pub data: DataParallel,
    /// The number format of the dense matmuls (the rest stays as the architecture's precision
    /// says); priced by the hardware's [`crate::hardware::MatmulTimeFactors`].
    pub matmul: MatmulPrecision,
}

/// Accepted range of each parallel degree.
pub const DEGREE: Range = Range::new(1.0, 1_048_576.0, "a parallel degree");

impl Sharding {
    pub const SINGLE: Sharding = Sharding::new(1, 1, DataParallel::Replicated);

    /// `dp` x `tp` chips, no pipeline, no context parallelism, no sequence parallelism.
    pub const fn new(dp: u32, tp: u32, data: DataParallel) -> Sharding {
        Sharding { dp, tp, pp: 1, vp: 1, cp: 1, sp: false, ep: 1, data, matmul: MatmulPrecision::Bf16 }
    }

    /// A layout of every kind, checked: each degree in [`DEGREE`], `vp` 1 without a pipeline,
    /// `sp` only with `tp > 1`, and at most `u32::MAX` chips in all.
    #[allow(clippy::too_many_arguments)]
    pub fn layout(dp: u32, tp: u32, pp: u32, vp: u32, cp: u32, sp: bool, data: DataParallel) -> Result<Sharding> {
        for (field, v) in [("dp", dp), ("tp", tp), ("pp", pp), ("vp", vp), ("cp", cp)] {
            DEGREE.check(field, f64::from(v))?;
        }
        if vp > 1 && pp == 1 {
            return Err(Error::invalid("vp", vp, "1 without pipeline stages (pp = 1): virtual stages interleave a pipeline"));
        }
        if sp && tp == 1 {
            return Err(Error::invalid(
                "sp",
                "true",
                "false with tp = 1: sequence parallelism splits the tensor-parallel group's work",
            ));
        }
        let chips = u64::from(dp) * u64::from(tp) * u64::from(pp) * u64::from(cp);
        if chips > u64::from(u32::MAX) {
            return Err(Error::invalid("chips", chips, "dp x tp x pp x cp at most 4294967295"));
        }
        let data = if dp == 1 { DataParallel::Replicated } else { data };
        Ok(Sharding { dp, tp, pp, vp, cp, sp, ep: 1, data, matmul: MatmulPrecision::Bf16 })
    }

    /// This layout with its dense matmuls in `matmul`.
    pub fn with_matmul(self, matmul: MatmulPrecision) -> Sharding {
        Sharding { matmul, ..self }
    }

    /// This layout with `ep`-way expert parallelism, checked: `ep` in [`DEGREE`] and dividing the
    /// data- and context-parallel chips `dp x cp` it is drawn from.
    pub fn with_experts(self, ep: u32) -> Result<Sharding> {
        DEGREE.check("ep", f64::from(ep))?;
        let group = u64::from(self.tp) * u64::from(self.dp) * u64::from(self.cp);
        if !group.is_multiple_of(u64::from(ep)) {
            return Err(Error::invalid(
                "ep",
                ep,
                &format!(
                    "a divisor of tp x dp x cp = {group} (expert parallelism uses the tensor-, data- and context-parallel chips)"
                ),
            ));
        }
        Ok(Sharding { ep, ..self })
    }

    /// Whether the expert-parallel group takes tensor-parallel chips too (`ep` does not divide
    /// `dp x cp`): Megatron-core's MoE parallel folding (Liu et al. 2025), where the experts are
    /// not split by tensor parallelism (expert TP 1): each chip holds `experts / ep` whole experts.
    pub fn folds_experts(&self) -> bool {
        self.ep > 1 && !(u64::from(self.dp) * u64::from(self.cp)).is_multiple_of(u64::from(self.ep))
    }

    pub fn chips(&self) -> u32 {
        self.dp * self.tp * self.pp * self.cp
    }

    /// Data parallel over `chips` chips (`sharded`: FSDP), or one chip.
    pub fn data_parallel(chips: u32, sharded: bool) -> Sharding {
        Sharding::new(chips, 1, if sharded && chips > 1 { DataParallel::Sharded } else { DataParallel::Replicated })
    }

    /// Whether this is a plain `dp x tp` sharding (no pipeline, context or sequence parallelism):
    /// the kind the search enumerates.
    pub fn is_dp_tp(&self) -> bool {
        self.pp == 1 && self.cp == 1 && !self.sp
    }

    /// e.g. "DP 8", "FSDP 4 x TP 2", "TP 8", "single chip", "ZeRO-1 DP 8 x TP 4 SP x PP 8 (VP 5)
    /// x CP 2".
    pub fn name(&self) -> String {
        let mut parts = Vec::new();
        if self.dp > 1 {
            parts.push(format!("{} {}", self.data.name(), self.dp));
        }
        if self.tp > 1 {
            parts.push(format!("TP {}{}", self.tp, if self.sp { " SP" } else { "" }));
        }
        if self.pp > 1 {
            parts.push(if self.vp > 1 { format!("PP {} (VP {})", self.pp, self.vp) } else { format!("PP {}", self.pp) });
        }
        if self.cp > 1 {
            parts.push(format!("CP {}", self.cp));
        }
        if self.ep > 1 {
            parts.push(format!("EP {}", self.ep));
        }
        let name = if parts.is_empty() { "single chip".to_string() } else { parts.join(" x ") };
        match self.matmul {
            MatmulPrecision::Bf16 => name,
            p => format!("{name}, {} matmuls", p.name().to_uppercase()),
        }
    }
}

/// Every plain sharding of `chips` chips: each divisor `tp` of `chips` with `dp = chips / tp`, DP
/// before FSDP (FSDP over one chip is DP), fewer TP chips first. That order breaks ties.
pub fn shardings(chips: u32) -> Vec<Sharding> {
    let mut out = Vec::new();
    for tp in (1..=chips).filter(|t| chips.is_multiple_of(*t)) {
        let dp = chips / tp;
        out.push(Sharding::new(dp, tp, DataParallel::Replicated));
        if dp > 1 {
            out.push(Sharding::new(dp, tp, DataParallel::Sharded));
        }
    }
    out
}

/// Why `s` cannot split `arch` (the first reason, naming the field), or `Ok` when it can: what
/// [`shard`] requires.
pub fn check_divides(arch: &Architecture, s: Sharding) -> Result<()> {
    let need = |ok: bool, field: &str, value: u32, expected: String| {
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(field, value, &expected))
        }
    };
    need(arch.batch_size.is_multiple_of(s.dp), "dp", s.dp, format!("a divisor of batch_size = {}", arch.batch_size))?;
    let per_chip = arch.batch_size / s.dp;
    if let Some(mb) = arch.micro_batch {
        need(
            per_chip.is_multiple_of(mb),
            "micro_batch",
            mb,
            format!("a divisor of the per-replica batch {per_chip} (batch_size / dp)"),
        )?;
    }
    need(arch.n_kv_heads.is_multiple_of(s.tp), "tp", s.tp, format!("a divisor of n_kv_heads = {}", arch.n_kv_heads))?;
    need(arch.d_ff.is_multiple_of(s.tp), "tp", s.tp, format!("a divisor of d_ff = {}", arch.d_ff))?;
    need(arch.seq_len.is_multiple_of(s.cp), "cp", s.cp, format!("a divisor of seq_len = {}", arch.seq_len))?;
    if s.ep > 1 {
        need(arch.is_moe(), "ep", s.ep, "1 for a dense MLP (expert parallelism splits a mixture of experts)".to_string())?;
        need(arch.experts.is_multiple_of(s.ep), "ep", s.ep, format!("a divisor of experts = {}", arch.experts))?;
    }
    let chunks = u64::from(s.pp) * u64::from(s.vp);
    need(
        chunks <= u64::from(arch.n_layers) + 2,
        "pp",
        s.pp,
        format!(
            "pp x vp model chunks at most n_layers + 2 = {} (each needs a layer, the embedding or the loss; vp = {})",
            u64::from(arch.n_layers) + 2,
            s.vp
        ),
    )
}

/// Why `s` cannot train `arch` on `hw` (chips the network cannot hold, a degree that does not
/// split the model, a matmul format the chip lacks), or `Ok`.
pub fn check_layout(arch: &Architecture, hw: &Hardware, s: Sharding) -> Result<()> {
    hw.check_chips(s.chips())?;
    check_divides(arch, s)?;
    hw.matmul_time_factor(s.matmul).map(|_| ())
}

/// Layers of the slowest pipeline stage: `ceil(n_layers / pp)` (stages differ by at most one
/// layer; uneven splits, as Megatron-Bridge's custom layouts of 61 or 126 layers, price the larger).
#[inline]
pub fn stage_layers(n_layers: u32, pp: u32) -> u32 {
    n_layers.div_ceil(pp.max(1))
}

/// The architecture one chip runs (see the module docs), or `None` when `sharding` does not divide
/// it: `dp` must divide `batch_size` (and the micro-batch the per-chip batch), `tp` must divide
/// `n_kv_heads` (hence `n_heads`) and `d_ff`, `cp` the sequence, `ep` the experts, and the
/// pipeline's `pp x vp` model chunks need a layer each, or the embedding or the loss
/// (Megatron-core's `account_for_embedding_in_pipeline_split` and `..._loss_...`: at most
/// `n_layers + 2` chunks).
pub fn shard(arch: &Architecture, s: Sharding) -> Option<Architecture> {
    if s.dp == 0 || s.tp == 0 || s.pp == 0 || s.vp == 0 || s.cp == 0 || s.ep == 0 {
        return None;
    }
    if s.ep > 1 && !(arch.is_moe() && arch.experts.is_multiple_of(s.ep)) {
        return None;
    }
    if !arch.batch_size.is_multiple_of(s.dp) || !arch.n_kv_heads.is_multiple_of(s.tp) || !arch.d_ff.is_multiple_of(s.tp) {
        return None;
    }
    if !arch.seq_len.is_multiple_of(s.cp) || u64::from(s.pp) * u64::from(s.vp) > u64::from(arch.n_layers) + 2 {
        return None;
    }
    if arch.micro_batch.is_some_and(|mb| !(arch.batch_size / s.dp).is_multiple_of(mb)) {
        return None;
    }
    Some(Architecture {
        batch_size: arch.batch_size / s.dp,
        n_heads: arch.n_heads / s.tp,
        n_kv_heads: arch.n_kv_heads / s.tp,
        // Folded expert parallelism keeps whole experts (and prices the shared experts whole too,
        // an overcount of them by tp).
        d_ff: if s.folds_experts() { arch.d_ff } else { arch.d_ff / s.tp },
        vocab_size: arch.vocab_size.div_ceil(s.tp),
        n_layers: stage_layers(arch.n_layers, s.pp),
        seq_len: arch.seq_len / s.cp,
        // Each chip holds experts / ep routed experts; its tokens still go to top_k of them all,
        // and balanced routing brings it as many routed copies as it sends away. (The router is
        // then priced at d x experts / ep, a 1/ep undercount of a small matmul.)
        experts: arch.experts / s.ep,
        ..*arch
    })
}

/// What limits a sharded step most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Moving bytes through device memory (MEMCPY).
    Memory,
    Compute,
    /// Collective communication that computation does not hide.
    Communication,
}

impl Bound {
    pub fn name(self) -> &'static str {
        match self {
            Bound::Memory => "memory",
            Bound::Compute => "compute",
            Bound::Communication => "communication",
        }
    }
}

/// One sharded training step, per chip. Units: seconds and bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShardedStep {
    pub sharding: Sharding,
    /// Peak device memory on one chip (bytes).
    pub memory_bytes: f64,
    /// MEMCPY of one chip's step (bytes).
    pub memcpy_bytes: f64,
    /// The chip's step without communication and without the pipeline bubble, by the hardware's
    /// step-time model (s).
    pub compute_s: f64,
    /// Idle time of the pipeline's fill and drain (s): `(pp - 1) / (vp x micro-batches)` of the
    /// forward and backward compute.
    pub bubble_s: f64,
    /// DP all-reduce or ZeRO/FSDP gathers and reduce-scatters (s), overlapped with compute.
    pub dp_comm_s: f64,
    /// TP all-reduces (or SP reduce-scatters and all-gathers) (s), not overlapped.
    pub tp_comm_s: f64,
    /// Pipeline point-to-point sends of activations and their gradients (s), not overlapped.
    pub pp_comm_s: f64,
    /// Context-parallel ring exchange of keys and values (s), overlapped with compute.
    pub cp_comm_s: f64,
    /// Expert-parallel all-to-alls (s), not overlapped.
    pub ep_comm_s: f64,
    /// Bytes each chip moves per step in each kind of communication (inside its node and between
    /// nodes together).
    pub dp_comm_bytes: f64,
    pub tp_comm_bytes: f64,
    pub pp_comm_bytes: f64,
    pub cp_comm_bytes: f64,
    pub ep_comm_bytes: f64,
    /// `max(compute_s + bubble_s, dp_comm_s + cp_comm_s) + tp_comm_s + pp_comm_s + ep_comm_s` (s).
    pub step_time_s: f64,
    pub bound: Bound,
    /// Where `compute_s` goes (moving bytes, computing, fixed overheads), by the step-time model.
    pub parts: StepTimeParts,
    /// The chip's work per step (its shard's, with the ZeRO/FSDP 1/dp share of the optimizer
    /// update, context parallelism's whole-sequence attention, sequence parallelism's split
    /// norms): what `compute_s` prices.
    pub work: StepWork,
    /// Micro-steps per optimizer step on each chip (`per-chip batch / micro_batch`).
    pub micro_steps: f64,
    /// The bubble as a fraction of the forward and backward time ([`bubble_fraction`]).
    pub bubble_fraction: f64,
    /// Seconds per dense matmul FLOP relative to bf16 in the layout's matmul format (1 for bf16).
    pub matmul_time_factor: f64,
}

mod comm;
mod step;
pub use comm::*;
pub use step::*;

#[cfg(test)]
mod tests;
