"""Polynomial units: residue (fold) networks, CRT reconstruction, and CRT input transforms in
their structured form.

A vector ``d`` of ``L`` integers is the polynomial ``d(x) = Σ d_j x^j``. Its residue modulo a
monic integer polynomial ``M`` of degree ``n`` is ``R_M d`` with ``R_M`` (``n × L``) holding
``x^j mod M`` in column ``j``. For ``M = x^n − c`` (``c = ±1``) that is a *fold*,

    (d mod x^n − c)_i = Σ_t c^t · d_{i + t·n},

additions only. A set of pairwise co-prime moduli is reduced through a *residue tree*: the set is
split in two (the split whose two reductions have the fewest signed digits, which pairs
``x^k − 1`` with ``x^k + 1``), ``d`` is reduced modulo each half's product, and each half
recursively, so the residues share the folds above them (``d mod x^4 − 1`` feeds ``x^2 ± 1``,
``d mod x^2 − 1`` feeds ``x ± 1``). The flat form applies every ``R_{M_k}`` to ``d`` directly.

CRT reconstruction is the inverse: from residues ``u_k = s mod M_k`` it rebuilds
``s mod M`` (``M = ∏ M_k``). Up the same tree, two halves combine as

    u = u_1 + M_1 · ((u_2 − u_1) · (M_1^{-1} mod M_2) mod M_2),

a small rational matrix; its content is moved out, so every node holds integers ``w`` with
``u = scale · w`` (for ``x^k ∓ 1`` the combine is the butterfly ``(a + b, a − b)`` with scale
½). The flat form is the single matrix ``u = Σ_k N_k · (u_k · N_k^{-1} mod M_k) mod M``,
``N_k = M / M_k``, with its content moved out.

In the correlation form of a CRT algorithm F(m, r) (:mod:`slimgen.sw.winograd.matrices`) the
input transform is ``Bᵀ = Cᵀ``, the transposed reconstruction, and its rows are residues of the
window ``d' = d[s : s + L]`` (``s = 1`` when ``x`` is a modulus; ``L`` the degree of the other
moduli' product) up to a few raw inputs and sign changes. :class:`FoldedTransform` factors

    Bᵀ d = K · [fold(d'); d]

with the residue tree as ``fold`` and ``K`` of entries in {−1, 0, 1} on the fold outputs (the
rest on raw inputs), found greedily row by row and checked exactly; :class:`FoldedTransform2D`
applies ``Bᵀ d B`` as column then row passes, as :class:`.transform.Transform2D` does for the
flat matrix. Widths are exact from the bit growth (interval arithmetic on each node's integer
coefficients); pipelining as in :mod:`.transform`.

When the structured form is cheaper (adders; ``bench/conv_hw.py --part poly`` adds synthesis):
residues of 16 terms modulo ``x ± 1, x² + 1, x⁴ + 1, x⁸ + 1`` take 30 adders as a tree against
64 for the flat matrices without sharing, and the CRT reconstruction from them 30 against 42;
the flat matrices *with* the greedy two-term sharing of :class:`.transform.TransformUnit` reach
the same 30 (the search finds the butterflies), so there the tree's gain is that it is built in
closed form, with no search. For the input transform of a CRT algorithm the factorisation does
not pay: ``Bᵀ d B`` of F(4×4,3×3) CRT takes 156 adders folded against 143 flat with sharing and
156 flat without, because the rows of ``Bᵀ`` have at most four terms and ``K`` spends adders on
sign changes; the fold pays off on long transforms (long residues, few moduli).
"""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations

from amaranth.hdl import signed
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from slimgen.sw.fixed import signed_bits
from slimgen.sw.winograd import Winograd1D, Winograd2D, csd_digits, integer_form
from slimgen.sw.winograd import polynomials as P
from slimgen.sw.winograd.matrices import content
from slimgen.sw.winograd.moduli import Modulus, as_modulus

from .const_mul import ShiftAddNetwork, element_range
from .transform import _check_common, _Pipelined

__all__ = ["residue_matrix", "crt_matrix", "residue_tree", "crt_tree", "FoldUnit", "CrtUnit",
           "FoldedTransform", "FoldedTransform2D", "fold_factor", "live_adders"]


# ---------------------------------------------------------------------------------------------
# Matrices (pure Python, exact)

def _moduli(moduli):
    try:
        out = tuple(as_modulus(mk) for mk in moduli)
    except TypeError:
        raise TypeError(f"Moduli must be a sequence of Modulus or strings such as 'x^2+1', "
                        f"not {moduli!r}") from None
    if not out:
        raise ValueError("Moduli must hold at least one polynomial")
    for mk in out:
        if any(c.denominator != 1 for c in mk.coeffs):
            raise ValueError(f"Modulus {mk} must have integer coefficients")
    for a, b in combinations(out, 2):
        if len(P.gcd(a.coeffs, b.coeffs)) > 1:
            raise ValueError(f"Moduli {a} and {b} are not co-prime")
    return out


def residue_matrix(modulus, length: int):
    """``R`` (``n × length``, ints) with ``R d = d mod modulus``: column ``j`` is ``x^j mod M``."""
    M = _moduli([modulus])[0]
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"Length must be a positive integer, not {length!r}")
    cols = P.x_power_residues(M.coeffs, length)
    return tuple(tuple(int(cols[j][i]) for j in range(length)) for i in range(M.degree))


def _combine(M1, M2):
    """Rational matrix ``K`` ((n1 + n2) × (n1 + n2)) with ``u = K [u1; u2]`` (CRT of two)."""
    n1, n2 = len(M1) - 1, len(M2) - 1
    inv = P.inverse_mod(P.mod(M1, M2), M2)
    cols = []
    for j in range(n1 + n2):
        e = (Fraction(0),) * (j if j < n1 else j - n1) + (Fraction(1),)
        u1, u2 = (e, ()) if j < n1 else ((), e)
        u = P.add(u1, P.mul(M1, P.mod(P.mul(P.sub(u2, u1), inv), M2)))
        cols.append(list(u) + [Fraction(0)] * (n1 + n2 - len(u)))
    return [list(row) for row in zip(*cols)]


def crt_matrix(moduli):
    """Flat reconstruction ``(C, scale)``: ``s mod M = scale · C [u_1; …; u_K]``, ``C`` ints."""
    mods = _moduli(moduli)
    M = P.product(mk.coeffs for mk in mods)
    n = len(M) - 1
    cols = []
    for mk in mods:
        Nk = P.exact_div(M, mk.coeffs)
        inv = P.inverse_mod(P.mod(Nk, mk.coeffs), mk.coeffs)
        for j in range(mk.degree):
            xj = (Fraction(0),) * j + (Fraction(1),)
            u = P.mul(Nk, P.mod(P.mul(xj, inv), mk.coeffs))
            cols.append(list(u) + [Fraction(0)] * (n - len(u)))
    rows = [list(row) for row in zip(*cols)]
    c = content([v for row in rows for v in row])
    return tuple(tuple(int(v / c) for v in row) for row in rows), c


# ---------------------------------------------------------------------------------------------
# Trees, built into a ShiftAddNetwork

def _apply(net, matrix, nodes, share):
    """``matrix`` applied to ``nodes``; ``None`` nodes are zeros (their columns are dropped)."""
    keep = [j for j, n in enumerate(nodes) if n is not None]
    if not keep:
        return [None] * len(matrix)
    return net.apply([[row[j] for j in keep] for row in matrix], [nodes[j] for j in keep],
                     share=share)


def _digits(matrix):
    return sum(len(csd_digits(v)) for row in matrix for v in row if v)


def _split(mods, length):
    """The bipartition of ``mods`` whose two reductions from ``length`` terms cost fewest digits."""
    best = None
    idx = range(len(mods))
    for k in range(1, len(mods) // 2 + 1):
        for left in combinations(idx, k):
            a = [mods[i] for i in left]
            b = [mods[i] for i in idx if i not in left]
            cost = 0
            for half in (a, b):
                prod = P.product(mk.coeffs for mk in half)
                if length > len(prod) - 1:
                    cost += _digits(residue_matrix(_poly_modulus(prod), length))
            if best is None or cost < best[0]:
                best = (cost, a, b)
    return best[1], best[2]


def _poly_modulus(coeffs):
    return Modulus(tuple(coeffs))


def residue_tree(net, nodes, moduli, *, share=True, record=None):
    """Residues of ``nodes`` (a polynomial, lowest degree first) modulo each of ``moduli``
    through the residue tree; returns one list of ``deg M_k`` nodes per modulus (``None`` for
    zeros). ``record``: a list that receives every reduced node of the tree."""
    mods = _moduli(moduli)
    nodes = list(nodes)
    prod = P.product(mk.coeffs for mk in mods)
    if len(nodes) > len(prod) - 1:
        nodes = _apply(net, residue_matrix(_poly_modulus(prod), len(nodes)), nodes, share)
        if record is not None:
            record.extend(n for n in nodes if n is not None)
    nodes += [None] * (len(prod) - 1 - len(nodes))
    if len(mods) == 1:
        return [nodes]
    a, b = _split(mods, len(nodes))
    out_a = residue_tree(net, nodes, a, share=share, record=record)
    out_b = residue_tree(net, nodes, b, share=share, record=record)
    by = {mk: res for mk, res in zip(a + b, out_a + out_b)}
    return [by[mk] for mk in mods]


def crt_tree(net, residues, moduli, *, share=True):
    """``(nodes, scale)``: ``s mod M = scale · nodes`` from ``residues[k] = s mod M_k`` (lists of
    ``deg M_k`` nodes), combined pairwise up the residue tree."""
    mods = _moduli(moduli)
    if len(mods) == 1:
        return list(residues[0]), Fraction(1)
    length = sum(mk.degree for mk in mods)
    a, b = _split(mods, length)
    pos = {mk: k for k, mk in enumerate(mods)}
    wa, sa = crt_tree(net, [residues[pos[mk]] for mk in a], a, share=share)
    wb, sb = crt_tree(net, [residues[pos[mk]] for mk in b], b, share=share)
    Ma, Mb = P.product(mk.coeffs for mk in a), P.product(mk.coeffs for mk in b)
    K = _combine(Ma, Mb)
    na = len(Ma) - 1
    K = [[v * (sa if j < na else sb) for j, v in enumerate(row)] for row in K]
    c = content([v for row in K for v in row])
    Kint = [[int(v / c) for v in row] for row in K]
    return _apply(net, Kint, wa + wb, share), c


# ---------------------------------------------------------------------------------------------
# Components

def live_adders(net, outputs) -> int:
    """Adders of ``net`` on a path to one of ``outputs`` (what elaboration builds)."""
    seen, todo = set(), [n for n in outputs if n is not None]
    while todo:
        n = todo.pop()
        if n in seen or net.ops[n] is None:
            continue
        seen.add(n)
        op = net.ops[n]
        todo += [op[1], op[2]] if op[0] == "add" else [op[1]]
    return sum(net.ops[n][0] != "shl" for n in seen)


class _NetworkUnit(_Pipelined):
    """A pipelined unit around the nodes ``outputs`` of ``net`` (see :mod:`.transform`)."""

    def _setup(self, net, outputs, *, in_shape, stages, width):
        _check_common(in_shape, stages, width)
        self.net, self.outputs = net, list(outputs)
        self.in_shape, self.stages, self.width = in_shape, stages, width
        rng = [element_range(in_shape)] * net.n_inputs
        self.out_ranges = [net.range_of(n, rng) if n is not None else (0, 0)
                           for n in self.outputs]
        self.out_bits = width or max(signed_bits(*r) for r in self.out_ranges)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(in_shape, net.n_inputs))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(self.out_bits),
                                                       len(self.outputs)))),
        })

    @property
    def adders(self) -> int:
        """Adders, subtracters and negations that reach an output (wiring shifts excluded)."""
        return live_adders(self.net, self.outputs)


class FoldUnit(_NetworkUnit):
    """Residues of a length-``length`` input modulo each of ``moduli``, concatenated.

    ``structured=True`` builds the residue tree (shared folds); ``False`` the flat matrices
    ``R_{M_k}`` side by side (with the same sub-expression sharing as any
    :class:`.transform.TransformUnit`). ``o.payload`` holds ``Σ deg M_k`` residues in the order
    of ``moduli``.
    """

    def __init__(self, moduli, length, *, in_shape, stages=1, width=None, structured=True,
                 share=True):
        self.moduli = _moduli(moduli)
        if not isinstance(length, int) or length < 1:
            raise ValueError(f"Length must be a positive integer, not {length!r}")
        self.length, self.structured = length, structured
        net = ShiftAddNetwork(length)
        if structured:
            res = residue_tree(net, range(length), self.moduli, share=share)
            outputs = [n for r in res for n in r]
        else:
            matrix = [row for mk in self.moduli for row in residue_matrix(mk, length)]
            outputs = net.apply(matrix, list(range(length)), share=share)
        self._setup(net, outputs, in_shape=in_shape, stages=stages, width=width)


class CrtUnit(_NetworkUnit):
    """CRT reconstruction: ``i.payload`` the residues ``u_k`` (``deg M_k`` each, in the order of
    ``moduli``), ``o.payload`` integers ``w`` with ``s mod M = scale · w`` (``deg M`` values).

    ``structured=True`` combines pairwise up the residue tree; ``False`` applies the flat
    matrix of :func:`crt_matrix`.
    """

    def __init__(self, moduli, *, in_shape, stages=1, width=None, structured=True, share=True):
        self.moduli = _moduli(moduli)
        self.structured = structured
        n = sum(mk.degree for mk in self.moduli)
        net = ShiftAddNetwork(n)
        if structured:
            res, k = [], 0
            for mk in self.moduli:
                res.append(list(range(k, k + mk.degree)))
                k += mk.degree
            outputs, self.scale = crt_tree(net, res, self.moduli, share=share)
        else:
            C, self.scale = crt_matrix(self.moduli)
            outputs = net.apply(C, list(range(n)), share=share)
        self._setup(net, outputs, in_shape=in_shape, stages=stages, width=width)


def fold_factor(algorithm: Winograd1D):
    """``(start, moduli, K)`` with ``Bᵀ d = K · [fold(d[start : start + L]); d]`` exactly.

    ``fold`` lists every node of the residue tree of the window modulo ``moduli`` (the
    algorithm's moduli other than ``x``), in the order :func:`residue_tree` records them.
    Each row of ``K`` puts coefficients in {−1, 0, 1} on fold outputs, chosen greedily to
    leave the fewest signed digits on raw inputs, and the remainder on raw inputs.
    """
    if not isinstance(algorithm, Winograd1D):
        raise TypeError(f"Algorithm must be a Winograd1D, not {algorithm!r}")
    BT = integer_form(algorithm).BT.matrix
    N = algorithm.N
    has_x = any(tuple(mk.coeffs) == (0, 1) for mk in algorithm.moduli)
    mods = [mk for mk in algorithm.moduli if tuple(mk.coeffs) != (0, 1)]
    start = int(has_x)
    L = sum(mk.degree for mk in mods)
    net = ShiftAddNetwork(N)
    fold = []
    residue_tree(net, range(start, start + L), mods, record=fold)
    fold = list(dict.fromkeys(fold))
    F = [net.coeffs[n] for n in fold]
    K = []
    for b in BT:
        k, rem = [0] * len(F), list(b)
        cost = _row_cost(rem)
        while True:
            best = None
            for i, f in enumerate(F):
                if k[i]:
                    continue
                for s in (1, -1):
                    trial = [x - s * y for x, y in zip(rem, f)]
                    c = _row_cost(trial) + 1
                    if c < cost and (best is None or c < best[0]):
                        best = (c, i, s, trial)
            if best is None:
                break
            cost, i, s, rem = best
            k[i] = s
        K.append(tuple(k) + tuple(rem))
    for b, row in zip(BT, K):      # exact check: K · [F; I] == Bᵀ
        got = [sum(row[i] * F[i][j] for i in range(len(F))) + row[len(F) + j] for j in range(N)]
        assert tuple(got) == tuple(b)
    return start, tuple(mods), tuple(K)


def _row_cost(row):
    return sum(len(csd_digits(v)) for v in row if v)


def _folded_pass(net, nodes, start, mods, K, share):
    fold = []
    residue_tree(net, list(nodes)[start:start + sum(mk.degree for mk in mods)], mods,
                 share=share, record=fold)
    fold = list(dict.fromkeys(fold))
    assert len(fold) + len(nodes) == len(K[0])
    return _apply(net, K, fold + list(nodes), share)


class FoldedTransform(_NetworkUnit):
    """``Bᵀ d`` of a CRT algorithm as ``K · [fold(d'); d]`` (:func:`fold_factor`)."""

    def __init__(self, algorithm, *, in_shape, stages=1, width=None, share=True):
        self.start, self.fold_moduli, self.K = fold_factor(algorithm)
        net = ShiftAddNetwork(algorithm.N)
        outputs = _folded_pass(net, range(algorithm.N), self.start, self.fold_moduli, self.K,
                               share)
        self._setup(net, outputs, in_shape=in_shape, stages=stages, width=width)


class FoldedTransform2D(_NetworkUnit):
    """``Bᵀ d B`` of a 2-D CRT algorithm: a folded column pass, then a folded row pass.

    Ports as :class:`.transform.Transform2D` (``d`` and the result row-major).
    """

    def __init__(self, algorithm, *, in_shape, stages=1, width=None, share=True):
        if not isinstance(algorithm, Winograd2D):
            raise TypeError(f"Algorithm must be a Winograd2D, not {algorithm!r}")
        rows, cols = algorithm.rows, algorithm.cols
        fr, fc = fold_factor(rows), fold_factor(cols)
        nr, nc = rows.N, cols.N
        ar, ac = rows.alpha, cols.alpha
        self.shape_in, self.shape_out = (nr, nc), (ar, ac)
        net = ShiftAddNetwork(nr * nc)
        T = [[None] * nc for _ in range(ar)]
        for v in range(nc):
            col = _folded_pass(net, [u * nc + v for u in range(nr)], *fr, share)
            for a in range(ar):
                T[a][v] = col[a]
        outputs = []
        for a in range(ar):
            outputs += _folded_pass(net, T[a], *fc, share)
        self._setup(net, outputs, in_shape=in_shape, stages=stages, width=width)
