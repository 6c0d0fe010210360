//! Many chips: data parallel (DP), fully sharded data parallel (FSDP, ZeRO-3) and tensor parallel
//! (TP, Megatron-LM) training of one configuration, and the collective communication each needs.
//!
//! A sharding puts `dp x tp` chips on a grid (TP innermost: a TP group sits in one node when it
//! fits). Each chip runs the *per-chip shard* of the model, an [`Architecture`] of its own, so that
//! the operation table, FLOPs, MEMCPY, memory and the hardware's step-time model apply to it
//! unchanged:
//! - data parallel (either kind) gives each chip `batch_size / dp` sequences, run in micro-steps of
//!   `micro_batch` (which must divide them);
//! - tensor parallel (Shoeybi et al. 2019, Megatron-LM) splits the attention heads (Q, K, V and
//!   output projections by head), the MLP's hidden width `d_ff` and the vocabulary (embedding and
//!   logits, vocabulary-parallel) over `tp` chips; the residual stream, norms and their
//!   activations (width `d_model`) are replicated on every TP chip. So the shard has
//!   `n_heads / tp`, `n_kv_heads / tp`, `d_ff / tp` and `ceil(vocab / tp)` (padded).
//! - FSDP (ZeRO stage 3; Rajbhandari et al. 2020; PyTorch FSDP `FULL_SHARD` with mixed precision)
//!   also shards parameters, gradients and AdamW moments over the `dp` chips: each chip updates
//!   `1/dp` of the shard's parameters, holds the gathered weights of two layers at a time (the one
//!   computing and the one prefetched) in compute precision, and the full gradients of one layer
//!   until they are reduce-scattered.
//!
//! Communication per chip per step, ring collectives over the chips' network ([`crate::network`]:
//! an all-gather or a reduce-scatter of a tensor of `S` bytes over `n` chips moves `(n-1)/n S`
//! through each chip's links, an all-reduce twice that, hierarchically when the group spans
//! nodes):
//! - DP: one all-reduce of the gradients per optimizer step (`S = shard params x param_bytes`;
//!   micro-steps accumulate locally, as DDP's `no_sync`);
//! - FSDP: every micro-step all-gathers the weights in the forward pass and again in the backward
//!   pass (`S = shard params x activation_bytes`, the compute precision) and reduce-scatters the
//!   gradients (`S = shard params x param_bytes`);
//! - TP: all-reduce of the activations `S = (tokens per micro-step) x d_model x activation_bytes`,
//!   twice per layer forward (after the attention output and the MLP output projections), twice
//!   backward (the gradients entering the attention and MLP input projections), twice more per
//!   layer when full recomputation runs the forward again, plus one forward (the
//!   vocabulary-parallel embedding) and one backward (the gradient from the vocabulary-parallel
//!   logits), every micro-step. The cross-entropy's per-token max and sum reductions (8 bytes a
//!   token) are left out.
//!
//! Overlap assumption: DP and FSDP collectives are issued layer by layer while other layers
//! compute (DDP gradient buckets, FSDP prefetch, XLA's asynchronous collectives) and overlap the
//! step's computation entirely; TP all-reduces sit between dependent matmuls and add to it:
//! `step = max(compute, dp_comm) + tp_comm`. Collective latency (per message) and the memory
//! traffic of the communication buffers are not modelled; the two groups (DP, TP) share the link
//! budget as if they did not run at the same time.

use crate::architecture::{Architecture, Recompute};
use crate::bilinear::Bilinear;
use crate::flops::flops_per_step;
use crate::hardware::Hardware;
use crate::loss::Law;
use crate::memcpy::{step_and_optimizer_work, StepWork};
use crate::memory::{memory_bytes, static_bytes};
use crate::metrics::{tokens_in_budget, Metrics};
use crate::network::{Interconnect, Volume};
use crate::params::{non_embedding_params, params_per_layer, total_params};
use crate::step_time::StepTimeParts;

/// How the data-parallel dimension treats parameters, gradients and optimizer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataParallel {
    /// Every chip keeps all of them (DP).
    Replicated,
    /// Sharded over the data-parallel chips (FSDP / ZeRO-3).
    Sharded,
}

/// A way to spread training over `dp x tp` chips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sharding {
    pub dp: u32,
    pub tp: u32,
    pub data: DataParallel,
}

impl Sharding {
    pub const SINGLE: Sharding = Sharding { dp: 1, tp: 1, data: DataParallel::Replicated };

    pub fn chips(&self) -> u32 {
        self.dp * self.tp
    }

    /// Data parallel over `chips` chips (`sharded`: FSDP), or one chip.
    pub fn data_parallel(chips: u32, sharded: bool) -> Sharding {
        Sharding { dp: chips, tp: 1, data: if sharded && chips > 1 { DataParallel::Sharded } else { DataParallel::Replicated } }
    }

    /// e.g. "DP 8", "FSDP 4 x TP 2", "TP 8", "single chip".
    pub fn name(&self) -> String {
        let data = match self.data {
            DataParallel::Replicated => "DP",
            DataParallel::Sharded => "FSDP",
        };
        match (self.dp, self.tp) {
            (1, 1) => "single chip".to_string(),
            (dp, 1) => format!("{data} {dp}"),
            (1, tp) => format!("TP {tp}"),
            (dp, tp) => format!("{data} {dp} x TP {tp}"),
        }
    }
}

/// Every sharding of `chips` chips: each divisor `tp` of `chips` with `dp = chips / tp`, DP before
/// FSDP (FSDP over one chip is DP), fewer TP chips first. That order breaks ties.
pub fn shardings(chips: u32) -> Vec<Sharding> {
    let mut out = Vec::new();
    for tp in (1..=chips).filter(|t| chips.is_multiple_of(*t)) {
        let dp = chips / tp;
        out.push(Sharding { dp, tp, data: DataParallel::Replicated });
        if dp > 1 {
            out.push(Sharding { dp, tp, data: DataParallel::Sharded });
        }
    }
    out
}

/// The architecture one chip runs (see the module docs), or `None` when `sharding` does not divide
/// it: `dp` must divide `batch_size` (and the micro-batch the per-chip batch), `tp` must divide
/// `n_kv_heads` (hence `n_heads`) and `d_ff`.
pub fn shard(arch: &Architecture, s: Sharding) -> Option<Architecture> {
    if s.dp == 0 || s.tp == 0 {
        return None;
    }
    if !arch.batch_size.is_multiple_of(s.dp) || !arch.n_kv_heads.is_multiple_of(s.tp) || !arch.d_ff.is_multiple_of(s.tp) {
        return None;
    }
    if arch.micro_batch.is_some_and(|mb| !(arch.batch_size / s.dp).is_multiple_of(mb)) {
        return None;
    }
    Some(Architecture {
        batch_size: arch.batch_size / s.dp,
        n_heads: arch.n_heads / s.tp,
        n_kv_heads: arch.n_kv_heads / s.tp,
        d_ff: arch.d_ff / s.tp,
        vocab_size: arch.vocab_size.div_ceil(s.tp),
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
    /// The chip's step without communication, by the hardware's step-time model (s).
    pub compute_s: f64,
    /// DP all-reduce or FSDP gathers and reduce-scatter (s), overlapped with `compute_s`.
    pub dp_comm_s: f64,
    /// TP all-reduces (s), not overlapped.
    pub tp_comm_s: f64,
    /// Bytes each chip moves per step in DP/FSDP collectives and in TP collectives (inside its
    /// node and between nodes together).
    pub dp_comm_bytes: f64,
    pub tp_comm_bytes: f64,
    /// `max(compute_s, dp_comm_s) + tp_comm_s` (s).
    pub step_time_s: f64,
    pub bound: Bound,
    /// Where `compute_s` goes (moving bytes, computing, fixed overheads), by the step-time model.
    pub parts: StepTimeParts,
    /// The chip's work per step (its shard's, with FSDP's 1/dp share of the optimizer update):
    /// what `compute_s` prices.
    pub work: StepWork,
    /// Micro-steps per optimizer step on each chip (`per-chip batch / micro_batch`).
    pub micro_steps: f64,
}

/// Chips of one TP group (`tp` adjacent chips) in a node of `ic`, and of one DP group (strided by
/// `tp`).
fn chips_in_node(ic: &Interconnect, s: Sharding) -> (u32, u32) {
    let k = ic.chips_per_node.max(1);
    let tp = s.tp.min(k);
    let dp = if s.tp >= k { 1 } else { (k / s.tp).min(s.dp) };
    (tp, dp)
}

/// Bytes one chip moves per step in the data-parallel collectives (see the module docs).
pub fn dp_comm(shard: &Architecture, ic: &Interconnect, s: Sharding) -> Volume {
    if s.dp <= 1 {
        return Volume::default();
    }
    let params = total_params(shard);
    let per_node = chips_in_node(ic, s).1;
    match s.data {
        DataParallel::Replicated => ic.all_reduce(params * shard.precision.param_bytes, s.dp, per_node),
        DataParallel::Sharded => {
            let gather = ic.all_gather(params * shard.precision.activation_bytes, s.dp, per_node);
            let scatter = ic.all_gather(params * shard.precision.param_bytes, s.dp, per_node);
            gather.scaled(2.0).plus(scatter).scaled(shard.micro_steps())
        }
    }
}

/// Bytes one chip moves per step in the tensor-parallel all-reduces (see the module docs).
pub fn tp_comm(shard: &Architecture, ic: &Interconnect, s: Sharding) -> Volume {
    if s.tp <= 1 {
        return Volume::default();
    }
    let per = shard.tokens_per_micro_step() * f64::from(shard.d_model) * shard.precision.activation_bytes;
    let l = f64::from(shard.n_layers);
    let recomputed = if shard.recompute == Recompute::Full { 2.0 * l } else { 0.0 };
    ic.all_reduce(per, s.tp, chips_in_node(ic, s).0).scaled((4.0 * l + 2.0 + recomputed) * shard.micro_steps())
}

/// Peak memory of one chip running `sh`, the shard of sharding `s` (bytes): the shard's own
/// memory; with FSDP, 1/dp of its parameters, gradients and moments plus two layers of gathered
/// weights in compute precision (computing, prefetched) and one layer of gradients not yet
/// reduce-scattered.
fn shard_memory_bytes(sh: &Architecture, s: Sharding) -> f64 {
    let memory = memory_bytes(sh);
    if s.data == DataParallel::Sharded && s.dp > 1 {
        let layer = params_per_layer(sh);
        let p = sh.precision;
        memory - (1.0 - 1.0 / f64::from(s.dp)) * static_bytes(sh) + layer * (2.0 * p.activation_bytes + p.param_bytes)
    } else {
        memory
    }
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

/// The step of `arch` under sharding `s`, or `None` if `s` does not divide it. Communication
/// goes over the hardware's network ([`Hardware::interconnect`]; callers check the chip count
/// with [`Hardware::check_chips`], so a sharding over several chips has one).
pub fn sharded_step(arch: &Architecture, hw: &Hardware, s: Sharding) -> Option<ShardedStep> {
    let sh = shard(arch, s)?;
    Some(step_of_shard(&sh, s, hw, &shard_cost(&sh, hw)))
}

/// The step of one chip running `sh`, the shard of sharding `s`, whose own cost is `cost`
/// ([`shard_cost`]): FSDP's share of the optimizer update, the collectives, the overlap rule
/// and the bound (see the module docs).
pub fn step_of_shard(sh: &Architecture, s: Sharding, hw: &Hardware, cost: &ShardCost) -> ShardedStep {
    let mut work = cost.work;
    let mut compute_s = cost.compute_s;
    let parts = cost.parts;
    let (mut memory_s, compute_only_s) = (parts.memory_s, parts.compute_s);
    let memory = shard_memory_bytes(sh, s);
    if s.data == DataParallel::Sharded && s.dp > 1 {
        // Each chip updates 1/dp of the parameters (AdamW is memory-bound).
        let others = 1.0 - 1.0 / f64::from(s.dp);
        let saved_bytes = others * cost.optimizer.bytes;
        let saved_s = saved_bytes * hw.step_time.seconds_per_parameter_byte();
        work.bytes -= saved_bytes;
        work.flops -= others * cost.optimizer.flops;
        compute_s -= saved_s;
        memory_s -= saved_s;
    }
    let (dp, tp) = match hw.interconnect() {
        Some(ic) => (dp_comm(sh, &ic, s), tp_comm(sh, &ic, s)),
        None => (Volume::default(), Volume::default()),
    };
    let seconds = |v: Volume| hw.interconnect().map_or(if v.total() > 0.0 { f64::INFINITY } else { 0.0 }, |ic| ic.seconds(v));
    let (dp_comm_s, tp_comm_s) = (seconds(dp), seconds(tp));
    let (dp_bytes, tp_bytes) = (dp.total(), tp.total());
    let step_time_s = compute_s.max(dp_comm_s) + tp_comm_s;
    let exposed_comm = (dp_comm_s - compute_s).max(0.0) + tp_comm_s;
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
        dp_comm_s,
        tp_comm_s,
        dp_comm_bytes: dp_bytes,
        tp_comm_bytes: tp_bytes,
        step_time_s,
        bound,
        parts: StepTimeParts { memory_s, ..parts },
        work,
        micro_steps: sh.micro_steps(),
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
    let params = total_params(arch);
    let non_embedding = non_embedding_params(arch);
    let base =
        Metrics { params, non_embedding_params: non_embedding, flops_per_step: flops_per_step(arch), ..Metrics::default() };
    let (step, fits) = match best_sharding(arch, hw, chips) {
        Some(chosen) => chosen,
        None => {
            let inf = f64::INFINITY;
            return (Metrics { memory_bytes: inf, step_time_s: inf, loss: inf, fits_memory: false, ..base }, None);
        }
    };
    let (steps, tokens) = tokens_in_budget(budget_s, step.step_time_s, arch.tokens_per_step());
    let (loss, effective_tokens) = law.loss_and_tokens(&crate::loss::LossInput::of(arch, tokens, unique_tokens));
    let m = Metrics {
        memcpy_bytes_per_step: step.memcpy_bytes,
        memory_bytes: step.memory_bytes,
        fits_memory: fits,
        step_time_s: step.step_time_s,
        steps,
        tokens,
        effective_tokens,
        loss,
        ..base
    };
    (m, Some(step))
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
        let s = Sharding { dp: 2, tp: 2, data: DataParallel::Replicated };
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
        assert!(shard(&a, Sharding { dp: 3, tp: 1, data: DataParallel::Replicated }).is_none());
        assert!(shard(&a, Sharding { dp: 1, tp: 4, data: DataParallel::Replicated }).is_none());
    }

    #[test]
    fn step_time_adds_exposed_communication() {
        let a = small();
        let s = Sharding { dp: 2, tp: 2, data: DataParallel::Replicated };
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
        let ic = Interconnect { intra_bytes_per_s: 100.0, chips_per_node: 8, inter_bytes_per_s: 10.0 };
        let v = ic.all_reduce(1600.0, 16, 8);
        assert_eq!(v, Volume { intra_bytes: 2800.0, inter_bytes: 200.0 });
        assert_eq!(ic.seconds(v), 48.0);
        // DP 16 x TP 1 puts 8 DP members in each node; DP 8 x TP 2 puts 4 (TP pairs are adjacent);
        // TP 16 spans both nodes with 8 of its chips in each.
        assert_eq!(chips_in_node(&ic, Sharding { dp: 16, tp: 1, data: DataParallel::Replicated }), (1, 8));
        assert_eq!(chips_in_node(&ic, Sharding { dp: 8, tp: 2, data: DataParallel::Replicated }), (2, 4));
        assert_eq!(chips_in_node(&ic, Sharding { dp: 1, tp: 16, data: DataParallel::Replicated }), (8, 1));
    }

    #[test]
    fn fsdp_makes_a_model_fit_that_dp_cannot() {
        // LLaMA-7B: 6.74e9 params x 16 B of params, grads and moments = 108 GB > 72 GB usable.
        let a = Architecture { batch_size: 8, ..llama_7b() };
        let h = hw();
        assert!(!best_sharding(&a, &h, 1).unwrap().1);
        let dp = sharded_step(&a, &h, Sharding { dp: 8, tp: 1, data: DataParallel::Replicated }).unwrap();
        let fsdp = sharded_step(&a, &h, Sharding { dp: 8, tp: 1, data: DataParallel::Sharded }).unwrap();
        assert!(dp.memory_bytes > h.usable_hbm_bytes() && fsdp.memory_bytes < h.usable_hbm_bytes());
        let (best, fits) = best_sharding(&a, &h, 8).unwrap();
        assert!(fits);
        assert_ne!(best.sharding, dp.sharding, "{}", best.sharding.name());
        assert!(best.memory_bytes <= h.usable_hbm_bytes());
        // The step on each chip is shorter than the whole batch on one (imaginary, big) chip.
        let big = Hardware { hbm_bytes: 1e15, ..h };
        assert!(best.step_time_s < evaluate(&a, &big, 1.0, &HOFFMANN).step_time_s);
    }
}
