//! The one error type of the core. Every failure a user can cause maps to one variant; the Python
//! bindings convert each variant to one exception class (`TimescaleError` subclasses).

use std::fmt;

/// Everything that can go wrong in the core.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A value outside its accepted range: `field` is the user-facing name (e.g. `d_model`,
    /// `hbm_bytes_per_s`), `expected` says what is accepted.
    InvalidValue { field: String, value: String, expected: String },
    /// A search space with an axis that has no values, so no configuration can be enumerated.
    EmptySpace { axis: String },
    /// A search space larger than the core agrees to enumerate.
    SpaceTooLarge { size: f64, limit: u64 },
    /// The search ran but no configuration passed every feasibility check; `reason` explains which
    /// check removed the most configurations, with figures.
    NoFeasibleConfig { reason: String },
    /// The caller asked the search to stop (Ctrl-C).
    Interrupted,
}

impl Error {
    /// Shorthand for [`Error::InvalidValue`].
    pub fn invalid(field: &str, value: impl fmt::Display, expected: &str) -> Self {
        Error::InvalidValue { field: field.to_owned(), value: value.to_string(), expected: expected.to_owned() }
    }

    /// [`Error::invalid`] for a number, written as a user would type it ([`number`]).
    pub fn invalid_number(field: &str, value: f64, expected: &str) -> Self {
        Error::invalid(field, number(value), expected)
    }
}

/// An integer as given (from Python, a file, the command line) as `T`, when it is in [`lo`, `hi`];
/// else an error naming `field` and the range. Bindings take every count as a wide integer and
/// convert here, so a negative or huge number is a range error, not a conversion failure.
pub fn integer_in<T: TryFrom<i128>>(field: &str, v: i128, lo: i128, hi: i128) -> Result<T> {
    match T::try_from(v) {
        Ok(x) if (lo..=hi).contains(&v) => Ok(x),
        _ => Err(Error::invalid(field, v, &format!("an integer in [{lo}, {hi}]"))),
    }
}

/// `v` if it is a finite number > 0 (a count of parameters, tokens or FLOPs, a width, a depth),
/// else an error naming `field`: what the law's public functions take.
pub fn positive(field: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(Error::invalid_number(field, v, "a finite number > 0"))
    }
}

/// `v` if it is a finite number >= 0 (a relative error), else an error naming `field`.
pub fn non_negative(field: &str, v: f64) -> Result<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(Error::invalid_number(field, v, "a finite number >= 0"))
    }
}

/// `n` chips in words: "1 chip", "8 chips".
pub fn chips(n: u32) -> String {
    if n == 1 {
        "1 chip".to_owned()
    } else {
        format!("{n} chips")
    }
}

/// A number as a user would type it: whole numbers without a fraction (`34359738368`),
/// others in their shortest form (`0.875`, `1e-300`), `nan`, `inf`, `-inf`.
pub fn number(x: f64) -> String {
    if x.is_nan() {
        "nan".to_owned()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.0}")
    } else if (1e-4..1e16).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// An integer count with thousands separators (`13,906,768`).
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `bytes` if a file of that many bytes may be read as `what` (at most `max`), else an error
/// naming the field `what` with both sizes: files are refused by their size before they are read
/// whole, so a huge (or sparse) file costs no memory.
pub fn bytes_at_most(what: &str, bytes: u64, max: u64) -> Result<u64> {
    if bytes <= max {
        return Ok(bytes);
    }
    let binary = if max >= 1 << 20 { format!("{} MiB", max >> 20) } else { format!("{} KiB", max >> 10) };
    Err(Error::invalid(what, format!("{} bytes", count(bytes)), &format!("at most {} bytes ({binary})", count(max))))
}

/// `x` and `limit` with as many significant digits (3 at least, 9 at most) as it takes for them
/// to read differently, so a message never says a figure "exceeds" an equal-looking limit.
pub fn distinct(x: f64, limit: f64) -> (String, String) {
    for digits in 3..=9 {
        let (a, b) = (significant(x, digits), significant(limit, digits));
        if a != b || digits == 9 {
            return (a, b);
        }
    }
    unreachable!()
}

/// A bound as Python's `%g` writes it (6 significant digits, exponent below 1e-4 and from 1e6:
/// `1e+09`, `0.001`, `3600`), so range messages read the same in every layer.
pub fn bound(x: f64) -> String {
    significant(x, 6)
}

/// A count (parameters, tokens) to 3 significant digits with a suffix: `5e9` -> `5 B`, `2.5e7` ->
/// `25 M`, `1.6e10` -> `16 B` (k, M, B, T; as the command line writes counts).
pub fn magnitude(x: f64) -> String {
    if !x.is_finite() {
        return number(x);
    }
    for (factor, suffix) in [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")] {
        if x.abs() >= factor {
            return format!("{} {suffix}", significant(x / factor, 3));
        }
    }
    significant(x, 3)
}

/// `x` to `digits` significant digits as Python's `%.{digits}g` writes it (trailing zeros dropped).
pub fn significant(x: f64, digits: usize) -> String {
    if x == 0.0 || !x.is_finite() {
        return number(x);
    }
    let digits = digits.max(1);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    // The exponent after rounding to `digits` (9.9999995 rounds up to 10).
    let rounded = format!("{x:.prec$e}", prec = digits - 1);
    let (mantissa, e) = rounded.split_once('e').unwrap_or((&rounded, "0"));
    let exp: i32 = e.parse().unwrap_or(0);
    if exp < -4 || exp >= i32::try_from(digits).unwrap_or(i32::MAX) {
        format!("{}e{}{:02}", trim(mantissa), if exp < 0 { '-' } else { '+' }, exp.abs())
    } else {
        let decimals = usize::try_from(i32::try_from(digits).unwrap_or(0) - 1 - exp).unwrap_or(0);
        trim(&format!("{x:.decimals$}"))
    }
}

/// An accepted interval of one figure, with its unit: `[lo, hi]`, and 0 too when `zero_ok`
/// (a coefficient that is absent from the model). The one place a range check is written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub lo: f64,
    pub hi: f64,
    pub unit: &'static str,
    pub zero_ok: bool,
}

impl Range {
    pub const fn new(lo: f64, hi: f64, unit: &'static str) -> Self {
        Range { lo, hi, unit, zero_ok: false }
    }
    /// The same interval, 0 also accepted.
    pub const fn or_zero(self) -> Self {
        Range { zero_ok: true, ..self }
    }
    /// What is accepted, in words: `bytes/s in [1e+09, 1e+14]`.
    pub fn expected(&self) -> String {
        format!("{}{} in [{}, {}]", if self.zero_ok { "0 or " } else { "" }, self.unit, bound(self.lo), bound(self.hi))
    }
    pub fn contains(&self, v: f64) -> bool {
        v.is_finite() && ((self.lo..=self.hi).contains(&v) || (self.zero_ok && v == 0.0))
    }
    /// `v` if it is accepted, else an error naming `field`, the value and this range.
    pub fn check(&self, field: &str, v: f64) -> Result<f64> {
        if self.contains(v) {
            Ok(v)
        } else {
            Err(Error::invalid_number(field, v, &self.expected()))
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidValue { field, value, expected } => {
                write!(f, "{field} = {value} is invalid: expected {expected}")
            }
            Error::EmptySpace { axis } => write!(f, "search space axis '{axis}' has no values"),
            Error::SpaceTooLarge { size, limit } => {
                write!(f, "search space has {size:.3e} configurations; the limit is {limit:.3e} (narrow an axis)")
            }
            Error::NoFeasibleConfig { reason } => write!(f, "no feasible configuration: {reason}"),
            Error::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias of the core.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_as_given_are_range_checked_before_narrowing() {
        assert_eq!(integer_in::<u32>("chips", 8, 1, 16), Ok(8));
        for (v, shown) in [(-1_i128, "-1"), (0, "0"), (17, "17"), (i128::from(i64::MIN), "-9223372036854775808")] {
            let e = integer_in::<u32>("chips", v, 1, 16).unwrap_err().to_string();
            assert_eq!(e, format!("chips = {shown} is invalid: expected an integer in [1, 16]"));
        }
        // A value in range that the type cannot hold is refused too (never wrapped).
        assert!(integer_in::<u8>("x", 300, 0, 1000).is_err());
    }

    #[test]
    fn counts_and_distinct_figures_by_hand() {
        assert_eq!(count(13_906_768), "13,906,768");
        assert_eq!((count(999), count(1000), count(0)), ("999".to_owned(), "1,000".to_owned(), "0".to_owned()));
        // 28.8047 GiB against a 28.8 GiB limit: 3 and 4 digits read alike (28.80 is written 28.8).
        assert_eq!(distinct(28.8047, 28.8), ("28.805".to_owned(), "28.8".to_owned()));
        assert_eq!(distinct(505.9, 28.8), ("506".to_owned(), "28.8".to_owned()));
    }

    #[test]
    fn numbers_and_bounds_as_written() {
        assert_eq!(number(-34_359_738_368.0), "-34359738368");
        assert_eq!(
            (number(f64::NAN), number(f64::INFINITY), number(0.875), number(1e-300)),
            ("nan".into(), "inf".into(), "0.875".into(), "1e-300".into())
        );
        assert_eq!(number(1e17), "1e17");
        for (x, g) in [
            (1e9, "1e+09"),
            (1e14, "1e+14"),
            (0.001, "0.001"),
            (3600.0, "3600"),
            (1e-16, "1e-16"),
            (1_048_576.0, "1.04858e+06"),
            (0.01, "0.01"),
            (2.5e-5, "2.5e-05"),
            (123_456.0, "123456"),
        ] {
            assert_eq!(bound(x), g, "{x}");
        }
        assert_eq!(
            (significant(2.9312e-13, 4), significant(0.99996, 4), significant(12345.0, 4)),
            ("2.931e-13".into(), "1".into(), "1.234e+04".into())
        );
        let r = Range::new(1e9, 1e14, "bytes/s");
        assert_eq!(r.check("chip.hbm_bytes_per_s", 1e9), Ok(1e9));
        let e = r.check("chip.hbm_bytes_per_s", f64::NAN).unwrap_err().to_string();
        assert_eq!(e, "chip.hbm_bytes_per_s = nan is invalid: expected bytes/s in [1e+09, 1e+14]");
        assert!(r.or_zero().contains(0.0) && !r.contains(0.0));
    }
}
