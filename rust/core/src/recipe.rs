//! The plan a practitioner makes today, the baseline the tool is compared with: turn the time
//! budget into FLOPs at an assumed utilisation (model FLOPs utilisation, MFU), take Chinchilla's
//! compute-optimal parameter count for those FLOPs (a fixed number of tokens per parameter, about
//! 20 in Hoffmann et al. 2022's headline, or the active law's own optimum), and give it a
//! conventional shape (a fixed d_model / n_layers, fixed head size and MLP ratio).

use crate::architecture::{Architecture, Mlp, MAX_DIM};
use crate::error::{Error, Range, Result};
use crate::loss::Law;
use crate::params::total_params;

/// Accepted assumed utilisation (fraction of peak bf16 FLOP/s the run sustains).
pub const UTILIZATION: Range = Range::new(0.01, 1.0, "a fraction of peak");
/// Accepted tokens per parameter.
pub const TOKENS_PER_PARAM: Range = Range::new(0.1, 1e4, "tokens per parameter");
/// Accepted conventional d_model / n_layers.
pub const ASPECT_RATIO: Range = Range::new(1.0, 1e4, "d_model / n_layers");

/// The practitioner's assumptions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecipeRule {
    /// Fraction of peak FLOP/s the run is assumed to sustain (MFU).
    pub utilization: f64,
    /// Tokens per parameter; `None`: the law's own compute-optimal split ([`Law::compute_optimal`]).
    pub tokens_per_param: Option<f64>,
    /// d_model / n_layers of the shape (GPT-3 models span about 30 to 200; 64 is typical).
    pub aspect_ratio: f64,
    pub head_dim: u32,
    pub mlp: Mlp,
    /// d_ff / d_model (4 for GELU, 8/3 for SwiGLU).
    pub ffn_mult: f64,
}

impl Default for RecipeRule {
    fn default() -> Self {
        RecipeRule {
            utilization: 0.4,
            tokens_per_param: Some(20.0),
            aspect_ratio: 64.0,
            head_dim: 64,
            mlp: Mlp::Gelu,
            ffn_mult: 4.0,
        }
    }
}

impl RecipeRule {
    pub fn validate(&self) -> Result<()> {
        UTILIZATION.check("utilization", self.utilization)?;
        if let Some(k) = self.tokens_per_param {
            TOKENS_PER_PARAM.check("tokens_per_param", k)?;
        }
        ASPECT_RATIO.check("aspect_ratio", self.aspect_ratio)?;
        crate::architecture::dim("head_dim", i64::from(self.head_dim))?;
        if !(self.ffn_mult.is_finite() && self.ffn_mult > 0.0 && self.ffn_mult <= 64.0) {
            return Err(Error::invalid_number("ffn_mult", self.ffn_mult, "ratios d_ff / d_model in (0, 64]"));
        }
        Ok(())
    }
}

/// The recipe's numbers for one budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recipe {
    /// Training FLOPs the budget buys at the assumed utilisation: seconds x chips x peak x MFU.
    pub flops: f64,
    /// Compute-optimal parameters and tokens for those FLOPs (C = 6 N D).
    pub params: f64,
    pub tokens: f64,
    /// The conventional shape closest to `params` total parameters.
    pub architecture: Architecture,
}

/// The recipe for `seconds` of wall clock on `chips` chips of `peak_flops_per_s` (bf16 peak),
/// shaped with `base`'s sequence length, batch, vocabulary, tying and precision. With a fixed
/// ratio k: N = sqrt(C / (6 k)), D = k N (C = 6 N D); else the law's optimum. The shape: depth L
/// and width d = aspect x L rounded to whole heads, the L (1 to 512) whose total parameters come
/// closest to N; `d_ff = ffn_mult x d` rounded to a multiple of 64.
pub fn recipe(
    seconds: f64,
    chips: u32,
    peak_flops_per_s: f64,
    law: &Law,
    rule: &RecipeRule,
    base: &Architecture,
) -> Result<Recipe> {
    rule.validate()?;
    let flops = seconds * f64::from(chips.max(1)) * peak_flops_per_s * rule.utilization;
    let (params, tokens) = match rule.tokens_per_param {
        Some(k) => {
            let n = (flops / (6.0 * k)).sqrt();
            (n, k * n)
        }
        None => law.compute_optimal(flops),
    };
    let shaped = |layers: u32| -> Option<Architecture> {
        let hd = rule.head_dim;
        let heads = ((rule.aspect_ratio * f64::from(layers) / f64::from(hd)).round() as u32).max(1);
        let d = heads.checked_mul(hd).filter(|&d| d <= MAX_DIM)?;
        let d_ff = crate::search::ffn_width(rule.ffn_mult, d, 64) as u32;
        Some(Architecture {
            d_model: d,
            n_layers: layers,
            n_heads: heads,
            n_kv_heads: heads,
            head_dim: hd,
            d_ff,
            mlp: rule.mlp,
            micro_batch: None,
            ..*base
        })
    };
    let architecture = (1..=512)
        .filter_map(shaped)
        .min_by(|a, b| (total_params(a) / params).ln().abs().total_cmp(&(total_params(b) / params).ln().abs()))
        .ok_or_else(|| Error::invalid("head_dim", rule.head_dim, "a head size that makes a model"))?;
    architecture.validate()?;
    Ok(Recipe { flops, params, tokens, architecture })
}

/// `arch` as a practitioner would run it on `chips` chips of `hw`: the whole (per-chip) batch at
/// once if it fits, else gradient accumulation with the largest micro-batch (halving from the
/// batch) that fits, else with full recomputation too; on many chips "fits" means some sharding
/// of the chips ([`crate::sharding::best_sharding`]: DP, FSDP, TP, or a mix) fits one chip's
/// memory with that micro-batch. Unchanged when nothing fits (the prediction then says so).
pub fn fit_micro_batch(arch: &Architecture, hw: &crate::hardware::Hardware, chips: u32) -> Architecture {
    let usable = hw.usable_hbm_bytes();
    let fits = |a: &Architecture| {
        if chips <= 1 {
            crate::memory::memory_bytes(a) <= usable
        } else {
            crate::sharding::best_sharding(a, hw, chips).is_some_and(|(_, fits)| fits)
        }
    };
    for recompute in [crate::architecture::Recompute::None, crate::architecture::Recompute::Full] {
        let mut mb = arch.batch_size;
        loop {
            let a = Architecture { recompute, micro_batch: (mb < arch.batch_size).then_some(mb), ..*arch };
            if fits(&a) {
                return a;
            }
            if mb == 1 || !mb.is_multiple_of(2) {
                break;
            }
            mb /= 2;
        }
    }
    *arch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::tests::llama_7b;
    use crate::loss::HOFFMANN;

    #[test]
    fn recipe_by_hand() {
        // 12 h on one chip of 9.894e14 FLOP/s at 40%: 43,200 x 9.894e14 x 0.4 = 1.7097e19 FLOPs;
        // 20 tokens per parameter: N = sqrt(1.7097e19 / 120) = 3.775e8, D = 7.55e9.
        let base = Architecture { seq_len: 2048, batch_size: 256, vocab_size: 32_000, ..llama_7b() };
        let r = recipe(43_200.0, 1, 9.894e14, &HOFFMANN, &RecipeRule::default(), &base).unwrap();
        assert!((r.flops / 1.7097e19 - 1.0).abs() < 1e-4, "{}", r.flops);
        assert!((r.params / 3.775e8 - 1.0).abs() < 1e-3 && (r.tokens / 7.55e9 - 1.0).abs() < 1e-3);
        // Shape: 64 d per layer, heads of 64 (d = 64 L). L = 18: d 1152, 12 x 18 x 1152^2 = 2.87e8
        // blocks + 2 x 32000 x 1152 = 7.4e7 embeddings = 3.6e8; L = 19: d 1216 -> 3.37e8 + 7.8e7 =
        // 4.15e8. The closer (in ratio) to 3.775e8 is L = 18.
        let a = r.architecture;
        assert_eq!((a.n_layers, a.d_model, a.n_heads, a.head_dim, a.d_ff), (18, 1152, 18, 64, 4608));
        assert_eq!((a.seq_len, a.batch_size), (2048, 256));
        // The law's own optimum instead of 20 tokens per parameter: the same FLOPs, Hoffmann's split.
        let own =
            recipe(43_200.0, 1, 9.894e14, &HOFFMANN, &RecipeRule { tokens_per_param: None, ..RecipeRule::default() }, &base)
                .unwrap();
        let (n, d) = HOFFMANN.compute_optimal(own.flops);
        assert_eq!((own.params, own.tokens), (n, d));
        assert!(RecipeRule { utilization: 0.0, ..RecipeRule::default() }.validate().is_err());
    }

    #[test]
    fn micro_batches_halve_until_the_model_fits() {
        use crate::step_time::StepTimeModel;
        // LLaMA-7B's 108 GB of weights and moments do not fit 80 GB at any micro-batch: unchanged.
        let hw = crate::hardware::tests::chip(
            80e9,
            StepTimeModel::Linear { s_per_memcpy_byte: 1e-12, s_per_flop: 1e-15, overhead_s: 0.0 },
        );
        let big = Architecture { batch_size: 64, ..llama_7b() };
        assert_eq!(fit_micro_batch(&big, &hw, 1), big);
        // A 1.3B-parameter shape at batch 256 x 2048 needs micro-steps: the largest that fits, a power
        // of two dividing the batch, below which the whole batch would not fit.
        let a =
            Architecture { d_model: 2048, n_layers: 24, n_heads: 16, n_kv_heads: 16, d_ff: 8192, batch_size: 256, ..llama_7b() };
        let f = fit_micro_batch(&a, &hw, 1);
        let mb = f.micro_batch.expect("micro-steps");
        assert!(256 % mb == 0 && crate::memory::memory_bytes(&f) <= hw.usable_hbm_bytes());
        let twice = Architecture { micro_batch: Some(2 * mb), ..f };
        assert!(2 * mb == 256 || crate::memory::memory_bytes(&twice) > hw.usable_hbm_bytes());
    }
}
