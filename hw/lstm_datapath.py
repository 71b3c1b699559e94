"""Datapath pieces of the recurrent classifier's engine
(:class:`slimgen.hw.lstm_engine.LstmEngine`; its module docstring gives the lane pipeline A–D
and the LSTM element-wise unit's (EW's) offsets from the issue cycle τ, which these pieces
implement; the GRU's EW is :mod:`slimgen.hw.gru_datapath`):

- the EW's tags delayed along its pipeline (:func:`ew_taps`) and its issue (:func:`ew_issue`);
- a lane: its memories (:func:`lane_memories`), its word walk, stages A and B
  (:func:`lane_walk`), and its multiply and accumulate, stages B to D (:func:`lane_mac`);
- the EW's datapath: its result reads (:func:`ew_result_read`) and its multipliers
  (:func:`ew_multipliers`), both cells'; the LSTM's operands (:func:`gate_products`,
  :func:`cell_products`), table port (:func:`table_reads`) and the cell's registers up to h_t
  (:func:`cell_state`);
- the logits out of the lanes' head sums (:func:`logits_out`).

The functions add logic to a module ``m`` and return its signals; they take plain numbers,
lists and the signals they connect, never the model (as leaves do, see STYLE.md).
"""

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Mux, Signal, Value, signed, unsigned
from amaranth.lib import memory

from .lib.act_memory import act_memory_attrs
from .lib.mac_lane import mac_lane
from .lib.requantizer import clamp, round_half_up, saturate
from .lstm_schedule import GATE_ORDER

__all__ = ["CellRegs", "EwTaps", "LaneWord", "cell_products", "cell_state", "ew_bias_address",
           "ew_gate_sum", "ew_issue", "ew_multipliers", "ew_result_read", "ew_taps",
           "gate_products", "lane_mac", "lane_memories", "lane_walk", "logits_out",
           "table_address", "table_reads", "taps"]

GATES = len(GATE_ORDER)                  # rows per neuron (any cell); the EW reads one a cycle


def taps(m, value, depth, *, name):
    """``value`` along a pipeline: ``tap[d]`` is ``value`` of d cycles ago, d = 0 … depth − 1
    (``tap[0]`` its combinational copy); Signals ``{name}{d}`` of value's shape."""
    tap = [Signal(Value.cast(value).shape(), name=f"{name}{d}") for d in range(depth)]
    m.d.comb += tap[0].eq(value)
    m.d.sync += [tap[d].eq(tap[d - 1]) for d in range(1, depth)]
    return tap


# ---- the element-wise unit's issue and tags --------------------------------------------------

@dataclass(frozen=True)
class EwTaps:
    """The EW's tags along its pipeline: ``field[d]`` belongs to the neuron issued at
    τ = now − d, if ``valid[d]``. Each is as long as it is needed (``valid``, ``rank``,
    ``parity``: the EW's depth D)."""
    valid: list        # (D,) a neuron was issued d cycles ago
    rank: list         # (D,) its rank: its bias rows, its c_t, the h column it writes
    lane: list         # (5,) the lane whose results hold its z_g (read up to τ+3, data at τ+4)
    slot: list         # (4,) its slot among that lane's neurons
    parity: list       # (D,) its step's parity: the result buffer read, the h buffer written
    first_step: list   # its step is the first: c_{t−1} = 0 (LSTM), h_{t−1} = 0 (GRU)


def ew_taps(m, *, issue, rank, lane, slot, parity, first_step, depth, first_depth):
    """The :class:`EwTaps` of the neuron issued this cycle (``issue``), ``depth`` = D, the
    first step's flag along ``first_depth`` stages."""
    return EwTaps(valid=taps(m, issue, depth, name="ew_v"),
                  rank=taps(m, rank, depth, name="ew_idx"),
                  lane=taps(m, lane, 5, name="ew_p"),
                  slot=taps(m, slot, 4, name="ew_k"),
                  parity=taps(m, parity, depth, name="ew_par"),
                  first_step=taps(m, first_step, first_depth, name="ew_s0_"))


def ew_issue(m, *, ii, steps, n_hidden, completed, lane, issue, rank, step, parity, restart,
             start):
    """The EW takes the neuron of rank ``rank`` (computed by lane ``lane``) on phase 0 of a
    counter modulo ``ii``, once that lane has completed more neurons than the EW took from it::

        issue = (phase = 0) ∧ (step < steps) ∧ (completed[lane] > taken[lane])

    then moves to the next rank, and after rank H − 1 to the next step (``parity`` flips).
    ``completed``: the lanes' counts of complete neurons; ``issue`` is driven here. The
    counter restarts with every sequence: ``start`` (its first input taken) is phase 0, so a
    sequence's cycles do not depend on when it came (the EW is empty then)."""
    H = n_hidden
    phase = Signal(range(ii), name="phase")
    m.d.sync += phase.eq(Mux(start | (phase == ii - 1), Mux(start, 1 % ii, 0), phase + 1))
    taken = [Signal(Value.cast(n).shape(), name=f"ec{p}") for p, n in enumerate(completed)]
    lane_completed, lane_taken = Array(completed)[lane], Array(taken)[lane]
    m.d.comb += issue.eq((phase == 0) & (step < steps) & (lane_completed > lane_taken))
    with m.If(issue):
        m.d.sync += Array(taken)[lane].eq(lane_taken + 1)
        m.d.sync += rank.eq(Mux(rank == H - 1, 0, rank + 1))
        with m.If(rank == H - 1):
            m.d.sync += [step.eq(step + 1), parity.eq(~parity)]
    with m.If(restart):
        m.d.sync += [step.eq(0), rank.eq(0), parity.eq(0)] + [n.eq(0) for n in taken]


# ---- a lane ----------------------------------------------------------------------------------

def lane_memories(m, p, *, words, word_bits, act_bits, act_depth, part_bits, result_depth,
                  act_memory="auto"):
    """Lane p's memories: its words (ROM), its activations (x of every step, then h of two
    steps; in block RAM when ``act_memory`` is ``"bram"``, :mod:`slimgen.hw.lib.act_memory`)
    and its row sums (two step buffers of results, then the head's rows). Returns
    ``(w_rd, (a_wr, a_rd), (r_wr, r_rd))``; the activation and result reads are not
    transparent (a row never reads what is written in the same cycle)."""
    wmem = memory.Memory(shape=unsigned(word_bits), depth=len(words), init=list(words))
    amem = memory.Memory(shape=signed(act_bits), depth=act_depth, init=[],
                         attrs=act_memory_attrs(act_memory))
    rmem = memory.Memory(shape=signed(part_bits), depth=result_depth, init=[])
    m.submodules[f"w{p}"], m.submodules[f"a{p}"], m.submodules[f"r{p}"] = wmem, amem, rmem
    return (wmem.read_port(),
            (amem.write_port(), amem.read_port(transparent_for=())),
            (rmem.write_port(), rmem.read_port(transparent_for=())))


@dataclass(frozen=True)
class LaneWord:
    """A lane's word at stage B, decoded (``value``, ``col``, ``last``), with the walk's state:
    ``go`` (it issues this cycle), ``step`` (``steps``: the head), ``parity`` (the step's),
    ``x_base`` (its first input's address), ``h_rank`` (``col − n_in``: the rank of its h)
    and ``row`` (the row among the step's or the head's)."""
    go: Value
    value: Value
    col: Value
    last: Value
    is_h: Value
    h_rank: Value
    head: Value
    step: Value
    parity: Value
    x_base: Value
    row: Value


def lane_walk(m, p, w_rd, *, steps, n_in, n_hidden, step_words, value_bits, col_bits,
              max_rows, x_loaded, h_written, ew_read_step, restart):
    """Stages A and B of lane p: ``w_rd`` reads the word after t while word t is decoded and
    keeps word t until it issues; it issues
    (``go``) when its operand is there — input ``s·n_in + col`` loaded (``x_loaded`` above
    it), or the h of rank ``col − n_in`` of step s − 1 written (``h_written`` above
    ``(s − 1)·H + rank``; none at step 0, read as 0, once the first input is) — and, at
    s ≥ 2, when the EW has read
    every result of step s − 2 (``ew_read_step + 1 ≥ s``), whose buffer step s writes. The
    ``step_words`` words of a step repeat for every step, then the head's words follow once.
    Returns a :class:`LaneWord`."""
    L, S, T, H = w_rd.memory.depth, step_words, steps, n_hidden
    vb, cb = value_bits, col_bits
    t = Signal(range(L), name=f"t{p}")
    s = Signal(range(T + 1), name=f"s{p}")
    lpar = Signal(name=f"par{p}")
    xbase = Signal(range(T * n_in + 1), name=f"xbase{p}")
    hb = Signal(range(T * H + 1), name=f"hb{p}")
    brow = Signal(range(max_rows + 1), name=f"brow{p}")
    primed = Signal(name=f"primed{p}")   # the word memory has read word 0
    done = Signal(name=f"done{p}")       # every word issued

    word = w_rd.data
    value, col, last = word[:vb].as_signed(), word[vb:vb + cb], word[vb + cb]
    is_h = col >= n_in
    hr = Signal(range(1 << cb), name=f"hr{p}")
    m.d.comb += hr.eq(col - n_in)
    head = s == T
    guard = (s < 2) | head | (ew_read_step + 1 >= s)
    # (the head reads no x: its fillers name column 0)
    # (an h word of step 0, read as 0, still waits for the sequence's first input: a sample
    # starts with its first input, whatever the idle time before it)
    ready = Mux(is_h, (h_written + H > hb + hr) & (x_loaded != 0),
                head | (x_loaded > xbase + col))
    go = Signal(name=f"go{p}")
    m.d.comb += go.eq(primed & ~done & guard & ready)

    # The word after t, from registers only. The word memory reads it when word t issues and
    # otherwise holds word t in its data register (read enable): its address never depends
    # on its own data, which would put a word list yosys keeps in logic inside the loop
    # word → go → address and make it 2.5 times larger (a GRU lane's 159 × 13 words: 486
    # LUT4s against 180 on the ECP5).
    t_after = Signal(range(L), name=f"t_after{p}")
    end_of_step = ~head & (t == S - 1)
    m.d.comb += t_after.eq(Mux(end_of_step & (s < T - 1), 0, Mux(t < L - 1, t + 1, t)))
    with m.If(go):
        m.d.sync += t.eq(t_after)
        with m.If(end_of_step):
            m.d.sync += [s.eq(s + 1), lpar.eq(~lpar), xbase.eq(xbase + n_in),
                         hb.eq(hb + H), brow.eq(0)]
        with m.Elif(last):
            m.d.sync += brow.eq(brow + 1)
        with m.If(t == L - 1):
            m.d.sync += done.eq(1)
    # (until primed, after a reset or restart, t is 0 and the memory reads word 0)
    m.d.comb += [w_rd.addr.eq(Mux(primed, t_after, t)), w_rd.en.eq(go | ~primed)]
    m.d.sync += primed.eq(1)
    with m.If(restart):
        m.d.sync += [t.eq(0), s.eq(0), lpar.eq(0), xbase.eq(0), hb.eq(0), brow.eq(0),
                     primed.eq(0), done.eq(0)]
    return LaneWord(go=go, value=value, col=col, last=last, is_h=is_h, h_rank=hr, head=head,
                    step=s, parity=lpar, x_base=xbase, row=brow)


def lane_mac(m, p, word, a_rd, r_wr, *, x_words, n_hidden, step_rows, n_classes, steps, slots,
             act_bits, value_bits, part_bits, restart):
    """Stages B to D of lane p on its issued ``word`` (:class:`LaneWord`)::

        B  activation read: x at x_base + col, or h of the previous step at
           x_words + (parity ? 0 : H) + rank (the EW writes step s's h at + (s odd ? H : 0))
        C  product ← activation · value (0 for h at step 0)
        D  acc ← (first ? 0 : acc) + product; a row's last product writes the sum to the
           result memory: row k of the step at (parity ? R : 0) + k, of the head at 2R + k

    Returns ``(completed, head_rows)``: the neurons whose four rows are written (counted over
    the sequence) and the head rows written."""
    T, H, R, C, vb = steps, n_hidden, step_rows, n_classes, value_bits
    m.d.comb += a_rd.addr.eq(Mux(word.is_h, x_words + Mux(word.parity, 0, H) + word.h_rank,
                                 word.x_base + word.col))
    v1, last1, zero1 = Signal(name=f"v1_{p}"), Signal(name=f"l1_{p}"), \
        Signal(name=f"z1_{p}")
    nend1, hend1 = Signal(name=f"ne1_{p}"), Signal(name=f"he1_{p}")
    w1 = Signal(signed(vb), name=f"w1_{p}")
    addr1 = Signal(range(2 * R + C), name=f"ad1_{p}")
    go, last, head, row = word.go, word.last, word.head, word.row
    m.d.sync += [v1.eq(go), last1.eq(last), zero1.eq(word.is_h & (word.step == 0)),
                 w1.eq(word.value),
                 nend1.eq(go & last & ~head & (row[:2] == GATES - 1)),
                 hend1.eq(go & last & head),
                 addr1.eq(Mux(head, 2 * R + row, Mux(word.parity, R, 0) + row))]
    # C: product; D: accumulate, a row's last product writes the row's sum.
    v2, last2 = Signal(name=f"v2_{p}"), Signal(name=f"l2_{p}")
    nend2, hend2 = Signal(name=f"ne2_{p}"), Signal(name=f"he2_{p}")
    addr2 = Signal(range(2 * R + C), name=f"ad2_{p}")
    first = Signal(init=1, name=f"first{p}")
    m.d.sync += [v2.eq(v1), last2.eq(last1), nend2.eq(nend1), hend2.eq(hend1),
                 addr2.eq(addr1)]
    acc_new, _ = mac_lane(m, Mux(zero1, 0, a_rd.data), w1, first=first, en=v2,
                          shape=signed(part_bits), prod_shape=signed(act_bits + vb),
                          name=f"lane{p}")
    m.d.comb += [r_wr.addr.eq(addr2), r_wr.data.eq(acc_new), r_wr.en.eq(v2 & last2)]
    completed = Signal(range(T * slots + 1), name=f"nc{p}")
    head_rows = Signal(range(C + 1), name=f"hd{p}")
    with m.If(v2):
        m.d.sync += first.eq(last2)
    with m.If(nend2):
        m.d.sync += completed.eq(completed + 1)
    with m.If(hend2):
        m.d.sync += head_rows.eq(head_rows + 1)
    with m.If(restart):
        m.d.sync += [head_rows.eq(0), completed.eq(0), first.eq(1)]
    return completed, head_rows


# ---- the element-wise unit's datapath --------------------------------------------------------

def _gate_tap(ew, field, first):
    """``field[d]`` at the tap d = first … first + 3 where a neuron is valid (the last if
    none): the tag of the neuron whose gate passes that stage (issues are EW_II ≥ 4 apart)."""
    out = field[first + GATES - 1]
    for d in reversed(range(first, first + GATES - 1)):
        out = Mux(ew.valid[d], field[d], out)
    return out


def ew_result_read(m, ew):
    """τ+g: the EW reads row g's sum (g = 0 … 3: :data:`~slimgen.hw.lstm_schedule.ROWS`, an
    LSTM's c, i, f, o, a GRU's r, z, nh, nx) of the neuron issued g cycles ago.
    Returns ``(gate, slot, parity)`` of that read."""
    g_rd = Signal(range(GATES), name="g_rd")
    for d in range(GATES):
        with m.If(ew.valid[d]):
            m.d.comb += g_rd.eq(d)
    return g_rd, _gate_tap(ew, ew.slot, 0), _gate_tap(ew, ew.parity, 0)


def ew_bias_address(m, ew, restart):
    """The bias ROM's address ``4·rank + g`` at τ+g (gate g of the neuron issued at τ, the
    row :func:`ew_result_read` reads), from a register, set a cycle ahead from the taps one
    stage earlier: ``valid[g]`` now is gate g + 1 next; with none of ``valid[0..2]``, gate 0
    of the next issue, whose rank is ``rank[0]``'s (0 after ``restart``). Issues are
    EW_II ≥ 4 apart, so at most one is set; without an issue the address is free. An address
    that ``issue`` (the lanes' completion counts) decides in the same cycle draws that logic
    into the tree yosys makes of a ROM kept in logic (a GRU's 128 × 15 biases: 460 LUT4s on
    the ECP5, 120 alone)."""
    g_bits = (GATES - 1).bit_length()
    addr = Signal(g_bits + len(Value.cast(ew.rank[0])), name="bias_addr")
    nxt = Cat(Const(0, g_bits), Mux(restart, 0, ew.rank[0]))
    for g in reversed(range(GATES - 1)):
        nxt = Mux(ew.valid[g], Cat(Const(g + 1, g_bits), ew.rank[g]), nxt)
    m.d.sync += addr.eq(nxt)
    return addr


def ew_gate_sum(m, ew, lane_results, bias, *, bits):
    """τ+g+1: ``z_g`` = the row sum read from the neuron's lane (of ``lane_results``) plus the
    gate's ``bias``, of ``bits`` bits."""
    z = Signal(signed(bits), name="z")
    m.d.comb += z.eq(Array(lane_results)[_gate_tap(ew, ew.lane, 1)] + bias)
    return z


def ew_multipliers(m, x_bits, y_bits, drop=None):
    """The EW's registered multipliers ``mp[n] ← (mx[n] · my[n]) >> drop[n]`` (signed ×
    unsigned, one per width pair; ``drop``: low bits no reader uses, none by default). Returns
    ``(mx, my, mp)``."""
    drop = drop or [0] * len(x_bits)
    mx = [Signal(signed(xb), name=f"ew_mx{n}") for n, xb in enumerate(x_bits)]
    my = [Signal(unsigned(yb), name=f"ew_my{n}") for n, yb in enumerate(y_bits)]
    mp = [Signal(signed(xb + yb + 1 - d), name=f"ew_mp{n}") for n, (xb, yb, d) in
          enumerate(zip(x_bits, y_bits, drop))]
    m.d.sync += [p_.eq((x_ * y_) >> d) for x_, y_, p_, d in zip(mx, my, mp, drop)]
    return mx, my, mp


def gate_products(m, ew, z, consts, mx, my):
    """τ+g+1: ``z_g·M_g`` onto the multiplier ``mx``, ``my``, with z_g clipped to
    ``[z_lo, z_hi]`` (exact: the table index saturates there anyway, :func:`gate_constants`),
    ``consts[g] = (M, s, z_lo, z_hi)``."""
    for g, (M, _, z_lo, z_hi) in enumerate(consts):
        with m.If(ew.valid[g + 1]):
            m.d.sync += [mx.eq(clamp(z, z_lo, z_hi)), my.eq(M)]


def cell_products(m, ew, mx, my, *, table, g, c_prev, o, tanh_read, frac):
    """The cell's products onto the multiplier ``mx``, ``my`` (after the gates' on it if one):
    τ+5: ``i · g`` (σ(z_i) read from ``table`` at τ+4); τ+6: ``f · c_{t−1}``; τ+D−3:
    ``o · tanh(c_t)``, tanh(c_t) read at ``tanh_read`` and held unless read at τ+D−4."""
    D = len(ew.valid)
    with m.If(ew.valid[5]):
        m.d.sync += [mx.eq(g), my.eq(table)]
    with m.If(ew.valid[6]):
        m.d.sync += [mx.eq(c_prev), my.eq(table)]
    tanh_c = table                       # read the cycle before, or held since
    if tanh_read != D - 4:
        tanh_c = Signal(signed(frac + 2), name="tanh_c")
        with m.If(ew.valid[tanh_read + 1]):
            m.d.sync += tanh_c.eq(table)
    with m.If(ew.valid[D - 3]):
        m.d.sync += [mx.eq(tanh_c), my.eq(o)]


def table_address(u, tanh, table_bits):
    """The tables' address of index ``u`` (A = ``table_bits`` signed bits): σ at
    ``u + 2^(A−1)``, tanh (``tanh`` true) 2^A further."""
    A = table_bits
    return Cat((u ^ (1 << (A - 1)))[:A], int(tanh))


def table_reads(m, ew, t_rd, z_scaled, c_t, *, shifts, table_bits, c_shift):
    """The table port ``t_rd``: σ at ``0 … 2^A − 1``, tanh after, an index u at
    ``u + 2^(A−1)``. τ+g+3: gate g's index ``u = sat_A(round(z_g·M_g >> s_g))`` from the
    product ``z_scaled`` (``shifts[g]`` = s_g), tanh for the candidate c, σ for i, f, o; in every
    other cycle the tanh index of ``c_t``, ``sat_A(round(c_t >> c_shift))`` (the cell takes
    its data after c_t is written)."""
    A = table_bits
    u = [saturate(m, round_half_up(z_scaled, s_g), A, name=f"u_{g}")
         for g, s_g in zip(GATE_ORDER, shifts)]
    u_c = saturate(m, round_half_up(c_t, c_shift), A, name="u_ct")
    t_addr = Signal(A + 1, name="t_addr")
    m.d.comb += t_addr.eq(table_address(u_c, True, A))
    for d, gate in enumerate(GATE_ORDER):
        with m.If(ew.valid[d + 3]):
            m.d.comb += t_addr.eq(table_address(u[d], gate == "c", A))
    m.d.comb += [t_rd.addr.eq(t_addr), t_rd.en.eq(1)]


@dataclass(frozen=True)
class CellRegs:
    """The cell's registers the multiplier's operands come from (:func:`cell_state`)."""
    g: Value           # tanh(z_c), from τ+4
    o: Value           # σ(z_o), from τ+11 until the next neuron's
    c_prev: Value      # c_{t−1} at τ+6 (0 at step 0)
    c_t: Value         # c_t, from τ+9


def cell_state(m, ew, table, mp, c_rd, c_wr, h, *, frac, c_bits, h_frac):
    """The cell's registers and its update, from the table port's data ``table`` and the last
    multiplier's product ``mp`` (F = ``frac``)::

        τ+4    g ← tanh(z_c)                  τ+7    o ← σ(z_o), ig ← i·g
        τ+8    c_t ← sat(round((ig + f·c_{t−1}) >> F))    (c_{t−1}: read at τ+5, written τ+9)
        τ+D−1  h = sat(round(o·tanh(c_t) >> 2F − h_frac))

    ``o`` is copied at τ+11, before the next neuron's σ(z_o) arrives. Drives ``h`` (its width
    is h_frac + 1) and the c memory's ports; returns the :class:`CellRegs`."""
    F = frac
    gval = Signal(signed(F + 2), name="gval")           # tanh: |g| ≤ 2^F
    o_a = Signal(unsigned(F + 1), name="o_a")            # σ: 0 ≤ o ≤ 2^F
    o_b = Signal(unsigned(F + 1), name="o_b")
    ig_reg = Signal(signed(2 * F + 4), name="ig_reg")
    c_new = Signal(signed(c_bits), name="c_new")
    with m.If(ew.valid[4]):
        m.d.sync += gval.eq(table)
    with m.If(ew.valid[7]):
        m.d.sync += [o_a.eq(table), ig_reg.eq(mp)]
    with m.If(ew.valid[11]):
        m.d.sync += o_b.eq(o_a)          # before the next neuron's o arrives
    c_sum = saturate(m, round_half_up(ig_reg + mp, F), c_bits, name="c_sum")
    with m.If(ew.valid[8]):
        m.d.sync += c_new.eq(c_sum)
    m.d.comb += [c_rd.addr.eq(ew.rank[5]), c_rd.en.eq(1),
                 c_wr.addr.eq(ew.rank[9]), c_wr.data.eq(c_new), c_wr.en.eq(ew.valid[9])]
    m.d.comb += h.eq(saturate(m, round_half_up(mp, 2 * F - h_frac), h_frac + 1, name="h"))
    return CellRegs(g=gval, o=o_b, c_prev=Mux(ew.first_step[6], 0, c_rd.data), c_t=c_new)


# ---- the logits ------------------------------------------------------------------------------

def logits_out(m, o, *, lane_results, lanes_done, ew_done, bias, logit_bits, head_base,
               ew_read_addr, rd_addr, rd_en, restart):
    """The logits on the stream ``o`` once every lane has written its head rows
    (``lanes_done``) and the EW has written every h of the sequence (``ew_done``: a hidden
    unit no logit reads is not waited for by the head, and its late write must not land in
    the next sequence), one a transfer: ``logit_r = b_r + Σ_p result_p[head_base + r]``.
    Until then the lanes' shared result reads (``rd_addr``, ``rd_en``) are the EW's
    (``ew_read_addr``). Drives ``restart`` when the last logit has been taken."""
    C = len(bias)
    m.submodules.head_bias = hb_mem = memory.Memory(shape=signed(logit_bits), depth=C,
                                                    init=bias)
    hb_rd = hb_mem.read_port()
    all_done = Signal(name="all_done")
    m.d.comb += all_done.eq(Cat(*lanes_done).all() & ew_done)
    out_on = Signal(name="out_on")       # the logits' turn (until restart)
    emitting = Signal(name="emitting")   # logits left to put on o
    last_out = Signal(name="last_out")   # o holds the last logit
    r = Signal(range(C), name="logit_row")
    adv = ~o.valid | o.ready
    with m.If(all_done & ~out_on):
        m.d.sync += [out_on.eq(1), emitting.eq(1), r.eq(0)]
    m.d.comb += [rd_addr.eq(Mux(out_on, head_base + r, ew_read_addr)),
                 rd_en.eq(~out_on | adv), hb_rd.addr.eq(r), hb_rd.en.eq(adv)]
    total = hb_rd.data
    for x in lane_results:
        total = total + x
    m.d.comb += o.payload.eq(total)
    with m.If(out_on & adv):
        m.d.sync += [o.valid.eq(emitting), last_out.eq(emitting & (r == C - 1))]
        with m.If(emitting):
            m.d.sync += r.eq(r + 1)
            with m.If(r == C - 1):
                m.d.sync += emitting.eq(0)
        with m.If(~emitting & (~o.valid | last_out)):
            # The last logit has been taken: the next sequence.
            m.d.comb += restart.eq(1)
    with m.If(restart):
        m.d.sync += [out_on.eq(0), last_out.eq(0)]
