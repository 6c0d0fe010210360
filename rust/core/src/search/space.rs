//! The search space: its axes ([`SearchSpace`]: the space is their Cartesian product), their
//! checks, and the enumeration order that maps an index to a configuration (`n_layers` and
//! `batch_size` innermost, so one shape block holds every depth and batch of one shape), with the
//! `d_ff` rounding rule ([`ffn_width`]).

use crate::architecture::{Architecture, Attention, Mlp, Precision, Recompute, MAX_DIM};
use crate::error::{Error, Result};

/// Largest `d_ff` rounding multiple a space accepts.
pub const MAX_D_FF_MULTIPLE: u32 = 4096;

/// A `d_ff` rounding multiple as given (any integer), when in [1, [`MAX_D_FF_MULTIPLE`]] (1: the
/// exact ratio).
pub fn d_ff_multiple(v: i128) -> Result<u32> {
    crate::error::integer_in("d_ff_multiple", v, 1, MAX_D_FF_MULTIPLE.into())
}

/// Most configurations one search agrees to enumerate (about two minutes at 1e8 configs/s).
pub const MAX_SPACE_SIZE: u64 = 10_000_000_000;

/// The axes of a search space; the space is their Cartesian product. `n_heads = d_model / head_dim`
/// and `n_kv_heads = n_heads / kv_group`; `d_ff = round(ffn_mult x d_model)`.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchSpace {
    pub d_model: Vec<u32>,
    pub n_layers: Vec<u32>,
    pub head_dim: Vec<u32>,
    /// Query heads per key/value head (1 = multi-head attention).
    pub kv_group: Vec<u32>,
    pub mlp: Vec<Mlp>,
    pub ffn_mult: Vec<f64>,
    pub attention: Vec<Attention>,
    pub tied_embeddings: Vec<bool>,
    pub vocab_size: Vec<u32>,
    pub seq_len: Vec<u32>,
    pub recompute: Vec<Recompute>,
    /// Sequences per micro-step on one chip (`None`: the whole per-chip batch at once).
    pub micro_batch: Vec<Option<u32>>,
    pub batch_size: Vec<u32>,
    pub precision: Precision,
    /// `d_ff` is `ffn_mult x d_model` rounded to the nearest multiple of this (at least one
    /// multiple): matrix units run widths in multiples of 64 far better than odd ones (NVIDIA's
    /// matmul guide asks multiples of 64 for bf16 on A100/H100; TPUs tile by 128). 1: the exact
    /// ratio rounded to an integer.
    pub d_ff_multiple: u32,
}

/// The first value that occurs again in `values`, compared by `key` (linear time: axes may hold a
/// million values).
fn first_repeat_by<T: Copy, K: Eq + std::hash::Hash>(values: &[T], key: impl Fn(T) -> K) -> Option<T> {
    let mut seen = std::collections::HashSet::with_capacity(values.len());
    values.iter().copied().find(|&v| !seen.insert(key(v)))
}

/// The error of an axis that lists `value` twice (each configuration would be evaluated twice).
fn repeated(axis: &str, value: impl std::fmt::Display) -> Error {
    Error::invalid(axis, format!("{value} twice"), "distinct values (a repeated value repeats configurations)")
}

/// Default [`SearchSpace::d_ff_multiple`].
pub const D_FF_MULTIPLE: u32 = 64;

impl Default for SearchSpace {
    /// The default space: 64 widths x 48 depths x 2 head sizes x 2 KV groupings x 2 MLPs x
    /// 2 MLP ratios x 2 attention kinds x 2 embedding tyings x 1 vocab x 4 context lengths x
    /// 2 recomputations (none, full) x 4 micro-batches (the whole batch, 1, 4, 16) x 10 batch
    /// sizes (8 to 4096 sequences: Step Law's optimal batch reaches 2,000 sequences of 2048 tokens
    /// near 2e11 training tokens) = 62,914,560 configurations.
    fn default() -> Self {
        SearchSpace {
            d_model: (1..=64).map(|i| 128 * i).collect(),
            n_layers: (1..=48).map(|i| 2 * i).collect(),
            head_dim: vec![64, 128],
            kv_group: vec![1, 4],
            mlp: vec![Mlp::Gelu, Mlp::Swiglu],
            ffn_mult: vec![8.0 / 3.0, 4.0],
            attention: vec![Attention::Flash, Attention::Materialized],
            tied_embeddings: vec![false, true],
            vocab_size: vec![32_000],
            seq_len: vec![512, 1024, 2048, 4096],
            recompute: vec![Recompute::None, Recompute::Full],
            micro_batch: vec![None, Some(1), Some(4), Some(16)],
            batch_size: (3..=12).map(|k| 1 << k).collect(),
            precision: Precision::default(),
            d_ff_multiple: D_FF_MULTIPLE,
        }
    }
}

impl SearchSpace {
    /// Axis lengths, outermost first (the enumeration order). `n_layers` and `batch_size` are the
    /// two innermost axes: every metric is bilinear in them, which the search kernel exploits.
    fn radices(&self) -> [u64; 13] {
        [
            self.d_model.len(),
            self.head_dim.len(),
            self.kv_group.len(),
            self.mlp.len(),
            self.ffn_mult.len(),
            self.attention.len(),
            self.tied_embeddings.len(),
            self.vocab_size.len(),
            self.seq_len.len(),
            self.recompute.len(),
            self.micro_batch.len(),
            self.n_layers.len(),
            self.batch_size.len(),
        ]
        .map(|n| n as u64)
    }

    /// Configurations per shape block (`n_layers x batch_size` values).
    #[inline]
    pub(super) fn block_len(&self) -> u64 {
        (self.n_layers.len() * self.batch_size.len()) as u64
    }

    /// An integer axis given as any integers, each checked ([`crate::architecture::dim`]).
    pub fn int_axis(field: &str, values: &[i64]) -> Result<Vec<u32>> {
        values.iter().map(|&v| crate::architecture::dim(field, v)).collect()
    }

    /// Number of configurations, as f64 so an absurd space cannot overflow.
    pub fn size_f64(&self) -> f64 {
        self.radices().iter().map(|&n| n as f64).product()
    }

    /// Checks every axis: non-empty, values in range, total size within [`MAX_SPACE_SIZE`].
    pub fn validate(&self) -> Result<u64> {
        let int_axes: [(&str, &Vec<u32>); 7] = [
            ("d_model", &self.d_model),
            ("n_layers", &self.n_layers),
            ("head_dim", &self.head_dim),
            ("kv_group", &self.kv_group),
            ("vocab_size", &self.vocab_size),
            ("seq_len", &self.seq_len),
            ("batch_size", &self.batch_size),
        ];
        for (axis, values) in int_axes {
            if values.is_empty() {
                return Err(Error::EmptySpace { axis: axis.to_owned() });
            }
            if let Some(&v) = values.iter().find(|&&v| !crate::architecture::in_dim_range(i64::from(v))) {
                return Err(Error::invalid(axis, v, &format!("integers in [1, {MAX_DIM}]")));
            }
            if let Some(v) = first_repeat_by(values, |v| v) {
                return Err(repeated(axis, v));
            }
        }
        if let Some(&Some(mb)) =
            self.micro_batch.iter().find(|m| m.is_some_and(|v| !crate::architecture::in_dim_range(i64::from(v))))
        {
            return Err(Error::invalid("micro_batch", mb, &format!("integers in [1, {MAX_DIM}] (or none: the whole batch)")));
        }
        for (axis, n) in [
            ("recompute", self.recompute.len()),
            ("micro_batch", self.micro_batch.len()),
            ("mlp", self.mlp.len()),
            ("ffn_mult", self.ffn_mult.len()),
            ("attention", self.attention.len()),
            ("tied_embeddings", self.tied_embeddings.len()),
        ] {
            if n == 0 {
                return Err(Error::EmptySpace { axis: axis.to_owned() });
            }
        }
        let repeats = [
            ("recompute", first_repeat_by(&self.recompute, |v| v.name()).map(|v| v.name().to_owned())),
            ("micro_batch", first_repeat_by(&self.micro_batch, |v| v).map(|v| v.map_or("none".to_owned(), |m| m.to_string()))),
            ("mlp", first_repeat_by(&self.mlp, |v| v.name()).map(|v| v.name().to_owned())),
            ("ffn_mult", first_repeat_by(&self.ffn_mult, f64::to_bits).map(crate::error::number)),
            ("attention", first_repeat_by(&self.attention, |v| v.name()).map(|v| v.name().to_owned())),
            ("tied_embeddings", first_repeat_by(&self.tied_embeddings, |v| v).map(|v| v.to_string())),
        ];
        if let Some((axis, Some(v))) = repeats.into_iter().find(|(_, r)| r.is_some()) {
            return Err(repeated(axis, v));
        }
        d_ff_multiple(self.d_ff_multiple.into())?;
        if let Some(&m) = self.ffn_mult.iter().find(|&&m| !(m.is_finite() && m > 0.0 && m <= 64.0)) {
            return Err(Error::invalid_number("ffn_mult", m, "ratios d_ff / d_model in (0, 64]"));
        }
        self.precision.validate()?;
        let size = self.size_f64();
        if size > MAX_SPACE_SIZE as f64 {
            return Err(Error::SpaceTooLarge { size, limit: MAX_SPACE_SIZE });
        }
        Ok(size as u64)
    }

    /// The configuration at `index` in enumeration order, or `None` when it is malformed
    /// (`head_dim` does not divide `d_model`, `kv_group` does not divide the head count, `d_ff`
    /// rounds to 0, or the micro-batch does not divide the batch). `index` must be below the
    /// space's size.
    pub fn config_at(&self, index: u64) -> Option<Architecture> {
        let nb = self.batch_size.len() as u64;
        let j = index % self.block_len();
        let mut a = self.shape_at(index / self.block_len())?;
        a.n_layers = self.n_layers[(j / nb) as usize];
        a.batch_size = self.batch_size[(j % nb) as usize];
        if a.micro_batch.is_some_and(|mb| !a.batch_size.is_multiple_of(mb)) {
            return None;
        }
        Some(a)
    }

    /// The configuration of shape block `shape` with the first depth and batch, or `None` when the
    /// shape is malformed (then every configuration of the block is).
    fn shape_at(&self, shape: u64) -> Option<Architecture> {
        self.shape_with_digits(shape).map(|(a, _)| a)
    }

    /// [`SearchSpace::shape_at`] and the position of each of its values on the 11 outer axes
    /// (in [`SearchSpace::radices`] order), so that no caller searches an axis for a value.
    pub(super) fn shape_with_digits(&self, mut shape: u64) -> Option<(Architecture, [usize; 11])> {
        let r = self.radices();
        let mut digit = [0usize; 11];
        for axis in (0..11).rev() {
            digit[axis] = (shape % r[axis]) as usize;
            shape /= r[axis];
        }
        let d_model = self.d_model[digit[0]];
        let head_dim = self.head_dim[digit[1]];
        let kv_group = self.kv_group[digit[2]];
        if !d_model.is_multiple_of(head_dim) {
            return None;
        }
        let n_heads = d_model / head_dim;
        if !n_heads.is_multiple_of(kv_group) {
            return None;
        }
        let d_ff = ffn_width(self.ffn_mult[digit[4]], d_model, self.d_ff_multiple);
        if !(1.0..=f64::from(MAX_DIM)).contains(&d_ff) {
            return None;
        }
        let arch = Architecture {
            d_model,
            n_layers: self.n_layers[0],
            n_heads,
            n_kv_heads: n_heads / kv_group,
            head_dim,
            d_ff: d_ff as u32,
            mlp: self.mlp[digit[3]],
            attention: self.attention[digit[5]],
            tied_embeddings: self.tied_embeddings[digit[6]],
            seq_len: self.seq_len[digit[8]],
            batch_size: self.batch_size[0],
            vocab_size: self.vocab_size[digit[7]],
            precision: self.precision,
            recompute: self.recompute[digit[9]],
            micro_batch: self.micro_batch[digit[10]],
            // Dense only: a mixture of experts is not a search axis (yet).
            experts: 0,
            top_k: 0,
            shared_experts: 0,
        };
        Some((arch, digit))
    }
}

/// `ffn_mult x d_model` rounded to the nearest multiple of `multiple` (at least one multiple);
/// see [`SearchSpace::d_ff_multiple`]. E.g. 8/3 x 3584 = 9557.3 -> 9536 (149 x 64).
pub fn ffn_width(ffn_mult: f64, d_model: u32, multiple: u32) -> f64 {
    let m = f64::from(multiple.max(1));
    ((ffn_mult * f64::from(d_model) / m).round() * m).max(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::fixtures::small_space;

    #[test]
    fn d_ff_is_rounded_to_hardware_friendly_multiples_by_hand() {
        // 8/3 x 3584 = 9557.33: the nearest multiple of 64 is 149 x 64 = 9536; of 1, 9557.
        assert_eq!(ffn_width(8.0 / 3.0, 3584, 64), 9536.0);
        assert_eq!(ffn_width(8.0 / 3.0, 3584, 1), 9557.0);
        // 8/3 x 1280 = 3413.3 -> 53 x 64 = 3392; a tiny width still gets one multiple.
        assert_eq!(ffn_width(8.0 / 3.0, 1280, 64), 3392.0);
        assert_eq!(ffn_width(0.1, 128, 64), 64.0);
        let s = SearchSpace { d_model: vec![3584], ffn_mult: vec![8.0 / 3.0], ..small_space() };
        assert_eq!(s.config_at(0).unwrap().d_ff, 9536);
        let exact = SearchSpace { d_ff_multiple: 1, ..s.clone() };
        assert_eq!(exact.config_at(0).unwrap().d_ff, 9557);
        assert!(SearchSpace { d_ff_multiple: 0, ..s }.validate().is_err());
    }
    #[test]
    fn a_repeated_axis_value_is_refused() {
        let e = |s: SearchSpace| s.validate().unwrap_err().to_string();
        let twice = "is invalid: expected distinct values (a repeated value repeats configurations)";
        assert_eq!(
            e(SearchSpace { d_model: vec![512, 1024, 512], ..SearchSpace::default() }),
            format!("d_model = 512 twice {twice}")
        );
        assert_eq!(e(SearchSpace { ffn_mult: vec![4.0, 4.0], ..SearchSpace::default() }), format!("ffn_mult = 4 twice {twice}"));
        assert_eq!(
            e(SearchSpace { micro_batch: vec![None, Some(2), None], ..SearchSpace::default() }),
            format!("micro_batch = none twice {twice}")
        );
        assert!(SearchSpace::default().validate().is_ok());
    }
    #[test]
    fn default_space_has_several_million_configs() {
        assert_eq!(SearchSpace::default().validate().unwrap(), 62_914_560);
    }
    #[test]
    fn enumeration_covers_every_axis_value() {
        let s = small_space();
        let n = s.validate().unwrap();
        let mut widths = std::collections::BTreeSet::new();
        let mut batches = std::collections::BTreeSet::new();
        for i in 0..n {
            if let Some(a) = s.config_at(i) {
                assert!(a.validate().is_ok());
                widths.insert(a.d_model);
                batches.insert(a.batch_size);
            }
        }
        assert_eq!(widths.len(), s.d_model.len());
        assert_eq!(batches.len(), s.batch_size.len());
    }
    #[test]
    fn config_at_inverts_the_enumeration() {
        let s = small_space();
        let nb = s.batch_size.len() as u64;
        let a = s.config_at(3 * s.block_len() + 2 * nb + 1).unwrap();
        assert_eq!((a.n_layers, a.batch_size), (s.n_layers[2], s.batch_size[1]));
        assert_eq!(s.config_at(0).unwrap().d_model, s.d_model[0]);
    }
    #[test]
    fn absurd_space_is_refused() {
        let s = SearchSpace { d_model: (1..=100_000).collect(), n_layers: (1..=100_000).collect(), ..small_space() };
        assert!(matches!(s.validate(), Err(Error::SpaceTooLarge { .. })));
        let s = SearchSpace { seq_len: vec![], ..small_space() };
        assert_eq!(s.validate(), Err(Error::EmptySpace { axis: "seq_len".into() }));
    }
}
