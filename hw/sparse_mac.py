"""Balanced-sparse MAC array: P lanes, each streaming (index, value) pairs from its own block RAM.

Computes one :class:`slimgen.sw.integer_model.IntDense` exactly (inputs signed or not), with the weights in the
compressed layout of :mod:`slimgen.sw.sparse_layout` (read that module for the word format,
the two layouts, ``"rows"`` and ``"banks"``, and the banks' input order).

:class:`SparseMacCore` is the array itself, with plain control ports (another unit can drive
it); :class:`SparseMacArray` wraps it as a network layer with the stream ports of
:class:`slimgen.hw.dense.DenseEngine` (``i`` activations in, ``o`` outputs out).

Lane pipeline (every lane, in lockstep; lane p is active while ``t < len_p``)::

    A  word memory read at address t (all lanes share the counter t)
    B  decode value, run, last; column = pos + run; activation read at column;
       pos ← last ? 0 : column + 1
    C  product ← activation · value (registered: a DSP block's register)
    D  sum ← (first ? 0 : sum) + product; on ``last`` the sum goes to the lane's result memory

The lanes never wait for each other: a run takes ``max_p len_p + 4`` cycles
(:attr:`SparseMacCore.run_cycles`), where ``len_p`` is lane p's entry count. Results are read
back by row (``rd_row``, two cycles of latency, a stall-all pipeline advanced by ``rd_en``): the
owning lane's sum (rows) or the adder tree over all lanes (banks), plus the bias.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.fixed import signed_bits
from slimgen.sw.integer_model import act_range
from slimgen.sw.sparse_layout import SparseLayout, build_layout

from .dense import check_dense
from .lib.mac_lane import mac_lane
from .lib.requantizer import requantize

__all__ = ["SparseMacCore", "SparseMacArray", "part_bits"]


def part_bits(layout, in_bits, in_signed):
    """Exact width of every lane's partial sum (no bias), from the weights the layout stores."""
    import numpy as np
    W = layout.decode()
    lo, hi = act_range(in_bits, in_signed)
    p_lo = np.minimum(W * lo, W * hi).sum(axis=1)
    p_hi = np.maximum(W * lo, W * hi).sum(axis=1)
    return signed_bits(min(p_lo.min(), 0), max(p_hi.max(), 0))


def _divmod_const(m, value, divisor, limit, name):
    """``(value // divisor, value % divisor)`` for 0 ≤ value < limit, without a divider."""
    q = Signal(range(max(2, -(-limit // divisor))), name=f"{name}_q")
    r = Signal(range(max(2, divisor)), name=f"{name}_r")
    if divisor & (divisor - 1) == 0:
        k = divisor.bit_length() - 1
        m.d.comb += [q.eq(value >> k), r.eq(value & (divisor - 1))]
    else:
        m.d.comb += [q.eq(Array(Const(v // divisor, q.shape()) for v in range(limit))[value]),
                     r.eq(Array(Const(v % divisor, r.shape()) for v in range(limit))[value])]
    return q, r


class SparseMacCore(wiring.Component):
    """The lanes, their memories and the result read-back.

    Parameters
    ----------
    layout : SparseLayout
    bias : sequence of int
        One per row, added at read-back.
    in_bits, in_signed : int, bool
        Activation format.
    acc_bits : int
        Width of ``rd_data``; the final sums must fit (they are taken modulo 2^acc_bits).

    Attributes
    ----------
    wr_addr, wr_data, wr_en : In
        Write one activation (input ``wr_addr``, in the natural order) into every lane that
        holds it (banks with an input order: lane ``pos[i] mod P`` at ``pos[i] div P``, through
        a constant ROM). Only while not ``busy``.
    start : In(1)
        Start a run over the activations written so far.
    busy : Out(1)
        From the cycle after ``start`` until every result is written.
    rd_row, rd_en, rd_data : In, In(1), Out(signed(acc_bits))
        ``rd_data`` is row ``rd_row``'s accumulator (bias included) two advancing cycles after
        ``rd_row`` was presented; the read pipeline moves only on cycles with ``rd_en``.
    """

    def __init__(self, layout, bias, *, in_bits, in_signed=False, acc_bits):
        if not isinstance(layout, SparseLayout):
            raise TypeError(f"Layout must be a SparseLayout, not {layout!r}")
        bias = [int(b) for b in bias]
        if len(bias) != layout.n_out:
            raise ValueError(f"Bias must have {layout.n_out} entries, not {len(bias)}")
        self.layout, self.bias = layout, bias
        self.in_bits, self.in_signed, self.acc_bits = in_bits, bool(in_signed), acc_bits
        self.part_bits = part_bits(layout, in_bits, in_signed)
        act = signed(in_bits) if in_signed else unsigned(in_bits)
        super().__init__({
            "wr_addr": In(range(layout.n_in)),
            "wr_data": In(act),
            "wr_en": In(1),
            "start": In(1),
            "busy": Out(1),
            "rd_row": In(range(layout.n_out)),
            "rd_en": In(1),
            "rd_data": Out(signed(acc_bits)),
        })

    LATENCY = 4  # start, then stages B, C, D after the last issue

    @property
    def run_cycles(self):
        """Cycles from ``start`` (inclusive) to the first cycle with ``busy`` low."""
        return self.layout.stream_cycles + self.LATENCY

    def elaborate(self, platform):
        m = Module()
        L = self.layout
        P, vb, ib = L.lanes, L.value_bits, L.index_bits
        act = signed(self.in_bits) if self.in_signed else unsigned(self.in_bits)
        T = L.stream_cycles

        t = Signal(range(T + 1))
        running = Signal()
        d1, d2, d3 = Signal(), Signal(), Signal()   # `running` delayed to stages B, C, D
        m.d.sync += [d1.eq(running), d2.eq(d1), d3.eq(d2)]
        m.d.comb += self.busy.eq(running | d1 | d2 | d3)
        with m.If(self.start):
            m.d.sync += [t.eq(0), running.eq(1)]
        with m.Elif(running):
            m.d.sync += t.eq(t + 1)
            with m.If(t == T - 1):
                m.d.sync += running.eq(0)

        # Broadcast write of activations: rows → every lane at the column; banks → lane i mod P
        # at i div P, or with an input order lane pos[i] mod P at pos[i] div P (a constant ROM).
        if L.layout == "banks" and L.order is None:
            wq, wr = _divmod_const(m, self.wr_addr, P, L.n_in, "wr")
        elif L.layout == "banks":
            pos = L.positions
            wq = Signal(range(max(2, L.cols_per_lane)), name="wr_q")
            wr = Signal(range(max(2, P)), name="wr_r")
            m.d.comb += [
                wq.eq(Array(Const(int(q) // P, wq.shape()) for q in pos)[self.wr_addr]),
                wr.eq(Array(Const(int(q) % P, wr.shape()) for q in pos)[self.wr_addr]),
            ]

        # Read-back address: rows → lane o mod P at o div P; banks → every lane at o.
        if L.layout == "rows":
            rq, rr = _divmod_const(m, self.rd_row, P, L.n_out, "rd")
            rd_lane = Signal.like(rr)
            with m.If(self.rd_en):
                m.d.sync += rd_lane.eq(rr)
        m.submodules.bias = bias_mem = memory.Memory(shape=signed(self.acc_bits), depth=L.n_out,
                                                     init=self.bias)
        bias_rd = bias_mem.read_port()
        m.d.comb += [bias_rd.addr.eq(self.rd_row), bias_rd.en.eq(self.rd_en)]

        lane_out = []
        for p in range(P):
            n_words = len(L.words[p])
            wmem = memory.Memory(shape=unsigned(L.word_bits), depth=n_words, init=L.words[p])
            xmem = memory.Memory(shape=act, depth=L.cols_per_lane, init=[])
            rmem = memory.Memory(shape=signed(self.part_bits), depth=L.rows_per_lane, init=[])
            m.submodules[f"w{p}"], m.submodules[f"x{p}"], m.submodules[f"r{p}"] = wmem, xmem, rmem
            w_rd = wmem.read_port()
            x_wr, x_rd = xmem.write_port(), xmem.read_port(transparent_for=())
            r_wr, r_rd = rmem.write_port(), rmem.read_port(transparent_for=())

            if L.layout == "rows":
                m.d.comb += [x_wr.addr.eq(self.wr_addr), x_wr.en.eq(self.wr_en)]
            else:
                m.d.comb += [x_wr.addr.eq(wq), x_wr.en.eq(self.wr_en & (wr == p))]
            m.d.comb += x_wr.data.eq(self.wr_data)

            # A: issue.
            m.d.comb += w_rd.addr.eq(t)
            issue = Signal(name=f"issue{p}")
            m.d.comb += issue.eq(running & (t < n_words))
            v1, v2, v3 = (Signal(name=f"v{k}_{p}") for k in (1, 2, 3))
            m.d.sync += [v1.eq(issue), v2.eq(v1), v3.eq(v2)]

            # B: decode and read the activation.
            word = w_rd.data
            value = word[:vb].as_signed()
            last = word[vb + ib]
            pos = Signal(range(L.cols_per_lane + 1), name=f"pos{p}")
            col = Signal(range(L.cols_per_lane + (1 << ib)), name=f"col{p}")
            m.d.comb += col.eq(pos + word[vb:vb + ib] if ib else pos)
            m.d.comb += x_rd.addr.eq(col)
            w2, last2 = Signal(signed(vb), name=f"w2_{p}"), Signal(name=f"last2_{p}")
            m.d.sync += [w2.eq(value), last2.eq(last)]
            with m.If(v1):
                m.d.sync += pos.eq(Mux(last, 0, col + 1))

            # C: product; D: accumulate, a row's last entry writes its sum.
            last3 = Signal(name=f"last3_{p}")
            first = Signal(init=1, name=f"first{p}")
            m.d.sync += last3.eq(last2)
            acc_new, _ = mac_lane(m, x_rd.data, w2, first=first, en=v3,
                                  shape=signed(self.part_bits),
                                  prod_shape=signed(self.in_bits + vb + 1), name=f"lane{p}")
            row = Signal(range(L.rows_per_lane + 1), name=f"row{p}")
            m.d.comb += [r_wr.addr.eq(row), r_wr.data.eq(acc_new), r_wr.en.eq(v3 & last3)]
            with m.If(v3):
                m.d.sync += first.eq(last3)
                with m.If(last3):
                    m.d.sync += row.eq(row + 1)
            with m.If(self.start):
                m.d.sync += [pos.eq(0), first.eq(1), row.eq(0)]

            # Read-back.
            m.d.comb += [r_rd.addr.eq(rq if L.layout == "rows" else self.rd_row),
                         r_rd.en.eq(self.rd_en)]
            lane_out.append(r_rd.data)

        if L.layout == "rows":
            part = Array(lane_out)[rd_lane]
        else:
            part = lane_out[0]
            for x in lane_out[1:]:
                part = part + x
        with m.If(self.rd_en):
            m.d.sync += self.rd_data.eq(bias_rd.data + part)
        return m


class SparseMacArray(wiring.Component):
    """One sparse (or dense) integer layer in hardware, with stream ports.

    Parameters
    ----------
    layer : IntDense
    lanes : int
        Lane count P (at most the layer's outputs, rows layout, or inputs, banks layout).
    layout : str
        ``"rows"`` or ``"banks"``.
    index_bits : int or None
        Width of the relative index (None: no filler entries).
    dense : bool
        Store every weight with implicit indices (the dense engine built from the same lanes).
    order : sequence of int or None
        Input order of the banks layout (:mod:`slimgen.sw.sparse_layout`); the inputs still
        arrive on ``i`` in their natural order.

    Attributes
    ----------
    i : In(stream.Signature(activation))
        n_in transfers per vector: ``unsigned(in_bits)``, or ``signed(in_bits)`` when the layer's
        inputs are signed.
    o : Out(stream.Signature(...))
        n_out transfers per vector: ``unsigned(out_bits)`` (requantized with ReLU),
        ``signed(out_bits)`` (requantized without ReLU) or ``signed(acc_bits)`` (no requant).

    Schedule: load n_in activations, run (:attr:`run_cycles`), then send the outputs while the
    next vector loads.
    """

    def __init__(self, layer, *, lanes=4, layout="rows", index_bits=None, dense=False,
                 order=None):
        check_dense(layer)
        self.layer = layer
        self.sparse_layout = build_layout(layer.W, lanes=lanes, layout=layout,
                                          weight_bits=layer.weight_bits, index_bits=index_bits,
                                          dense=dense, order=order)
        self.lanes = lanes
        self.acc_bits = layer.acc_bits
        act = signed(layer.in_bits) if layer.in_signed else unsigned(layer.in_bits)
        if not layer.requant:
            out = signed(self.acc_bits)
        else:
            out = unsigned(layer.out_bits) if layer.relu else signed(layer.out_bits)
        super().__init__({"i": In(stream.Signature(act)), "o": Out(stream.Signature(out))})

    @property
    def run_cycles(self):
        """Cycles of the compute phase of one vector (the lanes' work plus the pipeline)."""
        return self.sparse_layout.stream_cycles + SparseMacCore.LATENCY

    @property
    def cycles_per_vector(self):
        """Cycles per vector with vectors streamed back to back and an always-ready consumer:
        load and send overlap; the compute phase does not."""
        L = self.layer
        return max(L.n_in, L.n_out) + self.run_cycles + 1

    def elaborate(self, platform):
        m = Module()
        L = self.layer
        m.submodules.core = core = SparseMacCore(self.sparse_layout, L.b, in_bits=L.in_bits,
                                                 in_signed=L.in_signed, acc_bits=self.acc_bits)
        load_idx = Signal(range(L.n_in))
        loaded = Signal()      # a whole vector is in the lanes' buffers
        computing = Signal()
        emitting = Signal()    # rows still to be issued to the read-back
        e_row = Signal(range(L.n_out))
        s1 = Signal()          # read-back stage 1 holds a row

        # Load.
        m.d.comb += [self.i.ready.eq(~loaded & ~computing),
                     core.wr_addr.eq(load_idx), core.wr_data.eq(self.i.payload),
                     core.wr_en.eq(self.i.valid & self.i.ready)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += load_idx.eq(load_idx + 1)
            with m.If(load_idx == L.n_in - 1):
                m.d.sync += [load_idx.eq(0), loaded.eq(1)]

        # Compute, once the previous vector's rows have all been issued to the read-back.
        with m.If(loaded & ~computing & ~emitting):
            m.d.comb += core.start.eq(1)
            m.d.sync += [loaded.eq(0), computing.eq(1)]
        with m.If(computing & ~core.start & ~core.busy):
            m.d.sync += [computing.eq(0), emitting.eq(1), e_row.eq(0)]

        # Send: a stall-all read-back pipeline, advanced whenever the output register is free.
        adv = ~self.o.valid | self.o.ready
        m.d.comb += [core.rd_en.eq(adv), core.rd_row.eq(e_row)]
        with m.If(adv):
            m.d.sync += [s1.eq(emitting), self.o.valid.eq(s1)]
            with m.If(emitting):
                m.d.sync += e_row.eq(e_row + 1)
                with m.If(e_row == L.n_out - 1):
                    m.d.sync += emitting.eq(0)
        acc = core.rd_data
        if L.requant:
            m.d.comb += self.o.payload.eq(requantize(m, acc, L.multiplier, L.shift,
                                                     out_bits=L.out_bits, relu=L.relu, name="rq"))
        else:
            m.d.comb += self.o.payload.eq(acc)
        return m
