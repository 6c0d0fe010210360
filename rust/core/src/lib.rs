//! timescale-core: the cost model of transformer training under a wall-clock budget.
//!
//! For one configuration (`architecture`, with the defaults of omitted fields): parameters
//! (`params`), training FLOPs per step (`flops`), bytes moved through device memory per step
//! (`memcpy`, the paper's MEMCPY), peak device memory (`memory`), step time (`step_time`, on a
//! chip described by `hardware`), many chips (`sharding`, collectives over the `network`), and the
//! loss a Chinchilla-form law predicts for the tokens the budget buys (`loss`, `budget`); `metrics`
//! computes them together and `predict` answers for one architecture. `search` enumerates a space
//! of configurations in parallel and keeps the best, the top K and the Pareto set (`pareto`);
//! `law_fit` fits a law to a user's runs; `calibration` checks what a calibration is asked for
//! and what its measurements record. Every formula, default and range check of the project is in
//! this crate. Pure Rust: no Python here (the bindings live in `rust/py`).

pub mod analysis;
pub mod architecture;
pub mod batch;
pub mod bilinear;
pub mod budget;
pub mod calibration;
pub mod context;
pub mod defaults;
pub mod error;
pub mod fastmath;
pub mod flops;
pub mod hardware;
pub mod law_fit;
pub mod loss;
pub mod memcpy;
pub mod memory;
pub mod metrics;
pub mod network;
pub mod params;
pub mod pareto;
pub mod predict;
pub mod recipe;
pub mod repetition;
pub mod report;
pub mod search;
pub mod shape;
pub mod sharding;
pub(crate) mod simplex;
pub mod step_time;
pub mod threads;
pub mod vocab;

pub use architecture::{Architecture, ArchitectureSpec, Attention, Mlp, Precision};
pub use budget::{Budget, Chips, ResolvedBudget};
pub use error::{Error, Result};
pub use hardware::{Datasheet, Hardware, Network, Roofline, Topology};
pub use loss::{Law, ParamConvention};
pub use metrics::{evaluate, evaluate_with_data, Metrics};
pub use predict::{predict, PredictOptions, Prediction};
pub use search::{search, search_plan, Guards, SearchOutcome, SearchParams, SearchPlan, SearchRequest, SearchSpace};
pub use step_time::StepTimeModel;
