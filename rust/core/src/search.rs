//! Frontier search: enumerate the Cartesian product of a search space, evaluate every configuration
//! in parallel, and keep only what the answer needs (counts, top K, Pareto set), so memory stays
//! flat however large the space is.

use rayon::prelude::*;

use crate::architecture::{Architecture, Attention, Mlp, Precision, Recompute, MAX_DIM};
use crate::error::{Error, Result};
use crate::hardware::Hardware;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::batch::max_loss_for_tokens_per_step;
use crate::bilinear::Bilinear;
use crate::budget::{best_count, Budget, Chips, ResolvedBudget};
use crate::loss::Law;
use crate::metrics::Metrics;
use crate::metrics::{evaluate_with_data, tokens_in_budget};
use crate::params::{non_embedding_params, total_params};
use crate::pareto::{pareto_front, Candidate, ParetoBuilder};
use crate::predict::check_unique_tokens;
use crate::sharding::{evaluate_sharded, fit_shardings, sharded_step, shardings, ShardedStep, Sharding, ShardingFit};

/// Most candidates a search lists (`top_k`).
pub const MAX_TOP_K: usize = 100_000;

/// `top_k` as given (any integer) as a count, when in [1, [`MAX_TOP_K`]].
pub fn top_k(top_k: i128) -> Result<usize> {
    crate::error::integer_in("top_k", top_k, 1, MAX_TOP_K as i128)
}

/// Largest `d_ff` rounding multiple a space accepts.
pub const MAX_D_FF_MULTIPLE: u32 = 4096;

/// A `d_ff` rounding multiple as given (any integer), when in [1, [`MAX_D_FF_MULTIPLE`]] (1: the
/// exact ratio).
pub fn d_ff_multiple(v: i128) -> Result<u32> {
    crate::error::integer_in("d_ff_multiple", v, 1, MAX_D_FF_MULTIPLE.into())
}

/// `top_k` in [1, [`MAX_TOP_K`]].
pub fn check_top_k(k: usize) -> Result<()> {
    top_k(i128::try_from(k).unwrap_or(i128::MAX)).map(|_| ())
}

/// Most configurations one search agrees to enumerate (about two minutes at 1e8 configs/s).
pub const MAX_SPACE_SIZE: u64 = 10_000_000_000;

/// Configurations per parallel work item (and per Pareto pre-reduction).
const CHUNK: u64 = 1 << 16;

/// The axes of a search space; the space is their Cartesian product. `n_heads = d_model / head_dim`
/// and `n_kv_heads = n_heads / kv_group`; `d_ff = round(ffn_mult x d_model)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpace {
    pub d_model: Vec<u32>,
    pub n_layers: Vec<u32>,
    pub head_dim: Vec<u32>,
    /// Query heads per key/value head (1 = multi-head attention).
    pub kv_group: Vec<u32>,
    pub mlp: Vec<Mlp>,
    pub ffn_mult: Vec<f64>,
    pub attention: Vec<Attention>,
    pub tied_embeddings: Vec<bool>,
    pub vocab_size: Vec<u32>,
    pub seq_len: Vec<u32>,
    pub recompute: Vec<Recompute>,
    /// Sequences per micro-step on one chip (`None`: the whole per-chip batch at once).
    pub micro_batch: Vec<Option<u32>>,
    pub batch_size: Vec<u32>,
    pub precision: Precision,
    /// `d_ff` is `ffn_mult x d_model` rounded to the nearest multiple of this (at least one
    /// multiple): matrix units run widths in multiples of 64 far better than odd ones (NVIDIA's
    /// matmul guide asks multiples of 64 for bf16 on A100/H100; TPUs tile by 128). 1: the exact
    /// ratio rounded to an integer.
    pub d_ff_multiple: u32,
}

/// The first value that occurs again in `values`, compared by `key` (linear time: axes may hold a
/// million values).
fn first_repeat_by<T: Copy, K: Eq + std::hash::Hash>(values: &[T], key: impl Fn(T) -> K) -> Option<T> {
    let mut seen = std::collections::HashSet::with_capacity(values.len());
    values.iter().copied().find(|&v| !seen.insert(key(v)))
}

/// The error of an axis that lists `value` twice (each configuration would be evaluated twice).
fn repeated(axis: &str, value: impl std::fmt::Display) -> Error {
    Error::invalid(axis, format!("{value} twice"), "distinct values (a repeated value repeats configurations)")
}

/// Default [`SearchSpace::d_ff_multiple`].
pub const D_FF_MULTIPLE: u32 = 64;

impl Default for SearchSpace {
    /// The default space: 64 widths x 48 depths x 2 head sizes x 2 KV groupings x 2 MLPs x
    /// 2 MLP ratios x 2 attention kinds x 2 embedding tyings x 1 vocab x 4 context lengths x
    /// 2 recomputations (none, full) x 4 micro-batches (the whole batch, 1, 4, 16) x 10 batch
    /// sizes (8 to 4096 sequences: Step Law's optimal batch reaches 2,000 sequences of 2048 tokens
    /// near 2e11 training tokens) = 62,914,560 configurations.
    fn default() -> Self {
        SearchSpace {
            d_model: (1..=64).map(|i| 128 * i).collect(),
            n_layers: (1..=48).map(|i| 2 * i).collect(),
            head_dim: vec![64, 128],
            kv_group: vec![1, 4],
            mlp: vec![Mlp::Gelu, Mlp::Swiglu],
            ffn_mult: vec![8.0 / 3.0, 4.0],
            attention: vec![Attention::Flash, Attention::Materialized],
            tied_embeddings: vec![false, true],
            vocab_size: vec![32_000],
            seq_len: vec![512, 1024, 2048, 4096],
            recompute: vec![Recompute::None, Recompute::Full],
            micro_batch: vec![None, Some(1), Some(4), Some(16)],
            batch_size: (3..=12).map(|k| 1 << k).collect(),
            precision: Precision::default(),
            d_ff_multiple: D_FF_MULTIPLE,
        }
    }
}

impl SearchSpace {
    /// Axis lengths, outermost first (the enumeration order). `n_layers` and `batch_size` are the
    /// two innermost axes: every metric is bilinear in them, which the search kernel exploits.
    fn radices(&self) -> [u64; 13] {
        [
            self.d_model.len(),
            self.head_dim.len(),
            self.kv_group.len(),
            self.mlp.len(),
            self.ffn_mult.len(),
            self.attention.len(),
            self.tied_embeddings.len(),
            self.vocab_size.len(),
            self.seq_len.len(),
            self.recompute.len(),
            self.micro_batch.len(),
            self.n_layers.len(),
            self.batch_size.len(),
        ]
        .map(|n| n as u64)
    }

    /// Configurations per shape block (`n_layers x batch_size` values).
    #[inline]
    fn block_len(&self) -> u64 {
        (self.n_layers.len() * self.batch_size.len()) as u64
    }

    /// An integer axis given as any integers, each checked ([`crate::architecture::dim`]).
    pub fn int_axis(field: &str, values: &[i64]) -> Result<Vec<u32>> {
        values.iter().map(|&v| crate::architecture::dim(field, v)).collect()
    }

    /// Number of configurations, as f64 so an absurd space cannot overflow.
    pub fn size_f64(&self) -> f64 {
        self.radices().iter().map(|&n| n as f64).product()
    }

    /// Checks every axis: non-empty, values in range, total size within [`MAX_SPACE_SIZE`].
    pub fn validate(&self) -> Result<u64> {
        let int_axes: [(&str, &Vec<u32>); 7] = [
            ("d_model", &self.d_model),
            ("n_layers", &self.n_layers),
            ("head_dim", &self.head_dim),
            ("kv_group", &self.kv_group),
            ("vocab_size", &self.vocab_size),
            ("seq_len", &self.seq_len),
            ("batch_size", &self.batch_size),
        ];
        for (axis, values) in int_axes {
            if values.is_empty() {
                return Err(Error::EmptySpace { axis: axis.to_owned() });
            }
            if let Some(&v) = values.iter().find(|&&v| !crate::architecture::in_dim_range(i64::from(v))) {
                return Err(Error::invalid(axis, v, &format!("integers in [1, {MAX_DIM}]")));
            }
            if let Some(v) = first_repeat_by(values, |v| v) {
                return Err(repeated(axis, v));
            }
        }
        if let Some(&Some(mb)) =
            self.micro_batch.iter().find(|m| m.is_some_and(|v| !crate::architecture::in_dim_range(i64::from(v))))
        {
            return Err(Error::invalid("micro_batch", mb, &format!("integers in [1, {MAX_DIM}] (or none: the whole batch)")));
        }
        for (axis, n) in [
            ("recompute", self.recompute.len()),
            ("micro_batch", self.micro_batch.len()),
            ("mlp", self.mlp.len()),
            ("ffn_mult", self.ffn_mult.len()),
            ("attention", self.attention.len()),
            ("tied_embeddings", self.tied_embeddings.len()),
        ] {
            if n == 0 {
                return Err(Error::EmptySpace { axis: axis.to_owned() });
            }
        }
        let repeats = [
            ("recompute", first_repeat_by(&self.recompute, |v| v.name()).map(|v| v.name().to_owned())),
            ("micro_batch", first_repeat_by(&self.micro_batch, |v| v).map(|v| v.map_or("none".to_owned(), |m| m.to_string()))),
            ("mlp", first_repeat_by(&self.mlp, |v| v.name()).map(|v| v.name().to_owned())),
            ("ffn_mult", first_repeat_by(&self.ffn_mult, f64::to_bits).map(crate::error::number)),
            ("attention", first_repeat_by(&self.attention, |v| v.name()).map(|v| v.name().to_owned())),
            ("tied_embeddings", first_repeat_by(&self.tied_embeddings, |v| v).map(|v| v.to_string())),
        ];
        if let Some((axis, Some(v))) = repeats.into_iter().find(|(_, r)| r.is_some()) {
            return Err(repeated(axis, v));
        }
        d_ff_multiple(self.d_ff_multiple.into())?;
        if let Some(&m) = self.ffn_mult.iter().find(|&&m| !(m.is_finite() && m > 0.0 && m <= 64.0)) {
            return Err(Error::invalid_number("ffn_mult", m, "ratios d_ff / d_model in (0, 64]"));
        }
        self.precision.validate()?;
        let size = self.size_f64();
        if size > MAX_SPACE_SIZE as f64 {
            return Err(Error::SpaceTooLarge { size, limit: MAX_SPACE_SIZE });
        }
        Ok(size as u64)
    }

    /// The configuration at `index` in enumeration order, or `None` when it is malformed
    /// (`head_dim` does not divide `d_model`, `kv_group` does not divide the head count, `d_ff`
    /// rounds to 0, or the micro-batch does not divide the batch). `index` must be below the
    /// space's size.
    pub fn config_at(&self, index: u64) -> Option<Architecture> {
        let nb = self.batch_size.len() as u64;
        let j = index % self.block_len();
        let mut a = self.shape_at(index / self.block_len())?;
        a.n_layers = self.n_layers[(j / nb) as usize];
        a.batch_size = self.batch_size[(j % nb) as usize];
        if a.micro_batch.is_some_and(|mb| !a.batch_size.is_multiple_of(mb)) {
            return None;
        }
        Some(a)
    }

    /// The configuration of shape block `shape` with the first depth and batch, or `None` when the
    /// shape is malformed (then every configuration of the block is).
    fn shape_at(&self, shape: u64) -> Option<Architecture> {
        self.shape_with_digits(shape).map(|(a, _)| a)
    }

    /// [`SearchSpace::shape_at`] and the position of each of its values on the 11 outer axes
    /// (in [`SearchSpace::radices`] order), so that no caller searches an axis for a value.
    fn shape_with_digits(&self, mut shape: u64) -> Option<(Architecture, [usize; 11])> {
        let r = self.radices();
        let mut digit = [0usize; 11];
        for axis in (0..11).rev() {
            digit[axis] = (shape % r[axis]) as usize;
            shape /= r[axis];
        }
        let d_model = self.d_model[digit[0]];
        let head_dim = self.head_dim[digit[1]];
        let kv_group = self.kv_group[digit[2]];
        if !d_model.is_multiple_of(head_dim) {
            return None;
        }
        let n_heads = d_model / head_dim;
        if !n_heads.is_multiple_of(kv_group) {
            return None;
        }
        let d_ff = ffn_width(self.ffn_mult[digit[4]], d_model, self.d_ff_multiple);
        if !(1.0..=f64::from(MAX_DIM)).contains(&d_ff) {
            return None;
        }
        let arch = Architecture {
            d_model,
            n_layers: self.n_layers[0],
            n_heads,
            n_kv_heads: n_heads / kv_group,
            head_dim,
            d_ff: d_ff as u32,
            mlp: self.mlp[digit[3]],
            attention: self.attention[digit[5]],
            tied_embeddings: self.tied_embeddings[digit[6]],
            seq_len: self.seq_len[digit[8]],
            batch_size: self.batch_size[0],
            vocab_size: self.vocab_size[digit[7]],
            precision: self.precision,
            recompute: self.recompute[digit[9]],
            micro_batch: self.micro_batch[digit[10]],
        };
        Some((arch, digit))
    }
}

/// `ffn_mult x d_model` rounded to the nearest multiple of `multiple` (at least one multiple);
/// see [`SearchSpace::d_ff_multiple`]. E.g. 8/3 x 3584 = 9557.3 -> 9536 (149 x 64).
pub fn ffn_width(ffn_mult: f64, d_model: u32, multiple: u32) -> f64 {
    let m = f64::from(multiple.max(1));
    ((ffn_mult * f64::from(d_model) / m).round() * m).max(m)
}

/// Modelling guards: keep the search inside the range where its laws were measured. The default
/// law prices shape and batch itself (its terms decide depth and batch); the guards are what a
/// law without those terms needs ([`Guards::for_law`]), or a user's explicit limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guards {
    /// Accepted `d_model / n_layers`, inclusive (default [`Guards::for_law`]: every shape for a law
    /// with a shape term, Kaplan's 20-200 for one without).
    pub aspect_ratio_min: f64,
    pub aspect_ratio_max: f64,
    /// Cap on tokens per step (`None`: no cap beyond [`Guards::critical_batch`]).
    pub max_tokens_per_step: Option<f64>,
    /// Without a cap, Kaplan's critical batch at the configuration's own predicted loss caps the
    /// tokens per step ([`crate::batch::critical_batch_tokens`]): a law without the batch term
    /// would otherwise take the largest batch for free.
    pub critical_batch: bool,
}

impl Default for Guards {
    /// The plain law's guards: Kaplan's 20-200 and the critical batch.
    fn default() -> Self {
        let (lo, hi) = crate::loss::KAPLAN_ASPECT_RANGE;
        Guards { aspect_ratio_min: lo, aspect_ratio_max: hi, max_tokens_per_step: None, critical_batch: true }
    }
}

/// An aspect-ratio guard that admits every shape (d_model / n_layers from 1e-6 to 1e9).
pub const NO_ASPECT_GUARD: (f64, f64) = (1e-6, 1e9);

impl Guards {
    /// The default guards for `law`: with a shape term every shape is a candidate (the term prices
    /// it; outside the shapes it was measured on the prediction is flagged, not refused), without
    /// one Kaplan's shape-insensitive 20-200; with the batch term no cap on tokens per step,
    /// without it Kaplan's critical batch.
    pub fn for_law(law: &Law) -> Guards {
        let (lo, hi) = if law.shape.is_some() { NO_ASPECT_GUARD } else { crate::loss::KAPLAN_ASPECT_RANGE };
        Guards { aspect_ratio_min: lo, aspect_ratio_max: hi, max_tokens_per_step: None, critical_batch: law.batch.is_none() }
    }

    /// Whether the tokens-per-step guard needs the configuration's loss.
    #[inline]
    fn needs_loss(&self) -> bool {
        self.max_tokens_per_step.is_none() && self.critical_batch
    }

    /// The tokens-per-step guard: `tokens_per_step <= cap`, or with no cap and the critical batch
    /// on, Kaplan's critical batch at the configuration's predicted `loss` (as `loss <=
    /// max_loss`, see [`max_loss_for_tokens_per_step`]). `max_loss` is that bound for this
    /// `tokens_per_step`.
    #[inline]
    fn admits(&self, tokens_per_step: f64, loss: f64, max_loss: f64) -> bool {
        match self.max_tokens_per_step {
            Some(cap) => tokens_per_step <= cap,
            None => !self.critical_batch || loss <= max_loss,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let (lo, hi) = (self.aspect_ratio_min, self.aspect_ratio_max);
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
            return Err(Error::invalid(
                "aspect_ratio",
                format!("{}:{}", crate::error::number(lo), crate::error::number(hi)),
                "MIN:MAX with 0 < MIN <= MAX, finite",
            ));
        }
        if let Some(cap) = self.max_tokens_per_step {
            if !(cap.is_finite() && cap >= 1.0) {
                return Err(Error::invalid_number("max_tokens_per_step", cap, "a finite number >= 1"));
            }
        }
        Ok(())
    }
}

/// Everything a search needs besides the space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchParams {
    pub hardware: Hardware,
    /// Wall-clock training budget. Unit: seconds.
    pub budget_s: f64,
    pub law: Law,
    pub guards: Guards,
    /// How many of the best configurations to return (at least 1).
    pub top_k: usize,
    /// Unique training tokens available (`None`: unlimited). Beyond one epoch the loss law sees
    /// Muennighoff et al. 2023's effective tokens.
    pub unique_tokens: Option<f64>,
    /// Chips to train on. With more than one, every configuration gets its fastest sharding that
    /// fits in one chip's memory ([`crate::sharding::best_sharding`]) over the hardware's network.
    pub chips: u32,
}

impl SearchParams {
    pub fn validate(&self) -> Result<()> {
        if !(self.budget_s.is_finite() && self.budget_s > 0.0) {
            return Err(Error::invalid("budget_s", self.budget_s, "a finite number of seconds > 0"));
        }
        check_unique_tokens(self.unique_tokens)?;
        check_top_k(self.top_k)?;
        self.hardware.check_chips(self.chips)?;
        self.hardware.validate()?;
        self.law.validate()?;
        self.guards.validate()
    }

    /// Every metric of `arch` under these parameters: on one chip, or on `chips` chips with the
    /// fastest sharding that fits (then memory is per chip; see [`evaluate_sharded`]).
    pub fn evaluate(&self, arch: &Architecture) -> Metrics {
        self.evaluate_with_sharding(arch).0
    }

    /// [`SearchParams::evaluate`] and the sharded step it chose (the least-memory one when none
    /// fits; `None` on one chip or when no sharding divides `arch`).
    pub fn evaluate_with_sharding(&self, arch: &Architecture) -> (Metrics, Option<ShardedStep>) {
        if self.chips > 1 {
            evaluate_sharded(arch, &self.hardware, self.chips, self.budget_s, &self.law, self.unique_tokens)
        } else {
            (evaluate_with_data(arch, &self.hardware, self.budget_s, &self.law, self.unique_tokens), None)
        }
    }
}

/// Why configurations were dropped, with the figures that explain an empty answer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rejections {
    /// head_dim does not divide d_model, kv_group does not divide n_heads.
    pub malformed: u64,
    /// d_model / n_layers outside the guard range.
    pub aspect_ratio: u64,
    /// Needs more than the usable HBM.
    pub memory: u64,
    /// Not one step fits in the budget.
    pub budget: u64,
    /// Tokens per step above the cap.
    pub batch_cap: u64,
    /// No sharding over the chips divides the configuration (batch, heads, d_ff).
    pub unshardable: u64,
    /// Least memory among configurations dropped for memory (bytes; +inf if none).
    pub min_memory_bytes: f64,
    /// Shortest step among configurations dropped for the budget (s; +inf if none).
    pub min_step_time_s: f64,
}

impl Rejections {
    fn empty() -> Self {
        Rejections { min_memory_bytes: f64::INFINITY, min_step_time_s: f64::INFINITY, ..Default::default() }
    }
    fn merge(&mut self, o: &Self) {
        self.malformed += o.malformed;
        self.aspect_ratio += o.aspect_ratio;
        self.memory += o.memory;
        self.budget += o.budget;
        self.batch_cap += o.batch_cap;
        self.unshardable += o.unshardable;
        self.min_memory_bytes = self.min_memory_bytes.min(o.min_memory_bytes);
        self.min_step_time_s = self.min_step_time_s.min(o.min_step_time_s);
    }
}

/// The reduced result of searching part of a space; partials merge associatively.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    pub evaluated: u64,
    pub feasible: u64,
    pub rejected: Rejections,
    /// Best `top_k` by [`Candidate::rank_cmp`], sorted.
    pub top: Vec<Candidate>,
    /// Pareto set over (loss, params) of the feasible configurations seen.
    pub pareto: Vec<Candidate>,
}

impl Partial {
    pub fn empty() -> Self {
        Partial { evaluated: 0, feasible: 0, rejected: Rejections::empty(), top: Vec::new(), pareto: Vec::new() }
    }

    pub fn merge(mut self, other: Partial, top_k: usize) -> Partial {
        self.evaluated += other.evaluated;
        self.feasible += other.feasible;
        self.rejected.merge(&other.rejected);
        self.top.extend(other.top);
        self.top.sort_unstable_by(Candidate::rank_cmp);
        self.top.truncate(top_k);
        self.pareto.extend(other.pareto);
        self.pareto = pareto_front(self.pareto);
        self
    }
}

/// Searches the index range `[start, end)` of `space` in parallel. Callers that want progress
/// reports or cancellation call this on successive ranges and [`Partial::merge`] the results.
///
/// Same answer as [`search_range_reference`] (which evaluates every configuration on its own,
/// under every sharding of the chips), computed faster. Within one shape block (all axes fixed
/// but `n_layers` L and `batch_size` B) every metric of every sharding is bilinear in (L, B)
/// ([`crate::bilinear`]): the kernel fits, once per shape, the parameters and, for each sharding
/// that divides the shape's heads and `d_ff`, its per-chip memory, compute and collectives
/// ([`fit_shardings`]; one op-table sum per distinct shard, shared by the data-parallel degrees
/// of a `tp`). Per depth it hoists the parameter term of the loss and each sharding's
/// coefficients; per configuration it picks the fastest sharding that divides the batch and fits
/// (a few multiply-adds each) and reaches the loss only if the configuration fits and finishes a
/// step. The loss's data term is first computed to a relative 1e-11 without a libm call
/// ([`Law::data_term_approx`]); the exact term is computed wherever a decision (the critical-batch
/// guard, the top K, the best batch of a depth for the Pareto set) is within that error, and for
/// every candidate kept. Rounding may differ from direct evaluation in the last bits (relative
/// 1e-15); reported metrics are always recomputed directly ([`rows`]).
///
/// Step-time models that are not linear in the work (the two maxima of the rooflines) are not
/// bilinear: on one chip the kernel prices each configuration with the model itself, on many
/// chips the search runs the reference path.
pub fn search_range(space: &SearchSpace, params: &SearchParams, start: u64, end: u64) -> Partial {
    if params.chips > 1 && !params.hardware.step_time.is_linear() {
        let n_chunks = (end.saturating_sub(start)).div_ceil(CHUNK / 16);
        return (0..n_chunks)
            .into_par_iter()
            .map(|c| {
                let lo = start + c * (CHUNK / 16);
                search_range_reference(space, params, lo, (lo + CHUNK / 16).min(end))
            })
            .reduce(Partial::empty, |a, b| a.merge(b, params.top_k));
    }
    let n_chunks = (end.saturating_sub(start)).div_ceil(CHUNK);
    (0..n_chunks)
        .into_par_iter()
        .map(|c| {
            let lo = start + c * CHUNK;
            Kernel::new(space, params).run(lo, (lo + CHUNK).min(end))
        })
        .reduce(Partial::empty, |a, b| a.merge(b, params.top_k))
}

/// Configurations per [`search_range`] call for a caller that reports progress and honours
/// Ctrl-C between calls: tens of milliseconds of work on two cores (the kernel runs at 1e8 to
/// 6e8 configurations per second; the reference path, for many chips with a step-time model that
/// is not linear, 16 times fewer).
pub fn call_chunk(params: &SearchParams) -> u64 {
    if params.chips > 1 && !params.hardware.step_time.is_linear() {
        1 << 17
    } else {
        1 << 21
    }
}

/// Candidate ordered by [`Candidate::rank_cmp`], for the top-K max-heap.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ranked(Candidate);
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.rank_cmp(&other.0)
    }
}

/// One sharding's coefficients at one depth: (intercept, slope) in B of memory, compute and the
/// two collectives.
#[derive(Debug, Clone, Copy)]
struct AtDepth {
    memory: (f64, f64),
    compute: (f64, f64),
    dp_comm: (f64, f64),
    tp_comm: (f64, f64),
}

/// A configuration of the current depth that passed every check.
#[derive(Debug, Clone, Copy)]
struct Passed {
    index: u64,
    /// ln of the law tokens, approximated ([`Law::ln_law_tokens_approx`]): the loss's data term
    /// is a decreasing function of them.
    ln_tokens: f64,
    /// Tokens trained and tokens per step, for the exact loss.
    tokens: f64,
    tokens_per_step: f64,
    /// The exact loss when it was already needed.
    exact: Option<f64>,
}

/// One worker's state: counts, a bounded top-K heap, the Pareto candidates (the best batch of
/// each (shape, depth), since every batch of a depth has the same parameter count) and buffers
/// reused from shape to shape.
struct Kernel<'a> {
    space: &'a SearchSpace,
    p: &'a SearchParams,
    usable_hbm_bytes: f64,
    part: Partial,
    top: BinaryHeap<Ranked>,
    front: ParetoBuilder,
    /// Every sharding of the chips ([`shardings`]; one chip: the single chip).
    shardings: Vec<Sharding>,
    /// The current shape's fits, whether each divides each batch (batch-major), whether the
    /// micro-batch divides each batch, the fits' coefficients at the current depth, and the
    /// configurations of the current depth that passed.
    fits: Vec<ShardingFit>,
    well_formed: Vec<bool>,
    divides: Vec<bool>,
    at_depth: Vec<AtDepth>,
    passed: Vec<Passed>,
    /// Critical-batch loss bound for each (sequence length, batch size) of the space (empty when
    /// the guard does not need the loss).
    max_loss: Vec<f64>,
    /// The shape term at each depth of the space for the width `shape_width` (NaN until it has
    /// been computed for that width): the term's powers are paid once per width and depth.
    shape_terms: Vec<f64>,
    shape_width: Option<usize>,
    /// The context term of each sequence length for models of up to 7B parameters (NaN until
    /// computed; larger models compute theirs).
    context_terms: Vec<f64>,
    /// [`Law::ln_batch_term`] of each batch size for the current shape.
    ln_tokens_per_step: Vec<f64>,
}

impl<'a> Kernel<'a> {
    fn new(space: &'a SearchSpace, p: &'a SearchParams) -> Self {
        let max_loss = if p.guards.needs_loss() {
            space
                .seq_len
                .iter()
                .flat_map(|&s| space.batch_size.iter().map(move |&b| max_loss_for_tokens_per_step(f64::from(b) * f64::from(s))))
                .collect()
        } else {
            Vec::new()
        };
        Kernel {
            space,
            p,
            usable_hbm_bytes: p.hardware.usable_hbm_bytes(),
            part: Partial::empty(),
            top: BinaryHeap::with_capacity(p.top_k + 1),
            front: ParetoBuilder::default(),
            shardings: if p.chips > 1 { shardings(p.chips) } else { vec![Sharding::SINGLE] },
            fits: Vec::new(),
            divides: Vec::new(),
            well_formed: Vec::new(),
            at_depth: Vec::new(),
            passed: Vec::new(),
            max_loss,
            shape_terms: Vec::new(),
            shape_width: None,
            context_terms: vec![f64::NAN; if p.law.context.is_some() { space.seq_len.len() } else { 0 }],
            ln_tokens_per_step: Vec::new(),
        }
    }

    fn run(mut self, start: u64, end: u64) -> Partial {
        let block = self.space.block_len();
        let mut index = start;
        while index < end {
            let shape = index / block;
            let block_end = ((shape + 1) * block).min(end);
            self.shape(shape, index - shape * block, block_end - shape * block);
            index = block_end;
        }
        let mut part = self.part;
        part.top = self.top.into_sorted_vec().into_iter().map(|r| r.0).collect();
        part.pareto = self.front.finish();
        part
    }

    /// Offers `c` to the top K; whether it was kept.
    #[inline]
    fn offer_top(&mut self, c: Candidate) -> bool {
        if self.top.len() < self.p.top_k {
            self.top.push(Ranked(c));
            true
        } else if self.top.peek().is_some_and(|worst| c.rank_cmp(&worst.0) == Ordering::Less) {
            self.top.pop();
            self.top.push(Ranked(c));
            true
        } else {
            false
        }
    }

    /// The shape term at depth index `li` of the width at index `wi` (cached per width).
    #[inline]
    fn shape_term(&mut self, wi: usize, li: usize) -> f64 {
        let law = &self.p.law;
        if law.shape.is_none() {
            return 0.0;
        }
        if self.shape_width != Some(wi) {
            self.shape_terms.clear();
            self.shape_terms.resize(self.space.n_layers.len(), f64::NAN);
            self.shape_width = Some(wi);
        }
        let cached = self.shape_terms[li];
        if !cached.is_nan() {
            return cached;
        }
        let v = law.shape_term(f64::from(self.space.d_model[wi]), f64::from(self.space.n_layers[li]));
        self.shape_terms[li] = v;
        v
    }

    /// The context term of sequence length index `si` for `law_params` parameters (cached up to
    /// the size where it stops depending on it).
    #[inline]
    fn context_term(&mut self, si: usize, law_params: f64) -> f64 {
        let Some(c) = self.p.law.context else { return 0.0 };
        let seq = f64::from(self.space.seq_len[si]);
        if !crate::context::ContextTerm::size_independent_below(law_params) {
            return c.penalty(seq, law_params);
        }
        if self.context_terms[si].is_nan() {
            self.context_terms[si] = c.penalty(seq, law_params);
        }
        self.context_terms[si]
    }

    /// Configurations j0..j1 of shape block `shape` (j = depth index x n_batch + batch index).
    fn shape(&mut self, shape: u64, j0: u64, j1: u64) {
        self.part.evaluated += j1 - j0;
        let Some((arch, digit)) = self.space.shape_with_digits(shape) else {
            self.part.rejected.malformed += j1 - j0;
            return;
        };
        let (p, space) = (self.p, self.space);
        let at = |l: u32, b: u32| Architecture { n_layers: l, batch_size: b, ..arch };
        let mb = arch.micro_batch.unwrap_or(1);
        let total = Bilinear::fit(mb, |l, b| total_params(&at(l, b)));
        let non_embedding = Bilinear::fit(mb, |l, b| non_embedding_params(&at(l, b)));
        self.fits.clear();
        fit_shardings(&arch, &p.hardware, &self.shardings, &mut self.fits);
        // A model that is not linear in the work prices each configuration itself (one chip only;
        // see `search_range`); the fits still give its memory.
        let model = &p.hardware.step_time;
        let linear = model.is_linear();
        self.well_formed.clear();
        self.well_formed.extend(space.batch_size.iter().map(|b| b.is_multiple_of(mb)));
        self.divides.clear();
        for &b in &space.batch_size {
            self.divides.extend(self.fits.iter().map(|f| {
                let dp = f.sharding.dp;
                b.is_multiple_of(dp) && arch.micro_batch.is_none_or(|m| (b / dp).is_multiple_of(m))
            }));
        }
        let n_fits = self.fits.len();

        let law = &p.law;
        let g = &p.guards;
        let nb = space.batch_size.len();
        let seq = f64::from(arch.seq_len);
        let d_model = f64::from(arch.d_model);
        let vocab = f64::from(arch.vocab_size);
        let base = shape * space.block_len();
        let (width_index, seq_index) = (digit[0], digit[8]);
        // What depends on the shape but not on the depth or batch: the vocabulary's reference ratio
        // and capacity term, and ln(tokens per step) in reference tokens for each batch.
        let ratio = law.reference_ratio(vocab);
        let vocab_term = law.vocab.map_or(0.0, |v| v.capacity(vocab, d_model));
        self.ln_tokens_per_step.clear();
        self.ln_tokens_per_step.extend(space.batch_size.iter().map(|&b| law.ln_batch_term(f64::from(b) * seq, ratio)));
        let (j0, j1) = (j0 as usize, j1 as usize);
        for li in j0 / nb..=(j1 - 1) / nb {
            let b_lo = if li == j0 / nb { j0 % nb } else { 0 };
            let b_hi = if li == (j1 - 1) / nb { (j1 - 1) % nb + 1 } else { nb };
            let depth = space.n_layers[li];
            let l = f64::from(depth);
            let aspect = d_model / l;
            if aspect < g.aspect_ratio_min || aspect > g.aspect_ratio_max {
                // As the reference classifies them: a batch the micro-batch does not divide is
                // malformed before any guard.
                let malformed = (b_lo..b_hi).filter(|&bi| !self.well_formed[bi]).count() as u64;
                self.part.rejected.malformed += malformed;
                self.part.rejected.aspect_ratio += (b_hi - b_lo) as u64 - malformed;
                continue;
            }
            let n_total = total.at_depth(l).0;
            let n_law = law.law_params(non_embedding.at_depth(l).0, n_total, d_model);
            // The loss's part that does not depend on the batch, (E + A / N'^alpha) + extras:
            // approximated first, exact when a decision needs it (computed once per depth, on
            // first use); the extras as `Law::extras` computes them.
            let extras = crate::loss::Extras {
                shape: self.shape_term(width_index, li),
                vocab: vocab_term,
                context: self.context_term(seq_index, n_law),
            };
            let mut fixed = FixedLoss::new(law, law.effective_params(n_law, p.unique_tokens), extras.sum());
            self.at_depth.clear();
            self.at_depth.extend(self.fits.iter().map(|f| AtDepth {
                memory: f.memory_bytes.at_depth(l),
                compute: f.compute_s.at_depth(l),
                dp_comm: f.dp_comm_s.at_depth(l),
                tp_comm: f.tp_comm_s.at_depth(l),
            }));
            self.passed.clear();
            let row = base + (li * nb) as u64;
            for bi in b_lo..b_hi {
                if !self.well_formed[bi] {
                    self.part.rejected.malformed += 1;
                    continue;
                }
                let b = space.batch_size[bi];
                let batch = f64::from(b);
                // The fastest sharding that divides the batch and fits; else the least memory.
                let (mut divided, mut step_time_s, mut least_memory) = (false, f64::INFINITY, f64::INFINITY);
                for (c, &divides) in self.at_depth.iter().zip(&self.divides[bi * n_fits..(bi + 1) * n_fits]) {
                    if !divides {
                        continue;
                    }
                    divided = true;
                    let memory = c.memory.0 + c.memory.1 * batch;
                    if memory > self.usable_hbm_bytes {
                        least_memory = least_memory.min(memory);
                        continue;
                    }
                    let t = if linear {
                        (c.compute.0 + c.compute.1 * batch).max(c.dp_comm.0 + c.dp_comm.1 * batch)
                            + (c.tp_comm.0 + c.tp_comm.1 * batch)
                    } else {
                        model.seconds(&at(depth, b))
                    };
                    if t < step_time_s {
                        step_time_s = t;
                    }
                }
                if !divided {
                    self.part.rejected.unshardable += 1;
                    continue;
                }
                if step_time_s == f64::INFINITY {
                    self.part.rejected.memory += 1;
                    self.part.rejected.min_memory_bytes = self.part.rejected.min_memory_bytes.min(least_memory);
                    continue;
                }
                let tokens_per_step = batch * seq;
                let (steps, tokens) = tokens_in_budget(p.budget_s, step_time_s, tokens_per_step);
                if steps < 1.0 {
                    self.part.rejected.budget += 1;
                    self.part.rejected.min_step_time_s = self.part.rejected.min_step_time_s.min(step_time_s);
                    continue;
                }
                let ln_tokens =
                    law.ln_law_tokens_approx(tokens, tokens_per_step, self.ln_tokens_per_step[bi], ratio, p.unique_tokens);
                let mut exact = None;
                let admitted = if g.needs_loss() {
                    // The critical-batch guard needs the loss: approximated first, exact only
                    // when the approximation is too close to the bound to decide.
                    let approx = fixed.approx() + law.data_term_ln_approx(ln_tokens);
                    let bound = self.max_loss[seq_index * nb + bi];
                    let tol = LOSS_TOLERANCE * approx;
                    if approx + tol < bound {
                        true
                    } else if approx - tol > bound {
                        false
                    } else {
                        let loss =
                            fixed.exact() + law.data_term_ln(law.ln_law_tokens(tokens, tokens_per_step, ratio, p.unique_tokens));
                        exact = Some(loss);
                        g.admits(tokens_per_step, loss, bound)
                    }
                } else {
                    g.admits(tokens_per_step, 0.0, 0.0)
                };
                if !admitted {
                    self.part.rejected.batch_cap += 1;
                    continue;
                }
                self.part.feasible += 1;
                self.passed.push(Passed { index: row + bi as u64, ln_tokens, tokens, tokens_per_step, exact });
            }
            if !self.passed.is_empty() {
                self.finish_depth(&mut fixed, n_total, ratio);
            }
        }
    }

    /// Offers the configurations of the current depth that passed every check (`self.passed`;
    /// every one has the same parameters `params`) to the top K, and the best of them to the
    /// Pareto set, computing exact losses only for those a decision needs. With ln D* the most
    /// law tokens among them (in ln) and d* its data term, another's data term is
    /// d* e^(beta (ln D* - ln D)) >= d* (1 + beta (ln D* - ln D)) (e^x >= 1 + x): a lower bound on
    /// its loss with two operations. A configuration whose lower bound is above the worst of a
    /// full top K cannot enter it; the depth's best (the most law tokens, ties to the lowest
    /// index) is needed only if no point of the Pareto front covers it.
    fn finish_depth(&mut self, fixed: &mut FixedLoss<'_>, params: f64, ratio: f64) {
        let p = self.p;
        let law = &p.law;
        let unique = p.unique_tokens;
        let most = self.passed.iter().copied().reduce(|a, b| if b.ln_tokens > a.ln_tokens { b } else { a }).expect("one passed");
        let most_term = law.data_term_ln_approx(most.ln_tokens);
        let fixed_approx = fixed.approx();
        // A lower bound on the loss of a configuration with `ln_tokens` (ln law tokens).
        let lower = |ln_tokens: f64| {
            (fixed_approx + most_term * (1.0 + law.beta * (most.ln_tokens - ln_tokens))) * (1.0 - LOSS_TOLERANCE)
        };
        let exact_of = |c: &mut Passed, fixed: &mut FixedLoss<'_>| {
            *c.exact.get_or_insert_with(|| {
                fixed.exact() + law.data_term_ln(law.ln_law_tokens(c.tokens, c.tokens_per_step, ratio, unique))
            })
        };
        // Top K.
        for i in 0..self.passed.len() {
            let full = self.top.len() >= self.p.top_k;
            if full && self.top.peek().is_some_and(|worst| lower(self.passed[i].ln_tokens) > worst.0.loss) {
                continue;
            }
            let loss = exact_of(&mut self.passed[i], fixed);
            self.offer_top(Candidate { index: self.passed[i].index, loss, params });
        }
        // Pareto: the front point with the most parameters <= `params` has the lowest loss among
        // them; below the lowest loss this depth can have, it covers every configuration of it.
        if self.front.certainly_covers(params, lower(most.ln_tokens)) {
            return;
        }
        let mut best: Option<Candidate> = None;
        let lowest = self
            .passed
            .iter_mut()
            .filter(|c| c.ln_tokens == most.ln_tokens)
            .map(|c| exact_of(c, fixed))
            .fold(f64::INFINITY, f64::min);
        for c in self.passed.iter_mut() {
            // Certainly worse than the most tokens' exact loss: skip.
            if lower(c.ln_tokens) > lowest {
                continue;
            }
            let candidate = Candidate { index: c.index, loss: exact_of(c, fixed), params };
            if best.is_none_or(|b| candidate.rank_cmp(&b) == Ordering::Less) {
                best = Some(candidate);
            }
        }
        if let Some(b) = best {
            self.front.offer(b);
        }
    }
}

/// (E + A / N'^alpha) + extras of one depth (extras: the shape, vocabulary and context terms,
/// summed as [`crate::loss::Extras::sum`]): approximated ([`Law::param_term_approx`]) and exact,
/// each computed on first use.
struct FixedLoss<'l> {
    law: &'l Law,
    /// N' (after the repetition decay).
    n: f64,
    extras: f64,
    approx: Option<f64>,
    exact: Option<f64>,
}

impl<'l> FixedLoss<'l> {
    fn new(law: &'l Law, n: f64, extras: f64) -> Self {
        FixedLoss { law, n, extras, approx: None, exact: None }
    }
    #[inline]
    fn approx(&mut self) -> f64 {
        let (law, n, extras) = (self.law, self.n, self.extras);
        *self.approx.get_or_insert_with(|| (law.e + law.param_term_approx(n)) + extras)
    }
    /// Left to right as [`Law::fixed`] adds it: (E + A / N'^alpha) + extras. Out of line (see
    /// [`Law::data_term_ln_cold`]).
    #[inline(never)]
    fn exact(&mut self) -> f64 {
        let (law, n, extras) = (self.law, self.n, self.extras);
        *self.exact.get_or_insert_with(|| (law.e + law.param_term(n)) + extras)
    }
}

/// The kernel's bracket on a loss computed with [`Law::data_term_ln_approx`], relative to the
/// loss: above the approximations' errors ([`crate::loss::DATA_TERM_APPROX_ERROR`], relative to
/// the data term, which is below the loss, and ln law tokens to about 1e-13) with room for the
/// additions' rounding.
const LOSS_TOLERANCE: f64 = 10.0 * crate::loss::DATA_TERM_APPROX_ERROR;

/// The definition of what [`search_range`] computes: every configuration evaluated on its own
/// with [`SearchParams::evaluate`], then the same feasibility checks in the same order. It checks
/// the single-chip kernel in tests and benchmarks, and it is the many-chip path (every sharding of
/// every configuration; no kernel covers shardings yet).
pub fn search_range_reference(space: &SearchSpace, params: &SearchParams, start: u64, end: u64) -> Partial {
    let mut part = Partial::empty();
    let mut feasible: Vec<Candidate> = Vec::new();
    let usable = params.hardware.usable_hbm_bytes();
    let g = &params.guards;
    for index in start..end {
        part.evaluated += 1;
        let Some(arch) = space.config_at(index) else {
            part.rejected.malformed += 1;
            continue;
        };
        let aspect = f64::from(arch.d_model) / f64::from(arch.n_layers);
        if aspect < g.aspect_ratio_min || aspect > g.aspect_ratio_max {
            part.rejected.aspect_ratio += 1;
            continue;
        }
        let m = params.evaluate(&arch);
        if m.memory_bytes.is_infinite() {
            part.rejected.unshardable += 1;
            continue;
        }
        if m.memory_bytes > usable {
            part.rejected.memory += 1;
            part.rejected.min_memory_bytes = part.rejected.min_memory_bytes.min(m.memory_bytes);
            continue;
        }
        if m.steps < 1.0 {
            part.rejected.budget += 1;
            part.rejected.min_step_time_s = part.rejected.min_step_time_s.min(m.step_time_s);
            continue;
        }
        let tps = arch.tokens_per_step();
        if !g.admits(tps, m.loss, max_loss_for_tokens_per_step(tps)) {
            part.rejected.batch_cap += 1;
            continue;
        }
        part.feasible += 1;
        feasible.push(Candidate { index, loss: m.loss, params: m.params });
    }
    part.pareto = pareto_front(feasible.clone());
    feasible.sort_unstable_by(Candidate::rank_cmp);
    feasible.truncate(params.top_k);
    part.top = feasible;
    part
}

/// The answer of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    pub evaluated: u64,
    pub feasible: u64,
    pub rejected: Rejections,
    pub best: Candidate,
    pub top: Vec<Candidate>,
    /// The Pareto set, or an evenly spread [`MAX_PARETO`] of its members when it has more.
    pub pareto: Vec<Candidate>,
    /// Members of the whole Pareto set (more than `pareto.len()` when it was thinned).
    pub pareto_total: u64,
}

/// Most Pareto members an answer lists: a pathological space can have millions (every
/// configuration on the front), which no one reads and which cost memory and time to describe.
pub const MAX_PARETO: usize = 10_000;

/// At most `n` of `points` (sorted), evenly spread over them, the first and the last kept.
pub fn spread(points: Vec<Candidate>, n: usize) -> Vec<Candidate> {
    if points.len() <= n {
        return points;
    }
    if n < 2 {
        return points.into_iter().take(n).collect();
    }
    let last = (points.len() - 1) as f64;
    (0..n).map(|i| points[((i as f64) * last / (n - 1) as f64).round() as usize]).collect()
}

/// Turns a merged partial into an answer, or explains with figures why nothing was feasible.
pub fn finish(part: Partial, params: &SearchParams) -> Result<SearchOutcome> {
    let Some(&best) = part.top.first() else {
        return Err(Error::NoFeasibleConfig { reason: explain_empty(&part, params) });
    };
    let pareto_total = part.pareto.len() as u64;
    Ok(SearchOutcome {
        evaluated: part.evaluated,
        feasible: part.feasible,
        rejected: part.rejected,
        best,
        top: part.top,
        pareto: spread(part.pareto, MAX_PARETO),
        pareto_total,
    })
}

fn explain_empty(part: &Partial, params: &SearchParams) -> String {
    use crate::error::{count, distinct};
    const GIB: f64 = 1_073_741_824.0;
    let r = &part.rejected;
    // Nearest misses first: the reverse of the order the checks run (a configuration counts under
    // the first it fails, so the later the check, the closer those configurations came).
    let mut why = Vec::new();
    if r.batch_cap > 0 {
        why.push(format!("{} exceed the tokens-per-step cap (smaller batches or sequences)", count(r.batch_cap)));
    }
    if r.budget > 0 {
        let (fastest, budget) = distinct(r.min_step_time_s, params.budget_s);
        why.push(format!(
            "{} cannot finish one step in the {budget} s budget (the fastest of them needs {fastest} s per step)",
            count(r.budget)
        ));
    }
    if r.memory > 0 {
        let (need, usable) = distinct(r.min_memory_bytes / GIB, params.hardware.usable_hbm_bytes() / GIB);
        let more_chips = params.hardware.max_chips() > params.chips;
        why.push(format!(
            "{} do not fit in {usable} GiB of usable HBM{} (the smallest of them needs {need} GiB{})",
            count(r.memory),
            if params.chips > 1 { format!(" per chip with any sharding over {} chips", params.chips) } else { String::new() },
            if more_chips { "; more chips: --chips, or auto to compare counts" } else { "" }
        ));
    }
    if r.unshardable > 0 {
        why.push(format!(
            "{} cannot be split over {} chips (the data-parallel degree must divide batch_size, the \
             tensor-parallel degree the KV heads and d_ff)",
            count(r.unshardable),
            params.chips
        ));
    }
    if r.aspect_ratio > 0 {
        why.push(format!(
            "{} have d_model/n_layers outside [{}, {}] (--aspect-ratio)",
            count(r.aspect_ratio),
            params.guards.aspect_ratio_min,
            params.guards.aspect_ratio_max
        ));
    }
    if r.malformed > 0 {
        why.push(format!(
            "{} are malformed (head_dim must divide d_model, kv_group the head count, the micro-batch the batch)",
            count(r.malformed)
        ));
    }
    format!("of {} configurations, {}", count(part.evaluated), why.join("; "))
}

/// Searches the whole space (validated first). See [`search_range`] for chunked use.
pub fn search(space: &SearchSpace, params: &SearchParams) -> Result<SearchOutcome> {
    params.validate()?;
    let size = space.validate()?;
    finish(search_range(space, params, 0, size), params)
}

/// A search as a user asks for it: a budget (hours, money or both) and the chip counts to
/// consider; [`SearchPlan::new`] turns it into one [`SearchParams`] per chip count.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub hardware: Hardware,
    pub budget: Budget,
    pub chips: Chips,
    pub law: Law,
    pub guards: Guards,
    pub top_k: usize,
    pub unique_tokens: Option<f64>,
}

/// The searches a request runs: one per chip count, each over the whole space, with the budget
/// that count gets (a money budget buys fewer hours on more chips).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPlan {
    pub runs: Vec<(SearchParams, ResolvedBudget)>,
    /// Configurations in the space (each run enumerates all of them).
    pub space_size: u64,
}

impl SearchPlan {
    /// Validates the request and the space, resolves the chip counts and their budgets.
    pub fn new(space: &SearchSpace, req: &SearchRequest) -> Result<SearchPlan> {
        let space_size = space.validate()?;
        req.hardware.validate()?;
        let mut runs = Vec::new();
        for chips in req.chips.resolve(&req.hardware)? {
            let budget = req.budget.resolve(&req.hardware, chips)?;
            let params = SearchParams {
                hardware: req.hardware,
                budget_s: budget.seconds,
                law: req.law,
                guards: req.guards,
                top_k: req.top_k,
                unique_tokens: req.unique_tokens,
                chips,
            };
            params.validate()?;
            runs.push((params, budget));
        }
        Ok(SearchPlan { runs, space_size })
    }

    /// Configurations the whole plan evaluates (space size x chip counts).
    pub fn total(&self) -> u64 {
        self.space_size * self.runs.len() as u64
    }

    /// Turns each run's merged partial into an answer and picks the chip count: the lowest best
    /// loss, or among the counts whose best is tied with it within the model's uncertainty
    /// ([`crate::analysis::tie`]: the step time's error, the law's published alternatives), the
    /// fewest chip-hours, then the shortest wall-clock, then the fewest chips. So a money budget
    /// (equal chip-hours on every count) takes the quickest of the tied plans, never a year-long
    /// one to win a tie, and an hours budget the cheapest. Fails only when no count has a feasible
    /// configuration; the error then gives each count's reason.
    pub fn finish(&self, space: &SearchSpace, partials: Vec<Partial>) -> Result<PlanOutcome> {
        let mut counts: Vec<ChipCountOutcome> = self
            .runs
            .iter()
            .zip(partials)
            .map(|((params, budget), part)| ChipCountOutcome { budget: *budget, outcome: finish(part, params), tie: None })
            .collect();
        let losses: Vec<(u32, f64)> =
            counts.iter().map(|c| (c.budget.chips, c.outcome.as_ref().map_or(f64::INFINITY, |o| o.best.loss))).collect();
        let Some(lowest) = best_count(&losses) else {
            if counts.len() == 1 {
                return Err(counts.into_iter().next().and_then(|c| c.outcome.err()).expect("one failed count"));
            }
            let why: Vec<String> = counts
                .iter()
                .map(|c| {
                    format!(
                        "{}: {}",
                        crate::error::chips(c.budget.chips),
                        c.outcome.as_ref().err().map_or(String::new(), ToString::to_string)
                    )
                })
                .collect();
            return Err(Error::NoFeasibleConfig { reason: format!("none on any chip count ({})", why.join("; ")) });
        };
        // Each count's best as a plan; the ties with the lowest.
        let plans: Vec<Option<crate::analysis::Plan>> = (0..counts.len())
            .map(|i| {
                let best = counts[i].outcome.as_ref().ok()?.best;
                let params = &self.runs[i].0;
                let arch = space.config_at(best.index)?;
                let tokens = params.evaluate(&arch).tokens;
                Some(crate::analysis::Plan { arch, tokens, rel_step_error: params.hardware.step_time_error })
            })
            .collect();
        let (law, unique) = (&self.runs[lowest].0.law, self.runs[lowest].0.unique_tokens);
        let ties_with = |reference: usize| -> Vec<Option<crate::analysis::Tie>> {
            (0..plans.len())
                .map(|i| match (&plans[reference], &plans[i]) {
                    (Some(r), Some(o)) if i != reference => crate::analysis::tie(law, unique, r, o),
                    _ => None,
                })
                .collect()
        };
        let tied = ties_with(lowest);
        let key = |i: usize| {
            let b = &counts[i].budget;
            (f64::from(b.chips) * b.seconds, b.seconds, b.chips)
        };
        let chosen = (0..counts.len())
            .filter(|&i| i == lowest || tied[i].is_some())
            .min_by(|&a, &b| {
                let (ka, kb) = (key(a), key(b));
                ka.0.total_cmp(&kb.0).then(ka.1.total_cmp(&kb.1)).then(ka.2.cmp(&kb.2))
            })
            .unwrap_or(lowest);
        // Ties are stated against the chosen count.
        let tied = if chosen == lowest { tied } else { ties_with(chosen) };
        for (c, t) in counts.iter_mut().zip(tied) {
            c.tie = t;
        }
        Ok(PlanOutcome { chosen, lowest, counts })
    }
}

/// One chip count's search.
#[derive(Debug, Clone, PartialEq)]
pub struct ChipCountOutcome {
    pub budget: ResolvedBudget,
    pub outcome: Result<SearchOutcome>,
    /// Why this count's best is tied with the chosen count's (`None`: ranked, or the chosen one).
    pub tie: Option<crate::analysis::Tie>,
}

/// The answer of a [`SearchPlan`]: every count's outcome and the chosen one.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOutcome {
    /// Position in `counts` of the chosen chip count.
    pub chosen: usize,
    /// Position in `counts` of the count with the lowest best loss (the chosen one, or one tied
    /// with it that costs more chip-hours or wall-clock).
    pub lowest: usize,
    pub counts: Vec<ChipCountOutcome>,
}

impl PlanOutcome {
    /// The chosen count's outcome.
    pub fn best(&self) -> &SearchOutcome {
        self.counts[self.chosen].outcome.as_ref().expect("the chosen count has an outcome")
    }
}

/// Runs a whole plan at once (no progress, no cancellation; the bindings chunk it instead).
pub fn search_plan(space: &SearchSpace, req: &SearchRequest) -> Result<PlanOutcome> {
    let plan = SearchPlan::new(space, req)?;
    let partials = plan.runs.iter().map(|(p, _)| search_range(space, p, 0, plan.space_size)).collect();
    plan.finish(space, partials)
}

/// A candidate as the answer shows it: the configuration, every metric and its step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub index: u64,
    pub arch: Architecture,
    pub metrics: Metrics,
    /// The step as trained (on one chip: no communication).
    pub step: ShardedStep,
}

/// Rows of `candidates` (feasible configurations of `space`), every metric recomputed directly.
pub fn rows(space: &SearchSpace, params: &SearchParams, candidates: &[Candidate]) -> Vec<Row> {
    candidates
        .iter()
        .filter_map(|c| {
            let arch = space.config_at(c.index)?;
            let (metrics, step) = params.evaluate_with_sharding(&arch);
            let step = step.or_else(|| sharded_step(&arch, &params.hardware, Sharding::SINGLE))?;
            Some(Row { index: c.index, arch, metrics, step })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{Network, Topology};
    use crate::loss::HOFFMANN as HOFFMANN_WITH_TERMS;

    /// The plain law (the kernel's original form; the evidence terms have their own tests below).
    const HOFFMANN: Law = plain(HOFFMANN_WITH_TERMS);

    const fn plain(l: Law) -> Law {
        Law { shape: None, vocab: None, context: None, batch: None, repetition: crate::repetition::DATA_ONLY, ..l }
    }
    use crate::step_time::StepTimeModel;

    fn h100_like() -> Hardware {
        crate::hardware::tests::chip(
            80e9,
            StepTimeModel::Linear {
                s_per_memcpy_byte: 1.0 / (3.35e12 * 0.875),
                s_per_flop: 1.0 / (9.894e14 * 0.79),
                overhead_s: 0.0,
            },
        )
    }

    fn small_space() -> SearchSpace {
        SearchSpace {
            d_model: vec![256, 384, 512, 768, 1024, 1536, 2048],
            n_layers: vec![2, 4, 6, 8, 12, 16, 24, 32],
            head_dim: vec![64, 128],
            kv_group: vec![1, 4],
            seq_len: vec![1024, 2048],
            batch_size: vec![16, 64, 256],
            // Whole batches, no recomputation (their own test covers those axes).
            recompute: vec![Recompute::None],
            micro_batch: vec![None],
            ..SearchSpace::default()
        }
    }

    fn params(hours: f64) -> SearchParams {
        SearchParams {
            hardware: h100_like(),
            budget_s: hours * 3600.0,
            law: HOFFMANN,
            guards: Guards::default(),
            top_k: 10,
            unique_tokens: None,
            chips: 1,
        }
    }

    #[test]
    fn d_ff_is_rounded_to_hardware_friendly_multiples_by_hand() {
        // 8/3 x 3584 = 9557.33: the nearest multiple of 64 is 149 x 64 = 9536; of 1, 9557.
        assert_eq!(ffn_width(8.0 / 3.0, 3584, 64), 9536.0);
        assert_eq!(ffn_width(8.0 / 3.0, 3584, 1), 9557.0);
        // 8/3 x 1280 = 3413.3 -> 53 x 64 = 3392; a tiny width still gets one multiple.
        assert_eq!(ffn_width(8.0 / 3.0, 1280, 64), 3392.0);
        assert_eq!(ffn_width(0.1, 128, 64), 64.0);
        let s = SearchSpace { d_model: vec![3584], ffn_mult: vec![8.0 / 3.0], ..small_space() };
        assert_eq!(s.config_at(0).unwrap().d_ff, 9536);
        let exact = SearchSpace { d_ff_multiple: 1, ..s.clone() };
        assert_eq!(exact.config_at(0).unwrap().d_ff, 9557);
        assert!(SearchSpace { d_ff_multiple: 0, ..s }.validate().is_err());
    }

    #[test]
    fn a_long_pareto_set_is_thinned_evenly() {
        let c = |i: u64| Candidate { index: i, loss: 10.0 - i as f64 * 1e-3, params: i as f64 };
        let kept = spread((0..1001).map(c).collect(), 11);
        assert_eq!(kept.iter().map(|k| k.index).collect::<Vec<_>>(), (0..=1000).step_by(100).collect::<Vec<_>>());
        assert_eq!(spread((0..5).map(c).collect(), 11).len(), 5);
    }

    #[test]
    fn a_repeated_axis_value_is_refused() {
        let e = |s: SearchSpace| s.validate().unwrap_err().to_string();
        let twice = "is invalid: expected distinct values (a repeated value repeats configurations)";
        assert_eq!(
            e(SearchSpace { d_model: vec![512, 1024, 512], ..SearchSpace::default() }),
            format!("d_model = 512 twice {twice}")
        );
        assert_eq!(e(SearchSpace { ffn_mult: vec![4.0, 4.0], ..SearchSpace::default() }), format!("ffn_mult = 4 twice {twice}"));
        assert_eq!(
            e(SearchSpace { micro_batch: vec![None, Some(2), None], ..SearchSpace::default() }),
            format!("micro_batch = none twice {twice}")
        );
        assert!(SearchSpace::default().validate().is_ok());
    }

    #[test]
    fn default_space_has_several_million_configs() {
        assert_eq!(SearchSpace::default().validate().unwrap(), 62_914_560);
    }

    #[test]
    fn enumeration_covers_every_axis_value() {
        let s = small_space();
        let n = s.validate().unwrap();
        let mut widths = std::collections::BTreeSet::new();
        let mut batches = std::collections::BTreeSet::new();
        for i in 0..n {
            if let Some(a) = s.config_at(i) {
                assert!(a.validate().is_ok());
                widths.insert(a.d_model);
                batches.insert(a.batch_size);
            }
        }
        assert_eq!(widths.len(), s.d_model.len());
        assert_eq!(batches.len(), s.batch_size.len());
    }

    #[test]
    fn same_answer_as_brute_force_and_any_chunking() {
        let s = small_space();
        let p = params(1.0);
        let out = search(&s, &p).unwrap();
        // Brute force: evaluate every config sequentially with the same feasibility rules.
        let n = s.validate().unwrap();
        let whole = search_range_reference(&s, &p, 0, n);
        assert_same(&whole, &search_range(&s, &p, 0, n));
        // Uneven ranges merged in another order give the same result.
        let cut = n / 3 + 7;
        let merged = search_range(&s, &p, cut, n).merge(search_range(&s, &p, 0, cut), p.top_k);
        assert_eq!(merged.top, out.top);
        assert_eq!(merged.pareto, out.pareto);
        assert_eq!(out.best, out.top[0]);
    }

    /// Same counts, same candidates (indices), losses equal to rounding.
    fn assert_same(reference: &Partial, fast: &Partial) {
        assert_eq!(reference.evaluated, fast.evaluated);
        assert_eq!(reference.feasible, fast.feasible);
        assert_eq!(
            (reference.rejected.malformed, reference.rejected.aspect_ratio, reference.rejected.memory),
            (fast.rejected.malformed, fast.rejected.aspect_ratio, fast.rejected.memory)
        );
        assert_eq!(
            (reference.rejected.budget, reference.rejected.batch_cap, reference.rejected.unshardable),
            (fast.rejected.budget, fast.rejected.batch_cap, fast.rejected.unshardable)
        );
        for (r, f) in [(&reference.top, &fast.top), (&reference.pareto, &fast.pareto)] {
            assert_eq!(r.iter().map(|c| c.index).collect::<Vec<_>>(), f.iter().map(|c| c.index).collect::<Vec<_>>());
            for (a, b) in r.iter().zip(f.iter()) {
                assert!((a.loss - b.loss).abs() <= 1e-12 * a.loss, "{} vs {}", a.loss, b.loss);
                assert_eq!(a.params, b.params);
            }
        }
    }

    #[test]
    fn kernel_matches_reference_on_odd_ranges_and_guards() {
        let s = SearchSpace { attention: vec![Attention::Materialized, Attention::Flash], ..small_space() };
        let n = s.validate().unwrap();
        let roofline = StepTimeModel::RooflineMax { flops_per_s: 7e14, memcpy_bytes_per_s: 2.9e12, overhead_s: 1e-3 };
        let per_op =
            StepTimeModel::PerOpRoofline { flops_per_s: 7e14, memcpy_bytes_per_s: 2.9e12, s_per_kernel: 5e-6, overhead_s: 1e-3 };
        let split = StepTimeModel::SplitLinear {
            s_per_fixed_byte: 2e-13,
            s_per_token_byte: 6e-13,
            s_per_flop: 1e-15,
            s_per_score_byte: 3e-12,
            overhead_s: 1e-4,
        };
        let rates =
            StepTimeModel::Rates { s_per_matmul_flop: 1.4e-15, s_per_attention_flop: 5e-15, s_per_byte: 7e-13, overhead_s: 1e-3 };
        for (hours, cap, model) in [
            (0.01, None, None),
            (1.0, Some(20_000.0), Some(roofline)),
            (24.0, None, Some(per_op)),
            (3.0, None, Some(split)),
            (6.0, None, Some(rates)),
        ] {
            let mut p = params(hours);
            if hours == 24.0 {
                p.unique_tokens = Some(2e9); // the data-constrained law in the kernel too
            }
            p.guards.max_tokens_per_step = cap;
            if let Some(m) = model {
                p.hardware.step_time = m;
            }
            for (lo, hi) in [(0, n), (5, n - 3), (17, 18), (n / 2 + 1, n / 2 + 777)] {
                assert_same(&search_range_reference(&s, &p, lo, hi), &search_range(&s, &p, lo, hi));
            }
        }
    }

    #[test]
    fn a_shape_term_moves_the_answer_and_the_kernel_agrees_with_the_reference() {
        // A law that prices shape (a strong term with its optimum at d_model / n_layers = 30),
        // searched with its default guard (every shape: the term decides): the kernel and the reference agree, and
        // the answer moves towards aspect 30 compared with the same law without the term.
        let s = small_space();
        let n = s.validate().unwrap();
        let shaped = Law {
            shape: Some(crate::shape::ShapeTerm::Fitted(crate::shape::FittedShape {
                c: 0.05,
                aspect_opt: 30.0,
                measured: (5.0, 600.0),
            })),
            ..HOFFMANN
        };
        let mut p = params(2.0);
        p.law = shaped;
        p.guards = Guards::for_law(&shaped);
        assert_eq!((p.guards.aspect_ratio_min, p.guards.aspect_ratio_max), NO_ASPECT_GUARD);
        assert_eq!(Guards::for_law(&HOFFMANN), Guards::default());
        for (lo, hi) in [(0, n), (3, n - 5), (n / 3, n / 3 + 500)] {
            assert_same(&search_range_reference(&s, &p, lo, hi), &search_range(&s, &p, lo, hi));
        }
        let with = search(&s, &p).unwrap().best;
        let without = search(&s, &SearchParams { law: HOFFMANN, ..p }).unwrap().best;
        let aspect = |c: &Candidate| {
            let a = s.config_at(c.index).unwrap();
            f64::from(a.d_model) / f64::from(a.n_layers)
        };
        let dist = |r: f64| (r / 30.0).ln().abs();
        assert!(dist(aspect(&with)) < dist(aspect(&without)), "{} vs {}", aspect(&with), aspect(&without));
        // The loss reported is the law's with the term, as predict computes it.
        let a = s.config_at(with.index).unwrap();
        let m = p.evaluate(&a);
        assert_eq!(m.loss, with.loss);
        // By hand: 0.05 ln(r / 30)^2 above the same law without the term.
        let r = f64::from(a.d_model) / f64::from(a.n_layers);
        let plain = HOFFMANN.loss(m.params, m.effective_tokens);
        assert!((m.loss - plain - 0.05 * (r / 30.0).ln().powi(2)).abs() < 1e-12, "{} {plain} {r}", m.loss);
    }

    #[test]
    fn the_evidence_terms_keep_the_kernel_equal_to_the_reference() {
        // Every term on (shape, vocabulary, context, batch, repetition), vocabularies and contexts
        // that move each, batches far on both sides of Step Law's optimum, with and without
        // limited data and an evaluation context the short sequences fall below.
        let s = SearchSpace {
            vocab_size: vec![8000, 32_000, 128_000],
            seq_len: vec![512, 2048],
            batch_size: vec![8, 64, 512, 4096],
            ..small_space()
        };
        let n = s.validate().unwrap();
        for (unique, eval_context) in [(None, 2048.0), (Some(3e9), 4096.0)] {
            let mut p = params(2.0);
            p.law = HOFFMANN_WITH_TERMS.with_eval_context(eval_context).unwrap();
            p.guards = Guards::for_law(&p.law);
            p.unique_tokens = unique;
            assert!(!p.guards.critical_batch && p.guards.aspect_ratio_max == NO_ASPECT_GUARD.1);
            for (lo, hi) in [(0, n), (5, n - 3), (n / 2 + 1, n / 2 + 777)] {
                assert_same(&search_range_reference(&s, &p, lo, hi), &search_range(&s, &p, lo, hi));
            }
            // The answer's loss is predict's, term by term.
            let best = search(&s, &p).unwrap().best;
            let a = s.config_at(best.index).unwrap();
            let m = p.evaluate(&a);
            let terms = p.law.terms(&crate::loss::LossInput::of(&a, m.tokens, unique));
            assert_eq!((m.loss, terms.loss), (best.loss, best.loss));
        }
    }

    #[test]
    fn kernel_breaks_exact_ties_as_the_reference() {
        // So little unique data that every configuration's effective tokens saturate at
        // U (1 + R*): every batch of a depth has the same loss to the last bit, and the top K and
        // the Pareto set keep the lowest indices. The kernel's loss bounds must not decide those.
        let s = small_space();
        let n = s.validate().unwrap();
        for top_k in [1, 10, 300] {
            let mut p = params(48.0);
            p.unique_tokens = Some(1.0);
            p.top_k = top_k;
            p.guards.max_tokens_per_step = Some(1e9);
            let (reference, fast) = (search_range_reference(&s, &p, 0, n), search_range(&s, &p, 0, n));
            assert_same(&reference, &fast);
            let losses: std::collections::BTreeSet<u64> = reference.top.iter().map(|c| c.loss.to_bits()).collect();
            assert!(top_k == 1 || losses.len() < reference.top.len(), "ties expected: {losses:?}");
        }
    }

    #[test]
    fn kernel_matches_reference_with_recomputation_and_micro_batches() {
        // Micro-batches that divide some batches (16, 64, 256) and not others (40 by 16): those are
        // malformed; recomputation changes the step and the memory. Every step-time model kind.
        let s = SearchSpace {
            attention: vec![Attention::Materialized, Attention::Flash],
            recompute: vec![Recompute::None, Recompute::Full, Recompute::Selective],
            micro_batch: vec![None, Some(4), Some(16)],
            batch_size: vec![16, 40, 64, 256],
            d_model: vec![512, 1024, 2048],
            ..small_space()
        };
        let n = s.validate().unwrap();
        let per_op =
            StepTimeModel::PerOpRoofline { flops_per_s: 7e14, memcpy_bytes_per_s: 2.9e12, s_per_kernel: 5e-6, overhead_s: 1e-3 };
        let rates =
            StepTimeModel::Rates { s_per_matmul_flop: 1.4e-15, s_per_attention_flop: 5e-15, s_per_byte: 7e-13, overhead_s: 1e-3 };
        for (hours, model) in [(2.0, per_op), (12.0, rates)] {
            let mut p = params(hours);
            p.hardware.step_time = model;
            p.hardware.hbm_bytes = 24e9; // some configurations fit only with recomputation or micro-batches
            for (lo, hi) in [(0, n), (3, n - 5), (n / 3, n / 3 + 1001)] {
                assert_same(&search_range_reference(&s, &p, lo, hi), &search_range(&s, &p, lo, hi));
            }
            let whole = search_range(&s, &p, 0, n);
            assert!(whole.rejected.malformed > 0 && whole.feasible > 0, "{:?} {}", whole.rejected, whole.feasible);
        }
    }

    /// A pseudo-random pick of `k` distinct values of `values` (the tests' own generator).
    fn pick<T: Copy>(x: &mut u64, values: &[T], k: usize) -> Vec<T> {
        let mut out: Vec<T> = values.to_vec();
        for i in (1..out.len()).rev() {
            *x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            out.swap(i, ((*x >> 33) % (i as u64 + 1)) as usize);
        }
        out.truncate(k.clamp(1, values.len()));
        out
    }

    #[test]
    fn many_chip_kernel_matches_the_reference_on_random_spaces() {
        // Random spaces over every axis (recomputation, micro-batches, attention kinds), odd and
        // even chip counts, one node or several (hierarchical collectives), each linear step-time
        // model, with and without unique data, the critical-batch guard or a cap: the kernel's
        // counts (feasible, each rejection), best, top K and Pareto set are the reference's.
        let rates =
            StepTimeModel::Rates { s_per_matmul_flop: 1.4e-15, s_per_attention_flop: 5e-15, s_per_byte: 7e-13, overhead_s: 1e-3 };
        let split = StepTimeModel::SplitLinear {
            s_per_fixed_byte: 2e-13,
            s_per_token_byte: 6e-13,
            s_per_flop: 1e-15,
            s_per_score_byte: 3e-12,
            overhead_s: 1e-4,
        };
        let linear = StepTimeModel::Linear { s_per_memcpy_byte: 4e-13, s_per_flop: 1.3e-15, overhead_s: 0.0 };
        let mut x: u64 = 2024;
        let mut checked_feasible = 0;
        for (case, chips) in [2u32, 3, 6, 8, 12, 16, 24, 5, 8, 16].into_iter().enumerate() {
            let space = SearchSpace {
                d_model: pick(&mut x, &[256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144], 4),
                n_layers: pick(&mut x, &[2, 4, 6, 8, 12, 16, 24, 32, 48], 4),
                head_dim: pick(&mut x, &[64, 128], 2),
                kv_group: pick(&mut x, &[1, 2, 4], 2),
                ffn_mult: pick(&mut x, &[8.0 / 3.0, 3.0, 4.0], 2),
                attention: pick(&mut x, &[Attention::Materialized, Attention::Flash], 2),
                seq_len: pick(&mut x, &[512, 1024, 2048, 4096], 2),
                recompute: pick(&mut x, &[Recompute::None, Recompute::Full, Recompute::Selective], 2),
                micro_batch: pick(&mut x, &[None, Some(1), Some(2), Some(4), Some(3)], 3),
                batch_size: pick(&mut x, &[6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256], 5),
                ..small_space()
            };
            let n = space.validate().unwrap();
            let mut p = params([0.003, 6.0, 48.0][case % 3]);
            p.chips = chips;
            p.hardware.hbm_bytes = [16e9, 40e9, 80e9][case % 3];
            p.hardware.step_time = [rates, split, linear][case % 3];
            p.hardware.network = Some(Network {
                link_bytes_per_s: 9e10,
                links_per_chip: 2.0,
                topology: Topology::NvlinkSwitch,
                max_chips: 64,
                chips_per_node: if case % 2 == 0 { Some(4) } else { None },
                inter_node_bytes_per_s: if case % 2 == 0 { Some(2.5e10) } else { None },
            });
            p.unique_tokens = if case % 4 == 1 { Some(3e9) } else { None };
            p.guards.max_tokens_per_step = if case % 5 == 2 { Some(60_000.0) } else { None };
            p.top_k = 1 + case * 7;
            let (reference, fast) = (search_range_reference(&space, &p, 0, n), search_range(&space, &p, 0, n));
            assert_same(&reference, &fast);
            assert_eq!(reference.pareto.len(), fast.pareto.len());
            // A range that starts and ends inside shape blocks.
            assert_same(
                &search_range_reference(&space, &p, n / 5 + 3, n / 2 + 11),
                &search_range(&space, &p, n / 5 + 3, n / 2 + 11),
            );
            checked_feasible += fast.feasible;
        }
        assert!(checked_feasible > 1000, "{checked_feasible}");
    }

    #[test]
    fn recomputation_and_micro_batches_make_a_big_batch_fit() {
        // A 1.3B model with batch 256 x 2048 tokens does not fit 80 GB at once; in micro-steps of
        // 8 with full recomputation it does, and the search finds configurations that way.
        let a = Architecture {
            d_model: 2048,
            n_layers: 24,
            n_heads: 16,
            n_kv_heads: 16,
            head_dim: 128,
            d_ff: 8192,
            mlp: Mlp::Gelu,
            attention: Attention::Flash,
            tied_embeddings: false,
            seq_len: 2048,
            batch_size: 256,
            vocab_size: 32_000,
            precision: Precision::default(),
            recompute: Recompute::None,
            micro_batch: None,
        };
        let p = params(24.0);
        assert!(!p.evaluate(&a).fits_memory);
        let small = Architecture { recompute: Recompute::Full, micro_batch: Some(8), ..a };
        assert!(p.evaluate(&small).fits_memory);
        // Same tokens per step, a longer step (32 micro-steps, the forward twice).
        assert!(p.evaluate(&small).step_time_s > p.evaluate(&Architecture { batch_size: 8, ..a }).step_time_s * 32.0);
    }

    #[test]
    fn config_at_inverts_the_enumeration() {
        let s = small_space();
        let nb = s.batch_size.len() as u64;
        let a = s.config_at(3 * s.block_len() + 2 * nb + 1).unwrap();
        assert_eq!((a.n_layers, a.batch_size), (s.n_layers[2], s.batch_size[1]));
        assert_eq!(s.config_at(0).unwrap().d_model, s.d_model[0]);
    }

    #[test]
    fn longer_budget_never_raises_best_loss() {
        let s = small_space();
        let mut prev = f64::INFINITY;
        for hours in [0.1, 0.5, 1.0, 4.0, 12.0, 48.0] {
            let best = search(&s, &params(hours)).unwrap().best.loss;
            assert!(best <= prev, "{hours} h: {best} > {prev}");
            prev = best;
        }
    }

    #[test]
    fn less_unique_data_never_lowers_the_best_loss() {
        let s = small_space();
        let mut prev = search(&s, &params(24.0)).unwrap().best.loss;
        for unique in [1e11, 1e10, 1e9, 1e8] {
            let mut p = params(24.0);
            p.unique_tokens = Some(unique);
            let best = search(&s, &p).unwrap().best.loss;
            assert!(best >= prev, "{unique}: {best} < {prev}");
            prev = best;
        }
    }

    #[test]
    fn empty_answer_is_explained_with_figures() {
        let mut p = params(1.0);
        p.hardware.hbm_bytes = 2.0 * 1_048_576.0;
        let err = search(&small_space(), &p).unwrap_err().to_string();
        // 0.9 x 2 MiB usable; figures with the digits that tell them apart, counts with separators.
        assert!(err.contains("do not fit in 0.00176 GiB of usable HBM (the smallest of them needs"), "{err}");
        // This chip has no interconnect: no hint to use more of them.
        assert!(err.contains("of 21,504 configurations") && !err.contains("--chips"), "{err}");
        // Nearest misses first: a budget too short for every step that fits leads with the budget,
        // though more configurations do not fit.
        let mut p = params(1e-6);
        p.hardware.hbm_bytes = 8192.0 * 1_048_576.0;
        let part = search_range(&small_space(), &p, 0, small_space().validate().unwrap());
        assert!(part.rejected.memory > part.rejected.budget && part.rejected.budget > 0, "{:?}", part.rejected);
        let err = search(&small_space(), &p).unwrap_err().to_string();
        let reasons = err.split("configurations, ").nth(1).unwrap();
        assert!(reasons.starts_with(&format!("{} cannot finish one step", crate::error::count(part.rejected.budget))), "{err}");
    }

    #[test]
    fn many_chips_make_big_models_feasible_and_say_how() {
        // 8B-40B parameters: none fits one 72 GB chip with AdamW (16 B per parameter).
        let space = SearchSpace {
            d_model: vec![4096, 6144, 8192],
            n_layers: vec![32, 48, 64],
            seq_len: vec![2048],
            batch_size: vec![64, 256],
            ..small_space()
        };
        let one = params(240.0);
        let err = search(&space, &one).unwrap_err().to_string();
        assert!(err.contains("do not fit"), "{err}");
        let net = Network {
            link_bytes_per_s: 9e11,
            links_per_chip: 1.0,
            topology: Topology::NvlinkSwitch,
            max_chips: 8,
            chips_per_node: None,
            inter_node_bytes_per_s: None,
        };
        let eight = SearchParams { chips: 8, hardware: Hardware { network: Some(net), ..one.hardware }, ..one };
        let out = search(&space, &eight).unwrap();
        let best = space.config_at(out.best.index).unwrap();
        let (m, step) = eight.evaluate_with_sharding(&best);
        let step = step.expect("a feasible many-chip config has a sharding");
        assert!(m.fits_memory && m.memory_bytes <= eight.hardware.usable_hbm_bytes());
        assert_eq!(m.loss, out.best.loss);
        assert_ne!(step.sharding.dp * step.sharding.tp, 1);
        // Brute force over every config and every sharding agrees with the search.
        let size = space.validate().unwrap();
        let brute = (0..size)
            .filter_map(|i| space.config_at(i))
            .filter(|a| {
                let r = f64::from(a.d_model) / f64::from(a.n_layers);
                (20.0..=200.0).contains(&r)
            })
            .map(|a| eight.evaluate(&a))
            .filter(|m| m.fits_memory && m.steps >= 1.0)
            .map(|m| m.loss)
            .fold(f64::INFINITY, f64::min);
        assert!(out.best.loss <= brute);
        // Missing interconnect is refused.
        let err = search(&space, &SearchParams { hardware: one.hardware, ..eight }).unwrap_err().to_string();
        assert!(err.contains("interconnect"), "{err}");
    }

    #[test]
    fn a_plan_over_chip_counts_picks_the_lowest_loss() {
        let space = SearchSpace {
            d_model: vec![2048, 4096],
            n_layers: vec![16, 32],
            seq_len: vec![2048],
            batch_size: vec![64],
            ..small_space()
        };
        let net = Network {
            link_bytes_per_s: 9e11,
            links_per_chip: 1.0,
            topology: Topology::NvlinkSwitch,
            max_chips: 8,
            chips_per_node: None,
            inter_node_bytes_per_s: None,
        };
        let hardware = Hardware { network: Some(net), usd_per_chip_hour: Some(3.0), ..h100_like() };
        let req = SearchRequest {
            hardware,
            budget: Budget { usd: Some(500.0), ..Budget::default() },
            chips: Chips::Auto,
            law: HOFFMANN,
            guards: Guards::default(),
            top_k: 3,
            unique_tokens: None,
        };
        let out = search_plan(&space, &req).unwrap();
        assert_eq!(out.counts.iter().map(|c| c.budget.chips).collect::<Vec<_>>(), vec![1, 2, 4, 8]);
        let best = out.counts.iter().filter_map(|c| c.outcome.as_ref().ok()).map(|o| o.best.loss).fold(f64::INFINITY, f64::min);
        let lowest = &out.counts[out.lowest];
        assert_eq!(lowest.outcome.as_ref().unwrap().best.loss, best);
        // The chosen count is the lowest, or one tied with it that takes less wall-clock for the
        // same money (equal chip-hours on every count).
        let chosen = &out.counts[out.chosen];
        assert!(out.chosen == out.lowest || (lowest.tie.is_some() && chosen.budget.seconds < lowest.budget.seconds));
        assert!(chosen.tie.is_none());
        // No count tied with the chosen one is quicker.
        for c in out.counts.iter().filter(|c| c.tie.is_some()) {
            assert!(c.budget.seconds >= chosen.budget.seconds);
        }
        // Each count is the same as its own search with the hours the money buys there.
        for c in &out.counts {
            let p = SearchParams {
                hardware,
                budget_s: c.budget.seconds,
                law: HOFFMANN,
                guards: Guards::default(),
                top_k: 3,
                unique_tokens: None,
                chips: c.budget.chips,
            };
            assert_eq!(c.outcome.as_ref().ok().map(|o| o.best), search(&space, &p).ok().map(|o| o.best));
        }
        // Rows recompute the metrics; the row's loss is the candidate's.
        let params = SearchParams {
            hardware,
            budget_s: out.counts[out.chosen].budget.seconds,
            law: HOFFMANN,
            guards: Guards::default(),
            top_k: 3,
            unique_tokens: None,
            chips: out.counts[out.chosen].budget.chips,
        };
        let r = rows(&space, &params, &out.best().top);
        assert!((r[0].metrics.loss - out.best().best.loss).abs() <= 1e-12 * r[0].metrics.loss);
    }

    #[test]
    fn absurd_space_is_refused() {
        let s = SearchSpace { d_model: (1..=100_000).collect(), n_layers: (1..=100_000).collect(), ..small_space() };
        assert!(matches!(s.validate(), Err(Error::SpaceTooLarge { .. })));
        let s = SearchSpace { seq_len: vec![], ..small_space() };
        assert_eq!(s.validate(), Err(Error::EmptySpace { axis: "seq_len".into() }));
    }
}
