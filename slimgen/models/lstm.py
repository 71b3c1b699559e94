"""The LSTM model kind: an LSTM over the digits' rows (8 steps of 8 pixels), then a dense head.

Trained in float (:func:`slimgen.sw.nn.lstm_spec`), optionally gate-pruned (method 2,
``--method lstm_gates``: W_i, W_f, W_o and their recurrent U), quantized into the integer golden
model :class:`slimgen.sw.lstm_golden.IntLSTMClassifier` and built as
:class:`slimgen.hw.lstm_cell.LstmClassifier`.

Hardware lanes: the run's ``lanes`` are the MAC lanes of the gate products, split between the
sparse core of W_i, W_f, W_o and the dense core of W_c in proportion to their work (both
run at once, so equal work per lane makes neither wait); the head has :data:`HEAD_LANES`, as it
works once per sequence against the gates' ``steps`` times.
"""

import numpy as np

from slimgen.sw.lstm_artifact import load_int_lstm, save_int_lstm
from slimgen.sw.lstm_golden import LstmFormat, quantize_lstm_classifier
from slimgen.sw.nn import lstm_spec

__all__ = ["VIEW", "N_HIDDEN", "HEAD_LANES", "float_spec", "quantize", "save_int", "load_int",
           "lane_split", "make_network", "layer_entries"]

VIEW = "sequence"
N_HIDDEN = 32     # hidden units unless the run configures ``hidden``
HEAD_LANES = 1
STEPS, N_IN, N_CLASSES = 8, 8, 10   # the digits: 8 rows of 8 pixels, 10 classes


def float_spec(config):
    return lstm_spec(n_in=N_IN, n_hidden=getattr(config, "hidden", N_HIDDEN),
                     n_classes=N_CLASSES)


def quantize(model, data, config, compression):
    x = data.part("train")[0]                                 # (n, steps, n_in)
    if x.ndim != 3:
        raise ValueError(f"The LSTM needs sequences (n, steps, features), not inputs of shape "
                         f"{x.shape}")
    in_bits = int(np.ceil(np.log2(data.pixel_max + 1)))
    fmt = LstmFormat(in_bits=in_bits, h_frac=config.act_bits - 1,
                     weight_bits=config.weight_bits, c_weight_bits=config.weight_bits,
                     head_weight_bits=config.weight_bits)
    return quantize_lstm_classifier(model, steps=x.shape[1], input_scale=1.0 / data.pixel_max,
                                    fmt=fmt)


def save_int(path, int_model, *, dataset, split_seed):
    save_int_lstm(path, int_model, dataset=dataset, split_seed=split_seed)


def load_int(path):
    return load_int_lstm(path)[0]


def lane_split(lstm, lanes):
    """``(gate_lanes, c_lanes)``: ``lanes`` (≥ 2) shared by the W_i, W_f, W_o core and the W_c
    core in proportion to their work per step (non-zeros of W_i, W_f, W_o; all of W_c, which
    the dense core streams whole); each gets at least one (and W_c at most H)."""
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 2:
        raise ValueError(f"The LSTM needs at least 2 lanes (one for W_i, W_f, W_o and one for "
                         f"W_c), not {lanes!r}")
    nnz_ifo = sum(int(np.count_nonzero(lstm.W[g])) for g in "ifo")
    nnz_c = int(lstm.W["c"].size)
    c_lanes = round(lanes * nnz_c / max(1, nnz_ifo + nnz_c))
    c_lanes = min(max(1, c_lanes), lanes - 1, lstm.n_hidden)
    return lanes - c_lanes, c_lanes


def make_network(int_model, config):
    from slimgen.hw.lstm_cell import LstmClassifier
    gate_lanes, c_lanes = lane_split(int_model.lstm, config.lanes)
    return LstmClassifier(int_model, gate_lanes=gate_lanes, c_lanes=c_lanes,
                          head_lanes=HEAD_LANES, layout=config.layout)


#: Settings an LSTM run starts from unless given: 10-bit weights (8 bits cost 2 points after
#: gate pruning), Verilator (an inference is about 5,000 cycles; Icarus is too slow for 360),
#: and the ULX3S (the cell's element-wise multipliers alone overflow the iCE40UP5K's 8 DSPs).
DEFAULTS = {"weight_bits": 10, "sim": "verilator", "board": "ulx3s-85f"}


def _entry(name, kind, engine, W, weight_bits, layout, cycles):
    n_out, n_in = W.shape
    return {
        "name": name, "kind": kind, "engine": engine,
        "shape": [int(n_out), int(n_in)], "weight_bits": int(weight_bits),
        "sparsity": float((W == 0).mean()), "nonzeros": int((W != 0).sum()),
        "nonzeros_per_group": [int(v) for v in layout.lane_lengths], "lanes": int(layout.lanes),
        "mults_direct": int(n_in), "mults": float((W != 0).sum() / n_out), "cycles": int(cycles),
    }


def layer_entries(net):
    """Per-inference entries: the W_i, W_f, W_o products (sparse core), the W_c product (dense
    core; both run at once, ``steps`` times) and the head (once). ``cycles`` are the lanes'
    stream cycles; the cell adds its loads and the element-wise pipeline per step."""
    cell, T = net.cell, net.model.steps
    entries = [
        _entry("gates_ifo", "lstm gates", f"sparse {cell.ifo_layout.layout}", cell.ifo.W,
               cell.ifo.weight_bits, cell.ifo_layout, T * cell.ifo_layout.stream_cycles),
        _entry("gate_c", "lstm gate", "dense", cell.cg.W, cell.cg.weight_bits, cell.c_layout,
               T * cell.c_layout.stream_cycles),
        _entry("head", "dense", "dense", net.head.layer.W, net.head.layer.weight_bits,
               net.head.sparse_layout, net.head.sparse_layout.stream_cycles),
    ]
    for e, uses in zip(entries, (T, T, 1)):  # the gates run at every step, the head once
        e["mults_per_inference"] = e["nonzeros"] * uses
    return entries


def cycles_estimate(net):
    """The cell's cycles per sequence (its two gate cores run at once) plus the head's."""
    return int(net.cell.cycles_per_sequence + net.head.cycles_per_vector)
