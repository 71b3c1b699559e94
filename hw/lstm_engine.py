"""The LSTM classifier's datapath: P lanes that compute the gate products neuron by neuron, a
time-multiplexed element-wise unit, and the head on the same lanes. Bit-exact with
an LSTM classifier (:func:`slimgen.hw.lstm_schedule.lstm_classifier`: an LSTM cell and a dense
head, :class:`slimgen.sw.integer_model.IntNetwork`), as :func:`slimgen.sw.golden.forward` runs it.

Schedule (:mod:`slimgen.hw.lstm_schedule`): lane p streams, per step, the four gate rows (c, i,
f, o) of each of its neurons, one multiply per non-zero weight. When a lane completes a neuron,
the element-wise unit (EW) takes it — while the lanes go on with the next neurons — and writes
h_t of that neuron into every lane's activation memory. The next step's rows read h by rank
(the EW's order), and a lane waits only for the h value it needs next, so the step boundary
costs about the EW latency of the last neuron. After the last step the lanes compute the head
(each lane a block of columns of every logit row); the logits are the lanes' sums plus the bias.

Lane pipeline (every lane on its own)::

    A  word memory read (address: the next word)
    B  decode (value, col, last); issue if the activation is there: x_t loaded, h of that rank
       written (the lanes never run more than one step ahead of the EW); activation read
    C  product ← activation · value (0 for h at step 0)
    D  acc ← (first ? 0 : acc) + product; a row's last word writes acc to the result memory
       (two step buffers of 4 rows per slot, and the head's rows)

EW: seven products per neuron (z_g·M_g for the four gates, i·g, f·c and o·tanh(c_t)) on one
multiplier, a new neuron every 7 cycles at most, or on two (z·M on one, the cell's three
products on the other), every 5 (:data:`EW_II`; issued on a fixed phase); D = 17 or 16
stages (:data:`EW_DEPTH`), offsets from the issue cycle τ::

    τ+g        read z_g (g = c, i, f, o) from the lane's results; its bias from the bias ROM
    τ+g+1      z = sat into the table's range (exact: the index saturates there anyway) → × M_g
    τ+g+3      u = sat_A(round(z·M_g >> s_g)); table read (tanh for c, sigmoid for i, f, o)
    τ+5, τ+6   → × : i · g, f · c_{t−1} (c memory read at τ+5; 0 at step 0)
    τ+8        c_t = sat(round((f·c + i·g) >> F));  τ+9: c memory write
    τ+9 | τ+12 tanh table read of c_t (one multiplier | two)
    τ+D−3      → × : o · tanh(c_t)
    τ+D−1      h_t = sat(round(o·tanh(c_t) >> 2F − h_frac)) into the lanes

Pairwise different modulo EW_II: the result reads (τ+0..3), every multiplier's operand writes
(one: τ+1..6, 14; two: τ+1..4 and τ+5, 6, 13) and the table reads (τ+3..6, and 9 or 12):
neurons issued EW_II·k cycles apart never want the same port or multiplier in the same cycle.

The EW paces a step at EW_II cycles per hidden unit at least: once the busiest lane has fewer
than EW_II·H words per step, more lanes no longer help. At a step's end the lanes' last
neurons complete together and queue at the EW, so a step costs about the busiest lane's words
plus P·EW_II + EW_DEPTH, less the words the lanes stream meanwhile (x_t, the h ready first);
:func:`lstm_cycles` replays it exactly. One multiplier keeps the multipliers busier when the
lanes pace the steps (the flow's planner, :func:`slimgen.models.lstm.ew_multipliers`, picks);
the digits LSTM of 32 units (dense, 10-bit) on 4 lanes and one: 1.01× the lanes' bound, 1.21×
that of all five multipliers.

One sequence is in flight at a time: the next one's inputs are taken once the logits of this
one have gone out.
"""

import functools

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.fixed import signed_bits
from slimgen.sw.golden import sigmoid_table, tanh_table

from .lib.mac_lane import mac_lane
from .lib.requantizer import round_half_up, saturate
from .lstm_schedule import GATE_ORDER, build_schedule, lstm_classifier

__all__ = ["LstmEngine", "EW_II", "EW_DEPTH", "EW_PRODUCTS", "gate_constants", "lstm_cycles"]

EW_II = {1: 7, 2: 5}      # cycles between neurons in the element-wise unit, by its multipliers
EW_DEPTH = {1: 17, 2: 16}  # its stages (issue to h write)
EW_PRODUCTS = 4 + 3       # per neuron and step: z_g·M_g for 4 gates; i·g, f·c, o·tanh(c)
_TANH_READ = {1: 9, 2: 12}   # the offset of the tanh(c_t) table read


def gate_constants(lstm, gate):
    """``(M, s, z_lo, z_hi)`` of a gate: the multiplier and shift with M odd or s = 1 (the same
    index), and the accumulator range outside which the table index saturates:
    ``sat_A(round(z·M >> s)) = sat_A(round(clip(z, z_lo, z_hi)·M >> s))`` for every z."""
    M, s = int(lstm.multiplier[gate]), int(lstm.shift[gate])
    while M % 2 == 0 and s > 1:
        M, s = M // 2, s - 1
    A = lstm.fmt.table_bits
    u_lo, u_hi = -(1 << (A - 1)), (1 << (A - 1)) - 1
    half = 1 << (s - 1)
    z_hi = -((half - u_hi * (1 << s)) // M)             # ceil((u_hi·2^s − half) / M)
    z_lo = ((u_lo + 1) * (1 << s) - 1 - half) // M      # floor(((u_lo+1)·2^s − 1 − half) / M)
    return M, s, z_lo, z_hi


def _partial_range(rows, act_bits):
    """Signed width of every partial sum of the rows' products with signed act_bits inputs."""
    lo_a, hi_a = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    lo = hi = 0
    for w in rows:
        lo = min(lo, sum(min(v * lo_a, v * hi_a) for v in w))
        hi = max(hi, sum(max(v * lo_a, v * hi_a) for v in w))
    return signed_bits(lo, hi)


class LstmEngine(wiring.Component):
    """An LSTM classifier up to its logits.

    Parameters
    ----------
    model : IntNetwork
        An LSTM cell and a dense head (:func:`slimgen.hw.lstm_schedule.lstm_classifier`).
    lanes : int
        Multiply lanes (shared by the gates and the head), from 1 to the hidden units.
    ew_multipliers : int
        The element-wise unit's multipliers: 1 (a neuron every 7 cycles) or 2 (z·M on one,
        the cell's products on the other: every 5 cycles).

    Attributes
    ----------
    i : In(stream.Signature(unsigned(in_bits)))
        ``steps · n_in`` transfers per sample (a step's features one after the other).
    o : Out(stream.Signature(signed(logit_bits)))
        ``n_classes`` transfers per sample: the logits.
    """

    def __init__(self, model, *, lanes=4, ew_multipliers=1):
        self.cell, self.head, self.steps = lstm_classifier(model)
        self.model = model
        self.schedule = build_schedule(model, lanes)
        if ew_multipliers not in EW_II or isinstance(ew_multipliers, bool):
            raise ValueError(f"Element-wise multipliers must be 1 or 2, not {ew_multipliers!r}")
        self.lanes = lanes
        self.ew_multipliers = ew_multipliers
        self.ew_ii = EW_II[ew_multipliers]
        self.ew_depth = EW_DEPTH[ew_multipliers]
        lstm = self.cell
        rows = [lstm.W[g][j] for g in GATE_ORDER for j in range(lstm.n_hidden)]
        rows += list(self.head.W)
        self.part_bits = _partial_range([[int(v) for v in r] for r in rows], lstm.act_bits)
        super().__init__({
            "i": In(stream.Signature(unsigned(lstm.in_bits))),
            "o": Out(stream.Signature(signed(model.logit_bits))),
        })

    @property
    def multipliers(self):
        """Multipliers of the matrix products (the lanes); the EW has ``ew_multipliers``
        more."""
        return self.lanes

    @functools.cached_property
    def cycles_estimate(self):
        """Modelled cycles per sample, from its first input transfer to its result out of
        :class:`slimgen.hw.lstm_cell.LstmClassifier` (inputs sent back to back): the engine's
        timing replayed word by word (:func:`lstm_cycles`), at the EW's worst phase."""
        return max(lstm_cycles(self.schedule, self.steps, phase,
                               ew_multipliers=self.ew_multipliers)
                   for phase in range(self.ew_ii))

    def elaborate(self, platform):
        m = Module()
        model, sched = self.model, self.schedule
        lstm, fmt = self.cell, self.cell.fmt
        P, H, n_in, T, C = self.lanes, lstm.n_hidden, lstm.n_in, self.steps, model.n_classes
        A, F = fmt.table_bits, fmt.gate_frac
        X = T * n_in                     # activation memory: x of every step, then h twice
        R = 4 * sched.slots              # result rows per step buffer
        vb, cb = sched.value_bits, sched.col_bits
        act = signed(lstm.act_bits)
        by_rank = sorted(range(H), key=lambda j: sched.rank[j])

        # ---- sequence state ------------------------------------------------------------
        restart = Signal()
        x_cnt = Signal(range(X + 1))     # inputs loaded
        n_w = Signal(range(T * H + 1))   # h values written by the EW
        ew_step = Signal(range(T + 1))
        ew_step_d = [Signal(range(T + 1), name=f"ew_step_d{k}") for k in range(4)]
        m.d.sync += [ew_step_d[0].eq(ew_step)] + [ew_step_d[k].eq(ew_step_d[k - 1])
                                                  for k in range(1, 4)]
        ew_read_step = ew_step_d[-1]     # every result of earlier steps has been read

        # ---- EW pipeline taps ----------------------------------------------------------
        issue = Signal()
        idx = Signal(range(H))
        item_p = Array(Const(p, range(max(P, 2))) for p, _ in sched.items)[idx]
        item_k = Array(Const(k, range(max(sched.slots, 2))) for _, k in sched.items)[idx]
        par = Signal()                   # ew_step's parity
        D = self.ew_depth
        v = [Signal(name=f"ew_v{d}") for d in range(D)]
        ix = [Signal(range(H), name=f"ew_idx{d}") for d in range(D)]
        pp = [Signal(range(max(P, 2)), name=f"ew_p{d}") for d in range(5)]
        kk = [Signal(range(max(sched.slots, 2)), name=f"ew_k{d}") for d in range(4)]
        pr = [Signal(name=f"ew_par{d}") for d in range(D)]
        s0 = [Signal(name=f"ew_s0_{d}") for d in range(7)]
        m.d.comb += [v[0].eq(issue), ix[0].eq(idx), pp[0].eq(item_p), kk[0].eq(item_k),
                     pr[0].eq(par), s0[0].eq(ew_step == 0)]
        for chain in (v, ix, pp, kk, pr, s0):
            for d in range(1, len(chain)):
                m.d.sync += chain[d].eq(chain[d - 1])
        hw_en = v[D - 1]                 # h write this cycle

        # ---- lanes ---------------------------------------------------------------------
        n_words = [len(w) for w in sched.words]
        rd_addr = Signal(range(2 * R + C))
        rd_en = Signal()
        h_data = Signal(signed(fmt.h_bits))
        nc = [Signal(range(T * sched.slots + 1), name=f"nc{p}") for p in range(P)]
        ec = [Signal(range(T * sched.slots + 1), name=f"ec{p}") for p in range(P)]
        lane_done = []
        lane_data = []
        for p in range(P):
            L, S = n_words[p], sched.step_words[p]
            wmem = memory.Memory(shape=unsigned(sched.word_bits), depth=L,
                                 init=list(sched.words[p]))
            amem = memory.Memory(shape=act, depth=X + 2 * H, init=[])
            rmem = memory.Memory(shape=signed(self.part_bits), depth=2 * R + C, init=[])
            m.submodules[f"w{p}"], m.submodules[f"a{p}"], m.submodules[f"r{p}"] = \
                wmem, amem, rmem
            w_rd = wmem.read_port()
            a_wr, a_rd = amem.write_port(), amem.read_port(transparent_for=())
            r_wr, r_rd = rmem.write_port(), rmem.read_port(transparent_for=())

            # Activation writes: h from the EW, else an input.
            m.d.comb += [a_wr.addr.eq(Mux(hw_en, X + Mux(pr[-1], H, 0) + ix[-1], x_cnt)),
                         a_wr.data.eq(Mux(hw_en, h_data, self.i.payload)),
                         a_wr.en.eq(hw_en | (self.i.valid & self.i.ready))]

            t = Signal(range(L), name=f"t{p}")
            s = Signal(range(T + 1), name=f"s{p}")
            lpar = Signal(name=f"par{p}")
            xbase = Signal(range(X + 1), name=f"xbase{p}")
            hb = Signal(range(T * H + 1), name=f"hb{p}")
            brow = Signal(range(max(R, C) + 1), name=f"brow{p}")
            primed = Signal(name=f"primed{p}")
            done = Signal(name=f"done{p}")       # every word issued
            hd = Signal(range(C + 1), name=f"hd{p}")
            lane_done.append(hd == C)

            word = w_rd.data
            value, col, last = word[:vb].as_signed(), word[vb:vb + cb], word[vb + cb]
            is_h = col >= n_in
            hr = Signal(range(1 << cb), name=f"hr{p}")
            m.d.comb += hr.eq(col - n_in)
            head = s == T
            guard = (s < 2) | head | (ew_read_step + 1 >= s)
            # (the head reads no x: its fillers name column 0)
            ready = Mux(is_h, (s == 0) | (n_w + H > hb + hr), head | (x_cnt > xbase + col))
            go = Signal(name=f"go{p}")
            m.d.comb += go.eq(primed & ~done & guard & ready)

            t_next = Signal(range(L), name=f"t_next{p}")
            m.d.comb += t_next.eq(t)
            end_of_step = ~head & (t == S - 1)
            with m.If(go):
                with m.If(end_of_step & (s < T - 1)):
                    m.d.comb += t_next.eq(0)
                with m.Elif(t < L - 1):
                    m.d.comb += t_next.eq(t + 1)
                m.d.sync += t.eq(t_next)
                with m.If(end_of_step):
                    m.d.sync += [s.eq(s + 1), lpar.eq(~lpar), xbase.eq(xbase + n_in),
                                 hb.eq(hb + H), brow.eq(0)]
                with m.Elif(last):
                    m.d.sync += brow.eq(brow + 1)
                with m.If(t == L - 1):
                    m.d.sync += done.eq(1)
            m.d.comb += [w_rd.addr.eq(t_next)]
            m.d.sync += primed.eq(1)

            # B → C: activation read.
            m.d.comb += a_rd.addr.eq(Mux(is_h, X + Mux(lpar, 0, H) + hr, xbase + col))
            v1, last1, zero1 = Signal(name=f"v1_{p}"), Signal(name=f"l1_{p}"), \
                Signal(name=f"z1_{p}")
            nend1, hend1 = Signal(name=f"ne1_{p}"), Signal(name=f"he1_{p}")
            w1 = Signal(signed(vb), name=f"w1_{p}")
            addr1 = Signal(range(2 * R + C), name=f"ad1_{p}")
            m.d.sync += [v1.eq(go), last1.eq(last), zero1.eq(is_h & (s == 0)), w1.eq(value),
                         nend1.eq(go & last & ~head & (brow[:2] == 3)),
                         hend1.eq(go & last & head),
                         addr1.eq(Mux(head, 2 * R + brow, Mux(lpar, R, 0) + brow))]
            # C: product; D: accumulate, a row's last product writes the row's sum.
            v2, last2 = Signal(name=f"v2_{p}"), Signal(name=f"l2_{p}")
            nend2, hend2 = Signal(name=f"ne2_{p}"), Signal(name=f"he2_{p}")
            addr2 = Signal(range(2 * R + C), name=f"ad2_{p}")
            first = Signal(init=1, name=f"first{p}")
            m.d.sync += [v2.eq(v1), last2.eq(last1), nend2.eq(nend1), hend2.eq(hend1),
                         addr2.eq(addr1)]
            acc_new, _ = mac_lane(m, Mux(zero1, 0, a_rd.data), w1, first=first, en=v2,
                                  shape=signed(self.part_bits),
                                  prod_shape=signed(lstm.act_bits + vb), name=f"lane{p}")
            m.d.comb += [r_wr.addr.eq(addr2), r_wr.data.eq(acc_new), r_wr.en.eq(v2 & last2)]
            with m.If(v2):
                m.d.sync += first.eq(last2)
            with m.If(nend2):
                m.d.sync += nc[p].eq(nc[p] + 1)
            with m.If(hend2):
                m.d.sync += hd.eq(hd + 1)
            m.d.comb += [r_rd.addr.eq(rd_addr), r_rd.en.eq(rd_en)]
            lane_data.append(r_rd.data)

            with m.If(restart):
                m.d.sync += [t.eq(0), s.eq(0), lpar.eq(0), xbase.eq(0), hb.eq(0), brow.eq(0),
                             primed.eq(0), done.eq(0), hd.eq(0), nc[p].eq(0), first.eq(1)]

        # ---- inputs --------------------------------------------------------------------
        m.d.comb += self.i.ready.eq((x_cnt < X) & ~hw_en)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += x_cnt.eq(x_cnt + 1)

        # ---- element-wise unit ---------------------------------------------------------
        consts = [gate_constants(lstm, g) for g in GATE_ORDER]
        z_bits = max(signed_bits(c[2], c[3]) for c in consts)
        a_bits = z_bits
        b_bits = max(c[0] for c in consts).bit_length()
        bias = [int(lstm.b[g][j]) for j in by_rank for g in GATE_ORDER]
        bias_bits = signed_bits(min(bias + [0]), max(bias + [0]))
        m.submodules.bias = bias_mem = memory.Memory(shape=signed(bias_bits), depth=4 * H,
                                                     init=bias)
        tables = [int(x) for x in sigmoid_table(fmt)] + [int(x) for x in tanh_table(fmt)]
        m.submodules.tables = tab_mem = memory.Memory(shape=signed(F + 2), depth=2 << A,
                                                      init=tables)
        m.submodules.c = c_mem = memory.Memory(shape=signed(fmt.c_bits), depth=H, init=[])
        b_rd, t_rd = bias_mem.read_port(), tab_mem.read_port()
        c_rd, c_wr = c_mem.read_port(transparent_for=()), c_mem.write_port()

        II = self.ew_ii
        phase = Signal(range(II))
        m.d.sync += phase.eq(Mux(phase == II - 1, 0, phase + 1))
        lane_nc = Array(nc)[item_p]
        lane_ec = Array(ec)[item_p]
        m.d.comb += issue.eq((phase == 0) & (ew_step < T) & (lane_nc > lane_ec))
        with m.If(issue):
            m.d.sync += Array(ec)[item_p].eq(lane_ec + 1)
            m.d.sync += idx.eq(Mux(idx == H - 1, 0, idx + 1))
            with m.If(idx == H - 1):
                m.d.sync += [ew_step.eq(ew_step + 1), par.eq(~par)]

        # τ+g: read z_g and its bias.
        g_rd = Signal(range(4))
        for d in range(4):
            with m.If(v[d]):
                m.d.comb += g_rd.eq(d)
        k_rd = Mux(v[0], kk[0], Mux(v[1], kk[1], Mux(v[2], kk[2], kk[3])))
        par_rd = Mux(v[0], pr[0], Mux(v[1], pr[1], Mux(v[2], pr[2], pr[3])))
        ix_rd = Mux(v[0], ix[0], Mux(v[1], ix[1], Mux(v[2], ix[2], ix[3])))
        m.d.comb += [b_rd.addr.eq(Cat(g_rd, ix_rd)), b_rd.en.eq(1)]

        # Multipliers (operands mx, my; product mp): z_g·M_g loaded at τ+g+1 onto the first,
        # i·g at τ+5, f·c at τ+6, o·tanh(c_t) at τ+D−3 onto the last (the same one if one).
        n_mul = self.ew_multipliers
        x_bits = [a_bits, max(fmt.c_bits, F + 2)]
        y_bits = [b_bits, F + 1]
        if n_mul == 1:
            x_bits, y_bits = [max(x_bits)], [max(y_bits)]
        mx = [Signal(signed(xb), name=f"ew_mx{n}") for n, xb in enumerate(x_bits)]
        my = [Signal(unsigned(yb), name=f"ew_my{n}") for n, yb in enumerate(y_bits)]
        mp = [Signal(signed(xb + yb + 1), name=f"ew_mp{n}") for n, (xb, yb) in
              enumerate(zip(x_bits, y_bits))]
        m.d.sync += [p_.eq(x_ * y_) for x_, y_, p_ in zip(mx, my, mp)]
        z_lane = Array(lane_data)[Mux(v[1], pp[1], Mux(v[2], pp[2], Mux(v[3], pp[3], pp[4])))]
        z = Signal(signed(max(self.part_bits, bias_bits) + 1))
        m.d.comb += z.eq(z_lane + b_rd.data)
        gval = Signal(signed(F + 2))
        o_a, o_b = Signal(unsigned(F + 1)), Signal(unsigned(F + 1))
        ig_reg = Signal(signed(2 * F + 4))
        c_new = Signal(signed(fmt.c_bits))
        for g, (M, _, z_lo, z_hi) in enumerate(consts):
            with m.If(v[g + 1]):
                m.d.sync += [mx[0].eq(Mux(z < z_lo, z_lo, Mux(z > z_hi, z_hi, z))),
                             my[0].eq(M)]
        with m.If(v[5]):
            m.d.sync += [mx[-1].eq(gval), my[-1].eq(t_rd.data)]
        c_prev = Mux(s0[6], 0, c_rd.data)
        with m.If(v[6]):
            m.d.sync += [mx[-1].eq(c_prev), my[-1].eq(t_rd.data)]
        tanh_rd = _TANH_READ[n_mul]
        tanh_c = t_rd.data               # read the cycle before, or held since
        if tanh_rd != D - 4:
            tanh_c = Signal(signed(F + 2))
            with m.If(v[tanh_rd + 1]):
                m.d.sync += tanh_c.eq(t_rd.data)
        with m.If(v[D - 3]):
            m.d.sync += [mx[-1].eq(tanh_c), my[-1].eq(o_b)]

        # τ+g+3: table index of z_g; τ+9 (one multiplier) or τ+12: of c_t, whenever no z_g.
        flip = 1 << (A - 1)
        u = [saturate(m, round_half_up(mp[0], s_g), A, name=f"u_{g}") for g, (_, s_g, _, _) in
             zip(GATE_ORDER, consts)]
        u_c = saturate(m, round_half_up(c_new, F - fmt.tanh_frac), A, name="u_ct")
        t_addr = Signal(A + 1)
        m.d.comb += t_addr.eq(Cat((u_c ^ flip)[:A], 1))
        for g in range(4):
            with m.If(v[g + 3]):
                m.d.comb += t_addr.eq(Cat((u[g] ^ flip)[:A], int(GATE_ORDER[g] == "c")))
        m.d.comb += [t_rd.addr.eq(t_addr), t_rd.en.eq(1)]
        with m.If(v[4]):
            m.d.sync += gval.eq(t_rd.data)
        with m.If(v[7]):
            m.d.sync += [o_a.eq(t_rd.data), ig_reg.eq(mp[-1])]
        with m.If(v[11]):
            m.d.sync += o_b.eq(o_a)      # before the next neuron's o arrives
        c_sum = saturate(m, round_half_up(ig_reg + mp[-1], F), fmt.c_bits, name="c_sum")
        with m.If(v[8]):
            m.d.sync += c_new.eq(c_sum)
        m.d.comb += [c_rd.addr.eq(ix[5]), c_rd.en.eq(1),
                     c_wr.addr.eq(ix[9]), c_wr.data.eq(c_new), c_wr.en.eq(v[9])]
        m.d.comb += h_data.eq(saturate(m, round_half_up(mp[-1], 2 * F - fmt.h_frac), fmt.h_bits,
                                       name="h"))
        with m.If(hw_en):
            m.d.sync += n_w.eq(n_w + 1)


        # ---- logits: the lanes' head sums plus the bias, once every lane is done ---------
        m.submodules.head_bias = hb_mem = memory.Memory(
            shape=signed(model.logit_bits), depth=C, init=[int(x) for x in self.head.b])
        hb_rd = hb_mem.read_port()
        all_done = Signal()
        m.d.comb += all_done.eq(Cat(*lane_done).all())
        out_on, emitting, last_out = Signal(), Signal(), Signal()
        r = Signal(range(C))
        adv = ~self.o.valid | self.o.ready
        with m.If(all_done & ~out_on):
            m.d.sync += [out_on.eq(1), emitting.eq(1), r.eq(0)]
        m.d.comb += [rd_addr.eq(Mux(out_on, 2 * R + r, Mux(par_rd, R, 0) + 4 * k_rd + g_rd)),
                     rd_en.eq(~out_on | adv), hb_rd.addr.eq(r), hb_rd.en.eq(adv)]
        total = hb_rd.data
        for x in lane_data:
            total = total + x
        m.d.comb += self.o.payload.eq(total)
        with m.If(out_on & adv):
            m.d.sync += [self.o.valid.eq(emitting), last_out.eq(emitting & (r == C - 1))]
            with m.If(emitting):
                m.d.sync += r.eq(r + 1)
                with m.If(r == C - 1):
                    m.d.sync += emitting.eq(0)
            with m.If(~emitting & (~self.o.valid | last_out)):
                # The last logit has been taken: the next sequence.
                m.d.comb += restart.eq(1)
        with m.If(restart):
            m.d.sync += [out_on.eq(0), x_cnt.eq(0), n_w.eq(0), ew_step.eq(0), idx.eq(0),
                         par.eq(0), last_out.eq(0)] + [e.eq(0) for e in ec]
            m.d.sync += [d.eq(0) for d in ew_step_d]
        return m


def lstm_cycles(sched, steps, phase=0, *, ew_multipliers=1):
    """Cycles of one sample on :class:`LstmEngine` of schedule ``sched`` over ``steps`` steps,
    the EW's phase counter at ``phase`` when the first input is taken (cycle 0).

    The engine's rules, word by word: a lane issues a word a cycle after the previous one at
    the earliest, and once its operand is there: input q of the sequence a cycle after its
    transfer (inputs go one a cycle, but not while h is written), h of rank r of step s − 1
    EW_DEPTH cycles after the EW took that neuron; at step s ≥ 2, 5 cycles after it took the
    last neuron of step s − 2. A neuron is complete 3 cycles after its last word; the EW takes
    the neuron of rank r on a cycle of phase 0, once it is complete and rank r − 1 is taken,
    and writes its h EW_DEPTH − 1 cycles later. The logits leave 4 + n_classes cycles after
    every lane's last head word, the result 2 cycles after the last logit.
    """
    P, H, n_in, T = sched.lanes, sched.n_hidden, sched.n_in, steps
    ew_ii, ew_depth = EW_II[ew_multipliers], EW_DEPTH[ew_multipliers]
    X = T * n_in
    decoded = [[sched.decode(w) for w in sched.words[p]] for p in range(P)]
    h_en = []                                   # cycles of the EW's h writes
    while True:
        stalls, xt, c = set(h_en), [], 0        # input transfers
        for _ in range(X):
            while c in stalls:
                c += 1
            xt.append(c)
            c += 1
        took = [[0] * H for _ in range(T)]      # the EW's issue cycles
        go = [-1] * P                           # every lane's last issue
        for s in range(T + 1):
            done = [[] for _ in range(P)]       # completion cycles of the lanes' neurons
            for p in range(P):
                S = sched.step_words[p]
                rows = 0
                for _, col, last in (decoded[p][:S] if s < T else decoded[p][S:]):
                    t = go[p] + 1
                    if col >= n_in and s > 0:
                        t = max(t, took[s - 1][col - n_in] + ew_depth)
                    elif col < n_in and s < T:
                        t = max(t, xt[s * n_in + col] + 1)
                    if 2 <= s < T:
                        t = max(t, took[s - 2][H - 1] + 5)
                    go[p] = t
                    rows += last
                    if last and rows % 4 == 0:
                        done[p].append(t + 3)
            if s == T:
                break
            for r, (p, k) in enumerate(sched.items):
                t = max(done[p][k], took[s][r - 1] + 1 if r else
                        took[s - 1][H - 1] + 1 if s else 0)
                took[s][r] = t + (-phase - t) % ew_ii
        new = sorted(t + ew_depth - 1 for row in took for t in row)
        if new == h_en or not X or new[0] > xt[-1]:     # the inputs as assumed
            return max(go) + 4 + sched.n_classes + 2
        h_en = new
