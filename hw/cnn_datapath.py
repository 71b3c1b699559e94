"""Datapath pieces of the shared-array CNN (:class:`slimgen.hw.cnn.CNN`): constant products,
the input transform one row at a time, the incremental output transform, the requantizer and
the address tables of the activation banks.

The functions add logic to a module ``m`` and return its signals; they take plain numbers and
matrices, never the model (as leaves do, see STYLE.md).
"""

from amaranth.hdl import Array, Const, Mux, Signal, signed

from slimgen.sw.winograd import csd_digits

from .winograd_tile import const_mul

__all__ = ["const_times", "select_times", "input_transform_row", "output_transform",
           "requantizer", "window_tables"]


def const_times(m, x, c, width, name):
    """``c · x`` (signed ``width``, wrapping) for a constant ``c``: shifts for ±2^k."""
    if c == 0:
        return Const(0, signed(width))
    k = abs(c).bit_length() - 1
    if abs(c) == 1 << k:
        out = Signal(signed(width), name=name)
        m.d.comb += out.eq((x << k) if c > 0 else -(x << k))
        return out
    return const_mul(m, x, c, width, name)


def select_times(m, x, coeffs, index, width, name):
    """``coeffs[index] · x`` for constant ``coeffs``: one product per distinct coefficient."""
    products = {c: const_times(m, x, c, width, f"{name}_x{c}".replace("-", "m"))
                for c in sorted(set(coeffs)) if c}
    out = Signal(signed(width), name=name)
    if len(set(coeffs)) == 1:
        m.d.comb += out.eq(products.get(coeffs[0], 0))
    else:
        m.d.comb += out.eq(Array(products.get(c, Const(0, signed(width))) for c in coeffs)[index])
    return out


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
        row.append(running_sum(m, term, v == 0, en, v_bits, f"vacc{b}", f"vrow{b}"))
    return row


def running_sum(m, term, first, en, width, acc_name, total_name):
    """``acc + term`` (``term`` alone when ``first``), kept in ``acc`` on ``en``; returns the
    sum including this step's term."""
    acc = Signal(signed(width), name=acc_name)
    total = Signal(signed(width), name=total_name)
    m.d.comb += total.eq(Mux(first, 0, acc) + term)
    with m.If(en):
        m.d.sync += acc.eq(total)
    return total


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
            m.d.comb += t.eq(sum(const_times(m, M[r * al + b], AT[j][b], width,
                                             f"ta{r}_{j}_{b}") for b in range(al) if AT[j][b]))
            row.append(t)
        ts.append(row)
    Y = []
    for i in range(mt):
        for j in range(mt):
            term = sum(select_times(m, ts[r][j], [AT[i][k * rows + r] for k in range(S)], s,
                                    width, f"ys{i}{j}_{r}") for r in range(rows))
            Y.append(running_sum(m, term, s == 0, en, width, f"y{i}{j}", f"yt{i}{j}"))
    return Y


def requantizer(m, acc, multiplier, shift, out_bits, name):
    """``sat(relu((acc · M + 2^(s−1)) >> s))`` as :func:`slimgen.sw.fixed.requantize`, the
    constant ``M`` as shift-adds over its canonical signed digits (no DSP block)."""
    product = 0
    for pos, sign in csd_digits(multiplier):
        product = product + (acc << pos) if sign > 0 else product - (acc << pos)
    scaled = Signal(signed(acc.shape().width + multiplier.bit_length() + 2), name=name)
    m.d.comb += scaled.eq((product + (1 << (shift - 1))) >> shift)
    amax = (1 << out_bits) - 1
    return Mux(scaled < 0, 0, Mux(scaled > amax, amax, scaled))


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
