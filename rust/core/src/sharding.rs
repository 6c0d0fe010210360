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

/// Where a group of chips sits: how many of its chips share one node and one pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    n: u32,
    per_node: u32,
    per_pod: u32,
}

impl Placement {
    /// A group of `n` chips whose members are `stride` chips apart (the product of the degrees
    /// inside it), on nodes of `node` and pods of `pod` chips.
    fn of(n: u32, stride: u64, node: u32, pod: u32) -> Placement {
        let fit = |unit: u32| if stride >= u64::from(unit) { 1 } else { (u64::from(n)).min(u64::from(unit) / stride) as u32 };
        Placement { n, per_node: fit(node.max(1)), per_pod: fit(pod.max(1)) }
    }

    /// A ring all-gather of `bytes` over the group.
    fn all_gather(self, ic: &Interconnect, bytes: f64) -> Volume {
        ic.all_gather_tiers(bytes, self.n, self.per_node, self.per_pod)
    }

    fn all_reduce(self, ic: &Interconnect, bytes: f64) -> Volume {
        self.all_gather(ic, bytes).scaled(2.0)
    }
}

/// Each group's placement on `ic`: TP innermost (adjacent chips), then CP, then DP (expert
/// parallelism draws on the CP and DP chips in that order), pipeline stages outermost
/// (Megatron-LM's default order `tp-cp-ep-dp-pp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Groups {
    tp: Placement,
    cp: Placement,
    ep: Placement,
    dp: Placement,
    /// A stage's neighbour is `tp cp dp` chips away: in its node, in its pod, or beyond.
    pp: Placement,
}

fn groups(ic: &Interconnect, s: Sharding) -> Groups {
    let (node, pod) = (ic.chips_per_node.max(1), ic.chips_per_pod.max(1));
    let (tp, cp, dp) = (u64::from(s.tp), u64::from(s.cp), u64::from(s.dp));
    Groups {
        tp: Placement::of(s.tp, 1, node, pod),
        cp: Placement::of(s.cp, tp, node, pod),
        ep: Placement::of(s.ep, if s.folds_experts() { 1 } else { tp }, node, pod),
        dp: Placement::of(s.dp, tp * cp, node, pod),
        pp: Placement::of(2, tp * cp * dp, node, pod),
    }
}

/// Chips of one TP group and of one DP group in a node of `ic` (see [`groups`]).
#[cfg(test)]
fn chips_in_node(ic: &Interconnect, s: Sharding) -> (u32, u32) {
    let g = groups(ic, s);
    (g.tp.per_node, g.dp.per_node)
}

/// Bytes one chip moves per step in the data-parallel collectives (see the module docs).
pub fn dp_comm(shard: &Architecture, ic: &Interconnect, s: Sharding) -> Volume {
    if s.dp <= 1 {
        return Volume::default();
    }
    let params = total_params(shard);
    let group = groups(ic, s).dp;
    let p = shard.precision;
    let gather = |bytes_per_param: f64| group.all_gather(ic, params * bytes_per_param);
    match s.data {
        DataParallel::Replicated => group.all_reduce(ic, params * p.param_bytes),
        // Gradients reduce-scattered once per step, the updated parameters all-gathered in the
        // compute precision.
        DataParallel::Optimizer => gather(p.param_bytes).plus(gather(p.activation_bytes)),
        // Gradients reduce-scattered every micro-step (no chip keeps them whole).
        DataParallel::Gradients => gather(p.param_bytes).scaled(shard.micro_steps()).plus(gather(p.activation_bytes)),
        DataParallel::Sharded => gather(p.activation_bytes).scaled(2.0).plus(gather(p.param_bytes)).scaled(shard.micro_steps()),
    }
}

/// Bytes one chip moves per step in the tensor-parallel all-reduces (see the module docs). With
/// sequence parallelism each all-reduce is a reduce-scatter and an all-gather: the same volume.
pub fn tp_comm(shard: &Architecture, ic: &Interconnect, s: Sharding) -> Volume {
    if s.tp <= 1 {
        return Volume::default();
    }
    let per = shard.tokens_per_micro_step() * f64::from(shard.d_model) * shard.precision.activation_bytes;
    let l = f64::from(shard.n_layers);
    let recomputed = if shard.recompute == Recompute::Full { 2.0 * l } else { 0.0 };
    groups(ic, s).tp.all_reduce(ic, per).scaled((4.0 * l + 2.0 + recomputed) * shard.micro_steps())
}

/// Bytes one chip sends per step to its pipeline neighbours: each micro-batch's activations
/// forward and their gradients backward at each of its `vp` model chunks, `2 vp` sends of
/// `tokens x d_model` per micro-batch (a `1/tp` slice with sequence parallelism, Megatron's
/// scatter-gather of pipeline tensors). Point to point, over the node's network when the
/// neighbour stage shares it.
pub fn pp_comm(shard: &Architecture, ic: &Interconnect, s: Sharding) -> Volume {
    if s.pp <= 1 {
        return Volume::default();
    }
    let slice = if s.sp { f64::from(s.tp) } else { 1.0 };
    let bytes = 2.0
        * f64::from(s.vp)
        * shard.micro_steps()
        * shard.tokens_per_micro_step()
        * f64::from(shard.d_model)
        * shard.precision.activation_bytes
        / slice;
    let neighbour = groups(ic, s).pp;
    if neighbour.per_node == 2 {
        Volume { intra_bytes: bytes, inter_bytes: 0.0, inter_pod_bytes: 0.0 }
    } else if neighbour.per_pod == 2 {
        Volume { intra_bytes: 0.0, inter_bytes: bytes, inter_pod_bytes: 0.0 }
    } else {
        Volume { intra_bytes: 0.0, inter_bytes: 0.0, inter_pod_bytes: bytes }
    }
}

/// Bytes one chip sends per step in expert parallelism's all-to-alls (Lepikhin et al. 2021,
/// GShard; Megatron-core's token dispatcher): every MoE layer dispatches each of the chip's
/// tokens' `top_k` routed copies (`d_model` wide) to the chip holding its expert and combines the
/// results back, two all-to-alls forward, two backward (their gradients), two more when full
/// recomputation runs the forward again. With balanced routing `1/ep` of the copies stay on the
/// chip; of the rest, those bound for chips of the same node cross the node's network, the others
/// the tier above (the same split for pods). With sequence parallelism each TP chip dispatches its
/// `1/tp` of the tokens.
pub fn ep_comm(shard: &Architecture, ic: &Interconnect, s: Sharding) -> Volume {
    if s.ep <= 1 || !shard.is_moe() {
        return Volume::default();
    }
    let slice = if s.sp { f64::from(s.tp) } else { 1.0 };
    let copies = shard.tokens_per_micro_step() * f64::from(shard.top_k) / slice;
    let bytes = copies * f64::from(shard.d_model) * shard.precision.activation_bytes;
    let passes = if shard.recompute == Recompute::Full { 6.0 } else { 4.0 };
    let g = groups(ic, s).ep;
    let (n, node, pod) = (f64::from(g.n), f64::from(g.per_node), f64::from(g.per_pod));
    Volume {
        intra_bytes: bytes * (node - 1.0) / n,
        inter_bytes: bytes * (pod - node) / n,
        inter_pod_bytes: bytes * (n - pod) / n,
    }
    .scaled(passes * f64::from(shard.n_layers) * shard.micro_steps())
}

/// Bytes one chip moves per step in context parallelism's ring attention (Liu et al. 2023; Megatron
/// context parallelism): each layer's forward passes every other chip's keys and values round the
/// ring (an all-gather of `cp` chunks of `tokens x 2 kv_dim`), the backward passes them again and
/// their gradients back (twice that); full recomputation runs the forward once more.
pub fn cp_comm(shard: &Architecture, ic: &Interconnect, s: Sharding) -> Volume {
    if s.cp <= 1 {
        return Volume::default();
    }
    let chunk = shard.tokens_per_micro_step() * 2.0 * shard.kv_dim() * shard.precision.activation_bytes;
    let passes = if shard.recompute == Recompute::Full { 4.0 } else { 3.0 };
    groups(ic, s).cp.all_gather(ic, f64::from(s.cp) * chunk).scaled(passes * f64::from(shard.n_layers) * shard.micro_steps())
}

/// Micro-batches in flight on the first pipeline stage, in units of one micro-batch's activations:
/// `min(pp, micro-batches)` for 1F1B, times `1 + (pp - 1) / (pp vp)` when interleaved (Narayanan
/// et al. 2021; Korthikanti et al. 2022, section 4.2.3); 1 without a pipeline.
pub fn in_flight_micro_batches(s: Sharding, micro_steps: f64) -> f64 {
    if s.pp <= 1 {
        return 1.0;
    }
    let pp = f64::from(s.pp);
    let interleave = if s.vp > 1 { 1.0 + (pp - 1.0) / (pp * f64::from(s.vp)) } else { 1.0 };
    pp.min(micro_steps) * interleave
}

/// The pipeline bubble as a fraction of the busy time: `(pp - 1) / (vp x m)` for `m` micro-batches
/// per step (Narayanan et al. 2021, equations 1 and 2: 1F1B and interleaved schedules).
pub fn bubble_fraction(s: Sharding, micro_steps: f64) -> f64 {
    if s.pp <= 1 {
        return 0.0;
    }
    f64::from(s.pp - 1) / (f64::from(s.vp) * micro_steps)
}

/// Activation bytes that sequence parallelism shards (per micro-step, one stage): what the
/// layers keep of the `d_model`-wide tensors around each norm (the residual stream and the norm
/// outputs: `4 T d` per layer, the block input alone under full recomputation), the recomputed
/// layer's, and the embedding output and final norm's (`3 T d`). All of them replicated on every TP
/// chip without sequence parallelism.
fn sequence_parallel_bytes(sh: &Architecture) -> f64 {
    let td = sh.precision.activation_bytes * sh.tokens_per_micro_step() * f64::from(sh.d_model);
    let (per_layer, recomputing) = if sh.recompute == Recompute::Full { (1.0, 4.0) } else { (4.0, 0.0) };
    td * (f64::from(sh.n_layers) * per_layer + recomputing + 3.0)
}

/// Peak memory of one chip running `sh`, the shard of sharding `s` (bytes): the shard's own
/// memory, less what ZeRO shards (1/dp of the moments for stage 1, of the gradients too for stage
/// 2, and for FSDP of the parameters, with two layers of gathered weights in compute precision
/// and one layer of gradients not yet reduce-scattered), less sequence parallelism's share of the
/// replicated activations, plus the activations of the other micro-batches a pipeline stage keeps
/// in flight.
fn shard_memory_bytes(sh: &Architecture, s: Sharding) -> f64 {
    let mut memory = memory_bytes(sh);
    let p = sh.precision;
    let others = 1.0 - 1.0 / f64::from(s.dp.max(1));
    let params = total_params(sh);
    match s.data {
        DataParallel::Replicated => {}
        DataParallel::Optimizer => memory -= others * params * 2.0 * p.optimizer_bytes,
        DataParallel::Gradients => memory -= others * params * (2.0 * p.optimizer_bytes + p.param_bytes),
        DataParallel::Sharded => {
            let layer = params_per_layer(sh);
            memory += layer * (2.0 * p.activation_bytes + p.param_bytes) - others * static_bytes(sh);
        }
    }
    let sp_saved = if s.sp { (1.0 - 1.0 / f64::from(s.tp)) * sequence_parallel_bytes(sh) } else { 0.0 };
    memory -= sp_saved;
    if s.pp > 1 {
        let sp_layers = if s.sp {
            let td = p.activation_bytes * sh.tokens_per_micro_step() * f64::from(sh.d_model);
            let per_layer = if sh.recompute == Recompute::Full { 1.0 } else { 4.0 };
            (1.0 - 1.0 / f64::from(s.tp)) * td * per_layer * f64::from(sh.n_layers)
        } else {
            0.0
        };
        let layers = f64::from(sh.n_layers) * kept_bytes_per_layer(sh) - sp_layers;
        memory += (in_flight_micro_batches(s, sh.micro_steps()) - 1.0) * layers;
    }
    memory
}

/// What one chip's shard costs on its own: its operation table's work, priced by the hardware's
/// step-time model, and the optimizer update's share of that work. Every sharding that gives a
/// chip the same shard (same `tp`, same per-chip batch) shares it; the search kernel computes it
/// once per shard.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShardCost {
    /// The shard's step, every row of its table.
    pub work: StepWork,
    /// The AdamW row's part of `work`.
    pub optimizer: StepWork,
    /// `work` priced by the step-time model (s), and where that time goes.
    pub compute_s: f64,
    pub parts: StepTimeParts,
}

/// The [`ShardCost`] of a chip running `sh`.
#[inline]
pub fn shard_cost(sh: &Architecture, hw: &Hardware) -> ShardCost {
    let (work, optimizer) = step_and_optimizer_work(sh);
    let parts = hw.step_time.parts(sh, &work);
    ShardCost { work, optimizer, compute_s: hw.step_time.seconds_from_parts(&parts), parts }
}

/// The work of the norm rows (every `add+rmsnorm`, forward, backward and recomputed) of `sh`'s
/// table: the `d_model`-wide elementwise work sequence parallelism splits over the TP chips.
fn norm_work(sh: &Architecture) -> StepWork {
    let l = f64::from(sh.n_layers);
    let mut w = StepWork::default();
    for op in op_table(sh).ops().iter().filter(|op| op.name.contains("rmsnorm")) {
        let k = op.multiplicity(l);
        w.flops += k * op.flops;
        w.bytes += k * (op.read_bytes + op.write_bytes);
    }
    w
}

/// The shard's cost with context parallelism's and sequence parallelism's changes to its work:
/// each chip's queries attend to the whole sequence, `cp` times the attention-score work of its
/// own chunk (causal load balancing, Megatron's, gives every chip the same share), and the norm
/// rows run on `1/tp` of the tokens.
fn adjusted_cost(sh: &Architecture, s: Sharding, hw: &Hardware, cost: &ShardCost) -> ShardCost {
    if s.cp <= 1 && !s.sp && s.matmul == MatmulPrecision::Bf16 {
        return *cost;
    }
    let mut work = cost.work;
    if s.cp > 1 {
        let extra = f64::from(s.cp - 1);
        work.flops += extra * work.attention_flops;
        work.attention_flops *= f64::from(s.cp);
        work.bytes += extra * attention_score_bytes_per_step(sh);
    }
    if s.sp {
        let norms = norm_work(sh);
        let split = 1.0 - 1.0 / f64::from(s.tp);
        work.flops -= split * norms.flops;
        work.bytes -= split * norms.bytes;
    }
    // Low-precision matmuls: priced as bf16 matmuls of `factor` times the FLOPs (the work reported
    // stays the FLOPs executed).
    let mut priced = work;
    if s.matmul != MatmulPrecision::Bf16 {
        let factor = hw.matmul_time_factor(s.matmul).unwrap_or(1.0);
        priced.flops -= (1.0 - factor) * priced.matmul_flops;
        priced.matmul_flops *= factor;
    }
    let parts = hw.step_time.parts(sh, &priced);
    ShardCost { work, optimizer: cost.optimizer, compute_s: hw.step_time.seconds_from_parts(&parts), parts }
}

/// The step of `arch` under sharding `s`, or `None` if `s` does not divide it. Communication
/// goes over the hardware's network ([`Hardware::interconnect`]; callers check the chip count
/// with [`Hardware::check_chips`], so a sharding over several chips has one).
pub fn sharded_step(arch: &Architecture, hw: &Hardware, s: Sharding) -> Option<ShardedStep> {
    let sh = shard(arch, s)?;
    Some(step_of_shard(&sh, s, hw, &shard_cost(&sh, hw)))
}

/// The step of one chip running `sh`, the shard of sharding `s`, whose own cost is `cost`
/// ([`shard_cost`]): context and sequence parallelism's changes to its work, ZeRO/FSDP's share of
/// the optimizer update, the pipeline bubble, the collectives, the overlap rule and the bound (see
/// the module docs).
pub fn step_of_shard(sh: &Architecture, s: Sharding, hw: &Hardware, cost: &ShardCost) -> ShardedStep {
    let cost = adjusted_cost(sh, s, hw, cost);
    let mut work = cost.work;
    let mut compute_s = cost.compute_s;
    let parts = cost.parts;
    let (mut memory_s, compute_only_s) = (parts.memory_s, parts.compute_s);
    let memory = shard_memory_bytes(sh, s);
    let mut optimizer_s = cost.optimizer.bytes * hw.step_time.seconds_per_parameter_byte();
    if s.data != DataParallel::Replicated && s.dp > 1 {
        // Each chip updates 1/dp of the parameters (AdamW is memory-bound).
        let others = 1.0 - 1.0 / f64::from(s.dp);
        let saved_bytes = others * cost.optimizer.bytes;
        let saved_s = saved_bytes * hw.step_time.seconds_per_parameter_byte();
        work.bytes -= saved_bytes;
        work.flops -= others * cost.optimizer.flops;
        compute_s -= saved_s;
        memory_s -= saved_s;
        optimizer_s -= saved_s;
    }
    // The bubble idles the forward and backward work, not the optimizer update or the step's
    // fixed overhead.
    let busy_s = (compute_s - optimizer_s - parts.fixed_s).max(0.0);
    let bubble = bubble_fraction(s, sh.micro_steps());
    let bubble_s = busy_s * bubble;
    let volumes = hw
        .interconnect()
        .map(|ic| [dp_comm(sh, &ic, s), tp_comm(sh, &ic, s), pp_comm(sh, &ic, s), cp_comm(sh, &ic, s), ep_comm(sh, &ic, s)]);
    let [dp, tp, pp, cp, ep] = volumes.unwrap_or_default();
    let seconds = |v: Volume| hw.interconnect().map_or(if v.total() > 0.0 { f64::INFINITY } else { 0.0 }, |ic| ic.seconds(v));
    let (dp_comm_s, tp_comm_s, pp_comm_s, cp_comm_s, ep_comm_s) =
        (seconds(dp), seconds(tp), seconds(pp), seconds(cp), seconds(ep));
    let busy = compute_s + bubble_s;
    let overlapped = dp_comm_s + cp_comm_s;
    let exposed = tp_comm_s + pp_comm_s + ep_comm_s;
    let step_time_s = busy.max(overlapped) + exposed;
    let exposed_comm = (overlapped - busy).max(0.0) + exposed;
    let bound = if exposed_comm > memory_s.max(compute_only_s) {
        Bound::Communication
    } else if compute_only_s > memory_s {
        Bound::Compute
    } else {
        Bound::Memory
    };
    ShardedStep {
        sharding: s,
        memory_bytes: memory,
        memcpy_bytes: work.bytes,
        compute_s,
        bubble_s,
        dp_comm_s,
        tp_comm_s,
        pp_comm_s,
        cp_comm_s,
        ep_comm_s,
        dp_comm_bytes: dp.total(),
        tp_comm_bytes: tp.total(),
        pp_comm_bytes: pp.total(),
        cp_comm_bytes: cp.total(),
        ep_comm_bytes: ep.total(),
        step_time_s,
        bound,
        parts: StepTimeParts { memory_s, ..parts },
        work,
        micro_steps: sh.micro_steps(),
        bubble_fraction: bubble,
        matmul_time_factor: hw.matmul_time_factor(s.matmul).unwrap_or(1.0),
    }
}

/// One sharding's step over a whole shape (all axes fixed but depth and batch), in closed form:
/// per-chip memory, the chip's compute, the DP/FSDP and the TP collectives, each bilinear in
/// (`n_layers`, global `batch_size`) ([`Bilinear`]), fitted from [`step_of_shard`] itself. Then
/// `step = max(compute, dp_comm) + tp_comm` at any (L, B) the sharding divides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShardingFit {
    pub sharding: Sharding,
    pub memory_bytes: Bilinear,
    pub compute_s: Bilinear,
    pub dp_comm_s: Bilinear,
    pub tp_comm_s: Bilinear,
}

/// The [`ShardingFit`] of each sharding in `shardings` (in order, grouped by `tp` as
/// [`shardings`] lists them) that divides the heads and `d_ff` of `shape` (its depth and batch are
/// ignored), appended to `out`. The four samples of a fit are depths 1, 2 and per-chip batches
/// `m`, `2 m` (`m` the micro-batch, 1 without): the same four shards for every data-parallel
/// degree of one `tp`, so each shard's op table is summed once. Requires a step-time model that is
/// linear in the work ([`crate::step_time::StepTimeModel::is_linear`]): only then is the step
/// bilinear.
pub fn fit_shardings(shape: &Architecture, hw: &Hardware, shardings: &[Sharding], out: &mut Vec<ShardingFit>) {
    let mb = shape.micro_batch.unwrap_or(1);
    let samples = [(1, mb), (2, mb), (1, 2 * mb), (2, 2 * mb)];
    let mut tp = 0;
    let mut shards: Option<[(Architecture, ShardCost); 4]> = None;
    for &s in shardings {
        if s.tp != tp {
            tp = s.tp;
            let at = |(l, b): (u32, u32)| shard(&Architecture { n_layers: l, batch_size: b * s.dp, ..*shape }, s);
            shards = match samples.map(at) {
                [Some(a), Some(b), Some(c), Some(d)] => Some([a, b, c, d].map(|sh| (sh, shard_cost(&sh, hw)))),
                _ => None,
            };
        }
        let Some(shards) = &shards else { continue };
        let steps = shards.map(|(sh, cost)| step_of_shard(&sh, s, hw, &cost));
        let fit = |f: fn(&ShardedStep) -> f64| Bilinear::from_samples(mb * s.dp, steps.map(|st| f(&st)));
        out.push(ShardingFit {
            sharding: s,
            memory_bytes: fit(|st| st.memory_bytes),
            compute_s: fit(|st| st.compute_s),
            dp_comm_s: fit(|st| st.dp_comm_s),
            tp_comm_s: fit(|st| st.tp_comm_s),
        });
    }
}

/// The fastest sharding of `arch` over `chips` chips among those that fit in one chip's usable
/// memory (ties: the earlier in [`shardings`] order), with `true`; when none fits, the sharding
/// that needs the least memory per chip, with `false`; `None` when no sharding divides `arch`.
pub fn best_sharding(arch: &Architecture, hw: &Hardware, chips: u32) -> Option<(ShardedStep, bool)> {
    let usable = hw.usable_hbm_bytes();
    let mut best: Option<ShardedStep> = None;
    // (sharding, memory) of the least-memory sharding: its step is computed only if none fits
    // (memory is a closed formula; the step builds op tables, so skip it for shardings too big).
    let mut smallest: Option<(Sharding, f64)> = None;
    for s in shardings(chips) {
        let Some(sh) = shard(arch, s) else { continue };
        let memory = shard_memory_bytes(&sh, s);
        if smallest.is_none_or(|(_, m)| memory < m) {
            smallest = Some((s, memory));
        }
        if memory > usable {
            continue;
        }
        let step = sharded_step(arch, hw, s).expect("the sharding divides the architecture");
        if best.is_none_or(|b| step.step_time_s < b.step_time_s) {
            best = Some(step);
        }
    }
    match best {
        Some(step) => Some((step, true)),
        None => smallest.and_then(|(s, _)| sharded_step(arch, hw, s)).map(|step| (step, false)),
    }
}

/// The fastest layout of `arch` on `chips` chips that fits in one chip's usable memory, over every
/// layout kind this module prices (what the search's kernel does not: it prices DP/FSDP x TP):
/// tensor parallel within a node (with sequence parallelism) dividing the KV heads and `d_ff`,
/// context parallel 1-8 dividing the sequence, pipeline stages dividing what is left (at most
/// `n_layers`) with 1, 2, 4 or 8 virtual stages, ZeRO-1 or FSDP over the data-parallel rest (which
/// must divide the batch), each matmul format of `matmuls` the chip has. Ties: the earlier in that
/// order. With how many layouts were priced; `None` when none fits.
pub fn best_layout(arch: &Architecture, hw: &Hardware, chips: u32, matmuls: &[MatmulPrecision]) -> (Option<ShardedStep>, usize) {
    let usable = hw.usable_hbm_bytes();
    let node = hw.interconnect().map_or(1, |ic| ic.chips_per_node.max(1));
    let divisors = |n: u32| (1..=n).filter(move |d| n.is_multiple_of(*d));
    let mut best: Option<ShardedStep> = None;
    let mut priced = 0;
    for tp in divisors(chips).filter(|t| *t <= node && arch.n_kv_heads.is_multiple_of(*t) && arch.d_ff.is_multiple_of(*t)) {
        for cp in [1u32, 2, 4, 8].into_iter().filter(|c| (chips / tp).is_multiple_of(*c) && arch.seq_len.is_multiple_of(*c)) {
            for pp in divisors(chips / (tp * cp)).filter(|p| *p <= arch.n_layers) {
                let dp = chips / (tp * cp * pp);
                if !arch.batch_size.is_multiple_of(dp) {
                    continue;
                }
                let vps: &[u32] = if pp > 1 { &[1, 2, 4, 8] } else { &[1] };
                let zeros: &[DataParallel] =
                    if dp > 1 { &[DataParallel::Optimizer, DataParallel::Sharded] } else { &[DataParallel::Replicated] };
                for &vp in vps {
                    for &data in zeros {
                        let Ok(layout) = Sharding::layout(dp, tp, pp, vp, cp, tp > 1, data) else { continue };
                        for &m in matmuls {
                            let s = layout.with_matmul(m);
                            if check_layout(arch, hw, s).is_err() {
                                continue;
                            }
                            let Some(step) = sharded_step(arch, hw, s) else { continue };
                            priced += 1;
                            if step.memory_bytes <= usable && best.is_none_or(|b| step.step_time_s < b.step_time_s) {
                                best = Some(step);
                            }
                        }
                    }
                }
            }
        }
    }
    (best, priced)
}

/// Every metric of `arch` trained on `chips` chips with its best sharding (see [`best_sharding`]).
/// Memory and MEMCPY are per chip, FLOPs and parameters of the whole model, tokens global. When
/// no sharding fits, the metrics are those of the sharding with the least memory per chip and
/// `fits_memory` is false (as for one chip: the numbers say what it would take). When no sharding
/// divides `arch`, memory, step time and loss are +inf and the step is `None`.
pub fn evaluate_sharded(
    arch: &Architecture,
    hw: &Hardware,
    chips: u32,
    budget_s: f64,
    law: &Law,
    unique_tokens: Option<f64>,
) -> (Metrics, Option<ShardedStep>) {
    match best_sharding(arch, hw, chips) {
        Some((step, fits)) => (metrics_of_step(arch, &step, fits, budget_s, law, unique_tokens), Some(step)),
        None => {
            let inf = f64::INFINITY;
            let base = whole_model_metrics(arch);
            (Metrics { memory_bytes: inf, step_time_s: inf, loss: inf, fits_memory: false, ..base }, None)
        }
    }
}

/// Every metric of `arch` trained with the layout `s` (see [`evaluate_sharded`]); `None` when `s`
/// does not split `arch` ([`check_divides`] says why).
pub fn evaluate_layout(
    arch: &Architecture,
    hw: &Hardware,
    s: Sharding,
    budget_s: f64,
    law: &Law,
    unique_tokens: Option<f64>,
) -> Option<(Metrics, ShardedStep)> {
    let step = sharded_step(arch, hw, s)?;
    let fits = step.memory_bytes <= hw.usable_hbm_bytes();
    Some((metrics_of_step(arch, &step, fits, budget_s, law, unique_tokens), step))
}

fn whole_model_metrics(arch: &Architecture) -> Metrics {
    Metrics {
        params: total_params(arch),
        non_embedding_params: non_embedding_params(arch),
        flops_per_step: flops_per_step(arch),
        ..Metrics::default()
    }
}

fn metrics_of_step(
    arch: &Architecture,
    step: &ShardedStep,
    fits: bool,
    budget_s: f64,
    law: &Law,
    unique_tokens: Option<f64>,
) -> Metrics {
    let (steps, tokens) = tokens_in_budget(budget_s, step.step_time_s, arch.tokens_per_step());
    let (loss, effective_tokens) = law.loss_and_tokens(&crate::loss::LossInput::of(arch, tokens, unique_tokens));
    Metrics {
        memcpy_bytes_per_step: step.memcpy_bytes,
        memory_bytes: step.memory_bytes,
        fits_memory: fits,
        step_time_s: step.step_time_s,
        steps,
        tokens,
        effective_tokens,
        loss,
        ..whole_model_metrics(arch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::tests::llama_7b;
    use crate::hardware::{Network, Topology};
    use crate::loss::HOFFMANN;
    use crate::metrics::evaluate;

    /// 80 GiB, 90% usable, 3e12 B/s and 5e14 FLOP/s additive, and a network of `bandwidth`
    /// bytes/s per chip each way (a one-way torus figure of one link).
    fn hw_with(bandwidth: f64) -> Hardware {
        let model =
            crate::step_time::StepTimeModel::Linear { s_per_memcpy_byte: 1.0 / 3e12, s_per_flop: 1.0 / 5e14, overhead_s: 0.0 };
        let net = Network {
            link_bytes_per_s: bandwidth,
            links_per_chip: 1.0,
            topology: Topology::Torus2d,
            max_chips: 1024,
            chips_per_node: None,
            inter_node_bytes_per_s: None,
            chips_per_pod: None,
            inter_pod_bytes_per_s: None,
        };
        Hardware { network: Some(net), ..crate::hardware::tests::chip(80.0 * 1_073_741_824.0, model) }
    }

    fn hw() -> Hardware {
        hw_with(1e11)
    }

    #[test]
    fn shardings_of_eight_chips() {
        let names: Vec<String> = shardings(8).iter().map(Sharding::name).collect();
        assert_eq!(names, ["DP 8", "FSDP 8", "DP 4 x TP 2", "FSDP 4 x TP 2", "DP 2 x TP 4", "FSDP 2 x TP 4", "TP 8"]);
        assert_eq!(shardings(1), vec![Sharding::SINGLE]);
    }

    #[test]
    fn one_chip_is_the_single_chip_model() {
        let a = llama_7b();
        let h = Hardware { hbm_bytes: 1e15, ..hw() };
        let (m, step) = evaluate_sharded(&a, &h, 1, 3600.0, &HOFFMANN, None);
        let single = evaluate(&a, &h, 3600.0, &HOFFMANN);
        let step = step.unwrap();
        assert_eq!(step.sharding, Sharding::SINGLE);
        assert_eq!(m.step_time_s, single.step_time_s);
        assert_eq!(m.memory_bytes, single.memory_bytes);
        assert_eq!(m.loss, single.loss);
        assert_eq!(step.dp_comm_s + step.tp_comm_s, 0.0);
    }

    /// d 8, 2 layers, 4 heads of 2 (q 8), 2 KV heads (kv 4), GELU d_ff 16, vocab 16 untied,
    /// seq 4, batch 4; fp32 parameters (4 B), bf16 activations (2 B).
    fn small() -> Architecture {
        Architecture {
            d_model: 8,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 2,
            d_ff: 16,
            mlp: crate::architecture::Mlp::Gelu,
            attention: crate::architecture::Attention::Flash,
            tied_embeddings: false,
            seq_len: 4,
            batch_size: 4,
            vocab_size: 16,
            precision: crate::architecture::Precision::default(),
            recompute: crate::architecture::Recompute::None,
            micro_batch: None,
            experts: 0,
            top_k: 0,
            shared_experts: 0,
        }
    }

    #[test]
    fn shard_and_communication_volumes_by_hand() {
        let a = small();
        // Whole model: layer = 8 (8 + 8) + 8 x 8 + 2 x 8 x 16 + 16 = 464; 2 layers + final norm
        // = 936; embeddings 2 x 16 x 8 = 256; total 1192.
        assert_eq!(total_params(&a), 1192.0);
        let s = Sharding::new(2, 2, DataParallel::Replicated);
        let sh = shard(&a, s).unwrap();
        assert_eq!((sh.batch_size, sh.n_heads, sh.n_kv_heads, sh.d_ff, sh.vocab_size), (2, 2, 1, 8, 8));
        assert_eq!(sh.d_model, 8);
        // Shard: layer = 8 (4 + 4) + 4 x 8 + 2 x 8 x 8 + 16 = 240; 2 x 240 + 8 = 488; + 2 x 8 x 8.
        assert_eq!(total_params(&sh), 616.0);
        let ic = hw().interconnect().unwrap();
        // DP all-reduce over 2: 2 x 1/2 x 616 x 4 B.
        assert_eq!(dp_comm(&sh, &ic, s).total(), 2464.0);
        // FSDP: gather twice in bf16 (2 x 1/2 x 616 x 2 B = 1232) and reduce-scatter fp32 gradients
        // (1/2 x 616 x 4 B = 1232).
        assert_eq!(dp_comm(&sh, &ic, Sharding { data: DataParallel::Sharded, ..s }).total(), 2464.0);
        // TP: (4 x 2 + 2) all-reduces of 8 tokens x 8 x 2 B = 128 B, each 2 x 1/2 x 128 B.
        assert_eq!(tp_comm(&sh, &ic, s).total(), 1280.0);
        // Micro-steps of 1 sequence: FSDP gathers and reduce-scatters twice as often (2 micro-steps),
        // TP all-reduces half the tokens twice; DP all-reduces once.
        let micro = Architecture { micro_batch: Some(1), ..a };
        let shm = shard(&micro, s).unwrap();
        assert_eq!(shm.micro_steps(), 2.0);
        assert_eq!(dp_comm(&shm, &ic, Sharding { data: DataParallel::Sharded, ..s }).total(), 2.0 * 2464.0);
        assert_eq!(tp_comm(&shm, &ic, s).total(), 1280.0);
        assert_eq!(dp_comm(&shm, &ic, s).total(), 2464.0);
        // Full recomputation all-reduces the recomputed forward too: (4 x 2 + 2 + 2 x 2) x 128.
        let full = shard(&Architecture { recompute: crate::architecture::Recompute::Full, ..a }, s).unwrap();
        assert_eq!(tp_comm(&full, &ic, s).total(), 14.0 * 128.0);
        // A micro-batch must divide the per-chip batch: 4 / dp 2 = 2 sequences, micro-batch 4 does not.
        assert!(shard(&Architecture { micro_batch: Some(4), ..a }, s).is_none());
        // Indivisible: 3 does not divide batch 4; 4 does not divide 2 KV heads.
        assert!(shard(&a, Sharding::new(3, 1, DataParallel::Replicated)).is_none());
        assert!(shard(&a, Sharding::new(1, 4, DataParallel::Replicated)).is_none());
    }

    #[test]
    fn step_time_adds_exposed_communication() {
        let a = small();
        let s = Sharding::new(2, 2, DataParallel::Replicated);
        let st = sharded_step(&a, &hw_with(1e3), s).unwrap();
        assert_eq!(st.dp_comm_s, 2464.0 / 1e3);
        assert_eq!(st.tp_comm_s, 1280.0 / 1e3);
        assert_eq!(st.step_time_s, st.compute_s.max(st.dp_comm_s) + st.tp_comm_s);
        assert_eq!(st.bound, Bound::Communication);
        assert_ne!(sharded_step(&a, &hw_with(1e14), s).unwrap().bound, Bound::Communication);
    }

    #[test]
    fn hierarchical_all_reduce_on_two_nodes_of_eight_by_hand() {
        // 16 chips, 8 per node, an all-reduce of S = 1600 bytes: reduce-scatter inside the node
        // (7/8 S = 1400), all-reduce of each chip's 1/8 share (200 bytes) between the 2 nodes
        // (2 x 1/2 x 200 = 200), all-gather inside the node (1400). At 100 B/s inside and 10 B/s
        // between nodes: 2800 / 100 + 200 / 10 = 48 s.
        let ic = Interconnect {
            intra_bytes_per_s: 100.0,
            chips_per_node: 8,
            inter_bytes_per_s: 10.0,
            chips_per_pod: u32::MAX,
            inter_pod_bytes_per_s: 10.0,
        };
        let v = ic.all_reduce(1600.0, 16, 8);
        assert_eq!(v, Volume { intra_bytes: 2800.0, inter_bytes: 200.0, inter_pod_bytes: 0.0 });
        assert_eq!(ic.seconds(v), 48.0);
        // DP 16 x TP 1 puts 8 DP members in each node; DP 8 x TP 2 puts 4 (TP pairs are adjacent);
        // TP 16 spans both nodes with 8 of its chips in each.
        assert_eq!(chips_in_node(&ic, Sharding::new(16, 1, DataParallel::Replicated)), (1, 8));
        assert_eq!(chips_in_node(&ic, Sharding::new(8, 2, DataParallel::Replicated)), (2, 4));
        assert_eq!(chips_in_node(&ic, Sharding::new(1, 16, DataParallel::Replicated)), (8, 1));
    }

    #[test]
    fn fsdp_makes_a_model_fit_that_dp_cannot() {
        // LLaMA-7B: 6.74e9 params x 16 B of params, grads and moments = 108 GB > 72 GB usable.
        let a = Architecture { batch_size: 8, ..llama_7b() };
        let h = hw();
        assert!(!best_sharding(&a, &h, 1).unwrap().1);
        let dp = sharded_step(&a, &h, Sharding::new(8, 1, DataParallel::Replicated)).unwrap();
        let fsdp = sharded_step(&a, &h, Sharding::new(8, 1, DataParallel::Sharded)).unwrap();
        assert!(dp.memory_bytes > h.usable_hbm_bytes() && fsdp.memory_bytes < h.usable_hbm_bytes());
        let (best, fits) = best_sharding(&a, &h, 8).unwrap();
        assert!(fits);
        assert_ne!(best.sharding, dp.sharding, "{}", best.sharding.name());
        assert!(best.memory_bytes <= h.usable_hbm_bytes());
        // The step on each chip is shorter than the whole batch on one (imaginary, big) chip.
        let big = Hardware { hbm_bytes: 1e15, ..h };
        assert!(best.step_time_s < evaluate(&a, &big, 1.0, &HOFFMANN).step_time_s);
    }
    fn layout(dp: u32, tp: u32, pp: u32, vp: u32, cp: u32, sp: bool, data: DataParallel) -> Sharding {
        Sharding::layout(dp, tp, pp, vp, cp, sp, data).unwrap()
    }

    #[test]
    fn layout_names_and_checks() {
        let s = layout(8, 4, 8, 5, 2, true, DataParallel::Optimizer);
        assert_eq!(s.name(), "ZeRO-1 DP 8 x TP 4 SP x PP 8 (VP 5) x CP 2");
        assert_eq!(s.chips(), 8 * 4 * 8 * 2);
        assert_eq!(layout(1, 1, 4, 1, 1, false, DataParallel::Sharded).name(), "PP 4");
        assert!(Sharding::layout(1, 1, 1, 2, 1, false, DataParallel::Replicated).unwrap_err().to_string().contains("vp"));
        assert!(Sharding::layout(8, 1, 1, 1, 1, true, DataParallel::Replicated).unwrap_err().to_string().contains("sp"));
        assert!(Sharding::layout(0, 1, 1, 1, 1, false, DataParallel::Replicated).is_err());
        assert_eq!(DataParallel::from_zero_stage(2).unwrap(), DataParallel::Gradients);
        assert!(DataParallel::from_zero_stage(4).is_err());
    }

    /// `small()` four layers deep, batch 8 in micro-batches of 1.
    fn deep() -> Architecture {
        Architecture { n_layers: 4, batch_size: 8, micro_batch: Some(1), ..small() }
    }

    #[test]
    fn one_f_one_b_and_interleaved_bubbles_by_hand() {
        // 8 micro-batches: 1F1B over 4 stages idles (4 - 1) / 8 of the busy time; over 2 stages
        // 1/8; interleaved with 2 virtual stages each, half that (Narayanan et al. 2021, eq. 1-2).
        let m = deep().micro_steps();
        assert_eq!(m, 8.0);
        assert_eq!(bubble_fraction(layout(1, 1, 4, 1, 1, false, DataParallel::Replicated), m), 3.0 / 8.0);
        assert_eq!(bubble_fraction(layout(1, 1, 2, 1, 1, false, DataParallel::Replicated), m), 1.0 / 8.0);
        assert_eq!(bubble_fraction(layout(1, 1, 2, 2, 1, false, DataParallel::Replicated), m), 1.0 / 16.0);
        assert_eq!(bubble_fraction(Sharding::SINGLE, m), 0.0);
        // The step: each of the 4 stages has 1 layer; its shard (1 layer + final norm 8 +
        // embeddings 256 = 464 + 8 + 256 = 728 params) updates them with AdamW, moving 3 p + 4 o =
        // 28 B per parameter (reads and writes), time the bubble does not idle.
        let s = layout(1, 1, 4, 1, 1, false, DataParallel::Replicated);
        let h = hw();
        let st = sharded_step(&deep(), &h, s).unwrap();
        let sh = shard(&deep(), s).unwrap();
        assert_eq!(sh.n_layers, 1);
        assert_eq!(total_params(&sh), 728.0);
        let optimizer_s = 728.0 * 28.0 / 3e12;
        let expected = (st.compute_s - optimizer_s) * 3.0 / 8.0;
        assert!((st.bubble_s - expected).abs() <= 1e-12 * expected, "{} vs {expected}", st.bubble_s);
        assert_eq!(
            st.step_time_s,
            (st.compute_s + st.bubble_s).max(st.dp_comm_s + st.cp_comm_s) + (st.tp_comm_s + st.pp_comm_s + st.ep_comm_s)
        );
        // Uneven stages price the larger: 4 layers over 3 stages -> 2.
        assert_eq!(shard(&deep(), layout(1, 1, 3, 1, 1, false, DataParallel::Replicated)).unwrap().n_layers, 2);
        // pp x vp model chunks need a layer each, or the embedding or the loss: 4 layers take at
        // most 6 chunks.
        assert!(shard(&deep(), layout(1, 1, 3, 2, 1, false, DataParallel::Replicated)).is_some());
        assert!(shard(&deep(), layout(1, 1, 4, 2, 1, false, DataParallel::Replicated)).is_none());
    }

    #[test]
    fn pipeline_point_to_point_volume_by_hand() {
        // One micro-batch's activations: 1 sequence x 4 tokens x d 8 x 2 B = 64 B, sent forward
        // and its gradient backward at each model chunk: 2 x vp x 8 micro-batches x 64 B.
        let ic = hw().interconnect().unwrap();
        let sh = |s| shard(&deep(), s).unwrap();
        let s = layout(1, 1, 2, 1, 1, false, DataParallel::Replicated);
        assert_eq!(pp_comm(&sh(s), &ic, s), Volume { intra_bytes: 1024.0, inter_bytes: 0.0, inter_pod_bytes: 0.0 });
        let v = layout(1, 1, 2, 2, 1, false, DataParallel::Replicated);
        assert_eq!(pp_comm(&sh(v), &ic, v).total(), 2048.0);
        // With TP 2 and sequence parallelism each chip sends its 1/2 slice.
        let t = layout(1, 2, 2, 1, 1, true, DataParallel::Replicated);
        assert_eq!(pp_comm(&sh(t), &ic, t).total(), 512.0);
        // Stages 1 chip apart with 1 chip per node: between nodes.
        let one_per_node = Interconnect { chips_per_node: 1, ..ic };
        assert_eq!(pp_comm(&sh(s), &one_per_node, s), Volume { intra_bytes: 0.0, inter_bytes: 1024.0, inter_pod_bytes: 0.0 });
    }

    #[test]
    fn per_stage_memory_by_hand() {
        // One micro-batch (1 sequence, T = 4 tokens) of one layer keeps, in bf16:
        // T (4 d + q + 2 kv + f_in + f) = 4 (32 + 8 + 8 + 16 + 16) = 320 elements = 640 B, the
        // attention output T q = 32 elements = 64 B, and flash's fp32 log-sum-exp 4 B x 4 heads x
        // 4 tokens = 64 B: 768 B.
        let s2 = layout(1, 1, 2, 1, 1, false, DataParallel::Replicated);
        let stage = shard(&deep(), s2).unwrap();
        assert_eq!(kept_bytes_per_layer(&stage), 768.0);
        // 1F1B over 2 stages: the first stage keeps min(2, 8) = 2 micro-batches of its 2 layers.
        assert_eq!(shard_memory_bytes(&stage, s2), memory_bytes(&stage) + 2.0 * 768.0);
        // Interleaved (vp 2): 2 x (1 + 1 / (2 x 2)) = 2.5 micro-batches.
        let v = layout(1, 1, 2, 2, 1, false, DataParallel::Replicated);
        assert_eq!(shard_memory_bytes(&stage, v), memory_bytes(&stage) + 1.5 * 2.0 * 768.0);
        // Fewer micro-batches than stages: all of them (2 here, 4 stages of 1 layer).
        let few = Architecture { micro_batch: Some(4), ..deep() };
        let s4 = layout(1, 1, 4, 1, 1, false, DataParallel::Replicated);
        let st4 = shard(&few, s4).unwrap();
        assert_eq!(in_flight_micro_batches(s4, st4.micro_steps()), 2.0);
    }

    #[test]
    fn sequence_parallel_volumes_memory_and_norm_work_by_hand() {
        // TP 2 on small(): the shard's 16 tokens (batch 4 x seq 4) of d 8 in bf16 (T d = 128
        // elements, 256 B). Each all-reduce becomes a reduce-scatter and an all-gather: the same
        // volume, 10 all-reduces x 2 x 1/2 x 256 B = 2560 B either way.
        let a = small();
        let ic = hw().interconnect().unwrap();
        let tp = layout(1, 2, 1, 1, 1, false, DataParallel::Replicated);
        let sp = layout(1, 2, 1, 1, 1, true, DataParallel::Replicated);
        let sh = shard(&a, tp).unwrap();
        assert_eq!(tp_comm(&sh, &ic, tp).total(), 2560.0);
        assert_eq!(tp_comm(&sh, &ic, sp).total(), 2560.0);
        // Memory: the replicated activations are 4 T d per layer (2 layers) and 3 T d per step:
        // 256 B x 11 = 2816 B, half of it saved.
        assert_eq!(shard_memory_bytes(&sh, tp) - shard_memory_bytes(&sh, sp), 1408.0);
        // Norm rows (t 16, d 8, a 2 B, p 4 B): each forward add+rmsnorm reads 2 a T d + p d = 544
        // and writes 512 (1056 B, 5 x 128 = 640 FLOPs); each backward reads 3 a T d + p d = 800
        // and writes a T d + p d = 288 (1088 B, 1280 FLOPs); two of each per layer; the final
        // norm: 1056 B forward, 544 + 288 = 832 B backward. 2 x 4288 + 1888 = 10464 B and
        // 2 x 3840 + 1920 = 9600 FLOPs, half of them saved.
        let h = hw();
        let (plain, split) = (sharded_step(&a, &h, tp).unwrap(), sharded_step(&a, &h, sp).unwrap());
        assert_eq!(plain.memcpy_bytes - split.memcpy_bytes, 5232.0);
        assert_eq!(plain.work.flops - split.work.flops, 4800.0);
        assert!(split.compute_s < plain.compute_s);
    }

    #[test]
    fn ring_attention_volume_and_work_by_hand() {
        // CP 2 on small(): each chip holds 2 of the 4 tokens of each of 4 sequences (8 tokens).
        // Its K and V chunk: 8 tokens x 2 x kv 4 x 2 B = 128 B; a ring of 2 passes the other
        // chip's chunk (128 B) in the forward, twice in the backward: 3 x 2 layers x 128 B.
        let a = small();
        let ic = hw().interconnect().unwrap();
        let s = layout(1, 1, 1, 1, 2, false, DataParallel::Replicated);
        let sh = shard(&a, s).unwrap();
        assert_eq!(sh.seq_len, 2);
        assert_eq!(cp_comm(&sh, &ic, s).total(), 768.0);
        let full = shard(&Architecture { recompute: Recompute::Full, ..a }, s).unwrap();
        assert_eq!(cp_comm(&full, &ic, s).total(), 4.0 * 2.0 * 128.0);
        // Each chip's queries attend to the whole sequence: together the 2 chips do the
        // attention-score work of one chip holding it all, each half of it (S^2 / 2 per sequence).
        let h = hw();
        let one = sharded_step(&a, &h, Sharding::SINGLE).unwrap();
        let cp = sharded_step(&a, &h, s).unwrap();
        assert_eq!(cp.work.attention_flops, one.work.attention_flops / 2.0);
        assert_eq!(cp.work.matmul_flops, one.work.matmul_flops / 2.0);
        assert_eq!(cp.cp_comm_bytes, 768.0);
    }

    #[test]
    fn zero_stages_volumes_and_memory_by_hand() {
        // The DP 2 x TP 2 shard of small(): 616 parameters (see above), fp32 master weights and
        // moments, bf16 compute copies.
        let a = small();
        let ic = hw().interconnect().unwrap();
        let base = Sharding::new(2, 2, DataParallel::Replicated);
        let sh = shard(&a, base).unwrap();
        let with = |data| Sharding { data, ..base };
        // ZeRO-1: reduce-scatter fp32 gradients (1/2 x 616 x 4 = 1232) and all-gather bf16
        // parameters (1/2 x 616 x 2 = 616).
        assert_eq!(dp_comm(&sh, &ic, with(DataParallel::Optimizer)).total(), 1848.0);
        // ZeRO-2 with micro-batches of 1 (2 micro-steps): the reduce-scatter each micro-step.
        let shm = shard(&Architecture { micro_batch: Some(1), ..a }, base).unwrap();
        assert_eq!(dp_comm(&shm, &ic, with(DataParallel::Gradients)).total(), 2.0 * 1232.0 + 616.0);
        // Memory: ZeRO-1 keeps 1/2 of the two fp32 moments (saves 1/2 x 616 x 8 = 2464 B), ZeRO-2
        // of the gradients too (1/2 x 616 x 12 = 3696 B).
        let dp = shard_memory_bytes(&sh, base);
        assert_eq!(dp - shard_memory_bytes(&sh, with(DataParallel::Optimizer)), 2464.0);
        assert_eq!(dp - shard_memory_bytes(&sh, with(DataParallel::Gradients)), 3696.0);
        // Every ZeRO stage updates half the parameters on each chip: AdamW's 28 B per parameter.
        let h = hw();
        let plain = sharded_step(&a, &h, base).unwrap();
        let z1 = sharded_step(&a, &h, with(DataParallel::Optimizer)).unwrap();
        assert_eq!(plain.memcpy_bytes - z1.memcpy_bytes, 0.5 * 616.0 * 28.0);
    }

    #[test]
    fn top_2_all_to_all_volume_by_hand() {
        // small() as a mixture of 4 GELU experts, top-2, under DP 2 with EP 2: each chip holds 2
        // experts and 2 sequences x 4 tokens = 8 tokens, whose 2 routed copies (16 x d 8 x 2 B =
        // 256 B) are dispatched; half stay on the chip, half (128 B) go to the other. Dispatch and
        // combine forward, both again backward: 4 all-to-alls x 2 layers x 128 B = 1024 B.
        let a = Architecture { experts: 4, top_k: 2, ..small() };
        let ic = hw().interconnect().unwrap();
        let s = Sharding::new(2, 1, DataParallel::Optimizer).with_experts(2).unwrap();
        assert_eq!(s.name(), "ZeRO-1 DP 2 x EP 2");
        let sh = shard(&a, s).unwrap();
        assert_eq!((sh.experts, sh.top_k, sh.batch_size), (2, 2, 2));
        assert_eq!(ep_comm(&sh, &ic, s), Volume { intra_bytes: 1024.0, inter_bytes: 0.0, inter_pod_bytes: 0.0 });
        // Full recomputation dispatches and combines once more: 6 x 2 x 128 B.
        let full = shard(&Architecture { recompute: Recompute::Full, ..a }, s).unwrap();
        assert_eq!(ep_comm(&full, &ic, s).total(), 1536.0);
        // One chip per node: the other chip's half crosses between nodes.
        let apart = Interconnect { chips_per_node: 1, ..ic };
        assert_eq!(ep_comm(&sh, &apart, s).inter_bytes, 1024.0);
        // Each chip holds half the experts: 2 x 2 x 8 x 16 = 512 fewer parameters per layer, and
        // its router is priced at its own experts' width (8 x 2, not 8 x 4: 16 fewer, a 1/ep
        // undercount of the router, well under 1% of any real layer).
        let unsplit = shard(&a, Sharding::new(2, 1, DataParallel::Optimizer)).unwrap();
        assert_eq!(total_params(&unsplit) - total_params(&sh), 2.0 * (512.0 + 16.0));
        // The expert-parallel step adds the all-to-all time.
        let st = sharded_step(&a, &hw(), s).unwrap();
        assert_eq!(st.ep_comm_bytes, 1024.0);
        assert!(st.ep_comm_s > 0.0);
        // ep must divide the experts and dp x cp, and a dense MLP has none to split.
        assert!(check_divides(&Architecture { experts: 6, top_k: 2, ..small() }, Sharding { ep: 4, ..s }).is_err());
        assert!(Sharding::new(2, 1, DataParallel::Optimizer).with_experts(4).is_err());
        // Folded onto the TP chips (DP 2 x TP 2, EP 4): whole experts (d_ff 16, not 8), one per chip.
        let folded = Sharding::new(2, 2, DataParallel::Optimizer).with_experts(4).unwrap();
        assert!(folded.folds_experts());
        let shf = shard(&a, folded).unwrap();
        assert_eq!((shf.experts, shf.d_ff, shf.n_heads), (1, 16, 2));
        assert!(check_divides(&small(), s).unwrap_err().to_string().contains("dense"));
    }

    #[test]
    fn fp8_matmuls_at_their_rate_by_hand() {
        // small()'s dense matmuls, 16 tokens: per layer qkv 2 x 16 x 8 x 16 = 4096, output 2048,
        // MLP 4096 + 4096 (14,336; 2 layers 28,672), logits 2 x 16 x 8 x 16 = 4096: 32,768
        // forward, twice that backward: 98,304 FLOPs.
        let a = small();
        let one = sharded_step(&a, &hw(), Sharding::SINGLE).unwrap();
        assert_eq!(one.work.matmul_flops, 98_304.0);
        // A chip whose FP8 peak is twice its bf16 peak (datasheet: factor 1/2), then a
        // calibration that found 0.7; the linear model prices every FLOP at 1 / 5e14 s.
        let fp8 = Sharding::SINGLE.with_matmul(MatmulPrecision::Fp8);
        assert!(check_layout(&a, &hw(), fp8).unwrap_err().to_string().contains("chip.peak_fp8_flops_per_s"));
        let h = hw().with_matmul_peaks(Some(2.0 * 9.894e14), None, None).unwrap();
        let st = sharded_step(&a, &h, fp8).unwrap();
        let saved = one.compute_s - st.compute_s;
        assert!((saved - 0.5 * 98_304.0 / 5e14).abs() < 1e-9 * saved, "{saved}");
        assert_eq!(st.work.matmul_flops, 98_304.0, "the work reported is the FLOPs executed");
        let calibrated = h.with_matmul_time_factor(MatmulPrecision::Fp8, "calibration.fp8_matmul_time_factor", 0.7).unwrap();
        let saved = one.compute_s - sharded_step(&a, &calibrated, fp8).unwrap().compute_s;
        assert!((saved - 0.3 * 98_304.0 / 5e14).abs() < 1e-9 * saved, "{saved}");
        assert_eq!(calibrated.uncalibrated().matmul_time_factor(MatmulPrecision::Fp8).unwrap(), 0.5);
        assert_eq!(fp8.name(), "single chip, FP8 matmuls");
        // A peak below bf16's is refused; so is a factor out of range.
        assert!(hw().with_matmul_peaks(Some(1e14), None, None).is_err());
        assert!(h.with_matmul_time_factor(MatmulPrecision::Fp8, "f", 0.0).is_err());
    }

    #[test]
    fn best_layout_beats_or_matches_every_plain_sharding_and_fits() {
        // LLaMA-7B at batch 64 in micro-batches of 1 on 16 chips of 8 per node: the layout search
        // covers the plain shardings (PP 1, CP 1), so it is never slower than the best of them.
        let a = Architecture { batch_size: 64, micro_batch: Some(1), ..llama_7b() };
        let net = Network {
            link_bytes_per_s: 4.5e11,
            links_per_chip: 1.0,
            topology: Topology::Torus2d,
            max_chips: 1024,
            chips_per_node: Some(8),
            inter_node_bytes_per_s: Some(5e10),
            chips_per_pod: None,
            inter_pod_bytes_per_s: None,
        };
        let h = Hardware { network: Some(net), ..hw() };
        let (best, priced) = best_layout(&a, &h, 16, &[MatmulPrecision::Bf16]);
        let best = best.unwrap();
        assert!(priced > 20, "{priced}");
        assert!(best.memory_bytes <= h.usable_hbm_bytes());
        let plain = best_sharding(&a, &h, 16).unwrap();
        if plain.1 {
            assert!(best.step_time_s <= plain.0.step_time_s * (1.0 + 1e-12));
        }
        // A format the chip lacks is never chosen.
        let (fp8, _) = best_layout(&a, &h, 16, &[MatmulPrecision::Fp8]);
        assert!(fp8.is_none());
    }
}
