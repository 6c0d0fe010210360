//! What a training run may spend: wall-clock hours, money, or both (the smaller budget wins), and
//! the chip counts to consider. With a money budget N chips get 1/N of the hours, so the chip
//! count is part of the answer: every count is evaluated and [`best_count`] picks one.

use crate::error::{Error, Range, Result};
use crate::hardware::{Hardware, USD_PER_CHIP_HOUR};

pub const SECONDS_PER_HOUR: f64 = 3600.0;
/// Longest budget accepted (about 317 years): keeps step counts far inside f64's exact integers.
pub const MAX_BUDGET_S: f64 = 1e10;
/// `--chips auto` considers powers of two up to the network's `max_chips`, at most this many
/// (13 counts; the many-chip search kernel prices each in about the time of one chip).
pub const AUTO_MAX_CHIPS: u32 = 4096;

const USD: Range = Range::new(1e-6, 1e12, "USD");

/// A budget as the user states it. At least one of `hours` and `usd` must be given.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Budget {
    /// Wall-clock hours of training.
    pub hours: Option<f64>,
    /// Money for the whole run (USD), all chips together.
    pub usd: Option<f64>,
    /// Price override (USD per chip-hour); default: the hardware file's `[price]`.
    pub usd_per_chip_hour: Option<f64>,
}

/// Which part of a [`Budget`] limits the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Hours,
    Money,
}

impl Limit {
    pub fn name(self) -> &'static str {
        match self {
            Limit::Hours => "hours",
            Limit::Money => "money",
        }
    }
}

/// A budget resolved for a chip count: the wall-clock seconds it allows and why.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResolvedBudget {
    pub chips: u32,
    /// Wall-clock training time. Unit: seconds.
    pub seconds: f64,
    pub limit: Limit,
    /// The stated hours, if any.
    pub hours: Option<f64>,
    /// The money budget (USD), if any, and the price and hours it buys on `chips` chips.
    pub usd: Option<f64>,
    pub usd_per_chip_hour: Option<f64>,
    pub money_hours: Option<f64>,
}

impl ResolvedBudget {
    pub fn hours(&self) -> f64 {
        self.seconds / SECONDS_PER_HOUR
    }
}

/// Wall-clock seconds a money budget buys on `chips` chips at `usd_per_chip_hour` each:
/// usd / (usd_per_chip_hour x chips) hours. Unit: seconds.
#[inline]
pub fn seconds_from_usd(usd: f64, usd_per_chip_hour: f64, chips: f64) -> f64 {
    SECONDS_PER_HOUR * usd / (usd_per_chip_hour * chips)
}

impl Budget {
    /// A wall-clock budget of `hours`.
    pub fn hours(hours: f64) -> Budget {
        Budget { hours: Some(hours), ..Budget::default() }
    }

    pub fn validate(&self) -> Result<()> {
        if self.hours.is_none() && self.usd.is_none() {
            return Err(Error::invalid("budget", "none", "hours, budget_usd or both"));
        }
        if let Some(h) = self.hours {
            if !(h.is_finite() && h > 0.0 && h * SECONDS_PER_HOUR <= MAX_BUDGET_S) {
                let max = crate::error::bound(MAX_BUDGET_S / SECONDS_PER_HOUR);
                return Err(Error::invalid_number("hours", h, &format!("a finite number of hours > 0 and at most {max}")));
            }
        }
        if let Some(u) = self.usd {
            USD.check("budget_usd", u)?;
        }
        if let Some(p) = self.usd_per_chip_hour {
            USD_PER_CHIP_HOUR.check("usd_per_chip_hour", p)?;
            if self.usd.is_none() {
                // A price only converts a money budget to hours: without one it would do nothing.
                return Err(Error::invalid_number(
                    "usd_per_chip_hour",
                    p,
                    "a price only with budget_usd (it converts the money to hours; with hours alone it does nothing)",
                ));
            }
        }
        Ok(())
    }

    /// The seconds this budget allows on `chips` chips of `hw`: the stated hours, or what the
    /// money buys at the price (`usd_per_chip_hour`, else the hardware file's), whichever is less.
    pub fn resolve(&self, hw: &Hardware, chips: u32) -> Result<ResolvedBudget> {
        self.validate()?;
        let mut out = ResolvedBudget {
            chips,
            seconds: f64::INFINITY,
            limit: Limit::Hours,
            hours: self.hours,
            usd: self.usd,
            usd_per_chip_hour: None,
            money_hours: None,
        };
        if let Some(h) = self.hours {
            out.seconds = h * SECONDS_PER_HOUR;
        }
        if let Some(usd) = self.usd {
            let Some(price) = self.usd_per_chip_hour.or(hw.usd_per_chip_hour) else {
                return Err(Error::invalid(
                    "price.usd_per_chip_hour",
                    "missing",
                    "a price in the hardware file's [price] section, or usd_per_chip_hour, for a money budget",
                ));
            };
            let s = seconds_from_usd(usd, price, f64::from(chips));
            if s > MAX_BUDGET_S {
                return Err(Error::invalid_number(
                    "budget_usd",
                    usd,
                    &format!(
                        "a budget that buys at most {MAX_BUDGET_S:e} s on {} at {price} USD per chip-hour",
                        crate::error::chips(chips)
                    ),
                ));
            }
            out.usd_per_chip_hour = Some(price);
            out.money_hours = Some(s / SECONDS_PER_HOUR);
            if s < out.seconds {
                out.seconds = s;
                out.limit = Limit::Money;
            }
        }
        Ok(out)
    }
}

/// The chip counts a request considers (default: one chip).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Chips {
    #[default]
    One,
    Count(u32),
    List(Vec<u32>),
    /// Powers of two up to the network's `max_chips`, at most [`AUTO_MAX_CHIPS`].
    Auto,
}

impl Chips {
    /// The counts, ascending and distinct, each one this hardware can train on.
    pub fn resolve(&self, hw: &Hardware) -> Result<Vec<u32>> {
        let mut counts = match self {
            Chips::One => vec![1],
            Chips::Count(c) => vec![*c],
            Chips::List(v) => v.clone(),
            Chips::Auto => {
                let top = hw.max_chips().min(AUTO_MAX_CHIPS);
                (0..31).map(|k| 1u32 << k).take_while(|&c| c <= top).collect()
            }
        };
        counts.sort_unstable();
        counts.dedup();
        if counts.is_empty() {
            return Err(Error::invalid("chips", "an empty list", "a chip count, a list of counts, or auto"));
        }
        for &c in &counts {
            hw.check_chips(c)?;
        }
        Ok(counts)
    }
}

/// Of (chips, loss) pairs, the position of the lowest loss (ties: fewer chips); `None` when no
/// loss is finite.
pub fn best_count(options: &[(u32, f64)]) -> Option<usize> {
    options
        .iter()
        .enumerate()
        .filter(|(_, (_, loss))| loss.is_finite())
        .min_by(|(_, a), (_, b)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::tests::chip;
    use crate::hardware::{Network, Topology};
    use crate::step_time::StepTimeModel;

    fn priced(price: Option<f64>) -> Hardware {
        let model = StepTimeModel::Linear { s_per_memcpy_byte: 1e-12, s_per_flop: 0.0, overhead_s: 0.0 };
        let net = Network {
            link_bytes_per_s: 9e11,
            links_per_chip: 1.0,
            topology: Topology::NvlinkSwitch,
            max_chips: 8,
            chips_per_node: None,
            inter_node_bytes_per_s: None,
            chips_per_pod: None,
            inter_pod_bytes_per_s: None,
        };
        Hardware { usd_per_chip_hour: price, network: Some(net), ..chip(80e9, model) }
    }

    #[test]
    fn money_buys_hours_by_hand() {
        // $5,000 at $3.22 per chip-hour on one chip: 1552.795 h = 5,590,062.1 s; $100 on 4 chips
        // at $2: 12.5 h.
        assert!((seconds_from_usd(5000.0, 3.22, 1.0) - 5_590_062.1).abs() < 0.1);
        assert_eq!(seconds_from_usd(100.0, 2.0, 4.0), 45_000.0);
        let hw = priced(Some(3.22));
        let b = Budget { usd: Some(5000.0), ..Budget::default() }.resolve(&hw, 1).unwrap();
        assert_eq!(b.limit, Limit::Money);
        assert!((b.hours() - 1552.795).abs() < 1e-3);
    }

    #[test]
    fn the_smaller_budget_wins() {
        let hw = priced(Some(2.0));
        // 12 h, or $100 at $2 on 4 chips = 12.5 h: the hours bind. On 8 chips the money buys 6.25 h.
        let b = Budget { hours: Some(12.0), usd: Some(100.0), usd_per_chip_hour: None };
        assert_eq!(b.resolve(&hw, 4).unwrap().limit, Limit::Hours);
        let eight = b.resolve(&hw, 8).unwrap();
        assert_eq!((eight.limit, eight.seconds), (Limit::Money, 6.25 * 3600.0));
        // The override beats the file's price.
        let o = Budget { usd_per_chip_hour: Some(10.0), usd: Some(50.0), hours: None }.resolve(&hw, 1).unwrap();
        // A price without a money budget would be silently ignored: refused.
        let e = Budget { usd_per_chip_hour: Some(10.0), usd: None, hours: Some(1.0) }.validate().unwrap_err().to_string();
        assert!(e.starts_with("usd_per_chip_hour = 10 is invalid: expected a price only with budget_usd"), "{e}");
        assert_eq!(o.seconds, 5.0 * 3600.0);
    }

    #[test]
    fn bad_budgets_are_named() {
        let hw = priced(None);
        let e = Budget::default().resolve(&hw, 1).unwrap_err().to_string();
        assert_eq!(e, "budget = none is invalid: expected hours, budget_usd or both");
        let e = Budget { usd: Some(100.0), ..Budget::default() }.resolve(&hw, 1).unwrap_err().to_string();
        assert!(e.starts_with("price.usd_per_chip_hour = missing"), "{e}");
        assert!(Budget::hours(f64::NAN).validate().unwrap_err().to_string().starts_with("hours = nan"));
        assert!(Budget::hours(-1.0).validate().is_err());
        assert!(Budget::hours(3e6).validate().unwrap_err().to_string().ends_with("hours > 0 and at most 2.77778e+06"));
        // A tiny budget is valid (the search then says no step fits).
        assert!(Budget::hours(1e-12).validate().is_ok());
    }

    #[test]
    fn chip_counts_resolve_against_the_network() {
        let hw = priced(Some(2.0));
        assert_eq!(Chips::Auto.resolve(&hw).unwrap(), vec![1, 2, 4, 8]);
        assert_eq!(Chips::List(vec![8, 2, 2]).resolve(&hw).unwrap(), vec![2, 8]);
        assert!(Chips::Count(16).resolve(&hw).unwrap_err().to_string().contains("max_chips = 8"));
        assert!(Chips::List(vec![]).resolve(&hw).is_err());
        assert_eq!(best_count(&[(1, 3.0), (2, 2.5), (4, 2.5), (8, f64::INFINITY)]), Some(1));
        assert_eq!(best_count(&[(1, f64::INFINITY)]), None);
    }
}
