//! What a search keeps and answers: the reduced result of part of a space ([`Partial`], merged
//! associatively, with the counts of [`Rejections`]), the answer ([`SearchOutcome`], its Pareto
//! set thinned by [`spread`]), the explanation of an empty answer with figures, and the rows an
//! answer shows ([`rows`], every metric recomputed directly).

use crate::architecture::Architecture;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::pareto::{pareto_front, Candidate};
use crate::sharding::{sharded_step, ShardedStep, Sharding};

use super::{SearchParams, SearchSpace};

/// Why configurations were dropped, with the figures that explain an empty answer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rejections {
    /// head_dim does not divide d_model, kv_group does not divide n_heads.
    pub malformed: u64,
    /// d_model / n_layers outside the guard range.
    pub aspect_ratio: u64,
    /// Needs more than the usable HBM.
    pub memory: u64,
    /// Not one step fits in the budget.
    pub budget: u64,
    /// Tokens per step above the cap.
    pub batch_cap: u64,
    /// No sharding over the chips divides the configuration (batch, heads, d_ff).
    pub unshardable: u64,
    /// Least memory among configurations dropped for memory (bytes; +inf if none).
    pub min_memory_bytes: f64,
    /// Shortest step among configurations dropped for the budget (s; +inf if none).
    pub min_step_time_s: f64,
}

impl Rejections {
    fn empty() -> Self {
        Rejections { min_memory_bytes: f64::INFINITY, min_step_time_s: f64::INFINITY, ..Default::default() }
    }
    fn merge(&mut self, o: &Self) {
        self.malformed += o.malformed;
        self.aspect_ratio += o.aspect_ratio;
        self.memory += o.memory;
        self.budget += o.budget;
        self.batch_cap += o.batch_cap;
        self.unshardable += o.unshardable;
        self.min_memory_bytes = self.min_memory_bytes.min(o.min_memory_bytes);
        self.min_step_time_s = self.min_step_time_s.min(o.min_step_time_s);
    }
}

/// The reduced result of searching part of a space; partials merge associatively.
#[derive(Debug, Clone, PartialEq)]
pub struct Partial {
    pub evaluated: u64,
    pub feasible: u64,
    pub rejected: Rejections,
    /// Best `top_k` by [`Candidate::rank_cmp`], sorted.
    pub top: Vec<Candidate>,
    /// Pareto set over (loss, params) of the feasible configurations seen.
    pub pareto: Vec<Candidate>,
}

impl Partial {
    pub fn empty() -> Self {
        Partial { evaluated: 0, feasible: 0, rejected: Rejections::empty(), top: Vec::new(), pareto: Vec::new() }
    }

    pub fn merge(mut self, other: Partial, top_k: usize) -> Partial {
        self.evaluated += other.evaluated;
        self.feasible += other.feasible;
        self.rejected.merge(&other.rejected);
        self.top.extend(other.top);
        self.top.sort_unstable_by(Candidate::rank_cmp);
        self.top.truncate(top_k);
        self.pareto.extend(other.pareto);
        self.pareto = pareto_front(self.pareto);
        self
    }
}

/// The answer of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    pub evaluated: u64,
    pub feasible: u64,
    pub rejected: Rejections,
    pub best: Candidate,
    pub top: Vec<Candidate>,
    /// The Pareto set, or an evenly spread [`MAX_PARETO`] of its members when it has more.
    pub pareto: Vec<Candidate>,
    /// Members of the whole Pareto set (more than `pareto.len()` when it was thinned).
    pub pareto_total: u64,
}

/// Most Pareto members an answer lists: a pathological space can have millions (every
/// configuration on the front), which no one reads and which cost memory and time to describe.
pub const MAX_PARETO: usize = 10_000;

/// At most `n` of `points` (sorted), evenly spread over them, the first and the last kept.
pub fn spread(points: Vec<Candidate>, n: usize) -> Vec<Candidate> {
    if points.len() <= n {
        return points;
    }
    if n < 2 {
        return points.into_iter().take(n).collect();
    }
    let last = (points.len() - 1) as f64;
    (0..n).map(|i| points[((i as f64) * last / (n - 1) as f64).round() as usize]).collect()
}

/// Turns a merged partial into an answer, or explains with figures why nothing was feasible.
pub fn finish(part: Partial, params: &SearchParams) -> Result<SearchOutcome> {
    let Some(&best) = part.top.first() else {
        return Err(Error::NoFeasibleConfig { reason: explain_empty(&part, params) });
    };
    let pareto_total = part.pareto.len() as u64;
    Ok(SearchOutcome {
        evaluated: part.evaluated,
        feasible: part.feasible,
        rejected: part.rejected,
        best,
        top: part.top,
        pareto: spread(part.pareto, MAX_PARETO),
        pareto_total,
    })
}

fn explain_empty(part: &Partial, params: &SearchParams) -> String {
    use crate::error::{count, distinct};
    const GIB: f64 = 1_073_741_824.0;
    let r = &part.rejected;
    // Nearest misses first: the reverse of the order the checks run (a configuration counts under
    // the first it fails, so the later the check, the closer those configurations came).
    let mut why = Vec::new();
    if r.batch_cap > 0 {
        why.push(format!("{} exceed the tokens-per-step cap (smaller batches or sequences)", count(r.batch_cap)));
    }
    if r.budget > 0 {
        let (fastest, budget) = distinct(r.min_step_time_s, params.budget_s);
        why.push(format!(
            "{} cannot finish one step in the {budget} s budget (the fastest of them needs {fastest} s per step)",
            count(r.budget)
        ));
    }
    if r.memory > 0 {
        let (need, usable) = distinct(r.min_memory_bytes / GIB, params.hardware.usable_hbm_bytes() / GIB);
        let more_chips = params.hardware.max_chips() > params.chips;
        why.push(format!(
            "{} do not fit in {usable} GiB of usable HBM{} (the smallest of them needs {need} GiB{})",
            count(r.memory),
            if params.chips > 1 { format!(" per chip with any sharding over {} chips", params.chips) } else { String::new() },
            if more_chips { "; more chips: chips = N, or auto to compare counts" } else { "" }
        ));
    }
    if r.unshardable > 0 {
        why.push(format!(
            "{} cannot be split over {} chips (the data-parallel degree must divide batch_size, the \
             tensor-parallel degree the KV heads and d_ff)",
            count(r.unshardable),
            params.chips
        ));
    }
    if r.aspect_ratio > 0 {
        why.push(format!(
            "{} have d_model/n_layers outside [{}, {}] (the aspect_ratio guard)",
            count(r.aspect_ratio),
            params.guards.aspect_ratio_min,
            params.guards.aspect_ratio_max
        ));
    }
    if r.malformed > 0 {
        why.push(format!(
            "{} are malformed (head_dim must divide d_model, kv_group the head count, the micro-batch the batch)",
            count(r.malformed)
        ));
    }
    format!("of {} configurations, {}", count(part.evaluated), why.join("; "))
}

/// A candidate as the answer shows it: the configuration, every metric and its step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub index: u64,
    pub arch: Architecture,
    pub metrics: Metrics,
    /// The step as trained (on one chip: no communication).
    pub step: ShardedStep,
}

/// Rows of `candidates` (feasible configurations of `space`), every metric recomputed directly.
pub fn rows(space: &SearchSpace, params: &SearchParams, candidates: &[Candidate]) -> Vec<Row> {
    candidates
        .iter()
        .filter_map(|c| {
            let arch = space.config_at(c.index)?;
            let (metrics, step) = params.evaluate_with_sharding(&arch);
            let step = step.or_else(|| sharded_step(&arch, &params.hardware, Sharding::SINGLE))?;
            Some(Row { index: c.index, arch, metrics, step })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::fixtures::{params, small_space};
    use crate::search::{search, search_range};

    #[test]
    fn a_long_pareto_set_is_thinned_evenly() {
        let c = |i: u64| Candidate { index: i, loss: 10.0 - i as f64 * 1e-3, params: i as f64 };
        let kept = spread((0..1001).map(c).collect(), 11);
        assert_eq!(kept.iter().map(|k| k.index).collect::<Vec<_>>(), (0..=1000).step_by(100).collect::<Vec<_>>());
        assert_eq!(spread((0..5).map(c).collect(), 11).len(), 5);
    }
    #[test]
    fn empty_answer_is_explained_with_figures() {
        let mut p = params(1.0);
        p.hardware.hbm_bytes = 2.0 * 1_048_576.0;
        let err = search(&small_space(), &p).unwrap_err().to_string();
        // 0.9 x 2 MiB usable; figures with the digits that tell them apart, counts with separators.
        assert!(err.contains("do not fit in 0.00176 GiB of usable HBM (the smallest of them needs"), "{err}");
        // This chip has no interconnect: no hint to use more of them.
        assert!(err.contains("of 21,504 configurations") && !err.contains("more chips"), "{err}");
        // Nearest misses first: a budget too short for every step that fits leads with the budget,
        // though more configurations do not fit.
        let mut p = params(1e-6);
        p.hardware.hbm_bytes = 8192.0 * 1_048_576.0;
        let part = search_range(&small_space(), &p, 0, small_space().validate().unwrap());
        assert!(part.rejected.memory > part.rejected.budget && part.rejected.budget > 0, "{:?}", part.rejected);
        let err = search(&small_space(), &p).unwrap_err().to_string();
        let reasons = err.split("configurations, ").nth(1).unwrap();
        assert!(reasons.starts_with(&format!("{} cannot finish one step", crate::error::count(part.rejected.budget))), "{err}");
    }
}
