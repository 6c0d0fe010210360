//! `recipe`: the plan a practitioner makes today (the core's `recipe`), for comparison with the
//! tool's answer.

use pyo3::prelude::*;
use timescale_core::architecture::dim;
use timescale_core::recipe::{fit_micro_batch, recipe as core_recipe, RecipeRule};
use timescale_core::{Hardware, Mlp};

use crate::architecture::PyArchitecture;
use crate::error::{AnyInt, IntoPy};
use crate::hardware::{PyHardware, PyLaw};

/// The Chinchilla-FLOPs plan for a budget (units in the names).
#[pyclass(module = "timescale_frontier._core", name = "Recipe", frozen, get_all)]
pub struct PyRecipe {
    /// Training FLOPs the budget buys at the assumed utilisation.
    pub flops: f64,
    /// Compute-optimal parameters and tokens for those FLOPs.
    pub params: f64,
    pub tokens: f64,
    /// The conventional shape, run as a practitioner would on one chip (gradient accumulation or
    /// recomputation only when the whole batch does not fit).
    pub architecture: PyArchitecture,
}

/// The recipe for `seconds` on `chips` chips of `hardware`, shaped with `base`'s sequence length,
/// batch, vocabulary, tying and precision. `tokens_per_param=None`: the law's own optimum.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (seconds, chips, hardware, law, base, *, utilization=0.4, tokens_per_param=Some(20.0),
    aspect_ratio=64.0, head_dim=AnyInt(64), mlp="gelu", ffn_mult=4.0),
    text_signature = "(seconds, chips, hardware, law, base, *, utilization=0.4, tokens_per_param=20.0, \
    aspect_ratio=64.0, head_dim=64, mlp='gelu', ffn_mult=4.0)")]
pub fn recipe(
    py: Python<'_>,
    seconds: f64,
    chips: AnyInt,
    hardware: &PyHardware,
    law: &PyLaw,
    base: &PyArchitecture,
    utilization: f64,
    tokens_per_param: Option<f64>,
    aspect_ratio: f64,
    head_dim: AnyInt,
    mlp: &str,
    ffn_mult: f64,
) -> PyResult<PyRecipe> {
    let chips = Hardware::chip_count(chips.0).py_err()?;
    let head_dim = dim("head_dim", head_dim.0).py_err()?;
    let rule = RecipeRule { utilization, tokens_per_param, aspect_ratio, head_dim, mlp: Mlp::parse(mlp).py_err()?, ffn_mult };
    let hw = hardware.0;
    let r = py.detach(|| core_recipe(seconds, chips, hw.datasheet.peak_bf16_flops_per_s, &law.0, &rule, &base.0)).py_err()?;
    let arch = fit_micro_batch(&r.architecture, &hw, chips);
    Ok(PyRecipe { flops: r.flops, params: r.params, tokens: r.tokens, architecture: PyArchitecture(arch) })
}
