//! ln x and e^y without a libm call, to a relative error of about 1e-14: the search kernel's first
//! pass prices the loss with them ([`crate::loss::Law::data_term_ln_approx`],
//! [`crate::batch::BatchTerm::ln_efficiency_at_approx`]) and computes the exact term only where a
//! decision is that close.

/// ln x for a normal x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s),
/// s = (m - 1) / (m + 1), |s| <= 0.1716, by its series to s^15 (truncation below 2e-14).
#[inline(always)]
pub(crate) fn ln_approx(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    // 1 + z/3 + z^2/5 + ... + z^7/15 by Estrin's scheme (short dependency chains).
    let z2 = z * z;
    let z4 = z2 * z2;
    let lo = (1.0 + z * (1.0 / 3.0)) + z2 * (1.0 / 5.0 + z * (1.0 / 7.0));
    let hi = (1.0 / 9.0 + z * (1.0 / 11.0)) + z2 * (1.0 / 13.0 + z * (1.0 / 15.0));
    e as f64 * std::f64::consts::LN_2 + 2.0 * s * (lo + z4 * hi)
}

/// e^y for y in [-700, 700]: y = k ln 2 + r (Cody and Waite's two-part ln 2, fdlibm's constants),
/// |r| <= ln 2 / 2, e^r by its Taylor series to r^11 (truncation below 1e-14), times 2^k.
#[inline(always)]
pub(crate) fn exp_approx(y: f64) -> f64 {
    // fdlibm's ln2_hi (its low 32 bits zero, so k x LN2_HI is exact) and ln2_lo.
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    // Round to nearest without a libm call: adding and subtracting 1.5 x 2^52.
    const ROUND: f64 = 6_755_399_441_055_744.0;
    let k = (y * std::f64::consts::LOG2_E + ROUND) - ROUND;
    let r = (y - k * LN2_HI) - k * LN2_LO;
    // 1 / n! for n = 0..=11; the series by Estrin's scheme (short dependency chains).
    const C: [f64; 12] = {
        let mut c = [1.0; 12];
        let mut n = 1;
        while n < 12 {
            c[n] = c[n - 1] / n as f64;
            n += 1;
        }
        c
    };
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let q0 = (C[0] + C[1] * r) + r2 * (C[2] + C[3] * r);
    let q1 = (C[4] + C[5] * r) + r2 * (C[6] + C[7] * r);
    let q2 = (C[8] + C[9] * r) + r2 * (C[10] + C[11] * r);
    let p = (q0 + r4 * q1) + r8 * q2;
    p * f64::from_bits(((k as i64 + 1023) as u64) << 52)
}
