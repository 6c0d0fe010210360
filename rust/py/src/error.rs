//! The one conversion from the core's error enum to the Python exception tree (defined in
//! `timescale_frontier/errors.py`, with structured `field`, `value` and `expected`).

use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::{import_exception, PyErr};
use timescale_core::Error;

import_exception!(timescale_frontier.errors, InvalidInputError);
import_exception!(timescale_frontier.errors, EmptySpaceError);
import_exception!(timescale_frontier.errors, SpaceTooLargeError);
import_exception!(timescale_frontier.errors, InfeasibleError);

/// A Python int as given, for the core to range-check (`timescale_core::error::integer_in` and the
/// functions built on it): ints beyond 128 bits saturate, which every such check refuses, so a
/// negative or huge count is the core's range error, never an `OverflowError`.
#[derive(Debug, Clone, Copy)]
pub struct AnyInt(pub i128);

impl<'a, 'py> FromPyObject<'a, 'py> for AnyInt {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match ob.extract::<i128>() {
            Ok(v) => Ok(AnyInt(v)),
            Err(_) if ob.is_instance_of::<pyo3::types::PyInt>() => Ok(AnyInt(if ob.gt(0)? { i128::MAX } else { i128::MIN })),
            Err(e) => Err(e),
        }
    }
}

/// Core error -> Python exception (exhaustive: a new variant fails to compile until mapped).
pub fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    Python::attach(|py| {
        let kwargs = PyDict::new(py);
        let ty = match &e {
            Error::InvalidValue { field, value, expected } => {
                let set = || -> PyResult<()> {
                    kwargs.set_item("field", field)?;
                    kwargs.set_item("value", value)?;
                    kwargs.set_item("expected", expected)
                };
                if let Err(err) = set() {
                    return err;
                }
                py.get_type::<InvalidInputError>()
            }
            Error::EmptySpace { .. } => py.get_type::<EmptySpaceError>(),
            Error::SpaceTooLarge { .. } => py.get_type::<SpaceTooLargeError>(),
            Error::NoFeasibleConfig { .. } => py.get_type::<InfeasibleError>(),
            Error::Interrupted => return PyKeyboardInterrupt::new_err(message),
        };
        match ty.call((message,), Some(&kwargs)) {
            Ok(obj) => PyErr::from_value(obj),
            Err(err) => err,
        }
    })
}

/// `Result` of the core -> `PyResult`.
pub trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for timescale_core::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
