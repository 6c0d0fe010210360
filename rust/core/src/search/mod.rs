//! Frontier search: enumerate the Cartesian product of a search space, evaluate every configuration
//! in parallel, and keep only what the answer needs (counts, top K, Pareto set), so memory stays
//! flat however large the space is.
//!
//! - `space`: the axes ([`SearchSpace`]), their checks and the enumeration order;
//! - `params`: what a search needs besides the space ([`SearchParams`]) and the modelling
//!   [`Guards`];
//! - `kernel`: [`search_range`], the fast path over a range of indices;
//! - `reference`: [`search_range_reference`], the definition the kernel is tested against;
//! - `results`: partial results ([`Partial`]), the answer ([`SearchOutcome`], [`rows`]) and why an
//!   answer is empty;
//! - `plan`: a whole search ([`search`]) and a request over chip counts ([`SearchPlan`],
//!   [`search_plan`]).
//!
//! Every public item is re-exported here: `crate::search::X` is its path.

mod kernel;
mod params;
mod plan;
mod reference;
mod results;
mod space;

pub use kernel::{call_chunk, search_range};
pub use params::{check_top_k, top_k, Guards, SearchParams, MAX_TOP_K, NO_ASPECT_GUARD};
pub use plan::{search, search_plan, ChipCountOutcome, PlanOutcome, SearchPlan, SearchRequest};
pub use reference::search_range_reference;
pub use results::{finish, rows, spread, Partial, Rejections, Row, SearchOutcome, MAX_PARETO};
pub use space::{d_ff_multiple, ffn_width, SearchSpace, D_FF_MULTIPLE, MAX_D_FF_MULTIPLE, MAX_SPACE_SIZE};

/// What the tests of every part share: a chip like an H100, a small space, the plain law.
#[cfg(test)]
mod fixtures {
    use crate::architecture::Recompute;
    use crate::hardware::Hardware;
    use crate::loss::{Law, HOFFMANN as HOFFMANN_WITH_TERMS};
    use crate::search::{Guards, SearchParams, SearchSpace};
    use crate::step_time::StepTimeModel;

    /// The plain law (the kernel's original form; the evidence terms have their own tests in
    /// `kernel`).
    pub const HOFFMANN: Law = plain(HOFFMANN_WITH_TERMS);

    const fn plain(l: Law) -> Law {
        Law { shape: None, vocab: None, context: None, batch: None, repetition: crate::repetition::DATA_ONLY, ..l }
    }

    pub fn h100_like() -> Hardware {
        crate::hardware::tests::chip(
            80e9,
            StepTimeModel::Linear {
                s_per_memcpy_byte: 1.0 / (3.35e12 * 0.875),
                s_per_flop: 1.0 / (9.894e14 * 0.79),
                overhead_s: 0.0,
            },
        )
    }

    pub fn small_space() -> SearchSpace {
        SearchSpace {
            d_model: vec![256, 384, 512, 768, 1024, 1536, 2048],
            n_layers: vec![2, 4, 6, 8, 12, 16, 24, 32],
            head_dim: vec![64, 128],
            kv_group: vec![1, 4],
            seq_len: vec![1024, 2048],
            batch_size: vec![16, 64, 256],
            // Whole batches, no recomputation (their own test covers those axes).
            recompute: vec![Recompute::None],
            micro_batch: vec![None],
            ..SearchSpace::default()
        }
    }

    pub fn params(hours: f64) -> SearchParams {
        SearchParams {
            hardware: h100_like(),
            budget_s: hours * 3600.0,
            law: HOFFMANN,
            guards: Guards::default(),
            top_k: 10,
            unique_tokens: None,
            chips: 1,
        }
    }
}
