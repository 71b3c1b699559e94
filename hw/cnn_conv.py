"""The convolution stages of the CNN top (:class:`slimgen.hw.cnn.CNN`), in the order a tile
goes through them (the formulas are in :mod:`slimgen.hw.cnn`)::

    window_reads ─> input_transform ─> V (2 tile buffers, vfull) ─> product_issue ─> delay_tags
        ─> lanes (slimgen.hw.cnn_array) ─> tile_output ─> requantize_output ─> tile_write

The functions add logic to a module ``m`` and return its signals; they take the schedule
(:class:`slimgen.hw.cnn_schedule.CNNSchedule`) for its per-layer tables, the array's
:class:`slimgen.hw.cnn_array.ArrayWidths`, and the sequencer's ``layer`` and ``start``.
"""

from __future__ import annotations

from typing import NamedTuple

from amaranth.hdl import Array, Mux, Signal, signed

from slimgen.sw.fixed import signed_bits

from .cnn_array import BankWrite, const_array, table
from .cnn_datapath import input_transform_row, output_transform, window_tables
from .lib.const_mul import const_times
from .lib.requantizer import requantize

__all__ = ["Issue", "Serial", "Window", "delay_tags", "input_transform", "product_issue",
           "requantize_output", "tile_output", "tile_write", "window_reads"]


def _window_tables(sch, widths):
    """:func:`window_tables` of every convolution of ``sch``."""
    layers = [(c, h, w, conv.padding, base) for (c, h, w, *_), conv, base
              in zip(sch.layer_shapes, sch.convs, sch.region_bases()[0])]
    return window_tables(layers, tile=sch.m, window=sch.n_win, tiles_h=widths.max_tiles_h,
                         tiles_w=widths.max_tiles_w)


class Window(NamedTuple):
    """The window column whose bank reads arrive this cycle, and the tile buffers' state.

    ``vfull``: bit ``b`` set while tile buffer ``b`` holds a whole tile's ``V`` (set by
    :func:`input_transform`, cleared by :func:`product_issue`); ``release``: the first
    convolution issues its last read of the image. The others are the registered position
    of the reads issued the cycle before (their data arrives with them): ``valid``, ``buf``
    (the tile buffer), ``a``, ``v``, ``c``, ``ty`` (row ``a`` of ``V``, window column ``v``,
    input channel, tile row), ``xok`` (the column is inside the image) and ``last`` (the
    tile's last read)."""
    vfull: Signal
    release: object
    valid: Signal
    buf: Signal
    a: Signal
    v: Signal
    c: Signal
    ty: Signal
    xok: Signal
    last: Signal


def window_reads(m, sch, widths, *, layer, start, act_r):
    """The input transform's walk: for each tile ``(ty, tx)``, channel ``c``, row ``a`` of
    ``V`` and window column ``v``, one read of the ``N`` banks per cycle (bank ``b`` at the
    row address of tile row ``ty``, plus ``x·Cin + c``), while the tile buffer it fills is
    not full. Returns its :class:`Window`."""
    shp, al, N, mt = sch.layer_shapes, sch.alpha, sch.n_win, sch.m
    th_max, tw_max, act_depth = widths.max_tiles_h, widths.max_tiles_w, widths.act_depth
    cin_l = table([s[0] for s in shp])[layer]
    th_l = table([s[6] for s in shp])[layer]
    tw_l = table([s[7] for s in shp])[layer]
    vfull = Signal(2)
    t_busy, t_buf = Signal(), Signal()
    t_ty, t_tx = Signal(range(th_max)), Signal(range(tw_max))
    t_x0 = Signal(range(tw_max * mt + 1))          # tx·m, the tile's first column
    t_c, t_a, t_v = Signal(range(widths.max_cin)), Signal(range(al)), Signal(range(N))
    t_issue = Signal()
    m.d.comb += t_issue.eq(t_busy & ~vfull.bit_select(t_buf, 1))
    tabs = _window_tables(sch, widths)
    xi = Signal(range(tw_max * mt + N))
    m.d.comb += xi.eq(t_x0 + t_v)
    ra_sel = const_array(tabs["raddr"], range(act_depth + 1))[layer][t_ty]
    xc_sel = const_array(tabs["xcol"], range(act_depth + 1))[layer][xi]
    for b in range(N):
        m.d.comb += [act_r[b].addr.eq(ra_sel[b] + xc_sel + t_c), act_r[b].en.eq(1)]
    t1 = {name: Signal(range(n), name=f"t1_{name}") for name, n in (
        ("a", al), ("v", N), ("c", widths.max_cin), ("ty", th_max))}
    t1_valid, t1_buf, t1_xok, t1_last = Signal(), Signal(), Signal(), Signal()
    last_win = (t_c == cin_l - 1) & (t_a == al - 1) & (t_v == N - 1)
    last_tile = (t_tx == tw_l - 1) & (t_ty == th_l - 1)
    m.d.sync += [t1_valid.eq(t_issue), t1_buf.eq(t_buf), t1_last.eq(t_issue & last_win),
                 t1_xok.eq(const_array(tabs["xok"], 1)[layer][xi]),
                 t1["a"].eq(t_a), t1["v"].eq(t_v), t1["c"].eq(t_c), t1["ty"].eq(t_ty)]
    with m.If(start):
        m.d.sync += [t_busy.eq(1), t_buf.eq(0), t_ty.eq(0), t_tx.eq(0), t_x0.eq(0),
                     t_c.eq(0), t_a.eq(0), t_v.eq(0), vfull.eq(0)]
    with m.If(t_issue):
        m.d.sync += t_v.eq(t_v + 1)
        with m.If(t_v == N - 1):
            m.d.sync += [t_v.eq(0), t_a.eq(t_a + 1)]
            with m.If(t_a == al - 1):
                m.d.sync += [t_a.eq(0), t_c.eq(t_c + 1)]
                with m.If(t_c == cin_l - 1):
                    m.d.sync += [t_c.eq(0), t_buf.eq(~t_buf), t_tx.eq(t_tx + 1),
                                 t_x0.eq(t_x0 + mt)]
                    with m.If(t_tx == tw_l - 1):
                        m.d.sync += [t_tx.eq(0), t_x0.eq(0), t_ty.eq(t_ty + 1)]
                        with m.If(t_ty == th_l - 1):
                            m.d.sync += t_busy.eq(0)
    release = t_issue & last_win & last_tile & (layer == 0)
    return Window(vfull, release, t1_valid, t1_buf, t1["a"], t1["v"], t1["c"], t1["ty"],
                  t1_xok, t1_last)


def input_transform(m, sch, widths, window, *, layer, act_r, v_w):
    """The window column read by :func:`window_reads` (zero outside the image, window row
    ``u`` from bank ``(y0 + u) mod N``) → ``z`` → row ``a`` of ``V``
    (:func:`input_transform_row`); at ``v = N − 1`` the row goes to lanes ``(a mod R)·α + b``
    at ``(a div R)·Cin + c`` of the window's tile buffer, whose ``vfull`` bit the tile's last
    column sets."""
    shp, al, N, R = sch.layer_shapes, sch.alpha, sch.n_win, sch.rows_per_step
    VB = widths.v_depth
    tabs = _window_tables(sch, widths)
    rows_ok = const_array(tabs["rok"], 1)[layer]
    banks_u = const_array(tabs["rbank"], range(N))[layer]
    datas = Array(r.data for r in act_r)
    d = []
    for u in range(N):
        du = Signal(signed(widths.act_bits + 1), name=f"d{u}")
        m.d.comb += du.eq(Mux(window.xok & rows_ok[window.ty][u],
                              datas[banks_u[window.ty][u]], 0))
        d.append(du)
    vrow = input_transform_row(m, d, window.a, window.v, window.valid, sch.form.rows.BT.matrix,
                               widths.z_bits, widths.v_bits)
    step_addr = const_array([[(a // R) * cin for a in range(al)] for cin, *_ in shp],
                            range(VB + 1))[layer][window.a]
    for lane, port in enumerate(v_w):
        rr, b = lane // al, lane % al
        m.d.comb += [port.addr.eq(Mux(window.buf, VB, 0) + step_addr + window.c),
                     port.data.eq(vrow[b]),
                     port.en.eq(window.valid & (window.v == N - 1)
                                & (window.a % R == rr if R > 1 else 1))]
    with m.If(window.last):
        m.d.sync += window.vfull.bit_select(window.buf, 1).eq(1)


class Issue(NamedTuple):
    """The products issued this cycle: ``u_addr`` and ``v_addr``, the addresses of ``U`` (in
    the lanes' words) and ``V`` (in the tile buffers), and ``tags`` ``{valid, first, last, s,
    k, ty, tx, final}`` (a product counts; the first and last of its sum over ``c``; its step,
    output channel, tile; the convolution's last product)."""
    u_addr: object
    v_addr: object
    tags: dict


def product_issue(m, sch, widths, *, layer, start, vfull, ubases, n_words):
    """The products of each full tile buffer: for ``k < Cout``, ``s < S`` and the channels
    ``c`` of :attr:`CNNSchedule.filters` ``[layer][k]``, one ``U·V`` per lane per cycle; ``k``
    takes :meth:`CNNSchedule.inner_cycles`, idle cycles first. After the tile's last ``k`` its
    ``vfull`` bit is cleared. ``ubases``: each convolution's first word; ``n_words``: a lane's
    words. Returns the :class:`Issue`."""
    shp, S, L, VB = sch.layer_shapes, sch.steps, len(sch.convs), widths.v_depth
    c_max, k_max = widths.max_cin, widths.max_cout
    cout_l = table([s[3] for s in shp])[layer]
    th_l = table([s[6] for s in shp])[layer]
    tw_l = table([s[7] for s in shp])[layer]
    p_busy, p_buf = Signal(), Signal()
    p_k = Signal(range(k_max))
    p_n = Signal(range(max(sch.inner_cycles(j, k) for j in range(L) for k in range(shp[j][3]))))
    p_s, p_c = Signal(range(S)), Signal(range(c_max))       # p_c: index into the filters

    def by_channel(f):
        vals = [[f(j, k) if k < shp[j][3] else 0 for k in range(k_max)] for j in range(L)]
        return const_array(vals, range(max(max(v) for v in vals) + 1))[layer][p_k]
    n_k = by_channel(lambda j, k: len(sch.filters[j][k]))
    inner_k = by_channel(sch.inner_cycles)

    # a k's idle cycles (S·n_k < m²) come first: its last product ends its window, so the
    # ends of consecutive k are inner_k ≥ m² cycles apart, the m² cycles the output path
    # takes to send a tile (idle cycles last would leave S·n_(k+1) < m² after a full k)
    def idle(j, k):
        return sch.inner_cycles(j, k) - S * len(sch.filters[j][k])
    any_idle = any(idle(j, k) for j in range(L) for k in range(shp[j][3]))
    chans = [[sch.filters[j][k] if k < shp[j][3] else [] for k in range(k_max)]
             for j in range(L)]
    p_ch = const_array([[cs + [0] * (c_max - len(cs)) for cs in row] for row in chans],
                       range(c_max))[layer][p_k][p_c]
    p_sc = const_array([[s * shp[j][0] for s in range(S)] for j in range(L)],
                       range(VB))[layer][p_s]
    p_ua = Signal(range(n_words + 1))
    p_ty, p_tx = Signal(range(widths.max_tiles_h)), Signal(range(widths.max_tiles_w))
    p_go = Signal()
    m.d.comb += p_go.eq(p_busy & vfull.bit_select(p_buf, 1))
    p_valid = p_go & (p_n >= by_channel(idle)) if any_idle else p_go
    with m.If(start):
        m.d.sync += [p_busy.eq(1), p_buf.eq(0), p_k.eq(0), p_n.eq(0), p_s.eq(0), p_c.eq(0),
                     p_ua.eq(0), p_ty.eq(0), p_tx.eq(0)]
    last_k = p_k == cout_l - 1
    p_last_tile = (p_tx == tw_l - 1) & (p_ty == th_l - 1)
    with m.If(p_go):
        m.d.sync += p_n.eq(p_n + 1)
        with m.If(p_valid):
            m.d.sync += [p_ua.eq(p_ua + 1), p_c.eq(p_c + 1)]
            with m.If(p_c == n_k - 1):
                m.d.sync += [p_c.eq(0), p_s.eq(p_s + 1)]
        with m.If(p_n == inner_k - 1):
            m.d.sync += [p_n.eq(0), p_s.eq(0), p_c.eq(0), p_k.eq(p_k + 1)]
            with m.If(last_k):
                m.d.sync += [p_k.eq(0), p_ua.eq(0), p_buf.eq(~p_buf),
                             vfull.bit_select(p_buf, 1).eq(0), p_tx.eq(p_tx + 1)]
                with m.If(p_tx == tw_l - 1):
                    m.d.sync += [p_tx.eq(0), p_ty.eq(p_ty + 1)]
                    with m.If(p_ty == th_l - 1):
                        m.d.sync += p_busy.eq(0)
    tags = {"valid": p_valid, "first": p_c == 0, "last": p_c == n_k - 1, "s": p_s,
            "k": p_k, "ty": p_ty, "tx": p_tx,
            "final": last_k & p_last_tile & (p_s == S - 1) & (p_c == n_k - 1)}
    return Issue(table(ubases)[layer] + p_ua, Mux(p_buf, VB, 0) + p_sc + p_ch, tags)


def delay_tags(m, tags):
    """The tags of a product through issue → memory → product → accumulate: registered once
    (``c1``, the cycle the lanes' operands are read) and twice (``c2``, the cycle its sum is
    in the lanes' ``total``). Returns ``(c1, c2)``; ``c2`` has no ``first``."""
    stages = [tags]
    for j in range(2):
        nxt = {}
        for name, sig in stages[-1].items():
            if j == 1 and name == "first":
                continue             # only the accumulators (stage 1) start a sum
            reg = Signal.like(sig, name=f"c{j + 1}_{name}") if isinstance(sig, Signal) \
                else Signal(sig.shape(), name=f"c{j + 1}_{name}")
            m.d.sync += reg.eq(sig)
            nxt[name] = reg
        stages.append(nxt)
    return stages[1], stages[2]


class Serial(NamedTuple):
    """A tile's ``Y`` for one ``k``, one value per cycle: ``valid``, ``n`` (its index,
    row-major in the tile), ``value``, and the tile's ``k``, ``ty``, ``tx`` and ``final``."""
    valid: Signal
    n: Signal
    value: object
    k: Signal
    ty: Signal
    tx: Signal
    final: Signal


def tile_output(m, sch, widths, totals, c2, *, dense):
    """The output transform of the lanes' ``M`` (their ``totals`` modulo ``2^acc_w``) at
    each step's last product (:func:`output_transform`); after the last step the ``m²``
    values of ``Y`` are held and sent one per cycle. Returns the :class:`Serial`."""
    mt, S, acc_w = sch.m, sch.steps, widths.acc_w
    mvals = [total[:acc_w].as_signed() for total in totals]
    conv_last = ~dense & c2["valid"] & c2["last"]
    yfin = output_transform(m, mvals, c2["s"], conv_last, sch.form.rows.AT.matrix,
                            sch.rows_per_step, acc_w)
    hold = [Signal(signed(acc_w), name=f"hold{j}") for j in range(mt * mt)]
    h_k, h_ty, h_tx, h_final = Signal.like(c2["k"]), Signal.like(c2["ty"]), \
        Signal.like(c2["tx"]), Signal()
    ser_busy, ser_n = Signal(), Signal(range(mt * mt))
    with m.If(conv_last & (c2["s"] == S - 1)):
        m.d.sync += [h.eq(y) for h, y in zip(hold, yfin)]
        m.d.sync += [h_k.eq(c2["k"]), h_ty.eq(c2["ty"]), h_tx.eq(c2["tx"]),
                     h_final.eq(c2["final"]), ser_busy.eq(1), ser_n.eq(0)]
    with m.Elif(ser_busy):
        m.d.sync += ser_n.eq(ser_n + 1)
        with m.If(ser_n == mt * mt - 1):
            m.d.sync += ser_busy.eq(0)
    return Serial(ser_busy, ser_n, Array(hold)[ser_n], h_k, h_ty, h_tx, h_final)


def requantize_output(m, sch, widths, serial, *, layer):
    """One output per cycle: the exact scale removal of
    :func:`slimgen.sw.winograd.hardware.remove_scale` (``y = ((Y·p) >> k)·q_odd⁻¹`` modulo
    ``2^y_bits``), the bias of channel ``k``, and the layer's requantizer with ReLU."""
    sp, sk, sq = widths.scale
    acc_w, y_bits = widths.acc_w, widths.y_bits
    t0 = const_times(m, serial.value, sp, width=acc_w, name="sc_p") if sp != 1 \
        else serial.value
    tk = Signal(signed(y_bits), name="sc_k")
    m.d.comb += tk.eq(t0 >> sk)
    y = const_times(m, tk, pow(sq, -1, 1 << y_bits), width=y_bits, name="sc_q") \
        if sq != 1 else tk
    bias_bits = max(signed_bits(int(c.b.min()), int(c.b.max())) for c in sch.convs)
    biased = Signal(signed(max(y_bits, bias_bits) + 1))
    bias = const_array([list(c.b) for c in sch.convs], signed(bias_bits))
    m.d.comb += biased.eq(y + bias[layer][serial.k])
    outs = [requantize(m, biased, c.multiplier, c.shift, out_bits=c.out_bits, relu=True,
                       name=f"rq{j}") for j, c in enumerate(sch.convs)]
    rq = Signal(widths.act_bits)
    m.d.comb += rq.eq(Array(outs)[layer] if len(outs) > 1 else outs[0])
    return rq


def _next_layer_store(m, sch, widths, *, layer, oy, ox, k, value, valid):
    """Output ``(oy, ox, k)`` of a convolution but the last (``valid`` false for the last)
    into the next one's input region (row ``oy`` in bank ``oy mod N``), if inside its
    ``Oh × Ow``. Returns its :class:`BankWrite` (never enabled with one convolution)."""
    shp, N, mt, L = sch.layer_shapes, sch.n_win, sch.m, len(sch.convs)
    bases, act_depth = sch.region_bases()
    ys, xs = range(widths.max_tiles_h * mt), range(widths.max_tiles_w * mt)
    store = BankWrite(Signal(name="out_wr"), Signal(range(N), name="out_bank"),
                      Signal(range(act_depth), name="out_addr"),
                      Signal(widths.act_bits, name="out_data"))
    if L > 1:
        nrow, nx = [], []
        for j, (cin, h, w, cout, oh, ow, th, tw) in enumerate(shp):
            base = bases[j + 1 if j + 1 < L else j]
            nrow.append([base + (y // N) * ow * cout if y < oh else 0 for y in ys])
            nx.append([x * cout for x in xs])
        m.d.comb += [
            store.bank.eq(const_array([[y % N for y in ys]] * L, range(N))[layer][oy]),
            store.addr.eq(const_array(nrow, range(act_depth + 1))[layer][oy]
                          + const_array(nx, range(act_depth + 1))[layer][ox] + k),
            store.data.eq(value),
            store.en.eq(valid
                        & (oy < table([s[4] for s in shp])[layer])
                        & (ox < table([s[5] for s in shp])[layer])),
        ]
    return store


def _max_pool(m, sch, widths, *, valid, n, ty, tx, k, value, f_w):
    """The last convolution's tile ``(ty, tx)`` of channel ``k`` (``valid`` false for the
    others) is one max-pool window (the pool equals the tile ``m``): the running max of its
    ``m²`` values goes to feature ``(ty·Wp + tx)·C + k`` of every lane's copy, if inside the
    pooled ``Hp × Wp``."""
    mt = sch.m
    pmax = Signal(widths.act_bits)
    pool_v = Mux((n == 0) | (value > pmax), value, pmax)
    m.d.sync += pmax.eq(pool_v)
    hp, wp = sch.feature_shapes[-1][1:]
    cl = sch.convs[-1].c_out
    f_addr = Signal(range(widths.n_feat + 1))
    m.d.comb += f_addr.eq(const_array([[(y * wp + x) * cl if y < hp and x < wp else 0
                                        for x in range(widths.max_tiles_w)]
                                       for y in range(widths.max_tiles_h)],
                                      range(widths.n_feat + 1))[ty][tx] + k)
    f_en = valid & (n == mt * mt - 1) & (ty < hp) & (tx < wp)
    for port in f_w:
        m.d.comb += [port.addr.eq(f_addr), port.data.eq(pool_v), port.en.eq(f_en)]


def tile_write(m, sch, widths, serial, rq, *, layer, f_w):
    """The requantized output ``rq`` of :class:`Serial` ``serial``, registered with its
    tags, into the next layer's banks or (the last convolution) the max-pool. Returns
    ``(store, layer_done)``: the :class:`BankWrite` and the convolution's last write."""
    mt, L = sch.m, len(sch.convs)
    r_val, r_v, r_n, r_final = Signal(widths.act_bits), Signal(), Signal.like(serial.n), \
        Signal()
    r_k, r_ty, r_tx = Signal.like(serial.k), Signal.like(serial.ty), Signal.like(serial.tx)
    m.d.sync += [r_val.eq(rq), r_v.eq(serial.valid), r_n.eq(serial.n), r_k.eq(serial.k),
                 r_ty.eq(serial.ty), r_tx.eq(serial.tx), r_final.eq(serial.final)]
    # (oy, ox) of the n-th value of tile (ty, tx), n row-major in the tile
    oy = Signal(range(widths.max_tiles_h * mt))
    ox = Signal(range(widths.max_tiles_w * mt))
    m.d.comb += [oy.eq(const_array([[ty * mt + n // mt for n in range(mt * mt)]
                                    for ty in range(widths.max_tiles_h)],
                                   range(widths.max_tiles_h * mt))[r_ty][r_n]),
                 ox.eq(const_array([[tx * mt + n % mt for n in range(mt * mt)]
                                    for tx in range(widths.max_tiles_w)],
                                   range(widths.max_tiles_w * mt))[r_tx][r_n])]
    last_conv = layer == L - 1
    store = _next_layer_store(m, sch, widths, layer=layer, oy=oy, ox=ox, k=r_k, value=r_val,
                              valid=r_v & ~last_conv)
    _max_pool(m, sch, widths, valid=r_v & last_conv, n=r_n, ty=r_ty, tx=r_tx, k=r_k,
              value=r_val, f_w=f_w)
    return store, r_v & r_final & (r_n == mt * mt - 1)
