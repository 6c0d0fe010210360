import pytest

from timescale_frontier import Architecture, InvalidInputError, TimescaleError, predict


def test_llama_7b_parameter_count(llama_7b, h100):
    # Hand count (see rust/core/src/params.rs): 6,738,415,616, the figure published for LLaMA-7B.
    p = predict(llama_7b, h100, 1)
    assert p.params == 6_738_415_616
    assert p.non_embedding_params == 6_738_415_616 - 2 * 32000 * 4096


def test_defaults_follow_the_usual_conventions():
    a = Architecture(4096, 32, 32)
    assert (a.head_dim, a.n_kv_heads, a.d_ff, a.mlp, a.attention) == (128, 32, 16384, "gelu", "flash")
    # SwiGLU default d_ff: 8/3 x 4096 = 10922.7, rounded up to a multiple of 256 = 11008 (LLaMA-7B).
    assert Architecture(4096, 32, 32, mlp="swiglu").d_ff == 11008


def test_round_trip_and_equality(llama_7b):
    assert Architecture(**llama_7b.to_dict()) == llama_7b
    assert "d_model=4096" in repr(llama_7b)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(d_model=0, n_layers=1, n_heads=1), "d_model"),
        (dict(d_model=64, n_layers=1, n_heads=8, n_kv_heads=3), "n_kv_heads"),
        (dict(d_model=64, n_layers=1, n_heads=7), "head_dim"),
        (dict(d_model=64, n_layers=1, n_heads=8, mlp="relu"), "mlp"),
        (dict(d_model=64, n_layers=1, n_heads=8, attention="sparse"), "attention"),
        (dict(d_model=64, n_layers=1, n_heads=8, activation_bytes=float("nan")), "activation_bytes"),
        (dict(d_model=64, n_layers=1, n_heads=8, seq_len=1 << 25), "seq_len"),
    ],
)
def test_bad_fields_are_named(kwargs, field):
    with pytest.raises(InvalidInputError, match=field) as e:
        Architecture(**kwargs)
    assert isinstance(e.value, TimescaleError) and "\n" not in str(e.value)


def test_op_table_rows_sum_to_memcpy(tiny, tpu_v4):
    rows = tiny.op_table()
    assert sum(r.bytes_per_step for r in rows) == predict(tiny, tpu_v4, 1).memcpy_bytes_per_step
    assert {r.phase for r in rows} == {"forward", "backward", "optimizer"}


def test_out_of_range_integers_are_invalid_input_not_overflow():
    # Negative or huge dimensions reach the core's range check (not a bare OverflowError).
    with pytest.raises(InvalidInputError, match=r"d_model = -1 is invalid: expected an integer in \[1, 16777216\]"):
        Architecture(-1, 1, 1)
    with pytest.raises(InvalidInputError, match="batch_size"):
        Architecture(64, 1, 1, batch_size=2**40)


def test_the_repr_is_the_constructor_call():
    # Every field, precision included: two architectures that print alike compare alike.
    a = Architecture(1024, 8, 8, param_bytes=2.0, micro_batch=4, recompute="full")
    assert eval(repr(a), {"Architecture": Architecture}) == a
    assert repr(a) != repr(Architecture(1024, 8, 8, micro_batch=4, recompute="full"))


def test_architectures_pickle_and_hash_and_budgets_and_laws_compare():
    import copy
    import pickle

    from timescale_frontier import Budget, get_law

    a = Architecture(1024, 8, 8, param_bytes=2.0, micro_batch=4, recompute="full")
    b = pickle.loads(pickle.dumps(a))
    assert b == a and hash(b) == hash(a) and copy.deepcopy(a) == a and len({a, b}) == 1
    assert hash(Architecture(1024, 8, 8)) != hash(a)
    assert Budget(12) == Budget(12) and Budget(12) != Budget(13) and Budget(usd=5) != Budget(5)
    assert get_law("hoffmann") == get_law("hoffmann") and get_law("hoffmann") != get_law("besiroglu")


def test_a_default_that_does_not_fit_is_named_as_the_default():
    # 4 x 16,777,216 is beyond the largest dimension: the error says d_ff was the default.
    with pytest.raises(InvalidInputError) as e:
        Architecture(16_777_216, 1, 1)
    assert str(e.value) == (
        "d_ff = 67108864 (the gelu default for d_model = 16777216) is invalid: expected an integer in "
        "[1, 16777216]: give d_ff, or a smaller d_model"
    )


# Mixtral 8x7B (Mistral AI, 2023): d 4096, 32 layers, 32 heads of 128, 8 KV heads, SwiGLU experts
# of 14336, 8 experts, top-2, vocab 32000, untied.
MIXTRAL = dict(d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, d_ff=14336, mlp="swiglu", vocab_size=32000)


def test_a_mixture_of_experts_round_trips_and_counts_total_and_active_parameters():
    a = Architecture(**MIXTRAL, experts=8, top_k=2, batch_size=1)
    assert (a.experts, a.top_k, a.shared_experts) == (8, 2, 0)
    assert Architecture(**a.to_dict()) == a and "experts=8, top_k=2, shared_experts=0" in repr(a)
    assert a != Architecture(**MIXTRAL, batch_size=1) and hash(a) != hash(Architecture(**MIXTRAL, batch_size=1))
    # Mistral AI: 46.7B total, 12.9B active; by hand in rust/core/src/params.rs (46,702,792,704 and
    # 12,879,925,248).
    assert a.params() == 46_702_792_704 and a.active_params() == 12_879_925_248
    # A dense model's repr is as before (no expert fields); every parameter is active.
    dense = Architecture(**MIXTRAL)
    assert "experts" not in repr(dense) and dense.active_params() == dense.params()
    assert (dense.experts, dense.top_k, dense.shared_experts) == (0, 0, 0)


@pytest.mark.parametrize(
    "kwargs, field, expected",
    [
        (dict(experts=8), "top_k", "[1, experts = 8]"),
        (dict(experts=8, top_k=9), "top_k", "[1, experts = 8]"),
        (dict(top_k=2), "top_k", "0 when experts = 0"),
        (dict(shared_experts=1), "shared_experts", "0 when experts = 0"),
        (dict(experts=5000, top_k=2), "experts", "[0, 4096]"),
        (dict(experts=-1), "experts", "[0, 4096]"),
        (dict(experts=8, top_k=2, shared_experts=1 << 70), "shared_experts", "[0, 4096]"),
    ],
)
def test_bad_expert_counts_are_named_with_their_range(kwargs, field, expected):
    with pytest.raises(InvalidInputError) as e:
        Architecture(64, 1, 1, **kwargs)
    assert e.value.field == field and expected in e.value.expected, str(e.value)


def test_a_prediction_of_mixtral_shows_both_counts_and_says_the_law_is_dense(h100):
    a = Architecture(**MIXTRAL, experts=8, top_k=2, batch_size=16)
    p = predict(a, h100, 24, chips=8)
    assert (p.params, p.active_params) == (46_702_792_704, 12_879_925_248)
    assert p.active_non_embedding_params == 12_879_925_248 - 2 * 32000 * 4096
    # The law sees the active parameters, and says it was fitted on dense models.
    assert p.loss_terms is not None and p.loss_terms.law_params == pytest.approx(p.active_params, rel=0.05)
    assert "mixture_of_experts" in p.flags and not p.in_domain
    assert any("mixture of experts" in w for w in p.warnings)
    # Without expert parallelism every chip holds (a shard of) every expert: 8 H100s cannot hold
    # 46.7B parameters with fp32 AdamW (16 bytes each, 93 GB per chip even fully sharded).
    assert not p.fits_memory
    dense = predict(Architecture(**MIXTRAL, batch_size=16), h100, 24, chips=8)
    assert "mixture_of_experts" not in dense.flags and dense.active_params == dense.params
    # Per token, an MoE step costs about its active parameters' FLOPs, not its total's.
    assert p.flops_per_step == pytest.approx(6 * p.active_params * a.tokens_per_step, rel=0.1)


def test_one_field_list_the_constructor_the_stub_the_plain_data_and_the_file_reader_agree_on():
    """Issue 22: the core's `Architecture::FIELDS` is the one field list. The constructor's
    keywords, the stub's, `to_dict()` and the measurement-file reader's column kinds must all be
    it: a field added to the core and missed in one of them fails here, by name."""
    import ast
    import inspect
    from pathlib import Path

    from timescale_frontier import _core
    from timescale_frontier.architecture import FIELD_KINDS, FIELDS
    from timescale_frontier.calibrate import records

    names = [n for n, _ in _core.ARCHITECTURE_FIELDS]
    assert tuple(names) == FIELDS and len(set(names)) == len(names) == 20
    assert list(Architecture(64, 1, 1).to_dict()) == names
    assert list(inspect.signature(Architecture).parameters) == names
    stub = ast.parse((Path(_core.__file__).parent / "_core.pyi").read_text())
    cls = next(n for n in stub.body if isinstance(n, ast.ClassDef) and n.name == "Architecture")
    new = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
    stub_args = [a.arg for a in new.args.args[1:] + new.args.kwonlyargs]
    assert stub_args == names
    properties = {n.name for n in cls.body if isinstance(n, ast.FunctionDef) and n.decorator_list}
    assert set(names) <= properties, set(names) - properties
    # Every field is a column the measurement files read, with its kind.
    read = records._INT_FIELDS | records._FLOAT_FIELDS | records._TEXT_FIELDS | {"tied_embeddings"}
    assert set(names) <= read, set(names) - read
    assert {k for k, kind in FIELD_KINDS.items() if kind == "bool"} == {"tied_embeddings"}
