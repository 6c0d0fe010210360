//! Whole searches: one over the whole space ([`search`]), and a request as a user asks for it
//! ([`SearchRequest`]: a budget and the chip counts to consider) planned as one search per chip
//! count ([`SearchPlan`]), run ([`search_plan`]) and decided: the count with the lowest loss, or
//! among those tied with it within the model's uncertainty the cheapest and quickest.

use crate::budget::{best_count, Budget, Chips, ResolvedBudget};
use crate::error::{Error, Result};
use crate::hardware::Hardware;
use crate::loss::Law;

use super::{call_chunk, finish, search_range, Guards, Partial, SearchOutcome, SearchParams, SearchSpace};

/// Searches the whole space (validated first). See [`search_range`] for chunked use.
pub fn search(space: &SearchSpace, params: &SearchParams) -> Result<SearchOutcome> {
    crate::threads::init()?;
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
        crate::threads::init()?;
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
    let partials = plan.run(space, |_, _| Ok::<(), std::convert::Infallible>(())).unwrap_or_else(|e| match e {});
    plan.finish(space, partials)
}

impl SearchPlan {
    /// Searches every run of the plan in chunks of [`call_chunk`] configurations (tens of
    /// milliseconds each), calling `between(done, total)` after each: the driver every caller
    /// uses (the bindings release the interpreter during each chunk and check for Ctrl-C and
    /// report progress in `between`). An error from `between` stops the search and is returned.
    pub fn run<E>(
        &self,
        space: &SearchSpace,
        mut between: impl FnMut(u64, u64) -> std::result::Result<(), E>,
    ) -> std::result::Result<Vec<Partial>, E> {
        let total = self.total();
        let mut partials = Vec::with_capacity(self.runs.len());
        let mut done = 0;
        for (params, _) in &self.runs {
            let mut acc = Partial::empty();
            let mut start = 0;
            let chunk = call_chunk(space, params);
            while start < self.space_size {
                let end = (start + chunk).min(self.space_size);
                acc = acc.merge(search_range(space, params, start, end), params.top_k);
                done += end - start;
                start = end;
                between(done, total)?;
            }
            partials.push(acc);
        }
        Ok(partials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{Network, Topology};
    use crate::search::fixtures::{h100_like, params, small_space, HOFFMANN};
    use crate::search::rows;

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
            chips_per_pod: None,
            inter_pod_bytes_per_s: None,
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
            chips_per_pod: None,
            inter_pod_bytes_per_s: None,
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
}
