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
    /// Predicted final loss (nats/token); +inf when not even one step fits in the budget.
    pub loss: f64,
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
    let params = total_params(arch);
    let non_embedding = non_embedding_params(arch);
    let flops = flops_per_step(arch);
    let memcpy = memcpy_bytes_per_step(arch);
    let memory = memory_bytes(arch);
    let step_time_s = hw.step_time.step_time_s(flops, memcpy);
    let (steps, tokens) = tokens_in_budget(budget_s, step_time_s, arch.tokens_per_step());
    let loss = law.loss(law.n_for(params, non_embedding), tokens);
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
        loss,
    }
}

/// Evaluates many configurations in parallel (same order as `archs`).
pub fn evaluate_many(archs: &[Architecture], hw: &Hardware, budget_s: f64, law: &Law) -> Vec<Metrics> {
    use rayon::prelude::*;
    archs.par_iter().with_min_len(4096).map(|a| evaluate(a, hw, budget_s, law)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::tests::llama_7b;
    use crate::loss::HOFFMANN;
    use crate::step_time::StepTimeModel;

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
    }
}
