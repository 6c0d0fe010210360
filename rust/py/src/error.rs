//! The one conversion from the core's error enum to the Python exception tree.

use pyo3::exceptions::{PyException, PyKeyboardInterrupt};
use pyo3::{create_exception, PyErr};
use timescale_core::Error;

create_exception!(timescale_frontier, TimescaleError, PyException, "Base class of every error timescale-frontier raises.");
create_exception!(timescale_frontier, InvalidInputError, TimescaleError, "A value outside its accepted range (names the field and the range).");
create_exception!(timescale_frontier, EmptySpaceError, InvalidInputError, "A search-space axis has no values.");
create_exception!(timescale_frontier, SpaceTooLargeError, InvalidInputError, "A search space larger than the search agrees to enumerate.");
create_exception!(timescale_frontier, InfeasibleError, TimescaleError, "No configuration passes the feasibility checks; the message says why.");

/// Core error -> Python exception (exhaustive: a new variant fails to compile until mapped).
pub fn to_py(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::InvalidValue { .. } => InvalidInputError::new_err(msg),
        Error::EmptySpace { .. } => EmptySpaceError::new_err(msg),
        Error::SpaceTooLarge { .. } => SpaceTooLargeError::new_err(msg),
        Error::NoFeasibleConfig { .. } => InfeasibleError::new_err(msg),
        Error::Interrupted => PyKeyboardInterrupt::new_err(msg),
    }
}
