"""Pruned-gate LSTM cell and the LSTM classifier top, bit-exact with the golden model
(:func:`slimgen.sw.golden.lstm_step`).

:class:`LstmCell` takes the input codes of a sequence on ``i`` (``steps × n_in`` transfers, a
step's features one after the other) and gives the last hidden state h_T on ``o`` (H signed
transfers). Inside, per step::

    LOAD   x_t into the lanes' activation buffers (columns 0 .. n_in−1 of v = [x_t; h_{t−1}])
    RUN    the gate products, both at once:
             W_i, W_f, W_o (pruned; rows k·H + j)  on a SparseMacCore with `gate_lanes` lanes
             W_c (dense)                           on a SparseMacCore in its dense layout
    EW     per hidden unit j, one every 3 cycles, a 7-stage pipeline:
             0-2  read z_i, z_f, z_o (sparse core) and z_c (dense core)
             2-4  table index u = sat(round(z·M >> s)); sigmoid ROM (tanh ROM for z_c)
             5    c_t = sat(round((f·c + i·g) >> F)); c memory write; tanh ROM index of c_t
             6    h_t = sat(round((o·tanh(c_t)) >> (2F − h_frac))); h_t written into the
                  lanes' buffers (column n_in + j)

The state stays in the buffers and the c memory across the steps. At the last step the cell
writes h = c = 0 back instead (and h_T to the output buffer), so the next sequence starts from
zero state with no extra cycles; memories start at zero after configuration. (A reset in the
middle of a sequence does not clear them.)

:class:`LstmCell` is the cell alone on two :class:`SparseMacCore` (gates after gates, then the
element-wise step): simple, and slow. The classifier, :class:`LstmClassifier`, runs on
:class:`slimgen.hw.lstm_engine.LstmEngine` instead, whose lanes compute the gates neuron by
neuron with the element-wise step overlapped, and the head too.
"""

import numpy as np
from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.golden import sigmoid_table, tanh_table
from slimgen.sw.integer_model import IntDense, IntRecurrent
from slimgen.sw.sparse_layout import build_layout

from .lib.argmax import Argmax, result_layout
from .lib.requantizer import round_half_up, saturate
from .lstm_engine import LstmEngine
from .sparse_mac import SparseMacCore

__all__ = ["LstmCell", "LstmClassifier", "gate_layer"]

EW_II = 3       # cycles between hidden units in the element-wise pipeline
EW_DEPTH = 7    # its stages


def gate_layer(lstm, gates):
    """The products of ``gates`` of an LSTM :class:`IntRecurrent` as one :class:`IntDense` over
    v = [x; h] (rows gate-major: ``k·H + j`` is unit j of ``gates[k]``), on signed
    ``act_bits`` inputs, giving its accumulators."""
    return IntDense(np.concatenate([lstm.W[g] for g in gates]),
                    np.concatenate([lstm.b[g] for g in gates]), requant=False, relu=False,
                    in_bits=lstm.act_bits, in_signed=True,
                    weight_bits=max(lstm.gate_bits(g) for g in gates))



class LstmCell(wiring.Component):
    """An LSTM :class:`IntRecurrent` over sequences of ``steps`` steps.

    Parameters
    ----------
    lstm : IntRecurrent
        An LSTM cell on unsigned inputs.
    steps : int
    gate_lanes : int
        Lanes of the sparse array for the i, f, o products.
    c_lanes : int
        Lanes of the dense array for the c product.
    layout : str
        Layout of the sparse array (``"rows"`` or ``"banks"``).
    index_bits : int or None
        Relative index width of the sparse array.

    Attributes
    ----------
    i : In(stream.Signature(unsigned(in_bits)))
    o : Out(stream.Signature(signed(h_bits)))
    """

    def __init__(self, lstm, *, steps=8, gate_lanes=4, c_lanes=4, layout="rows",
                 index_bits=None):
        if not isinstance(lstm, IntRecurrent) or lstm.cell != "lstm":
            raise TypeError(f"LSTM must be an LSTM IntRecurrent, not {lstm!r}")
        if lstm.in_signed:
            raise ValueError("The LSTM cell takes unsigned inputs")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps <= 0:
            raise TypeError(f"Step count must be a positive integer, not {steps!r}")
        self.lstm, self.steps = lstm, steps
        self.fmt = fmt = lstm.fmt
        self.ifo = gate_layer(lstm, ("i", "f", "o"))
        self.cg = gate_layer(lstm, ("c",))
        self.ifo_layout = build_layout(self.ifo.W, lanes=gate_lanes, layout=layout,
                                       weight_bits=self.ifo.weight_bits, index_bits=index_bits)
        self.c_layout = build_layout(self.cg.W, lanes=c_lanes, layout="rows",
                                     weight_bits=self.cg.weight_bits, dense=True)
        super().__init__({
            "i": In(stream.Signature(unsigned(lstm.in_bits))),
            "o": Out(stream.Signature(signed(fmt.h_bits))),
        })

    @property
    def step_cycles(self):
        """Cycles of one step after its last input transfer (run and element-wise)."""
        run = max(self.ifo_layout.stream_cycles, self.c_layout.stream_cycles)
        return 1 + run + SparseMacCore.LATENCY + EW_II * (self.lstm.n_hidden - 1) + EW_DEPTH + 1

    @property
    def cycles_per_sequence(self):
        """Cycles per sequence with inputs always valid (the output overlaps the next one)."""
        return self.steps * (self.lstm.n_in + self.step_cycles)

    def elaborate(self, platform):
        m = Module()
        lstm, fmt = self.lstm, self.fmt
        H, n_in, T = lstm.n_hidden, lstm.n_in, self.steps
        A, F = fmt.table_bits, fmt.gate_frac

        m.submodules.ifo = S = SparseMacCore(self.ifo_layout, self.ifo.b, in_bits=lstm.act_bits,
                                             in_signed=True, acc_bits=self.ifo.acc_bits)
        m.submodules.cg = D = SparseMacCore(self.c_layout, self.cg.b, in_bits=lstm.act_bits,
                                            in_signed=True, acc_bits=self.cg.acc_bits)
        m.submodules.sig = sig_mem = memory.Memory(
            shape=unsigned(F + 1), depth=1 << A, init=[int(v) for v in sigmoid_table(fmt)])
        m.submodules.tanh = tanh_mem = memory.Memory(
            shape=signed(F + 2), depth=1 << A, init=[int(v) for v in tanh_table(fmt)])
        m.submodules.c = c_mem = memory.Memory(shape=signed(fmt.c_bits), depth=H, init=[])
        m.submodules.h_out = out_mem = memory.Memory(shape=signed(fmt.h_bits), depth=H, init=[])
        sig_rd, tanh_g_rd, tanh_c_rd = (sig_mem.read_port(), tanh_mem.read_port(),
                                        tanh_mem.read_port())
        c_rd, c_wr = c_mem.read_port(transparent_for=()), c_mem.write_port()
        out_rd, out_wr = out_mem.read_port(transparent_for=()), out_mem.write_port()
        m.d.comb += [S.rd_en.eq(1), D.rd_en.eq(1)]

        load_idx = Signal(range(n_in))
        step = Signal(range(T))
        last_step = step == T - 1
        emitting = Signal()     # h_T rows still to be read out

        # Element-wise pipeline: stage k of the unit issued k cycles ago.
        ew_on = Signal()
        issue_j = Signal(range(H + 1))
        phase = Signal(range(EW_II))
        v = [Signal(name=f"ew_v{k}") for k in range(EW_DEPTH)]
        j = [Signal(range(H), name=f"ew_j{k}") for k in range(EW_DEPTH)]
        m.d.comb += [v[0].eq(ew_on & (phase == 0) & (issue_j < H)), j[0].eq(issue_j)]
        for k in range(1, EW_DEPTH):
            m.d.sync += [v[k].eq(v[k - 1]), j[k].eq(j[k - 1])]
        with m.If(ew_on):
            m.d.sync += phase.eq(Mux(phase == EW_II - 1, 0, phase + 1))
            with m.If(v[0]):
                m.d.sync += issue_j.eq(issue_j + 1)
        ew_done = ew_on & (issue_j == H)
        for k in range(1, EW_DEPTH):
            ew_done = ew_done & ~v[k]

        # Stages 0-2: read the gate accumulators (i, f, o rows of the sparse core; c row).
        m.d.comb += [S.rd_row.eq(Mux(v[0], j[0], Mux(v[1], H + j[1], 2 * H + j[2]))),
                     D.rd_row.eq(j[0])]
        # Stages 2-4: table index of z_i, z_f, z_o (one multiplier, the gate's M and shift);
        # stage 2 also z_c.
        gate = Signal(range(3))
        m.d.comb += gate.eq(Mux(v[3], 1, Mux(v[4], 2, 0)))
        Ms = [lstm.multiplier[g] for g in "ifo"]
        mb = max(x.bit_length() for x in Ms)
        zM = Signal(signed(self.ifo.acc_bits + mb + 1))
        m.d.comb += zM.eq(S.rd_data * Array(Const(x, unsigned(mb)) for x in Ms)[gate])
        u_ifo = saturate(m, Array(round_half_up(zM, lstm.shift[g]) for g in "ifo")[gate], A,
                         name="u_ifo")
        Mc = lstm.multiplier["c"]
        u_c = saturate(m, round_half_up(D.rd_data * Const(Mc, unsigned(Mc.bit_length())),
                                   lstm.shift["c"]), A, name="u_c")
        flip = 1 << (A - 1)   # signed index → table address
        m.d.comb += [sig_rd.addr.eq(u_ifo ^ flip), tanh_g_rd.addr.eq(u_c ^ flip)]
        gi, gf, go = (Signal(unsigned(F + 1), name=n) for n in ("gi", "gf", "go"))
        gg = Signal(signed(F + 2))
        with m.If(v[3]):
            m.d.sync += [gi.eq(sig_rd.data), gg.eq(tanh_g_rd.data)]
        with m.If(v[4]):
            m.d.sync += gf.eq(sig_rd.data)
        with m.If(v[5]):
            m.d.sync += go.eq(sig_rd.data)
        # Stage 3: read c_{t−1} (held until stage 5). Stage 5: the cell update.
        m.d.comb += [c_rd.addr.eq(j[3]), c_rd.en.eq(v[3])]
        c_new = saturate(m, round_half_up(gf * c_rd.data + gi * gg, F), fmt.c_bits,
                         name="c_new")
        m.d.comb += [c_wr.addr.eq(j[5]), c_wr.data.eq(Mux(last_step, 0, c_new)),
                     c_wr.en.eq(v[5])]
        u_t = saturate(m, round_half_up(c_new, F - fmt.tanh_frac), A, name="u_t")
        m.d.comb += tanh_c_rd.addr.eq(u_t ^ flip)
        # Stage 6: h_t into the lanes' buffers (0 after the last step) and the output buffer.
        h_new = saturate(m, round_half_up(go * tanh_c_rd.data, 2 * F - fmt.h_frac), fmt.h_bits,
                         name="h_new")
        m.d.comb += [out_wr.addr.eq(j[6]), out_wr.data.eq(h_new), out_wr.en.eq(v[6] & last_step)]

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.i.ready.eq(1)
                for core in (S, D):
                    m.d.comb += [core.wr_addr.eq(load_idx), core.wr_data.eq(self.i.payload),
                                 core.wr_en.eq(self.i.valid)]
                with m.If(self.i.valid):
                    m.d.sync += load_idx.eq(load_idx + 1)
                    with m.If(load_idx == n_in - 1):
                        m.d.sync += load_idx.eq(0)
                        m.next = "START"
            with m.State("START"):
                m.d.comb += [S.start.eq(1), D.start.eq(1)]
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(~S.busy & ~D.busy & ~(last_step & emitting)):
                    m.d.sync += [ew_on.eq(1), issue_j.eq(0), phase.eq(0)]
                    m.next = "EW"
            with m.State("EW"):
                for core in (S, D):
                    m.d.comb += [core.wr_addr.eq(n_in + j[6]),
                                 core.wr_data.eq(Mux(last_step, 0, h_new)),
                                 core.wr_en.eq(v[6])]
                with m.If(ew_done):
                    m.d.sync += [ew_on.eq(0), step.eq(Mux(last_step, 0, step + 1))]
                    with m.If(last_step):
                        m.d.sync += emitting.eq(1)
                    m.next = "LOAD"

        # Output: h_T from the output buffer, a one-stage stall-all read pipeline.
        e_idx = Signal(range(H))
        adv = ~self.o.valid | self.o.ready
        m.d.comb += [out_rd.addr.eq(e_idx), out_rd.en.eq(adv), self.o.payload.eq(out_rd.data)]
        with m.If(adv):
            m.d.sync += self.o.valid.eq(emitting)
            with m.If(emitting):
                m.d.sync += e_idx.eq(e_idx + 1)
                with m.If(e_idx == H - 1):
                    m.d.sync += [e_idx.eq(0), emitting.eq(0)]
        return m


class LstmClassifier(wiring.Component):
    """An LSTM classifier in hardware: :class:`slimgen.hw.lstm_engine.LstmEngine`
    (gates, element-wise step and head on shared lanes), then
    :class:`slimgen.hw.network.Argmax`, with the ports of :class:`slimgen.hw.network.Network`.

    Parameters
    ----------
    model : IntNetwork
        An LSTM cell and a dense head (:func:`slimgen.hw.lstm_schedule.lstm_classifier`).
    lanes : int
        Multiply lanes of the engine (shared by the gate products and the head).

    Attributes
    ----------
    i : In(stream.Signature(unsigned(in_bits)))
        ``steps · n_in`` transfers per sample.
    o : Out(stream.Signature(result_layout(n_classes, logit_bits)))
        One transfer per sample: the class and all logits.
    """

    def __init__(self, model, *, lanes=4):
        self.engine = LstmEngine(model, lanes=lanes)
        self.model = model
        super().__init__({
            "i": In(stream.Signature(unsigned(model.input_bits))),
            "o": Out(stream.Signature(result_layout(model.n_classes, model.logit_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = self.engine
        m.submodules.argmax = argmax = Argmax(n_classes=self.model.n_classes,
                                              logit_bits=self.model.logit_bits)
        wiring.connect(m, wiring.flipped(self.i), self.engine.i)
        wiring.connect(m, self.engine.o, argmax.i)
        wiring.connect(m, argmax.o, wiring.flipped(self.o))
        return m
