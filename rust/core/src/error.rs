//! The one error type of the core. Every failure a user can cause maps to one variant; the Python
//! bindings convert each variant to one exception class (`TimescaleError` subclasses).

use std::fmt;

/// Everything that can go wrong in the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A value outside its accepted range: `field` is the user-facing name (e.g. `d_model`,
    /// `hbm_bytes_per_s`), `expected` says what is accepted.
    InvalidValue { field: String, value: String, expected: String },
    /// A search space with an axis that has no values, so no configuration can be enumerated.
    EmptySpace { axis: String },
    /// A search space larger than the core agrees to enumerate.
    SpaceTooLarge { size: f64, limit: u64 },
    /// The search ran but no configuration passed every feasibility check; `reason` explains which
    /// check removed the most configurations, with figures.
    NoFeasibleConfig { reason: String },
    /// The caller asked the search to stop (Ctrl-C).
    Interrupted,
}

impl Error {
    /// Shorthand for [`Error::InvalidValue`].
    pub fn invalid(field: &str, value: impl fmt::Display, expected: &str) -> Self {
        Error::InvalidValue { field: field.to_owned(), value: value.to_string(), expected: expected.to_owned() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidValue { field, value, expected } => {
                write!(f, "{field} = {value} is invalid: expected {expected}")
            }
            Error::EmptySpace { axis } => write!(f, "search space axis '{axis}' has no values"),
            Error::SpaceTooLarge { size, limit } => {
                write!(f, "search space has {size:.3e} configurations; the limit is {limit:.3e} (narrow an axis)")
            }
            Error::NoFeasibleConfig { reason } => write!(f, "no feasible configuration: {reason}"),
            Error::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias of the core.
pub type Result<T> = std::result::Result<T, Error>;
