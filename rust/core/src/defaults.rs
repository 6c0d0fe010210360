//! Every default a user meets, in one place (the bindings export them as `_core.DEFAULTS`, which
//! the Python API, the command line's help and the stubs read): what a search lists, how many
//! bootstrap refits a law fit draws, the default law, the guard of a law without a shape term,
//! the rounding of `d_ff`, the chip counts `auto` tries.

/// How many of the best configurations a search lists (`top_k`).
pub const TOP_K: usize = 10;

/// Bootstrap refits a law fit draws for its intervals (`fit-law --bootstrap`).
pub const BOOTSTRAP: usize = 200;

/// The default law ([`crate::loss::DEFAULT_LAW`]).
pub const LAW: &str = crate::loss::DEFAULT_LAW;

/// The aspect-ratio guard of a law without a shape term ([`crate::loss::KAPLAN_ASPECT_RANGE`]).
pub const ASPECT_RATIO: (f64, f64) = crate::loss::KAPLAN_ASPECT_RANGE;

/// `d_ff` is rounded to a multiple of this ([`crate::search::D_FF_MULTIPLE`]).
pub const D_FF_MULTIPLE: u32 = crate::search::D_FF_MULTIPLE;

/// `--chips auto` tries powers of two up to the network's `max_chips` and at most this.
pub const AUTO_MAX_CHIPS: u32 = crate::budget::AUTO_MAX_CHIPS;

/// The usual recipe's assumptions (`timescale recipe`; [`crate::recipe::RecipeRule::default`]):
/// 40% MFU, Chinchilla's 20 tokens per parameter, d_model / n_layers = 64, heads of 64, GELU 4x.
pub const RECIPE: crate::recipe::RecipeRule = crate::recipe::RecipeRule::DEFAULT;

/// The recipe model's context, batch and vocabulary when none is given ([`crate::recipe::SEQ_LEN`]).
pub const RECIPE_SEQ_LEN: u32 = crate::recipe::SEQ_LEN;
pub const RECIPE_BATCH_SIZE: u32 = crate::recipe::BATCH_SIZE;
pub const RECIPE_VOCAB_SIZE: u32 = crate::recipe::VOCAB_SIZE;
