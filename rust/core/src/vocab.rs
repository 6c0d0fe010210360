//! Vocabulary size: how many tokens a text is, what a larger embedding buys, and how losses of
//! different vocabularies are compared. Source: Tao et al. 2024, "Scaling Laws with Vocabulary"
//! (arXiv:2407.13623; repo `sail-sg/scaling-with-vocab`).
//!
//! A per-token loss means nothing across tokenizers (a token of a larger vocabulary carries more
//! text). Losses here are in **nats per reference token**: nats per character times the
//! characters in one token of the law's own vocabulary (32,000 for Hoffmann's and Besiroglu's
//! fits). At the reference vocabulary this is the ordinary per-token loss; at any other it is the
//! same text's loss on the same scale. So, with the vocabulary term:
//! - the data the law sees is counted in reference tokens: `D_ref = D x t(V_ref) / t(V)`, with
//!   `t(V)` Tao et al.'s tokens per character (a larger vocabulary packs more text in a token);
//! - the law's N counts the embedding at the reference vocabulary, as its source did (Hoffmann et
//!   al. 2022's Table A9 sizes are the blocks plus one 32,000 x d matrix: tied), so neither the
//!   vocabulary nor untying changes N;
//! - what a vocabulary's embedding capacity buys is Tao et al.'s vocabulary term `A2 / N_v^alpha2`
//!   (`N_v = V d` in millions, one matrix) against the reference's: `A2 ((V d)^-alpha2 -
//!   (V_ref d)^-alpha2)`, below 0 for a larger vocabulary.
//!
//! What a larger vocabulary costs (the output layer's FLOPs, its memory and MEMCPY) is in the step
//! time, so the time budget decides, as Tao et al.'s FLOPs budget does. Tao et al.'s own data term
//! is not used: the base law's, on reference tokens, stands for it.

use crate::error::{Error, Result};

/// Tao et al.'s tokens per character of a BPE vocabulary of `V` tokens (repo `utils.py`,
/// `H_to_D`, fitted on SlimPajama): `t(V) = c2 ln^2 V + c1 ln V + c0`, V capped at `cap`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokensPerChar {
    pub c2: f64,
    pub c1: f64,
    pub c0: f64,
    /// Vocabulary beyond which `t` stays constant (200,000 in Tao et al.'s code).
    pub cap: f64,
}

/// Tao et al.'s fit: `t(32000) = 0.2524`, `t(128000) = 0.2294` tokens per character.
pub const TAO_TOKENS_PER_CHAR: TokensPerChar =
    TokensPerChar { c2: 0.006_392_22, c1: -0.158_110_69, c0: 1.204_701_22, cap: 200_000.0 };

impl TokensPerChar {
    /// Tokens per character of a vocabulary of `vocab_size` tokens.
    #[inline]
    pub fn at(&self, vocab_size: f64) -> f64 {
        let l = vocab_size.min(self.cap).ln();
        self.c2 * l * l + self.c1 * l + self.c0
    }

    /// Finite coefficients, a cap >= 2, and a positive result over every vocabulary from 2 tokens
    /// to the cap (checked at both ends and at the parabola's vertex).
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [("tokens_per_char.c2", self.c2), ("tokens_per_char.c1", self.c1), ("tokens_per_char.c0", self.c0)] {
            if !v.is_finite() {
                return Err(Error::invalid(field, v, "a finite number"));
            }
        }
        if !(self.cap.is_finite() && self.cap >= 2.0) {
            return Err(Error::invalid("tokens_per_char.cap", self.cap, "a finite vocabulary size >= 2"));
        }
        let (lo, hi) = (2f64.ln(), self.cap.ln());
        let vertex = if self.c2 != 0.0 { (-self.c1 / (2.0 * self.c2)).clamp(lo, hi) } else { lo };
        for l in [lo, hi, vertex] {
            let t = self.c2 * l * l + self.c1 * l + self.c0;
            if !(t.is_finite() && t > 0.0) {
                return Err(Error::invalid(
                    "tokens_per_char",
                    format!("{} at a vocabulary of {}", crate::error::number(t), crate::error::number(l.exp())),
                    "coefficients giving more than 0 tokens per character for every vocabulary up to the cap",
                ));
            }
        }
        Ok(())
    }
}

/// Tao et al.'s Approach 3 law, `L_u = -E + A1 / N_nv^alpha1 + A2 / N_v^alpha2 + B / D^beta`
/// (unigram-normalised loss; `N_nv` and `N_v = V d` in millions, `D` in billions of tokens;
/// constants from `optimal_Nv_predict.py`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TaoLaw {
    pub e: f64,
    pub a1: f64,
    pub alpha1: f64,
    pub a2: f64,
    pub alpha2: f64,
    pub b: f64,
    pub beta: f64,
}

pub const TAO: TaoLaw = TaoLaw {
    e: 5.532_784_680_333_743_5,
    a1: 1.831_385_155_955_412_6,
    alpha1: 0.446_606_341_520_096_15,
    a2: 0.195_842_383_986_656_38,
    alpha2: 0.670_737_467_989_679_5,
    b: 2.124_112_312_006_495_5,
    beta: 0.446_606_341_520_096_15,
};

impl TaoLaw {
    /// The vocabulary term `A2 / N_v^alpha2` of `vocab_size` x `d_model` (nats/token).
    #[inline]
    pub fn vocab_term(&self, vocab_size: f64, d_model: f64) -> f64 {
        self.a2 * (vocab_size * d_model * 1e-6).powf(-self.alpha2)
    }

    /// `L_u` for `non_vocab` parameters, a `vocab_size` x `d_model` embedding and `tokens` tokens.
    pub fn loss_u(&self, non_vocab: f64, vocab_size: f64, d_model: f64, tokens: f64) -> f64 {
        -self.e
            + self.a1 * (non_vocab * 1e-6).powf(-self.alpha1)
            + self.vocab_term(vocab_size, d_model)
            + self.b * (tokens * 1e-9).powf(-self.beta)
    }
}

/// Tao et al.'s width for a non-vocabulary size (`optimal_Nv_predict.py`, `Nnv_to_d`).
pub fn tao_width(non_vocab: f64) -> f64 {
    const STEPS: [(f64, f64); 13] = [
        (50e6, 512.0),
        (200e6, 768.0),
        (500e6, 1024.0),
        (1e9, 1536.0),
        (2e9, 2048.0),
        (5e9, 3200.0),
        (10e9, 4096.0),
        (20e9, 5120.0),
        (50e9, 6048.0),
        (100e9, 8192.0),
        (200e9, 12288.0),
        (500e9, 16384.0),
        (1e12, 20480.0),
    ];
    STEPS.iter().find(|&&(n, _)| non_vocab <= n).map_or(24576.0, |&(_, d)| d)
}

/// The vocabulary that minimises Tao et al.'s `L_u` for `non_vocab` parameters at the FLOPs their
/// Approach 1 calls compute-optimal for that size, `C = (N_nv / e^-2.48465)^2`, with the width
/// of [`tao_width`] and the tokens those FLOPs buy, `D = C / (6 (N_nv + V d))` (their procedure,
/// `optimal_Nv_predict.py`; they solve dL/dV = 0, here a golden-section search over ln V from 1K
/// to 10M). Reproduces their Table 1 (Approach 3): about 60K for 7B, 218K for 70B.
pub fn tao_optimal_vocab(non_vocab: f64) -> f64 {
    let d = tao_width(non_vocab);
    let flops = (non_vocab / (-2.484_651_016_162_519_3f64).exp()).powi(2);
    let loss = |ln_v: f64| {
        let v = ln_v.exp();
        TAO.loss_u(non_vocab, v, d, flops / (6.0 * (non_vocab + v * d)))
    };
    let (mut lo, mut hi) = (1e3f64.ln(), 1e7f64.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..200 {
        let (a, b) = (hi - g * (hi - lo), lo + g * (hi - lo));
        if loss(a) < loss(b) {
            hi = b;
        } else {
            lo = a;
        }
    }
    (0.5 * (lo + hi)).exp()
}

/// The vocabulary term of a law: its reference vocabulary and how tokens turn into text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VocabTerm {
    /// The vocabulary of the law's own runs (tokens); losses are per token of it.
    pub reference_vocab: f64,
    /// Embedding matrices of the reference vocabulary the law's N counted (1: one V x d matrix).
    pub reference_embeddings: f64,
    pub tokens_per_char: TokensPerChar,
    pub tao: TaoLaw,
    /// Multiplies the capacity term (1 by default; the uncertainty scenarios move it by
    /// [`VOCAB_UNCERTAINTY`]).
    pub scale: f64,
}

/// Vocabularies Tao et al. measured (4,096 to 96K tokens): outside, the term is an extrapolation.
pub const MEASURED_VOCAB: (f64, f64) = (4096.0, 98_304.0);

/// Relative uncertainty of the vocabulary's capacity term (one corpus, models up to 1.13B
/// non-vocabulary parameters, one tokenizer family; its constants carried from Tao et al.'s
/// unigram-normalised loss to a Chinchilla-form law).
pub const VOCAB_UNCERTAINTY: f64 = 0.5;

impl VocabTerm {
    /// The default for a law fitted at `reference_vocab` with `reference_embeddings` matrices in N.
    pub const fn tao(reference_vocab: f64, reference_embeddings: f64) -> VocabTerm {
        VocabTerm { reference_vocab, reference_embeddings, tokens_per_char: TAO_TOKENS_PER_CHAR, tao: TAO, scale: 1.0 }
    }

    /// Reference tokens per token of a `vocab_size` vocabulary: `t(V_ref) / t(V)`.
    #[inline]
    pub fn reference_ratio(&self, vocab_size: f64) -> f64 {
        self.tokens_per_char.at(self.reference_vocab) / self.tokens_per_char.at(vocab_size)
    }

    /// The embedding parameters the law's N counts for a model `d_model` wide.
    #[inline]
    pub fn reference_embedding_params(&self, d_model: f64) -> f64 {
        self.reference_embeddings * self.reference_vocab * d_model
    }

    /// What `vocab_size` changes in the loss through the embedding's capacity, against the
    /// reference vocabulary at the same width (nats per reference token; < 0 when larger).
    #[inline]
    pub fn capacity(&self, vocab_size: f64, d_model: f64) -> f64 {
        self.scale * (self.tao.vocab_term(vocab_size, d_model) - self.tao.vocab_term(self.reference_vocab, d_model))
    }

    pub fn validate(&self) -> Result<()> {
        crate::error::Range::new(2.0, 1e8, "tokens").check("vocab.reference_vocab", self.reference_vocab)?;
        crate::error::Range::new(0.0, 2.0, "matrices")
            .or_zero()
            .check("vocab.reference_embeddings", self.reference_embeddings)?;
        if !(self.scale.is_finite() && self.scale >= 0.0) {
            return Err(Error::invalid("vocab.scale", self.scale, "a finite number >= 0"));
        }
        self.tokens_per_char.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_per_char_by_hand() {
        // ln 32000 = 10.373491: 0.00639222 x 107.6093 - 0.15811069 x 10.373491 + 1.20470122
        // = 0.687862 - 1.640159 + 1.204701 = 0.252404. ln 128000 = 11.759786:
        // 0.883998 - 1.859349 + 1.204701 = 0.229350. Beyond 200,000 it stays at t(200000).
        assert!((TAO_TOKENS_PER_CHAR.at(32_000.0) - 0.252_404).abs() < 1e-6);
        assert!((TAO_TOKENS_PER_CHAR.at(128_000.0) - 0.229_350).abs() < 1e-6);
        assert_eq!(TAO_TOKENS_PER_CHAR.at(256_000.0), TAO_TOKENS_PER_CHAR.at(200_000.0));
        let v = VocabTerm::tao(32_000.0, 1.0);
        assert!((v.reference_ratio(128_000.0) - 0.252_404 / 0.229_350).abs() < 1e-5);
        assert!(TokensPerChar { c0: -5.0, ..TAO_TOKENS_PER_CHAR }.validate().is_err());
    }

    #[test]
    fn capacity_by_hand() {
        // d 1024: N_v = 32.768 M at 32K, 131.072 M at 128K. 32.768^-0.670737 = e^(-0.670737 x
        // 3.489453) = 0.096279, 131.072^-0.670737 = e^(-0.670737 x 4.875747) = 0.037993; x A2
        // 0.195842: 0.018855 and 0.007441, so 128K buys 0.011415 nats per reference token.
        let v = VocabTerm::tao(32_000.0, 1.0);
        let c = v.capacity(128_000.0, 1024.0);
        assert!((c + 0.011_415).abs() < 2e-6, "{c}");
        assert_eq!(v.capacity(32_000.0, 1024.0), 0.0);
    }

    #[test]
    fn optimal_vocabulary_matches_tao_et_al() {
        // Their Table 1, Approach 3 (a secondary transcription; the abstract, primary, says "at
        // least 216K" for 70B): 3B 37K, 7B 60K, 13B 81K, 70B 218K. No row for 1e9; their code
        // (`optimal_Nv_predict.py`, run on these constants) gives 29,550 there.
        for (n, paper) in [(3e9, 37_000.0), (7e9, 60_000.0), (1.3e10, 81_000.0), (7e10, 218_000.0)] {
            let v = tao_optimal_vocab(n);
            assert!((v / paper - 1.0).abs() < 0.02, "{n}: {v} vs {paper}");
        }
        assert!((tao_optimal_vocab(1e9) / 29_550.0 - 1.0).abs() < 0.01);
    }
}
