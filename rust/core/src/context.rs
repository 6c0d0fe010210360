//! What a training context shorter than the evaluation context costs. A model trained on
//! sequences of `c_train` tokens cannot use more than `c_train` tokens of context, so evaluated
//! on text where `c_eval > c_train` tokens are available it scores the loss of the shorter
//! window. The loss averaged over a window of `c` tokens falls as a power law in `c` (Xiong et
//! al. 2023, Fig. 1: `L(c) = (alpha / c)^beta + gamma`; Kaplan et al. 2020, Fig. 20, per token
//! position). A context at least as long as the evaluation's costs nothing (at a fixed token
//! count SkyLadder, Zhu et al. 2025, finds shorter training contexts slightly *better* when
//! evaluated within them; no bonus is given for that).

use crate::error::{Error, Result};

/// The context term: the evaluation context, and a scale on the penalty (1: the published curve;
/// the uncertainty scenarios move it by [`CONTEXT_UNCERTAINTY`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContextTerm {
    /// Tokens of context the loss is evaluated with (the law's fit context by default).
    pub eval_context: f64,
    /// Multiplies the penalty (1 by default).
    pub scale: f64,
}

/// Xiong et al. 2023 (arXiv:2309.16039), Fig. 1 legend: `L(c) = (alpha / c)^beta + gamma` per
/// model size, (parameters, alpha, beta) for Llama 2 Long 7B, 13B, 34B and 70B (secondary
/// transcription, `../shared/data/loss/context-runs.csv`). Between sizes alpha and beta are
/// interpolated linearly in log10 N; below 7B the 7B curve is used (SkyLadder's 120M and 360M
/// models, Zhu et al. 2025 Table 18, lose 0.171 nats from 4096 to 512 tokens, where the 7B
/// curve gives 0.157 and extrapolating to their size gives 0.20-0.22), above 70B the 70B curve.
pub const XIONG: [(f64, f64, f64); 4] = [(7e9, 25.4, 0.45), (13e9, 19.5, 0.48), (34e9, 17.7, 0.50), (70e9, 17.9, 0.51)];

/// Relative uncertainty of the context penalty: 512 against 2048 tokens costs 0.120 nats by the
/// 7B curve, 0.155 by Kaplan et al. 2020's per-token law (Fig. 20, averaged over the window),
/// about 0.13 by SkyLadder's small models: +-35%.
pub const CONTEXT_UNCERTAINTY: f64 = 0.35;

/// Evaluation contexts accepted (tokens).
pub const EVAL_CONTEXT: crate::error::Range = crate::error::Range::new(1.0, 16_777_216.0, "tokens");

/// Xiong et al.'s (alpha, beta) for a model of `params` parameters (see [`XIONG`]).
pub fn xiong_curve(params: f64) -> (f64, f64) {
    let (first, last) = (XIONG[0], XIONG[XIONG.len() - 1]);
    if params.is_nan() || params <= first.0 {
        return (first.1, first.2);
    }
    if params >= last.0 {
        return (last.1, last.2);
    }
    let i = XIONG.iter().position(|p| p.0 > params).unwrap_or(XIONG.len() - 1);
    let (lo, hi) = (XIONG[i - 1], XIONG[i]);
    let f = (params / lo.0).log10() / (hi.0 / lo.0).log10();
    (lo.1 + f * (hi.1 - lo.1), lo.2 + f * (hi.2 - lo.2))
}

/// The loss a window of `c` tokens adds above the infinite-context loss on Xiong et al.'s curve
/// `(alpha, beta)`: `(alpha / c)^beta` (nats/token).
#[inline]
pub fn window_loss((alpha, beta): (f64, f64), c: f64) -> f64 {
    (alpha / c).powf(beta)
}

impl ContextTerm {
    /// The published curve evaluated at `eval_context` tokens.
    pub const fn xiong(eval_context: f64) -> ContextTerm {
        ContextTerm { eval_context, scale: 1.0 }
    }

    /// The penalty of training a model of `params` parameters on `seq_len`-token sequences:
    /// `scale ((alpha / seq_len)^beta - (alpha / c_eval)^beta)` when `seq_len < c_eval`, else 0
    /// (nats/token).
    #[inline]
    pub fn penalty(&self, seq_len: f64, params: f64) -> f64 {
        if seq_len >= self.eval_context {
            0.0
        } else {
            let curve = xiong_curve(params);
            self.scale * (window_loss(curve, seq_len) - window_loss(curve, self.eval_context))
        }
    }

    /// Whether [`ContextTerm::penalty`] is the same for every size up to `params` (the 7B curve).
    #[inline]
    pub fn size_independent_below(params: f64) -> bool {
        params <= XIONG[0].0
    }

    pub fn validate(&self) -> Result<()> {
        EVAL_CONTEXT.check("eval_context", self.eval_context)?;
        if !(self.scale.is_finite() && self.scale >= 0.0) {
            return Err(Error::invalid("context.scale", self.scale, "a finite number >= 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xiong_penalty_by_hand() {
        // (25.4 / 512)^0.45 = e^(0.45 x ln 0.049609) = e^(0.45 x -3.003575) = 0.258823;
        // (25.4 / 2048)^0.45 = e^(0.45 x -4.389870) = 0.138700. Training at 512 for a 2048-token
        // evaluation costs 0.120123 nats/token.
        let t = ContextTerm::xiong(2048.0);
        for n in [1e7, 1e9, 7e9] {
            assert!((t.penalty(512.0, n) - 0.120_123).abs() < 2e-6, "{}", t.penalty(512.0, n));
        }
        assert_eq!(t.penalty(2048.0, 1e9), 0.0);
        assert_eq!(t.penalty(8192.0, 1e9), 0.0);
        assert!(t.penalty(1024.0, 1e9) > 0.0 && t.penalty(1024.0, 1e9) < t.penalty(512.0, 1e9));
        assert!(ContextTerm::xiong(0.0).validate().is_err());
        // 70B: (17.9 / 512)^0.51 - (17.9 / 2048)^0.51 = 0.091651 nats (its curve, not the 7B one).
        assert_eq!(xiong_curve(7e10), (17.9, 0.51));
        assert!((t.penalty(512.0, 7e10) - 0.091_651).abs() < 2e-6);
        // Halfway in log10 between 7B and 13B: alpha 22.45, beta 0.465.
        let (a, b) = xiong_curve((7e9f64 * 13e9).sqrt());
        assert!((a - 22.45).abs() < 1e-9 && (b - 0.465).abs() < 1e-12);
    }
}
