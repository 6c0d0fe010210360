//! The transformer being costed: one struct holding every hyperparameter the cost model reads.
//!
//! The model is a decoder-only, pre-norm transformer in the LLaMA style: token embedding, `n_layers`
//! blocks of (RMSNorm, attention with rotary positions, residual add, RMSNorm, MLP, residual add), a
//! final RMSNorm and an output projection to the vocabulary (tied to the embedding or not). No biases,
//! no learned position embeddings; RMSNorm has one weight vector of `d_model`.
//!
//! The MLP is dense, or in every block a mixture of experts (MoE; Shazeer et al. 2017, GShard,
//! Mixtral, DeepSeekMoE): a router (`d_model x experts`, no bias) scores each token, the token goes
//! to its `top_k` best routed experts, each an MLP of the block's kind and width `d_ff`, plus
//! `shared_experts` experts every token goes to (Dai et al. 2024, DeepSeekMoE), and the expert
//! outputs are summed weighted by the router's scores. `d_ff` is the width of ONE expert (the
//! published configurations' `d_ff` / `moe_intermediate_size`).

use crate::error::{Error, Result};

/// MLP kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mlp {
    /// Two matrices: `d_model x d_ff` up, GELU, `d_ff x d_model` down.
    Gelu,
    /// Three matrices: gate and up (`d_model x d_ff` each, computed as one `d_model x 2 d_ff`
    /// matmul), SiLU(gate) * up, `d_ff x d_model` down (Shazeer 2020).
    Swiglu,
}

impl Mlp {
    /// Number of `d_model x d_ff` matrices in the block.
    pub fn n_matrices(self) -> u32 {
        match self {
            Mlp::Gelu => 2,
            Mlp::Swiglu => 3,
        }
    }
    /// Width of the input projection's output (`d_ff`, or `2 d_ff` for the fused gate+up).
    pub fn input_width_factor(self) -> u32 {
        self.n_matrices() - 1
    }
    pub fn name(self) -> &'static str {
        match self {
            Mlp::Gelu => "gelu",
            Mlp::Swiglu => "swiglu",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "gelu" => Ok(Mlp::Gelu),
            "swiglu" => Ok(Mlp::Swiglu),
            _ => Err(Error::invalid("mlp", format!("'{s}'"), "'gelu' or 'swiglu'")),
        }
    }
}

/// Attention implementation, which decides what attention reads, writes and saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attention {
    /// Scores and probabilities (`batch x heads x seq x seq`) are written to and read from HBM.
    Materialized,
    /// FlashAttention (Dao et al. 2022): scores stay on chip; only Q, K, V, the output and the
    /// per-row log-sum-exp touch HBM.
    Flash,
}

impl Attention {
    pub fn name(self) -> &'static str {
        match self {
            Attention::Materialized => "materialized",
            Attention::Flash => "flash",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "materialized" => Ok(Attention::Materialized),
            "flash" => Ok(Attention::Flash),
            _ => Err(Error::invalid("attention", format!("'{s}'"), "'materialized' or 'flash'")),
        }
    }
}

/// Activation recomputation (checkpointing): what the backward pass recomputes instead of saving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Recompute {
    /// Every activation the backward pass reads is saved in the forward pass.
    None,
    /// Only each block's input is saved; the block's forward runs again, one block at a time,
    /// during the backward pass (PyTorch `checkpoint` per block; llm-foundry's
    /// `activation_checkpointing`). The logits projection and the loss are not recomputed.
    Full,
    /// Megatron-LM's selective recomputation (Korthikanti et al. 2022): the attention core
    /// (scores, softmax, probabilities @ V) runs again in the backward pass; its outputs and the
    /// `batch x heads x seq^2` probabilities are not saved.
    Selective,
}

impl Recompute {
    pub const NAMES: [&'static str; 3] = ["none", "full", "selective"];
    pub fn name(self) -> &'static str {
        match self {
            Recompute::None => "none",
            Recompute::Full => "full",
            Recompute::Selective => "selective",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "none" => Ok(Recompute::None),
            "full" => Ok(Recompute::Full),
            "selective" => Ok(Recompute::Selective),
            _ => Err(Error::invalid("recompute", format!("'{s}'"), "'none', 'full' or 'selective'")),
        }
    }
}

/// Bytes per element of the three kinds of tensor a training step touches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Precision {
    /// Master parameters and their gradients (default 4: fp32).
    pub param_bytes: f64,
    /// Activations and activation gradients (default 2: bf16).
    pub activation_bytes: f64,
    /// Each of AdamW's two moment estimates (default 4: fp32).
    pub optimizer_bytes: f64,
}

impl Default for Precision {
    fn default() -> Self {
        Precision { param_bytes: 4.0, activation_bytes: 2.0, optimizer_bytes: 4.0 }
    }
}

impl Precision {
    /// Each figure is bytes per element in [0.5, 8] (4-bit to fp64).
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("param_bytes", self.param_bytes),
            ("activation_bytes", self.activation_bytes),
            ("optimizer_bytes", self.optimizer_bytes),
        ] {
            if !Self::accepts(v) {
                return Err(Error::invalid(field, v, "bytes per element in [0.5, 8] (e.g. 2 for bf16, 4 for fp32)"));
            }
        }
        Ok(())
    }

    /// Whether `v` is an accepted figure (bytes per element in [0.5, 8]; NaN is not).
    #[inline]
    pub fn accepts(v: f64) -> bool {
        (0.5..=8.0).contains(&v)
    }

    /// [`Precision::validate`] without building an error (every figure accepted).
    #[inline]
    pub fn is_valid(&self) -> bool {
        Self::accepts(self.param_bytes) & Self::accepts(self.activation_bytes) & Self::accepts(self.optimizer_bytes)
    }
}

/// Depth factors [`Architecture::reshaped`] accepts: a thousandth to a thousand times the depth.
pub const DEPTH_FACTOR: crate::error::Range = crate::error::Range::new(1e-3, 1e3, "a factor on the depth");

/// Largest accepted value of any single dimension: keeps every product of dimensions the cost
/// model forms (at most four factors, e.g. batch x heads x seq x seq) exactly representable in f64.
pub const MAX_DIM: u32 = 1 << 24;

/// A dimension given as any integer (from Python, a file, a column) as the core's `u32`, or an
/// error naming `field` and the accepted range [1, [`MAX_DIM`]].
pub fn dim(field: &str, v: impl Into<i128>) -> Result<u32> {
    crate::error::integer_in(field, v.into(), 1, MAX_DIM.into())
}

/// Whether `v` is an accepted dimension, in [1, [`MAX_DIM`]] (branch-free, for checking whole
/// columns at once).
#[inline]
pub fn in_dim_range(v: i64) -> bool {
    (v as u64).wrapping_sub(1) < u64::from(MAX_DIM)
}

/// Most routed (or shared) experts per MoE layer: twice Switch-C's 2048 (Fedus et al. 2022, the
/// most of any published routed model trained end to end; DeepSeek-V3 has 256, Kimi K2 384).
/// Keeps every expert count times any dimension product of the cost model finite and small.
pub const MAX_EXPERTS: u32 = 4096;

/// Whether (`experts`, `top_k`, `shared_experts`) is an accepted mixture: all three 0 (a dense
/// MLP), or `experts` in [1, [`MAX_EXPERTS`]], `top_k` in [1, `experts`] and `shared_experts` in
/// [0, [`MAX_EXPERTS`]] (branch-free: `validate` is hot in the search).
#[inline(always)]
pub fn moe_accepts(experts: u32, top_k: u32, shared_experts: u32) -> bool {
    let dense = (experts | top_k | shared_experts) == 0;
    let routed = (experts <= MAX_EXPERTS) & (top_k.wrapping_sub(1) < experts) & (shared_experts <= MAX_EXPERTS);
    dense | routed
}

/// One transformer configuration with its training batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Architecture {
    pub d_model: u32,
    pub n_layers: u32,
    pub n_heads: u32,
    /// Key/value heads (grouped-query attention); `n_heads` means ordinary multi-head attention.
    pub n_kv_heads: u32,
    pub head_dim: u32,
    /// Hidden width of the MLP; of ONE expert in a mixture of experts.
    pub d_ff: u32,
    pub mlp: Mlp,
    pub attention: Attention,
    /// Output projection shares the embedding matrix.
    pub tied_embeddings: bool,
    /// Tokens per sequence.
    pub seq_len: u32,
    /// Sequences per optimizer step.
    pub batch_size: u32,
    pub vocab_size: u32,
    pub precision: Precision,
    pub recompute: Recompute,
    /// Sequences per micro-step on one chip (gradient accumulation): `None` runs the whole
    /// per-chip batch in one micro-step. Must divide the per-chip batch.
    pub micro_batch: Option<u32>,
    /// Routed experts per MoE layer (count; every block is an MoE layer). 0: a dense MLP (the
    /// default). In [0, [`MAX_EXPERTS`]].
    pub experts: u32,
    /// Routed experts each token goes to (count; GShard and Mixtral: 2, DeepSeek-V3: 8). 0 when
    /// dense; in [1, `experts`] otherwise.
    pub top_k: u32,
    /// Experts every token goes to besides its routed ones (count; DeepSeekMoE's shared experts,
    /// Dai et al. 2024: DeepSeek-V3 has 1). 0 when dense: shared experts without routed ones
    /// would be a dense MLP of another width, which `d_ff` says (refused, not guessed).
    pub shared_experts: u32,
}

/// What kind of value an architecture field holds, as files and bindings spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A positive integer (a dimension or count).
    Int,
    /// A non-negative integer count (experts).
    Count,
    /// A positive integer or none (`micro_batch`).
    OptionalInt,
    /// Bytes per number.
    Float,
    Bool,
    /// One of a few names (`mlp`, `attention`, `recompute`).
    Text,
}

impl FieldKind {
    pub fn name(self) -> &'static str {
        match self {
            FieldKind::Int => "int",
            FieldKind::Count => "count",
            FieldKind::OptionalInt => "optional int",
            FieldKind::Float => "float",
            FieldKind::Bool => "bool",
            FieldKind::Text => "text",
        }
    }
}

/// One field's value ([`Architecture::field`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue {
    Int(u32),
    Float(f64),
    Bool(bool),
    Text(&'static str),
    None,
}

impl Architecture {
    /// Every field a user gives (the constructor's keywords, a measurement file's columns, the
    /// plain-data form), in order, with its kind: the one list the bindings, the file readers and
    /// the tests read. A new field is added here and in [`Architecture::field`].
    pub const FIELDS: [(&'static str, FieldKind); 20] = [
        ("d_model", FieldKind::Int),
        ("n_layers", FieldKind::Int),
        ("n_heads", FieldKind::Int),
        ("n_kv_heads", FieldKind::Int),
        ("head_dim", FieldKind::Int),
        ("d_ff", FieldKind::Int),
        ("mlp", FieldKind::Text),
        ("attention", FieldKind::Text),
        ("tied_embeddings", FieldKind::Bool),
        ("seq_len", FieldKind::Int),
        ("batch_size", FieldKind::Int),
        ("vocab_size", FieldKind::Int),
        ("param_bytes", FieldKind::Float),
        ("activation_bytes", FieldKind::Float),
        ("optimizer_bytes", FieldKind::Float),
        ("recompute", FieldKind::Text),
        ("micro_batch", FieldKind::OptionalInt),
        ("experts", FieldKind::Count),
        ("top_k", FieldKind::Count),
        ("shared_experts", FieldKind::Count),
    ];

    /// The value of the field `name` (one of [`Architecture::FIELDS`]); `None` for another name.
    pub fn field(&self, name: &str) -> Option<FieldValue> {
        use FieldValue::{Bool, Float, Int, Text};
        Some(match name {
            "d_model" => Int(self.d_model),
            "n_layers" => Int(self.n_layers),
            "n_heads" => Int(self.n_heads),
            "n_kv_heads" => Int(self.n_kv_heads),
            "head_dim" => Int(self.head_dim),
            "d_ff" => Int(self.d_ff),
            "mlp" => Text(self.mlp.name()),
            "attention" => Text(self.attention.name()),
            "tied_embeddings" => Bool(self.tied_embeddings),
            "seq_len" => Int(self.seq_len),
            "batch_size" => Int(self.batch_size),
            "vocab_size" => Int(self.vocab_size),
            "param_bytes" => Float(self.precision.param_bytes),
            "activation_bytes" => Float(self.precision.activation_bytes),
            "optimizer_bytes" => Float(self.precision.optimizer_bytes),
            "recompute" => Text(self.recompute.name()),
            "micro_batch" => self.micro_batch.map_or(FieldValue::None, Int),
            "experts" => Int(self.experts),
            "top_k" => Int(self.top_k),
            "shared_experts" => Int(self.shared_experts),
            _ => return None,
        })
    }

    /// Whether the MLP is a mixture of experts (`experts > 0`).
    #[inline]
    pub fn is_moe(&self) -> bool {
        self.experts > 0
    }
    /// Expert MLPs each token passes through (`top_k + shared_experts`; 1 for a dense MLP): the
    /// factor on the MLP's per-token FLOPs and activations.
    #[inline]
    pub fn experts_per_token(&self) -> f64 {
        if self.is_moe() {
            f64::from(self.top_k) + f64::from(self.shared_experts)
        } else {
            1.0
        }
    }
    /// Expert MLPs whose weights a layer holds (`experts + shared_experts`; 1 for a dense MLP).
    #[inline]
    pub fn experts_held(&self) -> f64 {
        if self.is_moe() {
            f64::from(self.experts) + f64::from(self.shared_experts)
        } else {
            1.0
        }
    }

    /// Sequences per micro-step (the whole batch when `micro_batch` is `None`).
    #[inline]
    pub fn micro_batch_size(&self) -> u32 {
        self.micro_batch.unwrap_or(self.batch_size)
    }
    /// Micro-steps (forward + backward) per optimizer step: `batch_size / micro_batch`.
    #[inline]
    pub fn micro_steps(&self) -> f64 {
        f64::from(self.batch_size) / f64::from(self.micro_batch_size())
    }
    /// Tokens of one micro-step (`micro_batch x seq_len`).
    #[inline]
    pub fn tokens_per_micro_step(&self) -> f64 {
        f64::from(self.micro_batch_size()) * f64::from(self.seq_len)
    }
    /// Width of all query heads together (`n_heads x head_dim`); equals `d_model` in most models.
    #[inline]
    pub fn q_dim(&self) -> f64 {
        f64::from(self.n_heads) * f64::from(self.head_dim)
    }
    /// Width of all key (or all value) heads together (`n_kv_heads x head_dim`).
    #[inline]
    pub fn kv_dim(&self) -> f64 {
        f64::from(self.n_kv_heads) * f64::from(self.head_dim)
    }
    /// Tokens processed per optimizer step (`batch_size x seq_len`).
    #[inline]
    pub fn tokens_per_step(&self) -> f64 {
        f64::from(self.batch_size) * f64::from(self.seq_len)
    }

    /// The same model reshaped at about the same non-embedding parameters: depth x `depth_factor`,
    /// width / sqrt(`depth_factor`) (parameters per layer grow as width squared), the width rounded
    /// to whole groups of (KV group x head_dim), `d_ff` kept in proportion. `None` when the rounding
    /// leaves the depth or the width as it was (a one-layer model has no shallower alternative).
    /// Used to show what a deeper-narrower or wider-shallower alternative would do. `depth_factor`
    /// outside [`DEPTH_FACTOR`] is an error.
    pub fn reshaped(&self, depth_factor: f64) -> Result<Option<Architecture>> {
        DEPTH_FACTOR.check("depth_factor", depth_factor)?;
        Ok(self.reshaped_by(depth_factor))
    }

    fn reshaped_by(&self, depth_factor: f64) -> Option<Architecture> {
        let group = self.n_heads / self.n_kv_heads.max(1);
        let n_layers = ((f64::from(self.n_layers) * depth_factor).round() as u32).max(1);
        let unit = f64::from(self.head_dim * group);
        let d_model = (((f64::from(self.d_model) / depth_factor.sqrt() / unit).round() * unit) as u32).max(self.head_dim * group);
        if n_layers == self.n_layers || d_model == self.d_model {
            return None;
        }
        let n_heads = d_model / self.head_dim;
        let d_ff = (f64::from(self.d_ff) / f64::from(self.d_model) * f64::from(d_model)).round() as u32;
        let a = Architecture { d_model, n_layers, n_heads, n_kv_heads: n_heads / group, d_ff: d_ff.max(1), ..*self };
        a.validate().ok().map(|()| a)
    }

    /// Checks every field against its accepted range. Errors name the field and the range.
    /// Inlined: `build` writes the fields one by one and a call here read them back with wide
    /// loads that wait for those stores (`perf annotate`; validation fell from 18.7% to 16.2% of
    /// `evaluate`'s CPU time).
    #[inline(always)]
    pub fn validate(&self) -> Result<()> {
        let micro_ok = match self.micro_batch {
            Some(mb) => mb != 0 && mb <= self.batch_size && self.batch_size.is_multiple_of(mb),
            None => true,
        };
        let kv_ok = self.n_kv_heads != 0 && self.n_kv_heads <= self.n_heads && self.n_heads.is_multiple_of(self.n_kv_heads);
        let dims_ok = [
            self.d_model,
            self.n_layers,
            self.n_heads,
            self.n_kv_heads,
            self.head_dim,
            self.d_ff,
            self.seq_len,
            self.batch_size,
            self.vocab_size,
        ]
        .iter()
        .fold(true, |ok, &v| ok & in_dim_range(i64::from(v)));
        let moe_ok = moe_accepts(self.experts, self.top_k, self.shared_experts);
        // The common case without building (or branching towards) an error; the same checks
        // again below, in order, name the first that fails.
        if dims_ok & micro_ok & kv_ok & moe_ok & self.precision.is_valid() {
            return Ok(());
        }
        self.first_error(micro_ok, kv_ok)
    }

    #[cold]
    #[inline(never)]
    fn first_error(&self, micro_ok: bool, kv_ok: bool) -> Result<()> {
        let dims = [
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("head_dim", self.head_dim),
            ("d_ff", self.d_ff),
            ("seq_len", self.seq_len),
            ("batch_size", self.batch_size),
            ("vocab_size", self.vocab_size),
        ];
        for (field, v) in dims {
            dim(field, i64::from(v))?;
        }
        if let (Some(mb), false) = (self.micro_batch, micro_ok) {
            return Err(Error::invalid(
                "micro_batch",
                mb,
                &format!("a divisor of batch_size = {} (sequences per micro-step)", self.batch_size),
            ));
        }
        if !kv_ok {
            return Err(Error::invalid("n_kv_heads", self.n_kv_heads, &format!("a divisor of n_heads = {}", self.n_heads)));
        }
        self.moe_error()?;
        self.precision.validate()
    }

    /// The first MoE field outside its range (see [`moe_accepts`]), named with the range.
    fn moe_error(&self) -> Result<()> {
        let (e, k, s) = (self.experts, self.top_k, self.shared_experts);
        if e > MAX_EXPERTS {
            return Err(Error::invalid(
                "experts",
                e,
                &format!("routed experts per MoE layer in [0, {MAX_EXPERTS}] (0: a dense MLP)"),
            ));
        }
        if e == 0 && k != 0 {
            return Err(Error::invalid("top_k", k, "0 when experts = 0 (a dense MLP routes nothing)"));
        }
        if e > 0 && !(1..=e).contains(&k) {
            return Err(Error::invalid("top_k", k, &format!("routed experts per token in [1, experts = {e}]")));
        }
        if e == 0 && s != 0 {
            return Err(Error::invalid(
                "shared_experts",
                s,
                "0 when experts = 0 (shared experts need routed ones; a dense MLP's width is d_ff)",
            ));
        }
        if s > MAX_EXPERTS {
            return Err(Error::invalid("shared_experts", s, &format!("always-on experts per MoE layer in [0, {MAX_EXPERTS}]")));
        }
        Ok(())
    }
}

/// Defaults of the fields a user may leave out (the only place they are written).
pub mod defaults {
    use super::{Attention, Mlp, Recompute};
    pub const MLP: Mlp = Mlp::Gelu;
    pub const RECOMPUTE: Recompute = Recompute::None;
    pub const ATTENTION: Attention = Attention::Flash;
    pub const TIED_EMBEDDINGS: bool = false;
    /// Tokens per sequence.
    pub const SEQ_LEN: u32 = 2048;
    /// Sequences per optimizer step.
    pub const BATCH_SIZE: u32 = 32;
    /// LLaMA's SentencePiece vocabulary (Touvron et al. 2023).
    pub const VOCAB_SIZE: u32 = 32_000;
    /// A dense MLP (no routed experts).
    pub const EXPERTS: u32 = 0;
    /// No always-on experts.
    pub const SHARED_EXPERTS: u32 = 0;
}

/// `d_ff` when not given: 4 `d_model` for GELU (Vaswani et al. 2017; GPT-2/3), and for SwiGLU
/// LLaMA's rule, 2/3 of 4 `d_model` rounded up to a multiple of 256 (Touvron et al. 2023, whose
/// `FeedForward` computes `256 * ceil(floor(8 d / 3) / 256)`: 11008 for d = 4096).
pub fn default_d_ff(mlp: Mlp, d_model: u32) -> u32 {
    let d = u64::from(d_model);
    let f = match mlp {
        Mlp::Gelu => 4 * d,
        Mlp::Swiglu => (8 * d / 3).div_ceil(256) * 256,
    };
    u32::try_from(f).unwrap_or(u32::MAX)
}

/// An architecture with some fields left out; [`ArchitectureSpec::build`] fills them with the
/// defaults (`n_kv_heads = n_heads`, `head_dim = d_model / n_heads`, `d_ff` by [`default_d_ff`],
/// the rest from [`defaults`] and [`Precision::default`]) and validates the result. Every entry
/// point (one architecture, numpy columns) builds through it, so they cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ArchitectureSpec {
    pub d_model: u32,
    pub n_layers: u32,
    pub n_heads: u32,
    pub n_kv_heads: Option<u32>,
    pub head_dim: Option<u32>,
    pub d_ff: Option<u32>,
    pub mlp: Option<Mlp>,
    pub attention: Option<Attention>,
    pub tied_embeddings: Option<bool>,
    pub seq_len: Option<u32>,
    pub batch_size: Option<u32>,
    pub vocab_size: Option<u32>,
    pub param_bytes: Option<f64>,
    pub activation_bytes: Option<f64>,
    pub optimizer_bytes: Option<f64>,
    pub recompute: Option<Recompute>,
    /// `None`: the whole per-chip batch in one micro-step.
    pub micro_batch: Option<u32>,
    /// `None`: 0 (a dense MLP).
    pub experts: Option<u32>,
    /// `None`: 0 for a dense MLP; an MoE must say it (no default: 1, 2 and 8 are all common).
    pub top_k: Option<u32>,
    /// `None`: 0.
    pub shared_experts: Option<u32>,
}

impl ArchitectureSpec {
    /// The three fields every architecture needs; everything else defaulted.
    pub fn new(d_model: u32, n_layers: u32, n_heads: u32) -> Self {
        ArchitectureSpec { d_model, n_layers, n_heads, ..Default::default() }
    }

    /// The complete, validated architecture. Errors name the field and its accepted range.
    #[inline(always)]
    pub fn build(&self) -> Result<Architecture> {
        let head_dim = match self.head_dim {
            Some(h) => h,
            None if self.n_heads > 0 && self.d_model.is_multiple_of(self.n_heads) => self.d_model / self.n_heads,
            None => {
                return Err(Error::invalid(
                    "head_dim",
                    "unset",
                    &format!("given explicitly when n_heads = {} does not divide d_model = {}", self.n_heads, self.d_model),
                ))
            }
        };
        let mlp = self.mlp.unwrap_or(defaults::MLP);
        let experts = self.experts.unwrap_or(defaults::EXPERTS);
        let top_k = match self.top_k {
            Some(k) => k,
            None if experts == 0 => 0,
            None => {
                return Err(Error::invalid(
                    "top_k",
                    "unset",
                    &format!("given for a mixture of experts: routed experts per token in [1, experts = {experts}]"),
                ))
            }
        };
        let p = Precision::default();
        let a = Architecture {
            d_model: self.d_model,
            n_layers: self.n_layers,
            n_heads: self.n_heads,
            n_kv_heads: self.n_kv_heads.unwrap_or(self.n_heads),
            head_dim,
            d_ff: match self.d_ff {
                Some(f) => f,
                None => {
                    let f = default_d_ff(mlp, self.d_model);
                    if !in_dim_range(f.into()) {
                        // Name the default, not a field the user never set as if they had.
                        return Err(Error::invalid(
                            "d_ff",
                            format!("{f} (the {} default for d_model = {})", mlp.name(), self.d_model),
                            &format!("an integer in [1, {MAX_DIM}]: give d_ff, or a smaller d_model"),
                        ));
                    }
                    f
                }
            },
            mlp,
            attention: self.attention.unwrap_or(defaults::ATTENTION),
            tied_embeddings: self.tied_embeddings.unwrap_or(defaults::TIED_EMBEDDINGS),
            seq_len: self.seq_len.unwrap_or(defaults::SEQ_LEN),
            batch_size: self.batch_size.unwrap_or(defaults::BATCH_SIZE),
            vocab_size: self.vocab_size.unwrap_or(defaults::VOCAB_SIZE),
            precision: Precision {
                param_bytes: self.param_bytes.unwrap_or(p.param_bytes),
                activation_bytes: self.activation_bytes.unwrap_or(p.activation_bytes),
                optimizer_bytes: self.optimizer_bytes.unwrap_or(p.optimizer_bytes),
            },
            recompute: self.recompute.unwrap_or(defaults::RECOMPUTE),
            micro_batch: self.micro_batch,
            experts,
            top_k,
            shared_experts: self.shared_experts.unwrap_or(defaults::SHARED_EXPERTS),
        };
        a.validate()?;
        Ok(a)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #[test]
    fn every_listed_field_has_a_value_and_no_other_name_does() {
        let a = llama_7b();
        for (name, kind) in Architecture::FIELDS {
            let v = a.field(name).unwrap_or_else(|| panic!("{name} has no value"));
            let matches = matches!(
                (kind, v),
                (FieldKind::Int | FieldKind::Count | FieldKind::OptionalInt, FieldValue::Int(_))
                    | (FieldKind::OptionalInt, FieldValue::None)
                    | (FieldKind::Float, FieldValue::Float(_))
                    | (FieldKind::Bool, FieldValue::Bool(_))
                    | (FieldKind::Text, FieldValue::Text(_))
            );
            assert!(matches, "{name}: {kind:?} holds {v:?}");
        }
        assert_eq!(a.field("d_model"), Some(FieldValue::Int(4096)));
        assert_eq!(a.field("micro_batch"), Some(FieldValue::None));
        assert_eq!(a.field("n_experts"), None);
    }

    use super::*;

    /// LLaMA-7B (Touvron et al. 2023, Table 2): d 4096, 32 layers, 32 heads, SwiGLU d_ff 11008,
    /// vocab 32000, untied, context 2048.
    pub fn llama_7b() -> Architecture {
        Architecture {
            d_model: 4096,
            n_layers: 32,
            n_heads: 32,
            n_kv_heads: 32,
            head_dim: 128,
            d_ff: 11008,
            mlp: Mlp::Swiglu,
            attention: Attention::Flash,
            tied_embeddings: false,
            seq_len: 2048,
            batch_size: 1,
            vocab_size: 32000,
            precision: Precision::default(),
            recompute: Recompute::None,
            micro_batch: None,
            experts: 0,
            top_k: 0,
            shared_experts: 0,
        }
    }

    /// d 4, 1 layer, 2 heads of 2, 1 KV head, GELU d_ff 8, materialized, untied, S 4, batch 1,
    /// vocab 8, fp32 params/moments, bf16 activations. T 4, q 4, kv 2, P = 1 x 2 x 16 = 32,
    /// N = 188. Hand-derived counts for it are in memcpy.rs and memory.rs.
    pub fn tiny() -> Architecture {
        Architecture {
            d_model: 4,
            n_layers: 1,
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 2,
            d_ff: 8,
            mlp: Mlp::Gelu,
            attention: Attention::Materialized,
            tied_embeddings: false,
            seq_len: 4,
            batch_size: 1,
            vocab_size: 8,
            precision: Precision::default(),
            recompute: Recompute::None,
            micro_batch: None,
            experts: 0,
            top_k: 0,
            shared_experts: 0,
        }
    }

    /// Mixtral 8x7B (Jiang et al. 2024; Mistral AI's `config.json`): d 4096, 32 layers, 32 heads
    /// of 128, 8 KV heads, SwiGLU experts of d_ff 14336, 8 experts, top-2, vocab 32000, untied.
    pub fn mixtral_8x7b() -> Architecture {
        Architecture { n_kv_heads: 8, d_ff: 14336, experts: 8, top_k: 2, ..llama_7b() }
    }

    /// A small MoE: d 8, 1 layer, 2 heads of 4, 1 KV head, GELU experts of d_ff 16, 4 routed
    /// experts, top-2, 1 shared, materialized, untied, S 4, batch 1, vocab 8, fp32
    /// params/moments, bf16 activations. T 4, q 8, kv 4; T k = 8 routed token copies.
    /// Hand-derived counts for it are in params.rs, flops.rs, memcpy.rs and memory.rs.
    pub fn tiny_moe() -> Architecture {
        Architecture {
            d_model: 8,
            n_heads: 2,
            n_kv_heads: 1,
            head_dim: 4,
            d_ff: 16,
            experts: 4,
            top_k: 2,
            shared_experts: 1,
            ..tiny()
        }
    }

    #[test]
    fn moe_fields_are_checked_with_their_ranges() {
        assert!(mixtral_8x7b().validate().is_ok() && tiny_moe().validate().is_ok());
        let err = |a: Architecture| a.validate().unwrap_err().to_string();
        let e = err(Architecture { top_k: 3, ..tiny() });
        assert!(e.starts_with("top_k = 3") && e.contains("0 when experts = 0"), "{e}");
        let e = err(Architecture { top_k: 5, ..tiny_moe() });
        assert!(e.starts_with("top_k = 5") && e.contains("[1, experts = 4]"), "{e}");
        let e = err(Architecture { top_k: 0, ..tiny_moe() });
        assert!(e.starts_with("top_k = 0") && e.contains("[1, experts = 4]"), "{e}");
        let e = err(Architecture { experts: 4097, top_k: 2, ..tiny_moe() });
        assert!(e.starts_with("experts = 4097") && e.contains("[0, 4096]"), "{e}");
        let e = err(Architecture { shared_experts: 1, ..tiny() });
        assert!(e.starts_with("shared_experts = 1") && e.contains("0 when experts = 0"), "{e}");
        let e = err(Architecture { shared_experts: 5000, ..tiny_moe() });
        assert!(e.starts_with("shared_experts = 5000") && e.contains("[0, 4096]"), "{e}");
        // The fast check agrees with the named errors on every combination of a small grid.
        for experts in [0, 1, 4, 4096, 4097] {
            for top_k in [0, 1, 4, 5, 4096] {
                for shared_experts in [0, 2, 4097] {
                    let a = Architecture { experts, top_k, shared_experts, ..tiny() };
                    assert_eq!(moe_accepts(experts, top_k, shared_experts), a.moe_error().is_ok(), "{a:?}");
                    assert_eq!(a.validate().is_ok(), a.moe_error().is_ok());
                }
            }
        }
        // The spec: a dense default; an MoE must give top_k.
        let spec = ArchitectureSpec { experts: Some(8), ..ArchitectureSpec::new(64, 2, 4) };
        let e = spec.build().unwrap_err().to_string();
        assert!(e.starts_with("top_k = unset") && e.contains("experts = 8"), "{e}");
        let a = ArchitectureSpec { top_k: Some(2), shared_experts: Some(1), ..spec }.build().unwrap();
        assert_eq!((a.experts, a.top_k, a.shared_experts, a.experts_per_token(), a.experts_held()), (8, 2, 1, 3.0, 9.0));
        let dense = ArchitectureSpec::new(64, 2, 4).build().unwrap();
        assert_eq!((dense.experts, dense.top_k, dense.shared_experts, dense.is_moe()), (0, 0, 0, false));
        assert_eq!((dense.experts_per_token(), dense.experts_held()), (1.0, 1.0));
    }

    #[test]
    fn validate_accepts_llama_and_names_bad_fields() {
        assert!(llama_7b().validate().is_ok());
        let bad = Architecture { n_kv_heads: 5, ..llama_7b() };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("n_kv_heads") && err.contains("divisor of n_heads = 32"), "{err}");
        let bad = Architecture { d_model: 0, ..llama_7b() };
        assert!(bad.validate().unwrap_err().to_string().starts_with("d_model = 0"));
        let bad = Architecture { precision: Precision { activation_bytes: f64::NAN, ..Precision::default() }, ..llama_7b() };
        assert!(bad.validate().unwrap_err().to_string().contains("activation_bytes"));
    }

    #[test]
    fn defaults_by_hand() {
        // LLaMA-7B given only width, depth and heads: head_dim 4096 / 32 = 128, MHA, and for
        // SwiGLU d_ff = 256 x ceil(floor(8 x 4096 / 3) / 256) = 256 x ceil(10922 / 256) = 11008.
        let spec = ArchitectureSpec { mlp: Some(Mlp::Swiglu), ..ArchitectureSpec::new(4096, 32, 32) };
        let a = spec.build().unwrap();
        assert_eq!((a.head_dim, a.n_kv_heads, a.d_ff), (128, 32, 11008));
        assert_eq!((a.seq_len, a.batch_size, a.vocab_size), (2048, 32, 32_000));
        assert_eq!(a.precision, Precision::default());
        // GELU: 4 d. d 768 SwiGLU: floor(2048) / 256 = 8 -> 2048.
        assert_eq!(default_d_ff(Mlp::Gelu, 768), 3072);
        assert_eq!(default_d_ff(Mlp::Swiglu, 768), 2048);
        let err = ArchitectureSpec::new(100, 2, 3).build().unwrap_err().to_string();
        assert!(err.starts_with("head_dim = unset") && err.contains("n_heads = 3"), "{err}");
        let explicit = ArchitectureSpec { head_dim: Some(10), ..ArchitectureSpec::new(100, 2, 3) }.build().unwrap();
        assert_eq!(explicit.q_dim(), 30.0);
    }

    #[test]
    fn reshaped_by_hand() {
        // LLaMA-7B x 4 deeper: 128 layers, 4096 / 2 = 2048 wide (16 heads of 128), d_ff 5504.
        let deep = llama_7b().reshaped(4.0).unwrap().unwrap();
        assert_eq!((deep.n_layers, deep.d_model, deep.n_heads, deep.n_kv_heads, deep.d_ff), (128, 2048, 16, 16, 5504));
        // x 1/4: 8 layers, 8192 wide.
        let wide = llama_7b().reshaped(0.25).unwrap().unwrap();
        assert_eq!((wide.n_layers, wide.d_model, wide.d_ff), (8, 8192, 22016));
        assert!(llama_7b().reshaped(1.0).unwrap().is_none());
        // Only a finite, positive factor reshapes: 0, negative and NaN factors are errors (they
        // made a 1-layer model from nothing before).
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = llama_7b().reshaped(bad).unwrap_err().to_string();
            assert!(e.starts_with("depth_factor = "), "{e}");
        }
        // One layer cannot get shallower: no "shallower and wider" alternative, though the width
        // would round to a new value.
        let one = Architecture { n_layers: 1, ..llama_7b() };
        assert!(one.reshaped(0.25).unwrap().is_none());
        assert!(one.reshaped(4.0).unwrap().is_some_and(|a| a.n_layers == 4 && a.d_model == 2048));
    }

    #[test]
    fn parse_names_round_trip() {
        for m in [Mlp::Gelu, Mlp::Swiglu] {
            assert_eq!(Mlp::parse(m.name()).unwrap(), m);
        }
        for a in [Attention::Materialized, Attention::Flash] {
            assert_eq!(Attention::parse(a.name()).unwrap(), a);
        }
        assert!(Mlp::parse("relu").is_err());
    }
}
