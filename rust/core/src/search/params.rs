//! What a search needs besides the space ([`SearchParams`]: the chip, the budget, the loss law,
//! the chips to shard over, how many answers to keep) and the modelling guards that keep it where
//! its laws were measured ([`Guards`]); how one configuration is evaluated under them.

use crate::architecture::Architecture;
use crate::error::{Error, Result};
use crate::hardware::Hardware;
use crate::loss::Law;
use crate::metrics::{evaluate_with_data, Metrics};
use crate::predict::check_unique_tokens;
use crate::sharding::{evaluate_sharded, ShardedStep};

/// Most candidates a search lists (`top_k`).
pub const MAX_TOP_K: usize = 100_000;

/// `top_k` as given (any integer) as a count, when in [1, [`MAX_TOP_K`]].
pub fn top_k(top_k: i128) -> Result<usize> {
    crate::error::integer_in("top_k", top_k, 1, MAX_TOP_K as i128)
}

/// `top_k` in [1, [`MAX_TOP_K`]].
pub fn check_top_k(k: usize) -> Result<()> {
    top_k(i128::try_from(k).unwrap_or(i128::MAX)).map(|_| ())
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
    pub(super) fn needs_loss(&self) -> bool {
        self.max_tokens_per_step.is_none() && self.critical_batch
    }

    /// The tokens-per-step guard: `tokens_per_step <= cap`, or with no cap and the critical batch
    /// on, Kaplan's critical batch at the configuration's predicted `loss` (as `loss <=
    /// max_loss`, see [`crate::batch::max_loss_for_tokens_per_step`]). `max_loss` is that bound
    /// for this `tokens_per_step`.
    #[inline]
    pub(super) fn admits(&self, tokens_per_step: f64, loss: f64, max_loss: f64) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::{Attention, Mlp, Precision, Recompute};
    use crate::search::fixtures::params;

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
            experts: 0,
            top_k: 0,
            shared_experts: 0,
        };
        let p = params(24.0);
        assert!(!p.evaluate(&a).fits_memory);
        let small = Architecture { recompute: Recompute::Full, micro_batch: Some(8), ..a };
        assert!(p.evaluate(&small).fits_memory);
        // Same tokens per step, a longer step (32 micro-steps, the forward twice).
        assert!(p.evaluate(&small).step_time_s > p.evaluate(&Architecture { batch_size: 8, ..a }).step_time_s * 32.0);
    }
}
