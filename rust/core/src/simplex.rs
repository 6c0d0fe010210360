//! Nelder-Mead (Nelder & Mead 1965; the standard coefficients: reflection 1, expansion 2,
//! contraction 1/2, shrink 1/2) on five parameters, resumable so a caller can stop between
//! iterations: the optimiser of the law fit ([`crate::law_fit`]).

/// Nelder-Mead from a start, resumable: [`Simplex::advance`] runs a number of iterations, so a fit
/// can stop between them (Ctrl-C) and the result is the same however the iterations are grouped.
pub(crate) struct Simplex {
    points: Vec<([f64; 5], f64)>,
    pub(crate) iterations: usize,
    converged: bool,
}

impl Simplex {
    /// Iterations at most per start.
    pub(crate) const MAX_ITERATIONS: usize = 4000;

    pub(crate) fn new(start: [f64; 5], f: &(dyn Fn(&[f64; 5]) -> f64 + Sync)) -> Self {
        let mut points: Vec<([f64; 5], f64)> = Vec::with_capacity(6);
        points.push((start, f(&start)));
        for i in 0..5 {
            let mut p = start;
            p[i] += if i < 3 { 0.5 } else { 0.05 };
            points.push((p, f(&p)));
        }
        Simplex { points, iterations: 0, converged: false }
    }

    pub(crate) fn done(&self) -> bool {
        self.converged || self.iterations >= Self::MAX_ITERATIONS
    }

    /// Runs up to `n` more iterations (fewer once converged or at [`Self::MAX_ITERATIONS`]).
    pub(crate) fn advance(&mut self, n: usize, f: &(dyn Fn(&[f64; 5]) -> f64 + Sync)) {
        let simplex = &mut self.points;
        for _ in 0..n {
            if self.iterations >= Self::MAX_ITERATIONS {
                return;
            }
            self.iterations += 1;
            simplex.sort_by(|x, y| x.1.total_cmp(&y.1));
            if (simplex[5].1 - simplex[0].1).abs() <= 1e-14 * (1.0 + simplex[0].1.abs()) {
                self.converged = true;
                return;
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
    }

    /// (best point, objective).
    pub(crate) fn best(mut self) -> ([f64; 5], f64) {
        self.points.sort_by(|x, y| x.1.total_cmp(&y.1));
        self.points[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_a_quadratic_bowl_and_rounds_do_not_change_it() {
        // f = sum (x_k - k)^2 has its minimum 0 at (0, 1, 2, 3, 4), by hand.
        let f = |t: &[f64; 5]| t.iter().enumerate().map(|(k, x)| (x - k as f64).powi(2)).sum::<f64>();
        let start = [5.0, 5.0, 0.5, 0.5, 0.2];
        let mut whole = Simplex::new(start, &f);
        whole.advance(Simplex::MAX_ITERATIONS, &f);
        let mut rounds = Simplex::new(start, &f);
        while !rounds.done() {
            rounds.advance(7, &f);
        }
        // The same start advanced in one go or round by round reaches the same point, bit for bit.
        assert_eq!(whole.iterations, rounds.iterations);
        let (point, value) = whole.best();
        assert_eq!((point, value), rounds.best());
        assert!(value < 1e-12, "{value}");
        for (k, x) in point.iter().enumerate() {
            assert!((x - k as f64).abs() < 1e-5, "{point:?}");
        }
    }
}
