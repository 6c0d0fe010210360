//! Pareto set over (predicted loss, total parameters), both minimised: the configurations for
//! which no other feasible configuration is at least as good on both and better on one.

use std::cmp::Ordering;

/// A feasible configuration as the search ranks it. `index` is its position in the search space's
/// enumeration order, which breaks every tie, so results never depend on thread count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub index: u64,
    /// Predicted loss (nats/token).
    pub loss: f64,
    /// Total parameters (count).
    pub params: f64,
}

impl Candidate {
    /// Ranking for "best" and top K: lower loss, then fewer parameters, then lower index.
    #[inline]
    pub fn rank_cmp(&self, other: &Self) -> Ordering {
        self.loss.total_cmp(&other.loss).then(self.params.total_cmp(&other.params)).then(self.index.cmp(&other.index))
    }

    /// `self` takes `other`'s place in the Pareto set: it dominates it, or equals it on both
    /// objectives with a lower index (equal points are represented by the lowest index).
    #[inline]
    pub fn covers(&self, other: &Self) -> bool {
        self.params <= other.params
            && self.loss <= other.loss
            && (self.loss < other.loss || self.params < other.params || self.index < other.index)
    }

    /// `self` dominates `other`: no worse on both objectives, strictly better on one.
    pub fn dominates(&self, other: &Self) -> bool {
        self.loss <= other.loss && self.params <= other.params && (self.loss < other.loss || self.params < other.params)
    }
}

/// The Pareto set of `points`, sorted by increasing parameters (so decreasing loss).
/// O(n log n): sort by (params, loss, index), then keep each point whose loss is strictly below
/// every point before it. Points identical in both objectives are represented by the lowest index.
pub fn pareto_front(mut points: Vec<Candidate>) -> Vec<Candidate> {
    points.sort_unstable_by(|a, b| a.params.total_cmp(&b.params).then(a.loss.total_cmp(&b.loss)).then(a.index.cmp(&b.index)));
    let mut front: Vec<Candidate> = Vec::new();
    for p in points {
        if front.last().is_none_or(|last| p.loss < last.loss) {
            front.push(p);
        }
    }
    front
}

/// A Pareto set built incrementally: each offered point is first checked against the current
/// front by binary search (O(log F)); points not covered wait in a buffer that is merged into the
/// front when it fills, so sorting stays proportional to the few points that survive.
#[derive(Debug, Clone, Default)]
pub struct ParetoBuilder {
    /// Pareto set so far, sorted by increasing params (so decreasing loss).
    front: Vec<Candidate>,
    pending: Vec<Candidate>,
}

impl ParetoBuilder {
    const FLUSH: usize = 1024;

    #[inline]
    pub fn offer(&mut self, c: Candidate) {
        // The front point with the largest params <= c.params has the lowest loss among them.
        let i = self.front.partition_point(|f| f.params <= c.params);
        if i > 0 && self.front[i - 1].covers(&c) {
            return;
        }
        self.pending.push(c);
        // Merged when as many wait as the front holds (at least 32, at most FLUSH): the front a
        // caller checks against stays current from the start, at amortised O(log) per point.
        if self.pending.len() >= self.front.len().clamp(32, Self::FLUSH) {
            self.flush();
        }
    }

    /// Whether a point of the front (pending points aside) has at most `params` parameters and a
    /// loss below `loss`: then it covers every point with these parameters and a loss >= `loss`,
    /// which the caller need not compute.
    #[inline]
    pub fn certainly_covers(&self, params: f64, loss: f64) -> bool {
        let i = self.front.partition_point(|f| f.params <= params);
        i > 0 && self.front[i - 1].loss < loss
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.front.append(&mut self.pending);
            self.front = pareto_front(std::mem::take(&mut self.front));
        }
    }

    pub fn finish(mut self) -> Vec<Candidate> {
        self.flush();
        self.front
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: u64, loss: f64, params: f64) -> Candidate {
        Candidate { index, loss, params }
    }

    #[test]
    fn small_example_by_hand() {
        // (loss, params): A(3, 10) B(2, 20) C(2.5, 30) dominated by B, D(1, 40), E(2, 20) equal to B.
        let pts = vec![c(0, 3.0, 10.0), c(1, 2.0, 20.0), c(2, 2.5, 30.0), c(3, 1.0, 40.0), c(4, 2.0, 20.0)];
        let front = pareto_front(pts.clone());
        let idx: Vec<u64> = front.iter().map(|p| p.index).collect();
        assert_eq!(idx, vec![0, 1, 3]);
        for p in &pts {
            let member = idx.contains(&p.index);
            let dominated_or_equal = front.iter().any(|f| f.dominates(p) || (f.loss == p.loss && f.params == p.params));
            assert!(member || dominated_or_equal);
        }
    }

    #[test]
    fn incremental_builder_equals_batch_front() {
        let mut x: u64 = 7;
        let mut pts = Vec::new();
        for i in 0..20_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            pts.push(c(i, f64::from((x >> 40) as u32 % 300) / 100.0, f64::from((x >> 20) as u32 % 900)));
        }
        let mut b = ParetoBuilder::default();
        for p in &pts {
            b.offer(*p);
        }
        assert_eq!(b.finish(), pareto_front(pts));
    }

    #[test]
    fn non_dominated_and_complete_on_a_grid() {
        // Deterministic pseudo-random points; check both Pareto properties exhaustively.
        let mut x: u64 = 12345;
        let mut pts = Vec::new();
        for i in 0..2000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let loss = f64::from((x >> 40) as u32 % 500) / 100.0;
            let params = f64::from((x >> 20) as u32 % 700);
            pts.push(c(i, loss, params));
        }
        let front = pareto_front(pts.clone());
        for f in &front {
            assert!(!pts.iter().any(|p| p.dominates(f)), "member dominated");
        }
        for p in &pts {
            if !front.iter().any(|f| f.index == p.index) {
                assert!(front.iter().any(|f| f.dominates(p) || (f.loss == p.loss && f.params == p.params)));
            }
        }
    }
}
