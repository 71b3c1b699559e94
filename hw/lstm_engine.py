"""The recurrent classifier's datapath: P lanes that compute the gate products neuron by
neuron, a time-multiplexed element-wise unit, and the head on the same lanes. Bit-exact with
an LSTM or GRU classifier (:func:`slimgen.hw.lstm_schedule.recurrent_classifier`: the cell and
a dense head, :class:`slimgen.sw.integer_model.IntNetwork`), as
:func:`slimgen.sw.golden.forward` runs it. The LSTM's element-wise unit is described below;
the GRU's four rows per neuron (r, z, U_n h + b_hn, W_n x + b_n) run on the same lanes, and
its element-wise unit (:func:`slimgen.hw.gru_datapath.gru_cell`: five products on one
multiplier, a neuron every 6 cycles, D = 12, or on two, every 5, D = 14) replaces the LSTM's;
everything else is shared.

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

:meth:`LstmEngine.elaborate` wires the sequence state, the lanes, the EW and the logits; the
pieces (a lane's walk and MAC, the EW's taps, issue, multipliers, tables and cell state, the
logits' output) are in :mod:`slimgen.hw.lstm_datapath`.
"""

import functools

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.sw.fixed import signed_bits
from slimgen.sw.golden import sigmoid_table, tanh_table

from .gru_datapath import GRU_EW, gru_cell
from .lib.act_memory import act_memory_attrs
from .lstm_datapath import (cell_products, cell_state, ew_bias_address, ew_gate_sum,
                            ew_issue, ew_multipliers, ew_result_read, ew_taps, gate_products,
                            lane_mac, lane_memories, lane_walk, logits_out, table_reads)
from .lstm_schedule import GATE_ORDER, build_schedule, cell_rows, recurrent_classifier

__all__ = ["LstmEngine", "EW_II", "EW_DEPTH", "EW_PRODUCTS", "gate_constants", "lstm_cycles"]

# Cycles between neurons in the element-wise unit, by cell and by its multipliers.
EW_II = {"lstm": {1: 7, 2: 5}, "gru": {n: p["ii"] for n, p in GRU_EW.items()}}
# its stages (issue to h write)
EW_DEPTH = {"lstm": {1: 17, 2: 16}, "gru": {n: p["depth"] for n, p in GRU_EW.items()}}
# Per neuron and step. LSTM: z_g·M_g for 4 gates; i·g, f·c, o·tanh(c). GRU: z_g·M_g for r, z
# and the candidate; r·(U_n h + b_hn) and z·(h_{t−1} − n) (gru_cell).
EW_PRODUCTS = {"lstm": 4 + 3, "gru": 3 + 2}
_TANH_READ = {1: 9, 2: 12}   # the offset of the LSTM's tanh(c_t) table read
# the first step's flag: until c_{t−1} (LSTM), h_{t−1} (GRU, by its multipliers) are read
_FIRST_STEP = {"lstm": {1: 7, 2: 7}, "gru": {n: p["h"][1] + 1 for n, p in GRU_EW.items()}}


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
    """An LSTM or GRU classifier up to its logits.

    Parameters
    ----------
    model : IntNetwork
        An LSTM or GRU cell and a dense head
        (:func:`slimgen.hw.lstm_schedule.recurrent_classifier`).
    lanes : int
        Multiply lanes (shared by the gates and the head), from 1 to the hidden units.
    ew_multipliers : int
        The element-wise unit's multipliers (:data:`EW_II`). LSTM: 1 (a neuron every 7
        cycles) or 2 (z·M on one, the cell's products on the other: every 5 cycles). GRU: 1
        (every 6 cycles) or 2 (every 5).
    act_memory : str
        Where each lane's activations live (:mod:`slimgen.hw.lib.act_memory`): ``"auto"``
        (yosys' choice by cost) or ``"bram"`` (a block RAM a lane).

    Attributes
    ----------
    i : In(stream.Signature(unsigned(in_bits)))
        ``steps · n_in`` transfers per sample (a step's features one after the other).
    o : Out(stream.Signature(signed(logit_bits)))
        ``n_classes`` transfers per sample: the logits.
    """

    def __init__(self, model, *, lanes=4, ew_multipliers=1, act_memory="auto"):
        act_memory_attrs(act_memory)         # checked here, used by each lane's memories
        self.act_memory = act_memory
        self.cell, self.head, self.steps = recurrent_classifier(model)
        self.model = model
        self.schedule = build_schedule(model, lanes)
        kind = self.cell.cell
        if ew_multipliers not in EW_II[kind] or isinstance(ew_multipliers, bool):
            raise ValueError(f"Element-wise multipliers of the {kind} must be "
                             f"{' or '.join(map(str, EW_II[kind]))}, not {ew_multipliers!r}")
        self.lanes = lanes
        self.ew_multipliers = ew_multipliers
        self.ew_ii = EW_II[kind][ew_multipliers]
        self.ew_depth = EW_DEPTH[kind][ew_multipliers]
        lstm = self.cell
        rows = [W[j] for W, _ in cell_rows(lstm).values() for j in range(lstm.n_hidden)]
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
        """Cycles per sample, from its first input transfer to its result out of
        :class:`slimgen.hw.lstm_cell.LstmClassifier` (inputs sent back to back): the engine's
        timing replayed word by word (:func:`lstm_cycles`)."""
        return lstm_cycles(self.schedule, self.steps, ew_multipliers=self.ew_multipliers)

    def elaborate(self, platform):
        m = Module()
        sched, lstm = self.schedule, self.cell
        P, H, n_in, T = self.lanes, lstm.n_hidden, lstm.n_in, self.steps
        X = T * n_in                     # activation memory: x of every step, then h twice
        R = 4 * sched.slots              # result rows per step buffer

        # ---- sequence state ------------------------------------------------------------
        restart = Signal()
        x_cnt = Signal(range(X + 1))     # inputs loaded
        n_w = Signal(range(T * H + 1))   # h values written by the EW
        ew_step = Signal(range(T + 1))
        ew_step_d = [Signal(range(T + 1), name=f"ew_step_d{k}") for k in range(4)]
        m.d.sync += [ew_step_d[0].eq(ew_step)] + [ew_step_d[k].eq(ew_step_d[k - 1])
                                                  for k in range(1, 4)]
        ew_read_step = ew_step_d[-1]     # every result of earlier steps has been read

        # ---- EW issue and pipeline taps (the issue is driven once the lanes exist) -------
        issue = Signal()
        idx = Signal(range(H))
        item_p = Array(Const(p, range(max(P, 2))) for p, _ in sched.items)[idx]
        item_k = Array(Const(k, range(max(sched.slots, 2))) for _, k in sched.items)[idx]
        par = Signal()                   # ew_step's parity
        ew = ew_taps(m, issue=issue, rank=idx, lane=item_p, slot=item_k, parity=par,
                     first_step=ew_step == 0, depth=self.ew_depth,
                     first_depth=_FIRST_STEP[lstm.cell][self.ew_multipliers])
        hw_en = ew.valid[-1]             # h write this cycle

        # ---- lanes ---------------------------------------------------------------------
        rd_addr = Signal(range(2 * R + self.model.n_classes))
        rd_en = Signal()
        h_data = Signal(signed(lstm.fmt.h_bits))
        lanes = [self._lane(m, p, ew=ew, h_data=h_data, rd_addr=rd_addr, rd_en=rd_en,
                            x_cnt=x_cnt, n_w=n_w, ew_read_step=ew_read_step, restart=restart)
                 for p in range(P)]
        completed, lanes_done, lane_results = zip(*lanes)

        # ---- inputs --------------------------------------------------------------------
        m.d.comb += self.i.ready.eq((x_cnt < X) & ~hw_en)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += x_cnt.eq(x_cnt + 1)

        # ---- element-wise unit ---------------------------------------------------------
        ew_issue(m, ii=self.ew_ii, steps=T, n_hidden=H, completed=list(completed), lane=item_p,
                 start=self.i.valid & self.i.ready & (x_cnt == 0),
                 issue=issue, rank=idx, step=ew_step, parity=par, restart=restart)
        g_rd, k_rd, par_rd = self._element_wise(m, ew, list(lane_results), h_data, restart)
        with m.If(hw_en):
            m.d.sync += n_w.eq(n_w + 1)

        # ---- logits: the lanes' head sums plus the bias, once every lane and the EW are done
        logits_out(m, self.o, lane_results=lane_results, lanes_done=lanes_done,
                   ew_done=n_w == T * H, bias=[int(x) for x in self.head.b],
                   logit_bits=self.model.logit_bits,
                   head_base=2 * R, ew_read_addr=Mux(par_rd, R, 0) + 4 * k_rd + g_rd,
                   rd_addr=rd_addr, rd_en=rd_en, restart=restart)
        with m.If(restart):
            m.d.sync += [x_cnt.eq(0), n_w.eq(0)] + [d.eq(0) for d in ew_step_d]
        return m

    def _lane(self, m, p, *, ew, h_data, rd_addr, rd_en, x_cnt, n_w, ew_read_step, restart):
        """Lane p (module docstring: A to D): its memories, its word walk and its MAC, the h
        of the EW and the inputs written into its activations. Returns ``(completed,
        head_done, results)``: its complete neurons, whether its head rows are written, the
        data of its result reads at ``rd_addr``."""
        sched, lstm = self.schedule, self.cell
        H, n_in, T, C = lstm.n_hidden, lstm.n_in, self.steps, self.model.n_classes
        X, R = T * n_in, 4 * sched.slots
        w_rd, (a_wr, a_rd), (r_wr, r_rd) = lane_memories(
            m, p, words=sched.words[p], word_bits=sched.word_bits, act_bits=lstm.act_bits,
            act_depth=X + 2 * H, part_bits=self.part_bits, result_depth=2 * R + C,
            act_memory=self.act_memory)
        # Activation writes: h from the EW (step s at X + (s odd ? H : 0)), else an input.
        hw_en = ew.valid[-1]
        m.d.comb += [a_wr.addr.eq(Mux(hw_en, X + Mux(ew.parity[-1], H, 0) + ew.rank[-1], x_cnt)),
                     a_wr.data.eq(Mux(hw_en, h_data, self.i.payload)),
                     a_wr.en.eq(hw_en | (self.i.valid & self.i.ready))]
        word = lane_walk(m, p, w_rd, steps=T, n_in=n_in, n_hidden=H,
                         step_words=sched.step_words[p], value_bits=sched.value_bits,
                         col_bits=sched.col_bits, max_rows=max(R, C), x_loaded=x_cnt,
                         h_written=n_w, ew_read_step=ew_read_step, restart=restart)
        completed, head_rows = lane_mac(
            m, p, word, a_rd, r_wr, x_words=X, n_hidden=H, step_rows=R, n_classes=C, steps=T,
            slots=sched.slots, act_bits=lstm.act_bits, value_bits=sched.value_bits,
            part_bits=self.part_bits, restart=restart)
        m.d.comb += [r_rd.addr.eq(rd_addr), r_rd.en.eq(rd_en)]
        return completed, head_rows == C, r_rd.data

    def _element_wise(self, m, ew, lane_results, h_data, restart):
        """The EW after its issue (module docstring: its offsets from τ; the GRU's:
        :func:`slimgen.hw.gru_datapath.gru_cell`): the rows' reads and biases, its
        multipliers, its tables and the cell's state; drives ``h_data``. Returns ``(row, slot,
        parity)`` of its result read (the lanes' read address)."""
        lstm, fmt = self.cell, self.cell.fmt
        H, A, F = lstm.n_hidden, fmt.table_bits, fmt.gate_frac
        by_rank = sorted(range(H), key=lambda j: self.schedule.rank[j])
        # the gates' constants in the order the EW scales them: the rows' (c, i, f, o), r, z, n
        consts = [gate_constants(lstm, g) for g in (GATE_ORDER if lstm.cell == "lstm"
                                                    else lstm.gates)]
        z_bits = max(signed_bits(c[2], c[3]) for c in consts)
        b_bits = max(c[0] for c in consts).bit_length()
        bias = [int(b[j]) for j in by_rank for _, b in cell_rows(lstm).values()]
        bias_bits = signed_bits(min(bias + [0]), max(bias + [0]))
        # bias at 4·rank + row; the tables: σ, then tanh
        m.submodules.bias = bias_mem = memory.Memory(shape=signed(bias_bits), depth=4 * H,
                                                     init=bias)
        tables = [int(x) for x in sigmoid_table(fmt)] + [int(x) for x in tanh_table(fmt)]
        m.submodules.tables = tab_mem = memory.Memory(shape=signed(F + 2), depth=2 << A,
                                                      init=tables)
        b_rd, t_rd = bias_mem.read_port(), tab_mem.read_port()
        g_rd, k_rd, par_rd = ew_result_read(m, ew)
        m.d.comb += [b_rd.addr.eq(ew_bias_address(m, ew, restart)), b_rd.en.eq(1)]
        z_sum_bits = max(self.part_bits, bias_bits) + 1
        z = ew_gate_sum(m, ew, lane_results, b_rd.data, bits=z_sum_bits)
        if lstm.cell == "gru":
            # the gates' z·M on the first; nh·r (nh as wide as a row sum) and z·(h' − n) on
            # the last (the same one if one)
            x_bits, y_bits = [z_bits, max(z_sum_bits, F + 3)], [b_bits, F + 1]
            # on two, the first's product is only ever shifted right by s_g: its low bits go
            drop = [min(s for _, s, _, _ in consts) - 1, 0]
            if self.ew_multipliers == 1:
                x_bits, y_bits, drop = [max(x_bits)], [max(y_bits)], [0]
            muls = list(zip(*ew_multipliers(m, x_bits, y_bits, drop)))
            m.submodules.h = h_mem = memory.Memory(shape=signed(fmt.h_bits), depth=H, init=[])
            gru_cell(m, ew, z, t_rd, muls, h_mem.read_port(transparent_for=()),
                     h_mem.write_port(), h_data, consts=consts, frac=F, h_frac=fmt.h_frac,
                     table_bits=A, plan=GRU_EW[self.ew_multipliers], scale_drop=drop[0])
            return g_rd, k_rd, par_rd
        m.submodules.c = c_mem = memory.Memory(shape=signed(fmt.c_bits), depth=H, init=[])
        c_rd, c_wr = c_mem.read_port(transparent_for=()), c_mem.write_port()
        # Multipliers: z_g·M_g onto the first, the cell's products onto the last (the same one
        # if one).
        x_bits, y_bits = [z_bits, max(fmt.c_bits, F + 2)], [b_bits, F + 1]
        if self.ew_multipliers == 1:
            x_bits, y_bits = [max(x_bits)], [max(y_bits)]
        mx, my, mp = ew_multipliers(m, x_bits, y_bits)
        cell = cell_state(m, ew, t_rd.data, mp[-1], c_rd, c_wr, h_data, frac=F,
                          c_bits=fmt.c_bits, h_frac=fmt.h_frac)
        gate_products(m, ew, z, consts, mx[0], my[0])
        cell_products(m, ew, mx[-1], my[-1], table=t_rd.data, g=cell.g, c_prev=cell.c_prev,
                      o=cell.o, tanh_read=_TANH_READ[self.ew_multipliers], frac=F)
        table_reads(m, ew, t_rd, mp[0], cell.c_t, shifts=[s for _, s, _, _ in consts],
                    table_bits=A, c_shift=F - fmt.tanh_frac)
        return g_rd, k_rd, par_rd


def lstm_cycles(sched, steps, *, ew_multipliers=1):
    """Cycles of one sample on :class:`LstmEngine` of schedule ``sched`` over ``steps`` steps,
    from its first input's transfer (cycle 0, the EW's phase 0) to its result.

    The engine's rules, word by word: a lane issues a word a cycle after the previous one at
    the earliest, and once its operand is there: input q of the sequence a cycle after its
    transfer (inputs go one a cycle, but not while h is written), h of rank r of step s − 1
    EW_DEPTH cycles after the EW took that neuron (at step 0, read as 0, a cycle after the
    first input's transfer); at step s ≥ 2, 5 cycles after it took the
    last neuron of step s − 2. A neuron is complete 3 cycles after its last word; the EW takes
    the neuron of rank r on a cycle of phase 0 (a multiple of EW_II), once it is complete and
    rank r − 1 is taken,
    and writes its h EW_DEPTH − 1 cycles later. The logits start 3 cycles after every lane's
    last head word or 1 after the EW's last h write, whichever is later (a hidden unit no
    logit reads is not waited for by the head), and leave one a cycle; the result follows
    2 cycles after the last logit.
    """
    P, H, n_in, T = sched.lanes, sched.n_hidden, sched.n_in, steps
    ew_ii = EW_II[sched.cell][ew_multipliers]
    ew_depth = EW_DEPTH[sched.cell][ew_multipliers]
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
                    if s == 0:
                        t = max(t, xt[0] + 1)
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
                took[s][r] = t + -t % ew_ii
        new = sorted(t + ew_depth - 1 for row in took for t in row)
        if new == h_en or not X or new[0] > xt[-1]:     # the inputs as assumed
            return max(max(go) + 3, new[-1] + 1) + 1 + sched.n_classes + 2
        h_en = new
