//! timescale-core: the cost model of transformer training under a wall-clock budget.
//!
//! For one configuration: parameters (`params`), training FLOPs per step (`flops`), bytes moved
//! through device memory per step (`memcpy`, the paper's MEMCPY), peak device memory (`memory`),
//! step time (`step_time`), and the loss a Chinchilla-form law predicts for the tokens the budget
//! buys (`loss`); `metrics` computes them together. `search` enumerates a space of configurations
//! in parallel and keeps the best, the top K and the Pareto set (`pareto`).
//! Pure Rust: no Python here (the bindings live in `rust/py`).

pub mod architecture;
pub mod error;
pub mod flops;
pub mod hardware;
pub mod law_fit;
pub mod loss;
pub mod memcpy;
pub mod memory;
pub mod metrics;
pub mod params;
pub mod pareto;
pub mod search;
pub mod sharding;
pub mod step_time;

pub use architecture::{Architecture, Attention, Mlp, Precision};
pub use error::{Error, Result};
pub use hardware::Hardware;
pub use loss::{Law, ParamConvention};
pub use metrics::{evaluate, evaluate_with_data, Metrics};
pub use search::{search, Guards, SearchOutcome, SearchParams, SearchSpace};
pub use step_time::StepTimeModel;
