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
        RecipeRule::DEFAULT
    }
}

impl RecipeRule {
    /// The usual assumptions: 40% MFU (a well-tuned large run; PaLM reports 46%, GPT-3 about
    /// 20%), Chinchilla's 20 tokens per parameter (Hoffmann et al. 2022), d_model / n_layers = 64,
    /// heads of 64, GELU with d_ff = 4 d_model (GPT-2/3).
    pub const DEFAULT: RecipeRule = RecipeRule {
        utilization: 0.4,
        tokens_per_param: Some(20.0),
        aspect_ratio: 64.0,
        head_dim: 64,
        mlp: Mlp::Gelu,
        ffn_mult: 4.0,
    };

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

/// The recipe's shape defaults beside [`RecipeRule::default`]: the context, batch and vocabulary
/// of the recipe's model when the user gives none (LLaMA's 2,048-token context and 32,000-token
/// vocabulary; GPT-3's batches of about 256 x 2,048 = 0.5 M tokens at this scale).
pub const SEQ_LEN: u32 = 2048;
pub const BATCH_SIZE: u32 = 256;
pub const VOCAB_SIZE: u32 = 32_000;

/// The word that asks for [`recipe_at_calibrated_utilization`] where a utilisation is expected
/// (`--utilization calibrated`); any other word is an error naming the accepted values.
pub fn check_calibrated_word(word: &str) -> Result<()> {
    if word.trim().eq_ignore_ascii_case("calibrated") {
        Ok(())
    } else {
        Err(Error::invalid(
            "utilization",
            word,
            &format!("{} or 'calibrated' (the hardware file's prediction for the recipe's model)", UTILIZATION.expected()),
        ))
    }
}

/// Most rounds [`recipe_at_calibrated_utilization`] takes to reach a fixed point.
pub const MAX_UTILIZATION_ROUNDS: u32 = 16;

/// The model FLOPs utilisation `hw`'s step time predicts for `arch` on `chips` chips, in the
/// recipe's own convention: 6 N T per step (N total parameters, T tokens per step, C = 6 N D) over
/// the step time of the fastest sharding that fits (or the least-memory one) times chips x peak
/// bf16 FLOP/s, clamped to [`UTILIZATION`]. An error when no sharding of the chips divides the
/// model (nothing to price).
pub fn predicted_utilization(arch: &Architecture, hw: &crate::hardware::Hardware, chips: u32) -> Result<f64> {
    let chips = chips.max(1);
    let Some((step, _)) = crate::sharding::best_sharding(arch, hw, chips) else {
        return Err(Error::invalid(
            "utilization",
            "calibrated",
            &format!(
                "a model the hardware can price: no sharding of {chips} chips divides the recipe's {} x {} model \
                 (batch {}); give a fraction of peak instead",
                arch.d_model, arch.n_layers, arch.batch_size
            ),
        ));
    };
    let mfu = 6.0 * total_params(arch) * arch.tokens_per_step()
        / (step.step_time_s * f64::from(chips) * hw.datasheet.peak_bf16_flops_per_s);
    Ok(if mfu.is_finite() { mfu.clamp(UTILIZATION.lo, UTILIZATION.hi) } else { UTILIZATION.lo })
}

/// A recipe at the utilisation the hardware file predicts for it (a "fair" recipe: a practitioner
/// who measured their MFU on this machine), and that utilisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibratedRecipe {
    pub recipe: Recipe,
    /// The utilisation the recipe's FLOPs were computed at.
    pub utilization: f64,
    /// Rounds taken ([`utilization_fixed_point`]).
    pub rounds: u32,
}

/// The recipe whose FLOPs budget uses the utilisation `hw` predicts for the recipe's own model
/// ([`predicted_utilization`], the model run as [`fit_micro_batch`] runs it) instead of the
/// assumed `rule.utilization`, from [`utilization_fixed_point`] starting at `rule.utilization`.
pub fn recipe_at_calibrated_utilization(
    seconds: f64,
    chips: u32,
    hw: &crate::hardware::Hardware,
    law: &Law,
    rule: &RecipeRule,
    base: &Architecture,
) -> Result<CalibratedRecipe> {
    let peak = hw.datasheet.peak_bf16_flops_per_s;
    utilization_fixed_point(
        rule.utilization,
        |u| recipe(seconds, chips, peak, law, &RecipeRule { utilization: u, ..*rule }, base),
        |a| predicted_utilization(&fit_micro_batch(a, hw, chips), hw, chips),
    )
}

/// The utilisation u whose recipe `at(u)` buys a model whose own utilisation `utilization_of` is
/// u: starting at `u0`, repeat u <- utilization_of(at(u).architecture) until a model repeats.
/// - The model repeats at once (the last round's): a fixed point, the answer.
/// - An earlier model repeats: a cycle (a bigger model predicted at a lower utilisation than the
///   one that bought it, e.g. because it needs micro-steps). Each model of the cycle is paired with
///   the utilisation that bought it inside the cycle; the answer is the smallest model at its
///   utilisation, which is below that model's own prediction (the conservative side).
/// - No repeat within [`MAX_UTILIZATION_ROUNDS`] rounds: an error (give a utilisation instead).
pub fn utilization_fixed_point(
    u0: f64,
    at: impl Fn(f64) -> Result<Recipe>,
    utilization_of: impl Fn(&Architecture) -> Result<f64>,
) -> Result<CalibratedRecipe> {
    // (the utilisation that bought it, the recipe)
    let mut rounds: Vec<(f64, Recipe)> = Vec::new();
    let mut u = u0;
    for round in 1..=MAX_UTILIZATION_ROUNDS {
        let r = at(u)?;
        if let Some(first) = rounds.iter().position(|(_, prev)| prev.architecture == r.architecture) {
            let (utilization, recipe) = if first + 1 == rounds.len() {
                (u, r) // the model's own prediction buys the model again
            } else {
                // The cycle: rounds[first + 1..] bought inside it, and rounds[first]'s model
                // bought again now at u.
                rounds[first + 1..]
                    .iter()
                    .copied()
                    .chain(std::iter::once((u, r)))
                    .min_by(|x, y| total_params(&x.1.architecture).total_cmp(&total_params(&y.1.architecture)))
                    .expect("a cycle has members")
            };
            return Ok(CalibratedRecipe { recipe, utilization, rounds: round });
        }
        let next = utilization_of(&r.architecture)?;
        rounds.push((u, r));
        u = next;
    }
    Err(Error::invalid(
        "utilization",
        "calibrated",
        &format!(
            "a utilisation that settles: the recipe's model changed in each of {MAX_UTILIZATION_ROUNDS} rounds; give a \
             fraction of peak instead"
        ),
    ))
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
    fn predicted_utilization_by_hand() {
        use crate::step_time::StepTimeModel;
        // A step of exactly 1 s on one chip of 9.894e14 FLOP/s: MFU = 6 N T / (1 x 9.894e14), 0.67
        // for LLaMA-7B's 6.74e9 parameters (N from `total_params`, tested in params.rs).
        let hw = crate::hardware::tests::chip(
            80e9,
            StepTimeModel::Linear { s_per_memcpy_byte: 0.0, s_per_flop: 0.0, overhead_s: 1.0 },
        );
        let a = Architecture { seq_len: 2048, batch_size: 8, ..llama_7b() }; // T = 16,384 tokens
        let n = total_params(&a);
        let want = 6.0 * n * 16_384.0 / 9.894e14;
        assert!(want > 0.6 && want < 0.7);
        assert!((predicted_utilization(&a, &hw, 1).unwrap() / want - 1.0).abs() < 1e-12);
        // A step so short the MFU would pass 1: clamped to the range's top (a datasheet bound).
        let fast = crate::hardware::tests::chip(
            80e9,
            StepTimeModel::Linear { s_per_memcpy_byte: 0.0, s_per_flop: 0.0, overhead_s: 1e-9 },
        );
        assert_eq!(predicted_utilization(&a, &fast, 1).unwrap(), UTILIZATION.hi);
    }

    #[test]
    fn the_calibrated_recipe_sits_where_its_own_utilization_buys_it() {
        use crate::step_time::StepTimeModel;
        // Every step takes t seconds (one chip): a model of N parameters has MFU u = 6 N T / (t P),
        // and the recipe at u buys N = sqrt(S P u / 120) (20 tokens per parameter). The fixed point:
        // u = 36 T^2 S / (120 t^2 P) = 1.1725e-3 / t^2 for T = 32,768, S = 3,600, P = 9.894e14:
        // 0.469 at t = 0.05 s, 0.0293 at 0.2 s, 0.01 (the floor) at 1 s. Shapes are discrete (N jumps
        // by up to about 1.4x between depths near this size), so within a factor of 1.5.
        let base = Architecture { seq_len: 2048, batch_size: 16, vocab_size: 32_000, ..llama_7b() };
        for (t, want) in [(0.05, 0.469), (0.2, 0.0293), (1.0, 0.01)] {
            let hw = crate::hardware::tests::chip(
                80e9,
                StepTimeModel::Linear { s_per_memcpy_byte: 0.0, s_per_flop: 0.0, overhead_s: t },
            );
            let c = recipe_at_calibrated_utilization(3600.0, 1, &hw, &HOFFMANN, &RecipeRule::default(), &base).unwrap();
            assert!(c.utilization / want < 1.5 && want / c.utilization < 1.5, "t = {t}: {} vs {want}", c.utilization);
            // Its FLOPs are S x P x u.
            assert!((c.recipe.flops / (3600.0 * 9.894e14 * c.utilization) - 1.0).abs() < 1e-12);
            // Here (a constant step) the map is monotone: a fixed point, at the model's own prediction.
            let own = predicted_utilization(&fit_micro_batch(&c.recipe.architecture, &hw, 1), &hw, 1).unwrap();
            assert_eq!(c.utilization, own, "t = {t}");
        }
    }

    #[test]
    fn a_cycle_takes_its_smallest_model_at_the_utilisation_that_bought_it() {
        // Two models: below 30% the recipe buys A (small), from 30% B (big); A runs at 35%, B at 25%
        // (say B needs micro-steps). From 40%: B, then (25%) A, then (35%) B again: a cycle of A and
        // B. A was bought at 25% inside it: the answer is A at 25%, below A's own 35%.
        let a = Architecture { d_model: 512, n_layers: 8, ..llama_7b() };
        let b = Architecture { d_model: 1024, n_layers: 16, ..llama_7b() };
        let at = |u: f64| -> Result<Recipe> {
            Ok(Recipe { flops: u, params: 0.0, tokens: 0.0, architecture: if u < 0.3 { a } else { b } })
        };
        let own = |m: &Architecture| -> Result<f64> { Ok(if *m == a { 0.35 } else { 0.25 }) };
        let c = utilization_fixed_point(0.4, at, own).unwrap();
        assert_eq!((c.recipe.architecture, c.utilization, c.rounds), (a, 0.25, 3));
        // A fixed point: B runs at 50%; from 40% B, then (50%) B again.
        let c = utilization_fixed_point(0.4, at, |m: &Architecture| Ok(if *m == a { 0.35 } else { 0.5 })).unwrap();
        assert_eq!((c.recipe.architecture, c.utilization, c.rounds), (b, 0.5, 2));
        // A model that changes every round: an error, not a guess.
        let drifting = |u: f64| -> Result<Recipe> {
            Ok(Recipe { flops: u, params: 0.0, tokens: 0.0, architecture: Architecture { d_model: (u * 1e4) as u32, ..a } })
        };
        let k = std::cell::Cell::new(0.0);
        let rising = |_: &Architecture| {
            k.set(k.get() + 1.0);
            Ok(0.1 + 0.01 * k.get())
        };
        let e = utilization_fixed_point(0.4, drifting, rising).unwrap_err();
        assert!(e.to_string().contains("changed in each of 16 rounds"), "{e}");
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
