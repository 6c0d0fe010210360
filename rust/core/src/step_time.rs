//! Step time: seconds per training step from FLOPs and MEMCPY, by the hardware file's model.

use crate::architecture::Architecture;
use crate::error::{Error, Result};
use crate::memcpy::{attention_score_bytes_per_step, kernels_per_step, memcpy_fixed_bytes_per_step, per_op_roofline_s};

/// How a hardware file turns a step's FLOPs and MEMCPY bytes into seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepTimeModel {
    /// `t = s_per_memcpy_byte x MEMCPY + s_per_flop x FLOPs + overhead_s`.
    /// With `s_per_flop = 0` this is Inbar & Sernau 2024's MEMCPY model (time = a MEMCPY + b); with
    /// `s_per_memcpy_byte = 0` it is the FLOPs-only model; with `1/(achievable FLOP/s)` and
    /// `1/(achievable bytes/s)` it is an additive roofline (no overlap of compute and traffic).
    Linear { s_per_memcpy_byte: f64, s_per_flop: f64, overhead_s: f64 },
    /// `t = s_per_fixed_byte x MEMCPY_fixed + s_per_token_byte x MEMCPY_token + s_per_flop x FLOPs
    ///      + s_per_score_byte x SCORES + overhead_s`: MEMCPY split into the batch-independent part
    /// (parameters, gradients, optimizer moments, streamed by matmuls and AdamW) and the part that
    /// grows with the tokens (activations, moved by many small kernels), which devices move at
    /// different effective rates; SCORES is one pass over the materialized attention scores
    /// ([`crate::memcpy::attention_score_bytes_per_step`]), priced extra where the backend does not
    /// fuse scale, mask and softmax (0 for files calibrated before this term existed).
    SplitLinear { s_per_fixed_byte: f64, s_per_token_byte: f64, s_per_flop: f64, s_per_score_byte: f64, overhead_s: f64 },
    /// `t = max(FLOPs / flops_per_s, MEMCPY / memcpy_bytes_per_s) + overhead_s`: the step-level
    /// roofline with perfect overlap (a lower bound on step time).
    RooflineMax { flops_per_s: f64, memcpy_bytes_per_s: f64, overhead_s: f64 },
    /// `t = sum over ops of max(op FLOPs / flops_per_s, op bytes / memcpy_bytes_per_s)
    ///      + s_per_kernel x kernels + overhead_s`: each op of the MEMCPY table is compute- or
    /// memory-bound on its own, and every kernel costs a fixed launch/dispatch time. Needs the
    /// architecture, not only the step's totals (see [`StepTimeModel::step_time_for`]).
    PerOpRoofline { flops_per_s: f64, memcpy_bytes_per_s: f64, s_per_kernel: f64, overhead_s: f64 },
}

/// A step's time by cause (seconds); see [`StepTimeModel::parts`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepTimeParts {
    pub memory_s: f64,
    pub compute_s: f64,
    pub fixed_s: f64,
}

impl StepTimeModel {
    /// Seconds per byte of one pass over the attention scores (the split model's extra term; 0
    /// for every other model).
    #[inline]
    pub fn s_per_score_byte(&self) -> f64 {
        match *self {
            StepTimeModel::SplitLinear { s_per_score_byte, .. } => s_per_score_byte,
            _ => 0.0,
        }
    }

    /// Whether the model needs the per-op table (not just the step's FLOPs and MEMCPY).
    #[inline]
    pub fn is_per_op(&self) -> bool {
        matches!(self, StepTimeModel::PerOpRoofline { .. })
    }

    /// Seconds per step of `arch`, whose model FLOPs and MEMCPY are `flops` and `memcpy_bytes`.
    #[inline]
    pub fn step_time_for(&self, arch: &Architecture, flops: f64, memcpy_bytes: f64) -> f64 {
        match *self {
            StepTimeModel::PerOpRoofline { flops_per_s, memcpy_bytes_per_s, s_per_kernel, overhead_s } => {
                per_op_roofline_s(arch, flops_per_s, memcpy_bytes_per_s) + s_per_kernel * kernels_per_step(arch) + overhead_s
            }
            StepTimeModel::SplitLinear { s_per_score_byte, .. } => {
                let fixed = memcpy_fixed_bytes_per_step(arch);
                self.step_time_split_s(flops, fixed, memcpy_bytes - fixed)
                    + s_per_score_byte * attention_score_bytes_per_step(arch)
            }
            _ => self.step_time_s(flops, memcpy_bytes),
        }
    }

    /// Seconds per step from FLOPs and MEMCPY split into its batch-independent and token parts
    /// (the search kernel has both parts for free); the split model's attention-score term is not
    /// included (add [`StepTimeModel::s_per_score_byte`] x score bytes).
    #[inline]
    pub fn step_time_split_s(&self, flops: f64, fixed_bytes: f64, token_bytes: f64) -> f64 {
        match *self {
            StepTimeModel::SplitLinear { s_per_fixed_byte, s_per_token_byte, s_per_flop, overhead_s, .. } => {
                s_per_fixed_byte * fixed_bytes + s_per_token_byte * token_bytes + s_per_flop * flops + overhead_s
            }
            _ => self.step_time_s(flops, fixed_bytes + token_bytes),
        }
    }

    /// Seconds per step from the step's totals. Units: `flops` in FLOP, `memcpy_bytes` in bytes.
    /// Per-op and split models need more than totals (use [`StepTimeModel::step_time_for`]): here
    /// the per-op model gives its step-level roofline (a lower bound) and the split model prices
    /// every byte at the token rate.
    #[inline]
    pub fn step_time_s(&self, flops: f64, memcpy_bytes: f64) -> f64 {
        match *self {
            StepTimeModel::PerOpRoofline { flops_per_s, memcpy_bytes_per_s, overhead_s, .. } => {
                (flops / flops_per_s).max(memcpy_bytes / memcpy_bytes_per_s) + overhead_s
            }
            StepTimeModel::SplitLinear { s_per_token_byte, s_per_flop, overhead_s, .. } => {
                s_per_token_byte * memcpy_bytes + s_per_flop * flops + overhead_s
            }
            StepTimeModel::Linear { s_per_memcpy_byte, s_per_flop, overhead_s } => {
                s_per_memcpy_byte * memcpy_bytes + s_per_flop * flops + overhead_s
            }
            StepTimeModel::RooflineMax { flops_per_s, memcpy_bytes_per_s, overhead_s } => {
                (flops / flops_per_s).max(memcpy_bytes / memcpy_bytes_per_s) + overhead_s
            }
        }
    }

    /// Where the time of a step goes: seconds moving bytes, seconds computing, and fixed seconds
    /// (per-kernel and per-step overheads). For the two roofline models memory and compute are
    /// each alone (a step-level roofline overlaps them; the per-op one splits ops by their bound).
    pub fn parts(&self, arch: &Architecture, flops: f64, memcpy_bytes: f64) -> StepTimeParts {
        match *self {
            StepTimeModel::Linear { s_per_memcpy_byte, s_per_flop, overhead_s } => StepTimeParts {
                memory_s: s_per_memcpy_byte * memcpy_bytes,
                compute_s: s_per_flop * flops,
                fixed_s: overhead_s,
            },
            StepTimeModel::SplitLinear { s_per_fixed_byte, s_per_token_byte, s_per_flop, s_per_score_byte, overhead_s } => {
                let fixed = memcpy_fixed_bytes_per_step(arch);
                StepTimeParts {
                    memory_s: s_per_fixed_byte * fixed
                        + s_per_token_byte * (memcpy_bytes - fixed)
                        + s_per_score_byte * attention_score_bytes_per_step(arch),
                    compute_s: s_per_flop * flops,
                    fixed_s: overhead_s,
                }
            }
            StepTimeModel::RooflineMax { flops_per_s, memcpy_bytes_per_s, overhead_s } => StepTimeParts {
                memory_s: memcpy_bytes / memcpy_bytes_per_s,
                compute_s: flops / flops_per_s,
                fixed_s: overhead_s,
            },
            StepTimeModel::PerOpRoofline { flops_per_s, memcpy_bytes_per_s, s_per_kernel, overhead_s } => {
                let (memory_s, compute_s) = crate::memcpy::per_op_roofline_parts(arch, flops_per_s, memcpy_bytes_per_s);
                StepTimeParts { memory_s, compute_s, fixed_s: s_per_kernel * kernels_per_step(arch) + overhead_s }
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
            StepTimeModel::SplitLinear { s_per_fixed_byte, s_per_token_byte, s_per_flop, s_per_score_byte, overhead_s } => {
                for (field, v, min, rate) in [
                    ("s_per_fixed_byte", s_per_fixed_byte, 1e-16, "1e16 bytes/s"),
                    ("s_per_token_byte", s_per_token_byte, 1e-16, "1e16 bytes/s"),
                    ("s_per_flop", s_per_flop, 1e-18, "1e18 FLOP/s"),
                    ("s_per_score_byte", s_per_score_byte, 1e-16, "1e16 bytes/s"),
                ] {
                    nonneg(field, v)?;
                    plausible(field, v, min, rate)?;
                }
                nonneg("overhead_s", overhead_s)?;
                if s_per_fixed_byte == 0.0 && s_per_token_byte == 0.0 && s_per_flop == 0.0 {
                    return Err(Error::invalid("s_per_token_byte", 0, "a byte or FLOP coefficient > 0"));
                }
            }
            StepTimeModel::PerOpRoofline { flops_per_s, memcpy_bytes_per_s, s_per_kernel, overhead_s } => {
                for (field, v, max) in [("flops_per_s", flops_per_s, 1e18), ("memcpy_bytes_per_s", memcpy_bytes_per_s, 1e16)] {
                    if !(v.is_finite() && v > 0.0 && v <= max) {
                        return Err(Error::invalid(field, v, &format!("a number in (0, {max:e}]")));
                    }
                }
                nonneg("s_per_kernel", s_per_kernel)?;
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
    fn split_model_by_hand_on_the_tiny_config() {
        // tiny(): MEMCPY 11,264 B of which 7,264 fixed and 4,000 token; 64 B of attention scores
        // (memcpy.rs tests). 1e-9 s per fixed byte, 2e-9 per token byte, 1e-8 per score byte,
        // FLOPs free, 1 ms overhead: 7.264e-6 + 8e-6 + 6.4e-7 + 1e-3 s.
        let a = crate::architecture::tests::tiny();
        let m = StepTimeModel::SplitLinear {
            s_per_fixed_byte: 1e-9,
            s_per_token_byte: 2e-9,
            s_per_flop: 0.0,
            s_per_score_byte: 1e-8,
            overhead_s: 1e-3,
        };
        let t = m.step_time_for(&a, 0.0, 11_264.0);
        assert!((t - (7.264e-6 + 8.0e-6 + 6.4e-7 + 1e-3)).abs() < 1e-15, "{t}");
        let p = m.parts(&a, 0.0, 11_264.0);
        assert!((p.memory_s + p.compute_s + p.fixed_s - t).abs() < 1e-15);
        let flash = crate::architecture::Architecture { attention: crate::architecture::Attention::Flash, ..a };
        assert_eq!(m.s_per_score_byte(), 1e-8);
        assert_eq!(crate::memcpy::attention_score_bytes_per_step(&flash), 0.0);
    }

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
