//! `report`: the bounds of the reports beyond one search (the core's `report`).

use pyo3::prelude::*;

use crate::error::IntoPy;

/// Checks a width-depth grid of `widths` x `depths` cells (each a search); returns the cells.
#[pyfunction]
pub fn check_width_depth_grid(widths: u64, depths: u64) -> PyResult<u64> {
    timescale_core::report::check_grid(widths, depths).py_err()
}
