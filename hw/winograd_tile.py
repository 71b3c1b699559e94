"""Tile engines: one input tile per input channel in, one output tile per output channel out.

:class:`TileEngine` is the datapath both convolution engines share; :func:`winograd_tile` builds
the F(m×m, r×r) Winograd engine from any algorithm of :mod:`slimgen.sw.winograd`, and
:func:`slimgen.hw.direct_conv.direct_tile` the direct engine, with the same ports.

Winograd schedule, for every tile position (windows arrive channel by channel, ``Cin`` per tile):

1. input transform ``V = BT d B`` (:class:`.transform.Transform2D`, exact widths, pipelined);
2. a *pass* over all output channels: for ``k = 0 … Cout−1`` and step ``s = 0 … S−1``, lane ``l``
   multiplies ``V[s·P + l]`` by ``U[k, c][s·P + l]`` (``U = G g Gᵀ`` as integers, computed
   offline, in the lane's own block RAM) and adds it to the transform-domain accumulator
   ``M[k][s·P + l]`` (block RAM, address ``k·S + s``); ``S = ⌈α²/P⌉`` steps, so each multiplier
   does one useful product per cycle;
3. at the last input channel the sums go to a gather register instead; a full ``M[k]`` goes
   through the output transform ``P = AT M A`` and the exact scale removal
   ``y = ((P·p mod 2^(w+k)) >> k) · q⁻¹ mod 2^w`` (shift for the power of two ``2^k`` in the
   denominator, multiplication by the inverse of the odd part ``q`` modulo ``2^w``, both as
   shift-add networks: exact because ``y`` fits ``w`` bits).

Everything after the products is linear, so the accumulators and the output transform work
modulo ``2^(w+k)``, ``w`` the exact width of the correlation ``y``: far narrower than the
interval bound of ``AT M A``.

Lane pipeline: issue (addresses, operand select) → block RAM data, product register (maps onto
a DSP block) → accumulate / write back. A pass lasts ``max(Cout·S, 2)`` cycles so that a
read-modify-write never meets its own write in flight (the read port is transparent to the
write port). The whole engine stalls when its output is not taken.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.winograd.hardware import scale_parts, transform_weights
from slimgen.sw.fixed import signed_bits
from slimgen.sw.integer_model import IntConv
from slimgen.sw.winograd import Winograd2D, integer_form

from .lib.const_mul import ShiftAddNetwork
from .transform import Transform2D

__all__ = ["TileEngine", "winograd_tile", "filter_range", "const_mul", "check_conv"]


def check_conv(layer):
    """Refuse a convolution the tile engines cannot compute: not a 2-D :class:`IntConv` with
    square kernels, stride 1, the same zero padding on every side and unsigned inputs."""
    if not isinstance(layer, IntConv) or layer.dims != 2:
        raise TypeError(f"Layer must be a 2-D IntConv, not {layer!r}")
    if layer.W.shape[2] != layer.W.shape[3] or layer.stride != 1 or layer.padding is None:
        raise ValueError(f"The convolution engines take square kernels, stride 1 and the same "
                         f"padding on every side, not kernel {layer.W.shape[2:]}, stride "
                         f"{layer.stride} and padding {layer.pad}")
    if layer.in_signed:
        raise ValueError("The convolution engines take unsigned inputs")
    return layer


def filter_range(W, in_bits):
    """Exact range of ``Σ W·x`` (no bias) over unsigned ``in_bits`` inputs, all filters."""
    W = np.asarray(W, dtype=np.int64).reshape(len(W), -1)
    xmax = (1 << in_bits) - 1
    lo = xmax * np.where(W < 0, W, 0).sum(axis=1)
    hi = xmax * np.where(W > 0, W, 0).sum(axis=1)
    return int(min(lo.min(), 0)), int(max(hi.max(), 0))


def const_mul(m, x, c, width, name):
    """Signal ``(x · c) mod 2^width`` (signed) as a combinational CSD shift-add network."""
    if c == 1:
        out = Signal(signed(width), name=name)
        m.d.comb += out.eq(x)
        return out
    net = ShiftAddNetwork(1)
    node = net.apply([[c]], [0], share=False)[0]
    (sig,) = net.elaborate(m, [x], [node], in_ranges=[(0, 0)], stages=0, en=1, width=width)
    out = Signal(signed(width), name=name)
    m.d.comb += out.eq(sig)
    return out


class TileEngine(wiring.Component):
    """The shared tile datapath (leaves take plain numbers; see the factories).

    Parameters
    ----------
    window : (int, int)
        Input tile shape ``(Nr, Nc)`` of unsigned ``in_bits`` activations.
    out_tile : (int, int)
        Output tile shape ``(mr, mc)``.
    c_in, c_out, lanes, steps : int
    in_transform : Transform2D or None
        ``V`` from the window (``None``: ``V`` is the window itself).
    lane_v : list of list of int
        ``lane_v[s][l]``: index into ``V`` that lane ``l`` multiplies at step ``s`` (−1: idle).
    lane_weights : list of list of int
        Initial block RAM contents per lane, address ``(k·Cin + c)·S + s``.
    weight_shape : Shape
    groups : list of list of int
        Lanes summed together before accumulation (one group per accumulator).
    gather_pos : list of list of int
        ``gather_pos[s][g]``: where group ``g``'s sum of step ``s`` lands in the gathered vector.
    n_gather : int
    acc_bits : int
        Accumulator width (arithmetic modulo ``2^acc_bits``).
    out_transform : Transform2D or None
    scale : (p, k, q_odd)
        Output scale ``p / (2^k·q_odd)``.
    y_bits : int

    Attributes
    ----------
    i : In(stream.Signature(ArrayLayout(unsigned(in_bits), Nr·Nc)))
        Windows, row-major, input channel fastest, one tile position after another.
    o : Out(stream.Signature(ArrayLayout(signed(y_bits), mr·mc)))
        Output tiles ``y`` (no bias), output channel fastest.
    active : Out(range(lanes + 1))
        Multipliers doing a useful product this cycle (for the benchmarks).
    """

    def __init__(self, *, window, out_tile, in_bits, c_in, c_out, lanes, steps, in_transform,
                 lane_v, lane_weights, weight_shape, groups, gather_pos, n_gather, acc_bits,
                 out_transform, scale, y_bits):
        self.window, self.out_tile, self.in_bits = tuple(window), tuple(out_tile), in_bits
        self.c_in, self.c_out, self.lanes, self.steps = c_in, c_out, lanes, steps
        self.in_transform, self.out_transform = in_transform, out_transform
        self.lane_v, self.lane_weights, self.weight_shape = lane_v, lane_weights, weight_shape
        self.groups, self.gather_pos, self.n_gather = groups, gather_pos, n_gather
        self.acc_bits, self.scale, self.y_bits = acc_bits, scale, y_bits
        self.pass_len = max(c_out * steps, 2)
        self.products_per_window = c_out * sum(v >= 0 for row in lane_v for v in row)
        n_win = window[0] * window[1]
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(unsigned(in_bits), n_win))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(y_bits),
                                                       out_tile[0] * out_tile[1]))),
            "active": Out(range(lanes + 1)),
        })

    @property
    def cycles_per_window(self) -> int:
        """Cycles of one pass: one window (tile position × input channel) every this many."""
        return self.pass_len

    def elaborate(self, platform):
        m = Module()
        P, S, C_in, C_out = self.lanes, self.steps, self.c_in, self.c_out
        nv = len(self.lane_v) and (self.in_transform.shape_out[0] * self.in_transform.shape_out[1]
                                   if self.in_transform else self.window[0] * self.window[1])
        run = Signal()

        # 1. Input transform (or the window itself) as a stream of V.
        if self.in_transform is not None:
            m.submodules.tin = tin = self.in_transform
            wiring.connect(m, wiring.flipped(self.i), tin.i)
            vin = tin.o
            v_shape = signed(tin.out_bits)
        else:
            vin = self.i
            v_shape = unsigned(self.in_bits)

        # 2. Pass scheduler: V held while every output channel's steps issue.
        v_cur = [Signal(v_shape, name=f"v{j}") for j in range(nv)]
        busy = Signal()
        step = Signal(range(self.pass_len))
        s0 = Signal(range(S))
        k0 = Signal(range(C_out))
        cin_cur = Signal(range(C_in))
        cin_next = Signal(range(C_in))
        last_issue = busy & (step == self.pass_len - 1)
        take = Signal()
        m.d.comb += [vin.ready.eq(run & (~busy | last_issue)), take.eq(vin.valid & vin.ready)]
        with m.If(run):
            with m.If(busy):
                m.d.sync += step.eq(step + 1)
                with m.If(s0 == S - 1):
                    m.d.sync += [s0.eq(0), k0.eq(k0 + 1)]
                with m.Else():
                    m.d.sync += s0.eq(s0 + 1)
            with m.If(last_issue):
                m.d.sync += busy.eq(0)
            with m.If(take):
                m.d.sync += [busy.eq(1), step.eq(0), s0.eq(0), k0.eq(0),
                             cin_cur.eq(cin_next),
                             cin_next.eq(Mux(cin_next == C_in - 1, 0, cin_next + 1))]
                m.d.sync += [v.eq(vin.payload[j]) for j, v in enumerate(v_cur)]
        valid0 = busy & (step < C_out * S)
        first0, lastc0 = cin_cur == 0, cin_cur == C_in - 1
        counts = Array([sum(v >= 0 for v in row) for row in self.lane_v])
        m.d.comb += self.active.eq(Mux(valid0 & run, counts[s0], 0))

        # Stage 0 → 1: block RAM reads, operand select.
        valid1, first1, last1 = Signal(), Signal(), Signal()
        s1, step1 = Signal.like(s0), Signal.like(step)
        vsel = [Signal(v_shape, name=f"vsel{l}") for l in range(P)]
        w_rd = []
        for l in range(P):
            mem = memory.Memory(shape=self.weight_shape, depth=C_out * C_in * S,
                                init=self.lane_weights[l])
            m.submodules[f"w{l}"] = mem
            rd = mem.read_port()
            m.d.comb += [rd.en.eq(run), rd.addr.eq((k0 * C_in + cin_cur) * S + s0)]
            w_rd.append(rd)
        acc_shape = signed(self.acc_bits)
        acc_rd, acc_wr = [], []
        for g in range(len(self.groups)):
            mem = memory.Memory(shape=acc_shape, depth=C_out * S, init=[])
            m.submodules[f"acc{g}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            m.d.comb += [rd.en.eq(run), rd.addr.eq(step)]
            acc_rd.append(rd)
            acc_wr.append(wr)
        with m.If(run):
            m.d.sync += [valid1.eq(valid0), first1.eq(first0), last1.eq(lastc0), s1.eq(s0),
                         step1.eq(step)]
            for l in range(P):
                choices = Array(v_cur[row[l]] if row[l] >= 0 else 0 for row in self.lane_v)
                m.d.sync += vsel[l].eq(choices[s0])

        # Stage 1 → 2: products (DSP), accumulator read data.
        valid2, first2, last2 = Signal(), Signal(), Signal()
        s2, step2 = Signal.like(s0), Signal.like(step)
        prod_bits = self.weight_shape.width + v_shape.width + 1
        prods = [Signal(signed(prod_bits), name=f"prod{l}") for l in range(P)]
        acc_q = [Signal(acc_shape, name=f"accq{g}") for g in range(len(self.groups))]
        with m.If(run):
            m.d.sync += [valid2.eq(valid1), first2.eq(first1), last2.eq(last1), s2.eq(s1),
                         step2.eq(step1)]
            m.d.sync += [prods[l].eq(w_rd[l].data * vsel[l]) for l in range(P)]
            m.d.sync += [acc_q[g].eq(acc_rd[g].data) for g in range(len(self.groups))]

        # Stage 2: group sums, accumulate, write back or gather.
        totals = []
        for g, lanes in enumerate(self.groups):
            t = Signal(acc_shape, name=f"total{g}")
            gsum = sum(prods[l] for l in lanes)
            m.d.comb += t.eq(Mux(first2, 0, acc_q[g]) + gsum)
            totals.append(t)
            m.d.comb += [acc_wr[g].addr.eq(step2), acc_wr[g].data.eq(t),
                         acc_wr[g].en.eq(run & valid2 & ~last2)]
        gather = [Signal(acc_shape, name=f"gather{j}") for j in range(self.n_gather)]
        full = Signal(data.ArrayLayout(acc_shape, self.n_gather))
        full_valid = Signal()
        this_step = [None] * self.n_gather     # index → (step, group)
        for s, row in enumerate(self.gather_pos):
            for g, pos in enumerate(row):
                if pos >= 0:
                    this_step[pos] = (s, g)
        with m.If(run & valid2 & last2):
            for s, row in enumerate(self.gather_pos):
                with m.If(s2 == s):
                    m.d.sync += [gather[pos].eq(totals[g]) for g, pos in enumerate(row) if pos >= 0]
            with m.If(s2 == S - 1):
                m.d.sync += full_valid.eq(1)
                for j, (s, g) in enumerate(this_step):
                    m.d.sync += full[j].eq(totals[g] if s == S - 1 else gather[j])

        # 3. Output transform and exact scale removal, then the output register.
        if self.out_transform is not None:
            m.submodules.tout = tout = self.out_transform
            m.d.comb += [tout.i.payload.eq(full), tout.i.valid.eq(full_valid)]
            m.d.comb += run.eq(~full_valid | tout.i.ready)
            with m.If(full_valid & tout.i.ready & ~(run & valid2 & last2 & (s2 == S - 1))):
                m.d.sync += full_valid.eq(0)
            p, k, q = self.scale
            ys = []
            for j in range(self.out_tile[0] * self.out_tile[1]):
                t = const_mul(m, tout.o.payload[j], p, self.acc_bits, f"pp{j}")
                tk = Signal(signed(self.acc_bits - k), name=f"tk{j}")
                m.d.comb += tk.eq(t >> k)
                ys.append(const_mul(m, tk, pow(q, -1, 1 << self.y_bits), self.y_bits, f"y{j}"))
            src_valid, src_ready = tout.o.valid, tout.o.ready
        else:
            ys = [full[j] for j in range(self.n_gather)]
            src_valid, src_ready = full_valid, Signal()
            m.d.comb += run.eq(~full_valid | src_ready)
            with m.If(full_valid & src_ready & ~(run & valid2 & last2 & (s2 == S - 1))):
                m.d.sync += full_valid.eq(0)
        m.d.comb += src_ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(src_valid & src_ready):
            m.d.sync += self.o.valid.eq(1)
            m.d.sync += [self.o.payload[j].eq(y) for j, y in enumerate(ys)]
        return m


def winograd_tile(layer: IntConv, algorithm: Winograd2D, *, lanes=None, in_stages=1,
                  out_stages=1) -> TileEngine:
    """The F(m×m, r×r) engine for ``layer`` with ``lanes`` multipliers (default α², one step).

    ``U = G g Gᵀ`` is computed here from the layer's weights and stored lane by lane.
    """
    check_conv(layer)
    if not isinstance(algorithm, Winograd2D):
        raise TypeError(f"Algorithm must be a Winograd2D, not {algorithm!r}")
    form = integer_form(algorithm)
    R, C = form.rows, form.cols
    if (R.r, C.r) != (layer.kernel, layer.kernel):
        raise ValueError(f"Algorithm {algorithm.name} is for {R.r}×{C.r} kernels, the layer has "
                         f"{layer.kernel}×{layer.kernel}")
    alpha2 = R.alpha * C.alpha
    lanes = alpha2 if lanes is None else lanes
    if not isinstance(lanes, int) or not 1 <= lanes <= alpha2:
        raise ValueError(f"Lane count must be an integer from 1 to α² = {alpha2}, not {lanes!r}")
    S = -(-alpha2 // lanes)
    U = transform_weights(layer.W, algorithm).reshape(layer.c_out, layer.c_in, alpha2)
    lane_v = [[s * lanes + l if s * lanes + l < alpha2 else -1 for l in range(lanes)]
              for s in range(S)]
    lane_weights = []
    for l in range(lanes):
        words = []
        for k in range(layer.c_out):
            for c in range(layer.c_in):
                words += [int(U[k, c, j]) if j >= 0 else 0 for j in (row[l] for row in lane_v)]
        lane_weights.append(words)
    p, k, q = scale_parts(form.scale)
    y_bits = signed_bits(*filter_range(layer.W, layer.in_bits))
    acc_bits = y_bits + k
    tin = Transform2D(R.BT.matrix, C.BT.matrix, in_shape=unsigned(layer.in_bits),
                      stages=in_stages)
    tout = Transform2D(R.AT.matrix, C.AT.matrix, in_shape=signed(acc_bits), stages=out_stages,
                       width=acc_bits)
    return TileEngine(
        window=(R.N, C.N), out_tile=(R.m, C.m), in_bits=layer.in_bits, c_in=layer.c_in,
        c_out=layer.c_out, lanes=lanes, steps=S, in_transform=tin, lane_v=lane_v,
        lane_weights=lane_weights, weight_shape=signed(signed_bits(int(U.min()), int(U.max()))),
        groups=[[l] for l in range(lanes)], gather_pos=lane_v, n_gather=alpha2,
        acc_bits=acc_bits, out_transform=tout, scale=(p, k, q), y_bits=y_bits)
