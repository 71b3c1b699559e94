"""CNN top on one shared multiplier array: every convolution on an F(m×m, r×r) Winograd
datapath and the dense classifier as a balanced-sparse MAC array, on the same ``P`` lanes.

The layers of one image run one after the other on the same multipliers, so latency is
``Σ work / P``, the bound of the multipliers in use (layer pipelines with lanes of their own
reach ``Σ work_l / P_l`` instead, far above it unless one layer dominates)::

    i ─> act banks ─> input transform ─> V (2 tiles) ─┐
         ▲                                            ├─> P lanes ─> output transform ─> requant
         └────────────── next layer's input ──────────┘   (U, V)      (incremental)        │
    features (P copies) <─ max-pool (one m×m tile = one pool window) <─────────────────────┘
    features ─> P lanes (entries of the balanced-sparse rows layout) ─> logits ─> argmax ─> o

Convolution ``l`` (``Cin → Cout``, zero padding ``p``), for every output tile ``(ty, tx)``:

1. *Input transform*, one V row per ``N`` cycles: the window's column ``v`` (``N`` pixels, one
   per activation bank: input row ``y`` lives in bank ``y mod N``) gives
   ``z = Σ_u BT[a, u]·d[u, v]`` and ``V[a, b] += BT[b, v]·z``; row ``a`` of ``V = BT d B`` for
   channel ``c`` goes to lanes ``(a mod R)·α + b`` at address ``(a div R)·Cin + c`` of one of
   two tile buffers (``P = R·α``).
2. *Products*: for ``k < Cout``, step ``s < S = α/R``, ``c < Cin``: lane ``(r, b)`` multiplies
   ``U[k, c, s·R + r, b]`` (``U = G g Gᵀ``, offline, in the lane's block RAM) by its ``V`` and
   accumulates over ``c``: every cycle every lane does one product. Only the channels ``c``
   whose filter ``W[k, c]`` is not all zero take part (pruned filters cost no cycle), so a
   ``k`` takes ``max(S·n_k, m²)`` cycles (the output path handles one value per cycle); its
   idle cycles come first, so that its last product ends them and the next ``k`` ends
   ``m²`` or more cycles later, whatever its ``n_k``.
3. *Output transform*, incremental: each step's ``R`` rows of ``M[k]`` give
   ``t = M[a, :] A`` and ``Y += AT[:, a] ⊗ t``; after the last step ``Y = AT M A``, the exact
   scale removal of :func:`slimgen.sw.winograd.hardware.remove_scale` (arithmetic modulo
   ``2^(w+k)``), bias, requantization and ReLU, one value per cycle, into the next layer's
   activation banks, or (last convolution) a running max over the tile, which is the
   max-pool window when the pool equals the tile ``m``.

Dense layer (:func:`slimgen.sw.sparse_layout.build_layout`, ``"rows"``): lane ``p`` streams its
words ``{value, run, last}`` from the same block RAM as its ``U``, reads the feature at the
decoded column from its own copy of the features, and writes logit ``row·P + p`` at each
``last``. Then the argmax (ties to the lowest index) and one result on ``o``.

Streams as :class:`slimgen.hw.network.Network`: ``i`` the ``H·W·C`` input codes of one image
in ``(y, x, c)`` order; ``o`` one ``{cls, logits}`` per image. The next image loads while the
later layers of the current one run.

Pace. The lanes are busy every cycle as long as each tile's products take at least as long as
its input transform (``Cin·α·N`` cycles) and every ``k`` has ``S·n_k ≥ m²``. With F(2×2,3×3)
that holds for ``P = α = 4`` (the digits CNN: 1,870 cycles against a bound of 1,621); with
``P = 8`` the transform and the output path set the pace (about 1,460 cycles, 1.8× its bound):
more lanes would need a transform of several rows per cycle and more requantizers.

Code. :meth:`CNN.elaborate` composes the stages: the convolution's in
:mod:`slimgen.hw.cnn_conv` (window reads, input transform, product issue, output transform,
requantizer, write or pool), the shared parts in :mod:`slimgen.hw.cnn_array` (memories, the
:class:`~slimgen.hw.cnn_array.Sequencer` of an image's phases, input loader, lanes, dense
stream, logits and argmax), their leaves in :mod:`slimgen.hw.cnn_datapath` and
:mod:`slimgen.hw.lib`.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .cnn_array import (ArrayWidths, Phase, Sequencer, array_memories, dense_stream,
                        input_loader, logits_and_argmax, mac_lanes)
from .cnn_conv import (delay_tags, input_transform, product_issue, requantize_output,
                       tile_output, tile_write, window_reads)
from .cnn_schedule import CNNSchedule
from .lib.act_memory import act_memory_attrs
from .lib.argmax import result_layout

__all__ = ["CNN"]


class CNN(wiring.Component):
    """A whole integer CNN (an :class:`slimgen.sw.integer_model.IntNetwork`, see
    :func:`slimgen.hw.cnn_schedule.cnn_parts`) on one shared array of ``lanes`` multipliers.

    Parameters are those of :class:`slimgen.hw.cnn_schedule.CNNSchedule` (checked there);
    ``schedule`` holds its shapes, memory contents and cycle counts. ``act_memory``: where
    each lane keeps its copy of the features (:mod:`slimgen.hw.lib.act_memory`).
    """

    def __init__(self, int_cnn, *, algorithm=None, lanes=4, engine="sparse", layout="rows",
                 act_memory="auto"):
        act_memory_attrs(act_memory)         # checked here, used by the lanes' memories
        self.act_memory = act_memory
        self.schedule = CNNSchedule(int_cnn, algorithm=algorithm, lanes=lanes, engine=engine,
                                    layout=layout)
        super().__init__({
            "i": In(stream.Signature(unsigned(int_cnn.input_bits))),
            "o": Out(stream.Signature(result_layout(int_cnn.n_classes, int_cnn.logit_bits))),
        })

    @property
    def multipliers(self):
        """Multipliers of the shared array (every layer runs on them)."""
        return self.schedule.lanes

    @property
    def interval(self):
        """Cycles between results with images back to back (the next image loads while the
        convolutions after the first run): :meth:`CNNSchedule.result_interval`."""
        return self.schedule.result_interval()

    def elaborate(self, platform):
        m = Module()
        sch = self.schedule
        words, ubases, dbase = sch.lane_words()
        widths = ArrayWidths.of(sch, [w for lane in words for w in lane[:dbase]])
        mems = array_memories(m, widths, words, banks=sch.n_win, act_memory=self.act_memory)
        m.submodules.sequencer = seq = Sequencer(n_layers=len(sch.convs))
        layer, start, phase = seq.layer, seq.start, seq.phase
        dense = Signal()                 # the lanes run the dense layer, not a convolution
        m.d.comb += dense.eq(phase == Phase.DENSE)

        # convolution, up to the lanes: window reads → V → products issued with their tags
        # (vfull's reset at start, set by the transform and clear by the products are added in
        # this order, the later winning in a cycle, as they always were; they never meet)
        window = window_reads(m, sch, widths, layer=layer, start=start, act_r=mems.act_r)
        input_transform(m, sch, widths, window, layer=layer, act_r=mems.act_r, v_w=mems.v_w)
        issue = product_issue(m, sch, widths, layer=layer, start=start, vfull=window.vfull,
                              ubases=ubases, n_words=len(words[0]))
        c1, c2 = delay_tags(m, issue.tags)

        # the lanes' operands: U and V of the convolution, or the dense layer's words
        layout = sch.sparse_layout
        d_e, d_go = dense_stream(m, phase, dense, stream_cycles=layout.stream_cycles)
        for w_r, v_r in zip(mems.w_r, mems.v_r):
            m.d.comb += [w_r.addr.eq(Mux(dense, dbase + d_e, issue.u_addr)), w_r.en.eq(1),
                         v_r.addr.eq(issue.v_addr), v_r.en.eq(1)]
        totals, rows = mac_lanes(m, mems, widths, layout=layout, phase=phase, dense=dense,
                                 d_go=d_go, d_e=d_e, conv=c1)
        dense_done, argmax_done = logits_and_argmax(m, self.o, totals, rows, layout=layout,
                                                    bias=sch.dense[0].b, phase=phase,
                                                    dense=dense, d_go=d_go)

        # convolution, after the lanes: Y one value per cycle → requantizer → banks or pool
        serial = tile_output(m, sch, widths, totals, c2, dense=dense)
        rq = requantize_output(m, sch, widths, serial, layer=layer)
        store, layer_done = tile_write(m, sch, widths, serial, rq, layer=layer, f_w=mems.f_w)
        # the loader yields the activation banks to the convolution's writes (store)
        in_full = input_loader(m, self.i, mems.act_w, in_shape=sch.in_shape,
                               release=window.release, store=store)

        m.d.comb += [seq.in_full.eq(in_full), seq.layer_done.eq(layer_done),
                     seq.result_valid.eq(self.o.valid), seq.dense_done.eq(dense_done),
                     seq.argmax_done.eq(argmax_done)]
        return m
