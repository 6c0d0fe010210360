//! Repeated data: Muennighoff et al. 2023, "Scaling Data-Constrained Language Models" (Sec. 3;
//! repo `huggingface/datablations`, README "Parametric Fit"). With `U_D` unique tokens, training
//! on `D > U_D` tokens repeats `R_D = D / U_D - 1` epochs, worth `D' = U_D + U_D R_D* (1 -
//! exp(-R_D / R_D*))` fresh tokens; parameters beyond what `U_D` tokens can use, `U_N =
//! min(N, N_opt(U_D))` with `R_N = N / U_N - 1`, are worth `N' = U_N + U_N R_N* (1 - exp(-R_N /
//! R_N*))`. `N_opt(U_D)` is the law's own compute-optimal size for `U_D` tokens,
//! `G (G U_D)^(beta / alpha)`, `G = (alpha A / (beta B))^(1 / (alpha + beta))` (their `D_to_N`).

/// The two half-lives of repeated value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Repetition {
    /// `R_D*`: repeated epochs of data lose value with this half-life (epochs).
    pub data: f64,
    /// `R_N*` for parameters in excess of what the unique data can use (`None`: not modelled,
    /// the plain law's data-only form).
    pub excess_params: Option<f64>,
}

/// Muennighoff et al.'s fitted constants (`rd_star = 15.387756`, `rn_star = 5.309743`).
pub const MUENNIGHOFF: Repetition = Repetition { data: 15.387_756, excess_params: Some(5.309_743) };

/// The data decay alone (the plain law).
pub const DATA_ONLY: Repetition = Repetition { excess_params: None, ..MUENNIGHOFF };

/// `U + U R* (1 - exp(-R / R*))` with `R = x / U - 1` for `x > U`, else `x`: what `x` (tokens or
/// parameters) is worth when only `unique` of it is new.
#[inline]
pub fn decayed(x: f64, unique: f64, half_life: f64) -> f64 {
    if x <= unique {
        return x;
    }
    let repeats = x / unique - 1.0;
    unique + unique * half_life * (1.0 - (-repeats / half_life).exp())
}

impl Repetition {
    /// Tokens the law sees for `tokens` trained on `unique` unique tokens (all of them: tokens).
    #[inline]
    pub fn effective_tokens(&self, tokens: f64, unique: f64) -> f64 {
        decayed(tokens, unique, self.data)
    }

    /// Parameters the law sees for `params` trained on `unique` unique tokens, with the law's
    /// compute-optimal size for them `n_opt` (parameters).
    #[inline]
    pub fn effective_params(&self, params: f64, n_opt: f64) -> f64 {
        match self.excess_params {
            Some(r) => decayed(params, n_opt.min(params), r),
            None => params,
        }
    }

    pub fn validate(&self) -> crate::error::Result<()> {
        for (field, v) in [("repetition.data", Some(self.data)), ("repetition.excess_params", self.excess_params)] {
            if let Some(v) = v {
                if !(v.is_finite() && v > 0.0) {
                    return Err(crate::error::Error::invalid(field, v, "a finite number of epochs > 0"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_by_hand() {
        // U = 1e9, D = 3e9: R_D = 2, 2 / 15.387756 = 0.129973, e^-0.129973 = 0.878119,
        // 1 - 0.878119 = 0.121881, x 15.387756 = 1.875479 -> D' = 2.875479e9.
        assert!((MUENNIGHOFF.effective_tokens(3e9, 1e9) / 2.875_479e9 - 1.0).abs() < 1e-6);
        assert_eq!(MUENNIGHOFF.effective_tokens(5e8, 1e9), 5e8);
        // Infinitely many repeats saturate at U (1 + R*) = 16.387756 U.
        assert!((MUENNIGHOFF.effective_tokens(1e15, 1e9) / 16.387_756e9 - 1.0).abs() < 1e-6);
        assert_eq!(DATA_ONLY.effective_params(5e9, 1e9), 5e9);
        // N = 2 N_opt: R_N = 1, 1 - e^(-1 / 5.309743) = 0.171661, x 5.309743 = 0.911477 -> 1.911477 N_opt.
        assert!((MUENNIGHOFF.effective_params(2e9, 1e9) / 1.911_477e9 - 1.0).abs() < 1e-6);
    }
}
