//! How the loss depends on a model's shape (width d_model, depth n_layers) at a fixed parameter
//! count and token count: the default width-depth term from McLeish et al. 2025 (Gemstones), or a
//! log-parabola in d_model / n_layers fitted to a user's own runs (`fit-law --shape-runs`).
//!
//! Both are *penalties* on top of a Chinchilla-form law, zero at the best shape: the law's own
//! runs (Hoffmann et al. 2022; Besiroglu et al. 2024) are conventional, near-optimal shapes, so
//! the law describes the best shape of a size and the term adds what another shape of the same
//! size costs.

use crate::error::{Error, Result};

/// A shape term: nats/token added to the loss of a model `d_model` wide and `n_layers` deep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ShapeTerm {
    /// The default: Gemstones' width and depth terms, relative to the best shape of the same size.
    WidthDepth(WidthDepth),
    /// A log-parabola fitted to the user's runs.
    Fitted(FittedShape),
}

impl ShapeTerm {
    /// The penalty (nats/token) at `d_model` / `n_layers`; >= 0.
    #[inline]
    pub fn at(&self, d_model: f64, n_layers: f64) -> f64 {
        match self {
            ShapeTerm::WidthDepth(w) => w.penalty(d_model, n_layers),
            ShapeTerm::Fitted(f) => f.at(d_model, n_layers),
        }
    }

    /// The aspect ratios d_model / n_layers the term was measured on.
    pub fn measured_aspect(&self) -> (f64, f64) {
        match self {
            ShapeTerm::WidthDepth(w) => w.measured_aspect,
            ShapeTerm::Fitted(f) => f.measured,
        }
    }

    /// The depths the term was measured on (`None`: not recorded, a fitted term).
    pub fn measured_layers(&self) -> Option<(f64, f64)> {
        match self {
            ShapeTerm::WidthDepth(w) => Some(w.measured_layers),
            ShapeTerm::Fitted(_) => None,
        }
    }

    /// The shape (d_model, n_layers; continuous) this term prices best among those of the size
    /// of `d_model` x `n_layers` (the same `n_layers x d_model^2`).
    pub fn best_shape(&self, d_model: f64, n_layers: f64) -> (f64, f64) {
        let size = n_layers * d_model * d_model;
        match self {
            ShapeTerm::WidthDepth(w) => {
                let (w, l, _) = w.best_shape(size);
                (w, l)
            }
            ShapeTerm::Fitted(f) => {
                let l = (size / (f.aspect_opt * f.aspect_opt)).cbrt();
                (f.aspect_opt * l, l)
            }
        }
    }

    /// Short name for output: `gemstones` or `fitted`.
    pub fn kind(&self) -> &'static str {
        match self {
            ShapeTerm::WidthDepth(_) => "gemstones",
            ShapeTerm::Fitted(_) => "fitted",
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            ShapeTerm::WidthDepth(w) => w.validate(),
            ShapeTerm::Fitted(f) => f.validate(),
        }
    }
}

/// The width and depth terms of McLeish et al. 2025's width-depth law (Gemstones, arXiv
/// 2502.06857; repo `mcleish7/gemstone-scaling-laws`, `depth_width.py`):
/// `L = E + A_w w^-a_w + A_l l^-a_l + A_N N^-a_N + A_D D^-a_D` with w = d_model, l = n_layers,
/// fitted to 22 shapes (50M to 2B parameters, 10 to 350B tokens). At a fixed size the width and
/// depth terms `S(w, l) = A_w w^-a_w + A_l l^-a_l` are what shape changes; the penalty of a shape
/// is `S(w, l)` minus its minimum over the shapes of the same size, i.e. the same `l w^2` (a
/// block's parameters grow as w^2 when heads and d_ff scale with the width). That minimum is at
/// `w* = (a_w A_w / (2 a_l A_l) (l w^2)^a_l)^(1 / (a_w + 2 a_l))`, `l* = l w^2 / w*^2` (setting
/// dS/dw = 0 along l = K / w^2). Unit: nats/token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WidthDepth {
    pub a_w: f64,
    pub alpha_w: f64,
    pub a_l: f64,
    pub alpha_l: f64,
    /// d_model / n_layers of the runs it was fitted on.
    pub measured_aspect: (f64, f64),
    /// n_layers of the runs it was fitted on.
    pub measured_layers: (f64, f64),
}

/// Gemstones' shapes: d_model / n_layers from 3.2 (256 x 80) to 320 (2560 x 8), 3 to 80 layers
/// (`../shared/data/loss/shape-runs.csv`, 22 shapes).
const GEMSTONES_ASPECT: (f64, f64) = (3.2, 320.0);
const GEMSTONES_LAYERS: (f64, f64) = (3.0, 80.0);

/// The fit to the ends of 10% cool-downs (`parameters_delta-4/..._cool_end.json`, A = exp of the
/// stored log-coefficient): the decayed final losses a training run ends with. The default.
pub const GEMSTONES_COOL_END: WidthDepth = WidthDepth {
    a_w: 5.1426,
    alpha_w: 0.30147,
    a_l: 0.9748,
    alpha_l: 0.36555,
    measured_aspect: GEMSTONES_ASPECT,
    measured_layers: GEMSTONES_LAYERS,
};

/// The fit to constant-learning-rate checkpoints up to 100B tokens (`..._hot.json`).
pub const GEMSTONES_HOT: WidthDepth = WidthDepth {
    a_w: 4.2717,
    alpha_w: 0.24469,
    a_l: 0.9249,
    alpha_l: 0.38715,
    measured_aspect: GEMSTONES_ASPECT,
    measured_layers: GEMSTONES_LAYERS,
};

/// The fit to constant-learning-rate checkpoints of 10 to 350B tokens (`..._hot_100b+.json`).
pub const GEMSTONES_HOT_100B: WidthDepth = WidthDepth {
    a_w: 2.9507,
    alpha_w: 0.21958,
    a_l: 0.8036,
    alpha_l: 0.47589,
    measured_aspect: GEMSTONES_ASPECT,
    measured_layers: GEMSTONES_LAYERS,
};

/// The three published fits: their spread is the default term's uncertainty (they disagree by up
/// to a factor of 2 on a penalty).
pub const GEMSTONES_FITS: [WidthDepth; 3] = [GEMSTONES_COOL_END, GEMSTONES_HOT, GEMSTONES_HOT_100B];

impl WidthDepth {
    /// `S(w, l) = A_w w^-a_w + A_l l^-a_l` (nats/token).
    #[inline]
    pub fn raw(&self, d_model: f64, n_layers: f64) -> f64 {
        self.a_w * d_model.powf(-self.alpha_w) + self.a_l * n_layers.powf(-self.alpha_l)
    }

    /// The shape (d_model, n_layers, S) with the lowest `S` among those with `n_layers x d_model^2
    /// = layer_width_sq` (continuous: the depth need not be whole).
    pub fn best_shape(&self, layer_width_sq: f64) -> (f64, f64, f64) {
        let w = (self.alpha_w * self.a_w / (2.0 * self.alpha_l * self.a_l) * layer_width_sq.powf(self.alpha_l))
            .powf(1.0 / (self.alpha_w + 2.0 * self.alpha_l));
        let l = layer_width_sq / (w * w);
        (w, l, self.raw(w, l))
    }

    /// The penalty of `d_model` x `n_layers` against the best shape of its size (nats/token, >= 0).
    #[inline]
    pub fn penalty(&self, d_model: f64, n_layers: f64) -> f64 {
        let best = self.best_shape(n_layers * d_model * d_model).2;
        (self.raw(d_model, n_layers) - best).max(0.0)
    }

    /// Positive, finite coefficients; the measured ranges ordered.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in
            [("shape.a_w", self.a_w), ("shape.alpha_w", self.alpha_w), ("shape.a_l", self.a_l), ("shape.alpha_l", self.alpha_l)]
        {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(field, v, "a finite number > 0"));
            }
        }
        for (field, (lo, hi)) in [("shape.aspect_range", self.measured_aspect), ("shape.layers_range", self.measured_layers)] {
            if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
                return Err(Error::invalid(
                    field,
                    format!("[{}, {}]", crate::error::number(lo), crate::error::number(hi)),
                    "[lo, hi] with 0 < lo <= hi, finite",
                ));
            }
        }
        Ok(())
    }
}

/// The smallest and largest penalty the three Gemstones fits give `d_model` x `n_layers`
/// (nats/token): the default term's uncertainty.
pub fn gemstones_penalty_range(d_model: f64, n_layers: f64) -> (f64, f64) {
    GEMSTONES_FITS.iter().map(|f| f.penalty(d_model, n_layers)).fold((f64::INFINITY, 0.0), |(lo, hi), p| (lo.min(p), hi.max(p)))
}

/// A shape term fitted to a user's runs: S(r) = c (ln(r / r_opt))^2 nats/token with r = d_model /
/// n_layers, zero at the best aspect ratio r_opt, growing with the log-distance from it. The form
/// is the least that has an optimum (a parabola in ln r), as Kaplan et al. 2020 (Fig. 5) see the
/// loss rise on both sides of a broad optimum in d_model / n_layers at a fixed parameter count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FittedShape {
    /// Curvature, nats/token per (ln aspect)^2; >= 0.
    pub c: f64,
    /// The aspect ratio d_model / n_layers of the lowest loss; > 0.
    pub aspect_opt: f64,
    /// The smallest and largest aspect ratios of the runs the term was fitted on: the shapes the
    /// law has evidence for.
    pub measured: (f64, f64),
}

impl FittedShape {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemstones_penalty_by_hand() {
        // Cool-end fit, 768 x 3 (l w^2 = 1,769,472): S = 5.1426 x 768^-0.30147 + 0.9748 x 3^-0.36555
        // = 5.1426 x 0.134943 + 0.9748 x 0.669250 = 0.693958 + 0.652385 = 1.346342.
        // w* = (0.30147 x 5.1426 / (2 x 0.36555 x 0.9748) x 1,769,472^0.36555)^(1 / 1.03257)
        //    = (2.175377 x 192.2646)^0.968457 = 418.248^0.968457 = 345.74; l* = 1,769,472 / 345.74^2
        //    = 14.803; S* = 5.1426 x 345.74^-0.30147 + 0.9748 x 14.803^-0.36555 = 0.88273 + 0.36399
        //    = 1.24672. Penalty 0.09962 nats/token: the 3-layer model of Gemstones' smallest group
        // is its worst (+8.1% measured against the group's best, shape-runs.csv).
        let s = GEMSTONES_COOL_END.raw(768.0, 3.0);
        assert!((s - 1.346342).abs() < 2e-6, "{s}");
        let (w, l, best) = GEMSTONES_COOL_END.best_shape(3.0 * 768.0 * 768.0);
        assert!((w - 345.74).abs() < 0.01 && (l - 14.803).abs() < 0.001 && (best - 1.24672).abs() < 1e-5, "{w} {l} {best}");
        let p = GEMSTONES_COOL_END.penalty(768.0, 3.0);
        assert!((p - 0.09962).abs() < 1e-5, "{p}");
        // The best shape costs nothing, and every shape of its size costs more.
        assert!(GEMSTONES_COOL_END.penalty(w, l) < 1e-12);
        for f in [0.5, 0.8, 1.25, 2.0] {
            let (w2, l2) = (w * f, l / (f * f));
            assert!(GEMSTONES_COOL_END.penalty(w2, l2) > 0.0);
        }
    }

    #[test]
    fn wider_than_best_costs_more_the_further_and_fits_agree_within_a_factor_of_about_two() {
        // ~1e8 non-embedding parameters (l w^2 = 8.3e6): aspect 64, 128, 192, 512 and 2 layers
        // cost more and more under every fit; the fits' spread stays within about 2x where the
        // penalty matters (aspect >= 128).
        let lw2 = 1e8 / 12.0;
        let at = |aspect: f64| {
            let l = (lw2 / (aspect * aspect)).cbrt();
            (aspect * l, l)
        };
        let mut last = 0.0;
        for aspect in [64.0, 128.0, 192.0, 512.0] {
            let (w, l) = at(aspect);
            let (lo, hi) = gemstones_penalty_range(w, l);
            assert!(lo > last && hi <= 2.6 * lo, "{aspect}: {lo} {hi}");
            last = lo;
        }
        let (lo, _) = gemstones_penalty_range((lw2 / 2.0).sqrt(), 2.0);
        assert!(lo > 0.15, "{lo}");
    }

    #[test]
    fn fitted_parabola_by_hand() {
        // c = 0.05, r_opt = 40: at d 640, 4 layers (r = 160) S = 0.05 x ln(4)^2 = 0.05 x 1.921812 = 0.0960906.
        let f = FittedShape { c: 0.05, aspect_opt: 40.0, measured: (10.0, 200.0) };
        assert!((f.at(640.0, 4.0) - 0.096_090_6).abs() < 1e-7);
        assert_eq!(f.at(80.0, 2.0), 0.0);
        assert!(FittedShape { c: -1.0, ..f }.validate().is_err());
    }
}
