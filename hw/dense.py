"""Dense-layer engine: P multiply-accumulate lanes, weights in block RAM, stream ports.

Computes one :class:`slimgen.sw.integer_model.IntDense` on unsigned inputs exactly, as
:func:`slimgen.sw.golden.dense` does::

    acc[o] = b[o] + Σ_i x[i] · W[o, i]                 (acc_bits wide, signed)
    y[o]   = sat(relu((acc[o] · M + 2^(s−1)) >> s))     (hidden layers), or acc[o] (last layer)

Schedule. The input vector x (n_in activations) arrives on ``i`` one element per transfer and
is written to an input buffer. Outputs are computed in G = ceil(n_out / P) groups; in group g,
lane p computes output o = g·P + p, reading W[o, i] from its own memory at address g·n_in + i
while x[i] is broadcast to all lanes (one input per cycle). A finished group's accumulators move
to an output bank, which a serializer requantizes and sends on ``o`` in output order while the
lanes compute the next group. Cycles per vector ≈ n_in (load) + G · (n_in + 3).

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
    def cycles_per_vector(self):
        """Cycles from the first input to the last output with an always-ready consumer."""
        return self.layer.n_in + self.groups * (self.layer.n_in + 3) + self.lanes + 2

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

        # Input buffer: written from the input stream, read by the lanes.
        m.submodules.xbuf = xbuf = memory.Memory(shape=unsigned(L.in_bits), depth=n_in, init=[])
        x_wr = xbuf.write_port()
        x_rd = xbuf.read_port(transparent_for=())

        # Per-lane weight memories and biases.
        w_rd = []
        for p in range(P):
            mem = memory.Memory(shape=signed(L.weight_bits), depth=G * n_in,
                                init=self.lane_weights(p))
            m.submodules[f"w{p}"] = mem
            w_rd.append(mem.read_port())
        acc = signed(self.acc_bits)
        biases = [Array(Const(int(L.b[g * P + p]) if g * P + p < n_out else 0, acc)
                        for g in range(G)) for p in range(P)]

        load_idx = Signal(range(n_in + 1))
        w_base = Signal(range(G * n_in + 1))  # group · n_in, kept as a sum (no multiplier)
        group = Signal(range(G + 1))
        issue_idx = Signal(range(n_in + 1))
        issue_valid = Signal()   # stage 0: reads issued this cycle
        prod_valid = Signal()    # stage 1: memory data valid, product being registered
        acc_valid = Signal()     # stage 2: product valid, accumulate
        first = Signal()         # the next accumulation is the group's first: start from bias

        # Output bank and serializer.
        bank = Array(Signal(signed(self.acc_bits), name=f"bank{p}") for p in range(P))
        bank_group = Signal(range(G))
        out_busy = Signal()
        out_idx = Signal(range(P + 1))

        m.d.comb += x_rd.addr.eq(issue_idx)
        for p in range(P):
            m.d.comb += w_rd[p].addr.eq(w_base + issue_idx)
        m.d.sync += [prod_valid.eq(issue_valid), acc_valid.eq(prod_valid)]
        # x (unsigned) · W (signed) → signed; a group's sums start from the bias.
        accs = [mac_lane(m, x_rd.data, w_rd[p].data, first=first, en=acc_valid,
                         shape=signed(self.acc_bits), init=biases[p][group], name=f"lane{p}")[1]
                for p in range(P)]
        with m.If(acc_valid):
            m.d.sync += first.eq(0)

        drained = ~issue_valid & ~prod_valid & ~acc_valid
        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += [
                    self.i.ready.eq(1),
                    x_wr.addr.eq(load_idx),
                    x_wr.data.eq(self.i.payload),
                    x_wr.en.eq(self.i.valid),
                ]
                with m.If(self.i.valid):
                    m.d.sync += load_idx.eq(load_idx + 1)
                    with m.If(load_idx == n_in - 1):
                        m.d.sync += [load_idx.eq(0), group.eq(0), w_base.eq(0), issue_idx.eq(0),
                                     first.eq(1)]
                        m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += issue_valid.eq(1)
                m.d.sync += issue_idx.eq(issue_idx + 1)
                with m.If(issue_idx == n_in - 1):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(drained & ~out_busy):
                    m.d.sync += [bank[p].eq(accs[p]) for p in range(P)]
                    m.d.sync += [bank_group.eq(group), out_busy.eq(1), out_idx.eq(0)]
                    m.d.sync += [issue_idx.eq(0), first.eq(1), group.eq(group + 1),
                                 w_base.eq(w_base + n_in)]
                    with m.If(group == G - 1):
                        m.next = "LOAD"
                    with m.Else():
                        m.next = "ISSUE"

        # Serializer: bank[out_idx] → requantize → o, skipping lanes past n_out in the last group.
        acc_sel = bank[out_idx]
        if L.requant:
            # M is a constant: shift-adds, every DSP block left to the MAC lanes.
            m.d.comb += self.o.payload.eq(requantize(m, acc_sel, L.multiplier, L.shift,
                                                     out_bits=L.out_bits, relu=True, name="rq"))
        else:
            m.d.comb += self.o.payload.eq(acc_sel)
        last_out = Mux(bank_group == G - 1, (n_out - 1) - (G - 1) * P, P - 1)
        m.d.comb += self.o.valid.eq(out_busy)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_idx.eq(out_idx + 1)
            with m.If(out_idx == last_out):
                m.d.sync += out_busy.eq(0)
        return m
