//! Step time: seconds per training step from FLOPs and MEMCPY, by the hardware file's model, and
//! the registry of calibrated models ([`CALIBRATED_MODELS`]): each model's name in a hardware
//! file's `[calibration]`, its coefficients and their accepted ranges.

use crate::architecture::Architecture;
use crate::error::{significant, Error, Range, Result};
use crate::memcpy::{attention_score_bytes_per_step, memcpy_fixed_bytes_per_step, per_op_roofline_parts, step_work, StepWork};

/// How a hardware file turns a step's work ([`StepWork`]: matmul, attention and all FLOPs, MEMCPY
/// bytes, kernels) into seconds. "FLOPs" below are every hardware FLOP the step executes (the
/// operation table's: matmuls, attention, elementwise work, recomputation included, no embedding
/// matmul: the lookup is a gather), not Chinchilla's model FLOPs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepTimeModel {
    /// `t = s_per_memcpy_byte x MEMCPY + s_per_flop x FLOPs + overhead_s`.
    /// With `s_per_flop = 0` this is Inbar & Sernau 2024's MEMCPY model (time = a MEMCPY + b); with
    /// `s_per_memcpy_byte = 0` it is the FLOPs-only model.
    Linear { s_per_memcpy_byte: f64, s_per_flop: f64, overhead_s: f64 },
    /// `t = s_per_fixed_byte x MEMCPY_fixed + s_per_token_byte x MEMCPY_token + s_per_flop x FLOPs
    ///      + s_per_score_byte x SCORES + overhead_s`: MEMCPY split into the parameter traffic
    /// ([`crate::memcpy::memcpy_fixed_bytes_per_step`]) and the part that grows with the tokens
    /// (activations, moved by many small kernels), which devices move at different effective
    /// rates; SCORES is one pass over the materialized attention scores
    /// ([`crate::memcpy::attention_score_bytes_per_step`]), priced extra where the backend does not
    /// fuse scale, mask and softmax (0 for files calibrated before this term existed).
    SplitLinear { s_per_fixed_byte: f64, s_per_token_byte: f64, s_per_flop: f64, s_per_score_byte: f64, overhead_s: f64 },
    /// `t = s_per_matmul_flop x matmul FLOPs + s_per_attention_flop x attention FLOPs
    ///      + s_per_byte x MEMCPY + overhead_s`: each kind of work at its own rate (dense GEMMs run
    /// near peak, attention kernels far below it, memory-bound kernels at a fraction of the
    /// bandwidth). The datasheet roofline of an uncalibrated chip is this model with
    /// efficiency x peak rates; calibrated GPU files fit it to measured training steps.
    Rates { s_per_matmul_flop: f64, s_per_attention_flop: f64, s_per_byte: f64, overhead_s: f64 },
    /// `t = max(FLOPs / flops_per_s, MEMCPY / memcpy_bytes_per_s) + overhead_s`: the step-level
    /// roofline with perfect overlap (a lower bound on step time).
    RooflineMax { flops_per_s: f64, memcpy_bytes_per_s: f64, overhead_s: f64 },
    /// `t = sum over ops of max(op FLOPs / flops_per_s, op bytes / memcpy_bytes_per_s)
    ///      + s_per_kernel x kernels + overhead_s`: each op of the MEMCPY table is compute- or
    /// memory-bound on its own (every hardware FLOP counts), and every kernel costs a fixed
    /// launch/dispatch time.
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
    /// Whether the model is a linear combination of the step's work (every work term is bilinear
    /// in depth and batch, so the step time is too: the search kernel fits it per shape).
    #[inline]
    pub fn is_linear(&self) -> bool {
        matches!(self, StepTimeModel::Linear { .. } | StepTimeModel::SplitLinear { .. } | StepTimeModel::Rates { .. })
    }

    /// Seconds per step of `arch` on one chip.
    #[inline]
    pub fn seconds(&self, arch: &Architecture) -> f64 {
        self.seconds_for(arch, &step_work(arch))
    }

    /// Seconds per step of `arch`, whose work is `w` (see [`step_work`]).
    #[inline]
    pub fn seconds_for(&self, arch: &Architecture, w: &StepWork) -> f64 {
        self.seconds_from_parts(&self.parts(arch, w))
    }

    /// Seconds per step from its [`StepTimeModel::parts`]: their sum, less the overlap of memory
    /// and compute for the step-level roofline (its parts report each alone).
    #[inline]
    pub fn seconds_from_parts(&self, p: &StepTimeParts) -> f64 {
        p.memory_s + p.compute_s + p.fixed_s
            - match *self {
                StepTimeModel::RooflineMax { .. } => p.memory_s.min(p.compute_s),
                _ => 0.0,
            }
    }

    /// Seconds per byte of parameter traffic (what sharding the optimizer update saves per byte):
    /// the fixed-byte rate of the split model, the byte rate of the others.
    pub fn seconds_per_parameter_byte(&self) -> f64 {
        match *self {
            StepTimeModel::Linear { s_per_memcpy_byte, .. } => s_per_memcpy_byte,
            StepTimeModel::SplitLinear { s_per_fixed_byte, .. } => s_per_fixed_byte,
            StepTimeModel::Rates { s_per_byte, .. } => s_per_byte,
            StepTimeModel::RooflineMax { memcpy_bytes_per_s, .. } | StepTimeModel::PerOpRoofline { memcpy_bytes_per_s, .. } => {
                1.0 / memcpy_bytes_per_s
            }
        }
    }

    /// Where the time of a step goes: seconds moving bytes, seconds computing, and fixed seconds
    /// (per-kernel and per-step overheads). For the two roofline models memory and compute are
    /// each alone (a step-level roofline overlaps them; the per-op one splits ops by their bound).
    pub fn parts(&self, arch: &Architecture, w: &StepWork) -> StepTimeParts {
        let flops = w.flops;
        match *self {
            StepTimeModel::Linear { s_per_memcpy_byte, s_per_flop, overhead_s } => {
                StepTimeParts { memory_s: s_per_memcpy_byte * w.bytes, compute_s: s_per_flop * flops, fixed_s: overhead_s }
            }
            StepTimeModel::SplitLinear { s_per_fixed_byte, s_per_token_byte, s_per_flop, s_per_score_byte, overhead_s } => {
                let fixed = memcpy_fixed_bytes_per_step(arch);
                StepTimeParts {
                    memory_s: s_per_fixed_byte * fixed
                        + s_per_token_byte * (w.bytes - fixed)
                        + s_per_score_byte * attention_score_bytes_per_step(arch),
                    compute_s: s_per_flop * flops,
                    fixed_s: overhead_s,
                }
            }
            StepTimeModel::Rates { s_per_matmul_flop, s_per_attention_flop, s_per_byte, overhead_s } => StepTimeParts {
                memory_s: s_per_byte * w.bytes,
                compute_s: s_per_matmul_flop * w.matmul_flops + s_per_attention_flop * w.attention_flops,
                fixed_s: overhead_s,
            },
            StepTimeModel::RooflineMax { flops_per_s, memcpy_bytes_per_s, overhead_s } => {
                StepTimeParts { memory_s: w.bytes / memcpy_bytes_per_s, compute_s: flops / flops_per_s, fixed_s: overhead_s }
            }
            StepTimeModel::PerOpRoofline { flops_per_s, memcpy_bytes_per_s, s_per_kernel, overhead_s } => {
                let (memory_s, compute_s) = per_op_roofline_parts(arch, flops_per_s, memcpy_bytes_per_s);
                StepTimeParts { memory_s, compute_s, fixed_s: s_per_kernel * w.kernels + overhead_s }
            }
        }
    }

    /// The formula with its numbers (4 significant digits), for display.
    pub fn formula(&self) -> String {
        let g = |x: f64| significant(x, 4);
        match *self {
            StepTimeModel::Linear { s_per_memcpy_byte, s_per_flop, overhead_s } => {
                format!("{} s/byte x MEMCPY + {} s/FLOP x FLOPs + {} s", g(s_per_memcpy_byte), g(s_per_flop), g(overhead_s))
            }
            StepTimeModel::SplitLinear { s_per_fixed_byte, s_per_token_byte, s_per_flop, s_per_score_byte, overhead_s } => {
                format!(
                    "{} s/byte x MEMCPY(parameters) + {} s/byte x MEMCPY(activations) + {} s/FLOP x FLOPs{} + {} s",
                    g(s_per_fixed_byte),
                    g(s_per_token_byte),
                    g(s_per_flop),
                    if s_per_score_byte > 0.0 {
                        format!(" + {} s/byte x attention scores", g(s_per_score_byte))
                    } else {
                        String::new()
                    },
                    g(overhead_s)
                )
            }
            StepTimeModel::Rates { s_per_matmul_flop, s_per_attention_flop, s_per_byte, overhead_s } => {
                // A coefficient fitted to 0 costs nothing: "0 x MEMCPY", never "MEMCPY / inf B/s".
                let term = |work: &str, s: f64, unit: &str| {
                    if s > 0.0 {
                        format!("{work} / {} {unit}", g(1.0 / s))
                    } else {
                        format!("0 x {work}")
                    }
                };
                format!(
                    "{} + {} + {} + {} s",
                    term("matmul FLOPs", s_per_matmul_flop, "FLOP/s"),
                    term("attention FLOPs", s_per_attention_flop, "FLOP/s"),
                    term("MEMCPY", s_per_byte, "B/s"),
                    g(overhead_s)
                )
            }
            StepTimeModel::RooflineMax { flops_per_s, memcpy_bytes_per_s, overhead_s } => {
                format!("max(FLOPs / {} FLOP/s, MEMCPY / {} B/s) + {} s", g(flops_per_s), g(memcpy_bytes_per_s), g(overhead_s))
            }
            StepTimeModel::PerOpRoofline { flops_per_s, memcpy_bytes_per_s, s_per_kernel, overhead_s } => format!(
                "sum over ops of max(FLOPs / {} FLOP/s, bytes / {} B/s) + {} s per kernel + {} s",
                g(flops_per_s),
                g(memcpy_bytes_per_s),
                g(s_per_kernel),
                g(overhead_s)
            ),
        }
    }

    /// Structural checks (ranges are the registry's, [`CALIBRATED_MODELS`], and the datasheet's):
    /// every coefficient finite and >= 0, rates > 0, and some work costs time.
    pub fn validate(&self) -> Result<()> {
        let nonneg = |field: &str, v: f64| -> Result<()> {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(Error::invalid_number(field, v, "a finite number >= 0"))
            }
        };
        let rate = |field: &str, v: f64| -> Result<()> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(Error::invalid_number(field, v, "a finite rate > 0"))
            }
        };
        match *self {
            StepTimeModel::Linear { s_per_memcpy_byte, s_per_flop, overhead_s } => {
                nonneg("s_per_memcpy_byte", s_per_memcpy_byte)?;
                nonneg("s_per_flop", s_per_flop)?;
                nonneg("overhead_s", overhead_s)?;
                if s_per_memcpy_byte == 0.0 && s_per_flop == 0.0 {
                    return Err(Error::invalid("s_per_memcpy_byte", 0, "s_per_memcpy_byte or s_per_flop > 0"));
                }
            }
            StepTimeModel::Rates { s_per_matmul_flop, s_per_attention_flop, s_per_byte, overhead_s } => {
                for (field, v) in [
                    ("s_per_matmul_flop", s_per_matmul_flop),
                    ("s_per_attention_flop", s_per_attention_flop),
                    ("s_per_byte", s_per_byte),
                    ("overhead_s", overhead_s),
                ] {
                    nonneg(field, v)?;
                }
                if s_per_matmul_flop == 0.0 && s_per_byte == 0.0 {
                    return Err(Error::invalid("s_per_matmul_flop", 0, "s_per_matmul_flop or s_per_byte > 0"));
                }
            }
            StepTimeModel::RooflineMax { flops_per_s, memcpy_bytes_per_s, overhead_s } => {
                rate("flops_per_s", flops_per_s)?;
                rate("memcpy_bytes_per_s", memcpy_bytes_per_s)?;
                nonneg("overhead_s", overhead_s)?;
            }
            StepTimeModel::SplitLinear { s_per_fixed_byte, s_per_token_byte, s_per_flop, s_per_score_byte, overhead_s } => {
                for (field, v) in [
                    ("s_per_fixed_byte", s_per_fixed_byte),
                    ("s_per_token_byte", s_per_token_byte),
                    ("s_per_flop", s_per_flop),
                    ("s_per_score_byte", s_per_score_byte),
                    ("overhead_s", overhead_s),
                ] {
                    nonneg(field, v)?;
                }
                if s_per_fixed_byte == 0.0 && s_per_token_byte == 0.0 && s_per_flop == 0.0 {
                    return Err(Error::invalid("s_per_token_byte", 0, "a byte or FLOP coefficient > 0"));
                }
            }
            StepTimeModel::PerOpRoofline { flops_per_s, memcpy_bytes_per_s, s_per_kernel, overhead_s } => {
                rate("flops_per_s", flops_per_s)?;
                rate("memcpy_bytes_per_s", memcpy_bytes_per_s)?;
                nonneg("s_per_kernel", s_per_kernel)?;
                nonneg("overhead_s", overhead_s)?;
            }
        }
        Ok(())
    }
}

/// One coefficient of a calibrated model: its key in the hardware file, its accepted range (with
/// unit), and the value a file may leave it at (files calibrated before the term existed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Coefficient {
    pub name: &'static str,
    pub range: Range,
    pub default: Option<f64>,
}

/// A step-time model `timescale calibrate` can fit and a hardware file can name.
#[derive(Debug)]
pub struct CalibratedModel {
    /// The name in `[calibration] model = ...`.
    pub name: &'static str,
    /// The formula in words.
    pub description: &'static str,
    /// In the order [`CalibratedModel::build`] takes them.
    pub coefficients: &'static [Coefficient],
    /// The work each fitted coefficient multiplies, as the fit names its features (`bytes`,
    /// `flops`, `matmul`, `attention`, `fixed`, `token`, `scores`, `roofline`, `kernels`); the
    /// per-step overhead is fitted besides.
    pub terms: &'static [&'static str],
    /// Whether the model needs the whole step on one chip (features of the unsharded table).
    pub one_chip: bool,
    build: fn(&[f64]) -> StepTimeModel,
}

impl PartialEq for CalibratedModel {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl CalibratedModel {
    /// The model from its coefficients, in [`CalibratedModel::coefficients`] order (unchecked;
    /// [`calibrated_model`] checks them).
    pub fn build(&self, values: &[f64]) -> StepTimeModel {
        (self.build)(values)
    }
}

// A rate beyond 1e16 bytes/s or 1e18 FLOP/s per chip is a unit mistake, and would let the step
// count (budget / step time) grow past what f64 token counts carry; 1e-3 s per byte is a
// kilobyte per second.
const S_PER_BYTE: Range = Range::new(1e-16, 1e-3, "seconds per byte").or_zero();
const S_PER_FLOP: Range = Range::new(1e-18, 1e-3, "seconds per FLOP").or_zero();
const OVERHEAD: Range = Range::new(0.0, 3600.0, "seconds");
const fn coef(name: &'static str, range: Range) -> Coefficient {
    Coefficient { name, range, default: None }
}
const LINEAR: [Coefficient; 3] =
    [coef("s_per_memcpy_byte", S_PER_BYTE), coef("s_per_flop", S_PER_FLOP), coef("overhead_s", OVERHEAD)];
fn linear(c: &[f64]) -> StepTimeModel {
    StepTimeModel::Linear { s_per_memcpy_byte: c[0], s_per_flop: c[1], overhead_s: c[2] }
}

/// Every calibrated model (see `python/timescale_frontier/calibrate/fit.py` for how each is fitted).
pub const CALIBRATED_MODELS: [CalibratedModel; 6] = [
    CalibratedModel {
        name: "memcpy",
        description: "t = a MEMCPY + b (Inbar & Sernau 2024)",
        coefficients: &LINEAR,
        terms: &["bytes"],
        one_chip: false,
        build: linear,
    },
    CalibratedModel {
        name: "flops",
        description: "t = c FLOPs + b",
        coefficients: &LINEAR,
        terms: &["flops"],
        one_chip: false,
        build: linear,
    },
    CalibratedModel {
        name: "linear",
        description: "t = a MEMCPY + c FLOPs + b",
        coefficients: &LINEAR,
        terms: &["bytes", "flops"],
        one_chip: false,
        build: linear,
    },
    CalibratedModel {
        name: "split",
        description: "t = a_f MEMCPY_fixed + a_t MEMCPY_token + c FLOPs + a_s SCORES + b",
        coefficients: &[
            coef("s_per_fixed_byte", S_PER_BYTE),
            coef("s_per_token_byte", S_PER_BYTE),
            coef("s_per_flop", S_PER_FLOP),
            Coefficient { name: "s_per_score_byte", range: S_PER_BYTE, default: Some(0.0) },
            coef("overhead_s", OVERHEAD),
        ],
        terms: &["fixed", "token", "flops", "scores"],
        one_chip: true,
        build: |c| StepTimeModel::SplitLinear {
            s_per_fixed_byte: c[0],
            s_per_token_byte: c[1],
            s_per_flop: c[2],
            s_per_score_byte: c[3],
            overhead_s: c[4],
        },
    },
    CalibratedModel {
        name: "rates",
        description: "t = matmul FLOPs / R_mm + attention FLOPs / R_attn + MEMCPY / R_hbm + b",
        coefficients: &[
            coef("s_per_matmul_flop", S_PER_FLOP),
            coef("s_per_attention_flop", S_PER_FLOP),
            coef("s_per_byte", S_PER_BYTE),
            coef("overhead_s", OVERHEAD),
        ],
        terms: &["matmul", "attention", "bytes"],
        one_chip: false,
        build: |c| StepTimeModel::Rates {
            s_per_matmul_flop: c[0],
            s_per_attention_flop: c[1],
            s_per_byte: c[2],
            overhead_s: c[3],
        },
    },
    CalibratedModel {
        name: "roofline",
        description: "t = sum over ops of max(FLOPs / F, bytes / M) + k kernels + b",
        coefficients: &[
            coef("flops_per_s", Range::new(1e6, 1e18, "FLOP/s")),
            coef("memcpy_bytes_per_s", Range::new(1e6, 1e16, "bytes/s")),
            coef("s_per_kernel", Range::new(0.0, 1.0, "seconds per kernel")),
            coef("overhead_s", OVERHEAD),
        ],
        terms: &["roofline", "kernels"],
        one_chip: true,
        build: |c| StepTimeModel::PerOpRoofline {
            flops_per_s: c[0],
            memcpy_bytes_per_s: c[1],
            s_per_kernel: c[2],
            overhead_s: c[3],
        },
    },
];

/// The calibrated model named `name`, built from `coefficient(key)` (`None`: absent) with every
/// coefficient checked against its range; `section` prefixes field names in errors.
pub fn calibrated_model(
    name: &str,
    coefficient: impl Fn(&str) -> Option<f64>,
    section: &str,
) -> Result<(&'static CalibratedModel, StepTimeModel)> {
    let Some(m) = CALIBRATED_MODELS.iter().find(|m| m.name == name) else {
        let names: Vec<_> = CALIBRATED_MODELS.iter().map(|m| m.name).collect();
        return Err(Error::invalid(&format!("{section}.model"), format!("'{name}'"), &format!("one of {}", names.join(", "))));
    };
    let mut values = Vec::with_capacity(m.coefficients.len());
    for c in m.coefficients {
        let field = format!("{section}.{}", c.name);
        let v = match (coefficient(c.name), c.default) {
            (Some(v), _) => c.range.check(&field, v)?,
            (None, Some(d)) => d,
            (None, None) => return Err(Error::invalid(&field, "missing", &c.range.expected())),
        };
        values.push(v);
    }
    let model = m.build(&values);
    model.validate().map_err(|e| match e {
        Error::InvalidValue { field, value, expected } => {
            Error::InvalidValue { field: format!("{section}.{field}"), value, expected }
        }
        other => other,
    })?;
    Ok((m, model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memcpy::step_work;

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
        let t = m.seconds(&a);
        assert!((t - (7.264e-6 + 8.0e-6 + 6.4e-7 + 1e-3)).abs() < 1e-15, "{t}");
        let p = m.parts(&a, &step_work(&a));
        assert!((p.memory_s + p.compute_s + p.fixed_s - t).abs() < 1e-15);
        let flash = crate::architecture::Architecture { attention: crate::architecture::Attention::Flash, ..a };
        assert_eq!(crate::memcpy::attention_score_bytes_per_step(&flash), 0.0);
    }

    #[test]
    fn linear_rates_and_roofline_by_hand() {
        // tiny(): 11,264 bytes; matmul FLOPs 1,152 forward (qkv 256 + out 128 + mlp in 256 + mlp out
        // 256 + logits 256), twice that backward: 3,456; attention 768 (forward 256, backward 512);
        // every FLOP 8,656 (memcpy.rs: forward 2,128 + backward 4,272 + AdamW 2,256).
        let a = crate::architecture::tests::tiny();
        let w = step_work(&a);
        assert_eq!((w.matmul_flops, w.attention_flops, w.flops, w.bytes), (3456.0, 768.0, 8656.0, 11_264.0));
        // Linear: 1e-3 s/byte x 11,264 + 1e-4 s/FLOP x 8,656 + 0.5 s.
        let lin = StepTimeModel::Linear { s_per_memcpy_byte: 1e-3, s_per_flop: 1e-4, overhead_s: 0.5 };
        assert!((lin.seconds(&a) - (11.264 + 0.8656 + 0.5)).abs() < 1e-12);
        // Rates: matmuls at 1e-4 s/FLOP, attention at 1e-3, bytes at 1e-5: 0.3456 + 0.768 + 0.11264.
        let rates =
            StepTimeModel::Rates { s_per_matmul_flop: 1e-4, s_per_attention_flop: 1e-3, s_per_byte: 1e-5, overhead_s: 0.0 };
        assert!((rates.seconds(&a) - (0.3456 + 0.768 + 0.11264)).abs() < 1e-12);
        // Roofline max: max(8,656 / 1e3, 11,264 / 1e4) = 8.656 s.
        let roof = StepTimeModel::RooflineMax { flops_per_s: 1e3, memcpy_bytes_per_s: 1e4, overhead_s: 0.0 };
        assert!((roof.seconds(&a) - 8.656).abs() < 1e-12);
        assert!(lin.is_linear() && rates.is_linear() && !roof.is_linear());
    }

    #[test]
    fn gradient_accumulation_repeats_the_micro_step_and_not_the_update_by_hand() {
        // tiny() at batch 4 in micro-steps of 1: 4 x (forward 2,272 + backward 3,728 bytes) + AdamW
        // 5,264 = 29,264 bytes; 4 x (forward 2,128 + backward 4,272 FLOPs) + AdamW 2,256 = 27,856.
        // Linear at 1e-3 s/byte and 1e-4 s/FLOP with 0.5 s overhead: 29.264 + 2.7856 + 0.5 s.
        let a = crate::architecture::Architecture { batch_size: 4, micro_batch: Some(1), ..crate::architecture::tests::tiny() };
        let w = step_work(&a);
        assert_eq!((w.bytes, w.flops), (29_264.0, 27_856.0));
        let lin = StepTimeModel::Linear { s_per_memcpy_byte: 1e-3, s_per_flop: 1e-4, overhead_s: 0.5 };
        assert!((lin.seconds(&a) - (29.264 + 2.7856 + 0.5)).abs() < 1e-12);
        // The same tokens in one micro-step move the weights once: fewer bytes, same matmul FLOPs.
        let whole = crate::architecture::Architecture { micro_batch: None, ..a };
        assert!(step_work(&whole).bytes < w.bytes && step_work(&whole).matmul_flops == w.matmul_flops);
    }

    #[test]
    fn rejects_bad_coefficients() {
        let bad = StepTimeModel::Linear { s_per_memcpy_byte: -1.0, s_per_flop: 0.0, overhead_s: 0.0 };
        assert!(bad.validate().unwrap_err().to_string().contains("s_per_memcpy_byte"));
        let zero = StepTimeModel::Linear { s_per_memcpy_byte: 0.0, s_per_flop: 0.0, overhead_s: 1.0 };
        assert!(zero.validate().is_err());
        let nan = StepTimeModel::RooflineMax { flops_per_s: f64::NAN, memcpy_bytes_per_s: 1.0, overhead_s: 0.0 };
        assert!(nan.validate().is_err());
    }

    #[test]
    fn registry_checks_ranges_and_defaults() {
        fn get<'a>(pairs: &'a [(&'a str, f64)]) -> impl Fn(&str) -> Option<f64> + 'a {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
        }
        // 1e-300 s/byte would be 1e300 bytes/s: a unit mistake.
        let e = calibrated_model(
            "memcpy",
            get(&[("s_per_memcpy_byte", 1e-300), ("s_per_flop", 0.0), ("overhead_s", 0.0)]),
            "calibration",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "calibration.s_per_memcpy_byte = 1e-300 is invalid: expected 0 or seconds per byte in [1e-16, 0.001]");
        // s_per_score_byte may be left out (0); the others may not.
        let split = [("s_per_fixed_byte", 1e-12), ("s_per_token_byte", 2e-12), ("s_per_flop", 1e-15), ("overhead_s", 1e-3)];
        let (m, model) = calibrated_model("split", get(&split), "calibration").unwrap();
        assert_eq!(m.name, "split");
        assert!(matches!(model, StepTimeModel::SplitLinear { s_per_score_byte, .. } if s_per_score_byte == 0.0));
        let e = calibrated_model("split", get(&split[1..]), "c").unwrap_err().to_string();
        assert!(e.starts_with("c.s_per_fixed_byte = missing"), "{e}");
        let e = calibrated_model(
            "memcpy",
            get(&[("s_per_memcpy_byte", 0.0), ("s_per_flop", 0.0), ("overhead_s", 1.0)]),
            "calibration",
        );
        assert!(e.unwrap_err().to_string().contains("s_per_memcpy_byte or s_per_flop > 0"));
        assert!(calibrated_model("nope", get(&[]), "calibration").unwrap_err().to_string().contains("one of memcpy, flops"));
    }

    #[test]
    fn formulas_show_the_numbers() {
        let m = StepTimeModel::Linear { s_per_memcpy_byte: 3.4115e-13, s_per_flop: 1.2794e-15, overhead_s: 0.0 };
        assert_eq!(m.formula(), "3.412e-13 s/byte x MEMCPY + 1.279e-15 s/FLOP x FLOPs + 0 s");
        let r = StepTimeModel::Rates { s_per_matmul_flop: 1e-14, s_per_attention_flop: 0.0, s_per_byte: 0.0, overhead_s: 0.001 };
        assert_eq!(r.formula(), "matmul FLOPs / 1e+14 FLOP/s + 0 x attention FLOPs + 0 x MEMCPY + 0.001 s");
    }
}
