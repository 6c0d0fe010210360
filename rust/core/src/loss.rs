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

/// A Chinchilla-form scaling law.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Law {
    pub e: f64,
    pub a: f64,
    pub b: f64,
    pub alpha: f64,
    pub beta: f64,
    pub params: ParamConvention,
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
pub const HOFFMANN: Law = Law { e: 1.69, a: 406.4, b: 410.7, alpha: 0.34, beta: 0.28, params: ParamConvention::Total };

/// Besiroglu et al. 2024 (Epoch AI's replication of Chinchilla's approach 3), same data.
pub const BESIROGLU: Law = Law { e: 1.8172, a: 482.01, b: 2085.43, alpha: 0.3478, beta: 0.3658, params: ParamConvention::Total };

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

    /// The parameter term A / N^alpha (nats/token), computed as A exp(-alpha ln N): the same
    /// number to rounding, several times cheaper than a general `powf` in the search's inner loop.
    #[inline]
    pub fn param_term(&self, n_params: f64) -> f64 {
        self.a * (-self.alpha * n_params.ln()).exp()
    }

    /// The data term B / D^beta (nats/token), as B exp(-beta ln D); +inf for D = 0.
    #[inline]
    pub fn data_term(&self, tokens: f64) -> f64 {
        self.b * (-self.beta * tokens.ln()).exp()
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
        Ok(())
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
