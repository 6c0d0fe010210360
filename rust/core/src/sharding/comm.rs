//! The collectives each parallelism issues and the pipeline's schedule (the volumes and the overlap
//! assumption are in the parent module's documentation).

use super::*;

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
pub(super) fn chips_in_node(ic: &Interconnect, s: Sharding) -> (u32, u32) {
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
