//! Predicted final loss (nats per token of the law's reference vocabulary): a Chinchilla-form law
//! `L(N, D) = E + A / N^alpha + B / D^beta` plus the published evidence on what it leaves out,
//! each term in its own module with its source and uncertainty, each one that can be switched off:
//! - shape (`crate::shape`): Gemstones' width and depth terms, what a shape costs against the
//!   best of its size;
//! - vocabulary (`crate::vocab`): losses on one scale across vocabularies, data in reference
//!   tokens, N counted as the law's source counted it, Tao et al.'s embedding-capacity term;
//! - context (`crate::context`): a training context shorter than the evaluation context;
//! - batch (`crate::batch`): the tokens a batch far from Step Law's optimum wastes;
//! - repetition (`crate::repetition`): Muennighoff et al.'s decay of repeated data and of
//!   parameters beyond what the unique data can use.
//!
//! `loss = (E + A / N'^alpha) + (shape + vocabulary + context) + B / D'^beta`, where `N'` is N in
//! the law's convention after the repetition decay and `D'` the tokens trained, in reference
//! tokens, after the repetition decay and times the batch's token efficiency. Without any term
//! (`Law::plain`) it is the law as published, on the tokens and parameters as counted.

use crate::batch::BatchTerm;
use crate::context::ContextTerm;
use crate::error::{Error, Result};
use crate::fastmath::{exp_approx, ln_approx};
use crate::repetition::Repetition;
use crate::shape::ShapeTerm;
use crate::vocab::VocabTerm;

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

/// A Chinchilla-form scaling law and the evidence terms it is used with (each `None` when off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Law {
    pub e: f64,
    pub a: f64,
    pub b: f64,
    pub alpha: f64,
    pub beta: f64,
    pub params: ParamConvention,
    /// How the loss depends on shape at a fixed size and token count (`None`: it does not, the
    /// Chinchilla form's assumption, with Kaplan's 20-200 as the search's guard).
    pub shape: Option<ShapeTerm>,
    /// Vocabulary-independent losses and the vocabulary's capacity (`None`: per-token losses, N as
    /// counted).
    pub vocab: Option<VocabTerm>,
    /// The evaluation context and what a shorter training context costs (`None`: context is free).
    pub context: Option<ContextTerm>,
    /// Batch size as token efficiency (`None`: free, under Kaplan's critical batch as a cap).
    pub batch: Option<BatchTerm>,
    /// Repeated data (used only when unique data is limited).
    pub repetition: Repetition,
}

/// The names of the evidence terms, in the order shown (`--loss-terms`).
pub const TERM_NAMES: [&str; 5] = ["shape", "vocab", "context", "batch", "repetition"];

/// Kaplan et al. 2020 (Fig. 5): loss depends on shape by only a few percent for d_model / n_layers
/// of roughly 20 to 200. The aspect-ratio domain of a law without a shape term (its default guard).
pub const KAPLAN_ASPECT_RANGE: (f64, f64) = (20.0, 200.0);

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

/// The context of Chinchilla's runs (Gopher's setup, which Hoffmann et al. 2022 Sec. 4.1 say
/// Chinchilla shares: 2048 tokens), the default evaluation context of the built-in laws.
pub const CHINCHILLA_CONTEXT: f64 = 2048.0;

/// The vocabulary of Chinchilla's runs: SentencePiece, 32,000 tokens (model card). Their N counts
/// the blocks plus one 32,000 x d matrix (Table A9's sizes reproduce to 0.8% that way).
pub const CHINCHILLA_VOCAB: f64 = 32_000.0;

/// A law with every evidence term at its default, for runs of the reference vocabulary
/// `vocab` (one embedding matrix in N) evaluated at `context` tokens.
const fn with_evidence(e: f64, a: f64, b: f64, alpha: f64, beta: f64, vocab: f64, context: f64) -> Law {
    Law {
        e,
        a,
        b,
        alpha,
        beta,
        params: ParamConvention::Total,
        shape: Some(ShapeTerm::WidthDepth(crate::shape::GEMSTONES_COOL_END)),
        vocab: Some(VocabTerm::tao(vocab, 1.0)),
        context: Some(ContextTerm::xiong(context)),
        batch: Some(crate::batch::STEP_LAW),
        repetition: crate::repetition::MUENNIGHOFF,
    }
}

/// Besiroglu et al. 2024 (Epoch AI's replication of Chinchilla's approach 3, same data), with the
/// evidence terms. The default law: Hoffmann et al.'s printed coefficients do not fit their own
/// data (Besiroglu et al.) and put the compute-optimal split at about 93 tokens per parameter at
/// Chinchilla's budget, against the ~20 of Hoffmann's approaches 1 and 2 and of Chinchilla
/// itself; Besiroglu's refit gives 18 there (tested below).
pub const BESIROGLU: Law = with_evidence(1.8172, 482.01, 2085.43, 0.3478, 0.3658, CHINCHILLA_VOCAB, CHINCHILLA_CONTEXT);

/// Hoffmann et al. 2022 (Chinchilla), App. D.2 eq. 10, as printed, with the evidence terms.
pub const HOFFMANN: Law = with_evidence(1.69, 406.4, 410.7, 0.34, 0.28, CHINCHILLA_VOCAB, CHINCHILLA_CONTEXT);

/// Muennighoff et al. 2023's fit (C4, GPT-2's 50,257-token BPE, 2048-token context; repo
/// `huggingface/datablations`: E = e^0.6254804, A = e^6.255414, B = e^7.3049974, alpha = beta =
/// 0.3526596), with the evidence terms (its N assumed counted with one embedding matrix, as GPT-2
/// ties them; their text does not say).
pub const MUENNIGHOFF: Law =
    with_evidence(1.869_144, 520.824_952, 1_487.716_094, 0.352_659_6, 0.352_659_6, 50_257.0, CHINCHILLA_CONTEXT);

/// Every built-in law with its name, in the order shown to users (the first is the default).
pub const LAWS: [(&str, Law); 3] = [("besiroglu", BESIROGLU), ("hoffmann", HOFFMANN), ("muennighoff", MUENNIGHOFF)];

/// The default law's name.
pub const DEFAULT_LAW: &str = LAWS[0].0;

/// What the loss of one configuration depends on (counts, tokens).
///
/// A mixture of experts enters with its *active* parameters (those one token uses: `top_k +
/// shared_experts` experts and the router; [`crate::params::active_params`]), not its total. The
/// built-in laws were fitted on dense models, and a routed model is neither: Clark et al. 2022
/// ("Unified scaling laws for routed language models", ICML) find it performs like a dense model
/// larger than its active (dense-base) size and smaller than its total, the gain shrinking as
/// the base grows. The active count is the stated approximation: it errs towards a higher loss
/// (an upper estimate), and it is the count the model FLOPs follow (6 N_active per token).
/// Predictions of a mixture carry the `mixture_of_experts` validity flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossInput {
    /// Non-embedding parameters (active ones for a mixture of experts).
    pub non_embedding_params: f64,
    /// Parameters as counted (embeddings included, untied ones twice; active ones for a
    /// mixture of experts).
    pub total_params: f64,
    pub d_model: f64,
    pub n_layers: f64,
    pub vocab_size: f64,
    /// Training sequence length (tokens).
    pub seq_len: f64,
    pub tokens_per_step: f64,
    /// Tokens trained (of the model's own vocabulary).
    pub tokens: f64,
    /// Unique tokens of data, in reference tokens (`None`: unlimited).
    pub unique_tokens: Option<f64>,
}

impl LossInput {
    /// The input of `arch` trained on `tokens` tokens with `unique_tokens` unique ones (a
    /// mixture of experts with its active parameters, see [`LossInput`]).
    pub fn of(arch: &crate::architecture::Architecture, tokens: f64, unique_tokens: Option<f64>) -> LossInput {
        LossInput {
            non_embedding_params: crate::params::active_non_embedding_params(arch),
            total_params: crate::params::active_params(arch),
            d_model: f64::from(arch.d_model),
            n_layers: f64::from(arch.n_layers),
            vocab_size: f64::from(arch.vocab_size),
            seq_len: f64::from(arch.seq_len),
            tokens_per_step: arch.tokens_per_step(),
            tokens,
            unique_tokens,
        }
    }
}

/// One prediction's loss, term by term (nats per reference token), and what the law saw.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LossTerms {
    /// E.
    pub irreducible: f64,
    /// A / N'^alpha.
    pub params: f64,
    /// B / D'^beta.
    pub data: f64,
    pub shape: f64,
    pub vocab: f64,
    pub context: f64,
    /// The sum: (E + params) + (shape + vocab + context) + data.
    pub loss: f64,
    /// What the batch's token efficiency adds to `data` (>= 0; 0 without the term).
    pub batch: f64,
    /// What repeated data adds to `params + data` (>= 0; 0 with unlimited data).
    pub repetition: f64,
    /// N as the law counts it, before the repetition decay.
    pub law_params: f64,
    /// N' (after the repetition decay).
    pub effective_params: f64,
    /// The tokens trained in reference tokens (before the repetition decay and the batch).
    pub reference_tokens: f64,
    /// D' (what the data term sees).
    pub effective_tokens: f64,
    /// The batch's token efficiency (1 without the term).
    pub batch_efficiency: f64,
    /// Step Law's optimal batch for these tokens, in tokens per step of the model's vocabulary
    /// (0 without the batch term).
    pub optimal_batch_tokens: f64,
    /// Reference tokens per token (1 without the vocabulary term).
    pub reference_ratio: f64,
    /// The loss in bits per character, through the reference vocabulary's tokens per character
    /// (`loss x t(V_ref) / ln 2`; 0 without the vocabulary term): comparable across tokenizers.
    pub bits_per_char: f64,
}

impl Law {
    /// A built-in law by name.
    pub fn by_name(name: &str) -> Result<Law> {
        LAWS.iter().find(|(n, _)| *n == name).map(|&(_, law)| law).ok_or_else(|| {
            let names: Vec<_> = LAWS.iter().map(|(n, _)| format!("'{n}'")).collect();
            Error::invalid("law", format!("'{name}'"), &format!("one of {}", names.join(", ")))
        })
    }

    /// The law alone, as published: no shape, vocabulary, context or batch term, data-only
    /// repetition.
    pub fn plain(&self) -> Law {
        Law { shape: None, vocab: None, context: None, batch: None, repetition: crate::repetition::DATA_ONLY, ..*self }
    }

    /// This law with only the evidence terms named in `terms` (from [`TERM_NAMES`]) switched on,
    /// each at its default (a fitted shape term is kept when `shape` is named); the reference
    /// vocabulary and evaluation context are kept when on, else the Chinchilla ones.
    pub fn with_terms(&self, terms: &[&str]) -> Result<Law> {
        if let Some(bad) = terms.iter().find(|t| !TERM_NAMES.contains(t)) {
            return Err(Error::invalid("loss_terms", format!("'{bad}'"), &format!("names among {}", TERM_NAMES.join(", "))));
        }
        let on = |name: &str| terms.contains(&name);
        let default = with_evidence(0.0, 0.0, 0.0, 0.0, 0.0, CHINCHILLA_VOCAB, CHINCHILLA_CONTEXT);
        Ok(Law {
            shape: if on("shape") { self.shape.or(default.shape) } else { None },
            vocab: if on("vocab") { self.vocab.or(default.vocab) } else { None },
            context: if on("context") { self.context.or(default.context) } else { None },
            batch: if on("batch") { self.batch.or(default.batch) } else { None },
            repetition: if on("repetition") { crate::repetition::MUENNIGHOFF } else { crate::repetition::DATA_ONLY },
            ..*self
        })
    }

    /// The names of the evidence terms that are on, in [`TERM_NAMES`] order.
    pub fn term_names(&self) -> Vec<&'static str> {
        let on = [
            self.shape.is_some(),
            self.vocab.is_some(),
            self.context.is_some(),
            self.batch.is_some(),
            self.repetition.excess_params.is_some(),
        ];
        TERM_NAMES.iter().zip(on).filter(|(_, on)| *on).map(|(n, _)| *n).collect()
    }

    /// The law with `eval_context` tokens as its evaluation context (the context term on).
    pub fn with_eval_context(&self, eval_context: f64) -> Result<Law> {
        let context = ContextTerm { eval_context, ..self.context.unwrap_or(ContextTerm::xiong(CHINCHILLA_CONTEXT)) };
        context.validate()?;
        Ok(Law { context: Some(context), ..*self })
    }

    /// The base law's loss for `n_params` (in this law's convention) and `tokens` (no evidence
    /// term). Returns +inf when `tokens` is 0 (nothing trained).
    #[inline]
    pub fn loss(&self, n_params: f64, tokens: f64) -> f64 {
        self.e + self.param_term(n_params) + self.data_term(tokens)
    }

    /// The base law plus the shape term, on `n_params` and `tokens` as given: E + A / N^alpha + S
    /// + B / D^beta (what a law fitted with a shape term predicts for its own runs).
    #[inline]
    pub fn loss_of_shape(&self, n_params: f64, tokens: f64, d_model: f64, n_layers: f64) -> f64 {
        self.e + self.param_term(n_params) + self.shape_term(d_model, n_layers) + self.data_term(tokens)
    }

    /// The loss of `x`, term by term.
    pub fn terms(&self, x: &LossInput) -> LossTerms {
        let ratio = self.reference_ratio(x.vocab_size);
        let law_params = self.law_params(x.non_embedding_params, x.total_params, x.d_model);
        let effective_params = self.effective_params(law_params, x.unique_tokens);
        let params = self.param_term(effective_params);
        let extras = self.extras(x.d_model, x.n_layers, x.vocab_size, x.seq_len, law_params);
        let ln_d = self.ln_law_tokens(x.tokens, x.tokens_per_step, ratio, x.unique_tokens);
        let data = self.data_term_ln(ln_d);
        let loss = (self.e + params) + extras.sum() + data;
        let reference_tokens = x.tokens * ratio;
        let (batch_efficiency, optimal_batch_tokens) = match self.batch {
            Some(b) => {
                (b.efficiency(x.tokens_per_step * ratio, reference_tokens), b.optimal_batch_tokens(reference_tokens) / ratio)
            }
            None => (1.0, 0.0),
        };
        let repeated_data = match x.unique_tokens {
            Some(u) => self.repetition.effective_tokens(reference_tokens, u),
            None => reference_tokens,
        };
        let unbatched = self.data_term(repeated_data);
        let unrepeated = self.param_term(law_params) + self.data_term(reference_tokens * batch_efficiency);
        LossTerms {
            irreducible: self.e,
            params,
            data,
            shape: extras.shape,
            vocab: extras.vocab,
            context: extras.context,
            loss,
            batch: (data - unbatched).max(0.0),
            repetition: (params + data - unrepeated).max(0.0),
            law_params,
            effective_params,
            reference_tokens,
            effective_tokens: ln_d.exp(),
            batch_efficiency,
            optimal_batch_tokens,
            reference_ratio: ratio,
            bits_per_char: self.vocab.map_or(0.0, |v| loss * v.tokens_per_char.at(v.reference_vocab) / std::f64::consts::LN_2),
        }
    }

    /// The loss of `x` (nats per reference token): [`Law::terms`]'s sum.
    #[inline]
    pub fn loss_of(&self, x: &LossInput) -> f64 {
        self.loss_and_tokens(x).0
    }

    /// The loss of `x` and the tokens its data term sees (D'), computed as the search does.
    #[inline]
    pub fn loss_and_tokens(&self, x: &LossInput) -> (f64, f64) {
        let ratio = self.reference_ratio(x.vocab_size);
        let law_params = self.law_params(x.non_embedding_params, x.total_params, x.d_model);
        let fixed =
            self.fixed(law_params, x.unique_tokens, self.extras(x.d_model, x.n_layers, x.vocab_size, x.seq_len, law_params));
        let ln_d = self.ln_law_tokens(x.tokens, x.tokens_per_step, ratio, x.unique_tokens);
        (fixed + self.data_term_ln(ln_d), ln_d.exp())
    }

    /// N as this law counts it: total parameters with the embedding at the reference vocabulary
    /// (the vocabulary term on), as counted (off), or non-embedding (Kaplan's convention).
    #[inline]
    pub fn law_params(&self, non_embedding: f64, total: f64, d_model: f64) -> f64 {
        match (self.params, self.vocab) {
            (ParamConvention::Total, Some(v)) => non_embedding + v.reference_embedding_params(d_model),
            (ParamConvention::Total, None) => total,
            (ParamConvention::NonEmbedding, _) => non_embedding,
        }
    }

    /// Reference tokens per token of a `vocab_size` vocabulary (1 without the vocabulary term).
    #[inline]
    pub fn reference_ratio(&self, vocab_size: f64) -> f64 {
        self.vocab.map_or(1.0, |v| v.reference_ratio(vocab_size))
    }

    /// This law's compute-optimal parameter count for `tokens` tokens: the N whose compute-optimal
    /// D is `tokens`, `G (G D)^(beta / alpha)` (Muennighoff et al.'s `D_to_N`).
    pub fn params_for_tokens(&self, tokens: f64) -> f64 {
        let g = self.optimal_split_constant();
        g * (g * tokens).powf(self.beta / self.alpha)
    }

    /// `G = (alpha A / (beta B))^(1 / (alpha + beta))` (Hoffmann et al. 2022, eq. 4).
    fn optimal_split_constant(&self) -> f64 {
        (self.alpha * self.a / (self.beta * self.b)).powf(1.0 / (self.alpha + self.beta))
    }

    /// N' for `law_params` trained with `unique_tokens` unique (reference) tokens.
    #[inline]
    pub fn effective_params(&self, law_params: f64, unique_tokens: Option<f64>) -> f64 {
        match (unique_tokens, self.repetition.excess_params) {
            (Some(u), Some(_)) => self.repetition.effective_params(law_params, self.params_for_tokens(u)),
            _ => law_params,
        }
    }

    /// The evidence terms that do not depend on the tokens trained (nats per reference token).
    #[inline]
    pub fn extras(&self, d_model: f64, n_layers: f64, vocab_size: f64, seq_len: f64, law_params: f64) -> Extras {
        Extras {
            shape: self.shape_term(d_model, n_layers),
            vocab: self.vocab.map_or(0.0, |v| v.capacity(vocab_size, d_model)),
            context: self.context.map_or(0.0, |c| c.penalty(seq_len, law_params)),
        }
    }

    /// The part of the loss that does not depend on the tokens: (E + A / N'^alpha) + extras, in
    /// the order [`Law::terms`] adds it.
    #[inline]
    pub fn fixed(&self, law_params: f64, unique_tokens: Option<f64>, extras: Extras) -> f64 {
        (self.e + self.param_term(self.effective_params(law_params, unique_tokens))) + extras.sum()
    }

    /// ln D': the tokens trained (`tokens`, at `tokens_per_step`) in reference tokens (`ratio`),
    /// after the repetition decay (`unique_tokens`) and times the batch's token efficiency.
    #[inline]
    pub fn ln_law_tokens(&self, tokens: f64, tokens_per_step: f64, ratio: f64, unique_tokens: Option<f64>) -> f64 {
        let d_ref = tokens * ratio;
        let ln_d_ref = d_ref.ln();
        let ln_d = match unique_tokens {
            Some(u) => self.repetition.effective_tokens(d_ref, u).ln(),
            None => ln_d_ref,
        };
        match self.batch {
            Some(b) => ln_d + b.ln_efficiency_at(b.log_ratio((tokens_per_step * ratio).ln(), ln_d_ref)),
            None => ln_d,
        }
    }

    /// [`Law::ln_law_tokens`] without libm calls where it can (absolute error about 1e-13), for
    /// the search kernel's first pass, given `ln_batch` = [`Law::ln_batch_term`] of the tokens per
    /// step (computed once per batch and shape). Exact with limited unique data.
    #[inline(always)]
    pub fn ln_law_tokens_approx(
        &self,
        tokens: f64,
        tokens_per_step: f64,
        ln_tokens_per_step_ref: f64,
        ratio: f64,
        unique_tokens: Option<f64>,
    ) -> f64 {
        let d_ref = tokens * ratio;
        if unique_tokens.is_some() || !(1.0..1e300).contains(&d_ref) {
            return self.ln_law_tokens(tokens, tokens_per_step, ratio, unique_tokens);
        }
        let ln_d = ln_approx(d_ref);
        match self.batch {
            Some(b) => ln_d + b.ln_efficiency_at_approx(ln_tokens_per_step_ref - b.b_opt_exp * ln_d),
            None => ln_d,
        }
    }

    /// `ln(tokens_per_step x ratio / c)`, with `c` the batch term's `B_opt` coefficient (`ln(tokens_per_step x
    /// ratio)` without the batch term): what [`Law::ln_law_tokens_approx`] takes, once per batch.
    #[inline]
    pub fn ln_batch_term(&self, tokens_per_step: f64, ratio: f64) -> f64 {
        (tokens_per_step * ratio).ln() - self.batch.map_or(0.0, |b| b.b_opt_coef.ln())
    }

    /// The data term at `ln D'`: B exp(-beta ln D') (nats per reference token).
    #[inline]
    pub fn data_term_ln(&self, ln_tokens: f64) -> f64 {
        self.b * (-self.beta * ln_tokens).exp()
    }

    /// [`Law::data_term_ln`] without a libm call (relative error below
    /// [`DATA_TERM_APPROX_ERROR`]) where `-beta ln D'` is in [-700, 700].
    #[inline(always)]
    pub fn data_term_ln_approx(&self, ln_tokens: f64) -> f64 {
        let y = -self.beta * ln_tokens;
        if (-700.0..=700.0).contains(&y) {
            self.b * exp_approx(y)
        } else {
            self.data_term_ln_cold(ln_tokens)
        }
    }

    /// [`Law::data_term_ln`] out of line: LLVM treats `exp` as free of side effects and would
    /// otherwise compute a rarely taken exact branch on every call, then discard it.
    #[cold]
    #[inline(never)]
    pub fn data_term_ln_cold(&self, ln_tokens: f64) -> f64 {
        self.data_term_ln(ln_tokens)
    }

    /// The aspect ratios d_model / n_layers this law has evidence for: those its shape term was
    /// measured on, or [`KAPLAN_ASPECT_RANGE`] without one.
    pub fn aspect_domain(&self) -> (f64, f64) {
        self.shape.map_or(KAPLAN_ASPECT_RANGE, |s| s.measured_aspect())
    }

    /// The shape term at `d_model` x `n_layers` (nats/token); 0 without one.
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
        self.data_term_ln(tokens.ln())
    }

    /// The parameters and tokens that minimise this law's loss for `flops` training FLOPs under
    /// Chinchilla's C = 6 N D (Hoffmann et al. 2022, eq. 4 and App. D.2): N_opt = G (C/6)^a,
    /// D_opt = (C/6)^b / G, a = beta / (alpha + beta), b = alpha / (alpha + beta),
    /// G = (alpha A / (beta B))^(1 / (alpha + beta)). Its tokens per parameter, D_opt / N_opt, is the
    /// law's own compute-optimal ratio at that budget (about 20 only for some fits).
    pub fn compute_optimal(&self, flops: f64) -> (f64, f64) {
        let s = self.alpha + self.beta;
        let g = self.optimal_split_constant();
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
    /// tokens >= 1, without a libm call. Below one token (or not finite) it is the exact term.
    #[inline(always)]
    pub fn data_term_approx(&self, tokens: f64) -> f64 {
        power_term_approx(self.b, self.beta, tokens).unwrap_or_else(|| self.data_term_cold(tokens))
    }

    /// The tokens at which the data term B / D^beta equals `x` (> 0): D = (B / x)^(1 / beta).
    #[inline]
    pub fn tokens_for_data_term(&self, x: f64) -> f64 {
        (self.b / x).powf(1.0 / self.beta)
    }

    /// [`Law::data_term`] out of line (see [`Law::data_term_ln_cold`]).
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

    /// Checks the coefficients (finite; E >= 0, A, B > 0, exponents in (0, 2]) and every term.
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
        self.shape.as_ref().map_or(Ok(()), ShapeTerm::validate)?;
        self.vocab.as_ref().map_or(Ok(()), VocabTerm::validate)?;
        self.context.as_ref().map_or(Ok(()), ContextTerm::validate)?;
        self.batch.as_ref().map_or(Ok(()), BatchTerm::validate)?;
        self.repetition.validate()
    }

    /// Picks the parameter count this law expects, as counted (the plain law's N; see
    /// [`Law::law_params`] for the evidence terms' count).
    #[inline]
    pub fn n_for(&self, total_params: f64, non_embedding_params: f64) -> f64 {
        match self.params {
            ParamConvention::Total => total_params,
            ParamConvention::NonEmbedding => non_embedding_params,
        }
    }
}

/// The evidence terms that do not depend on the tokens (nats per reference token).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Extras {
    pub shape: f64,
    pub vocab: f64,
    pub context: f64,
}

impl Extras {
    /// (shape + vocab) + context.
    #[inline]
    pub fn sum(&self) -> f64 {
        (self.shape + self.vocab) + self.context
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repetition;

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
        // Besiroglu's refit (the default law, why): G = (0.3478 x 482.01 / (0.3658 x 2085.43))^(1/0.7136)
        // = 0.219758^1.401345 = 0.119 55; N = 0.11955 x 9.6e22^0.512612 = 7.27e10, D = 1.32e12:
        // 18.2 tokens per parameter, Chinchilla's own 70B on 1.4T (20).
        let (n, d) = BESIROGLU.compute_optimal(5.76e23);
        assert!((n / 7.27e10 - 1.0).abs() < 0.01 && (d / n - 18.2).abs() < 0.2, "{n} {d}");
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
                let ln = tokens.ln();
                let (approx, exact) = (law.data_term_ln_approx(ln), law.data_term_ln(ln));
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
    fn approximate_law_tokens_match() {
        for law in [BESIROGLU, BESIROGLU.plain()] {
            for (tokens, tps) in [(1.0, 512.0), (1e9, 4096.0), (3e10, 1e6), (1e12, 1e5), (5e13, 3e7)] {
                let ratio = law.reference_ratio(128_000.0);
                let exact = law.ln_law_tokens(tokens, tps, ratio, None);
                let approx = law.ln_law_tokens_approx(tokens, tps, law.ln_batch_term(tps, ratio), ratio, None);
                assert!((approx - exact).abs() < 1e-12 * exact.abs().max(1.0), "{tokens} {tps}: {approx} vs {exact}");
            }
        }
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
    fn laws_by_name() {
        let l = Law::by_name("besiroglu").unwrap();
        assert_eq!(l.b, 2085.43);
        assert_eq!(DEFAULT_LAW, "besiroglu");
        let e = Law::by_name("kaplan").unwrap_err().to_string();
        assert!(e.contains("'besiroglu', 'hoffmann', 'muennighoff'"), "{e}");
    }

    fn input(n: f64, tokens: f64, unique: Option<f64>) -> LossInput {
        LossInput {
            non_embedding_params: n,
            total_params: n,
            d_model: 4096.0,
            n_layers: 32.0,
            vocab_size: 50_257.0,
            seq_len: 2048.0,
            tokens_per_step: 1e6,
            tokens,
            unique_tokens: unique,
        }
    }

    #[test]
    fn muennighoff_readme_examples() {
        // Their README (`huggingface/datablations`, "Parametric Fit"): L(6.34e9, 242e9, 25e9) =
        // 2.2256, L(8.67e9, 178e9, 25e9) = 2.2270: their law, both decays, N and D as given.
        let law = Law { repetition: repetition::MUENNIGHOFF, ..MUENNIGHOFF.plain() };
        let l1 = law.loss_of(&input(6.34e9, 242e9, Some(25e9)));
        let l2 = law.loss_of(&input(8.67e9, 178e9, Some(25e9)));
        assert!((l1 - 2.2256).abs() < 1e-3 && (l2 - 2.2270).abs() < 1e-3, "{l1} {l2}");
        // Their intermediate figures: N_opt(25e9) = G^2 x 25e9 = 1.274663e9 (alpha = beta).
        assert!((law.params_for_tokens(25e9) / 1.274_663e9 - 1.0).abs() < 1e-5);
        // The data decay alone (the plain law) is more optimistic about the extra parameters.
        let plain = MUENNIGHOFF.plain().loss_of(&input(6.34e9, 242e9, Some(25e9)));
        assert!(plain < l1 - 0.015, "{plain} {l1}"); // 2.2075 against 2.2256
    }

    #[test]
    fn terms_add_up_and_plain_is_the_published_law() {
        let x = LossInput { vocab_size: 32_000.0, seq_len: 1024.0, tokens_per_step: 4e6, ..input(1e9, 2e10, None) };
        let t = BESIROGLU.terms(&x);
        assert_eq!(t.loss, BESIROGLU.loss_of(&x));
        let sum = (t.irreducible + t.params) + (t.shape + t.vocab) + t.context + t.data;
        assert!((sum - t.loss).abs() < 1e-12);
        // 4e6 tokens per step is far above Step Law's optimum for 2e10 tokens: the batch costs.
        assert!(t.batch > 0.0 && t.batch_efficiency < 1.0 && t.context > 0.0 && t.shape > 0.0, "{t:?}");
        // The plain law is E + A / N^alpha + B / D^beta on the parameters and tokens as counted.
        let plain = BESIROGLU.plain();
        assert_eq!(plain.loss_of(&x), plain.loss(1e9, 2e10));
        assert_eq!(plain.term_names(), Vec::<&str>::new());
        assert_eq!(BESIROGLU.term_names(), TERM_NAMES.to_vec());
        assert_eq!(BESIROGLU.with_terms(&["shape"]).unwrap().term_names(), vec!["shape"]);
        assert!(BESIROGLU.with_terms(&["colour"]).is_err());
    }

    #[test]
    fn untying_and_vocabulary_change_n_only_as_the_source_counted() {
        // With the vocabulary term, N = non-embedding + 32,000 d whatever the vocabulary and tying.
        let l = BESIROGLU;
        assert_eq!(l.law_params(1e8, 1e8 + 2.0 * 256_000.0 * 768.0, 768.0), 1e8 + 32_000.0 * 768.0);
        assert_eq!(l.plain().law_params(1e8, 3e8, 768.0), 3e8);
    }
}
