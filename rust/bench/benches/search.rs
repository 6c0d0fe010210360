//! Criterion benches of the workloads in bench/ (pytest-benchmark runs the same through Python, so
//! the difference is the cost of the boundary): `evaluate_many` over 1M random configurations, and
//! `evaluate_columns` over the same rows as columns, and each part of one configuration's
//! `evaluate` alone on one core;
//! `search` over the 1M / 10M spaces of bench/workloads.py on the h100_sxm datasheet roofline, on
//! one chip and on 8 (every sharding; with the kernel and with the per-configuration reference
//! path, same run); the dense worst case (b200, guards opened); and two plans over the default
//! space (33M configurations): 512 H100s, and a TPU v5e pod with `--chips auto` (1 to 256 chips).
//!
//!     cargo bench -p timescale-bench --bench search

use criterion::{criterion_group, criterion_main, Criterion};
use timescale_core::architecture::Recompute;
use timescale_core::flops::flops_per_step;
use timescale_core::memcpy::step_work;
use timescale_core::memory::memory_bytes;
use timescale_core::metrics::{evaluate, evaluate_columns, evaluate_many, ArchitectureColumns, Column};
use timescale_core::params::{non_embedding_params, total_params};
use timescale_core::search::{search, search_plan, search_range_reference, Guards, SearchParams, SearchRequest, SearchSpace};
use timescale_core::{
    loss::HOFFMANN, Architecture, Attention, Budget, Chips, Datasheet, Hardware, Mlp, Network, Precision, Roofline, Topology,
};

/// One part of a configuration's `evaluate`, reduced to a number (so that nothing is optimised away).
type Part<'a> = dyn Fn(&Architecture) -> f64 + 'a;

/// A datasheet roofline (sum) with the efficiencies of the uncalibrated hardware files.
fn roofline(peak_bf16_flops_per_s: f64, hbm_bytes_per_s: f64) -> Datasheet {
    Datasheet {
        peak_bf16_flops_per_s,
        hbm_bytes_per_s,
        roofline: Roofline::Sum,
        flops_efficiency: 0.78,
        attention_efficiency: Some(0.27),
        bandwidth_efficiency: 0.56,
        overhead_s: 0.039,
    }
}

/// hardware/h100_sxm.toml's figures (its datasheet roofline) and network: 8 per NVLink node,
/// 5e10 B/s per GPU between nodes.
fn h100() -> Hardware {
    let network = Network {
        link_bytes_per_s: 9e11,
        links_per_chip: 1.0,
        topology: Topology::NvlinkSwitch,
        max_chips: 4096,
        chips_per_node: Some(8),
        inter_node_bytes_per_s: Some(5e10),
        chips_per_pod: None,
        inter_pod_bytes_per_s: None,
    };
    Hardware::from_datasheet(85_899_345_920.0, 0.9, roofline(9.894e14, 3.35e12), Some(network), Some(3.0)).expect("valid figures")
}

/// hardware/tpu_v5e.toml's figures: a 256-chip 2D torus pod.
fn tpu_v5e() -> Hardware {
    let network = Network {
        link_bytes_per_s: 4.5e10,
        links_per_chip: 4.0,
        topology: Topology::Torus2d,
        max_chips: 256,
        chips_per_node: None,
        inter_node_bytes_per_s: None,
        chips_per_pod: None,
        inter_pod_bytes_per_s: None,
    };
    Hardware::from_datasheet(17_179_869_184.0, 0.9, roofline(1.97e14, 8.19e11), Some(network), Some(1.2)).expect("valid figures")
}

/// hardware/b200.toml's memory and rates (the dense worst case).
fn b200() -> Hardware {
    Hardware::from_datasheet(180e9, 0.9, roofline(2.25e15, 8e12), None, None).expect("valid figures")
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
        d_ff_multiple: 1,
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
                experts: 0,
                top_k: 0,
                shared_experts: 0,
            }
        })
        .collect()
}

fn params(hardware: Hardware, chips: u32, guards: Guards) -> SearchParams {
    SearchParams { hardware, budget_s: 12.0 * 3600.0, law: HOFFMANN, guards, top_k: 10, unique_tokens: None, chips }
}

fn benches(c: &mut Criterion) {
    let hw = h100();
    let archs = random_archs(1_000_000);
    c.bench_function("evaluate_many 1M", |b| b.iter(|| evaluate_many(&archs, &hw, 12.0 * 3600.0, &HOFFMANN)));
    // Where one configuration's time goes: each part alone over the same rows, on one core (each
    // includes streaming the configurations from memory, what `validate` alone about measures).
    let parts: [(&str, &Part); 7] = [
        ("evaluate", &|a| {
            let m = evaluate(a, &hw, 12.0 * 3600.0, &HOFFMANN);
            m.loss + m.params + m.memory_bytes + m.step_time_s
        }),
        ("step_work", &|a| {
            let w = step_work(a);
            w.bytes + w.flops + w.matmul_flops + w.attention_flops + w.kernels
        }),
        ("both parameter counts", &|a| total_params(a) + non_embedding_params(a)),
        ("flops_per_step", &flops_per_step),
        ("memory_bytes", &memory_bytes),
        ("loss", &|a| {
            HOFFMANN.loss_of_shape(
                f64::from(a.d_ff) * 1e5,
                f64::from(a.vocab_size) * 1e5,
                f64::from(a.d_model),
                f64::from(a.n_layers),
            )
        }),
        ("validate", &|a| if a.validate().is_ok() { 1.0 } else { 0.0 }),
    ];
    for (name, part) in parts {
        c.bench_function(&format!("evaluate part 1M, 1 core: {name}"), |b| {
            b.iter(|| archs.iter().map(|a| part(std::hint::black_box(a))).sum::<f64>())
        });
    }
    // The same rows as numpy-style columns (what `evaluate` hands the core): validation,
    // defaults and eleven output columns included.
    let ints = |f: fn(&Architecture) -> u32| archs.iter().map(|a| i64::from(f(a))).collect::<Vec<i64>>();
    let (d, l, h, kv, hd, ff) = (
        ints(|a| a.d_model),
        ints(|a| a.n_layers),
        ints(|a| a.n_heads),
        ints(|a| a.n_kv_heads),
        ints(|a| a.head_dim),
        ints(|a| a.d_ff),
    );
    let (s, bs, v) = (ints(|a| a.seq_len), ints(|a| a.batch_size), ints(|a| a.vocab_size));
    let mlp: Vec<Mlp> = archs.iter().map(|a| a.mlp).collect();
    let attention: Vec<Attention> = archs.iter().map(|a| a.attention).collect();
    let tied: Vec<bool> = archs.iter().map(|a| a.tied_embeddings).collect();
    let cols = ArchitectureColumns {
        d_model: Column::Values(&d),
        n_layers: Column::Values(&l),
        n_heads: Column::Values(&h),
        n_kv_heads: Column::Values(&kv),
        head_dim: Column::Values(&hd),
        d_ff: Column::Values(&ff),
        mlp: Column::Values(&mlp),
        attention: Column::Values(&attention),
        tied_embeddings: Column::Values(&tied),
        seq_len: Column::Values(&s),
        batch_size: Column::Values(&bs),
        vocab_size: Column::Values(&v),
        param_bytes: Column::Absent,
        activation_bytes: Column::Absent,
        optimizer_bytes: Column::Absent,
        recompute: Column::Absent,
        micro_batch: Column::Absent,
        experts: Column::Absent,
        top_k: Column::Absent,
        shared_experts: Column::Absent,
    };
    c.bench_function("evaluate_columns 1M", |b| b.iter(|| evaluate_columns(&cols, &hw, 12.0 * 3600.0, &HOFFMANN, None).unwrap()));
    let guards = Guards::for_law(&HOFFMANN);
    for (name, widths) in [("search 1M", 12), ("search 10M", 116)] {
        let s = space(widths);
        c.bench_function(name, |b| b.iter(|| search(&s, &params(hw, 1, guards)).unwrap()));
    }
    // The law without its evidence terms (the kernel before them), in the same run: the terms' cost.
    let s = space(116);
    let plain = SearchParams { law: HOFFMANN.plain(), ..params(hw, 1, Guards::default()) };
    c.bench_function("search 10M, plain law", |b| b.iter(|| search(&s, &plain).unwrap()));
    let s = space(12);
    let eight = params(hw, 8, guards);
    c.bench_function("search 1M, 8 chips", |b| b.iter(|| search(&s, &eight).unwrap()));
    let n = s.validate().unwrap();
    // The per-configuration path the kernel replaced (every sharding's op table per configuration),
    // on one core here (the search runs it on every core).
    c.bench_function("search 1M, 8 chips, reference path (1 core)", |b| b.iter(|| search_range_reference(&s, &eight, 0, n)));
    let dense = SearchSpace {
        head_dim: vec![32, 64],
        kv_group: vec![1, 2],
        seq_len: vec![128, 256, 512, 1024],
        batch_size: vec![1, 2, 4, 8, 16, 32, 64],
        ..space(116)
    };
    let open = Guards { aspect_ratio_min: 1e-3, aspect_ratio_max: 1e6, max_tokens_per_step: Some(1e12), critical_batch: false };
    c.bench_function("search dense 10M", |b| b.iter(|| search(&dense, &params(b200(), 1, open)).unwrap()));
    let default = SearchSpace::default();
    let plan = |hardware: Hardware, chips: Chips| SearchRequest {
        hardware,
        budget: Budget { hours: Some(12.0), ..Budget::default() },
        chips,
        law: HOFFMANN,
        guards,
        top_k: 10,
        unique_tokens: None,
    };
    let h100_512 = plan(hw, Chips::Count(512));
    c.bench_function("plan default 33M, 512 h100", |b| b.iter(|| search_plan(&default, &h100_512).unwrap()));
    let pod = plan(tpu_v5e(), Chips::Auto);
    c.bench_function("plan default 33M, tpu_v5e auto (9 counts)", |b| b.iter(|| search_plan(&default, &pod).unwrap()));
}

criterion_group! {
    name = all;
    config = Criterion::default().sample_size(10);
    targets = benches
}
criterion_main!(all);
