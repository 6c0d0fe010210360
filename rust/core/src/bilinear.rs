//! Bilinear forms in depth and batch: within one shape (every axis of a configuration fixed but
//! `n_layers` L and `batch_size` B) every metric of the cost model is `x(L, B) = c00 + c10 L +
//! c01 B + c11 L B`: per-layer terms scale with L, activation terms with B (or with the
//! micro-steps, B / micro_batch), parameters with neither. The search kernels fit the four
//! coefficients of each metric from four evaluations of the core's own formulas and then price
//! every (L, B) of the shape with two multiply-adds.

/// x(L, B) = c00 + c10 L + c01 B + c11 L B.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bilinear {
    pub c00: f64,
    pub c10: f64,
    pub c01: f64,
    pub c11: f64,
}

impl Bilinear {
    /// The coefficients from x at depths 1 and 2 and batches `b` and `2 b`: `[x(1, b), x(2, b),
    /// x(1, 2b), x(2, 2b)]`. Exact (to rounding) when x is bilinear.
    pub fn from_samples(b: u32, [f11, f21, f12, f22]: [f64; 4]) -> Self {
        let (b1, b2) = (f64::from(b), 2.0 * f64::from(b));
        // Slope in depth at each batch: c10 + c11 B; at depth 1: c00 + c10 + (c01 + c11) B.
        let c11 = ((f22 - f12) - (f21 - f11)) / (b2 - b1);
        let c10 = (f21 - f11) - c11 * b1;
        let c01 = (f12 - f11) / (b2 - b1) - c11;
        Bilinear { c00: f11 - c10 - (c01 + c11) * b1, c10, c01, c11 }
    }

    /// [`Bilinear::from_samples`] of `f(L, B)` (`b` such that every sample is a valid configuration).
    pub fn fit(b: u32, f: impl Fn(u32, u32) -> f64) -> Self {
        Self::from_samples(b, [f(1, b), f(2, b), f(1, 2 * b), f(2, 2 * b)])
    }

    /// (intercept, slope) in B at depth `l`.
    #[inline]
    pub fn at_depth(&self, l: f64) -> (f64, f64) {
        (self.c00 + self.c10 * l, self.c01 + self.c11 * l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_bilinear_form_by_hand() {
        // x = 3 + 5 L + 7 B + 11 L B, sampled at L in {1, 2}, B in {4, 8}.
        let f = |l: u32, b: u32| 3.0 + 5.0 * f64::from(l) + 7.0 * f64::from(b) + 11.0 * f64::from(l * b);
        let x = Bilinear::fit(4, f);
        assert_eq!(x, Bilinear { c00: 3.0, c10: 5.0, c01: 7.0, c11: 11.0 });
        // At depth 10: 3 + 50 = 53 and 7 + 110 = 117 per unit of batch.
        assert_eq!(x.at_depth(10.0), (53.0, 117.0));
    }
}
