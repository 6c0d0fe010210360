from timescale_frontier import Architecture, predict


def test_chinchilla_appendix_f_worked_config(tpu_v4):
    # d 512, 8 layers, 8 heads of 64, GELU d_ff 2048, vocab 32000, S 1024, batch 4; term by term
    # (Hoffmann et al. 2022 App. F), derived by hand in rust/core/src/flops.rs:
    # forward per sequence 136,029,667,328 FLOPs; training step 3 x 4 x that.
    a = Architecture(
        512, 8, 8, d_ff=2048, mlp="gelu", attention="materialized", seq_len=1024, batch_size=4, vocab_size=32000
    )
    assert predict(a, tpu_v4, 1).flops_per_step == 1_632_356_007_936


def test_flops_are_6n_plus_attention_per_token(llama_7b, h100):
    # Per token, Chinchilla's count is 6 x (matmul parameters) plus, per layer, the two S^2 matmuls
    # (3 x 4 S d) and the softmax (3 x 3 h S). LLaMA-7B's matmul parameters are N minus its RMSNorm
    # weights (2 d per layer + d final).
    p = predict(llama_7b, h100, 1)
    d, L, S, h = 4096, 32, 2048, 32
    # LLaMA-7B has 6,738,415,616 parameters (Touvron et al. 2023; Hugging Face's count), by hand in
    # rust/core/src/params.rs: its matmul parameters are that minus 2 d L + d norm weights.
    expected = 6 * (6_738_415_616 - 2 * d * L - d) + L * (12 * S * d + 9 * h * S)
    assert p.params == 6_738_415_616
    assert p.flops_per_step / p.tokens_per_step == expected
