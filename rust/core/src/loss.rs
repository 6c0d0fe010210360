//! Predicted final loss from parameters and training tokens: L(N, D) = E + A / N^alpha + B / D^beta
//! (nats per token), plus Kaplan et al. 2020's critical batch size.

use crate::error::{Error, Result};

/// Which parameter count a law's N means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamConvention {
    /// All parameters, embeddings included (Hoffmann et al. 2022, Besiroglu et al. 2024).
    Total,
    /// Parameters excluding the embedding and unembedding matrices (Kaplan et al. 2020).
    NonEmbedding,
}

impl ParamConvention {
    pub fn name(self) -> &'static str {
        match self {
            ParamConvention::Total => "total",
            ParamConvention::NonEmbedding => "non_embedding",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "total" => Ok(ParamConvention::Total),
            "non_embedding" => Ok(ParamConvention::NonEmbedding),
            _ => Err(Error::invalid("params", format!("'{s}'"), "'total' or 'non_embedding'")),
        }
    }
}

/// A Chinchilla-form scaling law, optionally with a shape term.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Law {
    pub e: f64,
    pub a: f64,
    pub b: f64,
    pub alpha: f64,
    pub beta: f64,
    pub params: ParamConvention,
    /// How the loss depends on shape at a fixed size and token count (`None`: it does not, the
    /// Chinchilla form's assumption). Fitted from runs by [`crate::law_fit::fit_shape`].
    pub shape: Option<ShapeTerm>,
}

/// The loss's dependence on shape, S(r) = c (ln(r / r_opt))^2 nats/token with r = d_model /
/// n_layers: zero at the best aspect ratio r_opt, growing with the log-distance from it. The form
/// is the least that has an optimum (a parabola in ln r), as Kaplan et al. 2020 (Fig. 5) see the
/// loss rise on both sides of a broad optimum in d_model / n_layers at a fixed parameter count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapeTerm {
    /// Curvature, nats/token per (ln aspect)^2; >= 0.
    pub c: f64,
    /// The aspect ratio d_model / n_layers of the lowest loss; > 0.
    pub aspect_opt: f64,
    /// The smallest and largest aspect ratios of the runs the term was fitted on: the shapes the
    /// law has evidence for (its aspect-ratio domain and the search's default guard).
    pub measured: (f64, f64),
}

/// Kaplan et al. 2020 (Fig. 5): loss depends on shape by only a few percent for d_model / n_layers
/// of roughly 20 to 200. The aspect-ratio domain of a law without a shape term (its default guard).
pub const KAPLAN_ASPECT_RANGE: (f64, f64) = (20.0, 200.0);

impl ShapeTerm {
    /// S at `d_model` / `n_layers` (nats/token).
    #[inline]
    pub fn at(&self, d_model: f64, n_layers: f64) -> f64 {
        let x = (d_model / (n_layers * self.aspect_opt)).ln();
        self.c * x * x
    }

    /// Finite, c >= 0, r_opt > 0.
    pub fn validate(&self) -> Result<()> {
        if !(self.c.is_finite() && self.c >= 0.0) {
            return Err(Error::invalid("shape.c", self.c, "a finite number >= 0 (nats/token per (ln aspect)^2)"));
        }
        if !(self.aspect_opt.is_finite() && self.aspect_opt > 0.0) {
            return Err(Error::invalid("shape.aspect_opt", self.aspect_opt, "a finite d_model / n_layers > 0"));
        }
        let (lo, hi) = self.measured;
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
            return Err(Error::invalid(
                "shape.aspect_range",
                format!("[{}, {}]", crate::error::number(lo), crate::error::number(hi)),
                "[lo, hi] with 0 < lo <= hi, finite",
            ));
        }
        Ok(())
    }
}

/// Range of the data a law was fitted on; predictions outside it are extrapolations and flagged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitRange {
    /// Parameters (count), inclusive.
    pub params: (f64, f64),
    /// Training tokens, inclusive.
    pub tokens: (f64, f64),
}

impl FitRange {
    /// Each range is (lo, hi) with 0 <= lo <= hi (hi may be +inf: unknown).
    pub fn validate(&self) -> Result<()> {
        for (field, (lo, hi)) in [("fit_params", self.params), ("fit_tokens", self.tokens)] {
            if lo.is_nan() || hi.is_nan() || lo < 0.0 || lo > hi || lo.is_infinite() {
                return Err(Error::invalid(field, format!("({lo}, {hi})"), "(lo, hi) with 0 <= lo <= hi"));
            }
        }
        Ok(())
    }
}

/// Hoffmann et al. 2022 (abstract and Sec. 3): over 400 models "ranging from 70 million to over
/// 16 billion parameters" trained "on 5 to 500 billion tokens". Besiroglu et al. 2024 refit the
/// same data, so the same range applies to both built-in laws.
pub const CHINCHILLA_FIT_RANGE: FitRange = FitRange { params: (7e7, 1.6e10), tokens: (5e9, 5e11) };

/// Hoffmann et al. 2022 (Chinchilla), App. D.2 eq. 10, as printed.
pub const HOFFMANN: Law =
    Law { e: 1.69, a: 406.4, b: 410.7, alpha: 0.34, beta: 0.28, params: ParamConvention::Total, shape: None };

/// Besiroglu et al. 2024 (Epoch AI's replication of Chinchilla's approach 3), same data.
pub const BESIROGLU: Law =
    Law { e: 1.8172, a: 482.01, b: 2085.43, alpha: 0.3478, beta: 0.3658, params: ParamConvention::Total, shape: None };

/// Every built-in law with its name, in the order shown to users.
pub const LAWS: [(&str, Law); 2] = [("hoffmann", HOFFMANN), ("besiroglu", BESIROGLU)];

impl Law {
    /// A built-in law by name.
    pub fn by_name(name: &str) -> Result<Law> {
        LAWS.iter().find(|(n, _)| *n == name).map(|&(_, law)| law).ok_or_else(|| {
            let names: Vec<_> = LAWS.iter().map(|(n, _)| format!("'{n}'")).collect();
            Error::invalid("law", format!("'{name}'"), &format!("one of {}", names.join(", ")))
        })
    }

    /// Predicted loss in nats per token for `n_params` parameters (in this law's convention) trained
    /// on `tokens` tokens. Returns +inf when `tokens` is 0 (nothing trained).
    #[inline]
    pub fn loss(&self, n_params: f64, tokens: f64) -> f64 {
        self.e + self.param_term(n_params) + self.data_term(tokens)
    }

    /// [`Law::loss`] of a model `d_model` wide and `n_layers` deep: with the shape term, if the law
    /// has one, added as (E + A / N^alpha + S) + B / D^beta (the search kernel's order, so both
    /// give the same number to the last bit).
    #[inline]
    pub fn loss_of_shape(&self, n_params: f64, tokens: f64, d_model: f64, n_layers: f64) -> f64 {
        self.e + self.param_term(n_params) + self.shape_term(d_model, n_layers) + self.data_term(tokens)
    }

    /// The aspect ratios d_model / n_layers this law has evidence for: those its shape term was
    /// measured on, or [`KAPLAN_ASPECT_RANGE`] without one.
    pub fn aspect_domain(&self) -> (f64, f64) {
        self.shape.map_or(KAPLAN_ASPECT_RANGE, |s| s.measured)
    }

    /// The shape term S(d_model / n_layers) (nats/token); 0 for a law without one.
    #[inline]
    pub fn shape_term(&self, d_model: f64, n_layers: f64) -> f64 {
        self.shape.map_or(0.0, |s| s.at(d_model, n_layers))
    }

    /// The parameter term A / N^alpha (nats/token), computed as A exp(-alpha ln N): the same
    /// number to rounding, several times cheaper than a general `powf` in the search's inner loop.
    #[inline]
    pub fn param_term(&self, n_params: f64) -> f64 {
        self.a * (-self.alpha * n_params.ln()).exp()
    }

    /// [`Law::param_term`] to a relative error below [`DATA_TERM_APPROX_ERROR`] (tested), for
    /// at least one parameter, without a libm call (see [`Law::data_term_approx`]).
    #[inline]
    pub fn param_term_approx(&self, n_params: f64) -> f64 {
        power_term_approx(self.a, self.alpha, n_params).unwrap_or_else(|| self.param_term_cold(n_params))
    }

    /// [`Law::param_term`] out of line (see [`Law::data_term_cold`]).
    #[cold]
    #[inline(never)]
    fn param_term_cold(&self, n_params: f64) -> f64 {
        self.param_term(n_params)
    }

    /// The data term B / D^beta (nats/token), as B exp(-beta ln D); +inf for D = 0.
    #[inline]
    pub fn data_term(&self, tokens: f64) -> f64 {
        self.b * (-self.beta * tokens.ln()).exp()
    }

    /// The parameters and tokens that minimise this law's loss for `flops` training FLOPs under
    /// Chinchilla's C = 6 N D (Hoffmann et al. 2022, eq. 4 and App. D.2): N_opt = G (C/6)^a,
    /// D_opt = (C/6)^b / G, a = beta / (alpha + beta), b = alpha / (alpha + beta),
    /// G = (alpha A / (beta B))^(1 / (alpha + beta)). Its tokens per parameter, D_opt / N_opt, is the
    /// law's own compute-optimal ratio at that budget (about 20 only for some fits).
    pub fn compute_optimal(&self, flops: f64) -> (f64, f64) {
        let s = self.alpha + self.beta;
        let g = (self.alpha * self.a / (self.beta * self.b)).powf(1.0 / s);
        let c = flops / 6.0;
        (g * c.powf(self.beta / s), c.powf(self.alpha / s) / g)
    }

    /// How much the predicted loss moves (nats/token) when the step time, hence the tokens trained,
    /// is off by the relative error `rel_step_error` (> 0): to first order, a relative change e in
    /// the tokens D changes B / D^beta by beta e B / D^beta. Two candidates whose losses differ by
    /// less than this (for the errors of both) are not ranked by the model.
    pub fn loss_change_for_step_time_error(&self, tokens: f64, rel_step_error: f64) -> f64 {
        self.beta * self.data_term(tokens) * rel_step_error
    }

    /// [`Law::data_term`] to a relative error below [`DATA_TERM_APPROX_ERROR`] (tested), for
    /// tokens >= 1, without a libm call: the search kernel uses it only to decide what is certainly
    /// so (a guard passed or failed, a candidate certainly outside the top K) and computes the
    /// exact [`Law::data_term`] whenever the answer is within the error, so its answers are those
    /// of the exact formula. Below one token (or not finite) it is the exact term.
    #[inline(always)]
    pub fn data_term_approx(&self, tokens: f64) -> f64 {
        power_term_approx(self.b, self.beta, tokens).unwrap_or_else(|| self.data_term_cold(tokens))
    }

    /// The tokens at which the data term B / D^beta equals `x` (> 0): D = (B / x)^(1 / beta).
    #[inline]
    pub fn tokens_for_data_term(&self, x: f64) -> f64 {
        (self.b / x).powf(1.0 / self.beta)
    }

    /// [`Law::data_term`] out of line: LLVM treats `exp` and `ln` as free of side effects and
    /// would otherwise compute a rarely taken exact branch on every call, then discard it.
    #[cold]
    #[inline(never)]
    pub fn data_term_cold(&self, tokens: f64) -> f64 {
        self.data_term(tokens)
    }

    /// [`Law::tokens_for_data_term`] without a libm call, to a relative error below
    /// [`DATA_TERM_APPROX_ERROR`] / beta (tested); +inf beyond about 1e299 tokens, the exact figure
    /// where the approximation is not defined.
    #[inline]
    pub fn tokens_for_data_term_approx(&self, x: f64) -> f64 {
        let ratio = self.b / x;
        if !(ratio.is_normal() && ratio < 1e300) {
            return self.tokens_for_data_term(x);
        }
        let y = ln_approx(ratio) / self.beta;
        if y > 690.0 {
            f64::INFINITY
        } else if y < -700.0 {
            self.tokens_for_data_term(x)
        } else {
            exp_approx(y)
        }
    }

    /// Checks the coefficients: finite, E >= 0, A, B > 0, exponents in (0, 2].
    pub fn validate(&self) -> Result<()> {
        for (field, v, ok) in [
            ("E", self.e, self.e >= 0.0),
            ("A", self.a, self.a > 0.0),
            ("B", self.b, self.b > 0.0),
            ("alpha", self.alpha, self.alpha > 0.0 && self.alpha <= 2.0),
            ("beta", self.beta, self.beta > 0.0 && self.beta <= 2.0),
        ] {
            if !(v.is_finite() && ok) {
                return Err(Error::invalid(field, v, "finite; E >= 0, A and B > 0, alpha and beta in (0, 2]"));
            }
        }
        self.shape.as_ref().map_or(Ok(()), ShapeTerm::validate)
    }

    /// Picks the parameter count this law expects.
    #[inline]
    pub fn n_for(&self, total_params: f64, non_embedding_params: f64) -> f64 {
        match self.params {
            ParamConvention::Total => total_params,
            ParamConvention::NonEmbedding => non_embedding_params,
        }
    }
}

/// Bound on the relative error of [`Law::data_term_approx`] (the worst case measured by its test,
/// tokens from 1 to 1e24 and exponents from 0.01 to 2, is about 4e-14).
pub const DATA_TERM_APPROX_ERROR: f64 = 1e-11;

/// `coef exp(-exponent ln x)` (a term of the law, `coef / x^exponent`) without a libm call, to a
/// relative error below [`DATA_TERM_APPROX_ERROR`]; `None` where the approximation does not hold
/// (x below 1, not finite or above 1e300, or the power below e^-700), for the caller's exact term.
#[inline(always)]
fn power_term_approx(coef: f64, exponent: f64, x: f64) -> Option<f64> {
    if !(1.0..1e300).contains(&x) {
        return None;
    }
    let y = -exponent * ln_approx(x);
    if y < -700.0 {
        return None;
    }
    Some(coef * exp_approx(y))
}

/// ln x for a normal x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s),
/// s = (m - 1) / (m + 1), |s| <= 0.1716, by its series to s^15 (truncation below 2e-14).
#[inline(always)]
fn ln_approx(x: f64) -> f64 {
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
fn exp_approx(y: f64) -> f64 {
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

/// Muennighoff et al. 2023 ("Scaling Data-Constrained Language Models", eq. 5): with `unique`
/// tokens of data and `tokens` > `unique` trained, the repeated epochs R_D = tokens / unique - 1
/// are worth D' = U + U R* (1 - exp(-R_D / R*)) fresh tokens, R* = 15.39 (their fitted half-life
/// of repeated data's value). Below one epoch D' = tokens. Unit: tokens.
#[inline]
pub fn effective_tokens(tokens: f64, unique: f64) -> f64 {
    const R_STAR: f64 = 15.39;
    if tokens <= unique {
        return tokens;
    }
    let repeats = tokens / unique - 1.0;
    unique + unique * R_STAR * (1.0 - (-repeats / R_STAR).exp())
}

/// Kaplan et al. 2020 (eq. 5.3): critical batch B_crit(L) = B* / L^(1/alpha_B) tokens, with
/// B* = 2.1e8 tokens and alpha_B = 0.21; beyond it, more tokens per step stop buying fewer steps.
#[inline]
pub fn critical_batch_tokens(loss: f64) -> f64 {
    2.1e8 / loss.powf(1.0 / 0.21)
}

/// The largest predicted loss at which `tokens_per_step` is still within Kaplan's critical batch:
/// `tokens_per_step <= B* / L^(1/alpha_B)  <=>  L <= (B* / tokens_per_step)^alpha_B`. The search
/// uses this form so the power is computed once per batch size, not once per configuration.
#[inline]
pub fn max_loss_for_tokens_per_step(tokens_per_step: f64) -> f64 {
    (2.1e8 / tokens_per_step).powf(0.21)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compute_optimal_split_by_hand() {
        // Hoffmann's fit at Chinchilla's 5.76e23 FLOPs: G = (0.34 x 406.4 / (0.28 x 410.7))^(1/0.62)
        // = 1.2016^1.6129 = 1.3447; C/6 = 9.6e22; N = 1.3447 x 9.6e22^0.4516 = 3.219e10,
        // D = 9.6e22^0.5484 / 1.3447 = 2.982e12: 92.6 tokens per parameter (not 20: this fit's own
        // optimum, as Besiroglu et al. 2024 point out).
        let (n, d) = HOFFMANN.compute_optimal(5.76e23);
        assert!((n / 3.219e10 - 1.0).abs() < 1e-3 && (d / 2.982e12 - 1.0).abs() < 1e-3, "{n} {d}");
        assert!((6.0 * n * d / 5.76e23 - 1.0).abs() < 1e-12);
        // A minimum: 1% more or fewer parameters at the same compute lose.
        let at = |n: f64| HOFFMANN.loss(n, 5.76e23 / (6.0 * n));
        assert!(at(n) < at(1.01 * n) && at(n) < at(0.99 * n));
    }

    #[test]
    fn loss_change_for_a_step_time_error_by_hand() {
        // Chinchilla's data term at 1.4e12 tokens is 410.7 / 1.4e12^0.28 = 0.16316; a 10% step-time
        // error moves the loss by 0.28 x 0.16316 x 0.1 = 0.004568 nats; the exact change for 10%
        // fewer tokens is 0.16316 (0.9^-0.28 - 1) = 0.004867 (first order is below it).
        let d = HOFFMANN.loss_change_for_step_time_error(1.4e12, 0.1);
        assert!((d - 0.004568).abs() < 2e-6, "{d}");
        let exact = HOFFMANN.data_term(0.9 * 1.4e12) - HOFFMANN.data_term(1.4e12);
        assert!(d < exact && exact < 1.1 * d, "{d} {exact}");
    }

    #[test]
    fn approximate_data_term_is_within_its_bound() {
        // Tokens from 1 to 1e24, log-spaced and pseudo-random, every exponent a law may have.
        let mut x: u64 = 7;
        let mut worst: f64 = 0.0;
        for beta in [0.01, 0.0952, 0.28, 0.3658, 1.0, 2.0] {
            let law = Law { beta, ..HOFFMANN };
            for i in 0..200_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let tokens =
                    if i % 2 == 0 { 10f64.powf(f64::from(i) * 24.0 / 200_000.0) } else { ((x >> 11) % (1 << 40)) as f64 + 1.0 };
                let (approx, exact) = (law.data_term_approx(tokens), law.data_term(tokens));
                worst = worst.max((approx - exact).abs() / exact);
                assert!((approx - exact).abs() <= DATA_TERM_APPROX_ERROR * exact, "{beta} {tokens}: {approx} vs {exact}");
            }
        }
        assert!(worst > 0.0 && worst < 1e-12, "{worst:e}"); // about 4e-14 on this sweep
                                                            // The parameter term is the same function of A, alpha and N.
        for n in [1.0, 7e4, 1.3e8, 7e10, 1e13] {
            let (approx, exact) = (HOFFMANN.param_term_approx(n), HOFFMANN.param_term(n));
            assert!((approx - exact).abs() <= DATA_TERM_APPROX_ERROR * exact, "{n}: {approx} vs {exact}");
        }
        // The inverse: tokens for a data term, from 1e-6 to 1e3 nats.
        for beta in [0.01, 0.28, 2.0] {
            let law = Law { beta, ..HOFFMANN };
            for i in 0..10_000 {
                let x = 10f64.powf(-6.0 + 9.0 * f64::from(i) / 10_000.0);
                let (approx, exact) = (law.tokens_for_data_term_approx(x), law.tokens_for_data_term(x));
                if exact > 1e299 {
                    assert!(approx >= 1e299, "{beta} {x}: {approx} vs {exact}");
                } else {
                    assert!((approx - exact).abs() <= DATA_TERM_APPROX_ERROR / beta * exact, "{beta} {x}: {approx} vs {exact}");
                }
            }
        }
        // Chinchilla's data term at 1.4e12 tokens is 0.1632 (see the next test): back to 1.4e12.
        let d = HOFFMANN.tokens_for_data_term(0.163_16);
        assert!((d / 1.4e12 - 1.0).abs() < 1e-3, "{d}");
        // Exactly where the approximation is not defined.
        assert_eq!(HOFFMANN.data_term_approx(0.0), f64::INFINITY);
        assert_eq!(HOFFMANN.data_term_approx(0.5), HOFFMANN.data_term(0.5));
    }

    #[test]
    fn chinchilla_point_by_hand() {
        // Chinchilla: N = 70e9, D = 1.4e12. log10 N = 10.8451, x 0.34 = 3.6873, 10^3.6873 = 4867.8,
        // 406.4 / 4867.8 = 0.0835; log10 D = 12.1461, x 0.28 = 3.4009, 10^3.4009 = 2517.2,
        // 410.7 / 2517.2 = 0.1632. L = 1.69 + 0.0835 + 0.1632 = 1.9367 (the often-quoted 1.94).
        let l = HOFFMANN.loss(70e9, 1.4e12);
        assert!((l - 1.9367).abs() < 0.0005, "{l}");
        assert!(HOFFMANN.loss(70e9, 0.0).is_infinite());
    }

    #[test]
    fn besiroglu_by_name() {
        let l = Law::by_name("besiroglu").unwrap();
        assert_eq!(l.b, 2085.43);
        assert!(Law::by_name("kaplan").unwrap_err().to_string().contains("'hoffmann', 'besiroglu'"));
    }

    #[test]
    fn effective_tokens_by_hand() {
        // U = 1e9, D = 3e9: R_D = 2, 2 / 15.39 = 0.129955, e^-0.129955 = 0.878135,
        // 1 - 0.878135 = 0.121865, x 15.39 = 1.87550 -> D' = 1e9 + 1.87550e9 = 2.87550e9.
        assert!((effective_tokens(3e9, 1e9) / 2.87550e9 - 1.0).abs() < 1e-5);
        assert_eq!(effective_tokens(5e8, 1e9), 5e8);
        // Infinitely many repeats saturate at U (1 + R*) = 16.39 U.
        assert!((effective_tokens(1e15, 1e9) / 16.39e9 - 1.0).abs() < 1e-6);
    }

    #[test]
    fn critical_batch_by_hand() {
        // L = 3 nats: 3^(1/0.21) = e^(1.0986 x 4.7619) = e^5.2315 = 187.1; 2.1e8 / 187.1 = 1.12e6.
        let b = critical_batch_tokens(3.0);
        assert!((b / 1.122e6 - 1.0).abs() < 0.01, "{b}");
        // The inverse: at 1.12e6 tokens per step the largest admissible loss is 3.
        assert!((max_loss_for_tokens_per_step(b) - 3.0).abs() < 1e-12);
    }
}
