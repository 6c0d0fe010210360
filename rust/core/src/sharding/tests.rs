use super::comm::chips_in_node;
use super::step::shard_memory_bytes;
use super::*;
use crate::architecture::tests::llama_7b;
use crate::hardware::{Network, Topology};
use crate::loss::HOFFMANN;
use crate::metrics::evaluate;

/// 80 GiB, 90% usable, 3e12 B/s and 5e14 FLOP/s additive, and a network of `bandwidth`
/// bytes/s per chip each way (a one-way torus figure of one link).
fn hw_with(bandwidth: f64) -> Hardware {
    let model =
        crate::step_time::StepTimeModel::Linear { s_per_memcpy_byte: 1.0 / 3e12, s_per_flop: 1.0 / 5e14, overhead_s: 0.0 };
    let net = Network {
        link_bytes_per_s: bandwidth,
        links_per_chip: 1.0,
        topology: Topology::Torus2d,
        max_chips: 1024,
        chips_per_node: None,
        inter_node_bytes_per_s: None,
        chips_per_pod: None,
        inter_pod_bytes_per_s: None,
    };
    Hardware { network: Some(net), ..crate::hardware::tests::chip(80.0 * 1_073_741_824.0, model) }
}

fn hw() -> Hardware {
    hw_with(1e11)
}

#[test]
fn shardings_of_eight_chips() {
    let names: Vec<String> = shardings(8).iter().map(Sharding::name).collect();
    assert_eq!(names, ["DP 8", "FSDP 8", "DP 4 x TP 2", "FSDP 4 x TP 2", "DP 2 x TP 4", "FSDP 2 x TP 4", "TP 8"]);
    assert_eq!(shardings(1), vec![Sharding::SINGLE]);
}

#[test]
fn one_chip_is_the_single_chip_model() {
    let a = llama_7b();
    let h = Hardware { hbm_bytes: 1e15, ..hw() };
    let (m, step) = evaluate_sharded(&a, &h, 1, 3600.0, &HOFFMANN, None);
    let single = evaluate(&a, &h, 3600.0, &HOFFMANN);
    let step = step.unwrap();
    assert_eq!(step.sharding, Sharding::SINGLE);
    assert_eq!(m.step_time_s, single.step_time_s);
    assert_eq!(m.memory_bytes, single.memory_bytes);
    assert_eq!(m.loss, single.loss);
    assert_eq!(step.dp_comm_s + step.tp_comm_s, 0.0);
}

/// d 8, 2 layers, 4 heads of 2 (q 8), 2 KV heads (kv 4), GELU d_ff 16, vocab 16 untied,
/// seq 4, batch 4; fp32 parameters (4 B), bf16 activations (2 B).
fn small() -> Architecture {
    Architecture {
        d_model: 8,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        head_dim: 2,
        d_ff: 16,
        mlp: crate::architecture::Mlp::Gelu,
        attention: crate::architecture::Attention::Flash,
        tied_embeddings: false,
        seq_len: 4,
        batch_size: 4,
        vocab_size: 16,
        precision: crate::architecture::Precision::default(),
        recompute: crate::architecture::Recompute::None,
        micro_batch: None,
        experts: 0,
        top_k: 0,
        shared_experts: 0,
    }
}

#[test]
fn shard_and_communication_volumes_by_hand() {
    let a = small();
    // Whole model: layer = 8 (8 + 8) + 8 x 8 + 2 x 8 x 16 + 16 = 464; 2 layers + final norm
    // = 936; embeddings 2 x 16 x 8 = 256; total 1192.
    assert_eq!(total_params(&a), 1192.0);
    let s = Sharding::new(2, 2, DataParallel::Replicated);
    let sh = shard(&a, s).unwrap();
    assert_eq!((sh.batch_size, sh.n_heads, sh.n_kv_heads, sh.d_ff, sh.vocab_size), (2, 2, 1, 8, 8));
    assert_eq!(sh.d_model, 8);
    // Shard: layer = 8 (4 + 4) + 4 x 8 + 2 x 8 x 8 + 16 = 240; 2 x 240 + 8 = 488; + 2 x 8 x 8.
    assert_eq!(total_params(&sh), 616.0);
    let ic = hw().interconnect().unwrap();
    // DP all-reduce over 2: 2 x 1/2 x 616 x 4 B.
    assert_eq!(dp_comm(&sh, &ic, s).total(), 2464.0);
    // FSDP: gather twice in bf16 (2 x 1/2 x 616 x 2 B = 1232) and reduce-scatter fp32 gradients
    // (1/2 x 616 x 4 B = 1232).
    assert_eq!(dp_comm(&sh, &ic, Sharding { data: DataParallel::Sharded, ..s }).total(), 2464.0);
    // TP: (4 x 2 + 2) all-reduces of 8 tokens x 8 x 2 B = 128 B, each 2 x 1/2 x 128 B.
    assert_eq!(tp_comm(&sh, &ic, s).total(), 1280.0);
    // Micro-steps of 1 sequence: FSDP gathers and reduce-scatters twice as often (2 micro-steps),
    // TP all-reduces half the tokens twice; DP all-reduces once.
    let micro = Architecture { micro_batch: Some(1), ..a };
    let shm = shard(&micro, s).unwrap();
    assert_eq!(shm.micro_steps(), 2.0);
    assert_eq!(dp_comm(&shm, &ic, Sharding { data: DataParallel::Sharded, ..s }).total(), 2.0 * 2464.0);
    assert_eq!(tp_comm(&shm, &ic, s).total(), 1280.0);
    assert_eq!(dp_comm(&shm, &ic, s).total(), 2464.0);
    // Full recomputation all-reduces the recomputed forward too: (4 x 2 + 2 + 2 x 2) x 128.
    let full = shard(&Architecture { recompute: crate::architecture::Recompute::Full, ..a }, s).unwrap();
    assert_eq!(tp_comm(&full, &ic, s).total(), 14.0 * 128.0);
    // A micro-batch must divide the per-chip batch: 4 / dp 2 = 2 sequences, micro-batch 4 does not.
    assert!(shard(&Architecture { micro_batch: Some(4), ..a }, s).is_none());
    // Indivisible: 3 does not divide batch 4; 4 does not divide 2 KV heads.
    assert!(shard(&a, Sharding::new(3, 1, DataParallel::Replicated)).is_none());
    assert!(shard(&a, Sharding::new(1, 4, DataParallel::Replicated)).is_none());
}

#[test]
fn step_time_adds_exposed_communication() {
    let a = small();
    let s = Sharding::new(2, 2, DataParallel::Replicated);
    let st = sharded_step(&a, &hw_with(1e3), s).unwrap();
    assert_eq!(st.dp_comm_s, 2464.0 / 1e3);
    assert_eq!(st.tp_comm_s, 1280.0 / 1e3);
    assert_eq!(st.step_time_s, st.compute_s.max(st.dp_comm_s) + st.tp_comm_s);
    assert_eq!(st.bound, Bound::Communication);
    assert_ne!(sharded_step(&a, &hw_with(1e14), s).unwrap().bound, Bound::Communication);
}

#[test]
fn hierarchical_all_reduce_on_two_nodes_of_eight_by_hand() {
    // 16 chips, 8 per node, an all-reduce of S = 1600 bytes: reduce-scatter inside the node
    // (7/8 S = 1400), all-reduce of each chip's 1/8 share (200 bytes) between the 2 nodes
    // (2 x 1/2 x 200 = 200), all-gather inside the node (1400). At 100 B/s inside and 10 B/s
    // between nodes: 2800 / 100 + 200 / 10 = 48 s.
    let ic = Interconnect {
        intra_bytes_per_s: 100.0,
        chips_per_node: 8,
        inter_bytes_per_s: 10.0,
        chips_per_pod: u32::MAX,
        inter_pod_bytes_per_s: 10.0,
    };
    let v = ic.all_reduce(1600.0, 16, 8);
    assert_eq!(v, Volume { intra_bytes: 2800.0, inter_bytes: 200.0, inter_pod_bytes: 0.0 });
    assert_eq!(ic.seconds(v), 48.0);
    // DP 16 x TP 1 puts 8 DP members in each node; DP 8 x TP 2 puts 4 (TP pairs are adjacent);
    // TP 16 spans both nodes with 8 of its chips in each.
    assert_eq!(chips_in_node(&ic, Sharding::new(16, 1, DataParallel::Replicated)), (1, 8));
    assert_eq!(chips_in_node(&ic, Sharding::new(8, 2, DataParallel::Replicated)), (2, 4));
    assert_eq!(chips_in_node(&ic, Sharding::new(1, 16, DataParallel::Replicated)), (8, 1));
}

#[test]
fn fsdp_makes_a_model_fit_that_dp_cannot() {
    // LLaMA-7B: 6.74e9 params x 16 B of params, grads and moments = 108 GB > 72 GB usable.
    let a = Architecture { batch_size: 8, ..llama_7b() };
    let h = hw();
    assert!(!best_sharding(&a, &h, 1).unwrap().1);
    let dp = sharded_step(&a, &h, Sharding::new(8, 1, DataParallel::Replicated)).unwrap();
    let fsdp = sharded_step(&a, &h, Sharding::new(8, 1, DataParallel::Sharded)).unwrap();
    assert!(dp.memory_bytes > h.usable_hbm_bytes() && fsdp.memory_bytes < h.usable_hbm_bytes());
    let (best, fits) = best_sharding(&a, &h, 8).unwrap();
    assert!(fits);
    assert_ne!(best.sharding, dp.sharding, "{}", best.sharding.name());
    assert!(best.memory_bytes <= h.usable_hbm_bytes());
    // The step on each chip is shorter than the whole batch on one (imaginary, big) chip.
    let big = Hardware { hbm_bytes: 1e15, ..h };
    assert!(best.step_time_s < evaluate(&a, &big, 1.0, &HOFFMANN).step_time_s);
}
fn layout(dp: u32, tp: u32, pp: u32, vp: u32, cp: u32, sp: bool, data: DataParallel) -> Sharding {
    Sharding::layout(dp, tp, pp, vp, cp, sp, data).unwrap()
}

#[test]
fn layout_names_and_checks() {
    let s = layout(8, 4, 8, 5, 2, true, DataParallel::Optimizer);
    assert_eq!(s.name(), "ZeRO-1 DP 8 x TP 4 SP x PP 8 (VP 5) x CP 2");
    assert_eq!(s.chips(), 8 * 4 * 8 * 2);
    assert_eq!(layout(1, 1, 4, 1, 1, false, DataParallel::Sharded).name(), "PP 4");
    assert!(Sharding::layout(1, 1, 1, 2, 1, false, DataParallel::Replicated).unwrap_err().to_string().contains("vp"));
    assert!(Sharding::layout(8, 1, 1, 1, 1, true, DataParallel::Replicated).unwrap_err().to_string().contains("sp"));
    assert!(Sharding::layout(0, 1, 1, 1, 1, false, DataParallel::Replicated).is_err());
    assert_eq!(DataParallel::from_zero_stage(2).unwrap(), DataParallel::Gradients);
    assert!(DataParallel::from_zero_stage(4).is_err());
}

/// `small()` four layers deep, batch 8 in micro-batches of 1.
fn deep() -> Architecture {
    Architecture { n_layers: 4, batch_size: 8, micro_batch: Some(1), ..small() }
}

#[test]
fn one_f_one_b_and_interleaved_bubbles_by_hand() {
    // 8 micro-batches: 1F1B over 4 stages idles (4 - 1) / 8 of the busy time; over 2 stages
    // 1/8; interleaved with 2 virtual stages each, half that (Narayanan et al. 2021, eq. 1-2).
    let m = deep().micro_steps();
    assert_eq!(m, 8.0);
    assert_eq!(bubble_fraction(layout(1, 1, 4, 1, 1, false, DataParallel::Replicated), m), 3.0 / 8.0);
    assert_eq!(bubble_fraction(layout(1, 1, 2, 1, 1, false, DataParallel::Replicated), m), 1.0 / 8.0);
    assert_eq!(bubble_fraction(layout(1, 1, 2, 2, 1, false, DataParallel::Replicated), m), 1.0 / 16.0);
    assert_eq!(bubble_fraction(Sharding::SINGLE, m), 0.0);
    // The step: each of the 4 stages has 1 layer; its shard (1 layer + final norm 8 +
    // embeddings 256 = 464 + 8 + 256 = 728 params) updates them with AdamW, moving 3 p + 4 o =
    // 28 B per parameter (reads and writes), time the bubble does not idle.
    let s = layout(1, 1, 4, 1, 1, false, DataParallel::Replicated);
    let h = hw();
    let st = sharded_step(&deep(), &h, s).unwrap();
    let sh = shard(&deep(), s).unwrap();
    assert_eq!(sh.n_layers, 1);
    assert_eq!(total_params(&sh), 728.0);
    let optimizer_s = 728.0 * 28.0 / 3e12;
    let expected = (st.compute_s - optimizer_s) * 3.0 / 8.0;
    assert!((st.bubble_s - expected).abs() <= 1e-12 * expected, "{} vs {expected}", st.bubble_s);
    assert_eq!(
        st.step_time_s,
        (st.compute_s + st.bubble_s).max(st.dp_comm_s + st.cp_comm_s) + (st.tp_comm_s + st.pp_comm_s + st.ep_comm_s)
    );
    // Uneven stages price the larger: 4 layers over 3 stages -> 2.
    assert_eq!(shard(&deep(), layout(1, 1, 3, 1, 1, false, DataParallel::Replicated)).unwrap().n_layers, 2);
    // pp x vp model chunks need a layer each, or the embedding or the loss: 4 layers take at
    // most 6 chunks.
    assert!(shard(&deep(), layout(1, 1, 3, 2, 1, false, DataParallel::Replicated)).is_some());
    assert!(shard(&deep(), layout(1, 1, 4, 2, 1, false, DataParallel::Replicated)).is_none());
}

#[test]
fn pipeline_point_to_point_volume_by_hand() {
    // One micro-batch's activations: 1 sequence x 4 tokens x d 8 x 2 B = 64 B, sent forward
    // and its gradient backward at each model chunk: 2 x vp x 8 micro-batches x 64 B.
    let ic = hw().interconnect().unwrap();
    let sh = |s| shard(&deep(), s).unwrap();
    let s = layout(1, 1, 2, 1, 1, false, DataParallel::Replicated);
    assert_eq!(pp_comm(&sh(s), &ic, s), Volume { intra_bytes: 1024.0, inter_bytes: 0.0, inter_pod_bytes: 0.0 });
    let v = layout(1, 1, 2, 2, 1, false, DataParallel::Replicated);
    assert_eq!(pp_comm(&sh(v), &ic, v).total(), 2048.0);
    // With TP 2 and sequence parallelism each chip sends its 1/2 slice.
    let t = layout(1, 2, 2, 1, 1, true, DataParallel::Replicated);
    assert_eq!(pp_comm(&sh(t), &ic, t).total(), 512.0);
    // Stages 1 chip apart with 1 chip per node: between nodes.
    let one_per_node = Interconnect { chips_per_node: 1, ..ic };
    assert_eq!(pp_comm(&sh(s), &one_per_node, s), Volume { intra_bytes: 0.0, inter_bytes: 1024.0, inter_pod_bytes: 0.0 });
}

#[test]
fn per_stage_memory_by_hand() {
    // One micro-batch (1 sequence, T = 4 tokens) of one layer keeps, in bf16:
    // T (4 d + q + 2 kv + f_in + f) = 4 (32 + 8 + 8 + 16 + 16) = 320 elements = 640 B, the
    // attention output T q = 32 elements = 64 B, and flash's fp32 log-sum-exp 4 B x 4 heads x
    // 4 tokens = 64 B: 768 B.
    let s2 = layout(1, 1, 2, 1, 1, false, DataParallel::Replicated);
    let stage = shard(&deep(), s2).unwrap();
    assert_eq!(kept_bytes_per_layer(&stage), 768.0);
    // 1F1B over 2 stages: the first stage keeps min(2, 8) = 2 micro-batches of its 2 layers.
    assert_eq!(shard_memory_bytes(&stage, s2), memory_bytes(&stage) + 2.0 * 768.0);
    // Interleaved (vp 2): 2 x (1 + 1 / (2 x 2)) = 2.5 micro-batches.
    let v = layout(1, 1, 2, 2, 1, false, DataParallel::Replicated);
    assert_eq!(shard_memory_bytes(&stage, v), memory_bytes(&stage) + 1.5 * 2.0 * 768.0);
    // Fewer micro-batches than stages: all of them (2 here, 4 stages of 1 layer).
    let few = Architecture { micro_batch: Some(4), ..deep() };
    let s4 = layout(1, 1, 4, 1, 1, false, DataParallel::Replicated);
    let st4 = shard(&few, s4).unwrap();
    assert_eq!(in_flight_micro_batches(s4, st4.micro_steps()), 2.0);
}

#[test]
fn sequence_parallel_volumes_memory_and_norm_work_by_hand() {
    // TP 2 on small(): the shard's 16 tokens (batch 4 x seq 4) of d 8 in bf16 (T d = 128
    // elements, 256 B). Each all-reduce becomes a reduce-scatter and an all-gather: the same
    // volume, 10 all-reduces x 2 x 1/2 x 256 B = 2560 B either way.
    let a = small();
    let ic = hw().interconnect().unwrap();
    let tp = layout(1, 2, 1, 1, 1, false, DataParallel::Replicated);
    let sp = layout(1, 2, 1, 1, 1, true, DataParallel::Replicated);
    let sh = shard(&a, tp).unwrap();
    assert_eq!(tp_comm(&sh, &ic, tp).total(), 2560.0);
    assert_eq!(tp_comm(&sh, &ic, sp).total(), 2560.0);
    // Memory: the replicated activations are 4 T d per layer (2 layers) and 3 T d per step:
    // 256 B x 11 = 2816 B, half of it saved.
    assert_eq!(shard_memory_bytes(&sh, tp) - shard_memory_bytes(&sh, sp), 1408.0);
    // Norm rows (t 16, d 8, a 2 B, p 4 B): each forward add+rmsnorm reads 2 a T d + p d = 544
    // and writes 512 (1056 B, 5 x 128 = 640 FLOPs); each backward reads 3 a T d + p d = 800
    // and writes a T d + p d = 288 (1088 B, 1280 FLOPs); two of each per layer; the final
    // norm: 1056 B forward, 544 + 288 = 832 B backward. 2 x 4288 + 1888 = 10464 B and
    // 2 x 3840 + 1920 = 9600 FLOPs, half of them saved.
    let h = hw();
    let (plain, split) = (sharded_step(&a, &h, tp).unwrap(), sharded_step(&a, &h, sp).unwrap());
    assert_eq!(plain.memcpy_bytes - split.memcpy_bytes, 5232.0);
    assert_eq!(plain.work.flops - split.work.flops, 4800.0);
    assert!(split.compute_s < plain.compute_s);
}

#[test]
fn ring_attention_volume_and_work_by_hand() {
    // CP 2 on small(): each chip holds 2 of the 4 tokens of each of 4 sequences (8 tokens).
    // Its K and V chunk: 8 tokens x 2 x kv 4 x 2 B = 128 B; a ring of 2 passes the other
    // chip's chunk (128 B) in the forward, twice in the backward: 3 x 2 layers x 128 B.
    let a = small();
    let ic = hw().interconnect().unwrap();
    let s = layout(1, 1, 1, 1, 2, false, DataParallel::Replicated);
    let sh = shard(&a, s).unwrap();
    assert_eq!(sh.seq_len, 2);
    assert_eq!(cp_comm(&sh, &ic, s).total(), 768.0);
    let full = shard(&Architecture { recompute: Recompute::Full, ..a }, s).unwrap();
    assert_eq!(cp_comm(&full, &ic, s).total(), 4.0 * 2.0 * 128.0);
    // Each chip's queries attend to the whole sequence: together the 2 chips do the
    // attention-score work of one chip holding it all, each half of it (S^2 / 2 per sequence).
    let h = hw();
    let one = sharded_step(&a, &h, Sharding::SINGLE).unwrap();
    let cp = sharded_step(&a, &h, s).unwrap();
    assert_eq!(cp.work.attention_flops, one.work.attention_flops / 2.0);
    assert_eq!(cp.work.matmul_flops, one.work.matmul_flops / 2.0);
    assert_eq!(cp.cp_comm_bytes, 768.0);
}

#[test]
fn zero_stages_volumes_and_memory_by_hand() {
    // The DP 2 x TP 2 shard of small(): 616 parameters (see above), fp32 master weights and
    // moments, bf16 compute copies.
    let a = small();
    let ic = hw().interconnect().unwrap();
    let base = Sharding::new(2, 2, DataParallel::Replicated);
    let sh = shard(&a, base).unwrap();
    let with = |data| Sharding { data, ..base };
    // ZeRO-1: reduce-scatter fp32 gradients (1/2 x 616 x 4 = 1232) and all-gather bf16
    // parameters (1/2 x 616 x 2 = 616).
    assert_eq!(dp_comm(&sh, &ic, with(DataParallel::Optimizer)).total(), 1848.0);
    // ZeRO-2 with micro-batches of 1 (2 micro-steps): the reduce-scatter each micro-step.
    let shm = shard(&Architecture { micro_batch: Some(1), ..a }, base).unwrap();
    assert_eq!(dp_comm(&shm, &ic, with(DataParallel::Gradients)).total(), 2.0 * 1232.0 + 616.0);
    // Memory: ZeRO-1 keeps 1/2 of the two fp32 moments (saves 1/2 x 616 x 8 = 2464 B), ZeRO-2
    // of the gradients too (1/2 x 616 x 12 = 3696 B).
    let dp = shard_memory_bytes(&sh, base);
    assert_eq!(dp - shard_memory_bytes(&sh, with(DataParallel::Optimizer)), 2464.0);
    assert_eq!(dp - shard_memory_bytes(&sh, with(DataParallel::Gradients)), 3696.0);
    // Every ZeRO stage updates half the parameters on each chip: AdamW's 28 B per parameter.
    let h = hw();
    let plain = sharded_step(&a, &h, base).unwrap();
    let z1 = sharded_step(&a, &h, with(DataParallel::Optimizer)).unwrap();
    assert_eq!(plain.memcpy_bytes - z1.memcpy_bytes, 0.5 * 616.0 * 28.0);
}

#[test]
fn top_2_all_to_all_volume_by_hand() {
    // small() as a mixture of 4 GELU experts, top-2, under DP 2 with EP 2: each chip holds 2
    // experts and 2 sequences x 4 tokens = 8 tokens, whose 2 routed copies (16 x d 8 x 2 B =
    // 256 B) are dispatched; half stay on the chip, half (128 B) go to the other. Dispatch and
    // combine forward, both again backward: 4 all-to-alls x 2 layers x 128 B = 1024 B.
    let a = Architecture { experts: 4, top_k: 2, ..small() };
    let ic = hw().interconnect().unwrap();
    let s = Sharding::new(2, 1, DataParallel::Optimizer).with_experts(2).unwrap();
    assert_eq!(s.name(), "ZeRO-1 DP 2 x EP 2");
    let sh = shard(&a, s).unwrap();
    assert_eq!((sh.experts, sh.top_k, sh.batch_size), (2, 2, 2));
    assert_eq!(ep_comm(&sh, &ic, s), Volume { intra_bytes: 1024.0, inter_bytes: 0.0, inter_pod_bytes: 0.0 });
    // Full recomputation dispatches and combines once more: 6 x 2 x 128 B.
    let full = shard(&Architecture { recompute: Recompute::Full, ..a }, s).unwrap();
    assert_eq!(ep_comm(&full, &ic, s).total(), 1536.0);
    // One chip per node: the other chip's half crosses between nodes.
    let apart = Interconnect { chips_per_node: 1, ..ic };
    assert_eq!(ep_comm(&sh, &apart, s).inter_bytes, 1024.0);
    // Each chip holds half the experts: 2 x 2 x 8 x 16 = 512 fewer parameters per layer, and
    // its router is priced at its own experts' width (8 x 2, not 8 x 4: 16 fewer, a 1/ep
    // undercount of the router, well under 1% of any real layer).
    let unsplit = shard(&a, Sharding::new(2, 1, DataParallel::Optimizer)).unwrap();
    assert_eq!(total_params(&unsplit) - total_params(&sh), 2.0 * (512.0 + 16.0));
    // The expert-parallel step adds the all-to-all time.
    let st = sharded_step(&a, &hw(), s).unwrap();
    assert_eq!(st.ep_comm_bytes, 1024.0);
    assert!(st.ep_comm_s > 0.0);
    // ep must divide the experts and dp x cp, and a dense MLP has none to split.
    assert!(check_divides(&Architecture { experts: 6, top_k: 2, ..small() }, Sharding { ep: 4, ..s }).is_err());
    assert!(Sharding::new(2, 1, DataParallel::Optimizer).with_experts(4).is_err());
    // Folded onto the TP chips (DP 2 x TP 2, EP 4): whole experts (d_ff 16, not 8), one per chip.
    let folded = Sharding::new(2, 2, DataParallel::Optimizer).with_experts(4).unwrap();
    assert!(folded.folds_experts());
    let shf = shard(&a, folded).unwrap();
    assert_eq!((shf.experts, shf.d_ff, shf.n_heads), (1, 16, 2));
    assert!(check_divides(&small(), s).unwrap_err().to_string().contains("dense"));
}

#[test]
fn fp8_matmuls_at_their_rate_by_hand() {
    // small()'s dense matmuls, 16 tokens: per layer qkv 2 x 16 x 8 x 16 = 4096, output 2048,
    // MLP 4096 + 4096 (14,336; 2 layers 28,672), logits 2 x 16 x 8 x 16 = 4096: 32,768
    // forward, twice that backward: 98,304 FLOPs.
    let a = small();
    let one = sharded_step(&a, &hw(), Sharding::SINGLE).unwrap();
    assert_eq!(one.work.matmul_flops, 98_304.0);
    // A chip whose FP8 peak is twice its bf16 peak (datasheet: factor 1/2), then a
    // calibration that found 0.7; the linear model prices every FLOP at 1 / 5e14 s.
    let fp8 = Sharding::SINGLE.with_matmul(MatmulPrecision::Fp8);
    assert!(check_layout(&a, &hw(), fp8).unwrap_err().to_string().contains("chip.peak_fp8_flops_per_s"));
    let h = hw().with_matmul_peaks(Some(2.0 * 9.894e14), None, None).unwrap();
    let st = sharded_step(&a, &h, fp8).unwrap();
    let saved = one.compute_s - st.compute_s;
    assert!((saved - 0.5 * 98_304.0 / 5e14).abs() < 1e-9 * saved, "{saved}");
    assert_eq!(st.work.matmul_flops, 98_304.0, "the work reported is the FLOPs executed");
    let calibrated = h.with_matmul_time_factor(MatmulPrecision::Fp8, "calibration.fp8_matmul_time_factor", 0.7).unwrap();
    let saved = one.compute_s - sharded_step(&a, &calibrated, fp8).unwrap().compute_s;
    assert!((saved - 0.3 * 98_304.0 / 5e14).abs() < 1e-9 * saved, "{saved}");
    assert_eq!(calibrated.uncalibrated().matmul_time_factor(MatmulPrecision::Fp8).unwrap(), 0.5);
    assert_eq!(fp8.name(), "single chip, FP8 matmuls");
    // A peak below bf16's is refused; so is a factor out of range.
    assert!(hw().with_matmul_peaks(Some(1e14), None, None).is_err());
    assert!(h.with_matmul_time_factor(MatmulPrecision::Fp8, "f", 0.0).is_err());
}

#[test]
fn best_layout_beats_or_matches_every_plain_sharding_and_fits() {
    // LLaMA-7B at batch 64 in micro-batches of 1 on 16 chips of 8 per node: the layout search
    // covers the plain shardings (PP 1, CP 1), so it is never slower than the best of them.
    let a = Architecture { batch_size: 64, micro_batch: Some(1), ..llama_7b() };
    let net = Network {
        link_bytes_per_s: 4.5e11,
        links_per_chip: 1.0,
        topology: Topology::Torus2d,
        max_chips: 1024,
        chips_per_node: Some(8),
        inter_node_bytes_per_s: Some(5e10),
        chips_per_pod: None,
        inter_pod_bytes_per_s: None,
    };
    let h = Hardware { network: Some(net), ..hw() };
    let (best, priced) = best_layout(&a, &h, 16, &[MatmulPrecision::Bf16]);
    let best = best.unwrap();
    assert!(priced > 20, "{priced}");
    assert!(best.memory_bytes <= h.usable_hbm_bytes());
    let plain = best_sharding(&a, &h, 16).unwrap();
    if plain.1 {
        assert!(best.step_time_s <= plain.0.step_time_s * (1.0 + 1e-12));
    }
    // A format the chip lacks is never chosen.
    let (fp8, _) = best_layout(&a, &h, 16, &[MatmulPrecision::Fp8]);
    assert!(fp8.is_none());
}
