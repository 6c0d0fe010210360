//! Every per-configuration metric, computed together: the function the search calls for each
//! configuration and `predict` calls for one.

use crate::architecture::Architecture;
use crate::flops::flops_per_step;
use crate::hardware::Hardware;
use crate::loss::Law;
use crate::memcpy::memcpy_bytes_per_step;
use crate::memory::memory_bytes;
use crate::params::{non_embedding_params, total_params};

/// Metrics of one configuration trained for one budget on one chip.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    /// Total parameters (count).
    pub params: f64,
    pub non_embedding_params: f64,
    /// Training FLOPs of one step (FLOP).
    pub flops_per_step: f64,
    /// Bytes read and written in HBM by one step (bytes).
    pub memcpy_bytes_per_step: f64,
    /// Peak device memory of one step (bytes).
    pub memory_bytes: f64,
    /// `memory_bytes <= usable HBM`.
    pub fits_memory: bool,
    /// Seconds per step from the hardware's step-time model (s).
    pub step_time_s: f64,
    /// Whole steps that fit in the budget: floor(budget_s / step_time_s).
    pub steps: f64,
    /// Tokens trained in the budget: steps x batch_size x seq_len.
    pub tokens: f64,
    /// Tokens the loss law sees: `tokens`, or with limited unique data the repetition-discounted
    /// count of Muennighoff et al. 2023 ([`crate::loss::effective_tokens`]).
    pub effective_tokens: f64,
    /// Predicted final loss (nats/token); +inf when not even one step fits in the budget.
    pub loss: f64,
}

/// Wall-clock seconds a money budget buys on `chips` chips at `usd_per_chip_hour` each:
/// usd / (usd_per_chip_hour x chips) hours. Unit: seconds.
#[inline]
pub fn budget_s_from_usd(usd: f64, usd_per_chip_hour: f64, chips: f64) -> f64 {
    3600.0 * usd / (usd_per_chip_hour * chips)
}

/// Whole steps that fit in the budget and the tokens they train:
/// `steps = floor(budget_s / step_time_s)`, `tokens = steps x tokens_per_step`.
#[inline]
pub fn tokens_in_budget(budget_s: f64, step_time_s: f64, tokens_per_step: f64) -> (f64, f64) {
    let steps = (budget_s / step_time_s).floor();
    (steps, steps * tokens_per_step)
}

/// Evaluates one configuration. `budget_s` is the wall-clock training budget in seconds.
#[inline]
pub fn evaluate(arch: &Architecture, hw: &Hardware, budget_s: f64, law: &Law) -> Metrics {
    evaluate_with_data(arch, hw, budget_s, law, None)
}

/// The tokens the loss law sees when only `unique_tokens` of data exist (`None`: unlimited).
#[inline]
pub fn law_tokens(tokens: f64, unique_tokens: Option<f64>) -> f64 {
    match unique_tokens {
        Some(u) => crate::loss::effective_tokens(tokens, u),
        None => tokens,
    }
}

/// [`evaluate`] with a limit on unique training data (tokens); repeated data counts for less.
#[inline]
pub fn evaluate_with_data(arch: &Architecture, hw: &Hardware, budget_s: f64, law: &Law, unique_tokens: Option<f64>) -> Metrics {
    let params = total_params(arch);
    let non_embedding = non_embedding_params(arch);
    let flops = flops_per_step(arch);
    let memcpy = memcpy_bytes_per_step(arch);
    let memory = memory_bytes(arch);
    let step_time_s = hw.step_time.step_time_for(arch, flops, memcpy);
    let (steps, tokens) = tokens_in_budget(budget_s, step_time_s, arch.tokens_per_step());
    let effective_tokens = law_tokens(tokens, unique_tokens);
    let loss = law.loss(law.n_for(params, non_embedding), effective_tokens);
    Metrics {
        params,
        non_embedding_params: non_embedding,
        flops_per_step: flops,
        memcpy_bytes_per_step: memcpy,
        memory_bytes: memory,
        fits_memory: memory <= hw.usable_hbm_bytes(),
        step_time_s,
        steps,
        tokens,
        effective_tokens,
        loss,
    }
}

/// Evaluates many configurations in parallel (same order as `archs`).
pub fn evaluate_many(archs: &[Architecture], hw: &Hardware, budget_s: f64, law: &Law) -> Vec<Metrics> {
    use rayon::prelude::*;
    archs.par_iter().with_min_len(4096).map(|a| evaluate(a, hw, budget_s, law)).collect()
}

/// Why a prediction is outside the range where the model was validated. Each flag is a
/// reason to distrust the number, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Parameters outside the law's fitted range.
    ParamsOutsideFit,
    /// Training tokens outside the law's fitted range.
    TokensOutsideFit,
    /// d_model / n_layers outside Kaplan et al. 2020's shape-insensitive range (20 to 200).
    AspectRatio,
    /// Tokens per step above Kaplan's critical batch at the predicted loss.
    AboveCriticalBatch,
    /// Needs more memory than the chip's usable HBM.
    DoesNotFit,
    /// Not one step fits in the budget (no loss).
    NoStepInBudget,
    /// The plan trains on more tokens than the unique data holds (several epochs).
    RepeatsData,
}

impl Validity {
    pub fn message(self) -> &'static str {
        match self {
            Validity::ParamsOutsideFit => "parameter count outside the law's fitted range (7e7 to 1.6e10): extrapolation",
            Validity::TokensOutsideFit => "training tokens outside the law's fitted range (5e9 to 5e11): extrapolation",
            Validity::AspectRatio => "d_model/n_layers outside 20-200, where loss is not known to depend on size alone",
            Validity::AboveCriticalBatch => "tokens per step above the critical batch: larger batches waste tokens",
            Validity::DoesNotFit => "does not fit in the chip's usable memory",
            Validity::NoStepInBudget => "not one training step fits in the budget",
            Validity::RepeatsData => "the plan repeats the unique data (more than one epoch): repeated tokens count for less",
        }
    }
}

/// Every validity flag of one prediction (empty when inside every validated range).
pub fn validity(arch: &Architecture, m: &Metrics, fit: &crate::loss::FitRange) -> Vec<Validity> {
    let mut out = Vec::new();
    let inside = |v: f64, (lo, hi): (f64, f64)| (lo..=hi).contains(&v);
    if !inside(m.params, fit.params) {
        out.push(Validity::ParamsOutsideFit);
    }
    if m.tokens > 0.0 && !inside(m.tokens, fit.tokens) {
        out.push(Validity::TokensOutsideFit);
    }
    if !inside(f64::from(arch.d_model) / f64::from(arch.n_layers), (20.0, 200.0)) {
        out.push(Validity::AspectRatio);
    }
    if m.loss.is_finite() && arch.tokens_per_step() > crate::loss::critical_batch_tokens(m.loss) {
        out.push(Validity::AboveCriticalBatch);
    }
    if !m.fits_memory {
        out.push(Validity::DoesNotFit);
    }
    if m.steps < 1.0 {
        out.push(Validity::NoStepInBudget);
    }
    if m.effective_tokens < m.tokens {
        out.push(Validity::RepeatsData);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::tests::llama_7b;
    use crate::loss::HOFFMANN;
    use crate::step_time::StepTimeModel;

    #[test]
    fn money_buys_hours_by_hand() {
        // $5,000 at $3.22 per chip-hour on one chip: 1552.8 h = 5,590,062 s.
        assert!((budget_s_from_usd(5000.0, 3.22, 1.0) - 5_590_062.1).abs() < 0.1);
        assert_eq!(budget_s_from_usd(100.0, 2.0, 4.0), 45_000.0);
    }

    #[test]
    fn tokens_are_whole_steps_times_tokens_per_step() {
        // A step of exactly 2 s (overhead only dominates: 2 s + 1e-30 s/byte x bytes); budget 7 s
        // -> 3 whole steps x 2048 tokens = 6144 tokens.
        let hw = Hardware {
            hbm_bytes: 80e9,
            usable_hbm_fraction: 1.0,
            step_time: StepTimeModel::Linear { s_per_memcpy_byte: 1e-30, s_per_flop: 0.0, overhead_s: 2.0 },
        };
        let m = evaluate(&llama_7b(), &hw, 7.0, &HOFFMANN);
        assert_eq!(m.steps, 3.0);
        assert_eq!(m.tokens, 6144.0);
        assert!(!m.fits_memory, "7B with AdamW needs > 100 GB");
        let m = evaluate(&llama_7b(), &hw, 1.0, &HOFFMANN);
        assert_eq!(m.tokens, 0.0);
        assert!(m.loss.is_infinite());
        let flags = validity(&llama_7b(), &m, &crate::loss::CHINCHILLA_FIT_RANGE);
        assert_eq!(flags, vec![Validity::DoesNotFit, Validity::NoStepInBudget]);
    }
}
