"""Datapath pieces of the shared-array CNN (:class:`slimgen.hw.cnn.CNN`): the input transform
one row at a time, the incremental output transform and the address tables of the activation
banks (constant products, running sums and the requantizer come from :mod:`slimgen.hw.lib`).

The functions add logic to a module ``m`` and return its signals; they take plain numbers and
matrices, never the model (as leaves do, see STYLE.md).
"""

from amaranth.hdl import Signal, signed

from .lib.const_mul import const_times, select_times
from .lib.mac_lane import accumulate

__all__ = ["input_transform_row", "output_transform", "window_tables"]


def input_transform_row(m, d, a, v, en, BT, z_bits, v_bits):
    """Row ``a`` of ``V = BT d B`` from the window's columns, one column ``v`` per cycle::

        z = Σ_u BT[a, u] · d[u, v]        V[a, b] = Σ_v BT[b, v] · z_v

    ``d``: the ``N`` pixels of column ``v`` (signed); ``en``: the column is valid. Returns the
    ``α`` sums including this column's term; they are the row when ``v = N − 1``.
    """
    al, N = len(BT), len(BT[0])
    z = Signal(signed(z_bits), name="z")
    m.d.comb += z.eq(sum(select_times(m, d[u], [BT[r][u] for r in range(al)], a, z_bits,
                                      f"zt{u}") for u in range(N)))
    row = []
    for b in range(al):
        term = select_times(m, z, [BT[b][c] for c in range(N)], v, v_bits, f"vt{b}")
        row.append(accumulate(m, term, first=v == 0, en=en, shape=signed(v_bits),
                              name=f"vrow{b}")[0])
    return row


def output_transform(m, M, s, en, AT, rows, width):
    """``Y = AT M A`` accumulated over the steps: step ``s`` brings rows ``s·R … s·R + R − 1``
    of ``M`` (``M[r·α + b]``, ``R = rows``), each giving ``t = M[a, :] A`` and
    ``Y += AT[:, a] ⊗ t``; arithmetic modulo ``2^width``. ``en``: this step's rows are valid.
    Returns the ``m²`` sums (row-major) including this step; ``Y`` when ``s`` is the last."""
    mt, al = len(AT), len(AT[0])
    S = al // rows
    ts = []                              # ts[r][j] = Σ_b AT[j][b] · M[r, b]
    for r in range(rows):
        row = []
        for j in range(mt):
            t = Signal(signed(width), name=f"t{r}_{j}")
            m.d.comb += t.eq(sum(const_times(m, M[r * al + b], AT[j][b], width=width,
                                             name=f"ta{r}_{j}_{b}") for b in range(al)
                                 if AT[j][b]))
            row.append(t)
        ts.append(row)
    Y = []
    for i in range(mt):
        for j in range(mt):
            term = sum(select_times(m, ts[r][j], [AT[i][k * rows + r] for k in range(S)], s,
                                    width, f"ys{i}{j}_{r}") for r in range(rows))
            Y.append(accumulate(m, term, first=s == 0, en=en, shape=signed(width),
                                name=f"y{i}{j}")[0])
    return Y


def window_tables(layers, *, tile, window, tiles_h, tiles_w):
    """Address tables of the window reads, per layer ``(Cin, H, W, padding, base)``.

    Input row ``y`` lives in bank ``y mod N`` at ``base + (y div N)·W·Cin``, pixel ``(x, c)``
    at ``+ x·Cin + c``. For tile row ``ty`` (window rows ``y0 = ty·m − p …``): ``raddr[ty][b]``
    the row address bank ``b`` reads, ``rbank[ty][u]`` the bank of window row ``u`` and
    ``rok[ty][u]`` whether it is inside the image; for ``xi = tx·m + v``: ``xcol[xi] = x·Cin``
    and ``xok[xi]``. Lists per layer, padded to ``tiles_h`` and ``tiles_w·m + N`` entries.
    """
    N, mt = window, tile
    out = {"raddr": [], "rbank": [], "rok": [], "xcol": [], "xok": []}
    for cin, h, w, p, base in layers:
        ra, rb, ro = [], [], []
        for ty in range(tiles_h):
            y0 = ty * mt - p
            ys = [y0 + u for u in range(N)]
            ok = [int(0 <= y < h) for y in ys]
            row = [base + (y // N) * w * cin if o else 0 for y, o in zip(ys, ok)]
            ra.append([row[(b - y0) % N] for b in range(N)])
            rb.append([y % N for y in ys])
            ro.append(ok)
        xs = [xi - p for xi in range(tiles_w * mt + N)]
        for key, value in (("raddr", ra), ("rbank", rb), ("rok", ro),
                           ("xcol", [x * cin if 0 <= x < w else 0 for x in xs]),
                           ("xok", [int(0 <= x < w) for x in xs])):
            out[key].append(value)
    return out
