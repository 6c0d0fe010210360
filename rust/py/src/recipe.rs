//! `recipe`: the plan a practitioner makes today (the core's `recipe`), for comparison with the
//! tool's answer.

use pyo3::prelude::*;
use timescale_core::architecture::dim;
use timescale_core::recipe::{
    check_calibrated_word, fit_micro_batch, predicted_utilization, recipe as core_recipe, recipe_at_calibrated_utilization,
    RecipeRule,
};
use timescale_core::{Hardware, Mlp};

use crate::architecture::PyArchitecture;
use crate::error::{AnyInt, IntoPy};
use crate::hardware::{PyHardware, PyLaw};

/// The Chinchilla-FLOPs plan for a budget (units in the names).
#[pyclass(module = "timescale_frontier._core", name = "Recipe", frozen, get_all)]
pub struct PyRecipe {
    /// Training FLOPs the budget buys at `utilization`.
    pub flops: f64,
    /// Compute-optimal parameters and tokens for those FLOPs.
    pub params: f64,
    pub tokens: f64,
    /// The conventional shape, run as a practitioner would on one chip (gradient accumulation or
    /// recomputation only when the whole batch does not fit).
    pub architecture: PyArchitecture,
    /// The fraction of peak bf16 FLOP/s the FLOPs were computed at.
    pub utilization: f64,
    /// `assumed` (given) or `calibrated` (the hardware file's prediction for the recipe's own model).
    pub utilization_source: &'static str,
    /// The utilisation the hardware file predicts for the recipe's model as it runs (`None` when
    /// no sharding of the chips divides it).
    pub predicted_utilization: Option<f64>,
}

/// The recipe for `seconds` on `chips` chips of `hardware`, shaped with `base`'s sequence length,
/// batch, vocabulary, tying and precision (the core's `recipe`; defaults: `DEFAULTS["recipe"]`).
/// `utilization`: a fraction of peak, or `"calibrated"` for the one the hardware file predicts
/// for the recipe's own model (the core's `recipe_at_calibrated_utilization`);
/// `tokens_per_param=None`: the law's own optimum.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (seconds, chips, hardware, law, base, *, utilization, tokens_per_param, aspect_ratio, head_dim,
    mlp, ffn_mult))]
pub fn recipe(
    py: Python<'_>,
    seconds: f64,
    chips: AnyInt,
    hardware: &PyHardware,
    law: &PyLaw,
    base: &PyArchitecture,
    utilization: &Bound<'_, PyAny>,
    tokens_per_param: Option<f64>,
    aspect_ratio: f64,
    head_dim: AnyInt,
    mlp: &str,
    ffn_mult: f64,
) -> PyResult<PyRecipe> {
    let chips = Hardware::chip_count(chips.0).py_err()?;
    let head_dim = dim("head_dim", head_dim.0).py_err()?;
    // A number (or a numeric string), or the word "calibrated"; anything else is one clear error.
    let expected = || {
        timescale_core::Error::invalid(
            "utilization",
            utilization.repr().map_or_else(|_| "?".to_owned(), |r| r.to_string_lossy().into_owned()),
            &format!("{} or 'calibrated'", timescale_core::recipe::UTILIZATION.expected()),
        )
    };
    let (calibrated, assumed) = if utilization.is_instance_of::<pyo3::types::PyBool>() {
        return Err(expected()).py_err();
    } else if let Ok(w) = utilization.extract::<String>() {
        match w.trim().parse::<f64>() {
            Ok(v) => (false, v),
            Err(_) => {
                check_calibrated_word(&w).py_err()?;
                (true, RecipeRule::DEFAULT.utilization)
            }
        }
    } else {
        (false, utilization.extract::<f64>().map_err(|_| expected()).py_err()?)
    };
    let rule =
        RecipeRule { utilization: assumed, tokens_per_param, aspect_ratio, head_dim, mlp: Mlp::parse(mlp).py_err()?, ffn_mult };
    let hw = hardware.0;
    let (r, utilization, source) = if calibrated {
        let c = py.detach(|| recipe_at_calibrated_utilization(seconds, chips, &hw, &law.0, &rule, &base.0)).py_err()?;
        (c.recipe, c.utilization, "calibrated")
    } else {
        let r = py.detach(|| core_recipe(seconds, chips, hw.datasheet.peak_bf16_flops_per_s, &law.0, &rule, &base.0)).py_err()?;
        (r, assumed, "assumed")
    };
    let arch = fit_micro_batch(&r.architecture, &hw, chips);
    Ok(PyRecipe {
        flops: r.flops,
        params: r.params,
        tokens: r.tokens,
        architecture: PyArchitecture(arch),
        utilization,
        utilization_source: source,
        predicted_utilization: predicted_utilization(&arch, &hw, chips).ok(),
    })
}
