"""Multiplication by constants without multipliers: shift-add networks over canonical signed
digits (non-adjacent form, :func:`slimgen.sw.winograd.csd_digits`), the one place where
constants become adders::

    c = Σ_k d_k · 2^(p_k),  d_k ∈ {−1, +1}        c · x = Σ_k d_k · (x << p_k)

A constant with ``n`` non-zero digits costs ``n − 1`` adders (none for ``±2^p``, a negation for
``−2^p``); the non-adjacent form has the fewest digits of any signed-digit form.

- :class:`ShiftAddNetwork`: ``y = M x`` for a constant integer matrix, common two-term
  sub-expressions shared between rows, balanced adder trees, optional pipeline registers (the
  transform units of :mod:`.transform` and :mod:`.polynomial`);
- :func:`const_times`: one product ``c · x`` (a 1 × 1 network), exact or modulo ``2^width``;
- :func:`select_times`: ``coeffs[index] · x``, one network per distinct coefficient and a mux.

Widths: ``width=None`` gives every node the exact range of its value (interval arithmetic on
its integer coefficients), so results have the exact bit growth; ``width=w`` wraps every node
modulo ``2^w``, exact whenever the true result fits (the network is linear).
"""

from __future__ import annotations

from collections import Counter

from amaranth.hdl import Array, Const, Signal, Value, signed

from slimgen.sw.fixed import signed_bits
from slimgen.sw.winograd import csd_digits

__all__ = ["ShiftAddNetwork", "element_range", "const_times", "select_times"]


class ShiftAddNetwork:
    """A DAG of adders over ``n_inputs`` primary inputs, built pass by pass (pure Python).

    Node ``k`` has ``coeffs[k]`` (its value as an integer combination of the primary inputs) and
    ``level[k]`` (adder depth). Adders are ``(a, b, sb, sh, sa)``: ``(a << sa) + sb·(b << sh)``.
    """

    def __init__(self, n_inputs: int):
        self.n_inputs = n_inputs
        self.coeffs = [tuple(int(i == j) for j in range(n_inputs)) for i in range(n_inputs)]
        self.level = [0] * n_inputs
        self.ops = [None] * n_inputs       # None for inputs, ("add", a, b, sb, sh), ("neg", a)
        self._memo = {}

    @property
    def adders(self) -> int:
        """Additions and subtractions (negations included)."""
        return sum(op is not None for op in self.ops)

    def _new(self, op, coeffs, level):
        key = (op, )
        if key in self._memo:
            return self._memo[key]
        self.ops.append(op)
        self.coeffs.append(tuple(coeffs))
        self.level.append(level)
        self._memo[key] = len(self.ops) - 1
        return len(self.ops) - 1

    def add(self, a, b, sb, sh, sa=0):
        """Node ``(a << sa) + sb · (b << sh)``."""
        c = [(x << sa) + sb * (y << sh) for x, y in zip(self.coeffs[a], self.coeffs[b])]
        return self._new(("add", a, b, sb, sh, sa), c, max(self.level[a], self.level[b]) + 1)

    def neg(self, a):
        return self._new(("neg", a), [-x for x in self.coeffs[a]], self.level[a] + 1)

    def apply(self, matrix, nodes, *, share=True):
        """Rows of ``matrix`` applied to the vector of nodes ``nodes``; returns one node per row
        (``None`` for an all-zero row)."""
        terms = []   # per row: list of (node, shift, sign)
        for row in matrix:
            terms.append([(nodes[j], pos, s) for j, c in enumerate(row) if c
                          for pos, s in csd_digits(c)])
        if share:
            terms = self._share(terms)
        return [self._sum(t) for t in terms]

    def _share(self, rows):
        while True:
            count = Counter()
            for t in rows:
                seen = set()
                for i in range(len(t)):
                    for j in range(i + 1, len(t)):
                        key = self._pattern(t[i], t[j])
                        if key not in seen:
                            seen.add(key)
                            count[key] += 1
            if not count:
                return rows
            key, n = count.most_common(1)[0]
            if n < 2:
                return rows
            node = self.add(*key)
            new_rows = []
            for t in rows:
                t = list(t)
                while (hit := self._find(t, key)) is not None:
                    i, j, lo = hit
                    t = [x for k, x in enumerate(t) if k not in (i, j)] + [(node, lo[1], lo[2])]
                new_rows.append(t)
            rows = new_rows

    def _find(self, t, key):
        for i in range(len(t)):
            for j in range(i + 1, len(t)):
                if self._pattern(t[i], t[j]) == key:
                    p, q = t[i], t[j]
                    return i, j, (p if (p[1], p[0]) <= (q[1], q[0]) else q)
        return None

    @staticmethod
    def _pattern(p, q):
        """Canonical ``(a, b, sign, shift)`` of the pair: ``a`` at the smaller shift."""
        if (p[1], p[0]) > (q[1], q[0]):
            p, q = q, p
        return (p[0], q[0], p[2] * q[2], q[1] - p[1])

    def _sum(self, terms):
        if not terms:
            return None
        terms = sorted(terms, key=lambda t: (self.level[t[0]], t[1]))
        while len(terms) > 1:
            nxt = []
            for k in range(0, len(terms) - 1, 2):
                (a, sa, ga), (b, sbh, gb) = terms[k], terms[k + 1]
                if ga < 0 < gb:      # lead with a positive term: a subtraction, no negation
                    (a, sa, ga), (b, sbh, gb) = (b, sbh, gb), (a, sa, ga)
                base = min(sa, sbh)
                node = self.add(a, b, ga * gb, sbh - base, sa - base)
                sa = base
                nxt.append((node, sa, ga))
            if len(terms) % 2:
                nxt.append(terms[-1])
            terms = sorted(nxt, key=lambda t: (self.level[t[0]], t[1]))
        node, sh, sign = terms[0]
        if sh:
            node = self._shifted(node, sh)
        return self.neg(node) if sign < 0 else node

    def _shifted(self, a, sh):
        """Node ``a << sh`` (wiring only, no adder)."""
        return self._new(("shl", a, sh), [x << sh for x in self.coeffs[a]], self.level[a])

    def range_of(self, node, in_ranges):
        lo = hi = 0
        for c, (l, h) in zip(self.coeffs[node], in_ranges):
            lo += c * (l if c > 0 else h)
            hi += c * (h if c > 0 else l)
        return lo, hi

    def elaborate(self, m, inputs, outputs, *, in_ranges, stages, en, width=None):
        """Signals of ``outputs`` (node ids or ``None``), ``stages`` registers after the inputs,
        built into module ``m`` with clock enable ``en``."""
        depth = max([self.level[n] for n in outputs if n is not None], default=0)

        def stage_of(n):
            lv = self.level[n]
            if stages == 0 or lv == 0 or depth == 0:
                return 0
            return min(stages - 1, (lv - 1) * stages // depth)

        def shape_of(n):
            if width is not None:
                return signed(width)
            return signed(signed_bits(*self.range_of(n, in_ranges)))

        memo = {}

        def get(n, t):
            if (n, t) in memo:
                return memo[n, t]
            s = stage_of(n) if self.ops[n] is not None else 0
            if t > s:
                prev = get(n, t - 1)
                sig = Signal(prev.shape(), name=f"n{n}_s{t}")
                with m.If(en):
                    m.d.sync += sig.eq(prev)
            else:
                op = self.ops[n]
                if op is None:
                    sig = inputs[n]
                else:
                    sig = Signal(shape_of(n), name=f"n{n}")
                    if op[0] == "add":
                        _, a, b, sb, sh, sa = op
                        x, y = get(a, t) << sa, get(b, t) << sh
                        m.d.comb += sig.eq(x + y if sb > 0 else x - y)
                    elif op[0] == "neg":
                        m.d.comb += sig.eq(-get(op[1], t))
                    else:
                        m.d.comb += sig.eq(get(op[1], t) << op[2])
            memo[n, t] = sig
            return sig

        return [get(n, stages) if n is not None else None for n in outputs]


def element_range(shape):
    """``(lo, hi)`` of a value of ``shape`` (signed or unsigned)."""
    if shape.signed:
        return (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1)
    return (0, (1 << shape.width) - 1)


def const_times(m, x, c, *, width=None, low=0, name):
    """``c · x`` for an integer constant ``c``: a shift-add network over its canonical signed
    digits (:class:`ShiftAddNetwork` of one row), added to ``m`` combinationally.

    ``x`` any Value; returns a Value of the exact shape of ``c · x`` (``width=None``) or
    ``signed(width)``, the product modulo ``2^width``; with ``low``, its bits from ``low`` up
    (``(c · x) ≫ low``, ``signed(width − low)``: what a rounding by a constant shift reads). ``c = 0`` gives a zero
    constant, ``±2^k`` wiring (and a negation), ``1`` the input itself.
    """
    if isinstance(c, bool) or not isinstance(c, int):
        raise TypeError(f"Constant must be an integer, not {c!r}")
    x = Value.cast(x)
    if c == 0:
        return Const(0, signed(width or 1))
    net = ShiftAddNetwork(1)
    (node,) = net.apply([[c]], [0], share=False)
    (product,) = net.elaborate(m, [x], [node], in_ranges=[element_range(x.shape())], stages=0,
                               en=1, width=width)
    if low:
        product = product >> low
    out = Signal(signed(width - low) if width else product.shape(), name=name)
    m.d.comb += out.eq(product)
    return out


def select_times(m, x, coeffs, index, width, name, *, low=0):
    """``coeffs[index] · x`` (``signed(width)``, wrapping) for constant ``coeffs`` and a
    run-time ``index``: one :func:`const_times` per distinct non-zero coefficient, then a mux;
    with ``low``, its bits from ``low`` up (``signed(width − low)``)."""
    products = {c: const_times(m, x, c, width=width, low=low,
                               name=f"{name}_x{c}".replace("-", "m"))
                for c in sorted(set(coeffs)) if c}
    width -= low
    out = Signal(signed(width), name=name)
    if len(set(coeffs)) == 1:
        m.d.comb += out.eq(products.get(coeffs[0], 0))
    else:
        m.d.comb += out.eq(Array(products.get(c, Const(0, signed(width))) for c in coeffs)[index])
    return out
