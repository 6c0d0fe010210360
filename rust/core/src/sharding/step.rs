//! A sharded configuration's memory, work and step time, and the search for the layout that steps
//! fastest (see the parent module's documentation).

use super::*;

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
pub(super) fn shard_memory_bytes(sh: &Architecture, s: Sharding) -> f64 {
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
