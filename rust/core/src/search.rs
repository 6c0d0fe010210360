//! Frontier search: enumerate the Cartesian product of a search space, evaluate every configuration
//! in parallel, and keep only what the answer needs (counts, top K, Pareto set), so memory stays
//! flat however large the space is.

use rayon::prelude::*;

use crate::architecture::{Architecture, Attention, Mlp, Precision, MAX_DIM};
use crate::error::{Error, Result};
use crate::hardware::Hardware;
use crate::loss::{critical_batch_tokens, Law};
use crate::metrics::evaluate;
use crate::pareto::{pareto_front, Candidate};

/// Most configurations one search agrees to enumerate (about two minutes at 1e8 configs/s).
pub const MAX_SPACE_SIZE: u64 = 10_000_000_000;

/// Configurations per parallel work item (and per Pareto pre-reduction).
const CHUNK: u64 = 1 << 16;

/// The axes of a search space; the space is their Cartesian product. `n_heads = d_model / head_dim`
/// and `n_kv_heads = n_heads / kv_group`; `d_ff = round(ffn_mult x d_model)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpace {
    pub d_model: Vec<u32>,
    pub n_layers: Vec<u32>,
    pub head_dim: Vec<u32>,
    /// Query heads per key/value head (1 = multi-head attention).
    pub kv_group: Vec<u32>,
    pub mlp: Vec<Mlp>,
    pub ffn_mult: Vec<f64>,
    pub attention: Vec<Attention>,
    pub tied_embeddings: Vec<bool>,
    pub vocab_size: Vec<u32>,
    pub seq_len: Vec<u32>,
    pub batch_size: Vec<u32>,
    pub precision: Precision,
}

impl Default for SearchSpace {
    /// The default space: 64 widths x 48 depths x 2 head sizes x 2 KV groupings x 2 MLPs x
    /// 2 MLP ratios x 2 attention kinds x 2 embedding tyings x 1 vocab x 4 context lengths x
    /// 7 batch sizes = 5,505,024 configurations.
    fn default() -> Self {
        SearchSpace {
            d_model: (1..=64).map(|i| 128 * i).collect(),
            n_layers: (1..=48).map(|i| 2 * i).collect(),
            head_dim: vec![64, 128],
            kv_group: vec![1, 4],
            mlp: vec![Mlp::Gelu, Mlp::Swiglu],
            ffn_mult: vec![8.0 / 3.0, 4.0],
            attention: vec![Attention::Flash, Attention::Materialized],
            tied_embeddings: vec![false, true],
            vocab_size: vec![32_000],
            seq_len: vec![512, 1024, 2048, 4096],
            batch_size: vec![8, 16, 32, 64, 128, 256, 512],
            precision: Precision::default(),
        }
    }
}

impl SearchSpace {
    /// Axis lengths, outermost first (the enumeration order).
    fn radices(&self) -> [u64; 11] {
        [
            self.d_model.len(),
            self.n_layers.len(),
            self.head_dim.len(),
            self.kv_group.len(),
            self.mlp.len(),
            self.ffn_mult.len(),
            self.attention.len(),
            self.tied_embeddings.len(),
            self.vocab_size.len(),
            self.seq_len.len(),
            self.batch_size.len(),
        ]
        .map(|n| n as u64)
    }

    /// Number of configurations, as f64 so an absurd space cannot overflow.
    pub fn size_f64(&self) -> f64 {
        self.radices().iter().map(|&n| n as f64).product()
    }

    /// Checks every axis: non-empty, values in range, total size within [`MAX_SPACE_SIZE`].
    pub fn validate(&self) -> Result<u64> {
        let int_axes: [(&str, &Vec<u32>); 7] = [
            ("d_model", &self.d_model),
            ("n_layers", &self.n_layers),
            ("head_dim", &self.head_dim),
            ("kv_group", &self.kv_group),
            ("vocab_size", &self.vocab_size),
            ("seq_len", &self.seq_len),
            ("batch_size", &self.batch_size),
        ];
        for (axis, values) in int_axes {
            if values.is_empty() {
                return Err(Error::EmptySpace { axis: axis.to_owned() });
            }
            if let Some(&v) = values.iter().find(|&&v| v == 0 || v > MAX_DIM) {
                return Err(Error::invalid(axis, v, &format!("integers in [1, {MAX_DIM}]")));
            }
        }
        for (axis, n) in [
            ("mlp", self.mlp.len()),
            ("ffn_mult", self.ffn_mult.len()),
            ("attention", self.attention.len()),
            ("tied_embeddings", self.tied_embeddings.len()),
        ] {
            if n == 0 {
                return Err(Error::EmptySpace { axis: axis.to_owned() });
            }
        }
        if let Some(&m) = self.ffn_mult.iter().find(|&&m| !(m.is_finite() && m > 0.0 && m <= 64.0)) {
            return Err(Error::invalid("ffn_mult", m, "ratios d_ff / d_model in (0, 64]"));
        }
        let size = self.size_f64();
        if size > MAX_SPACE_SIZE as f64 {
            return Err(Error::SpaceTooLarge { size, limit: MAX_SPACE_SIZE });
        }
        Ok(size as u64)
    }

    /// The configuration at `index` in enumeration order, or `None` when it is malformed
    /// (`head_dim` does not divide `d_model`, `kv_group` does not divide the head count, or
    /// `d_ff` rounds to 0). `index` must be below the space's size.
    pub fn config_at(&self, mut index: u64) -> Option<Architecture> {
        let r = self.radices();
        let mut digit = [0usize; 11];
        for axis in (0..11).rev() {
            digit[axis] = (index % r[axis]) as usize;
            index /= r[axis];
        }
        let d_model = self.d_model[digit[0]];
        let head_dim = self.head_dim[digit[2]];
        let kv_group = self.kv_group[digit[3]];
        if !d_model.is_multiple_of(head_dim) {
            return None;
        }
        let n_heads = d_model / head_dim;
        if !n_heads.is_multiple_of(kv_group) {
            return None;
        }
        let d_ff = (self.ffn_mult[digit[5]] * f64::from(d_model)).round();
        if !(1.0..=f64::from(MAX_DIM)).contains(&d_ff) {
            return None;
        }
        Some(Architecture {
            d_model,
            n_layers: self.n_layers[digit[1]],
            n_heads,
            n_kv_heads: n_heads / kv_group,
            head_dim,
            d_ff: d_ff as u32,
            mlp: self.mlp[digit[4]],
            attention: self.attention[digit[6]],
            tied_embeddings: self.tied_embeddings[digit[7]],
            seq_len: self.seq_len[digit[9]],
            batch_size: self.batch_size[digit[10]],
            vocab_size: self.vocab_size[digit[8]],
            precision: self.precision,
        })
    }
}

/// Modelling guards: keep the search inside the range where its laws were measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guards {
    /// Accepted `d_model / n_layers`, inclusive. Kaplan et al. 2020 (Fig. 5) find loss depends on
    /// shape by only a few percent for aspect ratios of roughly 20 to 200; outside, "loss depends on
    /// parameter count, not shape" is untested.
    pub aspect_ratio_min: f64,
    pub aspect_ratio_max: f64,
    /// Cap on tokens per step. `None`: Kaplan's critical batch at the configuration's own predicted
    /// loss ([`critical_batch_tokens`]), beyond which bigger batches stop buying fewer steps.
    pub max_tokens_per_step: Option<f64>,
}

impl Default for Guards {
    fn default() -> Self {
        Guards { aspect_ratio_min: 20.0, aspect_ratio_max: 200.0, max_tokens_per_step: None }
    }
}

impl Guards {
    pub fn validate(&self) -> Result<()> {
        let (lo, hi) = (self.aspect_ratio_min, self.aspect_ratio_max);
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
            return Err(Error::invalid("aspect_ratio", format!("{lo}:{hi}"), "MIN:MAX with 0 < MIN <= MAX, finite"));
        }
        if let Some(cap) = self.max_tokens_per_step {
            if !(cap.is_finite() && cap >= 1.0) {
                return Err(Error::invalid("max_tokens_per_step", cap, "a finite number >= 1"));
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
}

impl SearchParams {
    pub fn validate(&self) -> Result<()> {
        if !(self.budget_s.is_finite() && self.budget_s > 0.0) {
            return Err(Error::invalid("budget_s", self.budget_s, "a finite number of seconds > 0"));
        }
        if self.top_k == 0 || self.top_k > 100_000 {
            return Err(Error::invalid("top_k", self.top_k, "an integer in [1, 100000]"));
        }
        self.hardware.validate()?;
        self.law.validate()?;
        self.guards.validate()
    }
}

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

/// Searches the index range `[start, end)` of `space` in parallel. Callers that want progress
/// reports or cancellation call this on successive ranges and [`Partial::merge`] the results.
pub fn search_range(space: &SearchSpace, params: &SearchParams, start: u64, end: u64) -> Partial {
    let n_chunks = (end.saturating_sub(start)).div_ceil(CHUNK);
    (0..n_chunks)
        .into_par_iter()
        .map(|c| {
            let lo = start + c * CHUNK;
            search_chunk(space, params, lo, (lo + CHUNK).min(end))
        })
        .reduce(Partial::empty, |a, b| a.merge(b, params.top_k))
}

fn search_chunk(space: &SearchSpace, params: &SearchParams, start: u64, end: u64) -> Partial {
    let mut part = Partial::empty();
    let mut feasible: Vec<Candidate> = Vec::new();
    let usable = params.hardware.usable_hbm_bytes();
    let g = &params.guards;
    for index in start..end {
        part.evaluated += 1;
        let Some(arch) = space.config_at(index) else {
            part.rejected.malformed += 1;
            continue;
        };
        let aspect = f64::from(arch.d_model) / f64::from(arch.n_layers);
        if aspect < g.aspect_ratio_min || aspect > g.aspect_ratio_max {
            part.rejected.aspect_ratio += 1;
            continue;
        }
        let m = evaluate(&arch, &params.hardware, params.budget_s, &params.law);
        if m.memory_bytes > usable {
            part.rejected.memory += 1;
            part.rejected.min_memory_bytes = part.rejected.min_memory_bytes.min(m.memory_bytes);
            continue;
        }
        if m.steps < 1.0 {
            part.rejected.budget += 1;
            part.rejected.min_step_time_s = part.rejected.min_step_time_s.min(m.step_time_s);
            continue;
        }
        let cap = g.max_tokens_per_step.unwrap_or_else(|| critical_batch_tokens(m.loss));
        if arch.tokens_per_step() > cap {
            part.rejected.batch_cap += 1;
            continue;
        }
        part.feasible += 1;
        feasible.push(Candidate { index, loss: m.loss, params: m.params });
    }
    part.pareto = pareto_front(feasible.clone());
    // Top K of the chunk: a partial selection, then a sort of only K elements.
    let k = params.top_k.min(feasible.len());
    if k > 0 {
        feasible.select_nth_unstable_by(k - 1, Candidate::rank_cmp);
        feasible.truncate(k);
        feasible.sort_unstable_by(Candidate::rank_cmp);
    }
    part.top = feasible;
    part
}

/// The answer of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    pub evaluated: u64,
    pub feasible: u64,
    pub rejected: Rejections,
    pub best: Candidate,
    pub top: Vec<Candidate>,
    pub pareto: Vec<Candidate>,
}

/// Turns a merged partial into an answer, or explains with figures why nothing was feasible.
pub fn finish(part: Partial, params: &SearchParams) -> Result<SearchOutcome> {
    let Some(&best) = part.top.first() else {
        return Err(Error::NoFeasibleConfig { reason: explain_empty(&part, params) });
    };
    Ok(SearchOutcome {
        evaluated: part.evaluated,
        feasible: part.feasible,
        rejected: part.rejected,
        best,
        top: part.top,
        pareto: part.pareto,
    })
}

fn explain_empty(part: &Partial, params: &SearchParams) -> String {
    const GIB: f64 = 1_073_741_824.0;
    let r = &part.rejected;
    let mut why = Vec::new();
    if r.memory > 0 {
        why.push(format!(
            "{} do not fit in {:.1} GiB of usable HBM (smallest needs {:.1} GiB)",
            r.memory,
            params.hardware.usable_hbm_bytes() / GIB,
            r.min_memory_bytes / GIB
        ));
    }
    if r.budget > 0 {
        why.push(format!(
            "{} cannot finish one step in the {:.4} s budget (fastest step {:.4} s)",
            r.budget, params.budget_s, r.min_step_time_s
        ));
    }
    if r.aspect_ratio > 0 {
        why.push(format!(
            "{} have d_model/n_layers outside [{}, {}]",
            r.aspect_ratio, params.guards.aspect_ratio_min, params.guards.aspect_ratio_max
        ));
    }
    if r.batch_cap > 0 {
        why.push(format!("{} exceed the tokens-per-step cap", r.batch_cap));
    }
    if r.malformed > 0 {
        why.push(format!("{} are malformed (head_dim must divide d_model, kv_group the head count)", r.malformed));
    }
    format!("of {} configurations, {}", part.evaluated, why.join("; "))
}

/// Searches the whole space (validated first). See [`search_range`] for chunked use.
pub fn search(space: &SearchSpace, params: &SearchParams) -> Result<SearchOutcome> {
    params.validate()?;
    let size = space.validate()?;
    finish(search_range(space, params, 0, size), params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::HOFFMANN;
    use crate::step_time::StepTimeModel;

    fn h100_like() -> Hardware {
        Hardware {
            hbm_bytes: 80e9,
            usable_hbm_fraction: 0.9,
            step_time: StepTimeModel::Linear {
                s_per_memcpy_byte: 1.0 / (3.35e12 * 0.875),
                s_per_flop: 1.0 / (9.894e14 * 0.79),
                overhead_s: 0.0,
            },
        }
    }

    fn small_space() -> SearchSpace {
        SearchSpace {
            d_model: vec![256, 384, 512, 768, 1024, 1536, 2048],
            n_layers: vec![2, 4, 6, 8, 12, 16, 24, 32],
            head_dim: vec![64, 128],
            kv_group: vec![1, 4],
            seq_len: vec![1024, 2048],
            batch_size: vec![16, 64, 256],
            ..SearchSpace::default()
        }
    }

    fn params(hours: f64) -> SearchParams {
        SearchParams { hardware: h100_like(), budget_s: hours * 3600.0, law: HOFFMANN, guards: Guards::default(), top_k: 10 }
    }

    #[test]
    fn default_space_has_several_million_configs() {
        assert_eq!(SearchSpace::default().validate().unwrap(), 5_505_024);
    }

    #[test]
    fn enumeration_covers_every_axis_value() {
        let s = small_space();
        let n = s.validate().unwrap();
        let mut widths = std::collections::BTreeSet::new();
        let mut batches = std::collections::BTreeSet::new();
        for i in 0..n {
            if let Some(a) = s.config_at(i) {
                assert!(a.validate().is_ok());
                widths.insert(a.d_model);
                batches.insert(a.batch_size);
            }
        }
        assert_eq!(widths.len(), s.d_model.len());
        assert_eq!(batches.len(), s.batch_size.len());
    }

    #[test]
    fn same_answer_as_brute_force_and_any_chunking() {
        let s = small_space();
        let p = params(1.0);
        let out = search(&s, &p).unwrap();
        // Brute force: evaluate every config sequentially with the same feasibility rules.
        let n = s.validate().unwrap();
        let whole = search_chunk(&s, &p, 0, n);
        assert_eq!(whole.top, out.top);
        assert_eq!(whole.pareto, out.pareto);
        assert_eq!(whole.feasible, out.feasible);
        // Uneven ranges merged in another order give the same result.
        let cut = n / 3 + 7;
        let merged = search_range(&s, &p, cut, n).merge(search_range(&s, &p, 0, cut), p.top_k);
        assert_eq!(merged.top, out.top);
        assert_eq!(merged.pareto, out.pareto);
        assert_eq!(out.best, out.top[0]);
    }

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
    fn empty_answer_is_explained_with_figures() {
        let mut p = params(1.0);
        p.hardware.hbm_bytes = 2.0 * 1_048_576.0;
        let err = search(&small_space(), &p).unwrap_err().to_string();
        assert!(err.contains("do not fit in 0.0 GiB") && err.contains("smallest needs"), "{err}");
    }

    #[test]
    fn absurd_space_is_refused() {
        let s = SearchSpace { d_model: (1..=100_000).collect(), n_layers: (1..=100_000).collect(), ..small_space() };
        assert!(matches!(s.validate(), Err(Error::SpaceTooLarge { .. })));
        let s = SearchSpace { seq_len: vec![], ..small_space() };
        assert_eq!(s.validate(), Err(Error::EmptySpace { axis: "seq_len".into() }));
    }
}
