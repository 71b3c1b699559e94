"""The matrix generators: reduction, inner linear convolution, CRT reconstruction, transposition.

A bilinear algorithm for the linear convolution ``s = h * x`` (``h`` length ``a``, ``x`` length
``b``, ``s`` length ``L = a + b − 1``) is three matrices with

    s = C [(A h) ⊙ (B x)],   A: α × a,   B: α × b,   C: L × α,

built from moduli ``M_k`` (see :mod:`.moduli`) as follows, with ``M = ∏ M_k`` and
``N_k = M / M_k``:

* Reduction: ``R_k`` (``n_k × len``) has column ``j`` = coefficients of ``x^j mod M_k``.
* Residue product: for ``n_k = 1`` one product ``(R_k h)(R_k x)``; for ``n_k > 1`` a Toom-Cook
  linear convolution of two length-``n_k`` residues at ``2n_k − 2`` inner points plus infinity,
  ``(A_k, B_k, C_k)``, followed by reduction of its ``2n_k − 1`` outputs modulo ``M_k``.
* CRT reconstruction: residue ``u_k`` contributes ``u_k · N_k · (N_k^{-1} mod M_k) mod M``; its
  column ``j`` is ``N_k · (x^j · N_k^{-1} mod M_k)`` (degree < ``N − 1``).
* Point at infinity: one more product ``h_{a−1} · x_{b−1}``, times the coefficients of ``M``.

Transposition (Tellegen) turns it into the correlation (filter) form F(m, r),
``y_i = Σ_k g_k d_{i+k}``:

    y = Aᵀ_w [(G g) ⊙ (Bᵀ_w d)],   Aᵀ_w = Bᵀ (m × α),   G = A (α × r),   Bᵀ_w = Cᵀ (α × N),

because ``Σ_t C[n,t] A[t,k] B[t,j] = [n = j + k]`` is the same identity read both ways.
Finally every product's scale is moved into ``G``: each row of ``Bᵀ_w`` and each column of
``Aᵀ_w`` is divided by its (positive, rational) content, so both become primitive integer
matrices, and the row of ``G`` takes the product of the two contents.

All arithmetic is in :class:`fractions.Fraction`; matrices are lists of lists here and tuples of
tuples once they leave this module.
"""

from __future__ import annotations

from fractions import Fraction
from math import gcd, lcm

from . import polynomials as P
from .moduli import Modulus

__all__ = ["matmul", "transpose", "content", "conv_algorithm", "correlation_matrices"]

_ZERO = Fraction(0)
_ONE = Fraction(1)


def matmul(X, Y):
    """Product of two Fraction matrices given as lists of rows (zeros skipped)."""
    cols = len(Y[0]) if Y else 0
    out = []
    for row in X:
        acc = [_ZERO] * cols
        for k, a in enumerate(row):
            if a:
                for j, b in enumerate(Y[k]):
                    if b:
                        acc[j] += a * b
        out.append(acc)
    return out


def transpose(X):
    return [list(col) for col in zip(*X)]


def content(values) -> Fraction:
    """Positive rational ``c`` with ``values / c`` a primitive integer vector (1 for zeros)."""
    nums = 0
    dens = 1
    for v in values:
        if v:
            nums = gcd(nums, v.numerator)
            dens = lcm(dens, v.denominator)
    return Fraction(nums, dens) if nums else _ONE


def _pad(coeffs, length):
    return list(coeffs) + [_ZERO] * (length - len(coeffs))


def conv_algorithm(a_len: int, b_len: int, moduli, inner_points):
    """``(A, B, C)`` for the linear convolution of lengths ``a_len`` and ``b_len``.

    ``moduli`` must be valid (pairwise co-prime, total degree ``a_len + b_len − 2``);
    ``inner_points`` must hold at least ``2n − 2`` distinct points for the largest degree ``n``.
    Products are ordered modulus by modulus, the point at infinity last.
    """
    L = a_len + b_len - 1
    polys = [mk.coeffs for mk in moduli]
    M = P.product(polys)
    A, B, Ccols = [], [], []
    inner_cache = {}
    for mk in moduli:
        n = mk.degree
        Ra = P.x_power_residues(mk.coeffs, a_len)      # a_len residues of length n
        Rb = P.x_power_residues(mk.coeffs, b_len)
        if n == 1:
            a = mk.root
            Nk = _synthetic_div(M, a)                   # M / (x − a), degree L − 2
            inv = 1 / P.evaluate(Nk, a)
            A.append([res[0] for res in Ra])
            B.append([res[0] for res in Rb])
            Ccols.append(_pad([c * inv for c in Nk], L))
            continue
        Nk = P.exact_div(M, mk.coeffs)
        s = P.inverse_mod(P.mod(Nk, mk.coeffs), mk.coeffs)
        if n not in inner_cache:
            pts = inner_points[:2 * n - 2]
            inner_cache[n] = conv_algorithm(n, n, [Modulus.linear(p) for p in pts], ())
        Ai, Bi, Ci = inner_cache[n]
        Rak = transpose(Ra)                              # n × a_len
        Rbk = transpose(Rb)
        A.extend(matmul(Ai, Rak))
        B.extend(matmul(Bi, Rbk))
        red = transpose(P.x_power_residues(mk.coeffs, 2 * n - 1))   # n × (2n − 1)
        # E: (L × n), column j = N_k · (x^j s mod M_k)
        shifted = s
        Ecols = []
        for _ in range(n):
            Ecols.append(_pad(P.mul(Nk, shifted), L))
            shifted = P.mod((_ZERO,) + tuple(shifted), mk.coeffs)
        E = transpose(Ecols)
        Ccols.extend(transpose(matmul(matmul(E, red), Ci)))
    A.append([_ZERO] * (a_len - 1) + [_ONE])
    B.append([_ZERO] * (b_len - 1) + [_ONE])
    Ccols.append(_pad(M, L))
    return A, B, transpose(Ccols)


def _synthetic_div(M, a):
    """Quotient of ``M / (x − a)`` (the remainder is zero when ``a`` is a root)."""
    n = len(M) - 1
    q = [_ZERO] * n
    acc = _ZERO
    for k in range(n, 0, -1):
        acc = acc * a + M[k]
        q[k - 1] = acc
    return tuple(q)


def correlation_matrices(m: int, r: int, moduli, inner_points):
    """``(AT, G, BT)`` of F(m, r) in correlation form, scales moved into ``G``.

    Shapes: ``AT`` m × α, ``G`` α × r, ``BT`` α × N with ``N = m + r − 1``; ``AT`` and ``BT`` are
    primitive integer matrices (as Fractions), ``G`` carries every scale.
    """
    A, B, C = conv_algorithm(r, m, moduli, inner_points)
    BT = transpose(C)                   # α × N
    G = [list(row) for row in A]        # α × r
    AT_cols = B                          # α rows of B are the columns of AT
    for t in range(len(G)):
        cb = content(BT[t])
        ca = content(AT_cols[t])
        if cb != 1:
            BT[t] = [v / cb for v in BT[t]]
        if ca != 1:
            AT_cols[t] = [v / ca for v in AT_cols[t]]
        f = cb * ca
        if f != 1:
            G[t] = [v * f for v in G[t]]
    AT = transpose(AT_cols)
    return AT, G, BT
