//! The definition of a search over a range of indices ([`search_range_reference`]): every
//! configuration evaluated on its own, checked in order. The kernel is tested against it, and it
//! is the many-chip path for step-time models that are not linear in the work.

use crate::batch::max_loss_for_tokens_per_step;
use crate::pareto::{pareto_front, Candidate};

use super::{Partial, SearchParams, SearchSpace};

/// The definition of what [`search_range`](super::search_range) computes: every configuration
/// evaluated on its own with [`SearchParams::evaluate`], then the same feasibility checks in the
/// same order. It checks the single-chip kernel in tests and benchmarks, and it is the many-chip
/// path (every sharding of every configuration; no kernel covers shardings yet).
pub fn search_range_reference(space: &SearchSpace, params: &SearchParams, start: u64, end: u64) -> Partial {
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
        let m = params.evaluate(&arch);
        if m.memory_bytes.is_infinite() {
            part.rejected.unshardable += 1;
            continue;
        }
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
        let tps = arch.tokens_per_step();
        if !g.admits(tps, m.loss, max_loss_for_tokens_per_step(tps)) {
            part.rejected.batch_cap += 1;
            continue;
        }
        part.feasible += 1;
        feasible.push(Candidate { index, loss: m.loss, params: m.params });
    }
    part.pareto = pareto_front(feasible.clone());
    feasible.sort_unstable_by(Candidate::rank_cmp);
    feasible.truncate(params.top_k);
    part.top = feasible;
    part
}
