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
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.winograd.hardware import scale_parts
from slimgen.sw.fixed import signed_bits

from .cnn_datapath import input_transform_row, output_transform, window_tables
from .cnn_schedule import CNNSchedule, filter_range
from .lib.argmax import result_layout, running_argmax
from .lib.const_mul import const_times
from .lib.mac_lane import mac_lane
from .lib.requantizer import requantize

__all__ = ["CNN"]


class CNN(wiring.Component):
    """A whole integer CNN (an :class:`slimgen.sw.integer_model.IntNetwork`, see
    :func:`slimgen.hw.cnn_schedule.cnn_parts`) on one shared array of ``lanes`` multipliers.

    Parameters are those of :class:`slimgen.hw.cnn_schedule.CNNSchedule` (checked there);
    ``schedule`` holds its shapes, memory contents and cycle counts.
    """

    def __init__(self, int_cnn, *, algorithm=None, lanes=4, engine="sparse", layout="rows"):
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

    def elaborate(self, platform):
        m = Module()
        sch = self.schedule
        q, F = sch.qmodel, sch.form.rows
        P, al, N, mt, R, S = sch.lanes, sch.alpha, sch.n_win, sch.m, sch.rows_per_step, \
            sch.steps
        BT, AT = F.BT.matrix, F.AT.matrix
        L = len(sch.convs)
        shp = sch.layer_shapes
        act_bits = max([q.input_bits] + [c.out_bits for c in sch.convs])
        xmax = (1 << max(c.in_bits for c in sch.convs)) - 1
        zmax = xmax * max(sum(abs(v) for v in row) for row in BT)
        vmax = zmax * max(sum(abs(v) for v in row) for row in BT)
        z_bits, v_bits = signed_bits(-zmax, zmax), signed_bits(-vmax, vmax)
        y_bits = max(signed_bits(*filter_range(c.W, c.in_bits)) for c in sch.convs)
        sp, sk, sq = scale_parts(sch.form.scale)
        acc_w = y_bits + sk                      # the transform domain, modulo 2^acc_w
        words, ubases, dbase = sch.lane_words()
        U_all = [w for lane in words for w in lane[:dbase]]
        u_bits = signed_bits(min(U_all), max(U_all))
        lay, dl = sch.sparse_layout, sch.dense[0]
        word_bits = max(u_bits, lay.word_bits)
        logit_bits = q.logit_bits
        lane_w = max(acc_w, logit_bits)
        bases, act_depth = sch.region_bases()
        VB = S * max(s[0] for s in shp)
        n_feat = dl.n_in

        # ---- memories ----
        act_w, act_r = [], []
        for b in range(N):
            mem = memory.Memory(shape=unsigned(act_bits), depth=act_depth, init=[])
            m.submodules[f"act{b}"] = mem
            act_w.append(mem.write_port())
            act_r.append(mem.read_port())
        v_w, v_r, w_r, f_w, f_r = [], [], [], [], []
        for lane in range(P):
            vm = memory.Memory(shape=signed(v_bits), depth=2 * VB, init=[])
            wm = memory.Memory(shape=unsigned(word_bits), depth=len(words[lane]),
                               init=[w & ((1 << word_bits) - 1) for w in words[lane]])
            fm = memory.Memory(shape=unsigned(act_bits), depth=n_feat, init=[])
            m.submodules[f"v{lane}"], m.submodules[f"w{lane}"] = vm, wm
            m.submodules[f"f{lane}"] = fm
            v_w.append(vm.write_port())
            v_r.append(vm.read_port())
            w_r.append(wm.read_port())
            f_w.append(fm.write_port())
            f_r.append(fm.read_port())

        def table(values):
            return Array(Const(int(v), range(max(max(values), 0) + 1)) for v in values)

        layer = Signal(range(L))
        cin_l = table([s[0] for s in shp])[layer]
        cout_l = table([s[3] for s in shp])[layer]
        th_l = table([s[6] for s in shp])[layer]
        tw_l = table([s[7] for s in shp])[layer]
        ubase_l = table(ubases)[layer]

        # ---- sequencing ----
        IDLE, CONV, WAIT, DENSE, ARGMAX = range(5)
        state = Signal(range(5))
        start = Signal()                 # pulse: a convolution begins
        layer_done = Signal()            # pulse: its last output is written
        dense_done, in_full, release_in = Signal(), Signal(), Signal()
        argmax_done = Signal()
        with m.Switch(state):
            with m.Case(IDLE):
                with m.If(in_full):
                    m.d.sync += [state.eq(CONV), layer.eq(0), start.eq(1)]
            with m.Case(CONV):
                with m.If(layer_done):
                    with m.If(layer == L - 1):
                        m.d.sync += state.eq(WAIT)
                    with m.Else():
                        m.d.sync += [layer.eq(layer + 1), start.eq(1)]
            with m.Case(WAIT):
                with m.If(~self.o.valid):
                    m.d.sync += state.eq(DENSE)
            with m.Case(DENSE):
                with m.If(dense_done):
                    m.d.sync += state.eq(ARGMAX)
            with m.Default():            # ARGMAX (the codes past it are never entered)
                with m.If(argmax_done):
                    m.d.sync += state.eq(IDLE)
        with m.If(start):
            m.d.sync += start.eq(0)

        # ---- input loader: region 0 of the activation banks ----
        c0, h0, w0 = sch.in_shape
        in_y = Signal(range(h0))
        in_pos = Signal(range(w0 * c0))
        out_wr = Signal()                # an output of a convolution is written this cycle
        out_bank, out_addr, out_data = Signal(range(N)), Signal(range(act_depth)), \
            Signal(act_bits)
        in_bank = table([y % N for y in range(h0)])[in_y]
        in_row = table([(y // N) * w0 * c0 for y in range(h0)])[in_y]
        m.d.comb += self.i.ready.eq(~in_full & ~out_wr)
        in_take = self.i.valid & self.i.ready
        with m.If(in_take):
            m.d.sync += in_pos.eq(in_pos + 1)
            with m.If(in_pos == w0 * c0 - 1):
                m.d.sync += [in_pos.eq(0), in_y.eq(in_y + 1)]
                with m.If(in_y == h0 - 1):
                    m.d.sync += [in_y.eq(0), in_full.eq(1)]
        with m.If(release_in):
            m.d.sync += in_full.eq(0)
        for b in range(N):
            m.d.comb += [
                act_w[b].en.eq((out_wr & (out_bank == b)) | (in_take & (in_bank == b))),
                act_w[b].addr.eq(Mux(out_wr, out_addr, in_row + in_pos)),
                act_w[b].data.eq(Mux(out_wr, out_data, self.i.payload)),
            ]

        # ---- input transform ----
        vfull = Signal(2)
        t_busy, t_buf = Signal(), Signal()
        t_ty, t_tx, t_x0 = Signal(range(max(s[6] for s in shp))), \
            Signal(range(max(s[7] for s in shp))), Signal(range(max(s[7] for s in shp) * mt + 1))
        t_c, t_a, t_v = Signal(range(max(s[0] for s in shp))), Signal(range(al)), Signal(range(N))
        t_issue = Signal()
        m.d.comb += t_issue.eq(t_busy & ~vfull.bit_select(t_buf, 1))
        th_max = max(s[6] for s in shp)
        xi_n = max(s[7] for s in shp) * mt + N
        tabs = window_tables([(c, h, w, conv.padding, base) for (c, h, w, *_), conv, base
                              in zip(shp, sch.convs, bases)],
                             tile=mt, window=N, tiles_h=th_max, tiles_w=max(s[7] for s in shp))
        raddr, rbank, rok, xcol, xok = (tabs[k] for k in ("raddr", "rbank", "rok", "xcol", "xok"))
        xi = Signal(range(xi_n))
        m.d.comb += xi.eq(t_x0 + t_v)
        ra_sel = Array(Array(Array(Const(v, range(act_depth + 1)) for v in bank_row)
                             for bank_row in ra) for ra in raddr)[layer][t_ty]
        xc_sel = Array(Array(Const(v, range(act_depth + 1)) for v in xc) for xc in xcol)[layer][xi]
        for b in range(N):
            m.d.comb += [act_r[b].addr.eq(ra_sel[b] + xc_sel + t_c), act_r[b].en.eq(1)]
        t1 = {name: Signal(range(n), name=f"t1_{name}") for name, n in (
            ("a", al), ("v", N), ("c", max(s[0] for s in shp)), ("ty", th_max))}
        t1_valid, t1_buf, t1_xok, t1_last = Signal(), Signal(), Signal(), Signal()
        last_win = (t_c == cin_l - 1) & (t_a == al - 1) & (t_v == N - 1)
        last_tile = (t_tx == tw_l - 1) & (t_ty == th_l - 1)
        m.d.sync += [t1_valid.eq(t_issue), t1_buf.eq(t_buf), t1_last.eq(t_issue & last_win),
                     t1_xok.eq(Array(Array(xo) for xo in xok)[layer][xi]),
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
        m.d.comb += release_in.eq(t_issue & last_win & last_tile & (layer == 0))
        # Stage 1: the window column → z → V row accumulators → V memories.
        rows_ok = Array(Array(Array(Const(v, 1) for v in r) for r in ro) for ro in rok)[layer]
        banks_u = Array(Array(Array(Const(v, range(N)) for v in r) for r in rb)
                        for rb in rbank)[layer]
        datas = Array(r.data for r in act_r)
        d = []
        for u in range(N):
            du = Signal(signed(act_bits + 1), name=f"d{u}")
            m.d.comb += du.eq(Mux(t1_xok & rows_ok[t1["ty"]][u], datas[banks_u[t1["ty"]][u]], 0))
            d.append(du)
        vrow = input_transform_row(m, d, t1["a"], t1["v"], t1_valid, BT, z_bits, v_bits)
        step_addr = Array(Array(Const((a // R) * cin, range(VB + 1)) for a in range(al))
                          for cin, *_ in shp)[layer][t1["a"]]
        for lane in range(P):
            rr, b = lane // al, lane % al
            m.d.comb += [v_w[lane].addr.eq(Mux(t1_buf, VB, 0) + step_addr + t1["c"]),
                         v_w[lane].data.eq(vrow[b]),
                         v_w[lane].en.eq(t1_valid & (t1["v"] == N - 1)
                                         & (t1["a"] % R == rr if R > 1 else 1))]
        with m.If(t1_last):
            m.d.sync += vfull.bit_select(t1_buf, 1).eq(1)

        # ---- products (convolution) ----
        p_busy, p_buf = Signal(), Signal()
        p_k = Signal(range(max(s[3] for s in shp)))
        c_max = max(s[0] for s in shp)
        p_n = Signal(range(max(sch.inner_cycles(j, k) for j in range(L)
                               for k in range(shp[j][3]))))
        p_s, p_c = Signal(range(S)), Signal(range(c_max))       # p_c: index into the filters
        k_max = max(s[3] for s in shp)

        def by_channel(f):
            vals = [[f(j, k) if k < shp[j][3] else 0 for k in range(k_max)] for j in range(L)]
            top = max(max(v) for v in vals)
            return Array(Array(Const(v, range(top + 1)) for v in row) for row in vals)[layer][p_k]
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
        p_ch = Array(Array(Array(Const(c, range(c_max)) for c in cs + [0] * (c_max - len(cs)))
                           for cs in row) for row in chans)[layer][p_k][p_c]
        p_sc = Array(Array(Const(s * shp[j][0], range(VB)) for s in range(S))
                     for j in range(L))[layer][p_s]
        p_ua = Signal(range(len(words[0]) + 1))
        p_ty, p_tx = Signal.like(t_ty), Signal.like(t_tx)
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
        # tags of a product through issue → memory → product → accumulate
        tag = {"valid": p_valid, "first": p_c == 0, "last": p_c == n_k - 1, "s": p_s,
               "k": p_k, "ty": p_ty, "tx": p_tx,
               "final": last_k & p_last_tile & (p_s == S - 1) & (p_c == n_k - 1)}
        stages = [tag]
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
        c1, c2 = stages[1], stages[2]

        # ---- dense stream ----
        dense = Signal()
        m.d.comb += dense.eq(state == DENSE)
        d_e = Signal(range(lay.stream_cycles + 1))
        d_go = dense & (d_e < lay.stream_cycles)
        with m.If(state == WAIT):
            m.d.sync += d_e.eq(0)
        with m.If(d_go):
            m.d.sync += d_e.eq(d_e + 1)
        for lane in range(P):
            m.d.comb += [w_r[lane].addr.eq(Mux(dense, dbase + d_e, ubase_l + p_ua)),
                         w_r[lane].en.eq(1),
                         v_r[lane].addr.eq(Mux(p_buf, VB, 0) + p_sc + p_ch), v_r[lane].en.eq(1)]

        # ---- lanes ----
        vb, ib = lay.value_bits, lay.index_bits
        rows_per_lane, Pd = lay.rows_per_lane, lay.lanes
        prod_bits = max(u_bits + v_bits, vb + act_bits + 1)
        lane_m = []                     # M values of the current step (conv), per lane
        dtail = []                      # per lane (valid, last, row) at the accumulate stage
        for lane in range(P):
            # dense stage 1: decode the word, read the feature
            word = w_r[lane].data
            value = word[:vb].as_signed()
            run = word[vb:vb + ib] if ib else Const(0, 1)
            last = word[vb + ib]
            in_lane = Signal(name=f"d1v{lane}")
            n_words = len(lay.words[lane]) if lane < Pd else 0
            m.d.sync += in_lane.eq(d_go & (d_e < n_words))
            col, row_start = Signal(range(n_feat + 1), name=f"col{lane}"), \
                Signal(init=1, name=f"rs{lane}")
            new_col = Signal(range(n_feat + 2), name=f"ncol{lane}")
            m.d.comb += new_col.eq(Mux(row_start, 0, col + 1) + run)
            m.d.comb += [f_r[lane].addr.eq(new_col), f_r[lane].en.eq(1)]
            with m.If(state == WAIT):
                m.d.sync += row_start.eq(1)
            with m.If(in_lane):
                m.d.sync += [col.eq(new_col), row_start.eq(last)]
            d2 = {"valid": Signal(name=f"d2v{lane}"), "first": Signal(name=f"d2f{lane}"),
                  "last": Signal(name=f"d2l{lane}"), "value": Signal(signed(vb), name=f"d2x{lane}")}
            m.d.sync += [d2["valid"].eq(in_lane), d2["first"].eq(row_start), d2["last"].eq(last),
                         d2["value"].eq(value)]
            # multiplier operands: conv at stage 1, dense at stage 2
            op_a = Signal(signed(max(u_bits, vb)), name=f"opa{lane}")
            op_b = Signal(signed(max(v_bits, act_bits + 1)), name=f"opb{lane}")
            m.d.comb += [op_a.eq(Mux(dense, d2["value"], w_r[lane].data[:u_bits].as_signed())),
                         op_b.eq(Mux(dense, Cat(f_r[lane].data, 0).as_signed(),
                                     v_r[lane].data))]
            pv, pf, pl = (Signal(name=f"p{x}{lane}") for x in "vfl")
            m.d.sync += [pv.eq(Mux(dense, d2["valid"], c1["valid"])),
                         pf.eq(Mux(dense, d2["first"], c1["first"])),
                         pl.eq(Mux(dense, d2["last"], c1["last"]))]
            total, _ = mac_lane(m, op_a, op_b, first=pf, en=pv, shape=signed(lane_w),
                                prod_shape=signed(prod_bits), name=f"lane{lane}")
            lane_m.append(total)
            dtail.append((pv & pl, Signal(range(rows_per_lane + 1), name=f"row{lane}"), total))

        # ---- logits and argmax ----
        logits = self.o.payload.logits
        for lane, (done, row, total) in enumerate(dtail):
            with m.If(state == WAIT):
                m.d.sync += row.eq(0)
            with m.If(dense & done):
                m.d.sync += row.eq(row + 1)
                for k in range(rows_per_lane):
                    o = k * Pd + lane
                    if o < dl.n_out:
                        with m.If(row == k):
                            m.d.sync += logits[o].eq(total + int(dl.b[o]))
        d_tail = Signal(range(8))
        with m.If(state == WAIT):
            m.d.sync += d_tail.eq(0)
        with m.If(dense & ~d_go):
            m.d.sync += d_tail.eq(d_tail + 1)
        m.d.comb += dense_done.eq(dense & (d_tail == 4))
        a_idx = Signal(range(q.n_classes))
        running_argmax(m, logits[a_idx], a_idx, state == ARGMAX, self.o.payload.cls)
        with m.If(state == ARGMAX):
            m.d.sync += a_idx.eq(a_idx + 1)
            with m.If(a_idx == q.n_classes - 1):
                m.d.sync += [a_idx.eq(0), self.o.valid.eq(1)]
        m.d.comb += argmax_done.eq((state == ARGMAX) & (a_idx == q.n_classes - 1))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        # ---- output transform (incremental over the steps) ----
        mvals = [lane_m[lane][:acc_w].as_signed() for lane in range(P)]
        conv_last = ~dense & c2["valid"] & c2["last"]
        yfin = output_transform(m, mvals, c2["s"], conv_last, AT, R, acc_w)
        hold = [Signal(signed(acc_w), name=f"hold{j}") for j in range(mt * mt)]
        h_k, h_ty, h_tx, h_final = Signal.like(p_k), Signal.like(p_ty), Signal.like(p_tx), \
            Signal()
        ser_busy, ser_n = Signal(), Signal(range(mt * mt))
        with m.If(conv_last & (c2["s"] == S - 1)):
            m.d.sync += [h.eq(y) for h, y in zip(hold, yfin)]
            m.d.sync += [h_k.eq(c2["k"]), h_ty.eq(c2["ty"]), h_tx.eq(c2["tx"]),
                         h_final.eq(c2["final"]), ser_busy.eq(1), ser_n.eq(0)]
        with m.Elif(ser_busy):
            m.d.sync += ser_n.eq(ser_n + 1)
            with m.If(ser_n == mt * mt - 1):
                m.d.sync += ser_busy.eq(0)

        # ---- scale removal, bias, requantization (one value per cycle) ----
        pval = Array(hold)[ser_n]
        t0 = const_times(m, pval, sp, width=acc_w, name="sc_p") if sp != 1 else pval
        tk = Signal(signed(y_bits), name="sc_k")
        m.d.comb += tk.eq(t0 >> sk)
        y = const_times(m, tk, pow(sq, -1, 1 << y_bits), width=y_bits, name="sc_q") \
            if sq != 1 else tk
        bias_bits = max(signed_bits(int(c.b.min()), int(c.b.max())) for c in sch.convs)
        biased = Signal(signed(max(y_bits, bias_bits) + 1))
        bias = Array(Array(Const(int(v), signed(bias_bits)) for v in c.b) for c in sch.convs)
        m.d.comb += biased.eq(y + bias[layer][h_k])
        outs = [requantize(m, biased, c.multiplier, c.shift, out_bits=c.out_bits, relu=True,
                           name=f"rq{j}") for j, c in enumerate(sch.convs)]
        rq = Signal(act_bits)
        m.d.comb += rq.eq(Array(outs)[layer] if L > 1 else outs[0])
        # ---- write: the next layer's banks, or the max-pool into the features ----
        r_val, r_v, r_n, r_final = Signal(act_bits), Signal(), Signal.like(ser_n), Signal()
        r_k, r_ty, r_tx = Signal.like(h_k), Signal.like(h_ty), Signal.like(h_tx)
        m.d.sync += [r_val.eq(rq), r_v.eq(ser_busy), r_n.eq(ser_n), r_k.eq(h_k),
                     r_ty.eq(h_ty), r_tx.eq(h_tx), r_final.eq(h_final)]
        n_tab = [(n // mt, n % mt) for n in range(mt * mt)]
        oy = Signal(range(th_max * mt))
        ox = Signal(range(max(s[7] for s in shp) * mt))
        tw_max = max(s[7] for s in shp)
        m.d.comb += [oy.eq(Array(Array(Const(ty * mt + i, range(th_max * mt)) for i, _ in n_tab)
                                 for ty in range(th_max))[r_ty][r_n]),
                     ox.eq(Array(Array(Const(tx * mt + j, range(tw_max * mt)) for _, j in n_tab)
                                 for tx in range(tw_max))[r_tx][r_n])]
        last_conv = layer == L - 1
        if L > 1:
            nb, nrow, nx, inside = [], [], [], []
            for j in range(L):
                cin, h, w, cout, oh, ow, th, tw = shp[j]
                nxt = j + 1 if j + 1 < L else j
                base = bases[nxt]
                nb.append([y % N for y in range(th_max * mt)])
                nrow.append([base + (y // N) * ow * cout if y < oh else 0
                             for y in range(th_max * mt)])
                nx.append([x * cout for x in range(max(s[7] for s in shp) * mt)])
                inside.append((oh, ow))
            m.d.comb += [
                out_bank.eq(Array(Array(Const(v, range(N)) for v in t) for t in nb)[layer][oy]),
                out_addr.eq(Array(Array(Const(v, range(act_depth + 1)) for v in t)
                                  for t in nrow)[layer][oy]
                            + Array(Array(Const(v, range(act_depth + 1)) for v in t)
                                    for t in nx)[layer][ox] + r_k),
                out_data.eq(r_val),
                out_wr.eq(r_v & ~last_conv
                          & (oy < table([o[0] for o in inside])[layer])
                          & (ox < table([o[1] for o in inside])[layer])),
            ]
        pmax = Signal(act_bits)
        pool_v = Mux((r_n == 0) | (r_val > pmax), r_val, pmax)
        m.d.sync += pmax.eq(pool_v)
        hp, wp = sch.feature_shapes[-1][1:]
        cl = sch.convs[-1].c_out
        f_addr = Signal(range(n_feat + 1))
        m.d.comb += f_addr.eq(Array(Array(Const((ty * wp + tx) * cl if ty < hp and tx < wp else 0,
                                                range(n_feat + 1)) for tx in range(tw_max))
                                    for ty in range(th_max))[r_ty][r_tx] + r_k)
        f_en = r_v & last_conv & (r_n == mt * mt - 1) & (r_ty < hp) & (r_tx < wp)
        for lane in range(P):
            m.d.comb += [f_w[lane].addr.eq(f_addr), f_w[lane].data.eq(pool_v),
                         f_w[lane].en.eq(f_en)]
        m.d.comb += layer_done.eq(r_v & r_final & (r_n == mt * mt - 1))
        return m
