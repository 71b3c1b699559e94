"""A whole integer MLP on one shared array of P multiply-accumulate lanes.

Computes an integer MLP (:class:`slimgen.sw.integer_model.IntNetwork` of dense layers) exactly,
as :func:`slimgen.sw.golden.forward` does, like :class:`slimgen.hw.network.Network`
and with the same ports, but layer after layer on the same lanes, so that every multiplier
serves every layer and the latency approaches the bound set by the multipliers::

    cycles = Σ_l n_in_l + (G_l − 1)·max(n_in_l, P + 3) + t_l + 3      bound = Σ_l n_in_l · n_out_l / P

with ``G_l = ⌈n_out_l / P⌉`` groups and ``t_l = n_out_l − (G_l − 1)·P`` outputs in the last one
(:attr:`FoldedMlp.layer_cycles`, exact from the first input's transfer to the result's).

Schedule. Layer l's outputs are computed in G_l = ⌈n_out_l / P⌉ groups; in group g lane p
computes output o = g·P + p from x[i] (broadcast, one input per cycle) and W_l[o, i] (its own
memory). The first group of layer 0 takes the inputs as they arrive on ``i``, so loading and
computing overlap; every later group reads them from an activation buffer. A group's last
product goes straight into an output bank (no drain between groups), which a serializer
requantizes, ``y = sat(relu((acc · M_l + 2^(s_l−1)) >> s_l))``, into the next layer's buffer
while the lanes compute the next group; the last layer's accumulators go to the argmax. A layer
starts when the previous one's outputs are all in its buffer.

Cycles, issue by issue (one input and one weight per lane a cycle). A group's last issue waits
until the bank is free: the group before reached it 3 cycles after its own last issue (read,
product, sum) and the serializer takes its P outputs in P cycles, so a group's last issue
comes max(n_in, P + 3) cycles after the last one's. After a layer's last issue (its last group
of t outputs), the next layer issues once the pipeline and the serializer are empty, t + 4
cycles later; after the last layer's, the result leaves t + 3 cycles later, on the cycle after
the argmax takes the last logit. With samples back to back, the next sample's first issue
follows the last layer's last one, and its first group's last issue waits for that bank.

Memories: two activation buffers (layer l reads buffer l mod 2 and writes buffer (l+1) mod 2)
of max n_in words; per lane one weight memory holding every layer's groups one after the
other, read at a running address (there is no address arithmetic at all). With
``weights="spram"`` the lanes' weight memories are one row-wide store in the UP5K's SPRAMs
(:class:`slimgen.hw.lib.weights.SpramWeights`), written at run time through ``load`` before the
first sample; the schedule is the same.

Pipeline of a lane: cycle t issues the reads of x[i] and W[o, i]; t+1 registers the product
(the DSP block's register); t+2 adds it to the accumulator, which starts from the bias.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .lib.argmax import Argmax, result_layout
from .lib.mac_lane import mac_lane
from .lib.requantizer import requantize
from .lib.weights import SpramWeights, weight_image
from .network import mlp_layers

__all__ = ["FoldedMlp"]


class FoldedMlp(wiring.Component):
    """An integer MLP with all its layers on one array of ``lanes`` MAC lanes.

    Parameters
    ----------
    qmodel : IntNetwork
        Dense layers only (:func:`slimgen.hw.network.mlp_layers`): hidden layers requantize
        with ReLU; the last one gives its accumulators (logits).
    lanes : int
        MAC lanes P, 1 ≤ P ≤ the widest layer's outputs.
    weights : "bram" or "spram"
        Where the weights live: block RAMs initialised by the bitstream, or the UP5K's SPRAMs,
        written at run time through ``load`` (:mod:`slimgen.hw.lib.weights`).

    Attributes
    ----------
    i : In(stream.Signature(unsigned(qmodel.input_bits)))
        The n_inputs input codes of one sample, one per transfer.
    o : Out(stream.Signature(result_layout(n_classes, logit_bits)))
        One transfer per sample: the class (first index of the largest logit) and the logits.
    load : In(stream.Signature(unsigned(8)))
        ``weights="spram"`` only: the weight image (:meth:`weight_image`), one byte per transfer.
    loaded : Out(1)
        ``weights="spram"`` only: high once the whole image is written.
    """

    def __init__(self, qmodel, *, lanes=8, weights="bram"):
        layers = mlp_layers(qmodel)
        widest = max(layer.n_out for layer in layers)
        if isinstance(lanes, bool) or not isinstance(lanes, int) or not 1 <= lanes <= widest:
            raise ValueError(f"Lane count must be an integer from 1 to the widest layer's "
                             f"{widest} outputs, not {lanes!r}")
        if weights not in ("bram", "spram"):
            raise ValueError(f"Weights go in 'bram' (block RAM) or 'spram' (the UP5K's "
                             f"single-port RAMs), not {weights!r}")
        self.qmodel = qmodel
        self.lanes = lanes
        self.weights = weights
        self.groups = [-(-layer.n_out // lanes) for layer in qmodel.layers]
        ports = {
            "i": In(stream.Signature(unsigned(qmodel.input_bits))),
            "o": Out(stream.Signature(result_layout(qmodel.n_classes, qmodel.logit_bits))),
        }
        if weights == "spram":
            ports.update(load=In(stream.Signature(unsigned(8))), loaded=Out(1))
        super().__init__(ports)

    @property
    def weight_bits(self):
        """The widest layer's weight width: every lane memory word has it."""
        return max(layer.weight_bits for layer in self.qmodel.layers)

    def weight_image(self):
        """The bytes ``load`` takes (``weights="spram"``): every lane's words, row by row."""
        return weight_image([self.lane_weights(p) for p in range(self.lanes)], self.weight_bits)

    @property
    def weight_bytes(self):
        """Length of :meth:`weight_image`."""
        return len(self.weight_image())

    @property
    def multipliers(self):
        """MAC lanes in the whole network (the requantizers use shift-adds)."""
        return self.lanes

    def _tails(self):
        """Outputs in each layer's last group: ``n_out − (G − 1)·P``."""
        return [layer.n_out - (G - 1) * self.lanes
                for layer, G in zip(self.qmodel.layers, self.groups)]

    @property
    def layer_cycles(self):
        """Per layer, cycles from its first issue to the next layer's (the last layer: to its
        result, counted): ``n_in + (G − 1)·max(n_in, P + 3) + t + 3``, the groups' issues (a
        group's last one at least P + 3 cycles after the previous group's, when the bank is
        free) and the pipeline and serializer of its last group of ``t`` outputs."""
        return [layer.n_in + (G - 1) * max(layer.n_in, self.lanes + 3) + t + 3
                for layer, G, t in zip(self.qmodel.layers, self.groups, self._tails())]

    @property
    def cycles_per_vector(self):
        """Cycles of one sample alone with an always-ready consumer, from its first input's
        transfer to its result's, both counted (the network bench's ``latency``): the sum of
        :attr:`layer_cycles`."""
        return sum(self.layer_cycles)

    @property
    def interval(self):
        """Cycles between consecutive results with samples back to back and an always-ready
        consumer: the next sample's first issue follows the last layer's last one, so
        :attr:`cycles_per_vector` less the last layer's ``t + 3`` cycles after it, plus the
        cycles the next sample's first group waits for the bank when its ``n_in`` issues take
        fewer: ``cycles_per_vector − min(n_in_0, t_last + 3)``."""
        return self.cycles_per_vector - min(self.qmodel.layers[0].n_in, self._tails()[-1] + 3)

    @property
    def weight_depth(self):
        """Words in each lane's weight memory: Σ_l G_l · n_in_l."""
        return sum(layer.n_in * G for layer, G in zip(self.qmodel.layers, self.groups))

    def lane_weights(self, p):
        """Lane p's weight memory: for every layer and group g, W[g·P + p, :] (zeros past n_out)."""
        words = []
        for layer, G in zip(self.qmodel.layers, self.groups):
            for g in range(G):
                o = g * self.lanes + p
                words.extend(int(w) for w in layer.W[o]) if o < layer.n_out \
                    else words.extend([0] * layer.n_in)
        return words

    def _weight_memories(self, m, w_bits):
        """The lanes' weight memories: ``(address, [lane p's word])``, a word one cycle after
        its address (the running address of :meth:`elaborate`)."""
        if self.weights == "spram":
            m.submodules.weights = store = SpramWeights(
                [self.lane_weights(p) for p in range(self.lanes)], w_bits)
            wiring.connect(m, wiring.flipped(self.load), store.load)
            m.d.comb += self.loaded.eq(store.loaded)
            return store.addr, [store.data[p] for p in range(self.lanes)]
        address = Signal(range(self.weight_depth + 1), name="w_read_addr")
        words = []
        for p in range(self.lanes):
            mem = memory.Memory(shape=signed(w_bits), depth=self.weight_depth,
                                init=self.lane_weights(p))
            m.submodules[f"w{p}"] = mem
            port = mem.read_port()
            m.d.comb += port.addr.eq(address)
            words.append(port.data)
        return address, words

    def elaborate(self, platform):
        m = Module()
        layers, P = self.qmodel.layers, self.lanes
        n_layers = len(layers)
        x_bits = max(layer.in_bits for layer in layers)
        w_bits = max(layer.weight_bits for layer in layers)
        acc_bits = max(layer.acc_bits for layer in layers)
        depth = max(layer.n_in for layer in layers)
        # flat group index over the whole network: fg = Σ_{k<l} G_k + g
        group_base = [sum(self.groups[:k]) for k in range(n_layers)]
        n_groups = sum(self.groups)

        m.submodules.argmax = argmax = Argmax(n_classes=self.qmodel.n_classes,
                                              logit_bits=self.qmodel.logit_bits)
        wiring.connect(m, argmax.o, wiring.flipped(self.o))

        bufs, rd, wr = [], [], []
        for k in range(2):
            buf = memory.Memory(shape=unsigned(x_bits), depth=depth, init=[])
            m.submodules[f"act{k}"] = buf
            bufs.append(buf)
            rd.append(buf.read_port(transparent_for=()))
            wr.append(buf.write_port())
        w_addr_port, w_data = self._weight_memories(m, w_bits)
        biases = [Array(Const(int(layer.b[g * P + p]) if g * P + p < layer.n_out else 0,
                              signed(acc_bits))
                        for layer, G in zip(layers, self.groups) for g in range(G))
                  for p in range(P)]

        # ---- issue (stage 0): layer, group, input index; weights at a running address
        layer_i = Signal(range(n_layers))
        group = Signal(range(max(self.groups)))
        flat_group = Signal(range(n_groups))
        idx = Signal(range(depth))
        w_addr = Signal(range(self.weight_depth + 1))
        last_in = Array(Const(layer.n_in - 1, range(depth)) for layer in layers)[layer_i]
        last_group = Array(Const(G - 1, range(max(self.groups))) for G in self.groups)[layer_i]
        from_stream = (layer_i == 0) & (group == 0)   # the first pass takes x as it arrives
        issue = Signal()
        starting = Signal()      # waiting for the previous layer's outputs before this layer

        # ---- pipeline registers
        s1_valid, s1_first, s1_last, s1_stream = Signal(), Signal(), Signal(), Signal()
        s1_group, s1_rd = Signal.like(flat_group), Signal(range(2))
        s1_layer = Signal.like(layer_i)
        x_stream = Signal(x_bits)
        s2_valid, s2_first, s2_last = Signal(), Signal(), Signal()
        s2_group, s2_layer = Signal.like(flat_group), Signal.like(layer_i)

        # ---- output bank and serializer
        bank = Array(Signal(signed(acc_bits), name=f"bank{p}") for p in range(P))
        bank_busy = Signal()
        bank_layer = Signal.like(layer_i)
        bank_count = Signal(range(P + 1))     # outputs in the bank (fewer in a layer's last group)
        out_idx = Signal(range(P))
        out_addr = Signal(range(depth + 1))   # next write address in the next layer's buffer

        # A group's last product needs the bank free when it arrives: no other group's result
        # may be in the bank or on its way. A layer's first product needs all its inputs written.
        pending = bank_busy | (s1_valid & s1_last) | (s2_valid & s2_last)
        stall_last = (idx == last_in) & pending
        m.d.comb += [
            self.i.ready.eq(from_stream & ~stall_last),
            issue.eq(~starting & ~stall_last & Mux(from_stream, self.i.valid, 1)),
        ]
        read_buf = Signal(range(2))
        m.d.comb += read_buf.eq(layer_i[0])
        for k in range(2):
            m.d.comb += rd[k].addr.eq(idx)
        m.d.comb += w_addr_port.eq(w_addr)
        # The first layer's inputs also go into buffer 0 for its later groups.
        m.d.comb += [wr[0].addr.eq(idx), wr[0].data.eq(self.i.payload),
                     wr[0].en.eq(self.i.valid & self.i.ready)]

        with m.If(starting):
            with m.If(~(s1_valid | s2_valid | bank_busy)):
                m.d.sync += starting.eq(0)
        with m.Elif(issue):
            m.d.sync += [idx.eq(idx + 1), w_addr.eq(w_addr + 1)]
            with m.If(idx == last_in):
                m.d.sync += [idx.eq(0), group.eq(group + 1), flat_group.eq(flat_group + 1)]
                with m.If(group == last_group):
                    m.d.sync += [group.eq(0), layer_i.eq(layer_i + 1), starting.eq(1)]
                    with m.If(layer_i == n_layers - 1):
                        # The next sample may start at once: its first layer writes buffer 0
                        # and nothing reads a buffer after its layer's last issue.
                        m.d.sync += [layer_i.eq(0), flat_group.eq(0), w_addr.eq(0),
                                     starting.eq(0)]

        m.d.sync += [
            s1_valid.eq(issue), s1_first.eq(idx == 0), s1_last.eq(idx == last_in),
            s1_group.eq(flat_group), s1_layer.eq(layer_i), s1_stream.eq(from_stream),
            s1_rd.eq(read_buf), x_stream.eq(self.i.payload),
            s2_valid.eq(s1_valid), s2_first.eq(s1_first), s2_last.eq(s1_last),
            s2_group.eq(s1_group), s2_layer.eq(s1_layer),
        ]
        x = Mux(s1_stream, x_stream, Mux(s1_rd, rd[1].data, rd[0].data))
        for p in range(P):   # x (unsigned) · W (signed); a group's sums start from the bias
            total, _ = mac_lane(m, x, w_data[p], first=s2_first, en=s2_valid,
                                shape=signed(acc_bits), init=biases[p][s2_group],
                                name=f"lane{p}")
            with m.If(s2_valid & s2_last):
                m.d.sync += bank[p].eq(total)

        with m.If(s2_valid):
            with m.If(s2_last):
                last_of_layer = Array(Const(gb + G - 1, range(n_groups))
                                      for gb, G in zip(group_base, self.groups))[s2_layer]
                tail = Array(Const(layer.n_out - (G - 1) * P, range(P + 1))
                             for layer, G in zip(layers, self.groups))[s2_layer]
                m.d.sync += [bank_busy.eq(1), bank_layer.eq(s2_layer), out_idx.eq(0),
                             bank_count.eq(Mux(s2_group == last_of_layer, tail, P))]

        # Serializer: hidden layers requantize into the next buffer, the last one feeds argmax.
        acc_sel = bank[out_idx]
        ys = [requantize(m, acc_sel, layer.multiplier, layer.shift, out_bits=layer.out_bits,
                         relu=True, name=f"rq{k}") for k, layer in enumerate(layers[:-1])]
        y = Array(ys + [Const(0, x_bits)])[bank_layer]
        to_argmax = bank_layer == n_layers - 1
        write_to = (bank_layer + 1)[0]
        for k in range(2):
            with m.If(bank_busy & ~to_argmax & (write_to == k)):
                m.d.comb += [wr[k].addr.eq(out_addr), wr[k].data.eq(y), wr[k].en.eq(1)]
        m.d.comb += [argmax.i.payload.eq(acc_sel), argmax.i.valid.eq(bank_busy & to_argmax)]
        advance = bank_busy & (~to_argmax | argmax.i.ready)
        with m.If(advance):
            m.d.sync += [out_idx.eq(out_idx + 1), out_addr.eq(out_addr + 1)]
            with m.If(out_idx == bank_count - 1):
                m.d.sync += bank_busy.eq(0)
        # A layer's outputs start at address 0 of its buffer.
        with m.If(s2_valid & s2_last & (s2_group == Array(Const(gb, range(n_groups))
                                                          for gb in group_base)[s2_layer])):
            m.d.sync += out_addr.eq(0)
        return m
