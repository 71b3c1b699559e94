"""The GRU's element-wise unit in the recurrent engine (:class:`slimgen.hw.lstm_engine.LstmEngine`
runs an LSTM's or a GRU's rows on its lanes; this unit replaces the LSTM's cell,
:mod:`slimgen.hw.lstm_datapath`, for a GRU): the gates' table indices, the candidate
``tanh((nx·2^F + r·nh)·M_n)`` and ``h_t``, on one or two multipliers with a fixed-phase
schedule (:data:`GRU_EW`), bit-exact with :func:`slimgen.sw.golden.gru_step`.
"""

from amaranth.hdl import Mux, Signal, signed, unsigned

from slimgen.sw.fixed import signed_bits

from .lib.requantizer import clamp, round_half_up, saturate
from .lstm_datapath import table_address

__all__ = ["GRU_EW", "gru_cell"]


#: The GRU element-wise unit's schedule by its multipliers: for each product (the gates'
#: scalings r, z, n; nh·r; z·(h' − n)) the multiplier and the offset from τ of its operand
#: write; the issue interval and the depth D (issue to h write, at τ + D − 1).
GRU_EW = {
    1: {"ii": 6, "depth": 12, "r": (0, 1), "z": (0, 2), "nh": (0, 4), "n": (0, 6), "h": (0, 9)},
    2: {"ii": 5, "depth": 14, "r": (0, 1), "z": (0, 2), "nh": (1, 4), "n": (0, 8), "h": (1, 11)},
}


def gru_cell(m, ew, z, t_rd, muls, h_rd, h_wr, h, *, consts, frac, h_frac, table_bits,
             plan, scale_drop=0):
    """The GRU's element-wise step on the multipliers ``muls`` (``(mx, my, mp)``, mp
    registered) as :data:`GRU_EW` ``plan`` places its products, the table port ``t_rd`` (σ
    at ``0 … 2^A − 1``, tanh after) and its own memory of h_{t−1} (``h_rd``, ``h_wr``, by
    rank), from the row sums ``z`` (+ bias) read at τ+0..3 in the order r, z, nh, nx;
    ``consts`` = (M, s, z_lo, z_hi) of gates r, z, n
    (:func:`slimgen.hw.lstm_engine.gate_constants`). On one multiplier (n: τ+6, h: τ+9)::

        τ+1  × z_r·M_r          τ+3  σ(u_r) read; nh held      τ+4  × nh·r; nx held
        τ+2  × z_z·M_z          τ+4  σ(u_z) read                τ+5  z held
        τ+n  × clip(nx·2^F + nh·r)·M_n     (held at τ+6 when n > 6)
        τ+n+2  tanh(u_n) read; h_{t−1} read
        τ+h = τ+n+3  × (h_{t−1}·2^(F − h_frac) − n)·z; n held   (z copied at τ+h−2 if needed)
        τ+h+2  h = sat(round((n·2^F + z·(h_{t−1}·2^(F − h_frac) − n)) >> 2F − h_frac))

    which is the golden model's ``(2^F − z)·n + z·h_{t−1}·2^(F − h_frac)`` rearranged.
    Each multiplier's operand writes and the table reads are pairwise different modulo the
    issue interval, and no product is read after a later write has replaced it.
    ``scale_drop``: the low bits the gates' multiplier drops (on two multipliers; below every
    shift s_g). Drives ``h`` (h_frac + 1 bits)."""
    F, A, ii = frac, table_bits, plan["ii"]
    (M_r, s_r, lo_r, hi_r), (M_z, s_z, lo_z, hi_z), (M_n, s_n, lo_n, hi_n) = consts
    d_n, d_h = plan["n"][1], plan["h"][1]
    # r's table data at τ+4; n's at τ+n+3; h written to the lanes at τ+D−1, to the h memory
    # here; the table indices from one product
    assert plan["nh"][1] == 4 and d_h == d_n + 3 and d_n >= 6
    assert plan["depth"] == d_h + 3 and plan["r"][0] == plan["z"][0] == plan["n"][0]

    def put(name, x, y):
        mx, my, _ = muls[plan[name][0]]
        with m.If(ew.valid[plan[name][1]]):
            m.d.sync += [mx.eq(x), my.eq(y)]

    def product(name):
        return muls[plan[name][0]][2]

    nh = Signal(signed(len(z)), name="gru_nh")
    nx = Signal(signed(len(z)), name="gru_nx")
    zg = Signal(unsigned(F + 1), name="gru_z")          # σ: 0 ≤ z ≤ 2^F
    n = Signal(signed(F + 2), name="gru_n")             # tanh: |n| ≤ 2^F
    put("r", clamp(z, lo_r, hi_r), M_r)
    put("z", clamp(z, lo_z, hi_z), M_z)
    with m.If(ew.valid[3]):
        m.d.sync += nh.eq(z)
    with m.If(ew.valid[4]):
        m.d.sync += nx.eq(z)
    put("nh", nh, t_rd.data)
    with m.If(ew.valid[5]):
        m.d.sync += zg.eq(t_rd.data)
    zn = clamp((nx << F) + product("nh"), lo_n, hi_n)
    if d_n > 6:          # nh·r is replaced before τ+n: held from τ+6
        zn_held = Signal(signed(signed_bits(lo_n, hi_n)), name="gru_zn")
        with m.If(ew.valid[6]):
            m.d.sync += zn_held.eq(zn)
        zn = zn_held
    put("n", zn, M_n)
    z_h = zg
    # z arrives at τ+5 and the next neuron's at τ+ii+5 (visible a cycle later): read after
    # that (two multipliers: τ+11, ii 5), a copy at τ+h−2, which the next copy follows
    if d_h - 5 >= ii:
        z_h = Signal(unsigned(F + 1), name="gru_z2")
        with m.If(ew.valid[d_h - 2]):
            m.d.sync += z_h.eq(zg)
    h_prev = Mux(ew.first_step[d_h], 0, h_rd.data)
    with m.If(ew.valid[d_h]):
        m.d.sync += n.eq(t_rd.data)
    put("h", (h_prev << (F - h_frac)) - t_rd.data, z_h)
    scaled = product("n")             # the gates' scalings are on one multiplier
    u = {g: saturate(m, round_half_up(scaled, s_g - scale_drop), A, name=f"u_{g}")
         for g, s_g in (("r", s_r), ("z", s_z), ("n", s_n))}
    t_addr = Signal(A + 1, name="t_addr")
    for d, g in ((3, "r"), (4, "z"), (d_n + 2, "n")):
        with m.If(ew.valid[d]):
            m.d.comb += t_addr.eq(table_address(u[g], g == "n", A))
    m.d.comb += [t_rd.addr.eq(t_addr), t_rd.en.eq(1)]
    m.d.comb += h.eq(saturate(m, round_half_up((n << F) + product("h"), 2 * F - h_frac),
                              h_frac + 1, name="h"))
    m.d.comb += [h_rd.addr.eq(ew.rank[d_n + 2]), h_rd.en.eq(1),
                 h_wr.addr.eq(ew.rank[d_h + 2]), h_wr.data.eq(h),
                 h_wr.en.eq(ew.valid[d_h + 2])]
