"""Direct-convolution tile engine: the baseline, with the same ports as the Winograd engine.

For an output tile of ``m × m`` positions and an ``r × r`` kernel the window is ``N × N``,
``N = m + r − 1``. ``lanes = q·r²`` multipliers compute, at step ``s``, the ``r²`` products of
``q`` outputs (``o = s·q + g``, ``g < q``): lane ``g·r² + t`` multiplies tap ``t = (a, b)`` of
the filter by ``d[i + a, j + b]`` for output ``(i, j) = divmod(o, m)``. Each group's ``r²``
products are summed by an adder tree and accumulated over input channels in block RAM
(address ``k·S + s``, ``S = m²/q``), exactly as the Winograd engine accumulates its transform
domain; there is no transform and no scale. Multiplications per output: ``r²``.

At equal throughput (outputs per cycle per input channel) the direct engine needs
``r²·m_w²/α²`` times the multipliers of an F(m_w×m_w, r×r) engine with as many lanes as its steps
use: for F(2×2, 3×3) with 4 lanes (1 output per cycle) the direct engine needs 9.
"""

from amaranth.hdl import signed

from slimgen.sw.fixed import signed_bits
from slimgen.sw.integer_model import IntConv

from .winograd_tile import TileEngine, check_conv, filter_range

__all__ = ["direct_tile"]


def direct_tile(layer: IntConv, *, tile=2, lanes=None) -> TileEngine:
    """The direct engine for ``layer``: ``tile × tile`` outputs per window, ``lanes = q·r²``
    multipliers with ``q`` dividing ``tile²`` (default ``r²``: one output per step)."""
    check_conv(layer)
    r = layer.kernel
    taps = r * r
    if not isinstance(tile, int) or tile < 1:
        raise ValueError(f"Tile must be a positive integer, not {tile!r}")
    lanes = taps if lanes is None else lanes
    if not isinstance(lanes, int) or lanes < taps or lanes % taps or (tile * tile) % (lanes // taps):
        raise ValueError(f"Lane count must be a multiple q·{taps} of the kernel's {taps} taps "
                         f"with q dividing {tile * tile}, not {lanes!r}")
    q = lanes // taps
    S = tile * tile // q
    N = tile + r - 1
    lane_v, gather_pos = [], []
    for s in range(S):
        row, pos = [], []
        for g in range(q):
            i, j = divmod(s * q + g, tile)
            pos.append(s * q + g)
            row += [(i + a) * N + (j + b) for a in range(r) for b in range(r)]
        lane_v.append(row)
        gather_pos.append(pos)
    W = layer.W.reshape(layer.c_out, layer.c_in, taps)
    lane_weights = []
    for l in range(lanes):
        t = l % taps
        lane_weights.append([int(W[k, c, t]) for k in range(layer.c_out)
                             for c in range(layer.c_in) for _ in range(S)])
    y_bits = signed_bits(*filter_range(layer.W, layer.in_bits))
    return TileEngine(
        window=(N, N), out_tile=(tile, tile), in_bits=layer.in_bits, c_in=layer.c_in,
        c_out=layer.c_out, lanes=lanes, steps=S, in_transform=None, lane_v=lane_v,
        lane_weights=lane_weights, weight_shape=signed(layer.weight_bits),
        groups=[list(range(g * taps, (g + 1) * taps)) for g in range(q)], gather_pos=gather_pos,
        n_gather=tile * tile, acc_bits=y_bits, out_transform=None, scale=(1, 0, 1),
        y_bits=y_bits)
