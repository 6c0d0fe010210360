//! `Budget` (hours, money or both) and `ResolvedBudget` (what it allows on a chip count).

use pyo3::prelude::*;
use timescale_core::budget::{Budget, Chips, ResolvedBudget};

use crate::error::{AnyInt, IntoPy};
use crate::hardware::PyHardware;

/// What a run may spend: `hours` of wall-clock time, `usd` of money (at `usd_per_chip_hour`, or
/// the hardware file's price), or both (the smaller wins). Checked by the core on construction.
#[pyclass(module = "timescale_frontier._core", name = "Budget", frozen, get_all, eq)]
#[derive(Clone, PartialEq)]
pub struct PyBudget {
    pub hours: Option<f64>,
    pub usd: Option<f64>,
    pub usd_per_chip_hour: Option<f64>,
}

impl PyBudget {
    pub fn core(&self) -> Budget {
        Budget { hours: self.hours, usd: self.usd, usd_per_chip_hour: self.usd_per_chip_hour }
    }
}

#[pymethods]
impl PyBudget {
    #[new]
    #[pyo3(signature = (hours=None, *, usd=None, usd_per_chip_hour=None))]
    fn new(hours: Option<f64>, usd: Option<f64>, usd_per_chip_hour: Option<f64>) -> PyResult<Self> {
        let b = Budget { hours, usd, usd_per_chip_hour };
        b.validate().py_err()?;
        Ok(PyBudget { hours, usd, usd_per_chip_hour })
    }

    /// What this budget allows on `chips` chips of `hardware`.
    #[pyo3(signature = (hardware, chips=AnyInt(1)), text_signature = "($self, hardware, chips=1)")]
    fn resolve(&self, hardware: &PyHardware, chips: AnyInt) -> PyResult<PyResolvedBudget> {
        let chips = timescale_core::Hardware::chip_count(chips.0).py_err()?;
        hardware.0.check_chips(chips).py_err()?;
        self.core().resolve(&hardware.0, chips).py_err().map(Into::into)
    }

    fn __repr__(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("None".to_owned(), |x| x.to_string());
        format!("Budget(hours={}, usd={}, usd_per_chip_hour={})", opt(self.hours), opt(self.usd), opt(self.usd_per_chip_hour))
    }
}

/// A budget resolved for a chip count: `seconds` of training, and which part limits it
/// (`limit`: `hours` or `money`); with money, the price and the hours it buys (`money_hours`).
#[pyclass(module = "timescale_frontier._core", name = "ResolvedBudget", frozen, get_all)]
#[derive(Clone)]
pub struct PyResolvedBudget {
    pub chips: u32,
    pub seconds: f64,
    pub hours: f64,
    pub limit: &'static str,
    pub stated_hours: Option<f64>,
    pub usd: Option<f64>,
    pub usd_per_chip_hour: Option<f64>,
    pub money_hours: Option<f64>,
}

impl From<ResolvedBudget> for PyResolvedBudget {
    fn from(b: ResolvedBudget) -> Self {
        PyResolvedBudget {
            chips: b.chips,
            seconds: b.seconds,
            hours: b.hours(),
            limit: b.limit.name(),
            stated_hours: b.hours,
            usd: b.usd,
            usd_per_chip_hour: b.usd_per_chip_hour,
            money_hours: b.money_hours,
        }
    }
}

/// Chip counts from Python: an int, a sequence of ints, or the string `"auto"`.
pub struct PyChips(pub Chips);

impl<'a, 'py> FromPyObject<'a, 'py> for PyChips {
    type Error = PyErr;
    fn extract(ob: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = ob.extract::<String>() {
            if s == "auto" {
                return Ok(PyChips(Chips::Auto));
            }
            return Err(crate::error::to_py(timescale_core::Error::invalid(
                "chips",
                format!("'{s}'"),
                "a chip count, a list of counts, or 'auto'",
            )));
        }
        if ob.is_instance_of::<pyo3::types::PyBool>() {
            return Err(crate::error::to_py(timescale_core::Error::invalid(
                "chips",
                ob.to_string(),
                "a chip count, a list of counts, or 'auto'",
            )));
        }
        let count = |c: AnyInt| timescale_core::Hardware::chip_count(c.0).map_err(crate::error::to_py);
        if let Ok(c) = ob.extract::<AnyInt>() {
            return Ok(PyChips(Chips::Count(count(c)?)));
        }
        match ob.extract::<Vec<AnyInt>>() {
            Ok(v) => Ok(PyChips(Chips::List(v.into_iter().map(count).collect::<PyResult<_>>()?))),
            Err(_) => Err(crate::error::to_py(timescale_core::Error::invalid(
                "chips",
                ob.repr().map_or_else(|_| "?".to_owned(), |r| r.to_string()),
                "a chip count >= 1, a list of counts, or 'auto'",
            ))),
        }
    }
}
