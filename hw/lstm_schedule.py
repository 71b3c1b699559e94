"""The static schedule of :class:`slimgen.hw.lstm_engine.LstmEngine`: which lane computes which
hidden unit, in which order, and the word streams its lanes read. Pure Python and NumPy.

The engine's P lanes each own a set of hidden units (neurons). Per step, lane p streams, neuron
by neuron, the four rows of each of its neurons (:data:`ROWS`: an LSTM's gates c, i, f, o; a
GRU's r, z and its candidate's two sums, ``nh`` = U_n h + b_hn on the h columns and ``nx`` =
W_n x + b_n on the x columns, which the cell combines as ``(nx · 2^F + r · nh)``), one
multiply per non-zero weight: pruned weights cost no cycle; a row with no non-zero weight
costs one (a filler word of weight 0). After the last step the lanes stream the head: lane p
holds a block of the hidden units' columns of every logit row; the logits are the sums over
the lanes.

Words (``value_bits + col_bits + 1`` bits, LSB first): the weight (signed), the column and
``last`` (last word of a row). Columns ``0 .. n_in−1`` are the step's inputs x_t; column
``n_in + r`` is the hidden unit of *rank* r: the element-wise unit processes the neurons of a
step in one fixed order (ranks 0 .. H−1, the order in which the lanes complete them when none
waits), and writes h_t in that order. Every row reads its x columns first, then its h columns
by rank, so the next step's rows start on the h values that are ready first.

Shapes: ``words[p]`` list of int (step words, then head words); ``step_words[p]``,
``head_words[p]`` their counts; ``items`` (H,) of ``(lane, slot)`` in rank order;
``rank`` (H,) the rank of every neuron.
"""

from dataclasses import dataclass

import numpy as np

from slimgen.sw.integer_model import IntDense, IntNetwork, IntRecurrent

__all__ = ["LstmSchedule", "build_schedule", "recurrent_classifier", "cell_rows", "GATE_ORDER",
           "ROWS"]

GATE_ORDER = ("c", "i", "f", "o")   # an LSTM neuron's rows, in stream order
ROWS = {"lstm": GATE_ORDER, "gru": ("r", "z", "nh", "nx")}   # every cell's, in stream order


def cell_rows(cell):
    """``{row: (W, b)}`` of a recurrent cell's :data:`ROWS`: W (H, n_in + H) over v = [x; h],
    b (H,). The GRU's candidate is split: ``nh`` keeps W_n's h columns and b_hn, ``nx`` its x
    columns and b_n (the other columns zero: no words)."""
    if cell.cell == "lstm":
        return {g: (cell.W[g], cell.b[g]) for g in GATE_ORDER}
    n_in, Wn = cell.n_in, cell.W["n"]
    nh, nx = Wn.copy(), Wn.copy()
    nh[:, :n_in] = 0
    nx[:, n_in:] = 0
    return {"r": (cell.W["r"], cell.b["r"]), "z": (cell.W["z"], cell.b["z"]),
            "nh": (nh, cell.b["hn"]), "nx": (nx, cell.b["n"])}


def recurrent_classifier(model):
    """``(cell, head, steps)`` of a recurrent classifier: an :class:`IntNetwork` over sequences
    (steps, n_in) of unsigned codes whose layers are an LSTM or GRU :class:`IntRecurrent`
    giving its last hidden state and a dense :class:`IntDense` head on it giving the logits;
    or ``TypeError``/``ValueError`` saying what does not fit."""
    if not isinstance(model, IntNetwork):
        raise TypeError(f"Model must be an IntNetwork, not {model!r}")
    kinds = [layer.kind for layer in model.layers]
    if kinds != ["recurrent", "dense"]:
        raise ValueError(f"The recurrent classifier takes an LSTM or GRU cell and a dense "
                         f"head, not {', '.join(kinds) or 'no layers'}")
    cell, head = model.layers
    shape = model.network.input_shape
    if not isinstance(cell, IntRecurrent) or cell.sequences or cell.in_signed:
        raise ValueError("The cell must be an LSTM or GRU on unsigned inputs giving its last "
                         "hidden state")
    if len(shape) != 2 or shape[1] != cell.n_in:
        raise ValueError(f"The input must be a sequence of {cell.n_in} features per step, not "
                         f"of shape {shape}")
    if not isinstance(head, IntDense) or head.requant or head.n_in != cell.n_hidden \
            or not head.in_signed or head.in_bits != cell.fmt.h_bits:
        raise ValueError(f"The head must be a dense layer on the {cell.fmt.h_bits}-bit signed "
                         f"hidden state giving its accumulators (the logits)")
    return cell, head, int(shape[0])


@dataclass(frozen=True, eq=False)
class LstmSchedule:
    """The lanes' word streams and the element-wise order (see the module docstring)."""
    cell: str             # "lstm" or "gru": the rows (:data:`ROWS`) and the element-wise unit
    lanes: int
    n_in: int
    n_hidden: int
    n_classes: int
    value_bits: int
    col_bits: int
    neurons: tuple        # neurons[p]: the lane's neurons in stream order
    rank: tuple           # rank[j]
    items: tuple          # items[r] = (lane, slot) of the neuron of rank r
    words: tuple          # words[p]: step words then head words, encoded
    step_words: tuple
    head_words: tuple
    head_cols: tuple      # head_cols[p]: ranks of the lane's head columns

    @property
    def word_bits(self):
        return self.value_bits + self.col_bits + 1

    @property
    def slots(self):
        """Rows of results per step and lane, in groups of four (one per gate)."""
        return max(len(n) for n in self.neurons)

    def decode(self, word):
        """``(value, col, last)`` of an encoded word."""
        vb, cb = self.value_bits, self.col_bits
        value = word & ((1 << vb) - 1)
        value -= (value >> (vb - 1)) << vb
        return value, (word >> vb) & ((1 << cb) - 1), (word >> (vb + cb)) & 1

    def lane_cycles(self, steps):
        """Issue cycles of every lane per sequence, with no waiting."""
        return [steps * s + h for s, h in zip(self.step_words, self.head_words)]


def _row(*parts):
    """(value, col) pairs of the non-zero weights of ``(weights, cols)`` parts in order, or one
    filler (weight 0 on column 0) when there are none."""
    pairs = [(int(w), int(c)) for weights, cols in parts for w, c in zip(weights, cols) if w]
    return pairs or [(0, 0)]


def build_schedule(model, lanes):
    """The :class:`LstmSchedule` of a recurrent classifier (:func:`recurrent_classifier`) on
    ``lanes`` lanes."""
    lstm, head, _ = recurrent_classifier(model)
    H, n_in, C = lstm.n_hidden, lstm.n_in, head.n_out
    if isinstance(lanes, bool) or not isinstance(lanes, int) or not 1 <= lanes <= H:
        raise ValueError(f"Lane count must be an integer from 1 to the hidden units ({H}), "
                         f"not {lanes!r}")
    P = lanes
    rows = cell_rows(lstm)
    nnz = {g: np.count_nonzero(W, axis=1) for g, (W, _) in rows.items()}
    work = [sum(max(1, int(nnz[g][j])) for g in rows) for j in range(H)]

    # Neurons to lanes: longest first onto the least loaded lane (ties: lowest lane, neuron).
    load, neurons = [0] * P, [[] for _ in range(P)]
    for j in sorted(range(H), key=lambda j: (-work[j], j)):
        p = min(range(P), key=lambda p: (load[p], p))
        neurons[p].append(j)
        load[p] += work[j]

    # Ranks: the order in which the lanes complete their neurons when none waits.
    done = []
    for p in range(P):
        t = 0
        for k, j in enumerate(neurons[p]):
            t += work[j]
            done.append((t, p, k, j))
    done.sort()
    items = tuple((p, k) for _, p, k, _ in done)
    rank = np.empty(H, dtype=np.int64)
    for r, (_, _, _, j) in enumerate(done):
        rank[j] = r
    by_rank = np.argsort(rank)            # neuron of every rank

    x_cols = np.arange(n_in)
    h_cols = n_in + np.arange(H)          # rank order
    value_bits = max(lstm.weight_bits, lstm.c_weight_bits, head.weight_bits)
    col_bits = max(1, (n_in + H - 1).bit_length())

    def encode(value, col, last):
        return (value & ((1 << value_bits) - 1)) | (col << value_bits) | \
            (int(last) << (value_bits + col_bits))

    def emit(out, pairs):
        for n, (w, c) in enumerate(pairs):
            out.append(encode(w, c, n == len(pairs) - 1))

    words, step_words, head_words, head_cols = [], [], [], []
    bounds = np.linspace(0, H, P + 1).round().astype(int)
    for p in range(P):
        out = []
        for j in neurons[p]:
            for W, _ in rows.values():
                W = W[j]
                emit(out, _row((W[:n_in], x_cols), (W[n_in:][by_rank], h_cols)))
        step_words.append(len(out))
        cols = np.arange(bounds[p], bounds[p + 1])           # ranks of the lane's block
        head_cols.append(tuple(int(r) for r in cols))
        for c in range(C):
            emit(out, _row((head.W[c][by_rank[cols]], n_in + cols)))
        head_words.append(len(out) - step_words[-1])
        words.append(tuple(out))
    return LstmSchedule(lstm.cell, P, n_in, H, C, value_bits, col_bits,
                        tuple(tuple(n) for n in neurons), tuple(int(r) for r in rank), items, tuple(words), tuple(step_words),
                        tuple(head_words), tuple(head_cols))
