"""Compressed weight layout of the balanced-sparse MAC array: what each lane's block RAM holds.

Groups (one per lane p of P; DESIGN.md method 5 and Hardware):

- ``"rows"`` (row groups, activations broadcast): lane p owns the output rows ``o ≡ p (mod P)``;
  its k-th row is ``o = k·P + p``. Every lane holds a copy of the whole input vector, written
  once for all lanes (broadcast), and reads it at its own column.
- ``"banks"`` (input banks, adder tree): lane p owns the input columns ``i ≡ p (mod P)``; its
  local column c is ``i = c·P + p``, and it holds only that bank of the inputs. For every row o
  it streams its part of the row and leaves a partial sum; an adder tree joins the P partials.

  An *input order* (banks only) places the inputs at other positions: ``order`` is a
  permutation of ``range(n_in)``, and lane p's local column c holds input ``i = order[c·P + p]``;
  with ``pos`` its inverse (``order[pos[i]] = i``), input i goes to lane ``pos[i] mod P`` at
  local column ``pos[i] div P``. Everything below (runs, streams) is in the lanes' local
  columns. The weights are the same matrix W over inputs in their natural order; only where each
  input is stored changes, so a trained balance can choose which inputs share a bank. The
  identity (the default, stored as ``order = None``) is the plain layout.

Stream of one lane. For each of its rows in order, the non-zero weights of the row (within the
lane's columns) in increasing column order, one word per entry::

    bit  0 .. vb−1        value   the weight, two's complement, vb = the layer's weight_bits
    bit  vb .. vb+ib−1    run     zeros skipped since the previous entry of the row (relative
                                  index: column = previous column + run + 1; the first entry of a
                                  row counts from column −1, so its run is its column)
    bit  vb+ib            last    1 on the row's last entry

``ib = index_bits``. By default it is just wide enough for the longest run, so no entry is
wasted. A narrower ``index_bits`` (as in EIE) is allowed: a run longer than ``2^ib − 1`` is split
by *filler* entries (value 0, run ``2^ib − 1``). A row with no non-zero in the lane's columns
still takes one *dummy* entry (value 0, run 0, last 1), so every row ends with ``last``. With
``dense=True`` every weight is stored, zeros included, and ``ib = 0``: the dense engine is the same
lane with implicit indices.

A lane takes one entry per cycle, so its cycle count is its entry count; the array's is the
largest over lanes. Balanced groups (equal non-zeros, no dummies) reach the lower bound
``ceil(nnz / P)``; a magnitude-pruned matrix leaves lanes idle.
"""

from dataclasses import dataclass

import numpy as np

from .fixed import symmetric_max

__all__ = ["LAYOUTS", "SparseLayout", "build_layout", "lane_of",
           "lane_partials", "layout_accumulate", "check_order"]

LAYOUTS = ("rows", "banks")


def _check_layout(layout):
    if layout not in LAYOUTS:
        raise ValueError(f"Layout must be one of {', '.join(map(repr, LAYOUTS))}, not {layout!r}")


def _check_lanes(lanes):
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes <= 0:
        raise TypeError(f"Lane count must be a positive integer, not {lanes!r}")


def check_order(order, n_in):
    """An input order as a tuple of ints, or None for the identity (also when ``order`` is None).

    Raises ``ValueError`` unless ``order`` is a permutation of ``range(n_in)``.
    """
    if order is None:
        return None
    try:
        a = np.asarray(order)
    except (TypeError, ValueError):
        a = None
    if a is None or a.ndim != 1 or (a.size and not np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"Input order must be a sequence of integers (a permutation of "
                         f"range({n_in})), not {order!r}")
    if len(a) != n_in:
        raise ValueError(f"Input order must have {n_in} entries (a permutation of "
                         f"range({n_in})), not {len(a)}")
    if not np.array_equal(np.sort(a), np.arange(n_in)):
        bad = sorted(set(int(x) for x in a if not 0 <= x < n_in))
        missing = sorted(set(range(n_in)) - set(int(x) for x in a))
        raise ValueError(f"Input order must be a permutation of range({n_in}); "
                         f"missing {missing}" + (f", out of range {bad}" if bad else ""))
    if np.array_equal(a, np.arange(n_in)):
        return None
    return tuple(int(x) for x in a)


def _positions(order, n_in):
    """``pos`` (n_in,) int64 with ``order[pos[i]] = i`` (the identity without an order)."""
    pos = np.arange(n_in)
    if order is not None:
        pos[np.asarray(order)] = np.arange(n_in)
    return pos


def lane_of(shape, lanes, layout, order=None):
    """Lane index of every weight, (n_out, n_in) int64: ``o mod P`` (rows) or ``pos[i] mod P``
    (banks, ``pos`` the inverse of the input ``order``; without one ``i mod P``)."""
    _check_layout(layout)
    n_out, n_in = shape
    o, i = np.indices((n_out, n_in))
    if layout == "rows":
        return o % lanes
    return _positions(check_order(order, n_in), n_in)[i] % lanes


@dataclass(frozen=True, eq=False)
class SparseLayout:
    """The per-lane memory contents of one layer.

    Attributes
    ----------
    lanes, layout, n_out, n_in : int, str, int, int
    value_bits, index_bits : int
        Widths of a word's value and run fields; a word is ``value_bits + index_bits + 1`` wide.
    words : tuple of tuple of int
        ``words[p]``: lane p's stream, unsigned words in the bit layout of the module docstring.
    rows_per_lane, cols_per_lane : int
        Depth of a lane's result memory and of its copy (rows) or bank (banks) of the inputs.
    nnz, fillers, dummies : int
        Non-zero weights, filler entries and dummy entries over all lanes (dense: zeros stored
        count as dummies).
    dense : bool
    order : tuple of int or None
        Input order (banks): lane p's local column c holds input ``order[c·P + p]``; None is
        the identity.
    """
    lanes: int
    layout: str
    n_out: int
    n_in: int
    value_bits: int
    index_bits: int
    words: tuple
    nnz: int
    fillers: int
    dummies: int
    dense: bool = False
    order: tuple = None

    def __post_init__(self):
        order = check_order(self.order, self.n_in)
        if order is not None and self.layout != "banks":
            raise ValueError(f"An input order applies to the banks layout, not {self.layout!r}")
        object.__setattr__(self, "order", order)

    @property
    def positions(self):
        """``pos`` (n_in,): input i lies at position ``pos[i]``, lane ``pos[i] mod P``, local
        column ``pos[i] div P`` (banks; the identity without an order)."""
        return _positions(self.order, self.n_in)

    @property
    def word_bits(self):
        return self.value_bits + self.index_bits + 1

    @property
    def rows_per_lane(self):
        return -(-self.n_out // self.lanes) if self.layout == "rows" else self.n_out

    @property
    def cols_per_lane(self):
        return self.n_in if self.layout == "rows" else -(-self.n_in // self.lanes)

    @property
    def lane_lengths(self):
        """Entries (= cycles) of every lane."""
        return tuple(len(w) for w in self.words)

    @property
    def stream_cycles(self):
        """Cycles until the longest lane has issued its last entry."""
        return max(self.lane_lengths)

    @property
    def lower_bound(self):
        """``ceil(nnz / P)``: cycles if every lane did only useful multiply-accumulates."""
        return max(1, -(-self.nnz // self.lanes))

    @property
    def utilisation(self):
        """Useful MACs / lane-cycles: ``nnz / (P · stream_cycles)``."""
        return self.nnz / (self.lanes * self.stream_cycles)

    @property
    def memory_bits(self):
        return sum(len(w) for w in self.words) * self.word_bits

    def fields(self, word):
        """``(value, run, last)`` of one word."""
        vb, ib = self.value_bits, self.index_bits
        value = word & ((1 << vb) - 1)
        if value >> (vb - 1):
            value -= 1 << vb
        return value, (word >> vb) & ((1 << ib) - 1), word >> (vb + ib)

    def decode(self):
        """The weight matrix (n_out, n_in) the layout stores: the inverse of :func:`build_layout`."""
        W = np.zeros((self.n_out, self.n_in), dtype=np.int64)
        P = self.lanes
        for p, stream in enumerate(self.words):
            row, col = 0, -1
            for word in stream:
                value, run, last = self.fields(word)
                col += run + 1
                o, i = (row * P + p, col) if self.layout == "rows" else (row, col * P + p)
                if self.order is not None:
                    i = self.order[i]
                if value:
                    W[o, i] = value
                if last:
                    row, col = row + 1, -1
        return W

    def to_dict(self):
        d = {k: getattr(self, k) for k in ("lanes", "layout", "n_out", "n_in", "value_bits",
                                           "index_bits", "nnz", "fillers", "dummies", "dense")}
        d["words"] = [list(w) for w in self.words]
        d["order"] = None if self.order is None else list(self.order)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["words"] = tuple(tuple(int(x) for x in w) for w in d["words"])
        d["order"] = d.get("order")
        return cls(**d)


def _lane_cells(W, lanes, layout):
    """For each lane, its rows as lists of (local column, weight) over the lane's columns."""
    n_out, n_in = W.shape
    cells = []
    for p in range(lanes):
        if layout == "rows":
            sub = W[p::lanes]                      # (rows of lane p, n_in)
        else:
            sub = W[:, p::lanes]                   # (n_out, columns of lane p)
        cells.append(sub)
    return cells


def build_layout(W, *, lanes, layout="rows", weight_bits=8, index_bits=None, dense=False,
                 order=None):
    """The :class:`SparseLayout` of an integer weight matrix W (n_out, n_in).

    ``index_bits``: width of the run field; ``None`` picks the narrowest with no filler.
    ``dense``: store every weight with implicit indices (``index_bits`` must then be None or 0).
    ``order``: input order of the banks layout (a permutation of ``range(n_in)``: lane p's local
    column c holds input ``order[c·P + p]``); None or the identity for the plain layout.
    """
    _check_layout(layout)
    _check_lanes(lanes)
    W = np.asarray(W)
    if W.ndim != 2 or 0 in W.shape:
        raise ValueError(f"W must be a non-empty matrix (n_out, n_in), not of shape {W.shape}")
    if not np.issubdtype(W.dtype, np.integer):
        raise TypeError(f"W must be an integer array, not {W.dtype}")
    W = W.astype(np.int64)
    n_out, n_in = W.shape
    order = check_order(order, n_in)
    if order is not None and layout != "banks":
        raise ValueError(f"An input order applies to the banks layout, not {layout!r}")
    extent = n_out if layout == "rows" else n_in
    if lanes > extent:
        raise ValueError(f"Lane count must be at most the layer's {extent} "
                         f"{'outputs' if layout == 'rows' else 'inputs'}, not {lanes}")
    qmax = symmetric_max(weight_bits)
    if np.abs(W).max() > qmax:
        raise ValueError(f"Weights must lie in [−{qmax}, {qmax}] for {weight_bits} bits, "
                         f"found {int(np.abs(W).max())}")
    subs = _lane_cells(W if order is None else W[:, list(order)], lanes, layout)
    if dense:
        if index_bits not in (None, 0):
            raise ValueError(f"A dense layout has no index field; index_bits must be None or 0, "
                             f"not {index_bits!r}")
        index_bits = 0
    elif index_bits is None:
        longest = 0
        for sub in subs:
            for row in sub:
                cols = np.flatnonzero(row)
                if len(cols):
                    longest = max(longest, int(np.max(np.diff(np.concatenate([[-1], cols])) - 1)))
        index_bits = longest.bit_length()
    elif isinstance(index_bits, bool) or not isinstance(index_bits, int) or not 1 <= index_bits <= 16:
        raise ValueError(f"Index bits must be an integer from 1 to 16, not {index_bits!r}")
    vb, ib = weight_bits, index_bits
    rmax = (1 << ib) - 1
    vmask = (1 << vb) - 1

    def word(value, run, last):
        return (int(value) & vmask) | (run << vb) | (int(last) << (vb + ib))

    words, fillers, dummies = [], 0, 0
    for sub in subs:
        stream = []
        for row in sub:
            if dense:
                stream.extend(word(v, 0, k == len(row) - 1) for k, v in enumerate(row))
                dummies += int(np.count_nonzero(row == 0))
                continue
            cols = np.flatnonzero(row)
            if len(cols) == 0:
                stream.append(word(0, 0, True))
                dummies += 1
                continue
            prev = -1
            for k, c in enumerate(cols):
                run = int(c) - prev - 1
                while run > rmax:
                    stream.append(word(0, rmax, False))
                    fillers += 1
                    prev += rmax + 1
                    run -= rmax + 1
                stream.append(word(row[c], run, k == len(cols) - 1))
                prev = int(c)
        words.append(tuple(stream))
    return SparseLayout(lanes, layout, n_out, n_in, vb, ib, tuple(words),
                        int(np.count_nonzero(W)), fillers, dummies, bool(dense), order)


def lane_partials(layout, v):
    """What every lane leaves in its result memory for one input vector v (n_in,), computed by
    walking the word streams as the hardware does (slow loop; the reference of the lanes).

    Returns (P, rows_per_lane) int64: rows layout, lane p's k-th row sum (without bias);
    banks layout, lane p's partial sum of every row.
    """
    v = np.asarray(v, dtype=np.int64)
    P = layout.lanes
    out = np.zeros((P, layout.rows_per_lane), dtype=np.int64)
    for p, stream in enumerate(layout.words):
        if layout.layout == "rows":
            local = v
        else:
            local = (v if layout.order is None else v[list(layout.order)])[p::P]
        row, pos, acc = 0, 0, 0
        for word in stream:
            value, run, last = layout.fields(word)
            col = pos + run
            acc += int(local[col]) * value
            pos = col + 1
            if last:
                out[p, row] = acc
                row, pos, acc = row + 1, 0, 0
    return out


def layout_accumulate(layout, b, v):
    """``acc[o] = b[o] + (the lanes' sums for row o)``, (n_out,), through :func:`lane_partials`."""
    part = lane_partials(layout, v)
    b = np.asarray(b, dtype=np.int64)
    if layout.layout == "rows":
        o = np.arange(layout.n_out)
        return b + part[o % layout.lanes, o // layout.lanes]
    return b + part.sum(axis=0)
