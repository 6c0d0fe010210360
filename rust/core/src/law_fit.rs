//! Fitting a Chinchilla-form law to a user's own (parameters, tokens, loss) runs, as Hoffmann et
//! al. 2022 (App. D.2) and Besiroglu et al. 2024 did: minimise the Huber loss (delta = 1e-3) of
//! log L_pred - log L_obs, with log L_pred = LSE(a - alpha log N, b - beta log D, e)
//! (A = e^a, B = e^b, E = e^e), from a grid of starting points; bootstrap (resampling runs with
//! replacement) for intervals. The optimiser is Nelder-Mead (derivative-free; five parameters).

use crate::error::{Error, Result};
use crate::loss::{Law, ParamConvention, ShapeTerm};

/// One training run: parameters (count), training tokens, final loss (nats/token).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub params: f64,
    pub tokens: f64,
    pub loss: f64,
}

/// A fitted law with its objective and bootstrap percentile intervals (2.5%, 97.5%) for
/// E, A, B, alpha, beta, in that order.
#[derive(Debug, Clone, PartialEq)]
pub struct LawFit {
    pub law: Law,
    pub objective: f64,
    pub intervals: [(f64, f64); 5],
    /// Every bootstrap refit that is a valid law (for prediction intervals).
    pub bootstrap: Vec<Law>,
    /// Bootstrap refits discarded because they left the law's valid domain (an exponent outside
    /// (0, 2], a non-finite coefficient): with few runs, a resample can repeat one model size or
    /// budget so often that the law is not identified. Intervals are over the kept refits.
    pub bootstrap_rejected: usize,
}

/// Largest exponent (alpha, beta) of a valid law ([`Law::validate`]).
const MAX_EXPONENT: f64 = 2.0;

impl LawFit {
    /// The exponents ("alpha", "beta") that ended within 2% of their domain's edges (0 or 2): the
    /// runs did not identify them, the fit only stopped at the boundary.
    pub fn at_edge(&self) -> Vec<&'static str> {
        let near = |x: f64| x <= 0.02 * MAX_EXPONENT || x >= 0.98 * MAX_EXPONENT;
        [("alpha", self.law.alpha), ("beta", self.law.beta)].into_iter().filter(|&(_, x)| near(x)).map(|(n, _)| n).collect()
    }
}

/// Huber's loss: quadratic below `delta`, linear above.
#[inline]
fn huber(r: f64, delta: f64) -> f64 {
    let a = r.abs();
    if a <= delta {
        0.5 * r * r
    } else {
        delta * (a - 0.5 * delta)
    }
}

/// Objective of theta = (a, b, e, alpha, beta) on runs given as (log N, log D, log L); +inf outside
/// the law's domain (exponents in (0, 2]), so the fit is constrained to it: with few or noisy runs
/// the unconstrained optimum can sit at an exponent of 4 or more, which is no Chinchilla law. A fit
/// that ends at the edge says so ([`LawFit::at_edge`]).
fn objective(theta: &[f64; 5], data: &[(f64, f64, f64)], delta: f64) -> f64 {
    let [a, b, e, alpha, beta] = *theta;
    if !(alpha > 0.0 && alpha <= MAX_EXPONENT && beta > 0.0 && beta <= MAX_EXPONENT) {
        return f64::INFINITY;
    }
    data.iter()
        .map(|&(ln_n, ln_d, ln_l)| {
            let (x, y, z) = (a - alpha * ln_n, b - beta * ln_d, e);
            let m = x.max(y).max(z);
            let lse = m + ((x - m).exp() + (y - m).exp() + (z - m).exp()).ln();
            huber(lse - ln_l, delta)
        })
        .sum()
}

/// Nelder-Mead from `start`; returns (best point, objective).
fn nelder_mead(start: [f64; 5], f: &(dyn Fn(&[f64; 5]) -> f64 + Sync), iters: usize) -> ([f64; 5], f64) {
    let mut simplex: Vec<([f64; 5], f64)> = Vec::with_capacity(6);
    simplex.push((start, f(&start)));
    for i in 0..5 {
        let mut p = start;
        p[i] += if i < 3 { 0.5 } else { 0.05 };
        simplex.push((p, f(&p)));
    }
    for _ in 0..iters {
        simplex.sort_by(|x, y| x.1.total_cmp(&y.1));
        if (simplex[5].1 - simplex[0].1).abs() <= 1e-14 * (1.0 + simplex[0].1.abs()) {
            break;
        }
        let mut centroid = [0.0; 5];
        for (p, _) in &simplex[..5] {
            for k in 0..5 {
                centroid[k] += p[k] / 5.0;
            }
        }
        let along = |t: f64| -> [f64; 5] {
            let mut q = [0.0; 5];
            for k in 0..5 {
                q[k] = centroid[k] + t * (simplex[5].0[k] - centroid[k]);
            }
            q
        };
        let r = along(-1.0);
        let fr = f(&r);
        if fr < simplex[0].1 {
            let e = along(-2.0);
            let fe = f(&e);
            simplex[5] = if fe < fr { (e, fe) } else { (r, fr) };
        } else if fr < simplex[4].1 {
            simplex[5] = (r, fr);
        } else {
            let c = along(if fr < simplex[5].1 { -0.5 } else { 0.5 });
            let fc = f(&c);
            if fc < simplex[5].1.min(fr) {
                simplex[5] = (c, fc);
            } else {
                let best = simplex[0].0;
                for (p, fp) in simplex.iter_mut().skip(1) {
                    for k in 0..5 {
                        p[k] = best[k] + 0.5 * (p[k] - best[k]);
                    }
                    *fp = f(p);
                }
            }
        }
    }
    simplex.sort_by(|x, y| x.1.total_cmp(&y.1));
    simplex[0]
}

fn to_law(theta: &[f64; 5], params: ParamConvention) -> Law {
    Law { e: theta[2].exp(), a: theta[0].exp(), b: theta[1].exp(), alpha: theta[3], beta: theta[4], params, shape: None }
}

/// Best fit from a grid of starts (Hoffmann's grid, coarsened).
fn fit_once(data: &[(f64, f64, f64)], delta: f64, starts: &[[f64; 5]]) -> ([f64; 5], f64) {
    use rayon::prelude::*;
    let f = |t: &[f64; 5]| objective(t, data, delta);
    starts.par_iter().map(|s| nelder_mead(*s, &f, 4000)).min_by(|x, y| x.1.total_cmp(&y.1)).expect("at least one start")
}

/// Most runs a fit accepts (each refit walks them all from 40 starting points).
pub const MAX_RUNS: usize = 10_000;
/// Most bootstrap refits a fit accepts.
pub const MAX_BOOTSTRAP: usize = 100_000;

/// Fits E, A, B, alpha, beta to `runs` (at least 5, all finite and positive) and bootstraps
/// `n_bootstrap` refits with a deterministic generator seeded by `seed`.
pub fn fit_law(runs: &[Run], n_bootstrap: usize, seed: u64) -> Result<LawFit> {
    fit_law_with_progress(runs, n_bootstrap, seed, &mut |_| true)
}

/// [`fit_law`], calling `progress(refits done)` after the point fit (0) and after each bootstrap
/// refit; when it returns false the fit stops with [`Error::Interrupted`].
pub fn fit_law_with_progress(
    runs: &[Run],
    n_bootstrap: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize) -> bool,
) -> Result<LawFit> {
    if runs.len() > MAX_RUNS {
        return Err(Error::invalid("runs", runs.len(), &format!("at most {MAX_RUNS} runs")));
    }
    if n_bootstrap > MAX_BOOTSTRAP {
        return Err(Error::invalid("bootstrap", n_bootstrap, &format!("at most {MAX_BOOTSTRAP} refits")));
    }
    if runs.len() < 5 {
        return Err(Error::invalid("runs", runs.len(), "at least 5 (params, tokens, loss) runs"));
    }
    for (i, r) in runs.iter().enumerate() {
        for (field, v) in [("params", r.params), ("tokens", r.tokens), ("loss", r.loss)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(&format!("run {}: {field}", i + 1), v, "a finite number > 0"));
            }
        }
    }
    // Five coefficients need five distinct (params, tokens) points: repeats only measure noise.
    let mut points: Vec<(u64, u64)> = runs.iter().map(|r| (r.params.to_bits(), r.tokens.to_bits())).collect();
    points.sort_unstable();
    points.dedup();
    if points.len() < 5 {
        return Err(Error::invalid(
            "runs",
            format!("{} distinct (params, tokens) points", points.len()),
            "at least 5 (the law has 5 coefficients; repeated points only measure noise)",
        ));
    }
    let data: Vec<(f64, f64, f64)> = runs.iter().map(|r| (r.params.ln(), r.tokens.ln(), r.loss.ln())).collect();
    const DELTA: f64 = 1e-3;
    let mut starts = Vec::new();
    for a in [0.0, 5.0, 10.0] {
        for b in [0.0, 5.0, 10.0] {
            for e in [-1.0, 0.5] {
                for alpha in [0.2, 0.5] {
                    for beta in [0.2, 0.5] {
                        starts.push([a, b, e, alpha, beta]);
                    }
                }
            }
        }
    }
    let (theta, obj) = fit_once(&data, DELTA, &starts);
    if !progress(0) {
        return Err(Error::Interrupted);
    }
    // Bootstrap: resample runs, refit from the full-data optimum and a few grid points.
    let local: Vec<[f64; 5]> = std::iter::once(theta).chain(starts.iter().step_by(24).copied()).collect();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut boot = Vec::with_capacity(n_bootstrap);
    for done in 1..=n_bootstrap {
        let sample: Vec<(f64, f64, f64)> = (0..data.len()).map(|_| data[(next() % data.len() as u64) as usize]).collect();
        boot.push(fit_once(&sample, DELTA, &local).0);
        if !progress(done) {
            return Err(Error::Interrupted);
        }
    }
    let before = boot.len();
    boot.retain(|t| to_law(t, ParamConvention::Total).validate().is_ok());
    let bootstrap_rejected = before - boot.len();
    let interval = |k: usize| -> (f64, f64) {
        if boot.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        let mut v: Vec<f64> = boot.iter().map(|t| if k < 3 { t[k].exp() } else { t[k] }).collect();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
        (at(0.025), at(0.975))
    };
    // Order E, A, B, alpha, beta (theta is a, b, e, alpha, beta).
    let intervals = [interval(2), interval(0), interval(1), interval(3), interval(4)];
    let law = to_law(&theta, ParamConvention::Total);
    law.validate()?;
    Ok(LawFit {
        law,
        objective: obj,
        intervals,
        bootstrap: boot.iter().map(|t| to_law(t, ParamConvention::Total)).collect(),
        bootstrap_rejected,
    })
}

/// One run of a shape study: a model `d_model` wide and `n_layers` deep with `params` parameters
/// (in the law's convention) trained on `tokens` tokens to a final `loss` (nats/token).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapeRun {
    pub d_model: f64,
    pub n_layers: f64,
    pub params: f64,
    pub tokens: f64,
    pub loss: f64,
}

/// A shape term fitted to runs ([`fit_shape`]): the law with the term, 95% bootstrap intervals of
/// c and r_opt, the aspect ratios measured, and the fit's residual.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeFit {
    /// The law the term was fitted against, now carrying the term.
    pub law: Law,
    pub c_interval: (f64, f64),
    pub aspect_opt_interval: (f64, f64),
    /// Smallest and largest d_model / n_layers among the runs: r_opt outside it is extrapolated.
    pub aspect_range: (f64, f64),
    /// Root-mean-square residual of the runs around the fitted parabola (nats/token).
    pub rms_residual: f64,
    /// The term's largest value over the measured aspect ratios (nats/token): the shape effect.
    pub effect: f64,
    /// Bootstrap resamples without an optimum (curvature <= 0) or fewer than 3 aspect ratios.
    pub bootstrap_rejected: usize,
    pub n_runs: usize,
}

/// Least squares y = q0 + q1 u + q2 u^2 (normal equations, Gaussian elimination with pivoting);
/// `None` when singular (fewer than 3 distinct u).
fn quadratic_fit(points: &[(f64, f64)]) -> Option<[f64; 3]> {
    let mut m = [[0.0f64; 4]; 3];
    for &(u, y) in points {
        let row = [1.0, u, u * u];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += row[i] * row[j];
            }
            m[i][3] += row[i] * y;
        }
    }
    for col in 0..3 {
        let pivot = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-12 * (1.0 + m[0][0]) {
            return None;
        }
        m.swap(col, pivot);
        let pivot_row = m[col];
        for (r, row) in m.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (x, p) in row.iter_mut().zip(pivot_row).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    Some([m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]])
}

/// (c, ln r_opt) of the parabola through (ln aspect, residual) points centred at `x0`, if convex.
fn shape_of(points: &[(f64, f64)], x0: f64) -> Option<(f64, f64)> {
    let [_, q1, q2] = quadratic_fit(points)?;
    (q2 > 0.0 && q2.is_finite()).then(|| (q2, x0 - q1 / (2.0 * q2)))
}

/// Most shape runs a fit accepts.
pub const MAX_SHAPE_RUNS: usize = 10_000;

/// Fits the shape term S(r) = c (ln(r / r_opt))^2 ([`ShapeTerm`]) to runs that differ in shape:
/// each run's residual from `law` (loss minus the law's prediction at its parameters and tokens)
/// is fitted by least squares as k + S(d_model / n_layers), the offset k absorbing the law's error
/// at that size (it is not kept). Needs at least 4 runs over at least 3 aspect ratios, and an
/// optimum: residuals convex in ln r (otherwise the runs show loss only falling or rising with
/// depth, and no term of this form is identified). Intervals: 95% percentiles over `n_bootstrap`
/// resamples of the runs (seeded by `seed`).
pub fn fit_shape(law: &Law, runs: &[ShapeRun], n_bootstrap: usize, seed: u64) -> Result<ShapeFit> {
    if runs.len() > MAX_SHAPE_RUNS {
        return Err(Error::invalid("shape runs", runs.len(), &format!("at most {MAX_SHAPE_RUNS} runs")));
    }
    if n_bootstrap > MAX_BOOTSTRAP {
        return Err(Error::invalid("bootstrap", n_bootstrap, &format!("at most {MAX_BOOTSTRAP} refits")));
    }
    law.validate()?;
    for (i, r) in runs.iter().enumerate() {
        for (field, v) in
            [("d_model", r.d_model), ("n_layers", r.n_layers), ("params", r.params), ("tokens", r.tokens), ("loss", r.loss)]
        {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(&format!("shape run {}: {field}", i + 1), v, "a finite number > 0"));
            }
        }
    }
    let base = Law { shape: None, ..*law };
    let xs: Vec<f64> = runs.iter().map(|r| (r.d_model / r.n_layers).ln()).collect();
    let mut distinct: Vec<u64> = runs.iter().map(|r| (r.d_model / r.n_layers).to_bits()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if runs.len() < 4 || distinct.len() < 3 {
        return Err(Error::invalid(
            "shape runs",
            format!("{} runs over {} aspect ratios", runs.len(), distinct.len()),
            "at least 4 runs over at least 3 aspect ratios d_model / n_layers",
        ));
    }
    let x0 = xs.iter().sum::<f64>() / xs.len() as f64;
    let points: Vec<(f64, f64)> = runs.iter().zip(&xs).map(|(r, &x)| (x - x0, r.loss - base.loss(r.params, r.tokens))).collect();
    let [q0, q1, q2] = quadratic_fit(&points).expect("3 distinct aspect ratios");
    if q2.is_nan() || q2 <= 0.0 {
        return Err(Error::invalid(
            "shape runs",
            format!("a curvature of {q2:.3e} nats/token per (ln aspect)^2"),
            "losses convex in ln(d_model / n_layers), with an optimum: these runs show none, so no shape term is fitted",
        ));
    }
    let term = ShapeTerm { c: q2, aspect_opt: (x0 - q1 / (2.0 * q2)).exp() };
    term.validate()?;
    let rms_residual =
        (points.iter().map(|&(u, y)| (y - (q0 + q1 * u + q2 * u * u)).powi(2)).sum::<f64>() / points.len() as f64).sqrt();
    let (lo, hi) = runs
        .iter()
        .map(|r| r.d_model / r.n_layers)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let effect = term.at(lo, 1.0).max(term.at(hi, 1.0));
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut cs, mut opts, mut rejected) = (Vec::new(), Vec::new(), 0);
    for _ in 0..n_bootstrap {
        let sample: Vec<(f64, f64)> = (0..points.len()).map(|_| points[(next() % points.len() as u64) as usize]).collect();
        match shape_of(&sample, 0.0) {
            Some((c, ln_opt)) if ln_opt.abs() < 700.0 => {
                cs.push(c);
                opts.push((x0 + ln_opt).exp());
            }
            _ => rejected += 1,
        }
    }
    let interval = |mut v: Vec<f64>| -> (f64, f64) {
        if v.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
        (q(0.025), q(0.975))
    };
    Ok(ShapeFit {
        law: Law { shape: Some(term), ..*law },
        c_interval: interval(cs),
        aspect_opt_interval: interval(opts),
        aspect_range: (lo, hi),
        rms_residual,
        effect,
        bootstrap_rejected: rejected,
        n_runs: runs.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::BESIROGLU;

    fn synthetic(noise: f64) -> Vec<Run> {
        let mut x: u64 = 99;
        let mut runs = Vec::new();
        for n in [1e7, 3e7, 1e8, 3e8, 1e9, 3e9] {
            for d in [1e9, 3e9, 1e10, 3e10, 1e11] {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = ((x >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0;
                runs.push(Run { params: n, tokens: d, loss: BESIROGLU.loss(n, d) * (1.0 + noise * u) });
            }
        }
        runs
    }

    #[test]
    fn identical_runs_are_refused() {
        let runs: Vec<Run> = (0..50).map(|_| Run { params: 1e8, tokens: 1e10, loss: 3.0 }).collect();
        let e = fit_law(&runs, 10, 0).unwrap_err().to_string();
        assert!(e.contains("1 distinct (params, tokens) points") && e.contains("at least 5"), "{e}");
    }

    #[test]
    fn a_fit_stays_in_the_laws_domain_and_says_when_it_hits_an_edge() {
        // Runs generated with alpha = 4 (no valid law): the fit stops at alpha = 2 and says so.
        let truth = |n: f64, d: f64| 1.5 + 1e20 / n.powi(4) + 300.0 / d.powf(0.3);
        let runs: Vec<Run> = [1e5, 2e5, 4e5, 8e5, 1.6e6]
            .iter()
            .flat_map(|&n| [1e8, 1e9, 1e10].map(move |d| Run { params: n, tokens: d, loss: truth(n, d) }))
            .collect();
        let fit = fit_law(&runs, 10, 0).unwrap();
        assert!(fit.law.validate().is_ok() && fit.law.alpha <= 2.0, "{:?}", fit.law);
        assert_eq!(fit.at_edge(), vec!["alpha"]);
        assert_eq!(fit.bootstrap_rejected, 0);
    }

    #[test]
    fn bootstrap_keeps_only_valid_laws() {
        // Six runs, three model sizes: many resamples leave the law unidentified.
        let runs: Vec<Run> =
            [(3e4, 4e4, 2.52), (3e4, 9e4, 2.37), (8e4, 4e4, 2.42), (8e4, 8e4, 2.29), (5e4, 6e4, 2.39), (5e4, 1.2e5, 2.28)]
                .iter()
                .map(|&(params, tokens, loss)| Run { params, tokens, loss })
                .collect();
        let fit = fit_law(&runs, 40, 0).unwrap();
        assert_eq!(fit.bootstrap.len() + fit.bootstrap_rejected, 40);
        for l in &fit.bootstrap {
            assert!(l.validate().is_ok(), "{l:?}");
        }
    }

    #[test]
    fn recovers_exact_coefficients() {
        let fit = fit_law(&synthetic(0.0), 0, 1).unwrap();
        let l = fit.law;
        for (got, want) in [(l.e, BESIROGLU.e), (l.alpha, BESIROGLU.alpha), (l.beta, BESIROGLU.beta)] {
            assert!((got - want).abs() < 0.02 * want, "{got} vs {want}");
        }
    }

    #[test]
    fn noisy_fit_lies_within_its_bootstrap_intervals() {
        let fit = fit_law(&synthetic(0.005), 60, 7).unwrap();
        let truth = [BESIROGLU.e, BESIROGLU.a, BESIROGLU.b, BESIROGLU.alpha, BESIROGLU.beta];
        for (k, (lo, hi)) in fit.intervals.iter().enumerate() {
            assert!(lo <= hi);
            assert!(*lo <= truth[k] && truth[k] <= *hi, "coefficient {k}: {} not in [{lo}, {hi}]", truth[k]);
        }
    }

    #[test]
    fn refuses_bad_runs() {
        let mut runs = synthetic(0.0);
        runs[3].loss = f64::NAN;
        assert!(fit_law(&runs, 0, 1).unwrap_err().to_string().contains("run 4: loss"));
        assert!(fit_law(&runs[..3], 0, 1).is_err());
    }

    fn shape_runs(c: f64, r_opt: f64, noise: f64) -> Vec<ShapeRun> {
        // Five shapes near 600 k parameters, 0.5 M tokens, two seeds each; loss = law + S + noise.
        let mut runs = Vec::new();
        for (i, &(d, l)) in [(224.0, 1.0), (160.0, 2.0), (128.0, 3.0), (96.0, 6.0), (64.0, 12.0)].iter().enumerate() {
            for seed in 0..2 {
                let params = 6e5 + 1e4 * i as f64;
                let x: f64 = (d / l / r_opt).ln();
                let wiggle = if seed == 0 { noise } else { -noise };
                runs.push(ShapeRun {
                    d_model: d,
                    n_layers: l,
                    params,
                    tokens: 5e5,
                    loss: BESIROGLU.loss(params, 5e5) + c * x * x + wiggle,
                });
            }
        }
        runs
    }

    #[test]
    fn shape_term_by_hand() {
        // c = 0.02, r_opt = 40: at r = 40 e (ln(r / r_opt) = 1) S = 0.02; at r = 40 S = 0.
        let t = ShapeTerm { c: 0.02, aspect_opt: 40.0 };
        assert!((t.at(40.0 * std::f64::consts::E, 1.0) - 0.02).abs() < 1e-15);
        assert_eq!(t.at(80.0, 2.0), 0.0);
        // d_model 640, 4 layers: r = 160 = 40 * 4, ln 4 = 1.386294..., S = 0.02 * 1.921812... = 0.0384362...
        assert!((t.at(640.0, 4.0) - 0.038_436_25).abs() < 1e-7);
        let law = Law { shape: Some(t), ..BESIROGLU };
        assert_eq!(law.loss_of_shape(1e8, 1e10, 80.0, 2.0), BESIROGLU.loss(1e8, 1e10));
        assert!((law.loss_of_shape(1e8, 1e10, 640.0, 4.0) - BESIROGLU.loss(1e8, 1e10) - 0.038_436_25).abs() < 1e-7);
    }

    #[test]
    fn shape_fit_recovers_a_parabola_and_brackets_it() {
        let fit = fit_shape(&BESIROGLU, &shape_runs(0.02, 30.0, 0.0), 0, 0).unwrap();
        let t = fit.law.shape.unwrap();
        assert!((t.c - 0.02).abs() < 1e-9 && (t.aspect_opt - 30.0).abs() < 1e-6, "{t:?}");
        assert!(fit.rms_residual < 1e-9);
        assert_eq!(fit.aspect_range, (64.0 / 12.0, 224.0));
        // The effect: S at the measured end farthest from 30 (224: ln(224/30)^2 * 0.02 = 0.0807...).
        assert!((fit.effect - 0.02 * (224.0f64 / 30.0).ln().powi(2)).abs() < 1e-9);
        let noisy = fit_shape(&BESIROGLU, &shape_runs(0.02, 30.0, 0.003), 400, 3).unwrap();
        let (lo, hi) = noisy.c_interval;
        assert!(lo <= 0.02 && 0.02 <= hi && lo > 0.0, "{lo} {hi}");
        let (lo, hi) = noisy.aspect_opt_interval;
        assert!(lo <= 30.0 && 30.0 <= hi, "{lo} {hi}");
    }

    #[test]
    fn shape_fit_refuses_runs_without_an_optimum() {
        // Loss only falls with width (concave residuals): no optimum, no term.
        let mut runs = shape_runs(0.0, 30.0, 0.0);
        for r in &mut runs {
            r.loss -= 0.01 * (r.d_model / r.n_layers).ln().powi(2);
        }
        let e = fit_shape(&BESIROGLU, &runs, 0, 0).unwrap_err().to_string();
        assert!(e.contains("convex") && e.contains("shows none") || e.contains("show none"), "{e}");
        let two: Vec<ShapeRun> = shape_runs(0.02, 30.0, 0.0).into_iter().filter(|r| r.n_layers <= 2.0).collect();
        let e = fit_shape(&BESIROGLU, &two, 0, 0).unwrap_err().to_string();
        assert!(e.contains("2 aspect ratios") && e.contains("at least 3"), "{e}");
    }
}
