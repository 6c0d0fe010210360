//! Every per-configuration metric, computed together: the function the search calls for each
//! configuration and `predict` calls for one.

use crate::architecture::{dim, in_dim_range, Architecture, ArchitectureSpec, Attention, Mlp, Recompute};
use crate::error::{Error, Result};
use crate::flops::flops_per_step;
use crate::hardware::Hardware;
use crate::loss::{Law, LossInput};
use crate::memcpy::step_work;
use crate::memory::memory_bytes;
use crate::params::{non_embedding_params, total_params};

/// Metrics of one configuration trained for one budget on one chip.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Metrics {
    /// Total parameters (count).
    pub params: f64,
    pub non_embedding_params: f64,
    /// Training FLOPs of one step (FLOP).
    pub flops_per_step: f64,
    /// Bytes read and written in HBM by one step (bytes).
    pub memcpy_bytes_per_step: f64,
    /// Peak device memory of one step (bytes).
    pub memory_bytes: f64,
    /// `memory_bytes <= usable HBM`.
    pub fits_memory: bool,
    /// Seconds per step from the hardware's step-time model (s).
    pub step_time_s: f64,
    /// Whole steps that fit in the budget: floor(budget_s / step_time_s).
    pub steps: f64,
    /// Tokens trained in the budget: steps x batch_size x seq_len.
    pub tokens: f64,
    /// Tokens the loss law's data term sees (D'): `tokens` in the law's reference tokens, after
    /// Muennighoff et al. 2023's decay of repeated data and times the batch's token efficiency
    /// ([`crate::loss::Law::ln_law_tokens`]); `tokens` for the plain law with unlimited data.
    pub effective_tokens: f64,
    /// Predicted final loss (nats per token of the law's reference vocabulary; see
    /// [`crate::vocab`]); +inf when not even one step fits in the budget.
    pub loss: f64,
}

/// Whole steps that fit in the budget and the tokens they train:
/// `steps = floor(budget_s / step_time_s)`, `tokens = steps x tokens_per_step`.
#[inline]
pub fn tokens_in_budget(budget_s: f64, step_time_s: f64, tokens_per_step: f64) -> (f64, f64) {
    let x = budget_s / step_time_s;
    // floor(x); for 0 <= x < 2^52 by truncation (one instruction, where `floor` is a libm call on
    // baseline x86-64: this runs once per configuration in the search).
    let steps = if (0.0..4_503_599_627_370_496.0).contains(&x) { (x as i64) as f64 } else { x.floor() };
    (steps, steps * tokens_per_step)
}

/// Evaluates one configuration. `budget_s` is the wall-clock training budget in seconds.
#[inline]
pub fn evaluate(arch: &Architecture, hw: &Hardware, budget_s: f64, law: &Law) -> Metrics {
    evaluate_with_data(arch, hw, budget_s, law, None)
}

/// [`evaluate`] with a limit on unique training data (tokens); repeated data counts for less.
#[inline]
pub fn evaluate_with_data(arch: &Architecture, hw: &Hardware, budget_s: f64, law: &Law, unique_tokens: Option<f64>) -> Metrics {
    let params = total_params(arch);
    let non_embedding = non_embedding_params(arch);
    let flops = flops_per_step(arch);
    let work = step_work(arch);
    let memcpy = work.bytes;
    let memory = memory_bytes(arch);
    let step_time_s = hw.step_time.seconds_for(arch, &work);
    let (steps, tokens) = tokens_in_budget(budget_s, step_time_s, arch.tokens_per_step());
    let (loss, effective_tokens) = law.loss_and_tokens(&LossInput::of(arch, tokens, unique_tokens));
    Metrics {
        params,
        non_embedding_params: non_embedding,
        flops_per_step: flops,
        memcpy_bytes_per_step: memcpy,
        memory_bytes: memory,
        fits_memory: memory <= hw.usable_hbm_bytes(),
        step_time_s,
        steps,
        tokens,
        effective_tokens,
        loss,
    }
}

/// Evaluates many configurations in parallel (same order as `archs`).
pub fn evaluate_many(archs: &[Architecture], hw: &Hardware, budget_s: f64, law: &Law) -> Vec<Metrics> {
    use rayon::prelude::*;
    archs.par_iter().with_min_len(4096).map(|a| evaluate(a, hw, budget_s, law)).collect()
}

/// Most rows one `evaluate` call takes (about 5 GB of inputs and outputs).
pub const MAX_EVALUATE_ROWS: usize = 20_000_000;

/// One column of architectures given as arrays: absent (every row takes the default), one value
/// for every row, one value per row, or (categorical columns) one code per row indexing `kinds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Column<'a, T> {
    Absent,
    Scalar(T),
    Values(&'a [T]),
    /// Row `i` is `kinds[codes[i]]` (a categorical, as numpy and pandas encode one); a code
    /// outside `kinds` is an error naming the row.
    Coded {
        kinds: &'a [T],
        codes: &'a [i64],
    },
}

impl<T: Copy> Column<'_, T> {
    /// Row `i`'s value: `Some(None)` when absent, `None` for a code outside the kinds.
    #[inline(always)]
    fn get(&self, i: usize) -> Option<Option<T>> {
        match self {
            Column::Absent => Some(None),
            Column::Scalar(v) => Some(Some(*v)),
            Column::Values(v) => Some(Some(v[i])),
            Column::Coded { kinds, codes } => usize::try_from(codes[i]).ok().and_then(|c| kinds.get(c)).map(|&v| Some(v)),
        }
    }
    fn len(&self) -> Option<usize> {
        match self {
            Column::Values(v) => Some(v.len()),
            Column::Coded { codes, .. } => Some(codes.len()),
            _ => None,
        }
    }
    /// The error of row `i`'s code when it is outside the kinds.
    fn bad_code(&self, field: &str, i: usize) -> Option<Error> {
        match self {
            Column::Coded { kinds, codes } if self.get(i).is_none() => {
                Some(Error::invalid(field, format!("code {}", codes[i]), &format!("a code below {}", kinds.len())))
            }
            _ => None,
        }
    }
}

/// Architectures as columns (structure of arrays); absent columns take the defaults of
/// [`ArchitectureSpec::build`], so a row means what `Architecture(...)` with the same fields means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchitectureColumns<'a> {
    pub d_model: Column<'a, i64>,
    pub n_layers: Column<'a, i64>,
    pub n_heads: Column<'a, i64>,
    pub n_kv_heads: Column<'a, i64>,
    pub head_dim: Column<'a, i64>,
    pub d_ff: Column<'a, i64>,
    pub mlp: Column<'a, Mlp>,
    pub attention: Column<'a, Attention>,
    pub tied_embeddings: Column<'a, bool>,
    pub seq_len: Column<'a, i64>,
    pub batch_size: Column<'a, i64>,
    pub vocab_size: Column<'a, i64>,
    pub param_bytes: Column<'a, f64>,
    pub activation_bytes: Column<'a, f64>,
    pub optimizer_bytes: Column<'a, f64>,
    pub recompute: Column<'a, Recompute>,
    /// Sequences per micro-step; 0 (or absent) runs the whole batch in one micro-step.
    pub micro_batch: Column<'a, i64>,
    /// Routed experts per MoE layer; 0 (or absent) is a dense MLP.
    pub experts: Column<'a, i64>,
    /// Routed experts per token (0 or absent when dense).
    pub top_k: Column<'a, i64>,
    /// Always-on experts per MoE layer (0 or absent by default).
    pub shared_experts: Column<'a, i64>,
}

impl ArchitectureColumns<'_> {
    /// The number of rows: every array column must have it (scalars broadcast; all scalars: 1).
    pub fn rows(&self) -> Result<usize> {
        let rows = self.array_rows()?.unwrap_or(1);
        if rows > MAX_EVALUATE_ROWS {
            return Err(Error::invalid(
                "rows",
                crate::error::count(rows as u64),
                &format!(
                    "at most {} per call (about 250 bytes each, in and out): evaluate in chunks",
                    crate::error::count(MAX_EVALUATE_ROWS as u64)
                ),
            ));
        }
        Ok(rows)
    }

    /// The length every array column shares (`None` when every column is a scalar or absent).
    fn array_rows(&self) -> Result<Option<usize>> {
        let lens = [
            ("d_model", self.d_model.len()),
            ("n_layers", self.n_layers.len()),
            ("n_heads", self.n_heads.len()),
            ("n_kv_heads", self.n_kv_heads.len()),
            ("head_dim", self.head_dim.len()),
            ("d_ff", self.d_ff.len()),
            ("mlp", self.mlp.len()),
            ("attention", self.attention.len()),
            ("tied_embeddings", self.tied_embeddings.len()),
            ("seq_len", self.seq_len.len()),
            ("batch_size", self.batch_size.len()),
            ("vocab_size", self.vocab_size.len()),
            ("param_bytes", self.param_bytes.len()),
            ("activation_bytes", self.activation_bytes.len()),
            ("optimizer_bytes", self.optimizer_bytes.len()),
            ("recompute", self.recompute.len()),
            ("micro_batch", self.micro_batch.len()),
            ("experts", self.experts.len()),
            ("top_k", self.top_k.len()),
            ("shared_experts", self.shared_experts.len()),
        ];
        let mut n: Option<(usize, &str)> = None;
        for (field, len) in lens {
            match (len, n) {
                (Some(l), None) => n = Some((l, field)),
                (Some(l), Some((m, first))) if l != m => {
                    return Err(Error::invalid(field, format!("{l} rows"), &format!("{m} rows like {first} (or one value)")))
                }
                _ => {}
            }
        }
        Ok(n.map(|(l, _)| l))
    }

    /// Row `i` as a validated architecture; errors name the row and the field.
    pub fn row(&self, i: usize) -> Result<Architecture> {
        // Fast path: every integer in range (the common case); errors are built only on failure.
        let fast = |c: &Column<'_, i64>| -> Option<Option<u32>> {
            match c.get(i)? {
                None => Some(None),
                Some(v) => in_dim_range(v).then_some(Some(v as u32)),
            }
        };
        // MoE counts may be 0; the range is `Architecture::validate`'s.
        let count = |c: &Column<'_, i64>| -> Option<Option<u32>> {
            match c.get(i)? {
                None => Some(None),
                Some(v) => u32::try_from(v).ok().map(Some),
            }
        };
        let spec = (|| {
            Some(ArchitectureSpec {
                d_model: fast(&self.d_model)??,
                n_layers: fast(&self.n_layers)??,
                n_heads: fast(&self.n_heads)??,
                n_kv_heads: fast(&self.n_kv_heads)?,
                head_dim: fast(&self.head_dim)?,
                d_ff: fast(&self.d_ff)?,
                mlp: self.mlp.get(i)?,
                attention: self.attention.get(i)?,
                tied_embeddings: self.tied_embeddings.get(i)?,
                seq_len: fast(&self.seq_len)?,
                batch_size: fast(&self.batch_size)?,
                vocab_size: fast(&self.vocab_size)?,
                param_bytes: self.param_bytes.get(i)?,
                activation_bytes: self.activation_bytes.get(i)?,
                optimizer_bytes: self.optimizer_bytes.get(i)?,
                recompute: self.recompute.get(i)?,
                micro_batch: match self.micro_batch.get(i)? {
                    None | Some(0) => None,
                    Some(_) => fast(&self.micro_batch)?,
                },
                experts: count(&self.experts)?,
                top_k: count(&self.top_k)?,
                shared_experts: count(&self.shared_experts)?,
            })
        })();
        let named = |e: Error| match e {
            Error::InvalidValue { field, value, expected } => {
                Error::InvalidValue { field: format!("row {i}: {field}"), value, expected }
            }
            other => other,
        };
        match spec {
            Some(spec) => spec.build().map_err(named),
            None => Err(named(self.first_bad_field(i))),
        }
    }

    /// The error of the first field of row `i` that is absent when required, out of range, or
    /// (categorical) a code outside its kinds.
    fn first_bad_field(&self, i: usize) -> Error {
        let fields = [
            ("d_model", &self.d_model, true),
            ("n_layers", &self.n_layers, true),
            ("n_heads", &self.n_heads, true),
            ("n_kv_heads", &self.n_kv_heads, false),
            ("head_dim", &self.head_dim, false),
            ("d_ff", &self.d_ff, false),
            ("seq_len", &self.seq_len, false),
            ("batch_size", &self.batch_size, false),
            ("vocab_size", &self.vocab_size, false),
            ("micro_batch", &self.micro_batch, false),
        ];
        let codes = [
            self.mlp.bad_code("mlp", i),
            self.attention.bad_code("attention", i),
            self.tied_embeddings.bad_code("tied_embeddings", i),
            self.param_bytes.bad_code("param_bytes", i),
            self.activation_bytes.bad_code("activation_bytes", i),
            self.optimizer_bytes.bad_code("optimizer_bytes", i),
            self.recompute.bad_code("recompute", i),
        ];
        let moe = [("experts", &self.experts), ("top_k", &self.top_k), ("shared_experts", &self.shared_experts)];
        let int_codes = fields.iter().map(|(field, c, _)| c.bad_code(field, i));
        let moe_codes = moe.iter().map(|(field, c)| c.bad_code(field, i));
        if let Some(e) = codes.into_iter().chain(int_codes).chain(moe_codes).flatten().next() {
            return e;
        }
        for (field, c) in moe {
            if let Some(v) = c.get(i).flatten() {
                if let Err(e) = crate::error::integer_in::<u32>(field, v.into(), 0, crate::architecture::MAX_EXPERTS.into()) {
                    return e;
                }
            }
        }
        for (field, c, required) in fields {
            match c.get(i).flatten() {
                None if required => return Error::invalid(field, "absent", "a column (it has no default)"),
                None => {}
                Some(0) if field == "micro_batch" => {}
                Some(v) => {
                    if let Err(e) = dim(field, v) {
                        return e;
                    }
                }
            }
        }
        Error::invalid("row", i, "a valid row")
    }
}

/// Metrics of many rows as columns (structure of arrays, one value per row; units as in
/// [`Metrics`]), ready to hand over without copying.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricColumns {
    pub params: Vec<f64>,
    pub non_embedding_params: Vec<f64>,
    pub flops_per_step: Vec<f64>,
    pub memcpy_bytes_per_step: Vec<f64>,
    pub memory_bytes: Vec<f64>,
    pub fits_memory: Vec<bool>,
    pub step_time_s: Vec<f64>,
    pub steps: Vec<f64>,
    pub tokens: Vec<f64>,
    pub effective_tokens: Vec<f64>,
    pub loss: Vec<f64>,
}

impl MetricColumns {
    /// `rows` rows of zeros (allocated zeroed, so untouched pages cost nothing until filled).
    pub fn zeroed(rows: usize) -> Self {
        MetricColumns {
            params: vec![0.0; rows],
            non_embedding_params: vec![0.0; rows],
            flops_per_step: vec![0.0; rows],
            memcpy_bytes_per_step: vec![0.0; rows],
            memory_bytes: vec![0.0; rows],
            fits_memory: vec![false; rows],
            step_time_s: vec![0.0; rows],
            steps: vec![0.0; rows],
            tokens: vec![0.0; rows],
            effective_tokens: vec![0.0; rows],
            loss: vec![0.0; rows],
        }
    }

    /// Mutable views of every column.
    pub fn slices(&mut self) -> MetricSlices<'_> {
        MetricSlices {
            params: &mut self.params,
            non_embedding_params: &mut self.non_embedding_params,
            flops_per_step: &mut self.flops_per_step,
            memcpy_bytes_per_step: &mut self.memcpy_bytes_per_step,
            memory_bytes: &mut self.memory_bytes,
            fits_memory: &mut self.fits_memory,
            step_time_s: &mut self.step_time_s,
            steps: &mut self.steps,
            tokens: &mut self.tokens,
            effective_tokens: &mut self.effective_tokens,
            loss: &mut self.loss,
        }
    }
}

/// Where [`evaluate_columns_into`] writes: one mutable slice per metric (units as in
/// [`Metrics`]), every slice of one length, in buffers the caller owns (a binding passes the
/// arrays it returns, so nothing is copied after the fill).
#[derive(Debug)]
pub struct MetricSlices<'a> {
    pub params: &'a mut [f64],
    pub non_embedding_params: &'a mut [f64],
    pub flops_per_step: &'a mut [f64],
    pub memcpy_bytes_per_step: &'a mut [f64],
    pub memory_bytes: &'a mut [f64],
    pub fits_memory: &'a mut [bool],
    pub step_time_s: &'a mut [f64],
    pub steps: &'a mut [f64],
    pub tokens: &'a mut [f64],
    pub effective_tokens: &'a mut [f64],
    pub loss: &'a mut [f64],
}

impl MetricSlices<'_> {
    /// The number of rows (every slice's length).
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Rows `rows` of every slice.
    pub fn rows(&mut self, rows: std::ops::Range<usize>) -> MetricSlices<'_> {
        MetricSlices {
            params: &mut self.params[rows.clone()],
            non_embedding_params: &mut self.non_embedding_params[rows.clone()],
            flops_per_step: &mut self.flops_per_step[rows.clone()],
            memcpy_bytes_per_step: &mut self.memcpy_bytes_per_step[rows.clone()],
            memory_bytes: &mut self.memory_bytes[rows.clone()],
            fits_memory: &mut self.fits_memory[rows.clone()],
            step_time_s: &mut self.step_time_s[rows.clone()],
            steps: &mut self.steps[rows.clone()],
            tokens: &mut self.tokens[rows.clone()],
            effective_tokens: &mut self.effective_tokens[rows.clone()],
            loss: &mut self.loss[rows],
        }
    }
}

impl<'a> MetricSlices<'a> {
    /// The slices as one array (every slice of one length, or an error).
    fn into_columns(self) -> Result<ColumnsMut<'a>> {
        let n = self.fits_memory.len();
        let f = [
            self.params,
            self.non_embedding_params,
            self.flops_per_step,
            self.memcpy_bytes_per_step,
            self.memory_bytes,
            self.step_time_s,
            self.steps,
            self.tokens,
            self.effective_tokens,
            self.loss,
        ];
        match f.iter().find(|c| c.len() != n) {
            Some(c) => Err(Error::invalid("out", format!("slices of {} and {n} rows", c.len()), "every slice of one length")),
            None => Ok(ColumnsMut { f, fits: self.fits_memory }),
        }
    }
}

/// Mutable views of the same rows of every column (split in halves for parallel filling).
struct ColumnsMut<'a> {
    f: [&'a mut [f64]; 10],
    fits: &'a mut [bool],
}

impl<'a> ColumnsMut<'a> {
    fn len(&self) -> usize {
        self.fits.len()
    }
    fn split_at(self, mid: usize) -> (ColumnsMut<'a>, ColumnsMut<'a>) {
        let (fits_a, fits_b) = self.fits.split_at_mut(mid);
        let mut a: [&'a mut [f64]; 10] = Default::default();
        let mut b: [&'a mut [f64]; 10] = Default::default();
        for (k, col) in self.f.into_iter().enumerate() {
            let (x, y) = col.split_at_mut(mid);
            a[k] = x;
            b[k] = y;
        }
        (ColumnsMut { f: a, fits: fits_a }, ColumnsMut { f: b, fits: fits_b })
    }
    fn set(&mut self, k: usize, m: &Metrics) {
        let v = [
            m.params,
            m.non_embedding_params,
            m.flops_per_step,
            m.memcpy_bytes_per_step,
            m.memory_bytes,
            m.step_time_s,
            m.steps,
            m.tokens,
            m.effective_tokens,
            m.loss,
        ];
        for (col, x) in self.f.iter_mut().zip(v) {
            col[k] = x;
        }
        self.fits[k] = m.fits_memory;
    }
}

/// Rows `first..first + out.len()` of `cols` evaluated in parallel into `out`, every row
/// validated; the first bad row (in order) is the error. Fills halves recursively (rayon::join).
fn fill(
    cols: &ArchitectureColumns<'_>,
    first: usize,
    mut out: ColumnsMut<'_>,
    eval: &(impl Fn(&Architecture) -> Metrics + Sync),
) -> std::result::Result<(), usize> {
    const CHUNK: usize = 1 << 12;
    let n = out.len();
    if n <= CHUNK {
        for k in 0..n {
            let a = cols.row(first + k).map_err(|_| first + k)?;
            out.set(k, &eval(&a));
        }
        return Ok(());
    }
    let mid = n / 2;
    let (lo, hi) = out.split_at(mid);
    let (a, b) = rayon::join(|| fill(cols, first, lo, eval), || fill(cols, first + mid, hi, eval));
    a.and(b)
}

/// Every row of `cols` evaluated in parallel as columns (same order), every row validated; the
/// first bad row (in order) is the error.
pub fn evaluate_columns(
    cols: &ArchitectureColumns<'_>,
    hw: &Hardware,
    budget_s: f64,
    law: &Law,
    unique_tokens: Option<f64>,
) -> Result<MetricColumns> {
    let n = cols.rows()?;
    let mut out = MetricColumns::zeroed(n);
    evaluate_columns_into(cols, 0, out.slices(), hw, budget_s, law, unique_tokens)?;
    Ok(out)
}

/// Rows `first..first + out.len()` of `cols` evaluated in parallel into `out`, every row
/// validated; the first bad row (in order) is the error, as are rows beyond the columns and
/// slices of different lengths. Callers that check for interruption between calls fill their
/// buffers a range of rows at a time ([`MetricSlices::rows`]).
pub fn evaluate_columns_into(
    cols: &ArchitectureColumns<'_>,
    first: usize,
    out: MetricSlices<'_>,
    hw: &Hardware,
    budget_s: f64,
    law: &Law,
    unique_tokens: Option<f64>,
) -> Result<()> {
    crate::threads::init()?;
    let rows = first..first + out.len();
    if let Some(n) = cols.array_rows()?.filter(|&n| rows.end > n) {
        return Err(Error::invalid("rows", format!("{}..{}", rows.start, rows.end), &format!("rows of the {n} given")));
    }
    let eval = |a: &Architecture| evaluate_with_data(a, hw, budget_s, law, unique_tokens);
    match fill(cols, first, out.into_columns()?, &eval) {
        Ok(()) => Ok(()),
        // A failed half may stop before an earlier bad row of the other: find the first in order
        // (none only if another thread changed the columns meanwhile).
        Err(_) => Err(rows.clone().find_map(|i| cols.row(i).err()).unwrap_or_else(|| {
            Error::invalid("columns", "changed during the call", "arrays left unchanged while evaluate runs")
        })),
    }
}

/// Why a prediction is outside the range where the model was validated. Each flag is a
/// reason to distrust the number, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Parameters outside the law's fitted range.
    ParamsOutsideFit,
    /// Training tokens outside the law's fitted range.
    TokensOutsideFit,
    /// d_model / n_layers outside the shapes the law's shape term was measured on (Kaplan et al.
    /// 2020's shape-insensitive 20 to 200 for a law without one).
    AspectRatio,
    /// n_layers outside the depths the shape term was measured on.
    DepthOutsideShapeFit,
    /// Tokens per step above Kaplan's critical batch at the predicted loss (a law without the
    /// batch term).
    AboveCriticalBatch,
    /// Tokens per step outside the batches the batch term was measured on (1/8 to 16 times Step
    /// Law's optimum for the tokens trained).
    BatchOutsideFit,
    /// A vocabulary outside those the vocabulary term was measured on (4K to 96K tokens).
    VocabOutsideFit,
    /// Needs more memory than the chip's usable HBM.
    DoesNotFit,
    /// Not one step fits in the budget (no loss).
    NoStepInBudget,
    /// The plan trains on more tokens than the unique data holds (several epochs).
    RepeatsData,
    /// The predicted loss is above ln(vocab_size), what guessing every token uniformly scores:
    /// the law is far outside its domain (tiny models, tiny vocabularies).
    LossAboveUniform,
    /// A mixture of experts: the law was fitted on dense models and sees the active parameters
    /// (see [`crate::loss::LossInput`]).
    MixtureOfExperts,
}

impl Validity {
    /// A short stable name (`params_outside_fit`, ...), for machine-readable output.
    pub fn code(self) -> &'static str {
        match self {
            Validity::ParamsOutsideFit => "params_outside_fit",
            Validity::TokensOutsideFit => "tokens_outside_fit",
            Validity::AspectRatio => "aspect_ratio",
            Validity::DepthOutsideShapeFit => "depth_outside_shape_fit",
            Validity::AboveCriticalBatch => "above_critical_batch",
            Validity::BatchOutsideFit => "batch_outside_fit",
            Validity::VocabOutsideFit => "vocab_outside_fit",
            Validity::DoesNotFit => "does_not_fit",
            Validity::NoStepInBudget => "no_step_in_budget",
            Validity::RepeatsData => "repeats_data",
            Validity::LossAboveUniform => "loss_above_uniform",
            Validity::MixtureOfExperts => "mixture_of_experts",
        }
    }

    /// The reason in words; ranges are the law's own (`fit`, and `law`'s terms).
    pub fn message(self, fit: &crate::loss::FitRange, law: &Law) -> String {
        let sig = |x: f64| crate::error::significant(x, 3);
        let range = |(lo, hi): (f64, f64)| format!("{} to {}", sig(lo), sig(hi));
        let counts = |(lo, hi): (f64, f64)| format!("{} to {}", crate::error::magnitude(lo), crate::error::magnitude(hi));
        match self {
            Validity::ParamsOutsideFit => {
                format!("parameter count outside the law's fitted range ({}): extrapolation", counts(fit.params))
            }
            Validity::TokensOutsideFit => {
                format!("training tokens outside the law's fitted range ({}): extrapolation", counts(fit.tokens))
            }
            Validity::AspectRatio => format!(
                "d_model/n_layers outside {}, the shapes the law has evidence for: how loss depends on shape there is \
                 extrapolated",
                range(law.aspect_domain())
            ),
            Validity::DepthOutsideShapeFit => format!(
                "n_layers outside {}, the depths the shape term was measured on: its depth penalty is extrapolated",
                range(law.shape.and_then(|s| s.measured_layers()).unwrap_or((0.0, f64::INFINITY)))
            ),
            Validity::AboveCriticalBatch => "tokens per step above the critical batch: larger batches waste tokens".into(),
            Validity::BatchOutsideFit => format!(
                "tokens per step outside {} times Step Law's optimal batch, the batches measured: the batch's cost is \
                 extrapolated",
                range(crate::batch::MEASURED_RATIO)
            ),
            Validity::VocabOutsideFit => format!(
                "vocabulary outside {} tokens, those Tao et al. 2024 measured: its capacity term is extrapolated",
                range(crate::vocab::MEASURED_VOCAB)
            ),
            Validity::DoesNotFit => "does not fit in the chip's usable memory".into(),
            Validity::NoStepInBudget => "not one training step fits in the budget".into(),
            Validity::RepeatsData => {
                "the plan repeats the unique data (more than one epoch): repeated tokens count for less".into()
            }
            Validity::LossAboveUniform => "predicted loss above ln(vocab_size), what a uniform guess scores: the law \
                                           is far outside its domain, the number means nothing"
                .into(),
            Validity::MixtureOfExperts => "a mixture of experts: the law was fitted on dense models; it sees the active \
                                           parameters (those one token uses), an approximation that overstates the loss \
                                           (a routed model does better than a dense one of its active size, Clark et al. \
                                           2022)"
                .into(),
        }
    }
}

/// Every validity flag of one prediction (empty when inside every validated range): `arch`
/// trained under `law` with `unique_tokens` of data gave `m`.
pub fn validity(
    arch: &Architecture,
    m: &Metrics,
    fit: &crate::loss::FitRange,
    law: &Law,
    unique_tokens: Option<f64>,
) -> Vec<Validity> {
    let mut out = Vec::new();
    let inside = |v: f64, (lo, hi): (f64, f64)| (lo..=hi).contains(&v);
    // The parameters the law sees (a mixture's active ones; every one of a dense model).
    if !inside(crate::params::active_params(arch), fit.params) {
        out.push(Validity::ParamsOutsideFit);
    }
    if m.tokens > 0.0 && !inside(m.tokens, fit.tokens) {
        out.push(Validity::TokensOutsideFit);
    }
    if !inside(f64::from(arch.d_model) / f64::from(arch.n_layers), law.aspect_domain()) {
        out.push(Validity::AspectRatio);
    }
    if law.shape.and_then(|s| s.measured_layers()).is_some_and(|r| !inside(f64::from(arch.n_layers), r)) {
        out.push(Validity::DepthOutsideShapeFit);
    }
    let ratio = law.reference_ratio(f64::from(arch.vocab_size));
    match law.batch {
        None => {
            if m.loss.is_finite() && arch.tokens_per_step() > crate::batch::critical_batch_tokens(m.loss) {
                out.push(Validity::AboveCriticalBatch);
            }
        }
        Some(b) if m.tokens > 0.0 => {
            let relative = arch.tokens_per_step() * ratio / b.optimal_batch_tokens(m.tokens * ratio);
            if !inside(relative, crate::batch::MEASURED_RATIO) {
                out.push(Validity::BatchOutsideFit);
            }
        }
        Some(_) => {}
    }
    if law.vocab.is_some() && !inside(f64::from(arch.vocab_size), crate::vocab::MEASURED_VOCAB) {
        out.push(Validity::VocabOutsideFit);
    }
    if !m.fits_memory {
        out.push(Validity::DoesNotFit);
    }
    if m.steps < 1.0 {
        out.push(Validity::NoStepInBudget);
    }
    if unique_tokens.is_some_and(|u| m.tokens * ratio > u) {
        out.push(Validity::RepeatsData);
    }
    // The loss per token of the model's own vocabulary against a uniform guess over it.
    if m.loss.is_finite() && m.loss * ratio > f64::from(arch.vocab_size).ln() {
        out.push(Validity::LossAboveUniform);
    }
    if arch.is_moe() {
        out.push(Validity::MixtureOfExperts);
    }
    out
}

/// Whether a prediction with these flags is inside the domain its laws were measured on
/// (parameters and tokens in the law's fitted range, shape, batch and vocabulary where their
/// terms were measured, loss below a uniform guess); the other flags say the plan is wasteful or
/// infeasible, not that the number is an extrapolation.
pub fn in_domain(flags: &[Validity]) -> bool {
    !flags.iter().any(|v| {
        matches!(
            v,
            Validity::ParamsOutsideFit
                | Validity::TokensOutsideFit
                | Validity::AspectRatio
                | Validity::DepthOutsideShapeFit
                | Validity::BatchOutsideFit
                | Validity::VocabOutsideFit
                | Validity::LossAboveUniform
                | Validity::MixtureOfExperts
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::architecture::tests::llama_7b;
    use crate::loss::HOFFMANN;
    use crate::step_time::StepTimeModel;

    #[test]
    fn columns_use_the_same_defaults_and_name_bad_rows() {
        // LLaMA-7B's shape with d_ff left out (SwiGLU rule: 11008) and a second, GELU row (4 d).
        let hw = crate::hardware::tests::chip(
            80e9,
            StepTimeModel::Linear { s_per_memcpy_byte: 1e-12, s_per_flop: 1e-15, overhead_s: 0.0 },
        );
        let d = [4096_i64, 4096];
        let mlp = [Mlp::Swiglu, Mlp::Gelu];
        let cols = ArchitectureColumns {
            d_model: Column::Values(&d),
            n_layers: Column::Scalar(32),
            n_heads: Column::Scalar(32),
            n_kv_heads: Column::Absent,
            head_dim: Column::Absent,
            d_ff: Column::Absent,
            mlp: Column::Values(&mlp),
            attention: Column::Absent,
            tied_embeddings: Column::Absent,
            seq_len: Column::Absent,
            batch_size: Column::Scalar(1),
            vocab_size: Column::Absent,
            param_bytes: Column::Absent,
            activation_bytes: Column::Absent,
            optimizer_bytes: Column::Absent,
            recompute: Column::Absent,
            micro_batch: Column::Absent,
            experts: Column::Absent,
            top_k: Column::Absent,
            shared_experts: Column::Absent,
        };
        assert_eq!(cols.rows().unwrap(), 2);
        let m = evaluate_columns(&cols, &hw, 3600.0, &HOFFMANN, None).unwrap();
        assert_eq!(m.params[0], 6_738_415_616.0);
        assert_eq!(m.loss[1], evaluate(&cols.row(1).unwrap(), &hw, 3600.0, &HOFFMANN).loss);
        assert_eq!(cols.row(1).unwrap().d_ff, 16_384);
        let bad = [4096_i64, 0];
        let e = ArchitectureColumns { d_model: Column::Values(&bad), ..cols };
        let err = evaluate_columns(&e, &hw, 3600.0, &HOFFMANN, None).unwrap_err().to_string();
        assert!(err.starts_with("row 1: d_model = 0"), "{err}");
        // Categoricals as codes: row 1's code 2 is outside [Swiglu, Gelu].
        let kinds = [Mlp::Swiglu, Mlp::Gelu];
        let codes = [1_i64, 0];
        let coded = evaluate_columns(
            &ArchitectureColumns { mlp: Column::Coded { kinds: &kinds, codes: &codes }, ..cols },
            &hw,
            3600.0,
            &HOFFMANN,
            None,
        )
        .unwrap();
        assert_eq!((coded.params[0], coded.params[1]), (m.params[1], m.params[0]));
        let bad_code = [0_i64, 2];
        let e = ArchitectureColumns { mlp: Column::Coded { kinds: &kinds, codes: &bad_code }, ..cols };
        let err = evaluate_columns(&e, &hw, 3600.0, &HOFFMANN, None).unwrap_err().to_string();
        assert_eq!(err, "row 1: mlp = code 2 is invalid: expected a code below 2");
        // Integer columns may be coded too; their bad codes are named the same way.
        let widths = [4096_i64];
        let e = ArchitectureColumns { d_model: Column::Coded { kinds: &widths, codes: &bad_code }, ..cols };
        let err = evaluate_columns(&e, &hw, 3600.0, &HOFFMANN, None).unwrap_err().to_string();
        assert_eq!(err, "row 1: d_model = code 2 is invalid: expected a code below 1");
        // Filling rows the columns do not have, or slices of different lengths: errors, not panics.
        let mut out = MetricColumns::zeroed(3);
        let err = evaluate_columns_into(&cols, 0, out.slices(), &hw, 3600.0, &HOFFMANN, None).unwrap_err().to_string();
        assert_eq!(err, "rows = 0..3 is invalid: expected rows of the 2 given");
        let mut short = MetricColumns::zeroed(2);
        short.loss.pop();
        let err = evaluate_columns_into(&cols, 0, short.slices(), &hw, 3600.0, &HOFFMANN, None).unwrap_err().to_string();
        assert_eq!(err, "out = slices of 1 and 2 rows is invalid: expected every slice of one length");
        // A range of rows fills only its rows.
        let mut part = MetricColumns::zeroed(2);
        evaluate_columns_into(&cols, 1, part.slices().rows(1..2), &hw, 3600.0, &HOFFMANN, None).unwrap();
        assert_eq!((part.params[0], part.params[1]), (0.0, m.params[1]));
        let short = [1_i64];
        let err = ArchitectureColumns { n_layers: Column::Values(&short), ..cols }.rows().unwrap_err().to_string();
        assert_eq!(err, "n_layers = 1 rows is invalid: expected 2 rows like d_model (or one value)");
        // MoE columns: 0 is a dense row; the MoE row is Mixtral-like; ranges are the core's.
        let (experts, top_k) = ([0_i64, 8], [0_i64, 2]);
        let moe = ArchitectureColumns { experts: Column::Values(&experts), top_k: Column::Values(&top_k), ..cols };
        assert_eq!(moe.row(0).unwrap(), cols.row(0).unwrap());
        let r = moe.row(1).unwrap();
        assert_eq!((r.experts, r.top_k, r.shared_experts), (8, 2, 0));
        let m_moe = evaluate_columns(&moe, &hw, 3600.0, &HOFFMANN, None).unwrap();
        assert_eq!(m_moe.params[0], m.params[0]);
        assert_eq!(m_moe.params[1], crate::params::total_params(&r));
        let bad = [-1_i64, 8];
        let err = ArchitectureColumns { experts: Column::Values(&bad), ..moe }.row(0).unwrap_err().to_string();
        assert_eq!(err, "row 0: experts = -1 is invalid: expected an integer in [0, 4096]");
        let err = ArchitectureColumns { top_k: Column::Absent, ..moe }.row(1).unwrap_err().to_string();
        assert!(err.starts_with("row 1: top_k = unset"), "{err}");
        let err = ArchitectureColumns { top_k: Column::Scalar(9), ..moe }.row(1).unwrap_err().to_string();
        assert!(err.starts_with("row 1: top_k = 9") && err.contains("[1, experts = 8]"), "{err}");
    }

    #[test]
    fn a_mixture_is_flagged_and_its_loss_sees_the_active_parameters() {
        let hw = crate::hardware::tests::chip(
            80e9,
            StepTimeModel::Linear { s_per_memcpy_byte: 1e-12, s_per_flop: 1e-15, overhead_s: 0.0 },
        );
        let a = crate::architecture::tests::mixtral_8x7b();
        let m = evaluate(&a, &hw, 3600.0, &HOFFMANN);
        assert_eq!(m.params, 46_702_792_704.0);
        // The law's N is the active count (12.9B), which gives a higher loss than the total would.
        let x = LossInput::of(&a, m.tokens, None);
        assert_eq!((x.total_params, x.non_embedding_params), (12_879_925_248.0, 12_617_781_248.0));
        assert_eq!(m.loss, HOFFMANN.loss_of(&x));
        let as_total = LossInput { total_params: m.params, non_embedding_params: m.non_embedding_params, ..x };
        assert!(HOFFMANN.loss_of(&as_total) < m.loss);
        let flags = validity(&a, &m, &crate::loss::CHINCHILLA_FIT_RANGE, &HOFFMANN, None);
        assert!(flags.contains(&Validity::MixtureOfExperts) && !in_domain(&flags), "{flags:?}");
        assert!(Validity::MixtureOfExperts.message(&crate::loss::CHINCHILLA_FIT_RANGE, &HOFFMANN).contains("active"));
        // The fitted range is checked on the count the law sees: 12.9B active is inside
        // Chinchilla's (to 16B), the 46.7B total would not be. A dense model is never flagged.
        assert!(!flags.contains(&Validity::ParamsOutsideFit));
        let dense = validity(&llama_7b(), &m, &crate::loss::CHINCHILLA_FIT_RANGE, &HOFFMANN, None);
        assert!(!dense.contains(&Validity::MixtureOfExperts));
    }

    #[test]
    fn tokens_are_whole_steps_times_tokens_per_step() {
        // A step of exactly 2 s (overhead only dominates: 2 s + 1e-30 s/byte x bytes); budget 7 s
        // -> 3 whole steps x 2048 tokens = 6144 tokens.
        let hw = Hardware {
            usable_hbm_fraction: 1.0,
            ..crate::hardware::tests::chip(
                80e9,
                StepTimeModel::Linear { s_per_memcpy_byte: 1e-30, s_per_flop: 0.0, overhead_s: 2.0 },
            )
        };
        let m = evaluate(&llama_7b(), &hw, 7.0, &HOFFMANN);
        assert_eq!(m.steps, 3.0);
        assert_eq!(m.tokens, 6144.0);
        assert!(!m.fits_memory, "7B with AdamW needs > 100 GB");
        let m = evaluate(&llama_7b(), &hw, 1.0, &HOFFMANN);
        assert_eq!(m.tokens, 0.0);
        assert!(m.loss.is_infinite());
        let flags = validity(&llama_7b(), &m, &crate::loss::CHINCHILLA_FIT_RANGE, &HOFFMANN, None);
        assert_eq!(flags, vec![Validity::DoesNotFit, Validity::NoStepInBudget]);
        // Extrapolation warnings quote the law's own range.
        let fit = crate::loss::FitRange { params: (1e5, 2.5e7), tokens: (1e6, 3e8) };
        assert_eq!(
            Validity::ParamsOutsideFit.message(&fit, &HOFFMANN),
            "parameter count outside the law's fitted range (100 k to 25 M): extrapolation"
        );
        assert!(Validity::TokensOutsideFit.message(&crate::loss::CHINCHILLA_FIT_RANGE, &HOFFMANN).contains("(5 B to 500 B)"));
        assert!(Validity::DepthOutsideShapeFit.message(&fit, &HOFFMANN).contains("3 to 80"));
    }
}
