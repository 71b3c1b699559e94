"""Known facts, integer form, validation messages (word for word)."""

from fractions import Fraction

import numpy as np
import pytest

from slimgen.sw.winograd import (Modulus, correlate_tiled, csd_digits, default_points,
                                 integer_form, winograd_1d, winograd_2d)


def entries(M):
    return {v for row in M for v in row}


def test_f23_points_0_pm1_uses_4():
    alg = winograd_1d(2, 3, points=[0, 1, -1])
    assert alg.alpha == 4
    assert alg.points == (0, 1, -1)


def test_2d_counts():
    assert winograd_2d(2, 3).alpha == 16          # vs 36 direct
    assert winograd_2d(4, 3).alpha == 36          # vs 144
    assert winograd_2d(6, 3).alpha == 64          # vs 324
    assert winograd_2d(4, 3, "x,x-1,x+1,x^2+1").alpha == 49


def test_f43_crt_matrices():
    alg = winograd_1d(4, 3, "x,x-1,x+1,x^2+1")
    assert alg.alpha == 7
    assert entries(alg.AT) <= {0, 1, -1}
    assert entries(alg.BT) <= {0, 1, -1}
    quarter, half = Fraction(1, 4), Fraction(1, 2)
    assert entries(alg.G) <= {0, 1, -1, half, -half, quarter, -quarter}
    form = integer_form(alg)
    assert form.scale == quarter and form.power_of_two and form.shift == -2
    assert form.AT.kind == "adds" and form.BT.kind == "adds" and form.G.kind == "shifts"
    assert winograd_1d(4, 3, "crt") == alg


def test_f43_toom_cook_constants():
    alg = winograd_1d(4, 3)
    assert alg.points == (0, 1, -1, 2, -2)
    assert alg.alpha == 6
    assert {4, -5} <= entries(alg.BT)
    assert {Fraction(1, 6), Fraction(1, 24)} <= entries(alg.G)
    assert not integer_form(alg).power_of_two


def test_default_points():
    assert default_points(7) == tuple(Fraction(v) for v in ("0", "1", "-1", "2", "-2", "1/2",
                                                            "-1/2"))
    assert default_points(11)[7:] == tuple(Fraction(v) for v in ("3", "-3", "1/3", "-1/3"))


def test_lavin_f23():
    alg = winograd_1d(2, 3)
    assert alg.BT == tuple(tuple(Fraction(v) for v in row) for row in
                           [(1, 0, -1, 0), (0, 1, 1, 0), (0, -1, 1, 0), (0, -1, 0, 1)])
    h = Fraction(1, 2)
    assert alg.G == ((1, 0, 0), (h, h, h), (h, -h, h), (0, 0, 1))


def test_bit_growth_f43_crt_8bit():
    bg = integer_form(winograd_1d(4, 3, "crt")).bit_growth(8, 8)
    assert bg.bits("BT d") == 10
    assert bg.bits("G g") == 11
    assert bg.bits("product") == 19
    assert bg.bits("y") == 17                       # 3 · 128 · 128 = 49152
    assert bg.accumulator_bits == 19                # y · 4
    assert bg.bits("P interval") >= bg.accumulator_bits


def test_bit_growth_is_attained():
    # The input-transform bound is reached by choosing the data signs per row.
    form = integer_form(winograd_1d(4, 3))
    bg = form.bit_growth(8, 8)
    _, lo, hi, _ = next(s for s in bg.stages if s[0] == "BT d")
    best = max(sum(c * (127 if c > 0 else -128) for c in row) for row in form.BT.matrix)
    assert best == hi


def test_bit_growth_2d_and_ops():
    form = integer_form(winograd_2d(4, 3, "crt"))
    assert form.scale == Fraction(1, 16)
    bg = form.bit_growth(8, 8)
    assert bg.bits("y") == 19                       # 9 · 2^14 = 147456
    assert bg.accumulator_bits == 23
    ops = form.op_counts()
    assert ops.multiplications == 49 / 16
    assert ops.direct_multiplications == 9 and ops.shifts == 0 and ops.scale_op == "shift"


def test_op_counts_1d():
    ops = integer_form(winograd_1d(2, 3)).op_counts()
    assert ops.multiplications == 2 and ops.direct_multiplications == 3
    assert ops.additions == (4 + 4) / 2            # BT: 4 adds, AT: 2 + 2 adds
    assert ops.scale_op == "shift"


def test_helpers():
    assert csd_digits(7) == [(0, -1), (3, 1)]
    assert csd_digits(-5) == [(0, -1), (2, -1)]


def test_serialisation_round_trip():
    for alg in (winograd_1d(4, 3, "crt"), winograd_1d(3, 2, points="0,1/2,-3")):
        assert type(alg).from_dict(alg.to_dict()) == alg
    alg2 = winograd_2d(2, 3)
    assert type(alg2).from_dict(alg2.to_dict()) == alg2


def test_modulus_forms():
    assert str(Modulus.parse("2x-1")) == "x-1/2"
    assert Modulus.parse("x**3 + 1").kind == "x^n+1"
    assert Modulus.parse("x^4 - 1").kind == "x^n-1"
    assert Modulus.parse("x - 3").root == 3
    assert Modulus.parse("x^2+x+1").kind == "other"
    assert Modulus.cyclic(4, 1) == Modulus.parse("x^4+1")


@pytest.mark.parametrize("moduli,message", [
    ("x,x-1,x^2-1", "Moduli x-1 and x^2-1 are not co-prime: both are divisible by x-1"),
    ("x,x+1,x^3+1", "Moduli x+1 and x^3+1 are not co-prime: both are divisible by x+1"),
    ("x^2+1,x^4-1", "Moduli x^2+1 and x^4-1 are not co-prime: both are divisible by x^2+1"),
    ("x,x,x+1,x-1,x^2+1", "Moduli x and x are not co-prime: both are divisible by x"),
    ("x,x-1,x+1", "Moduli x, x-1, x+1 have total degree 3, but F(4, 3) needs 5 "
                  "(m + r - 2; the point at infinity is added)"),
    ("x,x-1,x+1,x^4+1", "Moduli x, x-1, x+1, x^4+1 have total degree 7, but F(4, 3) needs 5 "
                        "(m + r - 2; the point at infinity is added)"),
    ("x,x-1,x+y", "Cannot parse polynomial 'x+y': expected a polynomial in x such as 'x', "
                  "'x-1', 'x^2+1' or '2x-1'"),
    ("x,x-1,x^^2", "Cannot parse polynomial 'x^^2': expected a polynomial in x such as 'x', "
                   "'x-1', 'x^2+1' or '2x-1'"),
    ("x,x-1,2,x^2+1", "Modulus '2' has degree 0, expected degree 1 or more"),
])
def test_invalid_moduli_messages(moduli, message):
    with pytest.raises(ValueError) as info:
        winograd_1d(4, 3, moduli)
    assert str(info.value) == message


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(m=0, r=3), ValueError, "m must be a positive integer, not 0"),
    (dict(m=4, r="3"), TypeError, "r must be a positive integer, not '3'"),
    (dict(m=4, r=3, points="0,1,-1,2"), ValueError,
     "F(4, 3) needs 5 distinct finite points (m + r - 2; the point at infinity is added), not 4"),
    (dict(m=4, r=3, points="0,1,-1,2,1"), ValueError,
     "Points must be distinct, but 1 appears more than once"),
    (dict(m=4, r=3, points=[0, 1, -1, 2, 0.5]), TypeError,
     "Point must be an int, a Fraction or a string such as '1/2', not 0.5"),
    (dict(m=4, r=3, points="0,1,-1,2,half"), ValueError,
     "Point must be a rational number such as '2' or '-1/2', not 'half'"),
    (dict(m=4, r=3, moduli="crt", points="0,1,-1,2,-2"), ValueError,
     "points apply only to moduli='toomcook'; give the moduli themselves, or inner_points "
     "for the factors of degree > 1"),
    (dict(m=6, r=3, moduli="x,x-1,x+1,x^4+1", inner_points="0,1,-1"), ValueError,
     "Modulus x^4+1 of degree 4 needs 6 distinct inner points, not 3"),
    (dict(m=4, r=3, moduli=["x", 3]), TypeError,
     "Modulus must be a Modulus or a string such as 'x^2+1', not 3"),
])
def test_invalid_arguments_messages(kwargs, exc, message):
    with pytest.raises(exc) as info:
        winograd_1d(**kwargs)
    assert str(info.value) == message


def test_tiling_messages():
    alg = winograd_1d(4, 3)
    with pytest.raises(ValueError, match=r"^F\(4, 3\) needs a filter of shape \(3,\), not \(5,\)$"):
        correlate_tiled(np.zeros(10), np.zeros(5), alg)
    with pytest.raises(ValueError, match="^Input has 2 channels but the filter expects 3$"):
        correlate_tiled(np.zeros((2, 10)), np.zeros((4, 3, 3)), alg)
    with pytest.raises(TypeError, match="^Algorithm must be a Winograd1D or Winograd2D, not 3$"):
        correlate_tiled(np.zeros(10), np.zeros(3), 3)
    with pytest.raises(ValueError, match=r"^F\(4×3, 3×5\) needs col_moduli"):
        winograd_2d(4, 3, "x,x-1,x+1,x^2+1", n=3, s=5)
