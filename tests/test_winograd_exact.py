"""Exactness of every default construction against direct correlation, in rational arithmetic."""

from fractions import Fraction

import numpy as np
import pytest

from slimgen.sw.winograd import (Modulus, check_moduli, correlate_direct, correlate_tiled,
                                 integer_form, winograd_1d, winograd_2d)

SIZES = [(m, r) for m in range(1, 9) for r in range(1, 8)]


def direct(d, g):
    r = len(g)
    return [sum(g[k] * d[i + k] for k in range(r)) for i in range(len(d) - r + 1)]


@pytest.mark.parametrize("moduli", ["toomcook", "crt"])
def test_basis_vector_proof_all_sizes(moduli):
    # Σ_t AT[i,t] G[t,k] BT[t,j] = [j = i + k] for every i, k, j: exact on every input.
    for m, r in SIZES:
        assert winograd_1d(m, r, moduli).is_exact(), (m, r, moduli)


@pytest.mark.parametrize("moduli", ["toomcook", "crt"])
def test_random_integer_data_all_sizes(moduli):
    rng = np.random.default_rng(1)
    for m, r in SIZES:
        alg = winograd_1d(m, r, moduli)
        for _ in range(3):
            d = [int(v) for v in rng.integers(-1000, 1000, m + r - 1)]
            g = [int(v) for v in rng.integers(-1000, 1000, r)]
            assert alg.apply(d, g) == direct(d, g), (m, r, moduli)
            form = integer_form(alg)
            assert form.remove_scale(form.apply(d, g)) == direct(d, g)


def test_rational_data():
    alg = winograd_1d(6, 3, points="0,1,-1,1/2,-1/2,2,-2")
    d = [Fraction(k, 7) for k in range(-4, 4)]
    g = [Fraction(1, 3), Fraction(-5, 2), Fraction(2)]
    assert alg.apply(d, g) == direct(d, g)


def test_basis_identity_written_out():
    # The proof spelled out with Fractions for one CRT algorithm, independent of is_exact.
    alg = winograd_1d(4, 3, "x,x-1,x+1,x^2+1")
    for i in range(alg.m):
        for k in range(alg.r):
            for j in range(alg.N):
                s = sum(alg.AT[i][t] * alg.G[t][k] * alg.BT[t][j] for t in range(alg.alpha))
                assert s == (1 if j == i + k else 0)


def test_inexact_algorithm_detected():
    alg = winograd_1d(2, 3)
    G = [list(row) for row in alg.G]
    G[1][0] += Fraction(1, 1024)
    bad = type(alg)(m=2, r=3, moduli=alg.moduli, inner_points=(), AT=alg.AT, G=G, BT=alg.BT)
    assert not bad.is_exact()


def _random_moduli(rng, degree):
    """Random pairwise co-prime moduli of the given total degree."""
    pool = ["x", "x-1", "x+1", "x-2", "x+2", "x-1/2", "x+1/2", "x-3", "x+1/3", "x-3/2",
            "x^2+1", "x^4+1", "x^2+x+1", "x^2-x+1", "x^3+2", "x^2-2", "x^8+1"]
    while True:
        chosen, left = [], degree
        for s in rng.permutation(pool):
            mod = Modulus.parse(str(s))
            if mod.degree > left:
                continue
            trial = chosen + [mod]
            try:
                check_moduli(trial, 1, sum(x.degree for x in trial) + 1)
            except ValueError:
                continue
            chosen, left = trial, left - mod.degree
            if left == 0:
                return chosen


def test_property_random_valid_moduli():
    rng = np.random.default_rng(7)
    for _ in range(60):
        m, r = int(rng.integers(1, 9)), int(rng.integers(1, 8))
        mods = _random_moduli(rng, m + r - 2)
        inner = [str(p) for p in rng.permutation(["0", "1", "-1", "2", "-2", "1/2", "-1/2",
                                                  "3", "-3", "1/3", "-1/3", "4", "-4", "5"])]
        alg = winograd_1d(m, r, mods, inner_points=inner)
        assert alg.is_exact(), (m, r, [str(x) for x in mods])
        d = [int(v) for v in rng.integers(-50, 50, m + r - 1)]
        g = [int(v) for v in rng.integers(-50, 50, r)]
        assert alg.apply(d, g) == direct(d, g)
        assert alg.alpha == sum(1 if x.degree == 1 else 2 * x.degree - 1 for x in mods) + 1


def test_property_random_toom_cook_points():
    rng = np.random.default_rng(3)
    for _ in range(40):
        m, r = int(rng.integers(1, 9)), int(rng.integers(1, 8))
        pts = set()
        while len(pts) < m + r - 2:
            pts.add(Fraction(int(rng.integers(-9, 10)), int(rng.integers(1, 6))))
        alg = winograd_1d(m, r, points=sorted(pts))
        assert alg.is_exact()
        assert alg.alpha == m + r - 1


@pytest.mark.parametrize("m,r", [(2, 3), (4, 3), (3, 2), (1, 4), (5, 1)])
@pytest.mark.parametrize("moduli", ["toomcook", "crt"])
def test_2d_exact_basis(m, r, moduli):
    alg = winograd_2d(m, r, moduli)
    AT, G, BT = alg.AT, alg.G, alg.BT     # Kronecker forms
    n_in = alg.N[1]
    for i in range(m * m):
        for k in range(r * r):
            row = [sum(AT[i][t] * G[t][k] * BT[t][j] for t in range(alg.alpha))
                   for j in range(alg.N[0] * n_in)]
            (i0, i1), (k0, k1) = divmod(i, m), divmod(k, r)
            want = [1 if divmod(j, n_in) == (i0 + k0, i1 + k1) else 0 for j in range(len(row))]
            assert row == want


def test_2d_rectangular_random():
    rng = np.random.default_rng(5)
    alg = winograd_2d(4, 3, "crt", n=3, s=5)
    assert alg.m == (4, 3) and alg.r == (3, 5) and alg.N == (6, 7)
    assert alg.alpha == 7 * winograd_1d(3, 5, "crt").alpha
    d = rng.integers(-99, 99, (6, 7)).tolist()
    g = rng.integers(-99, 99, (3, 5)).tolist()
    ref = correlate_direct(np.array(d), np.array(g)).tolist()
    assert alg.apply(d, g) == ref


@pytest.mark.parametrize("moduli", ["toomcook", "crt"])
def test_tiled_1d_layer_exact(moduli):
    rng = np.random.default_rng(11)
    alg = winograd_1d(6, 3, moduli)
    x = rng.integers(-128, 128, (2, 4, 29))
    w = rng.integers(-128, 128, (5, 4, 3))
    for pad in (0, 1, 3):
        y = correlate_tiled(x, w, alg, padding=pad)
        assert y.dtype.kind == "i"
        assert np.array_equal(y, correlate_direct(x, w, padding=pad))


@pytest.mark.parametrize("m,r,moduli", [(2, 3, "toomcook"), (4, 3, "crt"), (6, 3, "toomcook"),
                                        (4, 5, "crt")])
def test_tiled_2d_layer_exact(m, r, moduli):
    rng = np.random.default_rng(12)
    alg = winograd_2d(m, r, moduli)
    x = rng.integers(-128, 128, (2, 3, 19, 14))      # odd sizes: edge tiles are partial
    w = rng.integers(-128, 128, (4, 3, r, r))
    assert np.array_equal(correlate_tiled(x, w, alg, padding=1),
                          correlate_direct(x, w, padding=1))


def test_tiled_single_channel_object_and_float():
    rng = np.random.default_rng(13)
    alg = winograd_2d(4, 3, "toomcook")
    x = rng.integers(-9, 9, (11, 9))
    w = rng.integers(-9, 9, (3, 3))
    xo = np.array([[Fraction(int(v), 3) for v in row] for row in x], dtype=object)
    ref = correlate_direct(xo, w.astype(object))
    assert (correlate_tiled(xo, w.astype(object), alg) == ref).all()
    yf = correlate_tiled(x.astype(np.float64), w.astype(np.float64), alg)
    assert yf.dtype == np.float64
    assert np.allclose(yf, correlate_direct(x, w))


def test_tiled_large_values_use_python_ints():
    alg = winograd_1d(4, 3)
    x = np.array([2 ** 40, -2 ** 41, 3, 2 ** 39, 5, 7, 11], dtype=np.int64)
    w = np.array([2 ** 20, -3, 2 ** 21], dtype=np.int64)
    want = correlate_direct(x.astype(object), w.astype(object))
    assert list(correlate_tiled(x, w, alg)) == list(want)
