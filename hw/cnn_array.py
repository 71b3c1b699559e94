"""The shared parts of the CNN top (:class:`slimgen.hw.cnn.CNN`): the widths of its datapath,
its memories, the sequencer of an image's phases, the input loader, and the ``P`` multiplier
lanes the convolutions and the dense layer take turns on, with the dense layer's weight stream,
its logits and the argmax. The convolution's own stages are in :mod:`slimgen.hw.cnn_conv`.

The functions add logic to a module ``m`` and return its signals, as those of
:mod:`slimgen.hw.cnn_datapath` do; they take the schedule
(:class:`slimgen.hw.cnn_schedule.CNNSchedule`) where they need its tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import enum, memory, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.fixed import signed_bits
from slimgen.sw.winograd.hardware import scale_parts

from .cnn_schedule import filter_range
from .lib.act_memory import act_memory_attrs
from .lib.argmax import running_argmax
from .lib.mac_lane import mac_lane

__all__ = ["ArrayWidths", "BankWrite", "Memories", "Phase", "Sequencer", "array_memories",
           "const_array", "dense_stream", "input_loader", "logits_and_argmax", "mac_lanes",
           "table"]


def const_array(values, shape):
    """Nested lists of integers as nested :class:`Array` of ``Const(v, shape)``: a table the
    logic reads at signal indices, ``const_array(t, shape)[i][j]``."""
    if isinstance(values, (list, tuple)):
        return Array(const_array(v, shape) for v in values)
    return Const(int(values), shape)


def table(values):
    """``const_array`` of non-negative integers, each as wide as the largest needs."""
    return const_array(values, range(max(max(values), 0) + 1))


@dataclass(frozen=True)
class ArrayWidths:
    """Widths (bits) and depths of the array's datapath, from its schedule (:meth:`of`).

    Attributes
    ----------
    act_bits : int
        An activation code: the widest of the input codes and every convolution's outputs.
    z_bits, v_bits : int
        ``z = BT d`` and ``V = BT d B`` of a window of codes ``0 … xmax``:
        ``|z| ≤ xmax·‖BT‖``, ``|V| ≤ xmax·‖BT‖²``, ``‖BT‖`` the largest row sum of ``|BT|``.
    y_bits : int
        A convolution's exact ``Σ W·x`` (:func:`slimgen.hw.cnn_schedule.filter_range`), the
        widest over the layers.
    scale : tuple of int
        ``(p, k, q_odd)`` of the transform's scale ``p / (2^k·q_odd)``
        (:func:`slimgen.sw.winograd.hardware.scale_parts`).
    acc_w : int
        ``y_bits + k``: the transform domain, its arithmetic modulo ``2^acc_w``.
    u_bits, word_bits : int
        ``U = G g Gᵀ`` (the lanes' words before the dense stream), and a word of a lane's block
        RAM (a ``U`` or a dense word ``{value, run, last}``).
    lane_w, prod_bits : int
        A lane's running sum (a transform-domain ``M`` or a logit) and its product register
        (``U·V``, or a dense weight times a feature with a zero sign bit).
    act_depth, v_depth, n_feat : int
        Depth of an activation bank (the input regions of every convolution), of one of the
        two tile buffers of ``V`` (``S·max Cin``) and of a lane's copy of the features.
    max_cin, max_cout, max_tiles_h, max_tiles_w : int
        The largest ``Cin``, ``Cout``, tile rows and tile columns of the convolutions.
    """

    act_bits: int
    z_bits: int
    v_bits: int
    y_bits: int
    scale: tuple
    acc_w: int
    u_bits: int
    word_bits: int
    lane_w: int
    prod_bits: int
    act_depth: int
    v_depth: int
    n_feat: int
    max_cin: int
    max_cout: int
    max_tiles_h: int
    max_tiles_w: int

    @classmethod
    def of(cls, sch, u_words):
        """The widths of schedule ``sch``; ``u_words``: every lane's ``U`` words."""
        q, BT, shp = sch.qmodel, sch.form.rows.BT.matrix, sch.layer_shapes
        act_bits = max([q.input_bits] + [c.out_bits for c in sch.convs])
        bt_norm = max(sum(abs(v) for v in row) for row in BT)
        zmax = ((1 << max(c.in_bits for c in sch.convs)) - 1) * bt_norm
        vmax = zmax * bt_norm
        y_bits = max(signed_bits(*filter_range(c.W, c.in_bits)) for c in sch.convs)
        scale = scale_parts(sch.form.scale)
        acc_w = y_bits + scale[1]
        u_bits = signed_bits(min(u_words), max(u_words))
        v_bits = signed_bits(-vmax, vmax)
        lay = sch.sparse_layout
        return cls(
            act_bits=act_bits, z_bits=signed_bits(-zmax, zmax), v_bits=v_bits, y_bits=y_bits,
            scale=scale, acc_w=acc_w, u_bits=u_bits, word_bits=max(u_bits, lay.word_bits),
            lane_w=max(acc_w, q.logit_bits),
            prod_bits=max(u_bits + v_bits, lay.value_bits + act_bits + 1),
            act_depth=sch.region_bases()[1], v_depth=sch.steps * max(s[0] for s in shp),
            n_feat=sch.dense[0].n_in, max_cin=max(s[0] for s in shp),
            max_cout=max(s[3] for s in shp), max_tiles_h=max(s[6] for s in shp),
            max_tiles_w=max(s[7] for s in shp))


class Memories(NamedTuple):
    """The ports of the array's memories: ``act_w``/``act_r`` of the ``N`` activation banks;
    per lane ``v_w``/``v_r`` of its two tile buffers of ``V``, ``w_r`` of its words (``U`` and
    dense) and ``f_w``/``f_r`` of its copy of the features."""
    act_w: list
    act_r: list
    v_w: list
    v_r: list
    w_r: list
    f_w: list
    f_r: list


def array_memories(m, widths, words, *, banks, act_memory="auto"):
    """The ``banks`` activation banks (``act{b}``) and, per lane of ``words`` (its block RAM's
    contents), its V buffers (``v{lane}``, ``2·v_depth``), words (``w{lane}``) and features
    (``f{lane}``; in block RAM with ``act_memory`` ``"bram"``, :mod:`slimgen.hw.lib.act_memory`),
    as submodules of ``m``; returns their :class:`Memories` ports."""
    ports = Memories([], [], [], [], [], [], [])
    for b in range(banks):
        mem = memory.Memory(shape=unsigned(widths.act_bits), depth=widths.act_depth, init=[])
        m.submodules[f"act{b}"] = mem
        ports.act_w.append(mem.write_port())
        ports.act_r.append(mem.read_port())
    mask = (1 << widths.word_bits) - 1
    for lane, lane_words in enumerate(words):
        vm = memory.Memory(shape=signed(widths.v_bits), depth=2 * widths.v_depth, init=[])
        wm = memory.Memory(shape=unsigned(widths.word_bits), depth=len(lane_words),
                           init=[w & mask for w in lane_words])
        fm = memory.Memory(shape=unsigned(widths.act_bits), depth=widths.n_feat, init=[],
                           attrs=act_memory_attrs(act_memory))
        m.submodules[f"v{lane}"], m.submodules[f"w{lane}"] = vm, wm
        m.submodules[f"f{lane}"] = fm
        ports.v_w.append(vm.write_port())
        ports.v_r.append(vm.read_port())
        ports.w_r.append(wm.read_port())
        ports.f_w.append(fm.write_port())
        ports.f_r.append(fm.read_port())
    return ports


class Phase(enum.Enum, shape=range(5)):
    """The phases of one image on the array (:class:`Sequencer`)."""
    IDLE = 0        # loading the image
    CONV = 1        # the convolutions, one after the other
    WAIT = 2        # until the previous result has left on ``o``
    DENSE = 3       # the dense layer's weight stream
    ARGMAX = 4      # one logit per cycle into the running argmax


class Sequencer(wiring.Component):
    """The phases of one image::

        IDLE ─in_full─> CONV (layer 0) ─layer_done─> CONV (layer + 1) … ─layer_done (last)─>
        WAIT ─~result_valid─> DENSE ─dense_done─> ARGMAX ─argmax_done─> IDLE

    Parameters
    ----------
    n_layers : int
        Convolutions, at least 1.

    Attributes
    ----------
    in_full, layer_done, dense_done, argmax_done : In(1)
        The image is loaded; the convolution's last output is written; the dense layer's
        logits are in; the argmax has seen the last logit (each for one cycle but ``in_full``).
    result_valid : In(1)
        The previous result still waits on ``o`` (the dense layer would overwrite its logits).
    phase : Out(Phase)
    layer : Out(range(n_layers))
        The convolution running in CONV.
    start : Out(1)
        One cycle as each convolution begins.
    """

    def __init__(self, *, n_layers):
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
            raise ValueError(f"Layer count must be a positive integer, not {n_layers!r}")
        self.n_layers = n_layers
        super().__init__({
            "in_full": In(1), "layer_done": In(1), "result_valid": In(1),
            "dense_done": In(1), "argmax_done": In(1),
            "phase": Out(Phase), "layer": Out(range(n_layers)), "start": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        phase, layer, start = self.phase, self.layer, self.start
        with m.Switch(phase):
            with m.Case(Phase.IDLE):
                with m.If(self.in_full):
                    m.d.sync += [phase.eq(Phase.CONV), layer.eq(0), start.eq(1)]
            with m.Case(Phase.CONV):
                with m.If(self.layer_done):
                    with m.If(layer == self.n_layers - 1):
                        m.d.sync += phase.eq(Phase.WAIT)
                    with m.Else():
                        m.d.sync += [layer.eq(layer + 1), start.eq(1)]
            with m.Case(Phase.WAIT):
                with m.If(~self.result_valid):
                    m.d.sync += phase.eq(Phase.DENSE)
            with m.Case(Phase.DENSE):
                with m.If(self.dense_done):
                    m.d.sync += phase.eq(Phase.ARGMAX)
            with m.Default():            # ARGMAX (the codes past it are never entered)
                with m.If(self.argmax_done):
                    m.d.sync += phase.eq(Phase.IDLE)
        with m.If(start):
            m.d.sync += start.eq(0)
        return m


class BankWrite(NamedTuple):
    """One write into the activation banks: ``en``, ``bank``, ``addr``, ``data``."""
    en: object
    bank: object
    addr: object
    data: object


def input_loader(m, i, act_w, *, in_shape, release, store):
    """The image from stream ``i`` (``H·W·C`` codes in ``(y, x, c)`` order) into region 0 of
    the activation banks: row ``y`` into bank ``y mod N`` at ``(y div N)·W·C + x·C + c``.

    ``store`` (:class:`BankWrite`), a convolution's output, takes the banks first: ``i`` waits
    while it writes. Returns ``in_full``, set after the last code and cleared by ``release``
    (the first convolution has read the image), so the next image loads meanwhile."""
    N = len(act_w)
    c0, h0, w0 = in_shape
    in_y, in_pos, in_full = Signal(range(h0)), Signal(range(w0 * c0)), Signal()
    in_bank = table([y % N for y in range(h0)])[in_y]
    in_row = table([(y // N) * w0 * c0 for y in range(h0)])[in_y]
    m.d.comb += i.ready.eq(~in_full & ~store.en)
    in_take = i.valid & i.ready
    with m.If(in_take):
        m.d.sync += in_pos.eq(in_pos + 1)
        with m.If(in_pos == w0 * c0 - 1):
            m.d.sync += [in_pos.eq(0), in_y.eq(in_y + 1)]
            with m.If(in_y == h0 - 1):
                m.d.sync += [in_y.eq(0), in_full.eq(1)]
    with m.If(release):
        m.d.sync += in_full.eq(0)
    for b in range(N):
        m.d.comb += [
            act_w[b].en.eq((store.en & (store.bank == b)) | (in_take & (in_bank == b))),
            act_w[b].addr.eq(Mux(store.en, store.addr, in_row + in_pos)),
            act_w[b].data.eq(Mux(store.en, store.data, i.payload)),
        ]
    return in_full


def dense_stream(m, phase, dense, *, stream_cycles):
    """The dense layer's word counter ``d_e`` (``0 … stream_cycles − 1`` in the DENSE
    phase, ``dense``; reset in WAIT); returns ``(d_e, d_go)``, ``d_go`` true while it runs."""
    d_e = Signal(range(stream_cycles + 1))
    d_go = dense & (d_e < stream_cycles)
    with m.If(phase == Phase.WAIT):
        m.d.sync += d_e.eq(0)
    with m.If(d_go):
        m.d.sync += d_e.eq(d_e + 1)
    return d_e, d_go


def _dense_decode(m, lane, word, f_r, *, layout, n_feat, phase, d_go, d_e):
    """Dense stage 1 of ``lane``: its word ``{value, run, last}`` of the ``"rows"`` layout
    gives the feature's column (``run`` columns past the last one, or past −1 at a row's
    start), read from the lane's copy of the features. Returns the stage-2 registers
    ``{valid, first, last, value}``."""
    vb, ib = layout.value_bits, layout.index_bits
    value = word[:vb].as_signed()
    run = word[vb:vb + ib] if ib else Const(0, 1)
    last = word[vb + ib]
    in_lane = Signal(name=f"d1v{lane}")
    n_words = len(layout.words[lane]) if lane < layout.lanes else 0
    m.d.sync += in_lane.eq(d_go & (d_e < n_words))
    col, row_start = Signal(range(n_feat + 1), name=f"col{lane}"), \
        Signal(init=1, name=f"rs{lane}")
    new_col = Signal(range(n_feat + 2), name=f"ncol{lane}")
    m.d.comb += new_col.eq(Mux(row_start, 0, col + 1) + run)
    m.d.comb += [f_r.addr.eq(new_col), f_r.en.eq(1)]
    with m.If(phase == Phase.WAIT):
        m.d.sync += row_start.eq(1)
    with m.If(in_lane):
        m.d.sync += [col.eq(new_col), row_start.eq(last)]
    d2 = {"valid": Signal(name=f"d2v{lane}"), "first": Signal(name=f"d2f{lane}"),
          "last": Signal(name=f"d2l{lane}"), "value": Signal(signed(vb), name=f"d2x{lane}")}
    m.d.sync += [d2["valid"].eq(in_lane), d2["first"].eq(row_start), d2["last"].eq(last),
                 d2["value"].eq(value)]
    return d2


def mac_lanes(m, mems, widths, *, layout, phase, dense, d_go, d_e, conv):
    """The ``P`` lanes: a registered product and a running sum (:func:`mac_lane`) on ``U·V``
    of a convolution (its tags ``conv`` ``{valid, first, last}`` at stage 1, the word and
    ``V`` read) or a dense weight times a feature (stage 2, after :func:`_dense_decode`).

    Returns ``(totals, rows)``: each lane's running sum, and per lane ``(done, row)`` for
    the logits: ``done`` a dense row's last product is in ``total``, ``row`` the caller's
    counter of the lane's rows."""
    u_bits, v_bits, act_bits = widths.u_bits, widths.v_bits, widths.act_bits
    vb = layout.value_bits
    totals, rows = [], []
    for lane, (w_r, v_r, f_r) in enumerate(zip(mems.w_r, mems.v_r, mems.f_r)):
        d2 = _dense_decode(m, lane, w_r.data, f_r, layout=layout, n_feat=widths.n_feat,
                           phase=phase, d_go=d_go, d_e=d_e)
        # multiplier operands: conv at stage 1, dense at stage 2 (features have no sign bit)
        op_a = Signal(signed(max(u_bits, vb)), name=f"opa{lane}")
        op_b = Signal(signed(max(v_bits, act_bits + 1)), name=f"opb{lane}")
        m.d.comb += [op_a.eq(Mux(dense, d2["value"], w_r.data[:u_bits].as_signed())),
                     op_b.eq(Mux(dense, Cat(f_r.data, 0).as_signed(), v_r.data))]
        pv, pf, pl = (Signal(name=f"p{x}{lane}") for x in "vfl")
        m.d.sync += [pv.eq(Mux(dense, d2["valid"], conv["valid"])),
                     pf.eq(Mux(dense, d2["first"], conv["first"])),
                     pl.eq(Mux(dense, d2["last"], conv["last"]))]
        total, _ = mac_lane(m, op_a, op_b, first=pf, en=pv, shape=signed(widths.lane_w),
                            prod_shape=signed(widths.prod_bits), name=f"lane{lane}")
        totals.append(total)
        rows.append((pv & pl, Signal(range(layout.rows_per_lane + 1), name=f"row{lane}")))
    return totals, rows


def logits_and_argmax(m, o, totals, rows, *, layout, bias, phase, dense, d_go):
    """Logit ``row·P + p`` (``P`` the layout's lanes) is lane ``p``'s sum plus its ``bias``
    at the lane's ``row``-th row end; after the stream's pipeline (4 cycles), one logit per
    cycle into the running argmax (ties to the lowest index) and one result on ``o``.
    Returns ``(dense_done, argmax_done)``."""
    logits, n_classes = o.payload.logits, len(bias)
    for lane, ((done, row), total) in enumerate(zip(rows, totals)):
        with m.If(phase == Phase.WAIT):
            m.d.sync += row.eq(0)
        with m.If(dense & done):
            m.d.sync += row.eq(row + 1)
            for k in range(layout.rows_per_lane):
                out = k * layout.lanes + lane
                if out < n_classes:
                    with m.If(row == k):
                        m.d.sync += logits[out].eq(total + int(bias[out]))
    d_tail = Signal(range(8))
    with m.If(phase == Phase.WAIT):
        m.d.sync += d_tail.eq(0)
    with m.If(dense & ~d_go):
        m.d.sync += d_tail.eq(d_tail + 1)
    a_idx = Signal(range(n_classes))
    argmax = phase == Phase.ARGMAX
    running_argmax(m, logits[a_idx], a_idx, argmax, o.payload.cls)
    with m.If(argmax):
        m.d.sync += a_idx.eq(a_idx + 1)
        with m.If(a_idx == n_classes - 1):
            m.d.sync += [a_idx.eq(0), o.valid.eq(1)]
    with m.If(o.valid & o.ready):
        m.d.sync += o.valid.eq(0)
    return dense & (d_tail == 4), argmax & (a_idx == n_classes - 1)
