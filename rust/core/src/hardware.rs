//! What the core needs to know about a chip: its memory and its step-time model. The hardware
//! files (`hardware/*.toml`) hold these figures with their sources; the Python layer reads them.

use crate::error::{Error, Result};
use crate::step_time::StepTimeModel;

/// One accelerator chip, as the cost model sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hardware {
    /// Device memory (HBM) per chip. Unit: bytes.
    pub hbm_bytes: f64,
    /// Fraction of `hbm_bytes` a training step may plan to use (runtime, allocator, workspaces
    /// take the rest). Dimensionless, in (0, 1].
    pub usable_hbm_fraction: f64,
    pub step_time: StepTimeModel,
}

impl Hardware {
    /// Bytes a step may use. Unit: bytes.
    #[inline]
    pub fn usable_hbm_bytes(&self) -> f64 {
        self.hbm_bytes * self.usable_hbm_fraction
    }

    pub fn validate(&self) -> Result<()> {
        // 1 MiB .. 1 PiB: a value outside is a unit mistake (e.g. GiB given where bytes are expected).
        if !(self.hbm_bytes.is_finite() && (1_048_576.0..=1.125_899_906_842_624e15).contains(&self.hbm_bytes)) {
            return Err(Error::invalid("hbm_bytes", self.hbm_bytes, "bytes in [2^20, 2^50] (e.g. 34359738368 for 32 GiB)"));
        }
        if !(self.usable_hbm_fraction.is_finite() && self.usable_hbm_fraction > 0.0 && self.usable_hbm_fraction <= 1.0) {
            return Err(Error::invalid("usable_hbm_fraction", self.usable_hbm_fraction, "a fraction in (0, 1]"));
        }
        self.step_time.validate()
    }
}
