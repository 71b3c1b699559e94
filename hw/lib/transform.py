"""Transform-matrix units: a constant integer matrix times a vector as a shift-add network
(:class:`slimgen.hw.lib.const_mul.ShiftAddNetwork`: canonical signed digits, common
sub-expressions shared between rows, balanced adder trees, exact or wrapping widths).

Pipelining. ``stages = k`` cuts the adder levels into ``k`` nearly equal slices with a register
after each (the last one registers the outputs); values that skip a slice are delayed so that
every output of one input vector leaves together. ``k = 0`` is purely combinational. The whole
pipeline stalls while its output is valid and not taken (stream semantics).

:class:`Transform2D` applies ``Y = Mr X Mcᵀ`` (``Bᵀ d B`` with ``Mr = Mc = Bᵀ``, or ``Aᵀ M A``)
as a column pass then a row pass in one network and one pipeline.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.fixed import signed_bits

from .const_mul import ShiftAddNetwork, element_range

__all__ = ["TransformUnit", "Transform2D", "check_matrix"]


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
        ranges = [element_range(self.in_shape)] * net.n_inputs
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
        rng = [element_range(in_shape)] * n_in
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
        rng = [element_range(in_shape)] * (nr * nc)
        self.out_ranges = [net.range_of(n, rng) if n is not None else (0, 0)
                           for n in self.outputs]
        self.out_bits = width or max(signed_bits(*r) for r in self.out_ranges)
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(in_shape, nr * nc))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(self.out_bits), ar * ac))),
        })

