//! What a calibration accepts before it measures and fits anything: its wall-clock budget, the
//! step-time range its architectures are chosen in, and the step times, throughputs and
//! microbenchmark ceilings a measurement may record (each with its unit), so an absurd record is
//! refused with its range instead of wrecking a fit. The fits themselves run in the Python
//! calibration package; the models they fit are the core's ([`crate::step_time`]).

use crate::error::{number, Error, Range, Result};
use crate::hardware::{HBM_BYTES_PER_S, PEAK_FLOPS};

/// Step times a measurement may record: a microsecond to a day. Unit: seconds.
pub const MEASURED_STEP_S: Range = Range::new(1e-6, 86_400.0, "seconds");
/// Throughputs a measurement may record. Unit: tokens per second per chip.
pub const MEASURED_TOKENS_PER_S: Range = Range::new(1e-3, 1e12, "tokens/s per chip");

/// Wall-clock budgets a calibration accepts: a second to a day, compilation included. Unit: seconds.
pub const CALIBRATION_BUDGET_S: Range = Range::new(1.0, 86_400.0, "seconds");

/// Checks what a calibration is asked for before it plans anything: its wall-clock budget
/// ([`CALIBRATION_BUDGET_S`]) and the range of predicted step times its architectures are chosen
/// in, MIN:MAX, each a step time a measurement may record ([`MEASURED_STEP_S`]), MIN < MAX.
pub fn check_calibration_request(time_budget_s: f64, step_range_s: (f64, f64)) -> Result<()> {
    CALIBRATION_BUDGET_S.check("time_budget_s", time_budget_s)?;
    let (lo, hi) = step_range_s;
    let range = || format!("{}:{}", number(lo), number(hi));
    if !(MEASURED_STEP_S.contains(lo) && MEASURED_STEP_S.contains(hi) && lo < hi) {
        return Err(Error::invalid("step_range_s", range(), &format!("MIN < MAX, each {}", MEASURED_STEP_S.expected())));
    }
    Ok(())
}

/// The step time of a measured training step: `step_time_s` as recorded, or from the recorded
/// throughput, `tokens_per_step / (tokens_per_s_per_chip x chips)`. Each given figure must be a
/// finite number > 0, and one of them must be given. Unit: seconds.
pub fn measured_step_time_s(
    step_time_s: Option<f64>,
    tokens_per_s_per_chip: Option<f64>,
    tokens_per_step: f64,
    chips: u32,
) -> Result<f64> {
    let t = match (step_time_s, tokens_per_s_per_chip) {
        (Some(t), _) => t,
        (None, Some(r)) => {
            MEASURED_TOKENS_PER_S.check("tokens_per_s_per_chip", r)?;
            tokens_per_step / (r * f64::from(chips.max(1)))
        }
        (None, None) => return Err(Error::invalid("step_time_s", "missing", "step_time_s or tokens_per_s_per_chip")),
    };
    MEASURED_STEP_S.check("step_time_s", t)?;
    Ok(t)
}

/// Checks a measured microbenchmark ceiling (`kind` "matmul": FLOP/s, "copy": bytes/s) against
/// the ranges a chip's datasheet figures may have ([`PEAK_FLOPS`], [`HBM_BYTES_PER_S`], from
/// [`crate::hardware`]): the calibration fits are scaled by them, so an absurd one would wreck
/// the fit.
pub fn check_measured_rate(kind: &str, value: f64) -> Result<()> {
    match kind {
        "matmul" => PEAK_FLOPS.check("matmul flops_per_s", value).map(drop),
        "copy" => HBM_BYTES_PER_S.check("copy bytes_per_s", value).map(drop),
        _ => Err(Error::invalid("kind", kind, "matmul or copy")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_requests_are_checked_before_planning() {
        assert!(check_calibration_request(240.0, (0.1, 0.8)).is_ok());
        let e = |b: f64, r: (f64, f64)| check_calibration_request(b, r).unwrap_err().to_string();
        assert_eq!(e(f64::NAN, (0.1, 0.8)), "time_budget_s = nan is invalid: expected seconds in [1, 86400]");
        assert_eq!(e(0.5, (0.1, 0.8)), "time_budget_s = 0.5 is invalid: expected seconds in [1, 86400]");
        for (r, shown) in [((2.0, 1.0), "2:1"), ((0.0, 0.0), "0:0"), ((f64::NAN, 1.0), "nan:1"), ((0.1, 1e6), "0.1:1000000")] {
            assert_eq!(
                e(100.0, r),
                format!("step_range_s = {shown} is invalid: expected MIN < MAX, each seconds in [1e-06, 86400]")
            );
        }
    }

    #[test]
    fn measured_step_times_by_hand() {
        // 4096 sequences of 2048 tokens at 1007.1 tokens/s per chip on 512 chips: 16.27 s.
        let t = measured_step_time_s(None, Some(1007.1), 4096.0 * 2048.0, 512).unwrap();
        assert!((t - 16.2685).abs() < 1e-3, "{t}");
        assert_eq!(measured_step_time_s(Some(2.5), Some(1.0), 1.0, 1).unwrap(), 2.5);
        assert!(measured_step_time_s(Some(0.0), None, 1.0, 1).unwrap_err().to_string().starts_with("step_time_s = 0 is invalid"));
        assert!(measured_step_time_s(None, Some(-1.0), 1.0, 1)
            .unwrap_err()
            .to_string()
            .starts_with("tokens_per_s_per_chip = -1"));
        assert!(measured_step_time_s(None, None, 1.0, 1).is_err());
        // Absurd records are refused with the range, not fitted (1e308 s, infinity, a day and more).
        for t in [1e308, f64::INFINITY, 1e6, 1e-9] {
            let e = measured_step_time_s(Some(t), None, 1.0, 1).unwrap_err().to_string();
            assert!(e.contains("expected seconds in [1e-06, 86400]"), "{e}");
        }
    }
}
