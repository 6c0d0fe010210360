//! Criterion benches of the workloads in bench/ (pytest-benchmark runs the same through Python, so
//! the difference is the cost of the boundary): `evaluate_many` over 1M random configurations and
//! `search` over the 1M / 10M spaces of bench/workloads.py on the h100_sxm datasheet roofline.
//!
//!     cargo bench -p timescale-core --bench search

use criterion::{criterion_group, criterion_main, Criterion};
use timescale_core::architecture::Recompute;
use timescale_core::metrics::evaluate_many;
use timescale_core::search::{search, Guards, SearchParams, SearchSpace};
use timescale_core::{loss::HOFFMANN, Architecture, Attention, Datasheet, Hardware, Mlp, Precision, Roofline};

/// hardware/h100_sxm.toml's figures: its datasheet roofline (sum).
fn h100() -> Hardware {
    let datasheet = Datasheet {
        peak_bf16_flops_per_s: 9.894e14,
        hbm_bytes_per_s: 3.35e12,
        roofline: Roofline::Sum,
        flops_efficiency: 0.79,
        attention_efficiency: None,
        bandwidth_efficiency: 0.875,
        overhead_s: 0.0,
    };
    Hardware::from_datasheet(80e9, 0.9, datasheet, None, Some(3.0)).expect("valid figures")
}

/// bench/workloads.py: d_model = 64 .. 64 n, the other axes fixed (86,016 configurations per width).
fn space(widths: u32) -> SearchSpace {
    SearchSpace {
        d_model: (1..=widths).map(|i| 64 * i).collect(),
        n_layers: (1..=48).map(|i| 2 * i).collect(),
        head_dim: vec![64, 128],
        kv_group: vec![1, 4],
        mlp: vec![Mlp::Gelu, Mlp::Swiglu],
        ffn_mult: vec![8.0 / 3.0, 4.0],
        attention: vec![Attention::Flash, Attention::Materialized],
        tied_embeddings: vec![false, true],
        vocab_size: vec![32_000],
        seq_len: vec![512, 1024, 2048, 4096],
        recompute: vec![Recompute::None],
        micro_batch: vec![None],
        batch_size: vec![8, 16, 32, 64, 128, 256, 512],
        precision: Precision::default(),
    }
}

fn random_archs(n: usize) -> Vec<Architecture> {
    let mut x: u64 = 42;
    let mut next = move |m: u64| {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((x >> 33) % m) as u32
    };
    (0..n)
        .map(|_| {
            let head_dim = [32, 64, 128][next(3) as usize];
            let group = [1, 2, 4][next(3) as usize];
            let n_heads = (1 + next(64)) * group;
            Architecture {
                d_model: n_heads * head_dim,
                n_layers: 1 + next(96),
                n_heads,
                n_kv_heads: n_heads / group,
                head_dim,
                d_ff: 64 + next(32704),
                mlp: if next(2) == 0 { Mlp::Gelu } else { Mlp::Swiglu },
                attention: if next(2) == 0 { Attention::Flash } else { Attention::Materialized },
                tied_embeddings: next(2) == 0,
                seq_len: [256, 512, 1024, 2048, 4096, 8192][next(6) as usize],
                batch_size: 1 + next(512),
                vocab_size: 256 + next(255_744),
                precision: Precision::default(),
                recompute: Recompute::None,
                micro_batch: None,
            }
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let hw = h100();
    let archs = random_archs(1_000_000);
    c.bench_function("evaluate_many 1M", |b| b.iter(|| evaluate_many(&archs, &hw, 12.0 * 3600.0, &HOFFMANN)));
    let params = SearchParams {
        hardware: hw,
        budget_s: 12.0 * 3600.0,
        law: HOFFMANN,
        guards: Guards::default(),
        top_k: 10,
        unique_tokens: None,
        chips: 1,
    };
    for (name, widths) in [("search 1M", 12), ("search 10M", 116)] {
        let s = space(widths);
        c.bench_function(name, |b| b.iter(|| search(&s, &params).unwrap()));
    }
}

criterion_group! {
    name = all;
    config = Criterion::default().sample_size(10);
    targets = benches
}
criterion_main!(all);
