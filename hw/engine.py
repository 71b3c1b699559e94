"""The shared-array engine: every layer program (:mod:`slimgen.hw.program`) of a feed-forward
network on one array of P multiply-accumulate lanes and one requantizer::

                ┌──────────── walker (layer, position, group, tap counters) ───────────┐
                │ tap table[ptr] → (off, ky, kx, last)   weights[p][wptr]             │
    i ─> buf 0 ─┤ A: addr = pos_base + off (+ch0), bounds check   read buf[layer % 2] │
         buf 1 ─┤ B: v = inside ? x : 0       prod[p] = v · w[p]   (w read at A's ptr) │
                │ C: acc[p] = (first ? 0 : acc[p]) + prod[p]      (max / sum pools)    │
                │    last tap: bank ← acc  ──> drain d = 0 … L−1 (one requantizer):    │
                │ R1: bank[d] + bias[c + d], M[c + d] read   (c: the group's channel)  │
                │ R2: · M   R3: clamp(round(·, shift))                                 │
                └ R4: buf[(layer + 1) % 2][out + d] ← y    (last layer: to the argmax) ┘
    Argmax ─> o {cls, logits}

A sample loads into buffer 0 (one input code per transfer, channels-last), the layers run one
after the other between the two buffers, the last layer's drain gives the logits to the argmax
in class order (the last layer runs direct). The walker issues one tap a cycle and no stage
waits for another to end: layer 0 runs while the inputs arrive, a layer starts while the
previous one still drains, and each logit goes to the argmax as it is made. A tap is held only
while its input word is not yet written (``avail``: the inputs loaded, or the previous layer's
outputs written, which a direct layer or a pool writes in address order), while it ends a group
and the drain has not finished the previous one (``cooldown``), after a Winograd layer until
that layer's drain, not in address order, has ended (``settle``), when it ends layer 0 before
the last input came (the next layer writes buffer 0), or when it ends a group of the last layer
while the argmax still holds the previous result; a sample starts with its first input.
:func:`slimgen.hw.program.schedule` models these holds and
:func:`~slimgen.hw.program.network_cycles` counts the cycles exactly. The next sample loads
once the result has gone to the argmax. A layer whose groups all have the same taps (nothing
pruned apart) keeps one copy of its tap list, read again for each group, and its weight rows
follow their own pointer ``wptr`` (a dense 784 → 64 layer on 8 lanes: 784 tap words, not
6,272).

A Winograd layer (op ``"wino"``, 1-D F(m, r) or 2-D F(m×m, r×r)) uses the same walker, tile
by tile::

    B: tile[e] ← v  (a block's α reads; e = α − 1 ends the block and starts the sequencer;
                     e is the tap's column in 1-D, counted where a 2-D layer is)
    S: V ← BT·tile (input-transform unit)    j = 0 … α − 1: weights[p][block + j] read
    B': prod[p] = V[j] · U[p]   C: acc[p][j] = (first block ? 0 : acc[p][j]) + prod[p]
    drain, lane d, output n < m^dims: R1 takes (AT·bank[d])_n ≫ k, times q⁻¹ mod 2^y_bits, + b

so a block's products run one block behind its reads, with ``tail = α + 1`` more cycles at
the layer's end and ``m^dims·L`` drain cycles a group; each distinct algorithm has one input
and one output transform unit (:class:`slimgen.hw.lib.transform.TransformUnit`), and every
lane keeps α running sums. A 2-D tile's outputs are m rows of m: the drain's address jumps to
the next output row after m words, and an output past the right edge (its tile's first
column, carried down the pipeline, plus its own) is not written; the walker's next row of
tiles starts m output rows on. A max pool whose window is the tile
(:func:`~slimgen.hw.program.fuse_pool`) runs in the drain: each output goes through a running
max at R4, the lane's last one writes it at the pooled position, so the layer's words come in
address order like a direct layer's.
"""

from amaranth.hdl import Array, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from slimgen.sw.fixed import signed_bits

from .lib.argmax import Argmax, result_layout
from .lib.const_mul import const_times
from .lib.requantizer import clamp, requantize
from .lib.transform import TransformUnit
from .lib.weights import SpramWeights, weight_image
from .program import cool_end, settle_end

__all__ = ["Engine", "CONST_MULTIPLIERS"]

#: The most distinct requantizer multipliers M (over every layer and channel) the engine makes
#: shift-add networks of; with more (per-channel scales) M is a run-time product. One M per
#: layer is the common case: a run-time product of a 21-bit sum and a 15-bit M takes 2 of the
#: UP5K's 8 multiplier blocks, which the lanes need.
CONST_MULTIPLIERS = 4


def _table(values, index):
    """``values[index]`` for a run-time index: a multiplexer over constants."""
    values = [int(v) for v in values]
    if len(set(values)) == 1:        # the same in every layer: no multiplexer
        return Const(values[0], _shape(values))
    return Array([Const(v, _shape(values)) for v in values])[index]


def _shape(values):
    return signed(signed_bits(min(values), max(values))) if min(values) < 0 else \
        unsigned(max(1, max(values).bit_length()))


def _transform(m, name, matrix, in_shape, inputs):
    """A combinational :class:`TransformUnit` of ``matrix`` (always valid, always ready) added
    to ``m`` as ``name``, its inputs driven by ``inputs``; its ``o.payload`` is the product."""
    unit = TransformUnit(matrix, in_shape=in_shape, stages=0)
    m.submodules[name] = unit
    m.d.comb += [unit.i.valid.eq(1), unit.o.ready.eq(1)]
    m.d.comb += [unit.i.payload[j].eq(v) for j, v in enumerate(inputs)]
    return unit


def _ubits(n):
    return max(1, int(n).bit_length())


class _Tables:
    """The plain-number tables the engine is built from: per-layer constants, the tap table,
    the weight, bias and multiplier memories' contents, and the widths."""

    def __init__(self, programs, lanes, input_range):
        P = self.P = lanes
        self.programs = programs
        taps, weights, tap_start, bias, mult = [], [[] for _ in range(P)], [], [], []
        cidx_base, w_start, shared = [], [], []
        for p in programs:
            tap_start.append(len(taps))
            w_start.append(len(weights[0]))
            # every group with the same taps (nothing pruned apart): one copy of the list,
            # read again for each group, as a pool's window; the weights stay one row a tap
            groups = [taps_g for _, _, taps_g in p.groups]
            shared.append(p.op in ("mac", "wino") and len(groups) > 1
                          and all(g == groups[0] for g in groups))
            entries = groups[0] if shared[-1] else p.taps
            H, W, C = p.in_shape
            last = set()
            if p.op in ("mac", "wino") and not shared[-1]:
                k = 0
                for group in groups:
                    k += len(group)
                    last.add(k - 1)
            else:
                last.add(len(entries) - 1)
            for k, (ky, kx, c) in enumerate(entries):
                taps.append(((ky * W + kx) * C + c, ky, kx, k in last))
            for lane in range(P):
                weights[lane].extend(int(w) for w in p.weights[:, lane])
            # one entry per output channel of every layer with weights or a requantizer, the
            # drain's index for both (a max-pool reads neither; a pool's bias is 0)
            mac, CO = p.op in ("mac", "wino"), p.out_shape[2]
            cidx_base.append(len(mult) if mac or p.requant else 0)
            if mac or p.requant:
                bias.extend([int(v) for v in p.bias] if mac else [0] * CO)
                mult.extend([int(v) for v in p.multiplier] if p.requant else [None] * CO)
        # a layer that does not requantize never reads M: any value of the others will do
        fill = next((v for v in mult if v is not None), 1)
        self.taps, self.weights, self.bias = taps, weights, bias
        self.mult = [fill if v is None else v for v in mult]
        self.tap_start, self.cidx_base = tap_start, cidx_base
        self.w_start, self.shared = w_start, shared
        # the weight rows' own pointer, where some layer's groups share their taps
        self.wptr = any(shared)
        # above every drain index: a pool's (its channels from 0) and its lanes' reach
        self.cidx_max = max([len(mult)] + [p.out_shape[2] for p in programs]) + P + 1
        self.off_bits = _ubits(max(t[0] for t in taps))
        self.ky_bits = _ubits(max(t[1] for t in taps))
        self.kx_bits = _ubits(max(t[2] for t in taps))
        self.weight_bits = signed_bits(min(min(w) for w in weights), max(max(w) for w in weights))
        self.bias_bits = signed_bits(min(bias), max(bias))
        self.pools = any(p.op in ("max", "avg") for p in programs)
        self.fused = any(p.pooled for p in programs)      # a max pool in a drain
        # the requantizer's M: a few distinct values become shift-add networks chosen by an
        # index (no multiplier block; the UP5K has 8), more stay a run-time product
        values = sorted(set(self.mult))
        self.mult_values = values if len(values) <= CONST_MULTIPLIERS else None
        self.mult_words = [values.index(v) for v in self.mult] if self.mult_values else self.mult
        self.mult_bits = _ubits(max(self.mult_words))
        ranges = [tuple(input_range)] + [(p.lo, p.hi) for p in programs[:-1]]
        self.act_bits = max(signed_bits(lo, hi) for lo, hi in ranges)
        self.acc_bits = max([p.acc_bits for p in programs] + [self.act_bits])
        # the first input row and column of a position, from the padding to the last one
        self.iy_bits = signed_bits(min(-p.pad[0] for p in programs),
                                   max((p.positions[0] - 1) * p.ystep - p.pad[0]
                                       for p in programs))
        self.ix_bits = signed_bits(min(-p.pad[1] for p in programs),
                                   max((p.positions[1] - 1) * p.step - p.pad[1]
                                       for p in programs))
        # Winograd layers: one transform pair per (algorithm, y width); V is a multiplier operand
        self.winos = list(dict.fromkeys((p.wino, p.y_bits) for p in programs if p.wino))
        self.opd_bits = max([self.act_bits] + [p.v_bits for p in programs])
        self.alpha = max([1] + [w.alpha for w, _ in self.winos])
        self.outs_max = max(p.outs for p in programs)
        # a 2-D tile: its entry counted at stage B, its outputs' rows and right edge drained
        self.wino2d = any(w.dims == 2 for w, _ in self.winos)
        self.depth = max([programs[0].n_in] + [p.n_out for p in programs[:-1]])
        self.req_bits = max([p.out_bits for p in programs if p.requant] or [2])
        # pos_base + off over every layer: from the most negative corner to past the end
        self.addr_bits = 2 + max(signed_bits(-(p.pad[0] * p.in_shape[1] + p.pad[1])
                                             * p.in_shape[2],
                                             p.n_in + (max(p.out_shape[0] * p.stride,
                                                           p.positions[0] * p.ystep)
                                                       * p.in_shape[1]
                                                       + p.positions[1] * p.step)
                                             * p.in_shape[2] + max(t[0] for t in taps))
                                 for p in programs)
        # output addresses: a tile's outputs past the right or bottom edge are computed, not
        # written
        self.out_max = 2 * max(p.positions[0] * p.positions[1] * p.outs * p.out_shape[2]
                               for p in programs) + 2 * self.depth + 2 * P + 4

    def layer(self, name, index):
        """A per-layer constant (``name`` below) at the run-time layer ``index``."""
        return _table([self._value(name, k, p) for k, p in enumerate(self.programs)], index)

    def _value(self, name, k, p):
        H, W, C = p.in_shape
        OH, OW, CO = p.out_shape
        s, (pt, pl) = p.ystep, p.pad
        wk = self.winos.index((p.wino, p.y_bits)) if p.wino else 0
        nxt = self.programs[k + 1] if k + 1 < len(self.programs) else None
        return {
            "H": p.limit[0], "W": p.limit[1], "OHm1": p.positions[0] - 1,
            "OWm1": p.positions[1] - 1,
            # a pooled tile (fuse_pool) is one position of the output, its lane's words one
            "i_step": 0 if p.pooled else CO, "out_step": CO if p.pooled else p.m * CO,
            "n_out": p.n_out, "mm1": p.outs - 1, "pooled": p.pooled,
            # designs with a 2-D layer: the step to the next row of positions (out_step for
            # every other layer), a tile's last column and the step to its next output row,
            # and the bound of ix0 + column (above every ix0 where every output is written)
            "out_row": CO if p.pooled else (p.mh * OW - (p.positions[1] - 1) * p.m) * CO,
            "mcm1": p.m - 1, "out_jump": 0 if p.pooled else (OW - p.m + 1) * CO,
            "col_lim": OW - pl if p.wino and not p.pooled
            else (1 << (self.ix_bits - 1)) + self.outs_max,
            "wino": p.op == "wino", "wk": wk, "am1": p.wino.alpha - 1 if p.wino else 0,
            "tail": p.tail, "Dg": p.groups[0][1] * p.outs, "Dlast": p.groups[-1][1] * p.outs,
            # the words a group gives (the queue's credit): a pooled one's a lane
            "Kg": p.groups[0][1] * (1 if p.pooled else p.outs),
            "Klast": p.groups[-1][1] * (1 if p.pooled else p.outs),
            "Gm1": len(p.groups) - 1, "Lg": p.groups[0][1], "Llast": p.groups[-1][1],
            "s": s, "sx": p.step, "col_step": p.step * C, "row_step": s * W * C,
            "base0": -(pt * W + pl) * C, "iy0": -pt, "ix0": -pl,
            "tap_start": self.tap_start[k], "pool": p.op in ("max", "avg"),
            "w_start": self.w_start[k], "shared": self.shared[k],
            "mac": p.op in ("mac", "wino"), "max": p.op == "max",
            "cidx_base": self.cidx_base[k], "requant": p.requant, "shift": max(p.shift, 1),
            "lo": p.lo, "hi": p.hi, "last": k == len(self.programs) - 1,
            "after_wino": k > 0 and self.programs[k - 1].op == "wino"
            and not self.programs[k - 1].pooled,
            # set at the layer's last tap, for the next layer (none after the last layer)
            "cool_end": cool_end(p, nxt) if nxt else 0,
            "settle_end": settle_end(p) if nxt else 0,
        }[name]


class Engine(wiring.Component):
    """A whole feed-forward integer network on one shared array (module docstring).

    Parameters
    ----------
    programs : list of LayerProgram
        From :func:`slimgen.hw.program.build_programs`, with ``lanes`` lanes.
    n_inputs, input_bits : int
        Input codes per sample and their (unsigned) width.
    n_classes, logit_bits : int
        The last program's outputs and their signed width.
    weights : "bram" or "spram"
        Where the lanes' weight rows live: block RAMs the bitstream initialises, or the
        UP5K's single-port RAMs, written at run time through ``load``
        (:class:`slimgen.hw.lib.weights.SpramWeights`; a row of P weights is read at one
        address either way, so the schedule is the same).
    input_signed : bool
        The input codes are signed ``input_bits``-bit values (a stage of a dataflow pipeline
        after a layer without ReLU), not unsigned ones.
    queue : int or None
        None: the last layer's outputs are the logits, to the argmax. A depth Q: the engine
        is a stage of a :class:`slimgen.hw.dataflow.Dataflow` pipeline, and ``o`` gives the
        last layer's outputs (its n_out codes, address order, the next stage's inputs)
        from a queue of Q words; a group of the last layer is held from ending while fewer
        than its words are free in the queue (counted from the group's end, so the queue
        never overflows and ``o`` may be not ready for any time).

    Attributes
    ----------
    i : In(stream.Signature(unsigned(input_bits)))
        ``n_inputs`` transfers per sample, channels-last raster order (``signed`` with
        ``input_signed``).
    o : Out(stream.Signature(result_layout(n_classes, logit_bits)))
        One transfer per sample; with ``queue``, ``n_out`` transfers of the last layer's
        output codes (:attr:`out_shape`).
    load : In(stream.Signature(unsigned(8)))
        ``weights="spram"`` only: the weight image (:meth:`weight_image`), one byte per
        transfer, before the first sample.
    loaded : Out(1)
        ``weights="spram"`` only: high once the whole image is written.
    """

    def __init__(self, programs, *, n_inputs, input_bits, n_classes, logit_bits,
                 weights="bram", input_signed=False, queue=None):
        if not programs:
            raise ValueError("The engine needs at least one layer program")
        lanes = programs[0].lanes
        if any(p.lanes != lanes for p in programs):
            raise ValueError("Every layer program must have the same lane count")
        if programs[-1].op == "wino" and not programs[-1].pooled:
            raise ValueError("The last layer gives its outputs in address order (the logits "
                             "to the argmax in class order): it runs direct, not on a "
                             "Winograd algorithm (unless its max pool is in the drain)")
        if weights not in ("bram", "spram"):
            raise ValueError(f"Weights go in 'bram' (block RAM) or 'spram' (the UP5K's "
                             f"single-port RAMs), not {weights!r}")
        if queue is not None and (isinstance(queue, bool) or not isinstance(queue, int)
                                  or queue < programs[-1].groups[0][1]):
            raise ValueError(f"The output queue must hold at least one group of the last "
                             f"layer ({programs[-1].groups[0][1]} words), not {queue!r}")
        in_range = (-(1 << (input_bits - 1)), (1 << (input_bits - 1)) - 1) if input_signed \
            else (0, (1 << input_bits) - 1)
        self.t = _Tables(programs, lanes, in_range)
        self.programs, self.lanes, self.weights = programs, lanes, weights
        self.n_inputs, self.n_classes, self.logit_bits = n_inputs, n_classes, logit_bits
        self.queue = queue
        last = programs[-1]
        self.out_shape = _shape([last.lo, last.hi]) if queue else None
        # the last layer's words, to the argmax or the queue (no buffer holds them)
        self.send_bits = signed_bits(last.lo, last.hi) if queue else logit_bits
        ports = {
            "i": In(stream.Signature(signed(input_bits) if input_signed
                                     else unsigned(input_bits))),
            "o": Out(stream.Signature(self.out_shape if queue
                                      else result_layout(n_classes, logit_bits))),
        }
        if weights == "spram":
            self.weight_image()          # the SPRAMs' limits, checked where the engine is built
            ports.update(load=In(stream.Signature(unsigned(8))), loaded=Out(1))
        super().__init__(ports)

    @property
    def weight_bits(self):
        """The signed width of every lane's weight word."""
        return self.t.weight_bits

    @property
    def weight_depth(self):
        """Weight rows: words in each lane's memory."""
        return len(self.t.weights[0])

    def weight_image(self):
        """The bytes ``load`` takes (``weights="spram"``): the lanes' rows, one after the other
        (:func:`slimgen.hw.lib.weights.weight_image`)."""
        return weight_image(self.t.weights, self.t.weight_bits)

    @property
    def weight_bytes(self):
        """Length of :meth:`weight_image`."""
        return len(self.weight_image())

    # ------------------------------------------------------------------ memories

    def _memories(self, m):
        t, P = self.t, self.lanes
        tw = t.off_bits + t.ky_bits + t.kx_bits + 1
        words = [off | ky << t.off_bits | kx << (t.off_bits + t.ky_bits)
                 | int(last) << (tw - 1) for off, ky, kx, last in t.taps]
        # depths of at least 2: a 0-bit address is not valid Verilog
        m.submodules.taps = taps = Memory(shape=unsigned(tw), depth=max(2, len(words)),
                                          init=words)
        # the lanes' weight rows: one address, every lane's word on the next cycle
        mems = {"taps": taps.read_port(), "w_addr": Signal(range(max(2, len(t.weights[0]))),
                                                           name="w_addr"), "buf": []}
        if self.weights == "spram":
            m.submodules.weights = store = SpramWeights(t.weights, t.weight_bits)
            wiring.connect(m, wiring.flipped(self.load), store.load)
            m.d.comb += [self.loaded.eq(store.loaded), store.addr.eq(mems["w_addr"])]
            mems["w"] = [store.data[lane] for lane in range(P)]
        else:
            mems["w"] = []
            for lane in range(P):
                wm = Memory(shape=signed(t.weight_bits), depth=max(2, len(t.weights[lane])),
                            init=t.weights[lane])
                m.submodules[f"weights{lane}"] = wm
                port = wm.read_port()
                m.d.comb += port.addr.eq(mems["w_addr"])
                mems["w"].append(port.data)
        m.submodules.bias = bm = Memory(shape=signed(t.bias_bits), depth=max(2, len(t.bias)),
                                        init=t.bias)
        mems["bias"], mems["mult"] = bm.read_port(), None
        if not t.mult_values or len(t.mult_values) > 1:     # M, or which of the constants
            m.submodules.mult = mm = Memory(shape=unsigned(t.mult_bits),
                                            depth=max(2, len(t.mult_words)), init=t.mult_words)
            mems["mult"] = mm.read_port()
        for k in range(2):
            am = Memory(shape=signed(t.act_bits), depth=max(2, t.depth), init=[])
            m.submodules[f"buf{k}"] = am
            mems["buf"].append((am.read_port(), am.write_port()))
        return mems

    def _fields(self, word):
        t = self.t
        return (word[:t.off_bits], word[t.off_bits:t.off_bits + t.ky_bits],
                word[t.off_bits + t.ky_bits:-1], word[-1])

    # ------------------------------------------------------------------ the top

    def elaborate(self, platform):
        m = Module()
        mems = self._memories(m)
        if self.queue is None:
            m.submodules.argmax = argmax = Argmax(n_classes=self.n_classes,
                                                  logit_bits=self.logit_bits)
            wiring.connect(m, argmax.o, wiring.flipped(self.o))
            send, full = argmax.i, lambda words: argmax.o.valid
        else:
            send, free = self._queue(m)
            full = lambda words: free < words         # noqa: E731
        # the drain's writes, counted by the walker (words it may read); the last layer's
        # go to the argmax or the queue, and its last one ends the sample
        wrote = {"buf": Signal(name="wrote_buf"), "layer": Signal(
            range(max(2, len(self.programs))), name="wrote_layer")}
        done = Signal(name="sample_done")
        loaded = self._loader(m, mems, done)
        issue = self._walker(m, mems, loaded, wrote, done, full)
        if self.queue is not None:      # a last-layer group's words taken from the credit
            ends = issue["valid"] & issue["last"] & self.t.layer("last", issue["layer"])
            m.d.sync += free.eq(free - Mux(ends, issue["K"], 0) + (self.o.valid & self.o.ready))
        self._drain(m, mems, self._lanes(m, mems, issue), send, wrote, done)
        return m

    def _queue(self, m):
        """The output queue (``queue`` words) on ``o``, and its credit ``free``: the words
        not yet promised to a group of the last layer (the walker lowers it at a group's
        end, each word taken on ``o`` raises it)."""
        m.submodules.queue = q = SyncFIFOBuffered(width=Shape.cast(self.out_shape).width,
                                                  depth=self.queue)
        send = stream.Signature(signed(max(self.t.act_bits, self.send_bits))).create(
            path=("send",))
        m.d.comb += [q.w_en.eq(send.valid), q.w_data.eq(send.payload), send.ready.eq(1),
                     self.o.valid.eq(q.r_rdy), self.o.payload.eq(q.r_data),
                     q.r_en.eq(self.o.ready)]
        free = Signal(range(self.queue + 1), name="queue_free", init=self.queue)
        return send, free

    def _loader(self, m, mems, done):
        """A sample's input codes into buffer 0, one per transfer, until it has ``n_inputs``
        (the walker reads them as they arrive); the next sample's once its result has gone.
        Returns the count loaded."""
        loaded = Signal(range(self.n_inputs + 1), name="loaded")
        wr = mems["buf"][0][1]
        m.d.comb += self.i.ready.eq(loaded != self.n_inputs)
        with m.If(self.i.valid & self.i.ready):
            m.d.comb += [wr.addr.eq(loaded), wr.data.eq(self.i.payload), wr.en.eq(1)]
            m.d.sync += loaded.eq(loaded + 1)
        with m.If(done):
            m.d.sync += loaded.eq(0)
        return loaded

    def _available(self, m, layer, enter, loading, wrote, done):
        """``avail``: the input words of the walker's layer written so far, the inputs loaded
        (layer 0) or the previous layer's outputs, counted one by one as the drain writes
        them in address order; ``made`` counts the walker's own layer's outputs and becomes
        ``avail`` as the walker enters the next layer (an older layer's last writes, still
        arriving then, count for neither). A Winograd layer's drain is not in address
        order: the layer after it waits until it has ended (``settle``) and ignores
        ``avail``."""
        t = self.t
        avail = Signal(range(t.depth + 1), name="avail")
        made = Signal(range(t.depth + 1), name="made")
        made_next = Signal.like(made, name="made_next")
        m.d.comb += made_next.eq(made + (wrote["buf"] & (wrote["layer"] == layer)))
        m.d.sync += [made.eq(made_next),
                     avail.eq(avail + (loading | (wrote["buf"] & (wrote["layer"] + 1 == layer))))]
        with m.If(enter):
            m.d.sync += [avail.eq(made_next), made.eq(0)]
        with m.If(done):
            m.d.sync += [avail.eq(0), made.eq(0)]
        return avail

    def _walker(self, m, mems, loaded, wrote, done, full):
        """The sequencer (layer after layer, then waiting for the send) and stage A of the
        tap pipeline: one tap a cycle, held as :func:`slimgen.hw.program.schedule` says, and
        a group of the last layer held from ending while ``full(words)`` for its words: the
        argmax still holds the previous result (it takes no logit then), or the queue has
        fewer free."""
        t, n_layers, p0 = self.t, len(self.programs), self.programs[0]
        layer = Signal(range(max(2, n_layers)), name="layer")
        ptr = Signal(range(max(2, len(t.taps))), name="ptr")     # 0: layer 0's first tap
        ptr_next = Signal.like(ptr, name="ptr_next")
        # the issued tap's weight row: the tap's own entry unless groups share their taps
        wptr = Signal(range(max(2, len(t.weights[0]))), name="wptr") if t.wptr else ptr
        wptr_next = Signal.like(wptr, name="wptr_next") if t.wptr else ptr_next
        g = Signal(range(max(2, max(len(p.groups) for p in self.programs))), name="group")
        ch0 = Signal(range(max(p.out_shape[2] for p in self.programs) + 1), name="ch0")
        oy = Signal(range(max(2, max(p.positions[0] for p in self.programs))), name="oy")
        ox = Signal(range(max(2, max(p.positions[1] for p in self.programs))), name="ox")
        # reset: layer 0's first position, as a layer's last tap sets them for the next
        iy0 = Signal(signed(t.iy_bits), name="iy0", init=t._value("iy0", 0, p0))
        ix0 = Signal(signed(t.ix_bits), name="ix0", init=t._value("ix0", 0, p0))
        row_base = Signal(signed(t.addr_bits), name="row_base", init=t._value("base0", 0, p0))
        pos_base = Signal(signed(t.addr_bits), name="pos_base", init=t._value("base0", 0, p0))
        out_base = Signal(range(t.out_max), name="out_base")
        cooldown = Signal(range(self.lanes * t.outs_max + t.alpha + 2), name="cooldown")
        settle = Signal(range(max(2, max(settle_end(p) for p in self.programs) + 1)),
                        name="settle")
        first = Signal(name="first", init=1)
        L = lambda name: t.layer(name, layer)     # noqa: E731  (this layer's constant)

        off, ky, kx, e_last = self._fields(mems["taps"].data)
        iy, ix = iy0 + ky, ix0 + kx
        inside = (iy >= 0) & (iy < L("H")) & (ix >= 0) & (ix < L("W"))
        addr = Signal(signed(t.addr_bits + 1), name="tap_addr")
        m.d.comb += addr.eq(pos_base + off + Mux(L("pool"), ch0, 0))
        group_end, pos_end, final = Signal(), Signal(), Signal(name="final_tap")
        enter, nxt = Signal(name="enter"), Signal.like(layer, name="next_layer")
        Lcur = Mux(g == L("Gm1"), L("Llast"), L("Lg"))
        issue = {"valid": Signal(name="a_valid"), "inside": inside, "first": first,
                 "last": e_last, "L": Lcur,
                 "out": out_base + ch0, "cidx": L("cidx_base") + ch0, "layer": layer,
                 "kx": kx, "wptr": wptr, "D": Mux(g == L("Gm1"), L("Dlast"), L("Dg"))}
        # the words the group gives: its drain's, but a pooled tile's one a lane
        issue["K"] = Mux(g == L("Gm1"), L("Klast"), L("Kg")) if t.fused else issue["D"]
        if t.wino2d:                        # a tile's first column, for the drain's right edge
            issue["ix0"] = ix0
        avail = self._available(m, layer, enter, self.i.valid & self.i.ready, wrote, done)
        hold = Signal(name="hold")
        run = Signal()
        m.d.comb += [
            final.eq(e_last & (g == L("Gm1")) & (ox == L("OWm1")) & (oy == L("OHm1"))),
            # the holds of schedule(): the drain busy, a Winograd layer's products, the
            # input word not yet written, layer 0 ending before its last input came or
            # starting before its first (a padding tap would not wait)
            hold.eq((e_last & ((cooldown != 0) | (L("last") & full(issue["K"]))))
                    | (settle != 0)
                    | (inside & ~L("after_wino") & (addr >= avail))
                    | ((layer == 0) & (loaded == 0))
                    | (final & (layer == 0) & (loaded != self.n_inputs))),
            mems["taps"].addr.eq(ptr_next), ptr_next.eq(ptr),
            issue["valid"].eq(run & ~hold),
            group_end.eq(issue["valid"] & e_last), pos_end.eq(group_end & (g == L("Gm1"))),
            enter.eq(issue["valid"] & final), nxt.eq(Mux(L("last"), 0, layer + 1)),
        ]
        m.d.sync += ptr.eq(ptr_next)
        if t.wptr:
            m.d.comb += wptr_next.eq(wptr)
            m.d.sync += wptr.eq(wptr_next)
        # the issued tap's weights, read as it goes to B (the Winograd products' sequencer
        # overrides: no direct tap issues while it runs, schedule()'s settle)
        m.d.comb += mems["w_addr"].eq(wptr)
        for rd, _ in mems["buf"]:
            m.d.comb += rd.addr.eq(addr)
        with m.If(cooldown != 0):
            m.d.sync += cooldown.eq(cooldown - 1)
        with m.If(settle != 0):
            m.d.sync += settle.eq(settle - 1)

        with m.FSM(name="engine"):
            with m.State("RUN"):
                m.d.comb += run.eq(1)
                self._advance(m, issue, dict(
                    L=L, ptr=ptr, ptr_next=ptr_next, wptr=wptr, wptr_next=wptr_next, g=g,
                    ch0=ch0, oy=oy, ox=ox, iy0=iy0,
                    ix0=ix0, row_base=row_base, pos_base=pos_base, out_base=out_base,
                    cooldown=cooldown, settle=settle, first=first, group_end=group_end,
                    pos_end=pos_end, enter=enter, nxt=nxt, layer=layer))
                with m.If(enter & L("last")):
                    m.next = "WAIT"
            with m.State("WAIT"):                    # until the last logit has gone
                with m.If(done):
                    m.next = "RUN"
        return issue

    def _advance(self, m, issue, v):
        """RUN: the counters after each issued tap (next tap, group, position); the last tap
        of a layer sets them for the next layer (layer 0 after the last)."""
        L, ptr, ptr_next, g, ch0 = v["L"], v["ptr"], v["ptr_next"], v["g"], v["ch0"]
        oy, ox, iy0, ix0 = v["oy"], v["ox"], v["iy0"], v["ix0"]
        row_base, pos_base, out_base = v["row_base"], v["pos_base"], v["out_base"]
        with m.If(issue["valid"]):
            # a group's last tap: the next group's taps (a shared list, a pool's window)
            # from the start, its weight rows after this group's; a position's last: both
            row_end = issue["last"] & (L("pool") | (g == L("Gm1")))
            m.d.comb += ptr_next.eq(Mux(row_end | (issue["last"] & L("shared")),
                                        L("tap_start"), ptr + 1))
            if self.t.wptr:
                m.d.comb += v["wptr_next"].eq(Mux(row_end, L("w_start"), v["wptr"] + 1))
            m.d.sync += v["first"].eq(issue["last"])
        with m.If(v["group_end"]):
            m.d.sync += [v["cooldown"].eq(issue["D"] - 1), g.eq(g + 1), ch0.eq(ch0 + L("Lg"))]
        with m.If(v["pos_end"]):
            m.d.sync += [g.eq(0), ch0.eq(0), out_base.eq(out_base + L("out_step"))]
            with m.If(ox == L("OWm1")):
                m.d.sync += [ox.eq(0), ix0.eq(L("ix0")), oy.eq(oy + 1), iy0.eq(iy0 + L("s")),
                             row_base.eq(row_base + L("row_step")),
                             pos_base.eq(row_base + L("row_step"))]
                if self.t.wino2d:       # past the tile's m rows (replaces the out_step above)
                    m.d.sync += out_base.eq(out_base + L("out_row"))
            with m.Else():
                m.d.sync += [ox.eq(ox + 1), ix0.eq(ix0 + L("sx")),
                             pos_base.eq(pos_base + L("col_step"))]
        with m.If(v["enter"]):               # after the above: the next layer's first tap
            N = lambda name: self.t.layer(name, v["nxt"])     # noqa: E731
            m.d.comb += ptr_next.eq(N("tap_start"))
            if self.t.wptr:
                m.d.comb += v["wptr_next"].eq(N("w_start"))
            m.d.sync += [v["layer"].eq(v["nxt"]), iy0.eq(N("iy0")), ix0.eq(N("ix0")),
                         row_base.eq(N("base0")), pos_base.eq(N("base0")), out_base.eq(0),
                         g.eq(0), ch0.eq(0), oy.eq(0), ox.eq(0),
                         v["cooldown"].eq(L("cool_end")), v["settle"].eq(L("settle_end"))]

    # ------------------------------------------------------------------ lanes and drain

    def _lanes(self, m, mems, a):
        """Stages B (read, multiply) and C (accumulate) of every lane; a group's last product
        copies the accumulators to the bank the drain reads. A Winograd layer's
        products come from :meth:`_wino_products` instead of B. Returns the drain's inputs."""
        t, P, A = self.t, self.lanes, self.t.alpha
        b = {"valid": Signal(name="b_valid"), "inside": Signal(name="b_inside"),
             "first": Signal(name="b_first"), "last": Signal(name="b_last"),
             "L": Signal(range(P + 1), name="b_L"), "out": Signal(range(t.out_max),
                                                                   name="b_out"),
             "cidx": Signal(range(t.cidx_max), name="b_cidx"),
             "layer": Signal(range(max(2, len(self.programs))), name="b_layer")}
        if t.winos:                      # a Winograd block's position and weight rows
            if not t.wino2d:
                b["kx"] = Signal(range(max(2, 1 << t.kx_bits)), name="b_kx")
            b["wptr"] = Signal(range(max(2, len(t.weights[0]))), name="b_wptr")
        if t.wino2d:
            b["ix0"] = Signal(signed(t.ix_bits), name="b_ix0")
        m.d.sync += [b[k].eq(a[k]) for k in b]
        data = Mux(b["layer"][0], mems["buf"][1][0].data, mems["buf"][0][0].data)
        x = Signal(signed(t.act_bits), name="b_x")
        m.d.comb += x.eq(Mux(b["inside"], data, 0))
        q = self._wino_products(m, mems, b, x)

        keys = ("valid", "first", "last", "L", "out", "cidx", "layer") + self._tile_keys
        c = {k: Signal.like(b[k], name=f"c_{k}") for k in keys}
        c["j"] = Signal(range(max(2, A)), name="c_j")
        direct = b["valid"] & ~t.layer("wino", b["layer"])
        with m.If(q["valid"]):
            m.d.sync += [c[k].eq(q[k]) for k in keys + ("j",)]
        with m.Else():
            m.d.sync += [c[k].eq(b[k]) for k in keys if k != "valid"]
            m.d.sync += [c["valid"].eq(direct), c["j"].eq(0)]
        x_op = Signal(signed(t.opd_bits), name="b_operand")
        m.d.comb += x_op.eq(Mux(q["valid"], q["v"], x))
        prod = [Signal(signed(t.opd_bits + t.weight_bits), name=f"c_prod{p}") for p in range(P)]
        m.d.sync += [prod[p].eq(x_op * mems["w"][p]) for p in range(P)]
        if t.pools:                     # a pool's input word, for its compare or sum
            c_x = Signal(signed(t.act_bits), name="c_x")
            m.d.sync += c_x.eq(x)

        is_mac, is_max = t.layer("mac", c["layer"]), t.layer("max", c["layer"])
        acc = [[Signal(signed(t.acc_bits), name=f"acc{p}_{j}") for j in range(A)]
               for p in range(P)]
        bank = [[Signal(signed(t.acc_bits), name=f"bank{p}_{j}") for j in range(A)]
                for p in range(P)]
        # a group's last product (j = α − 1 of its last block; the only one if not Winograd)
        start = Signal(name="c_start")
        m.d.comb += start.eq(c["valid"] & c["last"] & (c["j"] == t.layer("am1", c["layer"])))
        for p in range(P):
            # one adder per lane: a cycle's product goes to one running sum, j (a pool's and a
            # direct layer's: j = 0)
            a_p = acc[p][0]
            if A > 1:
                a_p = Signal(signed(t.acc_bits), name=f"acc{p}_sel")
                m.d.comb += a_p.eq(Array(acc[p])[c["j"]])
            nxt = Signal(signed(t.acc_bits), name=f"acc{p}_next" if A > 1 else f"acc{p}_0_next")
            summed = Mux(c["first"], 0, a_p) + prod[p]     # the bias: in the drain
            if t.pools:
                pooled = Mux(c["first"], c_x, Mux(is_max, Mux(c_x > a_p, c_x, a_p), a_p + c_x))
                m.d.comb += nxt.eq(Mux(is_mac, summed, pooled))
            else:
                m.d.comb += nxt.eq(summed)
            for j in range(A):
                mine = (c["j"] == j) if A > 1 else 1
                with m.If(c["valid"] & mine):
                    m.d.sync += acc[p][j].eq(nxt)
                with m.If(start):
                    m.d.sync += bank[p][j].eq(Mux(mine, nxt, acc[p][j]) if A > 1 else nxt)
        return {"start": start, "bank": bank, "L": c["L"], "out": c["out"], "cidx": c["cidx"],
                "layer": c["layer"], **{k: c[k] for k in self._tile_keys}}

    @property
    def _tile_keys(self):
        """What a group carries down the pipeline besides its lanes, channels and layer: a
        2-D tile's first column (the drain drops the outputs past the right edge)."""
        return ("ix0",) if self.t.wino2d else ()

    def _wino_products(self, m, mems, b, x):
        """A Winograd layer's blocks: stage B stores the α reads of a block; its last one
        starts the sequencer, which latches V = BT d (the input transform) and issues the α
        products j = 0 … α − 1 (weights read at the block's rows) one a cycle, in step with
        the next block's reads. Returns the products' stage (``valid``, ``v`` = V[j], …)."""
        t, A = self.t, self.t.alpha
        keys = ("first", "last", "L", "out", "cidx", "layer") + self._tile_keys
        q = {k: Signal.like(b[k], name=f"q_{k}") for k in keys}
        q["valid"], q["j"] = Signal(name="q_valid"), Signal(range(max(2, A)), name="q_j")
        q["v"] = Signal(signed(t.opd_bits), name="q_v")
        if not t.winos:
            return q
        sr = [Signal(signed(t.act_bits), name=f"tile{j}") for j in range(A)]
        V = [Signal(signed(t.opd_bits), name=f"v{j}") for j in range(A)]
        block_first = Signal(name="block_first")
        active, start = Signal(name="seq_active"), Signal(name="seq_start")
        pj = Signal(range(max(2, A)), name="seq_j")
        wbase = Signal.like(b["wptr"], name="seq_base")
        s = {k: Signal.like(b[k], name=f"seq_{k}") for k in keys}
        am1 = t.layer("am1", b["layer"])
        in_wino = b["valid"] & t.layer("wino", b["layer"])
        if t.wino2d:        # the block's entry: counted, a 2-D tile's column is not its index
            entry = Signal(range(max(2, A)), name="b_entry")
            with m.If(in_wino):
                m.d.sync += entry.eq(Mux(entry == am1, 0, entry + 1))
        else:
            entry = b["kx"]
        with m.If(in_wino):
            m.d.sync += Array(sr)[entry].eq(x)
            with m.If(entry == 0):
                m.d.sync += block_first.eq(b["first"])
        # V = BT d for every algorithm the engine has, the layer's one latched
        outs = []
        for k, (wino, _) in enumerate(t.winos):
            unit = _transform(m, f"input_transform{k}", wino.BT, signed(t.act_bits),
                              sr[:wino.reads])
            outs.append([unit.o.payload[j] if j < wino.alpha else 0 for j in range(A)])
        wk = t.layer("wk", s["layer"])
        with m.If(start):
            m.d.sync += [V[j].eq(Array(o[j] for o in outs)[wk]) for j in range(A)]
        # the sequencer: products j = 0 … α − 1 of the latched block
        m.d.sync += start.eq(0)
        with m.If(active):
            m.d.comb += mems["w_addr"].eq(wbase + pj)
            m.d.sync += pj.eq(pj + 1)
            with m.If(pj == t.layer("am1", s["layer"])):
                m.d.sync += active.eq(0)
        m.d.sync += [q["valid"].eq(active), q["j"].eq(pj)] + [q[k].eq(s[k]) for k in keys]
        with m.If(in_wino & (entry == am1)):
            m.d.sync += [active.eq(1), start.eq(1), pj.eq(0), wbase.eq(b["wptr"] - am1),
                         s["first"].eq(block_first), s["last"].eq(b["last"])]
            m.d.sync += [s[k].eq(b[k]) for k in keys if k not in ("first", "last")]
        m.d.comb += q["v"].eq(Array(V)[q["j"]])
        return q

    def _drain(self, m, mems, c, send, wrote, done):
        """The one requantizer draining the bank, lane d by lane, output i by output (a
        Winograd layer's m^dims outputs per lane, from the output transform of its α sums):
        R1 (select, add the bias read the cycle before, read M), R2 (times M), R3 (round,
        saturate, clamp to the layer's range), R4 (write the next buffer, or a logit to the
        argmax ``send``; a tile's outputs past the right edge (the column check) or the
        bottom one (``addr ≥ n_out``) are not written). ``done``: the last logit goes."""
        t, P = self.t, self.lanes
        active = Signal(name="d_active")
        d = Signal(range(max(2, P)), name="d")
        i = Signal(range(max(2, t.outs_max)), name="d_i")
        ioff = Signal(range(t.out_max), name="d_ioff")
        meta = {k: Signal.like(c[k], name=f"d_{k}")
                for k in ("L", "out", "cidx", "layer") + self._tile_keys}
        r = {"valid": Signal(name="r_valid"), "sel": Signal(signed(t.acc_bits), name="r_sel"),
             "addr": Signal(range(2 * t.out_max), name="r_addr"),
             "layer": Signal.like(meta["layer"], name="r_layer")}
        if t.wino2d:        # the output's column within its tile; inside the right edge
            col = Signal(range(max(2, t.outs_max)), name="d_col")
            r["inside"] = Signal(name="r_inside")
            m.d.sync += r["inside"].eq(meta["ix0"] + col < t.layer("col_lim", meta["layer"]))
        if mems["mult"] is not None:
            m.d.comb += mems["mult"].addr.eq(meta["cidx"] + d)
        # lane d's bias (channel cidx + d), read as d and the group come
        d_next = Signal.like(d, name="d_next")
        m.d.comb += [d_next.eq(d), mems["bias"].addr.eq(
            Mux(c["start"], c["cidx"], meta["cidx"]) + d_next)]
        bias = mems["bias"].data
        summed = self._drained(m, c, meta["layer"], d, i) + \
            (Mux(t.layer("mac", meta["layer"]), bias, 0) if t.pools else bias)
        m.d.sync += [r["valid"].eq(active), r["sel"].eq(summed), d.eq(d_next),
                     r["addr"].eq(meta["out"] + ioff + d), r["layer"].eq(meta["layer"])]
        if t.fused:         # a pooled tile's outputs: into the running max, the last written
            pooled = t.layer("pooled", meta["layer"])
            r["keep"], r["final"] = Signal(name="r_keep"), Signal(name="r_final")
            m.d.sync += [r["keep"].eq(pooled & (i != 0)),
                         r["final"].eq(~pooled | (i == t.layer("mm1", meta["layer"])))]
        with m.If(active):
            with m.If(i == t.layer("mm1", meta["layer"])):
                m.d.sync += [i.eq(0), ioff.eq(0)]
                m.d.comb += d_next.eq(d + 1)
                with m.If(d == meta["L"] - 1):
                    m.d.sync += active.eq(0)
            with m.Else():
                m.d.sync += [i.eq(i + 1), ioff.eq(ioff + t.layer("i_step", meta["layer"]))]
            if t.wino2d:        # a tile's row of m outputs ends: the next row's first (the
                m.d.sync += col.eq(col + 1)     # jump replaces the + CO above)
                with m.If((col == t.layer("mcm1", meta["layer"]))
                          | (i == t.layer("mm1", meta["layer"]))):
                    m.d.sync += col.eq(0)
                    with m.If(i != t.layer("mm1", meta["layer"])):
                        m.d.sync += ioff.eq(ioff + t.layer("out_jump", meta["layer"]))
        with m.If(c["start"]):           # after the above: a new group starts as one ends
            m.d.sync += [active.eq(1), i.eq(0), ioff.eq(0)]
            if t.wino2d:
                m.d.sync += col.eq(0)
            m.d.sync += [meta[k].eq(c[k]) for k in meta]
            m.d.comb += d_next.eq(0)

        # R2 multiplies by M (the product registered: a short path to the clock), R3 rounds,
        # saturates and clamps
        x = {"valid": Signal(name="x_valid"), "sel": Signal.like(r["sel"], name="x_sel"),
             "addr": Signal.like(r["addr"], name="x_addr"),
             "layer": Signal.like(r["layer"], name="x_layer"),
             **{k: Signal(name=f"x_{k}") for k in ("keep", "final") if k in r}}
        if all(p.requant for p in self.programs):   # (a stage's) every layer requantizes:
            del x["sel"]                            # no sum goes on as it is
        m.d.sync += [x[k].eq(r[k]) for k in x]
        if t.wino2d:        # an output past a 2-D tile's right edge is not written
            m.d.sync += x["valid"].eq(r["valid"] & r["inside"])
        lay = x["layer"]
        if not t.mult_values:
            multiplier = mems["mult"].data
        elif len(t.mult_values) == 1:
            multiplier = t.mult_values[0]
        else:
            multiplier = (tuple(t.mult_values), mems["mult"].data)
        y_req = requantize(m, r["sel"], multiplier, t.layer("shift", lay),
                           out_bits=t.req_bits, relu=False, name="requant", registered=True)
        y = Signal(signed(max(t.acc_bits, t.req_bits)), name="x_y")
        lo, hi = t.layer("lo", lay), t.layer("hi", lay)
        m.d.comb += y.eq(Mux(t.layer("requant", lay), y_req, x["sel"]) if "sel" in x else y_req)
        w = {"valid": Signal(name="w_valid"), "addr": Signal.like(r["addr"], name="w_addr"),
             "layer": Signal.like(lay, name="w_layer"),
             "data": Signal(signed(max(t.act_bits, self.send_bits)), name="w_data")}
        m.d.sync += [w["valid"].eq(x["valid"]), w["addr"].eq(x["addr"]), w["layer"].eq(lay),
                     w["data"].eq(clamp(y, lo, hi))]
        data = w["data"]
        if t.fused:         # the running max of a pooled tile's outputs, its last written
            keep, final = Signal(name="w_keep"), Signal(name="w_final")
            best = Signal.like(w["data"], name="w_max")
            data = Signal.like(w["data"], name="w_pooled")
            m.d.sync += [keep.eq(x["keep"]), final.eq(x["final"])]
            m.d.comb += data.eq(Mux(keep & (best > w["data"]), best, w["data"]))
            with m.If(w["valid"]):
                m.d.sync += best.eq(data)

        last = t.layer("last", w["layer"])
        write = w["valid"] & (w["addr"] < t.layer("n_out", w["layer"]))
        if t.fused:
            write &= final
        m.d.comb += [wrote["layer"].eq(w["layer"]), wrote["buf"].eq(write & ~last)]
        for k, (_, wr) in enumerate(mems["buf"]):
            target = write & ~last & (w["layer"][0] != k)
            with m.If(target):
                m.d.comb += [wr.addr.eq(w["addr"]), wr.data.eq(data), wr.en.eq(1)]
        # the last layer is direct: its logits come in class order, and the walker held its
        # groups until the argmax was free, so it takes each at once
        m.d.comb += [send.valid.eq(write & last), send.payload.eq(data),
                     done.eq(send.valid & (w["addr"] == self.programs[-1].n_out - 1))]

    def _drained(self, m, c, layer, d, i):
        """What R1 takes from lane ``d``'s bank before the bias: its sum (direct layers,
        pools), or output ``i`` of a Winograd layer, ``(AT M)_i / (2^k·q)`` (a shift, then
        q⁻¹ modulo 2^y_bits: exact, the sum being a multiple of 2^k·q)."""
        t = self.t
        lane = [Array(c["bank"][p][j] for p in range(self.lanes))[d] for j in range(t.alpha)]
        plain = Signal(signed(t.acc_bits), name="r1_sum")
        m.d.comb += plain.eq(lane[0])
        if not t.winos:
            return plain
        ys = []
        for k, (wino, y_bits) in enumerate(t.winos):
            unit = _transform(m, f"output_transform{k}", wino.AT, signed(t.acc_bits),
                              lane[:wino.alpha])
            P = Array(unit.o.payload[n] for n in range(wino.outs))[i]
            shifted = Signal(signed(unit.out_bits), name=f"r1_shifted{k}")
            m.d.comb += shifted.eq(P >> wino.k)
            if wino.q == 1:
                ys.append(shifted)
            else:
                inv = pow(wino.q, -1, 1 << y_bits)
                ys.append(const_times(m, shifted[:y_bits], inv, width=y_bits,
                                      name=f"r1_unscaled{k}"))
        y = Signal(signed(t.acc_bits), name="r1_wino")
        m.d.comb += y.eq(Array(ys)[t.layer("wk", layer)])
        return Mux(t.layer("wino", layer), y, plain)
