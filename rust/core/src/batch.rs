//! What a batch size costs in tokens: the batch term (default) and Kaplan et al. 2020's
//! critical batch (the plain law's cap).
//!
//! The batch term prices batch size as *token efficiency*: trained at `B` tokens per step, `D`
//! tokens are worth `D x efficiency(B, D)` tokens of a run at the optimal batch `B_opt(D)`, where
//! Chinchilla-form laws are assumed to have been fitted (their runs used tuned batches).
//! - `B_opt(D) = 0.5807 D^0.5709` tokens: Li et al. 2025 (Step Law, arXiv:2503.04715), the mean
//!   of their 1000 bootstrap fits (`exp(-0.5435) D^0.5709`, repo `step-law/steplaw`,
//!   `data/1004_fitted_lr_bs_scaling_model_parameters.csv`).
//! - Above it, McCandlish et al. 2018's relation as Kaplan et al. 2020 (eq. 5.5) write it in
//!   tokens, `D_eff = D / (1 + B / B_crit)`, anchored at `B_opt`: `efficiency = (1 + B_opt /
//!   B_crit) / (1 + B / B_crit)`, with `B_crit = 13.7 B_opt`.
//! - Below it, `efficiency = exp(-0.042 log2(B_opt / B)^2)`: the Step Law sweeps lose a little at
//!   smaller batches too, which McCandlish's form (it favours every smaller batch) cannot show.
//!
//! The two constants were fitted here, with Besiroglu et al. 2024's data term, to the Step Law
//! sweeps in `../shared/data/loss/batch-runs.csv` (each (model, tokens) group's best smoothed
//! loss over the learning rate at each batch): `B_crit / B_opt` = 13.7 on the 29 points near 2x
//! and 4x the best batch (rms 0.21 percentage points; Hoffmann's data term gives 14.6), the
//! small-batch curvature 0.042 on the 55 points from 1/8 to 1x (0.0415 on the 15 near 1/2x).
//! Measured: 1/2x costs +0.04 to +0.52% (mean 0.25%), 2x +0.08 to +0.59% (0.34%), 4x +0.81 to
//! +2.18% (1.31%). Uncertainty: the measured best batch is 0.7 to 1.9x Step Law's, so `B_opt` is
//! taken within a factor of 2; the sweeps cover up to 0.54B non-embedding parameters and 100B
//! tokens, one corpus, training loss.

use crate::error::{Error, Result};

/// The batch term's constants (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchTerm {
    /// `c` of `B_opt = c D^gamma` (tokens).
    pub b_opt_coef: f64,
    /// `gamma` of `B_opt = c D^gamma`.
    pub b_opt_exp: f64,
    /// `B_crit / B_opt` (> 0).
    pub crit_over_opt: f64,
    /// Curvature below `B_opt`: efficiency `exp(-k log2(B_opt / B)^2)`.
    pub small_batch_curvature: f64,
}

/// The default batch term (Step Law's `B_opt`, the two constants fitted to its sweeps).
pub const STEP_LAW: BatchTerm =
    BatchTerm { b_opt_coef: 0.580_7, b_opt_exp: 0.570_9, crit_over_opt: 13.7, small_batch_curvature: 0.042 };

/// The factor within which `B_opt` is known (the measured best batch of the sweeps is 0.7 to 1.9
/// times Step Law's): the term's uncertainty is its value with `B_opt` this much larger and smaller.
pub const B_OPT_FACTOR: f64 = 2.0;

/// Batch sizes relative to `B_opt` the Step Law sweeps measured (1/8 to 16 times): outside, the
/// term is an extrapolation.
pub const MEASURED_RATIO: (f64, f64) = (0.125, 16.0);

impl BatchTerm {
    /// Step Law's optimal batch for `tokens` training tokens (tokens per step).
    #[inline]
    pub fn optimal_batch_tokens(&self, tokens: f64) -> f64 {
        self.b_opt_coef * tokens.powf(self.b_opt_exp)
    }

    /// ln of the token efficiency at `u = ln(B / B_opt)` (<= 0; 0 at the optimum).
    #[inline]
    pub fn ln_efficiency_at(&self, u: f64) -> f64 {
        if u > 0.0 {
            let k = self.crit_over_opt;
            (1.0 + 1.0 / k).ln() - (1.0 + u.exp() / k).ln()
        } else {
            let x = u * std::f64::consts::LOG2_E;
            -self.small_batch_curvature * x * x
        }
    }

    /// [`BatchTerm::ln_efficiency_at`] without libm calls (relative error about 1e-13), for the
    /// search kernel's first pass.
    #[inline(always)]
    pub fn ln_efficiency_at_approx(&self, u: f64) -> f64 {
        if u > 0.0 {
            let k = self.crit_over_opt;
            if u > 690.0 {
                return self.ln_efficiency_at(u);
            }
            // ln(1 + 1/k) is a constant the compiler folds only for a literal k: approximated too.
            crate::fastmath::ln_approx(1.0 + 1.0 / k) - crate::fastmath::ln_approx(1.0 + crate::fastmath::exp_approx(u) / k)
        } else {
            let x = u * std::f64::consts::LOG2_E;
            -self.small_batch_curvature * x * x
        }
    }

    /// `u = ln(B / B_opt(D))` from `ln B` and `ln D` (tokens per step, training tokens).
    #[inline(always)]
    pub fn log_ratio(&self, ln_tokens_per_step: f64, ln_tokens: f64) -> f64 {
        ln_tokens_per_step - self.b_opt_coef.ln() - self.b_opt_exp * ln_tokens
    }

    /// The token efficiency of `tokens_per_step` when training `tokens` tokens (in (0, 1]).
    pub fn efficiency(&self, tokens_per_step: f64, tokens: f64) -> f64 {
        self.ln_efficiency_at(self.log_ratio(tokens_per_step.ln(), tokens.ln())).exp()
    }

    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("batch.b_opt_coef", self.b_opt_coef),
            ("batch.b_opt_exp", self.b_opt_exp),
            ("batch.crit_over_opt", self.crit_over_opt),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(field, v, "a finite number > 0"));
            }
        }
        if !(self.small_batch_curvature.is_finite() && self.small_batch_curvature >= 0.0) {
            return Err(Error::invalid("batch.small_batch_curvature", self.small_batch_curvature, "a finite number >= 0"));
        }
        Ok(())
    }
}

/// Kaplan et al. 2020's critical batch constants (eq. 5.3, Table 5): `B* = 2.1e8` tokens,
/// `alpha_B = 0.21`, fitted on WebText2 losses in nats.
const KAPLAN_B_STAR: f64 = 2.1e8;
const KAPLAN_ALPHA_B: f64 = 0.21;

/// Kaplan et al. 2020 (eq. 5.3): critical batch B_crit(L) = B* / L^(1/alpha_B) tokens, with
/// B* = 2.1e8 tokens and alpha_B = 0.21; beyond it, more tokens per step stop buying fewer steps.
/// The plain law's cap on tokens per step (without the batch term).
#[inline]
pub fn critical_batch_tokens(loss: f64) -> f64 {
    KAPLAN_B_STAR / loss.powf(1.0 / KAPLAN_ALPHA_B)
}

/// The largest predicted loss at which `tokens_per_step` is still within Kaplan's critical batch:
/// `tokens_per_step <= B* / L^(1/alpha_B)  <=>  L <= (B* / tokens_per_step)^alpha_B`. The search
/// uses this form so the power is computed once per batch size, not once per configuration.
#[inline]
pub fn max_loss_for_tokens_per_step(tokens_per_step: f64) -> f64 {
    (KAPLAN_B_STAR / tokens_per_step).powf(KAPLAN_ALPHA_B)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optimal_batch_and_efficiency_by_hand() {
        // D = 1e10: ln D = 23.025851, x 0.5709 = 13.145458, e^ = 511,682; x 0.5807 = 297,134 tokens.
        let b_opt = STEP_LAW.optimal_batch_tokens(1e10);
        assert!((b_opt / 297_134.0 - 1.0).abs() < 1e-5, "{b_opt}");
        assert!((STEP_LAW.efficiency(b_opt, 1e10) - 1.0).abs() < 1e-12);
        // Twice the optimum: (1 + 1/13.7) / (1 + 2/13.7) = 1.072993 / 1.145985 = 0.936306.
        assert!((STEP_LAW.efficiency(2.0 * b_opt, 1e10) - 0.936_306).abs() < 1e-6);
        // Four times: 1.072993 / 1.291971 = 0.830508. Half: e^-0.042 = 0.958870.
        assert!((STEP_LAW.efficiency(4.0 * b_opt, 1e10) - 0.830_508).abs() < 1e-6);
        assert!((STEP_LAW.efficiency(0.5 * b_opt, 1e10) - 0.958_870).abs() < 1e-6);
        // Sixteen times (McCandlish: half the tokens wasted near B_crit): 1.072993 / 2.167883.
        assert!((STEP_LAW.efficiency(16.0 * b_opt, 1e10) - 0.494_949).abs() < 1e-6);
    }

    #[test]
    fn approximate_efficiency_matches() {
        for u in [-3.0, -0.5, 0.0, 1e-9, 0.3, 2.0, 7.0, 40.0] {
            let (a, e) = (STEP_LAW.ln_efficiency_at_approx(u), STEP_LAW.ln_efficiency_at(u));
            assert!((a - e).abs() <= 1e-12 * e.abs().max(1.0), "{u}: {a} vs {e}");
        }
    }

    #[test]
    fn critical_batch_by_hand() {
        // L = 3 nats: 3^(1/0.21) = e^(1.0986 x 4.7619) = e^5.2315 = 187.1; 2.1e8 / 187.1 = 1.12e6.
        let b = critical_batch_tokens(3.0);
        assert!((b / 1.122e6 - 1.0).abs() < 0.01, "{b}");
        // The inverse: at 1.12e6 tokens per step the largest admissible loss is 3.
        assert!((max_loss_for_tokens_per_step(b) - 3.0).abs() < 1e-12);
    }
}
