import pytest

from timescale_frontier import InvalidInputError, Law, get_law, law_names


def test_builtin_laws():
    assert law_names() == ["hoffmann", "besiroglu"]
    with pytest.raises(InvalidInputError, match="hoffmann"):
        get_law("kaplan")


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
