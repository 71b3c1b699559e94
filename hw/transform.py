"""Transform-matrix units: a constant integer matrix times a vector as a shift-add network.

Every entry ``c`` of the matrix is written in canonical signed digits (non-adjacent form,
``c = Σ ±2^k``), so row ``i`` of ``y = M x`` is a sum of signed, shifted inputs. With ``share``,
common two-term sub-expressions ``x_a ± (x_b << s)`` used by two or more rows are computed once
(greedy, most frequent first, as in Hartley's CSE). Each row's terms are then summed by a
balanced adder tree; the network's depth is the largest tree height.

Widths. With ``width=None`` every node is as wide as the exact range of its value over all
inputs (interval arithmetic on the node's integer coefficients), so outputs have the exact bit
growth. With ``width=w`` every node is ``signed(w)`` and wraps modulo ``2^w``: exact whenever the
true result fits ``w`` bits, because the network is linear (used for the output transform,
whose result range is far smaller than its intermediate sums).

Pipelining. ``stages = k`` cuts the adder levels into ``k`` nearly equal slices with a register
after each (the last one registers the outputs); values that skip a slice are delayed so that
every output of one input vector leaves together. ``k = 0`` is purely combinational. The whole
pipeline stalls while its output is valid and not taken (stream semantics).

:class:`Transform2D` applies ``Y = Mr X Mcᵀ`` (``Bᵀ d B`` with ``Mr = Mc = Bᵀ``, or ``Aᵀ M A``)
as a column pass then a row pass in one network and one pipeline.
"""

from __future__ import annotations

from collections import Counter

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.fixed import signed_bits
from slimgen.sw.winograd import csd_digits

__all__ = ["ShiftAddNetwork", "TransformUnit", "Transform2D", "check_matrix"]


def check_matrix(matrix, name="Matrix"):
    """``matrix`` as a tuple of equal-length tuples of ints; ``ValueError`` otherwise."""
    try:
        rows = tuple(tuple(row) for row in matrix)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of rows of integers, not {matrix!r}") from None
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError(f"{name} must be a non-empty rectangular matrix, not {matrix!r}")
    for row in rows:
        for v in row:
            if int(v) != v:
                raise ValueError(f"{name} must hold integers only, not {v!r}")
    return tuple(tuple(int(v) for v in row) for row in rows)


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


def _element_range(shape):
    if shape.signed:
        return (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1)
    return (0, (1 << shape.width) - 1)


class _Pipelined(wiring.Component):
    """Shared body: stream in, stream out, the nodes ``self.outputs`` of the network
    ``self.net`` with ``self.stages`` registers."""

    @property
    def adders(self) -> int:
        """Additions, subtractions and negations (wiring shifts excluded)."""
        return sum(op is not None and op[0] != "shl" for op in self.net.ops)

    @property
    def latency(self) -> int:
        return self.stages

    def elaborate(self, platform):
        m = Module()
        self._build(m, self.net, self.outputs)
        return m

    def _build(self, m, net, outputs):
        k = self.stages
        inputs = [self.i.payload[j] for j in range(net.n_inputs)]
        en = Signal()
        if k == 0:
            m.d.comb += [self.o.valid.eq(self.i.valid), self.i.ready.eq(self.o.ready)]
            m.d.comb += en.eq(1)
        else:
            valid = [Signal(name=f"valid{s}") for s in range(k)]
            m.d.comb += en.eq(~self.o.valid | self.o.ready)
            with m.If(en):
                m.d.sync += valid[0].eq(self.i.valid)
                m.d.sync += [valid[s].eq(valid[s - 1]) for s in range(1, k)]
            m.d.comb += [self.o.valid.eq(valid[-1]), self.i.ready.eq(en)]
        ranges = [_element_range(self.in_shape)] * net.n_inputs
        sigs = net.elaborate(m, inputs, outputs, in_ranges=ranges, stages=k, en=en,
                             width=self.width)
        for j, s in enumerate(sigs):
            m.d.comb += self.o.payload[j].eq(0 if s is None else s)


def _check_common(in_shape, stages, width):
    if not hasattr(in_shape, "width"):
        raise TypeError(f"Input shape must be signed(n) or unsigned(n), not {in_shape!r}")
    if not isinstance(stages, int) or stages < 0:
        raise ValueError(f"Stage count must be a non-negative integer, not {stages!r}")
    if width is not None and (not isinstance(width, int) or width < 1):
        raise ValueError(f"Width must be a positive integer or None, not {width!r}")


class TransformUnit(_Pipelined):
    """``y = M x`` for a constant integer matrix ``M`` (n_out × n_in), pipelined.

    Parameters
    ----------
    matrix : rows of ints
    in_shape : Shape
        Shape of each input element (``unsigned(8)``, ``signed(12)``, ...).
    stages : int
        Register stages (0: combinational; latency in cycles otherwise).
    width : int or None
        ``None``: exact output widths from the bit growth; ``w``: outputs modulo ``2^w``.
    share : bool
        Share common two-term sub-expressions between rows.

    Attributes
    ----------
    i : In(stream.Signature(ArrayLayout(in_shape, n_in)))
    o : Out(stream.Signature(ArrayLayout(signed(out_bits), n_out)))
        ``out_bits`` is the widest exact output (or ``width``); :attr:`out_ranges` gives each.
    """

    def __init__(self, matrix, *, in_shape, stages=1, width=None, share=True):
        self.matrix = check_matrix(matrix)
        _check_common(in_shape, stages, width)
        self.in_shape, self.stages, self.width, self.share = in_shape, stages, width, share
        n_out, n_in = len(self.matrix), len(self.matrix[0])
        self.net = ShiftAddNetwork(n_in)
        self.outputs = self.net.apply(self.matrix, list(range(n_in)), share=share)
        rng = [_element_range(in_shape)] * n_in
        self.out_ranges = [self.net.range_of(n, rng) if n is not None else (0, 0)
                           for n in self.outputs]
        self.out_bits = width or max(signed_bits(*r) for r in self.out_ranges)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(in_shape, n_in))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(self.out_bits), n_out))),
        })



class Transform2D(_Pipelined):
    """``Y = Mr X Mcᵀ`` for an ``Nr × Nc`` input ``X``: a column pass with ``Mr`` then a row
    pass with ``Mc``, one network and one pipeline.

    ``i.payload`` is ``X`` row-major (``Nr·Nc`` elements), ``o.payload`` is ``Y`` row-major
    (``αr·αc``). Other parameters as for :class:`TransformUnit`.
    """

    def __init__(self, row_matrix, col_matrix, *, in_shape, stages=1, width=None, share=True):
        Mr, Mc = check_matrix(row_matrix, "Row matrix"), check_matrix(col_matrix, "Column matrix")
        _check_common(in_shape, stages, width)
        self.row_matrix, self.col_matrix = Mr, Mc
        self.in_shape, self.stages, self.width, self.share = in_shape, stages, width, share
        ar, nr, ac, nc = len(Mr), len(Mr[0]), len(Mc), len(Mc[0])
        self.shape_in, self.shape_out = (nr, nc), (ar, ac)
        net = self.net = ShiftAddNetwork(nr * nc)
        # column pass: T[:, v] = Mr X[:, v]
        T = [[None] * nc for _ in range(ar)]
        for v in range(nc):
            col = net.apply(Mr, [u * nc + v for u in range(nr)], share=share)
            for a in range(ar):
                T[a][v] = col[a]
        # row pass: Y[a, :] = Mc T[a, :]
        self.outputs = []
        zero_rows = []
        for a in range(ar):
            present = [n for n in T[a] if n is not None]
            if len(present) < nc:
                # zero entries of T (all-zero rows of Mr) contribute nothing: drop their columns
                keep = [v for v in range(nc) if T[a][v] is not None]
                sub = [[row[v] for v in keep] for row in Mc]
                self.outputs += net.apply(sub, present, share=share) if keep else [None] * ac
                zero_rows.append(a)
            else:
                self.outputs += net.apply(Mc, T[a], share=share)
        rng = [_element_range(in_shape)] * (nr * nc)
        self.out_ranges = [net.range_of(n, rng) if n is not None else (0, 0)
                           for n in self.outputs]
        self.out_bits = width or max(signed_bits(*r) for r in self.out_ranges)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(in_shape, nr * nc))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(self.out_bits), ar * ac))),
        })

