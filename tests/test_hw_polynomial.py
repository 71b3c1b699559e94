"""Fast tests on Amaranth's simulator: residue (fold) networks, CRT reconstruction and folded
CRT input transforms against the exact polynomial arithmetic of ``slimgen.sw.winograd``, on
random and extreme data, structured and flat; plus the error messages."""

from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned

from hw_arrays import pack, run_arrays, unpack

from slimgen.hw.lib.polynomial import (CrtUnit, FoldedTransform, FoldedTransform2D, FoldUnit,
                                   crt_matrix, fold_factor, residue_matrix)
from slimgen.hw.lib.transform import TransformUnit
from slimgen.sw.winograd import integer_form, winograd_1d, winograd_2d
from slimgen.sw.winograd import polynomials as P
from slimgen.sw.winograd.moduli import parse_moduli

SETS = ["x-1,x+1,x^2+1", "x,x-1,x+1,x^2+1", "x-1,x+1,x^2+1,x^4+1", "x+1,x^3-1", "x-1,x+1,x-2"]


def _data(rng, n, width, bits, signed_in=True):
    """``n`` random vectors plus all maximum and all minimum."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed_in else (0, (1 << bits) - 1)
    return np.concatenate([rng.integers(lo, hi + 1, (n, width)), np.full((1, width), hi),
                           np.full((1, width), lo)])


def _run(dut, xs, in_bits, n_out):
    out, _, _ = run_arrays(dut, [pack(x, in_bits) for x in xs], len(xs))
    return [unpack(o, dut.out_bits, n_out) for o in out]


def _residues(x, moduli):
    out = []
    for mk in moduli:
        r = P.mod(P.trim(x), mk.coeffs)
        out += [int(v) for v in r] + [0] * (mk.degree - len(r))
    return out


@pytest.mark.parametrize("structured", [True, False])
@pytest.mark.parametrize("moduli,extra", [(s, e) for s in SETS for e in (0, 3)])
def test_fold_unit_matches_polynomial_mod(moduli, extra, structured):
    mods = parse_moduli(moduli)
    length = sum(mk.degree for mk in mods) + extra
    dut = FoldUnit(mods, length, in_shape=signed(8), structured=structured,
                   stages=1 + structured)
    xs = _data(np.random.default_rng(length), 6, length, 8)
    n = sum(mk.degree for mk in mods)
    assert _run(dut, xs, 8, n) == [_residues(x, mods) for x in xs]


def _crt_reference(u, moduli):
    """``s mod M`` from residues by the textbook formula, with Fractions."""
    M = P.product(mk.coeffs for mk in moduli)
    s, k = (), 0
    for mk in moduli:
        uk = P.trim(u[k:k + mk.degree])
        k += mk.degree
        Nk = P.exact_div(M, mk.coeffs)
        inv = P.inverse_mod(P.mod(Nk, mk.coeffs), mk.coeffs)
        s = P.add(s, P.mul(Nk, P.mod(P.mul(uk, inv), mk.coeffs)))
    s = P.mod(s, M)
    return list(s) + [Fraction(0)] * (len(M) - 1 - len(s))


@pytest.mark.parametrize("structured", [True, False])
@pytest.mark.parametrize("moduli", SETS)
def test_crt_unit_reconstructs(moduli, structured):
    mods = parse_moduli(moduli)
    n = sum(mk.degree for mk in mods)
    dut = CrtUnit(mods, in_shape=signed(8), structured=structured)
    us = _data(np.random.default_rng(n), 6, n, 8)
    for u, w in zip(us, _run(dut, us, 8, n)):
        s = [dut.scale * v for v in w]
        assert s == _crt_reference(u, mods)
        assert _residues(s, mods) == list(u)          # and back: s mod M_k = u_k


@pytest.mark.parametrize("alg", [(2, 3), (4, 3), (6, 3)])
def test_folded_transform_equals_bt(alg):
    a = winograd_1d(*alg, "crt")
    BT = np.array(integer_form(a).BT.matrix)
    dut = FoldedTransform(a, in_shape=unsigned(8))
    xs = _data(np.random.default_rng(1), 6, a.N, 8, signed_in=False)
    assert _run(dut, xs, 8, len(BT)) == [(BT @ x).tolist() for x in xs]


@pytest.mark.parametrize("alg", [(2, 3), (4, 3)])
def test_folded_transform_2d_equals_bt_d_b(alg):
    a = winograd_2d(*alg, "crt")
    BT = np.array(integer_form(winograd_1d(*alg, "crt")).BT.matrix)
    dut = FoldedTransform2D(a, in_shape=unsigned(8), stages=2)
    N = a.N[0]
    xs = _data(np.random.default_rng(2), 4, N * N, 8, signed_in=False)
    want = [(BT @ x.reshape(N, N) @ BT.T).reshape(-1).tolist() for x in xs]
    assert _run(dut, xs, 8, len(BT) ** 2) == want


def test_flat_matrices_and_costs():
    assert residue_matrix("x^2+1", 5) == ((1, 0, -1, 0, 1), (0, 1, 0, -1, 0))
    C, scale = crt_matrix(["x-1", "x+1"])
    assert (C, scale) == (((1, 1), (1, -1)), Fraction(1, 2))
    # the residue tree shares its folds: as cheap as the flat form with sub-expression sharing,
    # far cheaper than the flat form without it
    mods = "x-1,x+1,x^2+1,x^4+1,x^8+1".split(",")
    tree = FoldUnit(mods, 16, in_shape=signed(8))
    assert tree.adders == 30
    assert FoldUnit(mods, 16, in_shape=signed(8), structured=False, share=False).adders == 64
    start, fmods, K = fold_factor(winograd_1d(4, 3, "crt"))
    assert (start, [str(m) for m in fmods]) == (1, ["x-1", "x+1", "x^2+1"])
    assert TransformUnit(integer_form(winograd_1d(4, 3, "crt")).BT.matrix,
                         in_shape=unsigned(8)).out_bits == 11


def test_messages():
    with pytest.raises(ValueError, match=r"^Moduli x\^2-1 and x\+1 are not co-prime$"):
        FoldUnit(["x^2-1", "x+1"], 4, in_shape=signed(8))
    with pytest.raises(ValueError, match=r"^Modulus x-1/2 must have integer coefficients$"):
        CrtUnit(["x", "x-1/2"], in_shape=signed(8))
    with pytest.raises(ValueError, match=r"^Length must be a positive integer, not 0$"):
        FoldUnit(["x-1"], 0, in_shape=signed(8))
    with pytest.raises(ValueError, match=r"^Moduli must hold at least one polynomial$"):
        CrtUnit([], in_shape=signed(8))
    with pytest.raises(TypeError, match=r"^Algorithm must be a Winograd1D, not 3$"):
        FoldedTransform(3, in_shape=unsigned(8))
    with pytest.raises(TypeError, match=r"^Algorithm must be a Winograd2D, not 3$"):
        FoldedTransform2D(3, in_shape=unsigned(8))


def test_out_of_context_ports_count_bits():
    """The synthesis wrapper must drive every bit of an array payload, not one per element."""
    from slimgen.boards.unit_synth import _ports
    ports = dict((name, width) for name, width, _ in
                 _ports(FoldUnit(["x-1", "x+1"], 4, in_shape=signed(8))))
    assert ports["i__payload"] == 32 and ports["o__payload"] == 2 * 10
