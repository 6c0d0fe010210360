//! `predict`: everything about one architecture trained on one hardware for one budget, on one
//! chip or several (each count with its fastest sharding that fits), with the validity flags that
//! say when not to trust the numbers. The bindings and the CLI show what this returns.

use crate::architecture::Architecture;
use crate::budget::{best_count, Budget, Chips, ResolvedBudget};
use crate::error::{Error, Result};
use crate::hardware::Hardware;
use crate::loss::{FitRange, Law};
use crate::metrics::{evaluate_with_data, validity, Metrics, Validity};
use crate::sharding::{check_layout, evaluate_layout, evaluate_sharded, sharded_step, shardings, ShardedStep, Sharding};

/// What a prediction needs besides the architecture, the hardware and the budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictOptions {
    pub law: Law,
    /// The range of the data the law was fitted on (extrapolation flags).
    pub fit: FitRange,
    /// Unique training tokens available (`None`: unlimited).
    pub unique_tokens: Option<f64>,
    /// Train with exactly this layout (its chips) instead of the fastest sharding that fits.
    pub layout: Option<Sharding>,
}

impl PredictOptions {
    pub fn validate(&self) -> Result<()> {
        self.law.validate()?;
        check_unique_tokens(self.unique_tokens)
    }
}

/// `None` or a finite count >= 1.
pub fn check_unique_tokens(unique_tokens: Option<f64>) -> Result<()> {
    match unique_tokens {
        Some(u) if !(u.is_finite() && u >= 1.0) => {
            Err(Error::invalid_number("unique_tokens", u, "a finite number of tokens >= 1"))
        }
        _ => Ok(()),
    }
}

/// One sharding considered for a many-chip prediction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShardingOption {
    pub sharding: Sharding,
    /// `None` when the sharding does not divide the architecture.
    pub step: Option<ShardedStep>,
    pub fits_memory: bool,
}

/// Every metric of one architecture for one budget on `chips` chips.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub arch: Architecture,
    pub chips: u32,
    pub budget: ResolvedBudget,
    /// Memory and MEMCPY per chip; FLOPs and parameters of the whole model; tokens global.
    pub metrics: Metrics,
    pub tokens_per_step: f64,
    /// Passes over the unique data (`None`: unlimited data).
    pub epochs: Option<f64>,
    /// The step as trained (single chip: no communication); when no sharding fits, the one
    /// that needs the least memory per chip (`metrics.fits_memory` is then false).
    pub step: ShardedStep,
    /// Every sharding of `chips` chips (empty on one chip).
    pub shardings: Vec<ShardingOption>,
    pub validity: Vec<Validity>,
    /// The law's fit range (the validity messages quote it).
    pub fit: FitRange,
    /// The law (the validity messages quote its ranges; [`Prediction::loss_terms`] its terms).
    pub law: Law,
    /// Unique training tokens available (`None`: unlimited).
    pub unique_tokens: Option<f64>,
    /// With several chip counts: (chips, budget, loss, fits in memory) of each count that can
    /// split the architecture, the chosen one among them. Empty for one count.
    pub chip_counts: Vec<(u32, ResolvedBudget, f64, bool)>,
}

impl Prediction {
    /// The predicted loss term by term (nats per reference token) and what the law saw.
    pub fn loss_terms(&self) -> crate::loss::LossTerms {
        self.law.terms(&crate::loss::LossInput::of(&self.arch, self.metrics.tokens, self.unique_tokens))
    }

    /// Each validity flag in words, with the law's own ranges.
    pub fn warnings(&self) -> Vec<String> {
        self.validity.iter().map(|v| v.message(&self.fit, &self.law)).collect()
    }
}

/// Predicts `arch` on `hw` for `budget`: on one count of `chips`, or on each and the one with the
/// lowest predicted loss among those where it fits in memory (ties: fewer chips). A count no sharding divides is an error when it is
/// the only count, and left out otherwise.
pub fn predict(arch: &Architecture, hw: &Hardware, budget: &Budget, chips: &Chips, opts: &PredictOptions) -> Result<Prediction> {
    arch.validate()?;
    hw.validate()?;
    opts.validate()?;
    let counts = match opts.layout {
        Some(l) => {
            let given = chips.resolve(hw)?;
            if given != [1] && given != [l.chips()] {
                return Err(Error::invalid("chips", "a count", &format!("the layout's {} chips (or none given)", l.chips())));
            }
            hw.check_chips(l.chips())?;
            vec![l.chips()]
        }
        None => chips.resolve(hw)?,
    };
    let mut options = Vec::with_capacity(counts.len());
    let mut first_error = None;
    for &c in &counts {
        match predict_on(arch, hw, budget, c, opts) {
            Ok(p) => options.push(p),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let rows: Vec<_> = options.iter().map(|p| (p.chips, p.budget, p.metrics.loss, p.metrics.fits_memory)).collect();
    // The lowest loss among counts where it fits in memory; else the lowest hypothetical loss;
    // else (nothing trains) the fewest chips that divide.
    let losses = |fitting: bool| -> Vec<(u32, f64)> {
        options
            .iter()
            .map(|p| (p.chips, if p.metrics.fits_memory || !fitting { p.metrics.loss } else { f64::INFINITY }))
            .collect()
    };
    let chosen = best_count(&losses(true)).or_else(|| best_count(&losses(false))).unwrap_or(0);
    let mut p = if options.is_empty() {
        return Err(first_error.unwrap_or_else(|| Error::invalid("chips", "none", "a chip count")));
    } else {
        options.swap_remove(chosen)
    };
    if counts.len() > 1 {
        p.chip_counts = rows;
    }
    Ok(p)
}

/// Tokens a `predict_tokens` call accepts (at least one, at most 1e16).
pub const TOKENS: crate::error::Range = crate::error::Range::new(1.0, 1e16, "tokens");

/// `arch` trained for `tokens` tokens on `chips` chips: whole steps (at least one, the last one
/// full), the wall-clock time they take (`budget`: that many steps of the predicted step time) and
/// the loss with every term of the law. Lets a user check the law against their own runs.
pub fn predict_tokens(arch: &Architecture, hw: &Hardware, tokens: f64, chips: u32, opts: &PredictOptions) -> Result<Prediction> {
    arch.validate()?;
    hw.validate()?;
    opts.validate()?;
    TOKENS.check("tokens", tokens)?;
    let chips = match opts.layout {
        Some(l) if chips != 1 && chips != l.chips() => {
            return Err(Error::invalid("chips", chips, &format!("the layout's {} chips (or none given)", l.chips())))
        }
        Some(l) => l.chips(),
        None => chips,
    };
    hw.check_chips(chips)?;
    // The step does not depend on the budget: price it with any.
    let probe = predict_on(arch, hw, &Budget::hours(1.0), chips, opts)?;
    let steps = (tokens / arch.tokens_per_step()).ceil().max(1.0);
    // A hair more than the steps take, so that whole steps = `steps` despite rounding.
    let seconds = steps * probe.metrics.step_time_s * (1.0 + 1e-12);
    if !(seconds.is_finite() && seconds <= crate::budget::MAX_BUDGET_S) {
        return Err(Error::invalid_number(
            "tokens",
            tokens,
            &format!("tokens that train within {} s", crate::error::bound(crate::budget::MAX_BUDGET_S)),
        ));
    }
    predict_on(arch, hw, &Budget::hours(seconds / crate::budget::SECONDS_PER_HOUR), chips, opts)
}

/// [`predict`] on exactly `chips` chips.
fn predict_on(arch: &Architecture, hw: &Hardware, budget: &Budget, chips: u32, opts: &PredictOptions) -> Result<Prediction> {
    let budget = budget.resolve(hw, chips)?;
    if let Some(l) = opts.layout {
        check_layout(arch, hw, l)?;
        let (metrics, step) = evaluate_layout(arch, hw, l, budget.seconds, &opts.law, opts.unique_tokens)
            .expect("check_divides accepts only layouts that split the architecture");
        return Ok(Prediction {
            arch: *arch,
            chips,
            budget,
            metrics,
            tokens_per_step: arch.tokens_per_step(),
            epochs: opts.unique_tokens.map(|u| metrics.tokens / u),
            step,
            shardings: Vec::new(),
            validity: validity(arch, &metrics, &opts.fit, &opts.law, opts.unique_tokens),
            fit: opts.fit,
            law: opts.law,
            unique_tokens: opts.unique_tokens,
            chip_counts: Vec::new(),
        });
    }
    let (metrics, step) = if chips == 1 {
        (evaluate_with_data(arch, hw, budget.seconds, &opts.law, opts.unique_tokens), sharded_step(arch, hw, Sharding::SINGLE))
    } else {
        evaluate_sharded(arch, hw, chips, budget.seconds, &opts.law, opts.unique_tokens)
    };
    let Some(step) = step else {
        return Err(Error::invalid(
            "chips",
            chips,
            &format!(
                "a count this architecture can be split over (data-parallel degree dividing batch_size {}, \
                 tensor-parallel degree dividing {} KV heads and d_ff {})",
                arch.batch_size, arch.n_kv_heads, arch.d_ff
            ),
        ));
    };
    let usable = hw.usable_hbm_bytes();
    let options = if chips > 1 {
        shardings(chips)
            .into_iter()
            .map(|s| {
                let step = sharded_step(arch, hw, s);
                ShardingOption { sharding: s, step, fits_memory: step.is_some_and(|st| st.memory_bytes <= usable) }
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Prediction {
        arch: *arch,
        chips,
        budget,
        metrics,
        tokens_per_step: arch.tokens_per_step(),
        epochs: opts.unique_tokens.map(|u| metrics.tokens / u),
        step,
        shardings: options,
        validity: validity(arch, &metrics, &opts.fit, &opts.law, opts.unique_tokens),
        fit: opts.fit,
        law: opts.law,
        unique_tokens: opts.unique_tokens,
        chip_counts: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::tests::llama_7b;
    use crate::hardware::tests::chip;
    use crate::hardware::{Network, Topology};
    use crate::loss::{CHINCHILLA_FIT_RANGE, HOFFMANN};
    use crate::step_time::StepTimeModel;

    fn h100() -> Hardware {
        let model = StepTimeModel::Linear { s_per_memcpy_byte: 1.0 / 2.93e12, s_per_flop: 1.0 / 7.8e14, overhead_s: 0.0 };
        let net = Network {
            link_bytes_per_s: 9e11,
            links_per_chip: 1.0,
            topology: Topology::NvlinkSwitch,
            max_chips: 8,
            chips_per_node: None,
            inter_node_bytes_per_s: None,
            chips_per_pod: None,
            inter_pod_bytes_per_s: None,
        };
        Hardware { network: Some(net), usd_per_chip_hour: Some(3.0), ..chip(80e9, model) }
    }

    fn opts() -> PredictOptions {
        PredictOptions { law: HOFFMANN, fit: CHINCHILLA_FIT_RANGE, unique_tokens: None, layout: None }
    }

    #[test]
    fn one_chip_agrees_with_evaluate() {
        let a = Architecture { batch_size: 1, n_layers: 8, ..llama_7b() };
        let p = predict(&a, &h100(), &Budget::hours(12.0), &Chips::Count(1), &opts()).unwrap();
        let m = evaluate_with_data(&a, &h100(), 12.0 * 3600.0, &HOFFMANN, None);
        assert_eq!(p.metrics, m);
        assert_eq!(p.step.sharding, Sharding::SINGLE);
        assert_eq!(p.step.step_time_s, m.step_time_s);
        assert_eq!(p.step.dp_comm_s + p.step.tp_comm_s, 0.0);
        assert!(p.shardings.is_empty() && p.chip_counts.is_empty());
        assert_eq!(p.budget.seconds, 43_200.0);
    }

    #[test]
    fn many_chips_list_every_sharding_and_pick_the_fastest_that_fits() {
        let a = Architecture { batch_size: 16, ..llama_7b() };
        let p = predict(&a, &h100(), &Budget::hours(24.0), &Chips::Count(8), &opts()).unwrap();
        assert!(p.metrics.fits_memory);
        assert_eq!(p.shardings.len(), 7);
        let fastest =
            p.shardings.iter().filter(|o| o.fits_memory).map(|o| o.step.unwrap().step_time_s).fold(f64::INFINITY, f64::min);
        assert_eq!(p.step.step_time_s, fastest);
        // 3 chips cannot split batch 16 nor 32 heads: an error naming the count.
        let e = predict(
            &a,
            &Hardware { network: Some(Network { max_chips: 8, ..h100().network.unwrap() }), ..h100() },
            &Budget::hours(1.0),
            &Chips::Count(3),
            &opts(),
        );
        assert!(e.unwrap_err().to_string().starts_with("chips = 3 is invalid"));
    }

    #[test]
    fn a_money_budget_chooses_the_chip_count() {
        // $2,000 at $3/chip-hour: 666.7 h on 1 chip, 83.3 h on 8. LLaMA-7B does not fit one chip.
        let a = Architecture { batch_size: 16, ..llama_7b() };
        let money = Budget { usd: Some(2000.0), ..Budget::default() };
        let p = predict(&a, &h100(), &money, &Chips::List(vec![1, 2, 3, 4, 8]), &opts()).unwrap();
        // 3 does not divide: left out of the table.
        assert_eq!(p.chip_counts.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 4, 8]);
        // One chip would have the lowest loss (8x the hours) if it fit; it does not.
        let one = predict(&a, &h100(), &money, &Chips::Count(1), &opts()).unwrap();
        assert!(!one.metrics.fits_memory && one.metrics.loss < p.metrics.loss);
        assert!(p.metrics.fits_memory && p.chips > 1);
        assert!((p.budget.hours() - 2000.0 / 3.0 / f64::from(p.chips)).abs() < 1e-9);
    }

    #[test]
    fn tokens_become_whole_steps_and_their_wall_clock() {
        // 16 x 2048 = 32,768 tokens per step: 1e6 tokens are 31 steps rounded up to 31 (30.52).
        let a = Architecture { batch_size: 16, seq_len: 2048, ..llama_7b() };
        let p = predict_tokens(&a, &h100(), 1e6, 1, &opts()).unwrap();
        assert_eq!(p.metrics.steps, 31.0);
        assert_eq!(p.metrics.tokens, 31.0 * 32_768.0);
        assert!((p.budget.seconds / (31.0 * p.metrics.step_time_s) - 1.0).abs() < 1e-9);
        assert!(predict_tokens(&a, &h100(), 0.0, 1, &opts()).is_err());
    }

    #[test]
    fn a_mixture_of_experts_on_many_chips() {
        // Without expert parallelism, a mixture shards as a dense model does: data parallel
        // all-reduces the gradients of every expert, tensor parallel splits every expert's d_ff.
        use crate::architecture::Mlp;
        use crate::metrics::Validity;
        use crate::params::total_params;
        use crate::sharding::shard;
        let moe = Architecture {
            d_model: 1024,
            n_layers: 4,
            n_heads: 16,
            n_kv_heads: 16,
            head_dim: 64,
            d_ff: 2048,
            mlp: Mlp::Gelu,
            seq_len: 1024,
            batch_size: 16,
            experts: 8,
            top_k: 2,
            ..llama_7b()
        };
        let p = predict(&moe, &h100(), &Budget::hours(1.0), &Chips::Count(8), &opts()).unwrap();
        assert!(p.metrics.fits_memory && p.validity.contains(&Validity::MixtureOfExperts));
        assert_eq!(p.metrics.params, total_params(&moe));
        let dense = Architecture { experts: 0, top_k: 0, ..moe };
        let dp8 = Sharding::data_parallel(8, false);
        let (m, d) = (sharded_step(&moe, &h100(), dp8).unwrap(), sharded_step(&dense, &h100(), dp8).unwrap());
        let ratio = m.dp_comm_bytes / d.dp_comm_bytes;
        assert!((ratio / (total_params(&moe) / total_params(&dense)) - 1.0).abs() < 1e-12, "{ratio}");
        let tp2 = shard(&moe, Sharding { dp: 4, tp: 2, ..Sharding::SINGLE }).unwrap();
        assert_eq!((tp2.d_ff, tp2.experts, tp2.top_k), (1024, 8, 2));
    }

    #[test]
    fn bad_options_are_refused() {
        let o = PredictOptions { unique_tokens: Some(0.5), ..opts() };
        let e = predict(&llama_7b(), &h100(), &Budget::hours(1.0), &Chips::Count(1), &o).unwrap_err();
        assert!(e.to_string().starts_with("unique_tokens = 0.5"));
    }
}
