"""The schedule of the shared-array CNN (:class:`slimgen.hw.cnn.CNN`): shapes, the filters it
skips, what each lane's block RAM holds, and its cycle counts, in plain Python (no Amaranth:
the flow's estimates and the tests read it without elaborating).

One ``P``-lane array runs every layer of an image in turn (see :mod:`slimgen.hw.cnn` for the
datapath). Per convolution ``l`` and tile: the input transform takes ``Cin·α·N`` cycles, the
products ``Σ_k max(S·n_k, m²)`` (``S = α²/P`` steps, ``n_k`` the input channels whose filter
``W[k, c]`` is not all zero), and the two overlap tile by tile. The dense layer takes its longest
lane's stream of the balanced-sparse ``"rows"`` layout.

The cycle counts are exact, the hardware's schedule cycle by cycle: tile ``j``'s window reads
start at ``R_j`` and its products at ``Q_j`` (:meth:`CNNSchedule.tile_starts`), the tile
buffers (two) making ``R_j = max(R_(j−1) + tr, Q_(j−2) + pr)`` and
``Q_j = max(Q_(j−1) + pr, R_j + tr + 1)``: the pace of a tile is ``max(tr, pr)`` but for
``tr ≈ pr``, where it is ``(tr + pr + 1) / 2``. :meth:`CNNSchedule.cycles_estimate` is then the
network bench's latency and :meth:`CNNSchedule.result_interval` its interval.
"""

from __future__ import annotations

import numpy as np

from slimgen.sw.winograd.hardware import transform_weights
from slimgen.sw.integer_model import IntNetwork
from slimgen.sw.sparse_layout import build_layout
from slimgen.sw.winograd import Winograd2D, integer_form, winograd_2d

__all__ = ["CNNSchedule", "ENGINES", "cnn_parts", "filter_range"]

ENGINES = ("sparse", "dense")


def filter_range(W, in_bits):
    """Exact range of ``Σ W·x`` (no bias) over unsigned ``in_bits`` inputs, all filters."""
    W = np.asarray(W, dtype=np.int64).reshape(len(W), -1)
    xmax = (1 << in_bits) - 1
    lo = xmax * np.where(W < 0, W, 0).sum(axis=1)
    hi = xmax * np.where(W > 0, W, 0).sum(axis=1)
    return int(min(lo.min(), 0)), int(max(hi.max(), 0))


def cnn_parts(model):
    """``(convs, pool, dense, in_shape)`` of a CNN :class:`IntNetwork` on images: 2-D
    convolutions (stride 1, the same zero padding on every side, requantizing with ReLU, one
    multiplier each), one max-pool of windows ``pool × pool`` at stride ``pool``, the flatten
    and dense layers (the last giving the logits); ``in_shape`` is ``(C, H, W)``. Or
    ``TypeError``/``ValueError`` saying what does not fit."""
    if not isinstance(model, IntNetwork):
        raise TypeError(f"Model must be an IntNetwork, not {model!r}")
    kinds = [layer.kind for layer in model.layers]
    n = kinds.count("conv")
    if n < 1 or kinds[:n] != ["conv"] * n or kinds[n:n + 2] != ["pool", "flatten"] \
            or len(kinds) < n + 3 or set(kinds[n + 2:]) != {"dense"}:
        raise ValueError(f"The CNN takes convolutions, a max-pool, a flatten and dense layers, "
                         f"not {', '.join(kinds) or 'no layers'}")
    convs, pool, dense = model.layers[:n], model.layers[n], model.layers[n + 2:]
    shape = model.network.input_shape
    if len(shape) != 3:
        raise ValueError(f"The CNN takes images (height, width, channels), not inputs of shape "
                         f"{shape}")
    h, w, c = shape
    bits = model.input_bits
    for i, conv in enumerate(convs):
        if conv.dims != 2 or conv.stride != 1 or conv.padding is None:
            raise ValueError(f"Convolution {i} must be 2-D with stride 1 and the same padding on "
                             f"every side, not stride {conv.stride} and padding {conv.pad}")
        if not (conv.requant and conv.relu) or not isinstance(conv.multiplier, int):
            raise ValueError(f"Convolution {i} must requantize with ReLU and one multiplier")
        if conv.c_in != c:
            raise ValueError(f"Convolution {i} takes {conv.c_in} channels, its input has {c}")
        if conv.in_bits != bits or conv.in_signed:
            raise ValueError(f"Convolution {i} takes {conv.in_bits}-bit inputs, its input is "
                             f"{bits} bits wide and unsigned")
        c, h, w, bits = conv.c_out, conv.out_size(h, 0), conv.out_size(w, 1), conv.out_bits
    if pool.op != "max" or pool.global_ or pool.stride != pool.size:
        raise ValueError("The pool must be a max-pool with its stride equal to its size")
    n_features = c * (h // pool.size) * (w // pool.size)
    for i, d in enumerate(dense):
        if d.n_in != n_features:
            raise ValueError(f"Dense layer {i} takes {d.n_in} inputs, not the {n_features} it "
                             f"gets")
        if (i == len(dense) - 1) == d.requant:
            raise ValueError("Every dense layer but the last must requantize, and the last must "
                             "give raw logits")
        n_features = d.n_out
    return tuple(convs), pool.size, tuple(dense), (shape[2], shape[0], shape[1])


class CNNSchedule:
    """The static schedule of a CNN on ``lanes`` shared multipliers.

    Parameters
    ----------
    int_cnn : IntNetwork
        Convolutions (all ``r × r``, requantizing with ReLU), one max-pool of window ``m``
        (the algorithm's output tile) and one dense layer (:func:`cnn_parts`).
    algorithm : Winograd2D or None
        F(m×m, r×r) for every convolution (default F(2×2, 3×3)).
    lanes : int
        Multipliers ``P``: a multiple of ``α`` that divides ``α²``.
    engine : str
        The dense layer's weight stream: ``"sparse"`` (non-zeros with run-length indices) or
        ``"dense"`` (every weight).
    layout : str
        Lane groups of the dense layer: ``"rows"`` (the only one the array takes).

    Attributes
    ----------
    convs, dense : tuple of IntConv, tuple of IntDense
    pool : int
    in_shape : tuple
        ``(C, H, W)`` of the input image.
    feature_shapes : list of tuple
        ``(C, H, W)`` of the input, after each convolution, and after the pool.
    layer_shapes : list of tuple
        Per convolution ``(Cin, H, W, Cout, Oh, Ow, tiles_h, tiles_w)``.
    filters : list of list of list of int
        ``filters[l][k]``: the input channels of output channel ``k`` whose filter is not all
        zero (the products of the others are skipped); an all-zero output channel keeps ``[0]``.
    sparse_layout : SparseLayout
        The dense layer's lane streams (lanes beyond its outputs have none).
    """

    def __init__(self, int_cnn, *, algorithm=None, lanes=4, engine="sparse", layout="rows"):
        self.convs, self.pool, self.dense, self.in_shape = cnn_parts(int_cnn)
        r = self.convs[0].kernel
        algorithm = winograd_2d(2, r) if algorithm is None else algorithm
        if not isinstance(algorithm, Winograd2D):
            raise TypeError(f"Algorithm must be a Winograd2D or None, not {algorithm!r}")
        form = integer_form(algorithm)
        F = form.rows
        if (F.r, form.cols.r) != (r, r) or form.rows.BT.matrix != form.cols.BT.matrix:
            raise ValueError(f"Algorithm must be a square F(m×m, {r}×{r}), not {algorithm.name}")
        if any(c.kernel != r for c in self.convs):
            raise ValueError(f"Every convolution must have the same kernel, not "
                             f"{[c.kernel for c in self.convs]}")
        al = F.alpha
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes % al \
                or (al * al) % lanes:
            raise ValueError(f"Lane count must be a multiple of α = {al} that divides "
                             f"α² = {al * al}, not {lanes!r}")
        if engine not in ENGINES:
            raise ValueError(f"Engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        if layout != "rows":
            raise ValueError(f"The shared array takes the 'rows' layout, not {layout!r}")
        if len(self.dense) != 1:
            raise ValueError(f"The shared array takes one dense layer, not {len(self.dense)}")
        if self.pool != F.m:
            raise ValueError(f"The max-pool window must equal the output tile m = {F.m}, "
                             f"not {self.pool}")
        self.qmodel, self.algorithm, self.form = int_cnn, algorithm, form
        self.lanes, self.engine, self.layout = lanes, engine, layout
        self.alpha, self.n_win, self.m = al, F.N, F.m
        self.rows_per_step = lanes // al
        self.steps = al // self.rows_per_step
        c, h, w = self.in_shape
        shapes = [(c, h, w)]
        for conv in self.convs:
            c, h, w = conv.c_out, conv.out_size(h, 0), conv.out_size(w, 1)
            shapes.append((c, h, w))
        shapes.append((c, h // self.pool, w // self.pool))
        self.feature_shapes = shapes
        self.layer_shapes = []          # (Cin, H, W, Cout, Oh, Ow, tiles_h, tiles_w)
        for conv, (c, h, w), (k, oh, ow) in zip(self.convs, shapes, shapes[1:]):
            self.layer_shapes.append((c, h, w, k, oh, ow, -(-oh // F.m), -(-ow // F.m)))
        self.filters = [[[c for c in range(conv.c_in) if np.any(conv.W[k, c])] or [0]
                         for k in range(conv.c_out)] for conv in self.convs]
        d = self.dense[0]
        # lanes beyond the layer's outputs have no rows of the dense layer
        self.sparse_layout = build_layout(d.W, lanes=min(lanes, d.n_out), layout="rows",
                                          weight_bits=d.weight_bits, dense=engine == "dense")
    @property
    def multipliers(self):
        """Multipliers of the shared array (every layer runs on them)."""
        return self.lanes

    def inner_cycles(self, layer, k):
        """Cycles of output channel ``k`` of convolution ``layer`` per tile:
        ``max(S·n_k, m²)``, ``n_k`` its input channels with a non-zero filter (at least one).
        The ``max(m² − S·n_k, 0)`` idle cycles come before the products, so the ends of
        consecutive output channels are at least ``m²`` cycles apart (the output path's
        pace)."""
        return max(self.steps * len(self.filters[layer][k]), self.m * self.m)

    def tile_cycles(self, layer):
        """Cycles of the products of one tile of convolution ``layer``."""
        return sum(self.inner_cycles(layer, k) for k in range(self.layer_shapes[layer][3]))

    def conv_cycles(self, layer):
        """Cycles of convolution ``layer``'s products: tiles × :meth:`tile_cycles`."""
        _, _, _, _, _, _, th, tw = self.layer_shapes[layer]
        return th * tw * self.tile_cycles(layer)

    def transform_cycles(self, layer):
        """Cycles of the input transform of one tile (``Cin`` windows of ``α·N`` cycles)."""
        return self.layer_shapes[layer][0] * self.alpha * self.n_win

    @property
    def dense_cycles(self):
        """Cycles of the dense layer's weight stream (its longest lane)."""
        return self.sparse_layout.stream_cycles

    def tile_starts(self, layer):
        """``(reads, products)``: the cycle each tile of convolution ``layer`` (row-major)
        starts its window reads and its products, from the layer's first read.

        The reads of a tile take ``tr`` (:meth:`transform_cycles`) cycles into one of two
        tile buffers, free again once the products of the tile before the last have ended;
        a tile's ``V`` is in its buffer the cycle after its last read, and its products take
        ``pr`` (:meth:`tile_cycles`) cycles once the previous tile's have ended."""
        th, tw = self.layer_shapes[layer][6:]
        tr, pr = self.transform_cycles(layer), self.tile_cycles(layer)
        reads, products = [0], [tr + 1]
        for j in range(1, th * tw):
            # tile j's buffer is free once tile j − 2's products have ended
            reads.append(max(reads[-1] + tr, products[j - 2] + pr if j > 1 else 0))
            products.append(max(products[-1] + pr, reads[-1] + tr + 1))
        return reads, products

    def layer_cycles(self, layer):
        """Cycles of convolution ``layer`` from its first window read to its last product
        issued, both counted: the last tile's products start (:meth:`tile_starts`) and take
        :meth:`tile_cycles`."""
        return self.tile_starts(layer)[1][-1] + self.tile_cycles(layer)

    # After a convolution's last product issued: its word and V read (1), its product (1) and
    # sum (1), the m² values of Y held (1) and sent one per cycle through the requantizer into
    # the output register (1), the last written on the m²-th: then the sequencer starts the
    # next layer (1) and its first read follows (1).
    _OUT = 4            # last product issued → the tile's first output written
    _NEXT = 2           # the layer's last output written → the next layer's first read

    def _timeline(self):
        """Cycles from the sequencer's start of an image's convolutions (the cycle after its
        last input's transfer raised ``in_full``), as :class:`slimgen.hw.cnn.CNN` runs them:
        ``(first_reads, done, result)``, each convolution's first window read, the cycle the
        last one writes its last output, and the cycle the result is valid on ``o``."""
        first, t = [], 1                       # start is registered: the reads follow it
        for layer in range(len(self.layer_shapes)):
            first.append(t)
            done = t + self.layer_cycles(layer) - 1 + self._OUT + self.m * self.m - 1
            t = done + self._NEXT
        # WAIT (1), the dense stream, its pipeline (4) and dense_done (1), one logit a cycle
        # into the argmax, and the result registered (1)
        result = done + 2 + self.dense_cycles + 5 + self.qmodel.n_classes
        return first, done, result

    def cycles_estimate(self):
        """Cycles of one image alone with an always-ready consumer, from its first input's
        transfer to its result's, both counted (the network bench's ``latency``): the load,
        ``in_full`` and the sequencer's start, then :meth:`_timeline`."""
        return self.qmodel.n_inputs + 1 + self._timeline()[2] + 1

    def _store_cycles(self, first):
        """The cycles, from the convolutions' start, on which a convolution but the last
        writes an output into the activation banks (the input loader waits on them)."""
        mm, busy = self.m * self.m, set()
        for layer in range(len(self.layer_shapes) - 1):
            _, _, _, cout, oh, ow, th, tw = self.layer_shapes[layer]
            for j, q in enumerate(self.tile_starts(layer)[1]):
                ty, tx = divmod(j, tw)
                end = first[layer] + q - 1      # the last product of each k ends its cycles
                for k in range(cout):
                    end += self.inner_cycles(layer, k)
                    busy.update(end + self._OUT + n for n in range(mm)
                                if ty * self.m + n // self.m < oh
                                and tx * self.m + n % self.m < ow)
        return busy

    def result_interval(self):
        """Cycles between consecutive results with images back to back and an always-ready
        consumer (the network bench's ``interval``). The next image loads from the cycle
        after the first convolution's last read, one input a cycle but on the cycles a
        convolution writes the banks; its convolutions start once it is loaded and the
        result is on ``o``."""
        first, _, result = self._timeline()
        reads, _ = self.tile_starts(0)
        t = first[0] + reads[-1] + self.transform_cycles(0)      # the cycle after the release
        busy, left = self._store_cycles(first), self.qmodel.n_inputs
        while left:
            left -= t not in busy
            t += 1
        return max(result, t) + 1       # in_full seen the cycle after the last input

    def region_bases(self):
        """Base address of each convolution's input in the activation banks (input row ``y``
        in bank ``y mod N`` at ``base + (y div N)·W·Cin``), and the banks' depth."""
        N, bases, base = self.n_win, [], 0
        for cin, h, w, *_ in self.layer_shapes:
            bases.append(base)
            base += -(-h // N) * w * cin
        return bases, base

    def lane_words(self):
        """Per lane: ``U`` of every convolution in (k, s, c) order (the channels of
        :attr:`filters`), then its dense words;
        with the base address of each convolution and of the dense stream."""
        P, al, R, S = self.lanes, self.alpha, self.rows_per_step, self.steps
        words = [[] for _ in range(P)]
        ubases = []
        for conv, filters in zip(self.convs, self.filters):
            ubases.append(len(words[0]))
            U = transform_weights(conv.W, self.algorithm)          # (Cout, Cin, α, α)
            for k in range(conv.c_out):
                for s in range(S):
                    for c in filters[k]:
                        for lane in range(P):
                            words[lane].append(int(U[k, c, s * R + lane // al, lane % al]))
        dbase = len(words[0])
        for lane, stream_words in enumerate(self.sparse_layout.words):
            words[lane] += list(stream_words)
        return words, ubases, dbase

