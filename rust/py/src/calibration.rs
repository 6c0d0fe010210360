//! `calibration`: what a calibration and its measurements may record (the core's `calibration`),
//! checked by the core.

use pyo3::prelude::*;

use crate::error::{AnyInt, IntoPy};

/// The step time of a measured training step: `step_time_s` as recorded, or from the recorded
/// throughput (`tokens_per_step / (tokens_per_s_per_chip x chips)`); checked by the core.
#[pyfunction]
#[pyo3(signature = (step_time_s, tokens_per_s_per_chip, tokens_per_step, chips))]
pub fn measured_step_time_s(
    step_time_s: Option<f64>,
    tokens_per_s_per_chip: Option<f64>,
    tokens_per_step: f64,
    chips: AnyInt,
) -> PyResult<f64> {
    let chips = timescale_core::Hardware::chip_count(chips.0).py_err()?;
    timescale_core::calibration::measured_step_time_s(step_time_s, tokens_per_s_per_chip, tokens_per_step, chips).py_err()
}

/// Checks a calibration's wall-clock budget and predicted step-time range (seconds) before it plans.
#[pyfunction]
pub fn check_calibration_request(time_budget_s: f64, step_range_s: (f64, f64)) -> PyResult<()> {
    timescale_core::calibration::check_calibration_request(time_budget_s, step_range_s).py_err()
}

/// Checks a measured microbenchmark ceiling (`kind` "matmul": FLOP/s, "copy": bytes/s) against
/// the core's ranges for a chip's figures.
#[pyfunction]
pub fn check_measured_rate(kind: &str, value: f64) -> PyResult<()> {
    timescale_core::calibration::check_measured_rate(kind, value).py_err()
}

/// Checks the number of records of a measurements file (at most the core's
/// `MAX_MEASUREMENT_RECORDS`); returns it.
#[pyfunction]
pub fn check_measurement_records(n: AnyInt) -> PyResult<usize> {
    timescale_core::calibration::check_measurement_records(n.0).py_err()
}

/// Checks the size of a measurements file in bytes (at most the core's
/// `MAX_MEASUREMENT_FILE_BYTES`); returns it.
#[pyfunction]
pub fn check_measurement_file_bytes(n: u64) -> PyResult<u64> {
    timescale_core::calibration::check_measurement_file_bytes(n).py_err()
}

/// Checks the size of a runs file in bytes (at most the core's `MAX_RUNS_FILE_BYTES`); returns it.
#[pyfunction]
pub fn check_runs_file_bytes(n: u64) -> PyResult<u64> {
    timescale_core::law_fit::check_runs_file_bytes(n).py_err()
}

/// Checks a number of runs (rows of a runs file) against the core's `MAX_RUNS`; returns it.
#[pyfunction]
pub fn check_run_count(n: u64) -> PyResult<usize> {
    timescale_core::law_fit::check_run_count(n).py_err()
}

/// Checks the length in bytes of one line of a measurements or runs file (at most the core's
/// `MAX_RECORD_BYTES`); returns it.
#[pyfunction]
pub fn check_record_bytes(n: u64) -> PyResult<u64> {
    timescale_core::calibration::check_record_bytes(n).py_err()
}

/// Checks a calibration's per-configuration compile deadline (seconds).
#[pyfunction]
pub fn check_compile_deadline_s(seconds: f64) -> PyResult<f64> {
    timescale_core::calibration::COMPILE_DEADLINE_S.check("compile_deadline_s", seconds).py_err()
}

/// Checks one figure a `[calibration]` section records (`field`: its key as the file names it).
#[pyfunction]
pub fn check_calibration_record(field: &str, value: f64) -> PyResult<f64> {
    timescale_core::calibration::check_calibration_record(field, value).py_err()
}

/// Checks that a measured step (`arch` over `chips` chips in `step_time_s`) is possible on
/// `hardware`: its FLOP rate within the core's margin of the chip's peak.
#[pyfunction]
pub fn check_measured_step(
    hardware: &crate::hardware::PyHardware,
    arch: &crate::architecture::PyArchitecture,
    chips: AnyInt,
    step_time_s: f64,
) -> PyResult<()> {
    let chips = timescale_core::Hardware::chip_count(chips.0).py_err()?;
    timescale_core::calibration::check_measured_step(&hardware.0, &arch.0, chips, step_time_s).py_err()
}

/// Whether a new calibration's median error (%) is clearly worse than another model's on the same
/// steps (core `calibration::calibration_is_worse`).
#[pyfunction]
pub fn calibration_is_worse(new_pct: f64, old_pct: f64) -> bool {
    timescale_core::calibration::calibration_is_worse(new_pct, old_pct)
}

/// Whether a calibration's model choice is stable: chosen in `chosen` of `resamples` bootstrap
/// resamples of its steps (core `calibration::choice_is_stable`).
#[pyfunction]
pub fn choice_is_stable(chosen: u32, resamples: u32) -> bool {
    timescale_core::calibration::choice_is_stable(chosen, resamples)
}

/// Whether a calibration written to a file of its own is far worse than the hardware file it
/// calibrates (core `calibration::calibration_is_far_worse`).
#[pyfunction]
pub fn calibration_is_far_worse(new_pct: f64, old_pct: f64) -> bool {
    timescale_core::calibration::calibration_is_far_worse(new_pct, old_pct)
}
