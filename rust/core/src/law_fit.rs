//! Fitting a Chinchilla-form law to a user's own (parameters, tokens, loss) runs, as Hoffmann et
//! al. 2022 (App. D.2) and Besiroglu et al. 2024 did: minimise the Huber loss (delta = 1e-3) of
//! log L_pred - log L_obs, with log L_pred = LSE(a - alpha log N, b - beta log D, e)
//! (A = e^a, B = e^b, E = e^e), from a grid of starting points; bootstrap (resampling runs with
//! replacement) for intervals. The optimiser is Nelder-Mead (derivative-free; five parameters).

use crate::error::{Error, Result};
use crate::loss::{Law, ParamConvention};
use crate::shape::{FittedShape, ShapeTerm};
use crate::simplex::Simplex;

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

/// Draws bootstrap resamples (with replacement) from a deterministic xorshift generator.
struct Resampler(u64);

impl Resampler {
    fn new(seed: u64) -> Self {
        Resampler(seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1)
    }
    fn resample<T: Copy>(&mut self, data: &[T]) -> Vec<T> {
        (0..data.len())
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                data[(self.0 % data.len() as u64) as usize]
            })
            .collect()
    }
}

/// The 2.5% and 97.5% percentiles of `v` (nearest rank); NaN for no values.
fn percentile_95(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((q * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    (at(0.025), at(0.975))
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

fn to_law(theta: &[f64; 5], params: ParamConvention) -> Law {
    // A law fitted to a user's runs describes their setup (vocabulary, context, batches): no
    // evidence term by default (a law file's `terms` or `--loss-terms` adds them).
    Law {
        e: theta[2].exp(),
        a: theta[0].exp(),
        b: theta[1].exp(),
        alpha: theta[3],
        beta: theta[4],
        params,
        ..crate::loss::BESIROGLU.plain()
    }
}

/// How many distinct values `values` holds.
fn distinct_count(values: impl Iterator<Item = f64>) -> usize {
    let mut bits: Vec<u64> = values.map(f64::to_bits).collect();
    bits.sort_unstable();
    bits.dedup();
    bits.len()
}

/// Objective evaluations x runs per round of [`fit_once`] and start (about 2^16 x 20 ns = 1.3 ms):
/// every start advances this much work between two calls of `between`, so a fit of 10,000 runs
/// from 40 starts checks for Ctrl-C every few tens of milliseconds on two cores (issue 23 U7: the
/// first fit ran 10-17 s without a check).
const WORK_PER_ROUND: usize = 1 << 16;

/// Best fit from a grid of starts (Hoffmann's grid, coarsened), the starts advanced in parallel in
/// rounds of a few iterations; `between()` is called after each round and a `false` stops the fit
/// (`None`). The answer does not depend on the rounds: each start runs the same iterations.
fn fit_once(
    data: &[(f64, f64, f64)],
    delta: f64,
    starts: &[[f64; 5]],
    between: &mut dyn FnMut() -> bool,
) -> Option<([f64; 5], f64)> {
    use rayon::prelude::*;
    let f = |t: &[f64; 5]| objective(t, data, delta);
    let mut simplexes: Vec<Simplex> = starts.par_iter().map(|s| Simplex::new(*s, &f)).collect();
    let per_round = (WORK_PER_ROUND / data.len().max(1)).max(1);
    while simplexes.iter().any(|s| !s.done()) {
        if !between() {
            return None;
        }
        simplexes.par_iter_mut().filter(|s| !s.done()).for_each(|s| s.advance(per_round, &f));
    }
    Some(simplexes.into_iter().map(Simplex::best).min_by(|x, y| x.1.total_cmp(&y.1)).expect("at least one start"))
}

/// Most runs a fit accepts (each refit walks them all from 40 starting points).
pub const MAX_RUNS: usize = 10_000;
/// Largest runs file read (CSV, one run per row), in bytes: [`MAX_RUNS`] rows of up to 3 kB (a run's
/// numbers and a few named columns are under 200 bytes). A larger file is refused by its
/// size before it is read.
pub const MAX_RUNS_FILE_BYTES: u64 = 32 << 20;

/// Checks the size of a runs file, in bytes, against [`MAX_RUNS_FILE_BYTES`].
pub fn check_runs_file_bytes(bytes: u64) -> Result<u64> {
    crate::error::bytes_at_most("runs", bytes, MAX_RUNS_FILE_BYTES)
}

/// Checks a number of runs against [`MAX_RUNS`] (a reader counts a file's rows with it before it
/// keeps more than the limit); returns it.
pub fn check_run_count(n: u64) -> Result<usize> {
    match usize::try_from(n) {
        Ok(k) if k <= MAX_RUNS => Ok(k),
        _ => Err(Error::invalid("runs", n, &format!("at most {MAX_RUNS} runs"))),
    }
}

/// Most bootstrap refits a fit accepts.
pub const MAX_BOOTSTRAP: usize = 100_000;

/// Most bootstrap work a fit agrees to, refits x runs (each refit fits every run again; about 0.2 ms
/// per run and refit on two cores, so the limit is about 5 minutes): the count and the runs may each
/// be at their own limit, not both.
pub const MAX_BOOTSTRAP_WORK: u64 = 2_000_000;

/// Checks that `n_bootstrap` refits of `n_runs` runs stay within [`MAX_BOOTSTRAP_WORK`].
pub fn check_bootstrap_work(n_bootstrap: usize, n_runs: usize) -> Result<()> {
    let work = n_bootstrap as u64 * n_runs as u64;
    if work > MAX_BOOTSTRAP_WORK {
        return Err(Error::invalid(
            "bootstrap",
            format!("{n_bootstrap} refits of {} runs", crate::error::count(n_runs as u64)),
            &format!("at most {} refits x runs (fewer bootstrap refits, or fewer runs)", crate::error::count(MAX_BOOTSTRAP_WORK)),
        ));
    }
    Ok(())
}

/// Fewest bootstrap refits a law file must hold for its coefficients to be checked against them.
pub const MIN_BOOTSTRAP_TO_CHECK: usize = 20;

/// Names of a law file's coefficients in the order of its bootstrap rows.
pub const BOOTSTRAP_COLUMNS: [&str; 7] = ["e", "a", "b", "alpha", "beta", "c", "aspect_opt"];

/// Checks a law file's coefficients against its own bootstrap refits (rows in the order of
/// [`BOOTSTRAP_COLUMNS`], as many columns as `coefficients`): each must lie within the range the
/// refits span, widened by that span on either side. A fit's coefficients always do (its refits
/// are drawn around them); a coefficient edited after the fit may not, and then every prediction
/// interval of the file is about another law. Not checked below [`MIN_BOOTSTRAP_TO_CHECK`] rows.
pub fn check_law_within_bootstrap(coefficients: &[f64], rows: &[Vec<f64>]) -> Result<()> {
    if rows.len() < MIN_BOOTSTRAP_TO_CHECK {
        return Ok(());
    }
    for (j, (&v, name)) in coefficients.iter().zip(BOOTSTRAP_COLUMNS).enumerate() {
        let column = rows.iter().filter_map(|r| r.get(j).copied());
        let (lo, hi) = column.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
        let span = hi - lo;
        if !(v >= lo - span && v <= hi + span) {
            return Err(Error::invalid_number(
                &format!("law.{name}"),
                v,
                &format!(
                    "within the range of its {} bootstrap refits ({} to {}) widened by that range: the coefficient was \
                     changed after the fit; refit, or remove law.bootstrap",
                    rows.len(),
                    crate::error::bound(lo),
                    crate::error::bound(hi)
                ),
            ));
        }
    }
    Ok(())
}

/// A bootstrap count as given (any integer), when in [0, [`MAX_BOOTSTRAP`]].
pub fn bootstrap_count(v: i128) -> Result<usize> {
    crate::error::integer_in("bootstrap", v, 0, MAX_BOOTSTRAP as i128)
}

/// A random seed as given (any integer), when a 64-bit unsigned integer.
pub fn seed(v: i128) -> Result<u64> {
    crate::error::integer_in("seed", v, 0, u64::MAX.into())
}

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
    crate::threads::init()?;
    check_run_count(runs.len() as u64)?;
    bootstrap_count(i128::try_from(n_bootstrap).unwrap_or(i128::MAX))?;
    check_bootstrap_work(n_bootstrap, runs.len())?;
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
    if distinct_count(runs.iter().map(|r| r.loss)) < 2 {
        // E alone: A, B, alpha and beta take whatever values the search started from.
        return Err(Error::invalid(
            "runs",
            format!("one loss ({}) in every run", crate::error::number(runs[0].loss)),
            "losses that vary with params and tokens",
        ));
    }
    // A / N^alpha needs three sizes to fix A and alpha apart from E (B / D^beta three token
    // counts): with fewer the fit returns whatever coefficients its start gave.
    for (field, distinct) in
        [("params", distinct_count(runs.iter().map(|r| r.params))), ("tokens", distinct_count(runs.iter().map(|r| r.tokens)))]
    {
        if distinct < 3 {
            return Err(Error::invalid(
                "runs",
                format!("{distinct} distinct {field} values"),
                &format!("at least 3 (the law's {field} term has a coefficient and an exponent beside e)"),
            ));
        }
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
    let (theta, obj) = fit_once(&data, DELTA, &starts, &mut || progress(0)).ok_or(Error::Interrupted)?;
    if !progress(0) {
        return Err(Error::Interrupted);
    }
    // Bootstrap: resample runs, refit from the full-data optimum and a few grid points.
    let local: Vec<[f64; 5]> = std::iter::once(theta).chain(starts.iter().step_by(24).copied()).collect();
    let mut draw = Resampler::new(seed);
    let mut boot = Vec::with_capacity(n_bootstrap);
    for done in 1..=n_bootstrap {
        let sample = draw.resample(&data);
        boot.push(fit_once(&sample, DELTA, &local, &mut || progress(done - 1)).ok_or(Error::Interrupted)?.0);
        if !progress(done) {
            return Err(Error::Interrupted);
        }
    }
    let before = boot.len();
    boot.retain(|t| to_law(t, ParamConvention::Total).validate().is_ok());
    let bootstrap_rejected = before - boot.len();
    let interval = |k: usize| percentile_95(boot.iter().map(|t| if k < 3 { t[k].exp() } else { t[k] }).collect());
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

/// One run with its shape: a model `d_model` wide and `n_layers` deep with `params` parameters
/// (in the law's convention) trained on `tokens` tokens to a final `loss` (nats/token).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShapeRun {
    pub d_model: f64,
    pub n_layers: f64,
    pub params: f64,
    pub tokens: f64,
    pub loss: f64,
}

impl ShapeRun {
    /// The run without its shape.
    pub fn plain(&self) -> Run {
        Run { params: self.params, tokens: self.tokens, loss: self.loss }
    }
    fn aspect(&self) -> f64 {
        self.d_model / self.n_layers
    }
}

/// A shape term fitted to runs ([`fit_law_with_shape`]): the term, 95% bootstrap intervals of c
/// and r_opt, the fit's residual and the term's size over the shapes measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeFit {
    pub term: FittedShape,
    /// 2.5% and 97.5% percentiles of the curvature over every resample (a resample without an
    /// optimum counts with its own curvature, <= 0).
    pub c_interval: (f64, f64),
    /// Percentiles of r_opt over the resamples that have an optimum.
    pub aspect_opt_interval: (f64, f64),
    /// Root-mean-square residual of the runs around the fitted parabola (nats/token).
    pub rms_residual: f64,
    /// The term's largest value over the measured aspect ratios (nats/token): the shape effect.
    pub effect: f64,
    /// Resamples without an optimum (curvature <= 0).
    pub bootstrap_rejected: usize,
    /// One term per resample, in order (curvature clamped at 0 and the point r_opt where a
    /// resample has no optimum): paired with the law's refits for joint prediction intervals.
    pub samples: Vec<FittedShape>,
    pub n_runs: usize,
}

/// Least squares y = q0 + q1 u + q2 u^2 (normal equations, Gaussian elimination with partial
/// pivoting); `None` when the system is singular to working precision.
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
    let scale = [m[0][0], m[1][1], m[2][2]];
    for col in 0..3 {
        let pivot = (col..3).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs().is_nan() || m[pivot][col].abs() <= 1e-9 * scale[col] {
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

/// Most shape runs a fit accepts.
pub const MAX_SHAPE_RUNS: usize = 10_000;

/// Least ratio between the widest and the narrowest aspect ratio of the shape runs: below it a
/// parabola in ln(d_model / n_layers) is not determined.
pub const MIN_ASPECT_SPAN: f64 = 2.0;

/// Checks shape runs before any fitting: bounded, finite and positive, at least 4 runs over at
/// least 3 aspect ratios spanning a factor [`MIN_ASPECT_SPAN`].
pub fn check_shape_runs(runs: &[ShapeRun], what: &str) -> Result<()> {
    if runs.len() > MAX_SHAPE_RUNS {
        return Err(Error::invalid(what, runs.len(), &format!("at most {MAX_SHAPE_RUNS} runs")));
    }
    for (i, r) in runs.iter().enumerate() {
        for (field, v) in
            [("d_model", r.d_model), ("n_layers", r.n_layers), ("params", r.params), ("tokens", r.tokens), ("loss", r.loss)]
        {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(&format!("{what}: run {}: {field}", i + 1), v, "a finite number > 0"));
            }
        }
    }
    let mut distinct: Vec<u64> = runs.iter().map(|r| r.aspect().to_bits()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let (lo, hi) = aspect_range(runs);
    if runs.len() < 4 || distinct.len() < 3 || hi.is_nan() || hi < MIN_ASPECT_SPAN * lo {
        return Err(Error::invalid(
            what,
            format!("{} runs over {} aspect ratios ({}-{})", runs.len(), distinct.len(), number(lo), number(hi)),
            &format!(
                "at least 4 runs over at least 3 aspect ratios d_model / n_layers, the widest at least {MIN_ASPECT_SPAN}x \
                 the narrowest"
            ),
        ));
    }
    Ok(())
}

fn number(x: f64) -> String {
    crate::error::significant(x, 3)
}

fn aspect_range(runs: &[ShapeRun]) -> (f64, f64) {
    runs.iter().map(ShapeRun::aspect).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)))
}

/// Fits the shape term S(r) = c (ln(r / r_opt))^2 to `runs` that differ in shape: each run's
/// residual from `law` (loss minus the law's prediction at its parameters and tokens) is fitted by
/// least squares as k + S(d_model / n_layers) in the centred ln r, the offset k absorbing the
/// law's error at that size. Needs an optimum whose curvature's 95% bootstrap interval excludes 0.
fn fit_shape(law: &Law, runs: &[ShapeRun], n_bootstrap: usize, seed: u64) -> Result<ShapeFit> {
    check_shape_runs(runs, "shape runs")?;
    let base = Law { shape: None, ..*law };
    let xs: Vec<f64> = runs.iter().map(|r| r.aspect().ln()).collect();
    let x0 = xs.iter().sum::<f64>() / xs.len() as f64;
    let points: Vec<(f64, f64)> = runs.iter().zip(&xs).map(|(r, &x)| (x - x0, r.loss - base.loss(r.params, r.tokens))).collect();
    let singular =
        || Error::invalid("shape runs", "aspect ratios too close together", "aspect ratios spread over ln(d_model / n_layers)");
    let [q0, q1, q2] = quadratic_fit(&points).ok_or_else(singular)?;
    if q2.is_nan() || q2 <= 0.0 {
        return Err(Error::invalid(
            "shape runs",
            format!("a curvature of {q2:.3e} nats/token per (ln aspect)^2"),
            "losses convex in ln(d_model / n_layers), with an optimum: these runs show none, so no shape term is fitted",
        ));
    }
    let (lo, hi) = aspect_range(runs);
    let ln_opt = x0 - q1 / (2.0 * q2);
    let term = FittedShape { c: q2, aspect_opt: ln_opt.exp(), measured: (lo, hi) };
    term.validate()?;
    let rms_residual =
        (points.iter().map(|&(u, y)| (y - (q0 + q1 * u + q2 * u * u)).powi(2)).sum::<f64>() / points.len() as f64).sqrt();
    let effect = term.at(lo, 1.0).max(term.at(hi, 1.0));
    let mut draw = Resampler::new(seed);
    let (mut cs, mut opts, mut samples, mut rejected) = (Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..n_bootstrap {
        let sample = draw.resample(&points);
        match quadratic_fit(&sample) {
            Some([_, b1, b2]) if b2 > 0.0 && (b1 / (2.0 * b2)).abs() < 700.0 => {
                let opt = (x0 - b1 / (2.0 * b2)).exp();
                cs.push(b2);
                opts.push(opt);
                samples.push(FittedShape { c: b2, aspect_opt: opt, ..term });
            }
            fit => {
                // No optimum (or too few distinct shapes drawn): flat for the joint samples.
                cs.push(fit.map_or(0.0, |[_, _, b2]| b2));
                samples.push(FittedShape { c: 0.0, ..term });
                rejected += 1;
            }
        }
    }
    let c_interval = percentile_95(cs);
    if n_bootstrap > 0 && c_interval.0 <= 0.0 {
        return Err(Error::invalid(
            "shape runs",
            format!("a curvature of {} with a 95% interval of {} to {}", number(q2), number(c_interval.0), number(c_interval.1)),
            "a curvature whose 95% bootstrap interval excludes 0: these runs do not establish a shape optimum (add \
             seeds or shapes)",
        ));
    }
    Ok(ShapeFit {
        term,
        c_interval,
        aspect_opt_interval: percentile_95(opts),
        rms_residual,
        effect,
        bootstrap_rejected: rejected,
        samples,
        n_runs: runs.len(),
    })
}

/// Fits a law with a shape term: first the law to `runs` (each with its shape), then the shape
/// term to `shape_runs` (runs that differ in shape at a similar size and token count) against that
/// law, then the law again to `runs` with each run's shape term subtracted, so that E, A, B, alpha
/// and beta describe a model of the best shape and the term is not counted twice (the first fit's
/// coefficients hold the average shape penalty of `runs`). The law's bootstrap refits carry the
/// shape term's resamples, paired in order. `progress` as [`fit_law_with_progress`] (the final fit).
pub fn fit_law_with_shape(
    runs: &[ShapeRun],
    shape_runs: &[ShapeRun],
    n_bootstrap: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize) -> bool,
) -> Result<(LawFit, ShapeFit)> {
    check_shape_runs(shape_runs, "shape runs")?;
    check_bootstrap_work(n_bootstrap, runs.len().max(shape_runs.len()))?;
    // The runs' count and numbers are checked by `fit_law`; here only what it does not see.
    for (i, r) in runs.iter().enumerate() {
        for (field, v) in [("d_model", r.d_model), ("n_layers", r.n_layers)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(&format!("run {}: {field}", i + 1), v, "a finite number > 0"));
            }
        }
    }
    let plain: Vec<Run> = runs.iter().map(ShapeRun::plain).collect();
    let first = fit_law(&plain, 0, seed)?;
    let shape = fit_shape(&first.law, shape_runs, n_bootstrap, seed)?;
    let mut net = Vec::with_capacity(runs.len());
    for (i, r) in runs.iter().enumerate() {
        let loss = r.loss - shape.term.at(r.d_model, r.n_layers);
        if loss.is_nan() || loss <= 0.0 {
            return Err(Error::invalid(
                &format!("run {}: loss", i + 1),
                number(r.loss),
                &format!("above its shape term ({}) at d_model / n_layers = {}", number(r.loss - loss), number(r.aspect())),
            ));
        }
        net.push(Run { loss, ..r.plain() });
    }
    let mut fit = fit_law_with_progress(&net, n_bootstrap, seed, progress)?;
    fit.law.shape = Some(ShapeTerm::Fitted(shape.term));
    for (law, term) in fit.bootstrap.iter_mut().zip(shape.samples.iter().cycle()) {
        law.shape = Some(ShapeTerm::Fitted(*term));
    }
    Ok((fit, shape))
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
    fn a_fit_stops_between_rounds_of_its_first_fit() {
        // 30 runs x 200 copies = 6,000 runs: 10 iterations per round (65,536 / 6,000), so the
        // first fit (up to 4,000 iterations per start) calls back many times before any refit.
        let many: Vec<Run> = synthetic(0.01).iter().cycle().take(6_000).copied().collect();
        let mut calls = 0;
        let stopped = fit_law_with_progress(&many, 0, 0, &mut |done| {
            assert_eq!(done, 0, "no refit has run");
            calls += 1;
            calls < 3
        });
        assert!(matches!(stopped, Err(Error::Interrupted)) && calls == 3);
    }

    #[test]
    fn identical_runs_are_refused() {
        let runs: Vec<Run> = (0..50).map(|_| Run { params: 1e8, tokens: 1e10, loss: 3.0 }).collect();
        let e = fit_law(&runs, 10, 0).unwrap_err().to_string();
        assert!(e.contains("1 distinct (params, tokens) points") && e.contains("at least 5"), "{e}");
    }

    #[test]
    fn sizes_that_never_vary_and_unbounded_bootstraps_are_refused() {
        // Params never vary (five token counts): A and alpha cannot be told from E.
        let runs: Vec<Run> =
            (1..=6).map(|i| Run { params: 1e8, tokens: 1e9 * f64::from(i), loss: 3.0 + 1.0 / f64::from(i) }).collect();
        let e = fit_law(&runs, 0, 0).unwrap_err().to_string();
        assert_eq!(e, "runs = 1 distinct params values is invalid: expected at least 3 (the law's params term has a coefficient and an exponent beside e)");
        let e = fit_law(&synthetic(0.0), 100_000, 0).unwrap_err().to_string();
        assert!(
            e.starts_with("bootstrap = 100000 refits of ")
                && e.ends_with("expected at most 2,000,000 refits x runs (fewer bootstrap refits, or fewer runs)"),
            "{e}"
        );
        assert!(check_bootstrap_work(200, 10_000).is_ok() && check_bootstrap_work(201, 10_000).is_err());
        // Losses that never vary: nothing but E is fitted.
        let flat: Vec<Run> = synthetic(0.0).into_iter().map(|r| Run { loss: 3.0, ..r }).collect();
        assert_eq!(
            fit_law(&flat, 0, 0).unwrap_err().to_string(),
            "runs = one loss (3) in every run is invalid: expected losses that vary with params and tokens"
        );
    }

    #[test]
    fn a_law_is_checked_against_its_own_bootstrap() {
        let fit = fit_law(&synthetic(0.01), 40, 1).unwrap();
        let law = |l: &Law| vec![l.e, l.a, l.b, l.alpha, l.beta];
        let rows: Vec<Vec<f64>> = fit.bootstrap.iter().map(law).collect();
        assert_eq!(check_law_within_bootstrap(&law(&fit.law), &rows), Ok(()));
        let mut edited = law(&fit.law);
        edited[3] += 0.5;
        let e = check_law_within_bootstrap(&edited, &rows).unwrap_err().to_string();
        assert!(e.starts_with("law.alpha = ") && e.contains("the coefficient was changed after the fit"), "{e}");
        assert_eq!(check_law_within_bootstrap(&edited, &rows[..19]), Ok(()));
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
                let loss = BESIROGLU.loss(params, 5e5) + c * x * x + wiggle;
                runs.push(ShapeRun { d_model: d, n_layers: l, params, tokens: 5e5, loss });
            }
        }
        runs
    }

    #[test]
    fn shape_term_by_hand() {
        // c = 0.02, r_opt = 40: at r = 40 e (ln(r / r_opt) = 1) S = 0.02; at r = 40 S = 0.
        let t = FittedShape { c: 0.02, aspect_opt: 40.0, measured: (10.0, 200.0) };
        assert!((t.at(40.0 * std::f64::consts::E, 1.0) - 0.02).abs() < 1e-15);
        assert_eq!(t.at(80.0, 2.0), 0.0);
        // d_model 640, 4 layers: r = 160 = 40 * 4, ln 4 = 1.386294..., S = 0.02 * 1.921812... = 0.0384362...
        assert!((t.at(640.0, 4.0) - 0.038_436_25).abs() < 1e-7);
        let law = Law { shape: Some(ShapeTerm::Fitted(t)), ..BESIROGLU.plain() };
        assert_eq!(law.loss_of_shape(1e8, 1e10, 80.0, 2.0), BESIROGLU.loss(1e8, 1e10));
        assert!((law.loss_of_shape(1e8, 1e10, 640.0, 4.0) - BESIROGLU.loss(1e8, 1e10) - 0.038_436_25).abs() < 1e-7);
        assert_eq!(law.aspect_domain(), (10.0, 200.0));
        assert_eq!(BESIROGLU.plain().aspect_domain(), crate::loss::KAPLAN_ASPECT_RANGE);
    }

    #[test]
    fn shape_fit_recovers_a_parabola_and_brackets_it() {
        let fit = fit_shape(&BESIROGLU, &shape_runs(0.02, 30.0, 0.0), 0, 0).unwrap();
        let t = fit.term;
        assert!((t.c - 0.02).abs() < 1e-9 && (t.aspect_opt - 30.0).abs() < 1e-6, "{t:?}");
        assert!(fit.rms_residual < 1e-9);
        assert_eq!(t.measured, (64.0 / 12.0, 224.0));
        // The effect: S at the measured end farthest from 30 (224: ln(224/30)^2 * 0.02 = 0.0807...).
        assert!((fit.effect - 0.02 * (224.0f64 / 30.0).ln().powi(2)).abs() < 1e-9);
        let noisy = fit_shape(&BESIROGLU, &shape_runs(0.02, 30.0, 0.003), 400, 3).unwrap();
        let (lo, hi) = noisy.c_interval;
        assert!(lo <= 0.02 && 0.02 <= hi && lo > 0.0, "{lo} {hi}");
        let (lo, hi) = noisy.aspect_opt_interval;
        assert!(lo <= 30.0 && 30.0 <= hi, "{lo} {hi}");
        assert_eq!(noisy.samples.len(), 400);
    }

    #[test]
    fn shape_fit_refuses_runs_without_an_optimum() {
        // Loss only falls with width (concave residuals): no optimum, no term.
        let mut runs = shape_runs(0.0, 30.0, 0.0);
        for r in &mut runs {
            r.loss -= 0.01 * (r.d_model / r.n_layers).ln().powi(2);
        }
        let e = fit_shape(&BESIROGLU, &runs, 0, 0).unwrap_err().to_string();
        assert!(e.contains("convex") && e.contains("show none"), "{e}");
        // A curvature lost in the noise: its interval reaches 0.
        let e = fit_shape(&BESIROGLU, &shape_runs(0.0005, 30.0, 0.02), 200, 1).unwrap_err().to_string();
        assert!(e.contains("excludes 0") || e.contains("show none"), "{e}");
        let two: Vec<ShapeRun> = shape_runs(0.02, 30.0, 0.0).into_iter().filter(|r| r.n_layers <= 2.0).collect();
        let e = fit_shape(&BESIROGLU, &two, 0, 0).unwrap_err().to_string();
        assert!(e.contains("2 aspect ratios") && e.contains("at least 3"), "{e}");
        // Four runs over three nearly equal aspect ratios: refused, not a panic.
        let close: Vec<ShapeRun> = [(1000.0, 10.0), (1000.0, 10.0), (1001.0, 10.0), (1002.0, 10.0)]
            .iter()
            .map(|&(d_model, n_layers)| ShapeRun { d_model, n_layers, params: 1e6, tokens: 1e7, loss: 2.0 })
            .collect();
        let e = fit_shape(&BESIROGLU, &close, 0, 0).unwrap_err().to_string();
        assert!(e.contains("2x the narrowest"), "{e}");
    }

    #[test]
    fn a_law_fitted_with_shape_is_net_of_the_shape_penalty() {
        // Law runs of several shapes, generated from besiroglu plus a known term (c = 0.03,
        // r_opt = 50): refitted net of the term, the law recovers besiroglu's E, alpha, beta, and
        // predicts the runs (with the term) exactly; fitted without the term, E absorbs the
        // average penalty.
        let term = FittedShape { c: 0.03, aspect_opt: 50.0, measured: (1.0, 1.0) };
        let shapes = [(256.0, 2.0), (128.0, 4.0), (64.0, 8.0)];
        let mut runs = Vec::new();
        for (k, n) in [1e7, 3e7, 1e8, 3e8, 1e9, 3e9].iter().enumerate() {
            for (j, d) in [1e9, 3e9, 1e10, 3e10, 1e11].iter().enumerate() {
                let (w, l) = shapes[(k + j) % 3];
                runs.push(ShapeRun {
                    d_model: w,
                    n_layers: l,
                    params: *n,
                    tokens: *d,
                    loss: BESIROGLU.loss(*n, *d) + term.at(w, l),
                });
            }
        }
        let shape_runs: Vec<ShapeRun> = shape_runs(0.03, 50.0, 0.0);
        let (fit, shape) = fit_law_with_shape(&runs, &shape_runs, 20, 0, &mut |_| true).unwrap();
        // Fitted against the first law (whose size slope is slightly off the truth across the shape
        // runs' 6.0-6.4e5 parameters): close, not exact.
        assert!((shape.term.c - 0.03).abs() < 1e-4 && (shape.term.aspect_opt - 50.0).abs() < 0.25, "{:?}", shape.term);
        let l = fit.law;
        assert_eq!(l.shape, Some(ShapeTerm::Fitted(shape.term)));
        for (got, want) in [(l.e, BESIROGLU.e), (l.alpha, BESIROGLU.alpha), (l.beta, BESIROGLU.beta)] {
            assert!((got - want).abs() < 0.02 * want, "{got} vs {want}");
        }
        for r in &runs {
            let pred = l.loss_of_shape(r.params, r.tokens, r.d_model, r.n_layers);
            assert!((pred - r.loss).abs() < 2e-3 * r.loss, "{pred} vs {}", r.loss);
        }
        assert!(fit.bootstrap.iter().all(|b| b.shape.is_some()));
        let plain: Vec<Run> = runs.iter().map(ShapeRun::plain).collect();
        let without = fit_law(&plain, 0, 0).unwrap().law;
        assert!(without.e > l.e, "{} vs {}", without.e, l.e);
    }
}
