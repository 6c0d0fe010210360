//! `timescale_frontier._core`: the module surface. Bindings only (convert, release the GIL, call
//! the core, wrap); every formula, default and range check is in `timescale-core`. Files mirror
//! the core's concepts.

use pyo3::prelude::*;

mod architecture;
mod budget;
mod calibration;
mod error;
mod evaluate;
mod hardware;
mod law_fit;
mod predict;
mod recipe;
mod report;
mod search;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // The core's worker threads, sized by the core before anything runs in parallel; a bad
    // RAYON_NUM_THREADS is the first parallel call's error (one line, not a panic at import).
    let _ = timescale_core::threads::init();
    m.add_class::<architecture::PyArchitecture>()?;
    m.add_class::<architecture::PyOp>()?;
    m.add_class::<architecture::PyStepWork>()?;
    m.add_class::<hardware::PyHardware>()?;
    m.add_class::<hardware::PyStepTimeParts>()?;
    m.add_class::<hardware::PyRange>()?;
    m.add_class::<hardware::PyCoefficient>()?;
    m.add_class::<hardware::PyCalibratedModel>()?;
    m.add_class::<hardware::PyLaw>()?;
    m.add_class::<hardware::PyLossTerms>()?;
    m.add_class::<budget::PyBudget>()?;
    m.add_class::<budget::PyResolvedBudget>()?;
    m.add_class::<predict::PyShardedStep>()?;
    m.add_class::<predict::PyShardingOption>()?;
    m.add_class::<predict::PyLayout>()?;
    m.add_class::<predict::PyChipCount>()?;
    m.add_class::<predict::PyPrediction>()?;
    m.add_class::<evaluate::PyMetricColumns>()?;
    m.add_class::<search::PySearchSpace>()?;
    m.add_class::<search::PyRejections>()?;
    m.add_class::<search::PyCandidate>()?;
    m.add_class::<search::PyCandidates>()?;
    m.add_class::<search::PyChipCountOutcome>()?;
    m.add_class::<search::PySearchOutcome>()?;
    m.add_class::<law_fit::PyInterval>()?;
    m.add_class::<law_fit::PyLawFit>()?;
    m.add_class::<law_fit::PyShapeFit>()?;
    m.add_function(wrap_pyfunction!(hardware::calibrated_models, m)?)?;
    m.add_function(wrap_pyfunction!(hardware::hardware_ranges, m)?)?;
    m.add_function(wrap_pyfunction!(predict::predict, m)?)?;
    m.add_function(wrap_pyfunction!(predict::predict_tokens, m)?)?;
    m.add_function(wrap_pyfunction!(predict::sharded_step, m)?)?;
    m.add_function(wrap_pyfunction!(predict::best_layout, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::measured_step_time_s, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::check_measured_rate, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::calibration_is_worse, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::choice_is_stable, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::calibration_is_far_worse, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::check_calibration_request, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::check_measurement_records, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::check_measurement_file_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::check_runs_file_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::check_run_count, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::check_record_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::check_compile_deadline_s, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::check_calibration_record, m)?)?;
    m.add_function(wrap_pyfunction!(calibration::check_measured_step, m)?)?;
    m.add_function(wrap_pyfunction!(report::check_width_depth_grid, m)?)?;
    m.add("MAX_MEASUREMENT_RECORDS", timescale_core::calibration::MAX_MEASUREMENT_RECORDS)?;
    m.add("APPROXIMATE_ROW_WEIGHT", timescale_core::calibration::APPROXIMATE_ROW_WEIGHT)?;
    m.add("MAX_RECORD_BYTES", timescale_core::calibration::MAX_RECORD_BYTES)?;
    m.add("MAX_RUNS", timescale_core::law_fit::MAX_RUNS)?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(search::search, m)?)?;
    m.add_function(wrap_pyfunction!(search::aspect_ratio_guard, m)?)?;
    m.add_function(wrap_pyfunction!(search::tie, m)?)?;
    m.add_function(wrap_pyfunction!(search::loss_scenarios, m)?)?;
    m.add_function(wrap_pyfunction!(search::configuration_step_error, m)?)?;
    m.add("NO_ASPECT_GUARD", timescale_core::search::NO_ASPECT_GUARD)?;
    m.add_function(wrap_pyfunction!(law_fit::fit_law, m)?)?;
    m.add_function(wrap_pyfunction!(law_fit::fit_law_with_shape, m)?)?;
    m.add_function(wrap_pyfunction!(law_fit::check_law_within_bootstrap, m)?)?;
    m.add_class::<recipe::PyRecipe>()?;
    m.add_function(wrap_pyfunction!(recipe::recipe, m)?)?;
    m.add("AUTO_MAX_CHIPS", timescale_core::budget::AUTO_MAX_CHIPS)?;
    m.add("UNCALIBRATED_STEP_TIME_ERROR", timescale_core::hardware::UNCALIBRATED_STEP_TIME_ERROR)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let defaults = pyo3::types::PyDict::new(m.py());
    {
        use timescale_core::defaults as d;
        defaults.set_item("top_k", d::TOP_K)?;
        defaults.set_item("n_bootstrap", d::BOOTSTRAP)?;
        defaults.set_item("law", d::LAW)?;
        defaults.set_item("aspect_ratio", d::ASPECT_RATIO)?;
        defaults.set_item("d_ff_multiple", d::D_FF_MULTIPLE)?;
        defaults.set_item("auto_max_chips", d::AUTO_MAX_CHIPS)?;
        let recipe = pyo3::types::PyDict::new(m.py());
        let rule = d::RECIPE;
        recipe.set_item("utilization", rule.utilization)?;
        recipe.set_item("tokens_per_param", rule.tokens_per_param)?;
        recipe.set_item("aspect_ratio", rule.aspect_ratio)?;
        recipe.set_item("head_dim", rule.head_dim)?;
        recipe.set_item("mlp", rule.mlp.name())?;
        recipe.set_item("ffn_mult", rule.ffn_mult)?;
        recipe.set_item("seq_len", d::RECIPE_SEQ_LEN)?;
        recipe.set_item("batch_size", d::RECIPE_BATCH_SIZE)?;
        recipe.set_item("vocab_size", d::RECIPE_VOCAB_SIZE)?;
        defaults.set_item("recipe", recipe)?;
    }
    m.add("DEFAULTS", defaults)?;
    let fields: Vec<(&str, &str)> = timescale_core::Architecture::FIELDS.iter().map(|(n, k)| (*n, k.name())).collect();
    m.add("ARCHITECTURE_FIELDS", fields)?;
    Ok(())
}
