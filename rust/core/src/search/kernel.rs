//! The search kernel ([`search_range`]): a range of indices searched in parallel, one shape block
//! at a time, with every metric of every sharding fitted bilinearly in depth and batch, the loss
//! approximated first and computed exactly only where a decision needs it. Same answer as
//! [`search_range_reference`], which its tests check on many spaces.

use rayon::prelude::*;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::architecture::Architecture;
use crate::batch::max_loss_for_tokens_per_step;
use crate::bilinear::Bilinear;
use crate::loss::Law;
use crate::metrics::tokens_in_budget;
use crate::params::{active_non_embedding_params, active_params, non_embedding_params, total_params};
use crate::pareto::{Candidate, ParetoBuilder};
use crate::sharding::{fit_shardings, shardings, Sharding, ShardingFit};

use super::{search_range_reference, Partial, SearchParams, SearchSpace};

/// Configurations per parallel work item (and per Pareto pre-reduction), at most: a space of small
/// shape blocks gets items of [`SHAPES_PER_ITEM`] shapes instead ([`item_len`]).
const CHUNK: u64 = 1 << 16;

/// Shapes per call of [`search_range`] ([`call_chunk`]) and per parallel work item: fitting a shape
/// costs about 2 us on one core whatever its block's size (two widths x 1,000,000 contexts, every
/// configuration its own shape, took 2-3 s as one call of 2^21 configurations; issue 23 U3), so a
/// call of 2^14 shapes is about 30 ms on one core and Ctrl-C is honoured within it.
const SHAPES_PER_CALL: u64 = 1 << 14;
const SHAPES_PER_ITEM: u64 = 1 << 12;

/// Configurations per parallel work item for `space`: [`CHUNK`], or [`SHAPES_PER_ITEM`] shape
/// blocks when that is fewer (so a call of small blocks still spreads over the cores).
fn item_len(space: &SearchSpace) -> u64 {
    CHUNK.min(space.block_len().max(1) * SHAPES_PER_ITEM)
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
/// 1e-15); reported metrics are always recomputed directly ([`rows`](super::rows)).
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
    let item = item_len(space);
    let n_chunks = (end.saturating_sub(start)).div_ceil(item);
    (0..n_chunks)
        .into_par_iter()
        .map(|c| {
            let lo = start + c * item;
            Kernel::new(space, params).run(lo, (lo + item).min(end))
        })
        .reduce(Partial::empty, |a, b| a.merge(b, params.top_k))
}

/// Configurations per [`search_range`] call for a caller that reports progress and honours
/// Ctrl-C between calls: tens of milliseconds of work on two cores (the kernel runs at 1e8 to
/// 6e8 configurations per second; the reference path, for many chips with a step-time model that
/// is not linear, 16 times fewer), and at most [`SHAPES_PER_CALL`] shapes.
pub fn call_chunk(space: &SearchSpace, params: &SearchParams) -> u64 {
    let configurations = if params.chips > 1 && !params.hardware.step_time.is_linear() { 1 << 17 } else { 1 << 21 };
    configurations.min(space.block_len().max(1) * SHAPES_PER_CALL)
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
        // The counts the law sees: all of a dense model's, a mixture's active ones (`LossInput`).
        // The space enumerates dense models only; this keeps the kernel's loss the reference's
        // for any architecture it is given.
        let (law_total, law_non_embedding) = if arch.is_moe() {
            (Bilinear::fit(mb, |l, b| active_params(&at(l, b))), Bilinear::fit(mb, |l, b| active_non_embedding_params(&at(l, b))))
        } else {
            (total, non_embedding)
        };
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
            let n_law = law.law_params(law_non_embedding.at_depth(l).0, law_total.at_depth(l).0, d_model);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::{Attention, Recompute};
    use crate::hardware::{Network, Topology};
    use crate::loss::HOFFMANN as HOFFMANN_WITH_TERMS;
    use crate::search::fixtures::{params, small_space, HOFFMANN};
    use crate::search::{search, Guards, SearchParams, NO_ASPECT_GUARD};
    use crate::step_time::StepTimeModel;

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
                chips_per_pod: None,
                inter_pod_bytes_per_s: None,
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
}
