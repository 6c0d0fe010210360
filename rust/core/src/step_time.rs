//! Step time: seconds per training step from FLOPs and MEMCPY, by the hardware file's model.

use crate::error::{Error, Result};

/// How a hardware file turns a step's FLOPs and MEMCPY bytes into seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepTimeModel {
    /// `t = s_per_memcpy_byte x MEMCPY + s_per_flop x FLOPs + overhead_s`.
    /// With `s_per_flop = 0` this is Inbar & Sernau 2024's MEMCPY model (time = a MEMCPY + b); with
    /// `s_per_memcpy_byte = 0` it is the FLOPs-only model; with `1/(achievable FLOP/s)` and
    /// `1/(achievable bytes/s)` it is an additive roofline (no overlap of compute and traffic).
    Linear { s_per_memcpy_byte: f64, s_per_flop: f64, overhead_s: f64 },
    /// `t = max(FLOPs / flops_per_s, MEMCPY / memcpy_bytes_per_s) + overhead_s`: the step-level
    /// roofline with perfect overlap (a lower bound on step time).
    RooflineMax { flops_per_s: f64, memcpy_bytes_per_s: f64, overhead_s: f64 },
}

impl StepTimeModel {
    /// Seconds per step. Units: `flops` in FLOP, `memcpy_bytes` in bytes.
    #[inline]
    pub fn step_time_s(&self, flops: f64, memcpy_bytes: f64) -> f64 {
        match *self {
            StepTimeModel::Linear { s_per_memcpy_byte, s_per_flop, overhead_s } => {
                s_per_memcpy_byte * memcpy_bytes + s_per_flop * flops + overhead_s
            }
            StepTimeModel::RooflineMax { flops_per_s, memcpy_bytes_per_s, overhead_s } => {
                (flops / flops_per_s).max(memcpy_bytes / memcpy_bytes_per_s) + overhead_s
            }
        }
    }

    /// Checks coefficients: finite, non-negative, and the time grows with work.
    pub fn validate(&self) -> Result<()> {
        let nonneg = |field: &str, v: f64| -> Result<()> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::invalid(field, v, "a finite number >= 0"))
            }
        };
        // A rate beyond 1e16 bytes/s or 1e18 FLOP/s per chip is a unit mistake, and would let the
        // step count (budget / step time) grow past what f64 token counts can carry.
        let plausible = |field: &str, v: f64, min: f64, rate: &str| -> Result<()> {
            if v == 0.0 || v >= min {
                Ok(())
            } else {
                Err(Error::invalid(field, v, &format!("0 or at least {min:e} (at most {rate})")))
            }
        };
        match *self {
            StepTimeModel::Linear { s_per_memcpy_byte, s_per_flop, overhead_s } => {
                nonneg("s_per_memcpy_byte", s_per_memcpy_byte)?;
                nonneg("s_per_flop", s_per_flop)?;
                plausible("s_per_memcpy_byte", s_per_memcpy_byte, 1e-16, "1e16 bytes/s")?;
                plausible("s_per_flop", s_per_flop, 1e-18, "1e18 FLOP/s")?;
                nonneg("overhead_s", overhead_s)?;
                if s_per_memcpy_byte == 0.0 && s_per_flop == 0.0 {
                    return Err(Error::invalid("s_per_memcpy_byte", 0, "s_per_memcpy_byte or s_per_flop > 0"));
                }
            }
            StepTimeModel::RooflineMax { flops_per_s, memcpy_bytes_per_s, overhead_s } => {
                for (field, v, max) in [("flops_per_s", flops_per_s, 1e18), ("memcpy_bytes_per_s", memcpy_bytes_per_s, 1e16)] {
                    if !(v.is_finite() && v > 0.0 && v <= max) {
                        return Err(Error::invalid(field, v, &format!("a number in (0, {max:e}]")));
                    }
                }
                nonneg("overhead_s", overhead_s)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_and_roofline_by_hand() {
        // 1e12 bytes at 1e-12 s/byte = 1 s; 2e15 FLOP at 1e-15 s/FLOP = 2 s; overhead 0.5 s.
        let lin = StepTimeModel::Linear { s_per_memcpy_byte: 1e-12, s_per_flop: 1e-15, overhead_s: 0.5 };
        assert!((lin.step_time_s(2e15, 1e12) - 3.5).abs() < 1e-12);
        let roof = StepTimeModel::RooflineMax { flops_per_s: 1e15, memcpy_bytes_per_s: 1e12, overhead_s: 0.0 };
        assert!((roof.step_time_s(2e15, 1e12) - 2.0).abs() < 1e-12);
        assert!((roof.step_time_s(1e14, 1e12) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn rejects_bad_coefficients() {
        let bad = StepTimeModel::Linear { s_per_memcpy_byte: -1.0, s_per_flop: 0.0, overhead_s: 0.0 };
        assert!(bad.validate().unwrap_err().to_string().contains("s_per_memcpy_byte"));
        let zero = StepTimeModel::Linear { s_per_memcpy_byte: 0.0, s_per_flop: 0.0, overhead_s: 1.0 };
        assert!(zero.validate().is_err());
        let nan = StepTimeModel::RooflineMax { flops_per_s: f64::NAN, memcpy_bytes_per_s: 1.0, overhead_s: 0.0 };
        assert!(nan.validate().is_err());
        let tiny = StepTimeModel::Linear { s_per_memcpy_byte: 1e-300, s_per_flop: 0.0, overhead_s: 0.0 };
        assert!(tiny.validate().unwrap_err().to_string().contains("1e16 bytes/s"));
    }
}
