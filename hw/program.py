"""Layer programs: what the shared-array engine (:mod:`slimgen.hw.engine`) executes for each
record of an integer model, in plain Python (no Amaranth), with a pure-Python executor and
the engine's exact cycle count.

Every layer runs the same loop nest over channels-last activations x (H, W, C) (a vector is
1×1×n, a sequence 1×W×C)::

    for (oy, ox) in raster order of the output:                  # positions
        for group g (output channels ch0 … ch0 + L − 1, L ≤ P lanes):
            for tap (ky, kx, c) in taps[g]:                       # one cycle each
                iy, ix = oy·s − pad_top + ky, ox·s − pad_left + kx
                v = x[iy, ix, c + chan] if 0 ≤ iy < H and 0 ≤ ix < W else 0
                acc[p] = op(acc[p], v, w[tap, p])  for every lane p < L
            y[oy, ox, ch0 + p] = out(acc[p])  for p < L           # one requantizer, L cycles

- ``mac`` (convolution 1-D/2-D, dense = a 1×1 convolution on a 1×1 image of n_in channels):
  lanes are output channels; the input value is broadcast and every lane multiplies it by its
  own weight; ``acc = b + Σ w·v``; taps where every lane of the group has a zero weight are
  left out (pruned filters cost no cycles); ``chan = 0``.
- ``max`` / ``avg`` (pools, any size and stride, global = one window over the whole input):
  one lane, one group per channel (``chan = ch0``), the window's taps; ``acc = max v`` or
  ``Σ v`` (then requantized).
- ``out``: ``sat(relu(round_half_up(acc · M[ch], shift)))`` (:func:`slimgen.sw.fixed
  .requantize`) or the raw accumulator (max pools, the logits), then ``max(·, 0)`` where an
  :class:`~slimgen.sw.integer_model.IntRelu` follows. Flatten is free: channels-last memory
  is already in the flattened order (``x.reshape(n, −1)`` of the golden model).

Tap addresses are ``pos_base + off`` with ``off = (ky·W + kx)·C + c`` from a per-layer table
and ``pos_base = (oy·s − pad_top)·W·C + (ox·s − pad_left)·C`` kept by adders; the bounds
check zeroes taps in the padding, their cycle is still spent.

Cycles (:func:`layer_cycles`): one per tap issued; a group's last tap waits until the
requantizer has drained the previous group (its L lanes, one a cycle), so a group costs
``max(T, L_prev)`` cycles. Nothing waits for a whole stage to end: layer 0 starts while the
inputs arrive, a layer starts while the previous one drains, the logits go to the argmax as
they are written; a tap waits only for its own input word (:func:`schedule`, whose cycles
:func:`network_cycles` counts exactly).

``wino`` (a convolution of stride 1 on a Winograd/CRT algorithm of :mod:`slimgen.sw.winograd`
in integer form, :class:`Wino`: F(m, r) in 1-D, F(m×m, r×r) in 2-D, the 1-D algorithm on the
flattened tile, :func:`wino_2d`): positions are tiles of m outputs, m × m in 2-D (``ox``,
and ``oy`` in 2-D, step by m); a group's taps are blocks of α entries (α² in 2-D), one block
per input channel c whose filters are not all zero in the group::

    for tile (ty, tx), group g, channel block c:                # α cycles each
        d[e] = x[ty·m − pad_top + a, tx·m − pad_left + b, c]   (entry e: tile row a, column b,
               e = a·N + b, N = m + r − 1; a = 0, e = b in 1-D; read on entries e < N^dims)
        V = BT d                         (one input-transform unit, shift-add network)
        M[j, p] += V[j] · U[p, c, j]     for j < α, every lane p   (U = G g: weight memory)
    for lane p < L, output n < m^dims:                          # the drain, m^dims·L cycles
        y = (AT M[:, p])_n / (2^k·q) + b[p]   (exact: a shift, then q⁻¹ modulo 2^y_bits)
        out(y) written at row ty·m + n // m, column tx·m + n % m when inside the output
        (an edge tile's extra outputs are dropped)

The products of a block run α cycles behind its reads, so a layer ends ``α + 1`` cycles later
(``tail``), and a group's drain lasts ``m^dims·L`` cycles (``drain``); the next layer waits
until the last drain has ended (its words are not written in address order); otherwise the
cycle count is the one above.

A max pool whose window is the tile (m × m, stride m; :func:`fuse_pool`) runs in the drain:
each lane's m^dims outputs go through a running max and one word is written, at the pooled
position ``(ty, tx)``, so the words come in address order, the pool takes no cycle, and
only the tiles the pool keeps are run.
"""

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from slimgen.sw.fixed import requantize, signed_bits
from slimgen.sw.integer_model import act_range

__all__ = ["LayerProgram", "Wino", "wino_algorithm", "wino_2d", "wino_program", "fuse_pool",
           "build_programs",
           "execute", "layer_cycles", "layer_mults", "network_cycles", "schedule", "cool_end", "settle_end",
           "MUTATIONS", "MAX_OPERAND_BITS"]

# The signed operands one multiplier takes (ECP5's 18×18 blocks).
MAX_OPERAND_BITS = 18
# Bugs planted on purpose, so the tests can show that the fuzz bench catches them:
# "pad_edge": the bounds check drops the last row and column of every input (off by one);
# "shift": every requantization shifts one bit too far;
# "transform": a Winograd layer's output transform has its first constant one too large.
MUTATIONS = ("pad_edge", "shift", "transform")


@dataclass(frozen=True)
class Wino:
    """An algorithm F(m, r) (``dims`` 1) or F(m×m, r×r) (``dims`` 2) as the engine runs it:
    ``y = AT[(G g) ⊙ (BT d)] / (2^k·q)`` with integer ``BT`` (α × N), ``G`` (α × r) and
    ``AT`` (m × α), ``q`` odd. The 2-D algorithm is the 1-D one on the row-major flattened
    tile (:func:`wino_2d`): ``BT ⊗ BT``, ``G ⊗ G``, ``AT ⊗ AT``, scale ``(2^k·q)²``, since
    ``vec(BT d B) = (BT ⊗ BT) vec(d)``; ``alpha``, ``reads`` and ``outs`` count its points,
    tile entries and outputs (α², N², m²), ``m`` and ``r`` stay per side."""
    name: str
    m: int
    r: int
    BT: tuple
    AT: tuple
    G: tuple
    k: int
    q: int
    dims: int = 1

    @property
    def alpha(self):
        """Points of the algorithm: the running sums per lane, the products per block."""
        return len(self.BT)

    @property
    def N(self):
        """Input tile entries per side, ``m + r − 1``."""
        return self.m + self.r - 1

    @property
    def reads(self):
        """Input tile entries BT takes: ``N`` or ``N²``."""
        return len(self.BT[0])

    @property
    def outs(self):
        """Outputs of a tile: ``m`` or ``m²``."""
        return len(self.AT)

    def entry(self, j):
        """The (row, column) of the tile that block entry ``j`` reads. Entries past the
        tile's (a CRT algorithm's extra points) read a word that is not used: in 1-D the
        column ``j`` (an engine without 2-D layers indexes its tile registers by the column),
        in 2-D the first entry (the engine counts the entries)."""
        if self.dims == 1:
            return (0, j)
        return divmod(j, self.N) if j < self.reads else (0, 0)


def wino_algorithm(m, r, moduli="toomcook"):
    """:class:`Wino` of F(m, r) from :func:`slimgen.sw.winograd.winograd_1d` (``moduli``
    ``"toomcook"`` or ``"crt"``) in :func:`~slimgen.sw.winograd.integer_form`; named
    ``"F(m, r) Toom-Cook"`` or ``"F(m, r) CRT"`` after its moduli."""
    from slimgen.sw.winograd import integer_form, winograd_1d
    alg = winograd_1d(m, r, moduli)
    form = integer_form(alg)
    scale = Fraction(form.scale)
    if scale.numerator != 1:
        raise ValueError(f"{alg.name} has the output scale {scale}; the engine takes 1/n only")
    q = scale.denominator
    k = (q & -q).bit_length() - 1
    ints = lambda M: tuple(tuple(int(v) for v in row) for row in M)      # noqa: E731
    kind = "Toom-Cook" if alg.is_toom_cook else "CRT"
    return Wino(f"{alg.name} {kind}", m, r, ints(form.BT.matrix), ints(form.AT.matrix),
                ints(form.G.matrix), k, q >> k)


def wino_2d(wino):
    """The 2-D algorithm F(m×m, r×r) nested from a 1-D :class:`Wino` F(m, r) (its docstring)."""
    if wino.dims != 1:
        raise ValueError(f"{wino.name} is already 2-D")
    kron = lambda M: tuple(tuple(int(v) for v in row)                # noqa: E731
                           for row in np.kron(np.array(M, dtype=np.int64),
                                              np.array(M, dtype=np.int64)))
    m, r = wino.m, wino.r
    name = wino.name.replace(f"F({m}, {r})", f"F({m}×{m}, {r}×{r})")
    return Wino(name, m, r, kron(wino.BT), kron(wino.AT), kron(wino.G), 2 * wino.k,
                wino.q * wino.q, dims=2)


@dataclass(frozen=True, eq=False)
class LayerProgram:
    """One layer on the engine (module docstring): ``op`` ``"mac"``, ``"wino"``, ``"max"`` or
    ``"avg"``.

    Shapes: ``in_shape`` (H, W, C), ``out_shape`` (OH, OW, CO); ``groups`` a tuple of
    ``(ch0, L, taps)`` with taps ``((ky, kx, c), …)``; ``weights`` (n_taps, P) int64, the rows
    in the order the groups list their taps (a pool's rows are zero and its taps are listed
    once and shared by all groups); ``bias`` (CO,); ``multiplier`` (CO,) or None when the
    output is the raw accumulator; ``lo``, ``hi`` the output range; ``limit`` (H, W) the
    bounds the check compares with (the input's size unless a mutation moved it)."""
    name: str
    op: str
    source: int
    in_shape: tuple
    out_shape: tuple
    stride: int
    pad: tuple                      # (pad_top, pad_left)
    groups: tuple
    weights: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: int
    lo: int
    hi: int
    post_relu: bool
    limit: tuple
    lanes: int
    weight_bits: int
    acc_bits: int
    kernel_shape: tuple = ()        # the record's W shape, for the summary
    wino: Wino = None               # op "wino" only
    v_bits: int = 0                 # op "wino": signed width of V = BT d (a multiplier operand)
    y_bits: int = 0                 # op "wino": signed width of the exact y − b
    fused_pool: int = None          # op "wino": the record of a max pool in its drain (fuse_pool)

    @property
    def pooled(self):
        """A max pool over each tile runs in the drain (:func:`fuse_pool`): ``out_shape`` is
        the pooled one, a position is a whole tile, and a lane writes one word a tile."""
        return self.fused_pool is not None

    @property
    def m(self):
        """Outputs per position along the row (a tile's m, else 1)."""
        return self.wino.m if self.wino else 1

    @property
    def mh(self):
        """Output rows per position: a 2-D tile's m, else 1."""
        return self.wino.m if self.wino and self.wino.dims == 2 else 1

    @property
    def outs(self):
        """Outputs per lane and position: ``mh·m`` (a tile's), else 1."""
        return self.mh * self.m

    @property
    def step(self):
        """The walker's step between positions along a row: the tile's m or the stride."""
        return self.wino.m if self.wino else self.stride

    @property
    def ystep(self):
        """The walker's step between rows of positions: a 2-D tile's m or the stride."""
        return self.mh if self.mh > 1 else self.stride

    @property
    def positions(self):
        """(rows, positions per row) the walker visits: tiles of m × m (2-D) or m for
        ``wino``."""
        OH, OW, _ = self.out_shape
        if self.pooled:         # one pooled output a tile; a tile the pool drops is not run
            return (OH, OW)
        return (-(-OH // self.mh), -(-OW // self.m))

    @property
    def tail(self):
        """Cycles a layer's products run behind its last tap: ``α + 1`` for ``wino``."""
        return self.wino.alpha + 1 if self.wino else 0

    @property
    def taps(self):
        """Tap entries of the tap table: each group's own list, or the pool's window once."""
        if self.op in ("mac", "wino"):
            return [t for _, _, taps in self.groups for t in taps]
        return list(self.groups[0][2])

    @property
    def requant(self):
        return self.multiplier is not None

    @property
    def n_out(self):
        return int(np.prod(self.out_shape))

    @property
    def n_in(self):
        return int(np.prod(self.in_shape))

    @property
    def out_bits(self):
        """Signed width that holds every output."""
        return signed_bits(self.lo, self.hi)


# ------------------------------------------------------------------ building

def _as_hwc(shape):
    """A channels-last activation shape (*spatial, C) as (H, W, C)."""
    shape = tuple(int(v) for v in shape)
    if len(shape) == 1:
        return (1, 1, shape[0])
    if len(shape) == 2:
        return (1, *shape)
    return shape


def _limit(in_shape, mutation):
    H, W, _ = in_shape
    if mutation == "pad_edge":
        return (H - 1 if H > 1 else H, W - 1 if W > 1 else W)
    return (H, W)


def _mac_groups(Wk, lanes):
    """Groups of ≤ lanes output channels and their taps with a non-zero weight in some lane.

    Wk (CO, KH, KW, C) → ``groups``, ``weights`` (n_taps, lanes). A group whose weights are
    all zero keeps one (zero) tap so it still gives its bias."""
    CO = Wk.shape[0]
    groups, rows = [], []
    for ch0 in range(0, CO, lanes):
        L = min(lanes, CO - ch0)
        block = Wk[ch0:ch0 + L]                                   # (L, KH, KW, C)
        used = np.argwhere(np.any(block != 0, axis=0))            # (T, 3): ky, kx, c
        if not len(used):
            used = np.zeros((1, 3), dtype=np.int64)
        taps = tuple((int(ky), int(kx), int(c)) for ky, kx, c in used)
        for ky, kx, c in taps:
            row = np.zeros(lanes, dtype=np.int64)
            row[:L] = block[:, ky, kx, c]
            rows.append(row)
        groups.append((ch0, L, taps))
    return tuple(groups), np.array(rows, dtype=np.int64).reshape(-1, lanes)


def _range(bits, relu):
    return act_range(bits, not relu)


def _interval(coeffs, lo, hi):
    """(lo, hi) of Σ coeffs[i]·v[i] over v[i] ∈ [lo[i], hi[i]] (arrays broadcast)."""
    coeffs = np.asarray(coeffs, dtype=np.int64)
    return (int(np.sum(np.where(coeffs > 0, coeffs * lo, coeffs * hi))),
            int(np.sum(np.where(coeffs > 0, coeffs * hi, coeffs * lo))))


def _wino_groups(U, lanes, wino):
    """Groups of ≤ lanes output channels and their channel blocks (α taps ``(*entry(j), c)``
    each, :meth:`Wino.entry`) where some lane's Winograd-domain weights are not all zero.

    U (CO, C, α) → ``groups``, ``weights`` (n_taps, lanes). A group whose weights are all
    zero keeps the block of channel 0 so it still gives its bias."""
    CO, _, alpha = U.shape
    groups, rows = [], []
    for ch0 in range(0, CO, lanes):
        L = min(lanes, CO - ch0)
        block = U[ch0:ch0 + L]                                    # (L, C, α)
        used = [int(c) for c in np.flatnonzero(np.any(block != 0, axis=(0, 2)))] or [0]
        taps = tuple((*wino.entry(j), c) for c in used for j in range(alpha))
        for c in used:
            for j in range(alpha):
                row = np.zeros(lanes, dtype=np.int64)
                row[:L] = block[:, c, j]
                rows.append(row)
        groups.append((ch0, L, taps))
    return tuple(groups), np.array(rows, dtype=np.int64).reshape(-1, lanes)


def _wino_widths(wino, W, U, in_range):
    """``(v_bits, acc_bits, y_bits)`` of a Winograd layer, from the exact intervals of
    V = BT d, of every lane's running sums M and of P = AT M, and of the true y = Σ w·x."""
    lo, hi = in_range
    V = [_interval(row, lo, hi) for row in wino.BT]
    vlo, vhi = np.array([v[0] for v in V]), np.array([v[1] for v in V])
    ranges = [(lo, hi), *V]
    y_lo = y_hi = 0
    for co in range(U.shape[0]):
        # M[j] = Σ_c U[co, c, j]·V[j]: the products' bounds, then every partial sum's
        prods = [_interval(U[co, :, j][:, None], vlo[j], vhi[j]) for j in range(wino.alpha)]
        neg = [sum(min(0, U[co, c, j] * vlo[j], U[co, c, j] * vhi[j])
                   for c in range(U.shape[1])) for j in range(wino.alpha)]
        pos = [sum(max(0, U[co, c, j] * vlo[j], U[co, c, j] * vhi[j])
                   for c in range(U.shape[1])) for j in range(wino.alpha)]
        ranges += prods + list(zip(neg, pos))
        Mlo, Mhi = np.array(neg), np.array(pos)
        ranges += [_interval(row, Mlo, Mhi) for row in wino.AT]
        ylo, yhi = _interval(W[co].ravel(), lo, hi)
        y_lo, y_hi = min(y_lo, ylo), max(y_hi, yhi)
    v_bits = signed_bits(int(vlo.min()), int(vhi.max()))
    y_bits = signed_bits(y_lo, y_hi)
    return v_bits, max(signed_bits(a, b) for a, b in ranges), y_bits


def wino_program(k, layer, in_shape, lanes, mutation, wino, in_range):
    """The program of record ``k``, a convolution of stride 1 (1-D or 2-D as ``wino``), on
    ``wino`` (module docstring), for an input of ``in_shape`` (H, W, C) with values in
    ``in_range``."""
    H, W, C = in_shape
    kernel = (wino.r,) * wino.dims
    if layer.dims != wino.dims or layer.stride != 1 or tuple(layer.W.shape[2:]) != kernel:
        raise ValueError(f"Layer {k} (conv) is not a {wino.dims}-D convolution of stride 1 "
                         f"with a {'×'.join(map(str, kernel))} kernel, which {wino.name} "
                         f"needs")
    if mutation == "transform":
        AT = ((wino.AT[0][0] + 1, *wino.AT[0][1:]), *wino.AT[1:])
        from dataclasses import replace
        wino = replace(wino, AT=AT)
    g = layer.W.reshape(layer.c_out, layer.c_in, -1)                # (CO, C, r^dims)
    U = np.einsum("ju,kcu->kcj", np.array(wino.G, dtype=np.int64), g)       # (CO, C, α)
    groups, weights = _wino_groups(U, lanes, wino)
    v_bits, acc_bits, y_bits = _wino_widths(wino, layer.W, U, in_range)
    b = layer.b.astype(np.int64)
    y_range = (-(1 << (y_bits - 1)) + int(b.min()), (1 << (y_bits - 1)) - 1 + int(b.max()))
    M, shift, lo, hi = _requant(layer, mutation)
    return LayerProgram(
        name=f"conv{k}", op="wino", source=k, in_shape=tuple(in_shape),
        out_shape=(1, layer.out_size(W, 0), layer.c_out) if wino.dims == 1 else
        (layer.out_size(H, 0), layer.out_size(W, 1), layer.c_out), stride=1,
        pad=(0, layer.pad[0][0]) if wino.dims == 1 else (layer.pad[0][0], layer.pad[1][0]),
        groups=groups, weights=weights, bias=b.copy(),
        multiplier=None if M is None else M.copy(), shift=shift, lo=lo, hi=hi,
        post_relu=False, limit=_limit(in_shape, mutation), lanes=lanes,
        weight_bits=layer.weight_bits, acc_bits=max(acc_bits, signed_bits(*y_range)),
        kernel_shape=tuple(layer.W.shape), wino=wino, v_bits=v_bits, y_bits=y_bits)


def _requant(layer, mutation):
    """``(M per output channel or None, shift, lo, hi)``: the layer's requantizer, or none
    (the accumulator's own range) for the logits."""
    if not layer.requant:
        return None, 0, -(1 << (layer.acc_bits - 1)), (1 << (layer.acc_bits - 1)) - 1
    M = np.broadcast_to(np.asarray(layer.multiplier, dtype=np.int64), (layer.c_out,))
    return M, layer.shift + (mutation == "shift"), *_range(layer.out_bits, layer.relu)


def _weighted(k, layer, in_shape, lanes, mutation):
    if layer.kind == "dense":
        n_in = int(np.prod(in_shape))
        if n_in != layer.n_in:
            raise ValueError(f"Layer {k} (dense) takes {layer.n_in} inputs, but its input has "
                             f"{n_in} values")
        in_shape = (1, 1, n_in)
        Wk = layer.W[:, None, None, :]                            # (CO, 1, 1, n_in)
        stride, pad, out = 1, (0, 0), (1, 1, layer.n_out)
    else:
        H, W, C = in_shape
        if layer.c_in != C:
            raise ValueError(f"Layer {k} (conv) takes {layer.c_in} channels, not {C}")
        if layer.dims == 1:
            Wk = layer.W[:, :, None, :]                           # (CO, C, 1, K)
            pad = (0, layer.pad[0][0])
            out = (1, layer.out_size(W, 0), layer.c_out)
        else:
            Wk = layer.W
            pad = (layer.pad[0][0], layer.pad[1][0])
            out = (layer.out_size(H, 0), layer.out_size(W, 1), layer.c_out)
        Wk = np.moveaxis(Wk, 1, -1)                               # (CO, KH, KW, C)
        stride = layer.stride
    groups, weights = _mac_groups(Wk, lanes)
    M, shift, lo, hi = _requant(layer, mutation)
    return LayerProgram(
        name=f"{layer.kind}{k}", op="mac", source=k, in_shape=tuple(in_shape), out_shape=out,
        stride=stride, pad=pad, groups=groups, weights=weights, bias=layer.b.copy(),
        multiplier=None if M is None else M.copy(), shift=shift, lo=lo, hi=hi, post_relu=False,
        limit=_limit(in_shape, mutation), lanes=lanes, weight_bits=layer.weight_bits,
        acc_bits=layer.acc_bits, kernel_shape=tuple(layer.W.shape))


def _pool(k, layer, in_shape, lanes, mutation):
    H, W, C = in_shape
    if layer.global_:
        kh, kw, stride, out = H, W, 1, (1, 1, C)
    else:
        kh, kw, stride = (layer.size if layer.dims == 2 else 1), layer.size, layer.stride
        out = ((H - kh) // stride + 1, (W - kw) // stride + 1, C)
    if min(out) < 1:
        raise ValueError(f"Layer {k} (pool) has a {kh}×{kw} window on a {H}×{W} input")
    taps = tuple((ky, kx, 0) for ky in range(kh) for kx in range(kw))
    groups = tuple((c, 1, taps) for c in range(C))
    lo, hi = act_range(layer.bits, layer.signed)
    avg = layer.op == "avg"
    shift = layer.shift + (avg and mutation == "shift")
    acc_bits = signed_bits(lo * kh * kw, hi * kh * kw)
    return LayerProgram(
        name=f"{layer.op}pool{k}", op=layer.op, source=k, in_shape=tuple(in_shape),
        out_shape=out, stride=stride, pad=(0, 0), groups=groups,
        weights=np.zeros((len(taps), lanes), dtype=np.int64), bias=np.zeros(C, dtype=np.int64),
        multiplier=np.full(C, layer.multiplier, dtype=np.int64) if avg else None,
        shift=shift if avg else 0, lo=lo, hi=hi, post_relu=False,
        limit=_limit(in_shape, mutation), lanes=lanes, weight_bits=2, acc_bits=acc_bits,
        kernel_shape=(kh, kw))


def fuse_pool(p, k, layer):
    """``p`` (a ``wino`` program) with the max pool of record ``k`` (``layer``) in its drain,
    or None when the pool's window is not the tile: a max pool (not global) of the tile's
    size (m × m in 2-D, m in 1-D) and stride m on ``p``'s output. Each lane then drains its
    tile's m^dims outputs through a running max and writes one word, at the pooled position
    ``(ty, tx)``, so the layer's words come in address order (the next layer need not wait
    for its end), the pool costs no cycle, and a tile the pool drops (an odd edge) is not
    run: ``max(clamp(y))`` is ``clamp(max(y))``, the golden model's pool of the outputs."""
    if p.op != "wino" or p.pooled or layer.kind != "pool" or layer.op != "max" \
            or layer.global_ or layer.stride != p.m or layer.size != p.m \
            or layer.dims != p.wino.dims:
        return None
    OH, OW, CO = p.out_shape
    pooled = (OH // p.mh, OW // p.m, CO)
    if min(pooled) < 1:
        return None
    return _replace(p, out_shape=pooled, fused_pool=k)


def build_programs(int_net, *, lanes, mutation=None, algorithms=None):
    """The layer programs of an :class:`~slimgen.sw.integer_model.IntNetwork` on ``lanes``
    lanes: one per convolution, dense or pool record; a flatten costs nothing and a ReLU
    record becomes the previous program's ``post_relu``, a max pool whose window is a
    Winograd layer's tile goes into its drain (:func:`fuse_pool`). ``algorithms``: ``{record index:
    Wino}`` for the convolutions that run on a Winograd/CRT algorithm (the others run
    direct). ``mutation``: one of :data:`MUTATIONS` (tests only), else None. ``ValueError``
    names what cannot run."""
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
        raise ValueError(f"Lanes must be a positive integer, not {lanes!r}")
    if mutation is not None and mutation not in MUTATIONS:
        raise ValueError(f"Mutation must be one of {', '.join(MUTATIONS)} or None, not "
                         f"{mutation!r}")
    algorithms = dict(algorithms or {})
    shape = _as_hwc(int_net.network.input_shape)
    in_range = (0, (1 << int_net.input_bits) - 1)
    programs = []
    for k, layer in enumerate(int_net.layers):
        if layer.kind == "recurrent":
            raise ValueError(f"Layer {k} is a recurrent {layer.cell} cell; the compiler takes "
                             f"feed-forward layers only (convolution, dense, pool, flatten, "
                             f"relu)")
        if programs:
            in_range = (programs[-1].lo, programs[-1].hi)
        if algorithms.get(k) is not None:
            programs.append(wino_program(k, layer, shape, lanes, mutation, algorithms[k],
                                             in_range))
        elif layer.kind in ("dense", "conv"):
            programs.append(_weighted(k, layer, shape, lanes, mutation))
        elif layer.kind == "pool" and programs and fuse_pool(programs[-1], k, layer):
            programs[-1] = fuse_pool(programs[-1], k, layer)
        elif layer.kind == "pool":
            programs.append(_pool(k, layer, shape, lanes, mutation))
        elif layer.kind == "flatten":
            shape = (1, 1, int(np.prod(shape)))
            continue
        elif layer.kind == "relu":
            if programs:
                p = programs[-1]
                programs[-1] = _replace(p, post_relu=True, lo=max(p.lo, 0), hi=max(p.hi, 0))
            continue          # a ReLU on the unsigned input codes changes nothing
        else:
            raise ValueError(f"Layer {k} is of kind {layer.kind!r}, which the compiler does "
                             f"not take")
        shape = programs[-1].out_shape
    if not programs:
        raise ValueError("The network has no convolution, dense or pool layer to compile")
    if programs[-1].n_out != int_net.n_classes:
        raise ValueError(f"The last layer gives {programs[-1].n_out} values, not the "
                         f"{int_net.n_classes} logits")
    return programs


def _replace(p, **changes):
    from dataclasses import replace
    return replace(p, **changes)


# ------------------------------------------------------------------ executing

def _positions(p):
    OH, OW, _ = p.out_shape
    return ((oy, ox) for oy in range(OH) for ox in range(OW))


def remove_scale(P, wino, y_bits):
    """y = P / (2^k·q) as the engine computes it: an arithmetic shift by k, then the product
    with q⁻¹ modulo 2^y_bits read as signed (exact whenever y fits y_bits signed bits)."""
    t = np.asarray(P, dtype=np.int64) >> wino.k
    if wino.q == 1:
        return t
    assert y_bits <= 31, "the wrapped product fits int64"
    mask = (1 << y_bits) - 1
    y = ((t & mask) * pow(wino.q, -1, 1 << y_bits)) & mask
    return np.where(y >> (y_bits - 1), y - (1 << y_bits), y)


def _run_wino(p, x):
    """A ``wino`` program on one sample (module docstring), as the engine computes it."""
    _, W, C = p.in_shape
    OH, OW, CO = p.out_shape
    w = p.wino
    BT, AT = np.array(w.BT, dtype=np.int64), np.array(w.AT, dtype=np.int64)
    entries = [w.entry(j) for j in range(w.reads)]
    y = np.zeros(p.n_out, dtype=np.int64)
    for ty in range(p.positions[0]):
        for tx in range(p.positions[1]):
            iy0, ix0 = ty * p.mh - p.pad[0], tx * w.m - p.pad[1]
            row = 0
            for ch0, L, taps in p.groups:
                M = np.zeros((w.alpha, L), dtype=np.int64)                 # per lane
                for b in range(0, len(taps), w.alpha):
                    c = taps[b][2]
                    d = np.array([x[((iy0 + a) * W + ix0 + e) * C + c]
                                  if 0 <= iy0 + a < p.limit[0] and 0 <= ix0 + e < p.limit[1]
                                  else 0 for a, e in entries], dtype=np.int64)
                    M += (BT @ d)[:, None] * p.weights[row + b:row + b + w.alpha, :L]
                row += len(taps)
                acc = remove_scale(AT @ M, w, p.y_bits) + p.bias[ch0:ch0 + L]   # (outs, L)
                if p.requant:
                    acc = requantize(acc, p.multiplier[ch0:ch0 + L], p.shift, relu=False,
                                     out_bits=62)
                out = np.clip(acc, p.lo, p.hi)
                if p.pooled:            # the tile is the pool's window (fuse_pool)
                    base = (ty * OW + tx) * CO + ch0
                    y[base:base + L] = out.max(axis=0)
                    continue
                for n in range(w.outs):
                    oy, ox = ty * p.mh + n // w.m, tx * w.m + n % w.m
                    if oy < OH and ox < OW:
                        base = (oy * OW + ox) * CO + ch0
                        y[base:base + L] = out[n]
    return y


def _run_layer(p, x):
    """One program on one sample x (H·W·C,) int64 → y (OH·OW·CO,), the engine's loop nest."""
    if p.op == "wino":
        return _run_wino(p, x)
    H, W, C = p.in_shape
    _, OW, CO = p.out_shape
    y = np.zeros(p.n_out, dtype=np.int64)
    row = 0
    for oy, ox in _positions(p):
        iy0, ix0 = oy * p.stride - p.pad[0], ox * p.stride - p.pad[1]
        for ch0, L, taps in p.groups:
            chan = ch0 if p.op != "mac" else 0
            acc = p.bias[ch0:ch0 + L].copy() if p.op == "mac" else None
            for t, (ky, kx, c) in enumerate(taps):
                iy, ix = iy0 + ky, ix0 + kx
                inside = 0 <= iy < p.limit[0] and 0 <= ix < p.limit[1]
                v = int(x[(iy * W + ix) * C + c + chan]) if inside else 0
                if p.op == "mac":
                    acc += v * p.weights[row + t, :L]
                elif t == 0:
                    acc = np.array([v], dtype=np.int64)
                else:
                    acc = np.maximum(acc, v) if p.op == "max" else acc + v
            if p.op == "mac":
                row += len(taps)
            if p.requant:
                acc = requantize(acc, p.multiplier[ch0:ch0 + L], p.shift, relu=False,
                                 out_bits=62)
            out = np.clip(acc, p.lo, p.hi)
            base = (oy * OW + ox) * CO + ch0
            y[base:base + L] = out
        row = 0
    return y


def execute(programs, x_q):
    """Run the programs on input codes x_q (n, n_inputs) → the last program's outputs
    (n, n_classes), as the engine computes them (tap by tap, the bounds check, the
    requantizer); equal to :func:`slimgen.sw.golden.forward` for unmutated programs."""
    x_q = np.asarray(x_q, dtype=np.int64)
    out = []
    for x in x_q:
        for p in programs:
            x = _run_layer(p, x)
        out.append(x)
    return np.array(out, dtype=np.int64).reshape(len(x_q), -1)


# ------------------------------------------------------------------ cost

def layer_run_cycles(p):
    """Cycles the walker spends issuing this program's taps (module docstring): one per tap,
    a group's last tap held until the previous group's L lanes have drained."""
    cooldown, cycles = 0, 0
    per_position = [(len(taps), L * p.outs) for _, L, taps in p.groups]
    OH, OW = p.positions
    for _ in range(OH * OW):
        for T, D in per_position:
            cycles += T - 1
            cooldown = max(0, cooldown - (T - 1))
            cycles += cooldown + 1
            cooldown = D - 1
    return cycles


def layer_cycles(p):
    """The layer's own cycles, as the cost model compares algorithms: its taps issued with
    every input present (:func:`layer_run_cycles`) and a Winograd layer's ``tail``. In the
    network (:func:`network_cycles`) layers overlap the load, each other's drain and the
    send, and a tap may wait for its input word."""
    return layer_run_cycles(p) + p.tail


def layer_mults(p):
    """Useful multiplications per inference: for every position, every tap inside the input
    times the lanes whose weight on it is non-zero (a pool makes none)."""
    if p.op == "wino":      # every tile's products with a non-zero weight
        return p.positions[0] * p.positions[1] * int(np.count_nonzero(p.weights))
    if p.op != "mac":
        return 0
    H, W, _ = p.in_shape
    nonzero = (p.weights != 0).sum(axis=1)                    # per tap row
    total, row = 0, 0
    OH, OW, _ = p.out_shape
    iy = np.arange(OH)[:, None] * p.stride - p.pad[0]
    ix = np.arange(OW)[None, :] * p.stride - p.pad[1]
    for _, _, taps in p.groups:
        for t, (ky, kx, _) in enumerate(taps):
            inside = ((0 <= iy + ky) & (iy + ky < H)) & ((0 <= ix + kx) & (ix + kx < W))
            total += int(inside.sum()) * int(nonzero[row + t])
        row += len(taps)
    return total


def _drained_addresses(p, oy, ox, ch0, L):
    """The addresses a group of L lanes from channel ``ch0`` at position (oy, ox) drains, in
    the drain's order: lane by lane (and a Winograd lane's outputs, row by row of its tile);
    None where an edge tile's output is dropped, or a pooled tile's output goes on into the
    running max."""
    OH, OW, CO = p.out_shape
    out = []
    for d in range(L):
        if p.pooled:        # a lane's tile through the running max: one word at its end
            out += [None] * (p.outs - 1) + [(oy * OW + ox) * CO + ch0 + d]
            continue
        for n in range(p.outs):
            y, x = oy * p.mh + n // p.m, ox * p.m + n % p.m
            out.append((y * OW + x) * CO + ch0 + d if y < OH and x < OW else None)
    return out


def settle_end(p):
    """The cycles the walker waits after a Winograd layer's last tap before the next layer's
    first: until its last group's last output is written, ``5 + tail + D`` (its products
    also read the weights and use the accumulate stage until ``tail + 1``); after one with
    its pool in the drain only until ``tail + 1`` (its words come in address order, and the
    next layer reads each as it is written); none after another layer."""
    if p.op != "wino":
        return 0
    return p.tail + 1 if p.pooled else 5 + p.tail + p.groups[-1][1] * p.outs


def cool_end(p, nxt):
    """The cooldown the walker sets at a layer's last tap: the next layer's first group may
    start its drain once the last group's has ended (the tails move both starts)."""
    return max(0, p.groups[-1][1] * p.outs + p.tail - (nxt.tail if nxt else 0) - 1)


def schedule(programs, n_inputs, arrivals=None):
    """The engine's schedule for one sample, its input codes given one a cycle from cycle 0
    (the first transfer), or at the cycles ``arrivals`` (n_inputs,) (increasing, the first
    0: a stage of a dataflow pipeline takes them as the stage before gives them):
    ``(final, writes)`` with ``final[k]`` the cycle layer k's last tap issues and
    ``writes[k]`` (n_out,) the cycle each of its outputs is written (a logit: its register;
    a stage's last layer: into its queue).

    The walker issues one tap a cycle in order and holds it while

    - its input word is not yet written (inside taps only; a read one cycle after its
      write sees it): input word a is written at cycle a; a layer's outputs as its drain
      writes them, in order (direct layers and pools);
    - it ends a group and the drain has not finished the previous group (``cooldown``:
      a group drains D = L·m^dims words from cycle ``issue + 3 + tail``, one a cycle, its last
      tap ``D`` cycles after the previous group's);
    - it is layer 0's last tap and not every input has arrived (the next layer writes
      buffer 0), or a tap of layer 0 before the first input has (the sample starts with
      it: a tap in the padding reads nothing, yet must not run ahead);
    - it follows a Winograd layer before that layer's last output is written
      (:func:`settle_end`: its drain is not in address order), or, after one with its pool
      in the drain, before its products have ended.

    A drained word d of a group whose last tap issued at cycle c is written at cycle
    ``c + 6 + tail + d`` (read, multiply, accumulate, the drain's select, times M, round
    and clamp, write)."""
    final, writes = [], []
    t, cool_until, settle_until = 0, 0, 0
    arrivals = np.arange(n_inputs, dtype=np.int64) if arrivals is None else \
        np.asarray(arrivals, dtype=np.int64)
    ready = arrivals + 1                                 # the cycle each input may be read
    for k, p in enumerate(programs):
        H, W, C = p.in_shape
        OH, OW = p.positions
        written = np.zeros(p.n_out, dtype=np.int64)
        pool = p.op in ("max", "avg")
        for oy in range(OH):
            for ox in range(OW):
                iy0, ix0 = oy * p.ystep - p.pad[0], ox * p.step - p.pad[1]
                for g, (ch0, L, taps) in enumerate(p.groups):
                    for j, (ky, kx, c) in enumerate(taps):
                        at = max(t, settle_until, ready[0] if k == 0 else 0)
                        iy, ix = iy0 + ky, ix0 + kx
                        if 0 <= iy < p.limit[0] and 0 <= ix < p.limit[1]:
                            at = max(at, ready[(iy * W + ix) * C + c + (ch0 if pool else 0)])
                        last = j == len(taps) - 1
                        if last:
                            at = max(at, cool_until)
                        if last and k == 0 and g == len(p.groups) - 1 and oy == OH - 1 \
                                and ox == OW - 1:
                            at = max(at, ready[-1])
                        t = at + 1
                        if last:
                            cool_until = at + L * p.outs
                            first_write = at + 6 + p.tail
                            for n, a in enumerate(_drained_addresses(p, oy, ox, ch0, L)):
                                if a is not None:
                                    written[a] = first_write + n
        nxt = programs[k + 1] if k + 1 < len(programs) else None
        cool_until = t + cool_end(p, nxt)
        settle_until = t + settle_end(p)
        final.append(t - 1)
        writes.append(written)
        # after a Winograd layer every word is written once settle_until has come (with its
        # pool, as it is written: in address order)
        ready = written + 1 if p.op != "wino" or p.pooled else np.zeros_like(written)
    return final, writes


def network_cycles(programs, n_inputs):
    """Cycles from the first input transfer to the result's transfer on ``o``, both counted,
    with inputs given one a cycle and the result taken at once (:func:`schedule`). The
    last layer is direct: its drain gives the logits to the argmax in class order as it
    writes them, and the result follows the last one."""
    _, writes = schedule(programs, n_inputs)
    return int(writes[-1].max()) + 2
