import pytest

from timescale_frontier import InvalidInputError, Law, get_law, law_names


def test_builtin_laws():
    # Besiroglu et al.'s refit first: the default (see loss.rs for why).
    assert law_names() == ["besiroglu", "hoffmann", "muennighoff"]
    with pytest.raises(InvalidInputError, match="hoffmann"):
        get_law("kaplan")
    # Every built-in law comes with every evidence term; each can be switched off.
    assert get_law("besiroglu").terms == ["shape", "vocab", "context", "batch", "repetition"]
    assert get_law("besiroglu", loss_terms="none").terms == []
    assert get_law("hoffmann", loss_terms="shape,batch").terms == ["shape", "batch"]
    assert get_law("besiroglu", eval_context=8192).eval_context == 8192
    with pytest.raises(InvalidInputError, match="loss_terms = 'colour'"):
        get_law("besiroglu", loss_terms="shape,colour")


def test_hoffmann_at_chinchilla_by_hand():
    # 1.69 + 406.4 / 70e9^0.34 + 410.7 / 1.4e12^0.28 = 1.69 + 0.0835 + 0.1632 (see loss.rs).
    assert get_law("hoffmann").loss(70e9, 1.4e12) == pytest.approx(1.9367, abs=5e-4)


def test_besiroglu_by_hand():
    # N 1e9, D 2e10: 482.01 / 10^(9 x 0.3478) = 482.01 / 1349.8 = 0.3571;
    # 2085.43 / 10^(10.30103 x 0.3658) = 2085.43 / 5863.6 = 0.3557. L = 1.8172 + 0.3571 + 0.3557.
    assert get_law("besiroglu").loss(1e9, 2e10) == pytest.approx(2.5300, abs=5e-4)


def test_custom_law_is_validated():
    assert Law(1.0, 100.0, 100.0, 0.3, 0.3).loss(1e6, 1e6) == pytest.approx(1 + 2 * 100 / 1e6**0.3)
    with pytest.raises(InvalidInputError, match="alpha"):
        Law(1.0, 100.0, 100.0, -0.3, 0.3)


def test_the_laws_public_functions_refuse_what_would_give_nan_or_inf():
    h = get_law("hoffmann")
    for call, message in [
        (lambda: h.loss(-1, 2e10), "n_params = -1 is invalid: expected a finite number > 0"),
        (lambda: h.loss(1e9, 0), "tokens = 0 is invalid: expected a finite number > 0"),
        (lambda: h.compute_optimal(float("nan")), "flops = nan is invalid"),
        (lambda: h.loss_change_for_step_time_error(0, 0.03), "tokens = 0 is invalid"),
        (
            lambda: h.loss_change_for_step_time_error(1e9, -0.1),
            "rel_step_error = -0.1 is invalid: expected a finite number >= 0",
        ),
        (lambda: h.shape_term(0, 8), "d_model = 0 is invalid"),
        (lambda: h.loss_of_shape(1e9, 2e10, 512, float("inf")), "n_layers = inf is invalid"),
    ]:
        with pytest.raises(InvalidInputError) as e:
            call()
        assert str(e.value).startswith(message), e.value
    # A perfect step-time model moves no loss (not an error).
    assert h.loss_change_for_step_time_error(1e9, 0.0) == 0.0
