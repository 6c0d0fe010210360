//! `timescale_frontier._core`: the module surface. Bindings only; every formula is in
//! `timescale-core`. Files mirror the core's concepts.

use pyo3::prelude::*;

mod architecture;
mod error;
mod hardware;
mod law_fit;
mod metrics;
mod search;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<architecture::PyArchitecture>()?;
    m.add_class::<hardware::PyHardware>()?;
    m.add_class::<hardware::PyLaw>()?;
    m.add_class::<search::PySearchSpace>()?;
    m.add_function(wrap_pyfunction!(metrics::predict, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::budget_s_from_usd, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::collective_bytes_per_s, m)?)?;
    m.add_function(wrap_pyfunction!(search::search, m)?)?;
    m.add_function(wrap_pyfunction!(law_fit::fit_law, m)?)?;
    m.add("TimescaleError", py.get_type::<error::TimescaleError>())?;
    m.add("InvalidInputError", py.get_type::<error::InvalidInputError>())?;
    m.add("EmptySpaceError", py.get_type::<error::EmptySpaceError>())?;
    m.add("SpaceTooLargeError", py.get_type::<error::SpaceTooLargeError>())?;
    m.add("InfeasibleError", py.get_type::<error::InfeasibleError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
