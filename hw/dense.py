"""Dense-layer engine: P multiply-accumulate lanes, weights in block RAM, stream ports.

Computes one :class:`slimgen.sw.integer_model.IntDense` on unsigned inputs exactly, as
:func:`slimgen.sw.golden.dense` does::

    acc[o] = b[o] + Σ_i x[i] · W[o, i]                 (acc_bits wide, signed)
    y[o]   = sat(relu((acc[o] · M + 2^(s−1)) >> s))     (hidden layers), or acc[o] (last layer)

Schedule (a dataflow stage: several vectors in flight)::

    i ─> input bank 0 ─┐             ┌─> output bank 0 ─┐
         input bank 1 ─┴─> P lanes ──┴─> output bank 1 ─┴─> requantize ─> o

The input vector x (n_in activations) arrives on ``i`` one element per transfer and is written
to one of two input banks while the lanes read the other (ping-pong), so vector k + 1 loads
while vector k is computed. Outputs are computed in G = ceil(n_out / P) groups; in group g,
lane p computes output o = g·P + p, reading W[o, i] from its own memory at address g·n_in + i
while x[i] is broadcast to all lanes (one input per cycle). Groups follow each other with no
gap, across vectors too (n_in ≥ 3). A finished group's sums move from the accumulators to a
free output bank a cycle after the group's last input (later if both banks are busy, which
holds back the next group); the bank shifts them out in output order to a serializer that
requantizes them and sends them on ``o``. Latency :attr:`DenseEngine.cycles_per_vector`,
≈ (G + 1)·n_in + P; interval between results :attr:`DenseEngine.interval` = max(G·n_in, n_out)
for n_in ≥ 3 (the load, n_in cycles, hides behind the lanes' G·n_in). Back-pressure on ``o``
stalls the serializer, then the lanes (at a group's start), then ``i``; nothing is lost or
sent twice.

The requantizer multiplies by the constant M with shift-adds (canonical signed digits), so
block multipliers (DSPs) serve only the lanes.

Pipeline of one lane: cycle t issues the read of x[i] and W[o, i]; t+1 registers the product
(so that it maps onto a DSP block's registers); t+2 adds it to the accumulator, which starts
from the bias.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.integer_model import IntDense

from .lib.mac_lane import mac_lane
from .lib.requantizer import requantize

__all__ = ["DenseEngine", "check_dense"]


def _check_positive(name, value):
    if not isinstance(value, int) or value <= 0:
        raise TypeError(f"{name} must be a positive integer, not {value!r}")


def check_dense(layer, what="Layer"):
    """Refuse what the MAC engines cannot compute: a layer that is not an :class:`IntDense`,
    or that has per-channel multipliers (they take one M and one shift per layer)."""
    if not isinstance(layer, IntDense):
        raise TypeError(f"{what} must be an IntDense, not {layer!r}")
    if layer.requant and not isinstance(layer.multiplier, int):
        raise ValueError(f"{what} has one multiplier per output channel; the engines take one "
                         f"per layer (quantize without per_channel)")
    return layer


class DenseEngine(wiring.Component):
    """One integer dense layer in hardware.

    Parameters
    ----------
    layer : IntDense
        The layer's integer weights (n_out, n_in), bias, requantization and bit widths;
        unsigned inputs.
    lanes : int
        Number of MAC lanes P (1 ≤ P ≤ n_out).

    Attributes
    ----------
    i : In(stream.Signature(unsigned(layer.in_bits)))
        Input activations, n_in transfers per vector.
    o : Out(stream.Signature(...))
        Outputs, n_out transfers per vector: ``unsigned(out_bits)`` activations when the layer
        requantizes, else ``signed(acc_bits)`` accumulators.
    """

    def __init__(self, layer, *, lanes=1):
        check_dense(layer)
        if layer.in_signed:
            raise ValueError("The dense engine takes unsigned inputs; use the sparse MAC array "
                             "for signed ones")
        _check_positive("Lane count", lanes)
        if lanes > layer.n_out:
            raise ValueError(f"Lane count must be at most the layer's {layer.n_out} outputs, "
                             f"not {lanes}")
        if layer.requant and not layer.relu:
            raise ValueError("Requantizing layers must use ReLU in hardware (unsigned outputs)")
        self.layer = layer
        self.lanes = lanes
        self.groups = -(-layer.n_out // lanes)
        self.acc_bits = layer.acc_bits
        out_shape = unsigned(layer.out_bits) if layer.requant else signed(self.acc_bits)
        super().__init__({
            "i": In(stream.Signature(unsigned(layer.in_bits))),
            "o": Out(stream.Signature(out_shape)),
        })

    @property
    def group_sizes(self):
        """Outputs of each group: P, …, P, then n_out − (G − 1)·P."""
        P, G = self.lanes, self.groups
        return [P] * (G - 1) + [self.layer.n_out - (G - 1) * P]

    @property
    def group_cycles(self):
        """Cycles between the starts of consecutive groups when nothing waits: n_in, or
        n_in + 3 when n_in ≤ 2 (a group then waits for the previous one's sums to leave the
        accumulators, three cycles after its last input)."""
        n_in = self.layer.n_in
        return n_in if n_in > 2 else n_in + 3

    @property
    def cycles_per_vector(self):
        """Latency: cycles from a vector's first input transfer to its last output transfer,
        both counted, with the engine idle before, the inputs back to back and the consumer
        always ready::

            cycles_per_vector = 3 + max_g [ 2·n_in + g·T_g + Σ_{h ≥ g} P_h ]

        with T_g = :attr:`group_cycles` and P_h the outputs of group h (:attr:`group_sizes`):
        group g's sums are ready 2·n_in + g·T_g + 2 cycles after the first input, and from
        then on the serializer sends one output a cycle (a group's outputs wait for the
        earlier groups' to be sent).
        """
        n_in, T_g, sizes = self.layer.n_in, self.group_cycles, self.group_sizes
        return 3 + max(2 * n_in + g * T_g + sum(sizes[g:]) for g in range(self.groups))

    @property
    def interval(self):
        """Cycles between the results of consecutive vectors streamed back to back (inputs
        always valid, the consumer always ready)::

            interval = max(G·T_g, n_out)

        The lanes start a group every T_g = :attr:`group_cycles` cycles (n_in, one input a
        cycle) with no gap between groups or vectors, as the next vector is loaded into the
        other input bank meanwhile (n_in ≤ G·T_g cycles); the serializer sends one output a
        cycle, n_out a vector. Whichever is busier sets the pace; two output banks keep the
        other from waiting on it.
        """
        return max(self.groups * self.group_cycles, self.layer.n_out)

    def lane_weights(self, p):
        """Initial contents of lane p's weight memory: W[g·P + p, i] at g·n_in + i (0 past n_out)."""
        L = self.layer
        words = []
        for g in range(self.groups):
            o = g * self.lanes + p
            words.extend(int(w) for w in L.W[o]) if o < L.n_out else words.extend([0] * L.n_in)
        return words

    def elaborate(self, platform):
        m = Module()
        L, P, G = self.layer, self.lanes, self.groups
        n_in, n_out = L.n_in, L.n_out
        acc = signed(self.acc_bits)

        # Input banks (one memory, bank b at b·n_in): the loader fills one while the lanes
        # read the other. full[b]: bank b holds a whole vector not yet read to its end.
        m.submodules.xbuf = xbuf = memory.Memory(shape=unsigned(L.in_bits), depth=2 * n_in,
                                                 init=[])
        x_wr = xbuf.write_port()
        x_rd = xbuf.read_port(transparent_for=())
        full = Array(Signal(name=f"x_full{b}") for b in range(2))
        wr_bank, rd_bank = Signal(), Signal()
        load_idx = Signal(range(n_in))
        m.d.comb += [
            self.i.ready.eq(~full[wr_bank]),
            x_wr.addr.eq(Mux(wr_bank, n_in, 0) + load_idx),
            x_wr.data.eq(self.i.payload),
            x_wr.en.eq(self.i.valid & self.i.ready),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += load_idx.eq(load_idx + 1)
            with m.If(load_idx == n_in - 1):
                m.d.sync += [load_idx.eq(0), full[wr_bank].eq(1), wr_bank.eq(~wr_bank)]

        # Per-lane weight memories and biases.
        w_rd = []
        for p in range(P):
            mem = memory.Memory(shape=signed(L.weight_bits), depth=G * n_in,
                                init=self.lane_weights(p))
            m.submodules[f"w{p}"] = mem
            w_rd.append(mem.read_port())
        biases = [Array(Const(int(L.b[g * P + p]) if g * P + p < n_out else 0, acc)
                        for g in range(G)) for p in range(P)]

        # Issue: one input a cycle, group after group, vector after vector. A group starts
        # only if the groups before it will have left the accumulators before its first sum,
        # two cycles later: none is pending (started, its sums not yet in an output bank), or
        # one is and an output bank is free for it now, so it leaves them by then (with
        # n_in ≤ 2 two groups could be pending; there a group waits for the one before it).
        issue_idx = Signal(range(n_in))
        group = Signal(range(G))
        w_base = Signal(range(G * n_in))    # group · n_in, kept as a sum (no multiplier)
        pending = Signal(range(3))
        bank_free = Signal()                # an output bank can take a group this cycle
        go = Signal()
        may_start = (pending == 0) | ((pending == 1) & bank_free) if n_in > 2 else pending == 0
        m.d.comb += [
            go.eq(full[rd_bank] & ((issue_idx != 0) | may_start)),
            x_rd.addr.eq(Mux(rd_bank, n_in, 0) + issue_idx),
        ]
        for p in range(P):
            m.d.comb += w_rd[p].addr.eq(w_base + issue_idx)
        with m.If(go):
            m.d.sync += issue_idx.eq(issue_idx + 1)
            with m.If(issue_idx == n_in - 1):
                m.d.sync += [issue_idx.eq(0), group.eq(group + 1), w_base.eq(w_base + n_in)]
                with m.If(group == G - 1):
                    m.d.sync += [group.eq(0), w_base.eq(0), full[rd_bank].eq(0),
                                 rd_bank.eq(~rd_bank)]

        # Lanes: the memories' data a cycle after the issue, the product a cycle later, then
        # the sum. Tags (first, last input of a group; the group) travel with the data.
        p_valid, p_first, p_last = Signal(), Signal(), Signal()
        a_valid, a_first, a_last = Signal(), Signal(), Signal()
        p_group, a_group = Signal(range(G)), Signal(range(G))
        m.d.sync += [p_valid.eq(go), a_valid.eq(p_valid)]
        with m.If(go):
            m.d.sync += [p_first.eq(issue_idx == 0), p_last.eq(issue_idx == n_in - 1),
                         p_group.eq(group)]
        with m.If(p_valid):
            m.d.sync += [a_first.eq(p_first), a_last.eq(p_last), a_group.eq(p_group)]
        # x (unsigned) · W (signed) → signed; a group's sums start from the bias.
        lanes = [mac_lane(m, x_rd.data, w_rd[p].data, first=a_first, en=a_valid, shape=acc,
                          init=biases[p][a_group], name=f"lane{p}") for p in range(P)]

        self._output(m, lanes, a_valid & a_last, a_group, go & (issue_idx == 0), pending,
                     bank_free)
        return m

    def _output(self, m, lanes, final, final_group, start, pending, bank_free):
        """Two output banks of P sums that shift them out in order, and the serializer.

        A group's sums go to a free bank from the lanes' accumulators, a cycle after its last
        input (``final``) or later (``holding``) if no bank was free then: one source per bank
        entry, so each entry's next value is the accumulator or the entry after it (a LUT3
        with the flip-flop's enable). The serializer sends entry 0 of its bank and shifts the
        bank down by one, so no multiplexer reads the banks by index.
        """
        L, P, G = self.layer, self.lanes, self.groups
        acc = signed(self.acc_bits)
        banks = [[Signal(acc, name=f"bank{b}_{p}") for p in range(P)] for b in range(2)]
        b_full = Array(Signal(name=f"bank_full{b}") for b in range(2))
        b_last = Array(Signal(name=f"bank_last{b}") for b in range(2))  # a vector's last group
        w_sel, r_sel = Signal(), Signal()
        out_idx = Signal(range(P))
        holding = Signal()

        last_out = Mux(b_last[r_sel], self.group_sizes[-1] - 1, P - 1)
        sent = Signal()   # the serializer sends the last sum of its bank this cycle
        shift = Signal()
        m.d.comb += [
            self.o.valid.eq(b_full[r_sel]),
            shift.eq(self.o.valid & self.o.ready),
            sent.eq(shift & (out_idx == last_out)),
            bank_free.eq(~b_full[w_sel] | sent),
        ]
        with m.If(shift):
            m.d.sync += out_idx.eq(out_idx + 1)
        with m.If(sent):
            m.d.sync += [out_idx.eq(0), b_full[r_sel].eq(0), r_sel.eq(~r_sel)]

        # the group's last sums are in the accumulators a cycle after its last input's total
        final_d, final_group_d = Signal(), Signal(range(G))
        m.d.sync += final_d.eq(final)
        with m.If(final):
            m.d.sync += final_group_d.eq(final_group)
        capture = Signal()
        m.d.comb += capture.eq((final_d | holding) & bank_free)
        with m.If(final_d & ~bank_free):
            m.d.sync += holding.eq(1)
        for b, bank in enumerate(banks):
            # a capture after the shift: it takes a bank whose last sum leaves this cycle
            with m.If(shift & (r_sel == b)):
                m.d.sync += [bank[p].eq(bank[p + 1]) for p in range(P - 1)]
            with m.If(capture & (w_sel == b)):
                m.d.sync += [bank[p].eq(acc_p) for p, (_, acc_p) in enumerate(lanes)]
        with m.If(capture):
            m.d.sync += [b_full[w_sel].eq(1), b_last[w_sel].eq(final_group_d == G - 1),
                         w_sel.eq(~w_sel), holding.eq(0)]
        m.d.sync += pending.eq(pending + start - capture)

        # Serializer: requantize the sum on its way out.
        acc_sel = Mux(r_sel, banks[1][0], banks[0][0])
        if L.requant:
            # M is a constant: shift-adds, every DSP block left to the MAC lanes.
            m.d.comb += self.o.payload.eq(requantize(m, acc_sel, L.multiplier, L.shift,
                                                     out_bits=L.out_bits, relu=True, name="rq"))
        else:
            m.d.comb += self.o.payload.eq(acc_sel)
