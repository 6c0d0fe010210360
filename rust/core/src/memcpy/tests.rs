use super::*;
use crate::architecture::tests::tiny;
use crate::architecture::{Mlp, Recompute};

/// `step_work` against its definition: every row of the table weighted by its multiplicity,
/// summed in table order. Exactly (to the bit), over random shapes, every attention,
/// recomputation and MLP kind, tied or not, with and without micro-batches.
#[test]
fn step_work_is_the_tables_weighted_sum_to_the_bit() {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |m: u32| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % u64::from(m)) as u32
    };
    for _ in 0..20_000 {
        let head_dim = [16, 64, 128][next(3) as usize];
        let group = [1, 2, 8][next(3) as usize];
        let n_heads = (1 + next(48)) * group;
        let batch_size = 1 + next(300);
        let micro_batch = [None, Some(1), Some(batch_size)][next(3) as usize];
        let experts = [0, 0, 1 + next(300)][next(3) as usize];
        let top_k = if experts > 0 { 1 + next(experts) } else { 0 };
        let shared_experts = if experts > 0 { next(3) } else { 0 };
        let a = Architecture {
            d_model: n_heads * head_dim,
            n_layers: 1 + next(120),
            n_heads,
            n_kv_heads: n_heads / group,
            head_dim,
            d_ff: 1 + next(40_000),
            mlp: [Mlp::Gelu, Mlp::Swiglu][next(2) as usize],
            attention: [Attention::Flash, Attention::Materialized][next(2) as usize],
            tied_embeddings: next(2) == 0,
            seq_len: 1 + next(9000),
            batch_size,
            vocab_size: 2 + next(260_000),
            precision: crate::architecture::Precision {
                param_bytes: [2.0, 4.0][next(2) as usize],
                activation_bytes: [1.0, 2.0, 4.0][next(3) as usize],
                optimizer_bytes: [0.5, 4.0][next(2) as usize],
            },
            recompute: [Recompute::None, Recompute::Selective, Recompute::Full][next(3) as usize],
            micro_batch,
            experts,
            top_k,
            shared_experts,
        };
        let l = f64::from(a.n_layers);
        let mut want = StepWork::default();
        for op in op_table(&a).ops() {
            let k = op.multiplicity(l);
            want.matmul_flops += k * op.matmul_flops;
            want.attention_flops += k * op.attention_flops;
            want.flops += k * op.flops;
            want.bytes += k * (op.read_bytes + op.write_bytes);
            want.kernels += k;
        }
        let got = step_work(&a);
        assert_eq!(
            [got.matmul_flops, got.attention_flops, got.flops, got.bytes, got.kernels].map(f64::to_bits),
            [want.matmul_flops, want.attention_flops, want.flops, want.bytes, want.kernels].map(f64::to_bits),
            "{a:?}"
        );
    }
}

#[test]
fn tiny_config_by_hand_row_by_row() {
    let a = tiny();
    assert_eq!(total_params(&a), 188.0);
    let t = op_table(&a);
    let row = |n: &str| {
        let o = t.get(n).unwrap_or_else(|| panic!("no row {n}"));
        (o.read_bytes, o.write_bytes)
    };
    // embedding: ids 4 x 4 + rows 16 x 4 = 80 read; 16 x 2 = 32 written.
    assert_eq!(row("embedding lookup"), (80.0, 32.0));
    // add+norm: 32 elems x 2 + weight 4 x 4 = 80; writes 32 x 2 = 64.
    assert_eq!(row("attention add+rmsnorm"), (80.0, 64.0));
    // qkv: x 16 x 2 = 32 + W 4 x 8 x 4 = 128; writes T x 8 x 2 = 64.
    assert_eq!(row("qkv projection"), (160.0, 64.0));
    // scores: q 16 + k 8 elems x 2 = 48; writes 32 x 2 = 64.
    assert_eq!(row("scores q k^T"), (48.0, 64.0));
    assert_eq!(row("softmax"), (64.0, 64.0));
    // probs @ v: (32 + 8) x 2 = 80; writes 16 x 2 = 32.
    assert_eq!(row("probs @ v"), (80.0, 32.0));
    assert_eq!(row("output projection"), (96.0, 32.0));
    assert_eq!(row("mlp input projection"), (160.0, 64.0));
    assert_eq!(row("mlp activation"), (64.0, 64.0));
    assert_eq!(row("mlp output projection"), (192.0, 32.0));
    // logits: 32 + W 32 x 4 = 160; writes 32 fp32 = 128. Cross-entropy: 128 + ids 16; writes 16.
    assert_eq!(row("logits projection"), (160.0, 128.0));
    assert_eq!(row("cross-entropy"), (144.0, 16.0));
    // backward rows
    assert_eq!(row("cross-entropy backward"), (160.0, 64.0));
    // logits bwd: dY 2 x 32 x 2 = 128 + W 128 + X 32 = 288; dX 32 + dW 128 = 160.
    assert_eq!(row("logits projection backward"), (288.0, 160.0));
    assert_eq!(row("final rmsnorm backward"), (80.0, 48.0));
    assert_eq!(row("mlp output projection backward"), (256.0, 192.0));
    assert_eq!(row("mlp activation backward"), (128.0, 64.0));
    assert_eq!(row("mlp input projection backward"), (288.0, 160.0));
    assert_eq!(row("mlp add+rmsnorm backward"), (112.0, 48.0));
    assert_eq!(row("output projection backward"), (160.0, 96.0));
    assert_eq!(row("probs @ v backward"), (144.0, 80.0));
    assert_eq!(row("softmax backward"), (128.0, 64.0));
    assert_eq!(row("scores q k^T backward"), (176.0, 48.0));
    assert_eq!(row("qkv projection backward"), (288.0, 160.0));
    // untied embedding gradient: reads dx 32 + ids 16; writes the dense 8 x 4 fp32 table = 128.
    assert_eq!(row("embedding backward"), (48.0, 128.0));
    // AdamW: 188 x (4 + 4 + 4 + 4) read, 188 x (4 + 4 + 4) written.
    assert_eq!(row("adamw update"), (3008.0, 2256.0));

    // Pass totals summed by hand: forward 2272, backward 3728, optimizer 5264.
    assert_eq!(memcpy_bytes_in_pass(&a, Pass::Forward), 2272.0);
    assert_eq!(memcpy_bytes_in_pass(&a, Pass::Backward), 3728.0);
    assert_eq!(memcpy_bytes_in_pass(&a, Pass::Optimizer), 5264.0);
    assert_eq!(memcpy_bytes_per_step(&a), 11_264.0);
}

#[test]
fn tiny_config_fixed_traffic_by_hand() {
    // Batch-independent bytes of the tiny config: forward weights and norm weights 480 per
    // layer + final norm 16 + logits weights 128; backward weight reads and gradient writes of
    // the four layer matmuls 256 + 128 + 256 + 256, norm weights 64, logits 256, final norm 32,
    // dense embedding gradient 128; AdamW 5264. Total 7264 of 11264.
    let a = tiny();
    assert_eq!(memcpy_fixed_bytes_per_step(&a), 7264.0);
    let big_batch = Architecture { batch_size: 9, ..a };
    assert!((memcpy_fixed_bytes_per_step(&big_batch) - 7264.0).abs() < 1e-9);
    // Scores of tiny(): 1 layer x batch 1 x 2 heads x 4^2 x 2 bytes; none with flash.
    assert_eq!(attention_score_bytes_per_step(&a), 64.0);
    assert_eq!(attention_score_bytes_per_step(&Architecture { attention: Attention::Flash, ..a }), 0.0);
}

#[test]
fn tiny_config_hardware_flops_by_hand() {
    // Row by row (T 4, d 4, q 4, qkv 8, f = f_in 8, V 8, S 4, P 32, attention matmul 2 T S q = 128):
    // forward 2128 = norms 3 x 80 + qkv 256 + scores 128 + softmax 96 + pv 128 + out 128
    //   + mlp in 256 + activation 256 + mlp out 256 + logits 256 + cross-entropy 128;
    // backward 4272 = twice each forward row except the lookup, + embedding scatter 16;
    // AdamW 12 x 188 = 2256.
    let a = tiny();
    assert_eq!(hardware_flops_per_step(&a), 2128.0 + 4272.0 + 2256.0);
    // 20 per-layer rows + 9 per-step rows.
    assert_eq!(kernels_per_step(&a), 29.0);
    assert_eq!(kernels_per_step(&Architecture { n_layers: 3, ..a }), 69.0);
}

#[test]
fn hardware_flops_are_chinchilla_without_the_lookup_plus_elementwise() {
    // Chinchilla counts the embedding as a 2 S V d matmul and no elementwise work; the table
    // counts no FLOPs for the lookup and adds norms, activation, loss, AdamW (and flash's
    // backward recomputation of the scores).
    for attention in [Attention::Materialized, Attention::Flash] {
        let a = Architecture {
            attention,
            d_model: 256,
            n_heads: 4,
            n_kv_heads: 2,
            head_dim: 64,
            d_ff: 1024,
            n_layers: 3,
            seq_len: 128,
            batch_size: 2,
            vocab_size: 1000,
            ..tiny()
        };
        let (t, d, v, l) = (256.0, 256.0, 1000.0, 3.0);
        let scores = 2.0 * 4.0 * 128.0 * 128.0;
        let mut expected = crate::flops::flops_per_step(&a) - 3.0 * 2.0 * t * v * d
            + 3.0 * NORM * t * d * (2.0 * l + 1.0)
            + 3.0 * ACTIVATION * t * 1024.0 * l
            + 3.0 * CROSS_ENTROPY * t * v
            + t * d
            + ADAMW * total_params(&a);
        if attention == Attention::Flash {
            // Chinchilla: 3 x (QK^T + PV + softmax) = 6 attn_mm + 3 softmax per layer. Causal
            // flash does half of forward (2 attn_mm + softmax) and backward (5 attn_mm + 3 softmax).
            let attn_mm = 2.0 * t * 128.0 * 256.0;
            expected += l * (0.5 * (7.0 * attn_mm + 4.0 * SOFTMAX * scores) - (6.0 * attn_mm + 3.0 * SOFTMAX * scores));
        }
        let got = hardware_flops_per_step(&a);
        assert!((got - expected).abs() <= 1e-9 * expected, "{attention:?}: {got} vs {expected}");
    }
}

#[test]
fn per_op_roofline_by_hand() {
    // At 1 FLOP/s and 1 byte/s each row costs max(flops, bytes); with FLOPs free every row
    // costs its bytes, so the sum is MEMCPY; with bytes free, the hardware FLOPs.
    let a = tiny();
    assert_eq!(per_op_roofline_s(&a, f64::INFINITY, 1.0), memcpy_bytes_per_step(&a));
    assert_eq!(per_op_roofline_s(&a, 1.0, f64::INFINITY), hardware_flops_per_step(&a));
    // Softmax row: 96 FLOPs, 128 bytes -> 128 at equal rates; AdamW: 2256 FLOPs, 5264 bytes.
    let both = per_op_roofline_s(&a, 1.0, 1.0);
    assert!(both >= memcpy_bytes_per_step(&a) && both <= memcpy_bytes_per_step(&a) + hardware_flops_per_step(&a));
}

#[test]
fn flash_avoids_quadratic_traffic() {
    let long = Architecture { seq_len: 8192, d_model: 512, n_heads: 8, n_kv_heads: 8, head_dim: 64, ..tiny() };
    let flash = Architecture { attention: Attention::Flash, ..long };
    assert!(memcpy_bytes_per_step(&flash) < 0.2 * memcpy_bytes_per_step(&long));
    // flash forward row: reads T x qkv x 2, writes T x q x 2 + 4 x B h S.
    let tb = op_table(&flash);
    let op = tb.get("flash attention").unwrap();
    assert_eq!(op.read_bytes, 2.0 * 8192.0 * (512.0 + 2.0 * 512.0));
    assert_eq!(op.write_bytes, 2.0 * 8192.0 * 512.0 + 4.0 * 8.0 * 8192.0);
}

#[test]
fn micro_steps_repeat_forward_and_backward_but_not_adamw() {
    // tiny() with batch 4 in micro-steps of 1: each micro-step is tiny() itself (forward 2272 +
    // backward 3728 bytes, by hand above), run 4 times; AdamW (5264 bytes) once.
    let a = Architecture { batch_size: 4, micro_batch: Some(1), ..tiny() };
    assert_eq!(a.micro_steps(), 4.0);
    assert_eq!(memcpy_bytes_in_pass(&a, Pass::Forward), 4.0 * 2272.0);
    assert_eq!(memcpy_bytes_in_pass(&a, Pass::Backward), 4.0 * 3728.0);
    assert_eq!(memcpy_bytes_in_pass(&a, Pass::Optimizer), 5264.0);
    // Fixed (parameter) bytes: 7264 per tiny() step, of which AdamW's 5264 run once: the other
    // 2000 are re-read and re-written by every micro-step.
    assert!((memcpy_fixed_bytes_per_step(&a) - (4.0 * 2000.0 + 5264.0)).abs() < 1e-9);
    // The tensor FLOPs are the same as one micro-step of batch 4 (matmuls are linear in tokens).
    let whole = Architecture { batch_size: 4, ..tiny() };
    let (w, m) = (step_work(&whole), step_work(&a));
    assert_eq!(w.matmul_flops, m.matmul_flops);
    assert_eq!(w.attention_flops, m.attention_flops);
}

#[test]
fn recomputation_by_hand() {
    // Full: every per-layer forward row of tiny() again in the backward pass (rows by hand in
    // tiny_config_by_hand_row_by_row): add+norm 144, qkv 224, scores 112, softmax 128, probs @ v
    // 112, output 128, add+norm 144, mlp in 224, activation 128, mlp out 224 = 1568 bytes; its
    // per-layer forward matmul FLOPs
    // qkv 256 + out 128 + mlp in 256 + mlp out 256 = 896, attention 128 + 128 = 256.
    let a = tiny();
    let full = Architecture { recompute: Recompute::Full, ..a };
    assert_eq!(memcpy_bytes_per_step(&full) - memcpy_bytes_per_step(&a), 1568.0);
    let (w, wf) = (step_work(&a), step_work(&full));
    assert_eq!(wf.matmul_flops - w.matmul_flops, 896.0);
    assert_eq!(wf.attention_flops - w.attention_flops, 256.0);
    assert_eq!(wf.kernels - w.kernels, 10.0);
    // Selective: only the attention core (scores 48 + 64, softmax 64 + 64, probs @ v 80 + 32).
    let sel = Architecture { recompute: Recompute::Selective, ..a };
    assert_eq!(memcpy_bytes_per_step(&sel) - memcpy_bytes_per_step(&a), 352.0);
    assert_eq!(step_work(&sel).attention_flops - w.attention_flops, 256.0);
    assert_eq!(step_work(&sel).matmul_flops, w.matmul_flops);
    // Recomputation leaves Chinchilla's model FLOPs (the loss law's) unchanged.
    assert_eq!(crate::flops::flops_per_step(&full), crate::flops::flops_per_step(&a));
    // The materialized scores are written twice per step with the core recomputed.
    assert_eq!(attention_score_bytes_per_step(&sel), 2.0 * attention_score_bytes_per_step(&a));
}

#[test]
fn causal_flash_counts_half_the_score_work() {
    // Flash forward: 2 matmuls of 2 T S q, halved; backward 5, halved. tiny() flash: T 4, S 4,
    // q 4: attn_mm 128 -> forward 128, backward 320 attention FLOPs per layer.
    let a = Architecture { attention: Attention::Flash, ..tiny() };
    let tb = op_table(&a);
    assert_eq!(tb.get("flash attention").unwrap().attention_flops, 128.0);
    assert_eq!(tb.get("flash attention backward").unwrap().attention_flops, 320.0);
    assert_eq!(step_work(&a).attention_flops, 448.0);
    // The embedding lookup is a gather: bytes, no FLOPs.
    assert_eq!(tb.get("embedding lookup").unwrap().flops, 0.0);
}

#[test]
fn table_fits_capacity_for_every_variant() {
    let mut most = 0;
    for attention in [Attention::Materialized, Attention::Flash] {
        for tied_embeddings in [false, true] {
            for recompute in [Recompute::None, Recompute::Full, Recompute::Selective] {
                for base in [tiny(), crate::architecture::tests::tiny_moe()] {
                    let a = Architecture { attention, tied_embeddings, recompute, mlp: Mlp::Swiglu, ..base };
                    let n = op_table(&a).ops().len();
                    assert!((20..=MAX_OPS).contains(&n));
                    most = most.max(n);
                }
            }
        }
    }
    assert_eq!(most, 60);
}

#[test]
fn tiny_moe_rows_by_hand() {
    // tiny_moe: a 2, p 4, T 4, d 8, f = f_in 16 (GELU), E 4, k 2 (T k = 8 routed copies), one
    // shared expert (width 16), q 8, kv 4, materialized, V 8.
    let a = crate::architecture::tests::tiny_moe();
    let t = op_table(&a);
    let row = |n: &str| {
        let o = t.get(n).unwrap_or_else(|| panic!("no row {n}"));
        (o.read_bytes, o.write_bytes)
    };
    assert!(t.get("mlp input projection").is_none());
    // router: x 4 x 8 x 2 = 64 + W 8 x 4 x 4 = 128; writes fp32 scores 4 x 4 x 4 = 64.
    assert_eq!(row("router"), (192.0, 64.0));
    // top-k: scores 64; writes 8 weights (fp32) and 8 indices (int32) = 64.
    assert_eq!(row("router top-k"), (64.0, 64.0));
    // dispatch: x 64 + indices 32; writes 8 copies of 8 x 2 = 128.
    assert_eq!(row("moe dispatch"), (96.0, 128.0));
    // experts: copies 8 x 8 x 2 = 128 + every expert's W 4 x 8 x 16 x 4 = 2048; writes 8 x 16 x 2.
    assert_eq!(row("expert input projection"), (2176.0, 256.0));
    assert_eq!(row("expert activation"), (256.0, 256.0));
    assert_eq!(row("expert output projection"), (2304.0, 128.0));
    // shared expert: a dense MLP of width 16 on the 4 tokens: x 64 + W 512; writes 4 x 16 x 2.
    assert_eq!(row("shared expert input projection"), (576.0, 128.0));
    assert_eq!(row("shared expert activation"), (128.0, 128.0));
    assert_eq!(row("shared expert output projection"), (640.0, 64.0));
    // combine: 8 outputs 128 + weights and indices 64 + shared output 64; writes 4 x 8 x 2.
    assert_eq!(row("moe combine"), (256.0, 64.0));
    // backward: combine reads dY 64 + outputs 128 + 64; writes copy gradients 128 + weights' 32.
    assert_eq!(row("moe combine backward"), (256.0, 160.0));
    // experts: dY 2 x 8 x 8 x 2 = 256 + X 8 x 16 x 2 = 256 + W 2048; writes dX 256 + dW 2048.
    assert_eq!(row("expert output projection backward"), (2560.0, 2304.0));
    assert_eq!(row("expert activation backward"), (512.0, 256.0));
    // dY 2 x 8 x 16 x 2 = 512 + X 128 + W 2048; writes dX 128 + dW 2048.
    assert_eq!(row("expert input projection backward"), (2688.0, 2176.0));
    assert_eq!(row("moe dispatch backward"), (160.0, 64.0));
    assert_eq!(row("router top-k backward"), (128.0, 64.0));
    // router: dY fp32 2 x 64 + x 64 + W 128; writes dx 64 + dW 128.
    assert_eq!(row("router backward"), (320.0, 192.0));
    // norm: saved 64 + residual gradient 64 + three branch gradients 192 + W 32; writes 64 + 32.
    assert_eq!(row("mlp add+rmsnorm backward"), (352.0, 96.0));
    // AdamW updates every parameter: 1656 x 16 read, 1656 x 12 written.
    assert_eq!(row("adamw update"), (26_496.0, 19_872.0));

    // Against the dense model of the same shape (d_ff 16, rows 704 + 256 + 704 forward, 1408 +
    // 384 + 1408 backward, norm backward 320, AdamW 600 x 28 = 16,800): the MoE rows move
    // forward 7968 (256 + 128 + 224 + 2432 + 512 + 2432 + 704 + 256 + 704 + 320), backward
    // 15,488 (416 + 1408 + 384 + 1408 + 4864 + 768 + 4864 + 224 + 192 + 512 + 448), AdamW
    // 1656 x 28 = 46,368: 6304 + 11,968 + 29,568 = 47,840 bytes more.
    let dense = Architecture { experts: 0, top_k: 0, shared_experts: 0, ..a };
    assert_eq!(total_params(&dense), 600.0);
    assert_eq!(memcpy_bytes_per_step(&a) - memcpy_bytes_per_step(&dense), 47_840.0);
    // Full recomputation runs every per-layer forward row again: add+norm 288 twice, qkv 704,
    // scores 160, softmax 128, probs @ v 160, output 384, and the MoE rows' 7968: 10,080.
    let full = Architecture { recompute: Recompute::Full, ..a };
    assert_eq!(memcpy_bytes_per_step(&full) - memcpy_bytes_per_step(&a), 10_080.0);
    assert!(op_table(&full).get("recompute: moe combine").is_some());
}

#[test]
fn tiny_moe_flops_and_fixed_bytes_by_hand() {
    // Matmul FLOPs of the MoE rows, per layer: router 2 x 4 x 8 x 4 = 256, experts 2 x 8 x 8 x 16
    // = 2048 each way, shared 2 x 4 x 8 x 16 = 1024 each way: forward 6400; backward twice that
    // (12,800). Chinchilla's model FLOPs (flops.rs) count the same 3 x 6400 = 19,200.
    let a = crate::architecture::tests::tiny_moe();
    let dense = Architecture { experts: 0, top_k: 0, shared_experts: 0, ..a };
    // The dense MLP of width 16: 2 x 4 x 8 x 16 = 1024 each way, 3 x 2048 = 6144 a step.
    assert_eq!(step_work(&a).matmul_flops - step_work(&dense).matmul_flops, 19_200.0 - 6144.0);
    let model = crate::flops::forward_flops_per_sequence(&a);
    assert_eq!(3.0 * (model.mlp + model.router), 19_200.0);
    // Fixed bytes grow by the experts' and router's weights and gradients: forward weight reads
    // (router 128, experts 2 x 2048, shared 2 x 512) 5248, backward reads and gradient writes
    // 2 x 5248 = 10,496, AdamW 46,368; the dense MLP's 2 x 512, 2 x 1024 and AdamW 16,800.
    let more = memcpy_fixed_bytes_per_step(&a) - memcpy_fixed_bytes_per_step(&dense);
    assert!((more - (5248.0 + 10_496.0 + 46_368.0 - (1024.0 + 2048.0 + 16_800.0))).abs() < 1e-9, "{more}");
}
