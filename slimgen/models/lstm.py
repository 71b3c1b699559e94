"""The LSTM model kind: an LSTM over the digits' rows (8 steps of 8 pixels), then a dense head.

Trained in float (:func:`slimgen.sw.nn.lstm_spec`), optionally gate-pruned (method 2,
``--method lstm_gates``: W_i, W_f, W_o and their recurrent U), quantized into the integer model
(:class:`slimgen.sw.integer_model.IntNetwork`: an LSTM cell and a dense head) and built as
:class:`slimgen.hw.lstm_cell.LstmClassifier`.

Hardware (:class:`slimgen.hw.lstm_engine.LstmEngine`): the run's ``lanes`` are multiply lanes
shared by all four gates and the head; each lane computes whole hidden units (all four gate
rows, one multiply per non-zero weight), and a time-multiplexed element-wise unit overlaps
the lanes, its seven products per hidden unit and step on one multiplier or two
(:func:`ew_multipliers` picks the busier design on the cycle model). The same engine runs a
GRU (a description's ``gru`` layer, :mod:`slimgen.models.net`): its entries are the GRU's
gates and its element-wise unit's five products. The latency bound counts
every multiplier and product, the element-wise unit's too. The 32-unit preset, dense: 4 lanes
1.21× the bound (one element-wise multiplier), 8 lanes 1.14× (one); gate-pruned
(``--method lstm_gates``): 4 lanes 1.14× (one), 8 lanes 1.20× (two).
"""

import numpy as np

from slimgen.sw.network import preset

__all__ = ["VIEW", "N_HIDDEN", "check_config", "check_data", "network",
           "make_network", "multipliers", "layer_entries", "cycles_estimate"]

VIEW = "sequence"
N_HIDDEN = 32     # hidden units unless the run configures ``hidden``
STEPS, N_IN, N_CLASSES = 8, 8, 10   # the digits: 8 rows of 8 pixels, 10 classes


def check_config(config):
    """Refuse more lanes than hidden units (a lane computes whole hidden units)."""
    from slimgen.settings import SettingError
    hidden = getattr(config, "hidden", N_HIDDEN)
    if config.lanes > hidden:
        raise SettingError("lanes", f"must be at most {hidden} for the LSTM (one lane per "
                                    f"hidden unit at most), not {config.lanes}")


def check_data(config, shape, n_classes):
    """Refuse sequences of another shape than 8 rows of 8 pixels (``shape``: one sample's in
    the sequence view) and labels beyond the 10 outputs."""
    if tuple(shape) != (STEPS, N_IN):
        raise ValueError(f"samples are {shape[0]} rows of {shape[1]} pixels, but the LSTM "
                         f"takes {STEPS} rows of {N_IN} pixels")
    if n_classes > N_CLASSES:
        raise ValueError(f"labels go up to {n_classes - 1} ({n_classes} classes), but the LSTM "
                         f"has {N_CLASSES} outputs")


def network(config, act_bits=None, pixel_max=16):
    """The LSTM preset of ``--hidden`` units: input codes 0..pixel_max (as few bits as hold
    them), the hidden state ``act_bits`` wide (h_frac = act_bits − 1)."""
    return preset("lstm", hidden=getattr(config, "hidden", N_HIDDEN),
                  input_bits=int(np.ceil(np.log2(pixel_max + 1))),
                  h_frac=(act_bits or config.act_bits) - 1)


def make_network(int_model, config):
    """The classifier on ``config.lanes`` lanes, at most the model's hidden units (the flow's
    settings never ask for more, see :func:`check_config`), with the element-wise unit of
    :func:`ew_multipliers`, its lanes' activations where ``config.act_memory`` says."""
    from slimgen.hw.lstm_cell import LstmClassifier
    cells = int_model.of_kind("recurrent")    # none: the classifier says what is wrong
    lanes = min([config.lanes] + [c.n_hidden for c in cells])
    n = ew_multipliers(int_model, lanes) if cells else 1
    return LstmClassifier(int_model, lanes=lanes, ew_multipliers=n,
                          act_memory=getattr(config, "act_memory", "auto"))


def ew_multipliers(int_model, lanes):
    """The element-wise unit's multipliers (1 or 2) that keep every multiplier busiest: the
    fewer modelled multiplier-cycles per multiplication, ``cycles · (lanes + n) / mults``
    (cycles: :attr:`slimgen.hw.lstm_engine.LstmEngine.cycles_estimate`; ties: 1). One multiplier
    takes a hidden unit every 7 cycles (GRU: 6), two every 5: two pay when the element-wise
    unit paces the steps (few words per lane and step) or its queue at a step's end is
    long."""
    from slimgen.hw.lstm_engine import EW_II, EW_PRODUCTS, lstm_cycles
    from slimgen.hw.lstm_schedule import build_schedule, recurrent_classifier
    cell, head, T = recurrent_classifier(int_model)
    sched = build_schedule(int_model, lanes)
    mults = T * sum(int(np.count_nonzero(cell.W[g])) for g in cell.gates) + \
        int(np.count_nonzero(head.W)) + T * cell.n_hidden * EW_PRODUCTS[cell.cell]
    best = None
    for n in sorted(EW_II[cell.cell]):
        cycles = lstm_cycles(sched, T, ew_multipliers=n)
        cost = cycles * (lanes + n) / mults
        if best is None or cost < best[0]:
            best = (cost, n)
    return best[1]


def multipliers(net):
    """Every multiplier in use: the lanes (shared by the gate products and the head) and the
    element-wise unit's one or two (the accumulators' scaling onto the tables, and an LSTM's
    f·c, i·g, o·tanh c or a GRU's r·(U_n h + b_hn), z·(h − n)), which :func:`layer_entries`
    counts as a layer of its own."""
    return net.engine.multipliers + net.engine.ew_multipliers


#: Settings an LSTM run starts from unless given: 10-bit weights (8 bits cost 2 points after
#: gate pruning), Verilator (an inference is thousands of cycles; Icarus is too slow for 360),
#: the ULX3S with 8 lanes (1.14× to 1.20× the bound of all its multipliers, 1.14× to 1.21× at
#: 4 lanes). The iCEBreaker fits the gate-pruned LSTM on 4 lanes: --method lstm_gates --board
#: icebreaker --lanes 4 (28 of its 30 block RAMs, 5 of its 8 DSPs; dense, 44 block RAMs).
DEFAULTS = {"weight_bits": 10, "sim": "verilator", "board": "ulx3s-85f", "lanes": 8}


def _entry(name, kind, W, weight_bits, per_lane, lanes, cycles, uses):
    n_out, n_in = W.shape
    nnz = int((W != 0).sum())
    return {
        "name": name, "kind": kind, "engine": "sparse, shared lanes",
        "shape": [int(n_out), int(n_in)], "weight_bits": int(weight_bits),
        "sparsity": float((W == 0).mean()), "nonzeros": nnz,
        "nonzeros_per_group": [int(v) for v in per_lane], "lanes": int(lanes),
        "mults_direct": int(n_in), "mults": float(nnz / n_out), "cycles": int(cycles),
        "mults_per_inference": nnz * uses,
    }


# The per-inference entries of a cell's products: (name, kind, gates, their rows).
_GATE_ENTRIES = {
    "lstm": (("gates_ifo", "lstm gates", "ifo", ("i", "f", "o")),
             ("gate_c", "lstm gate", "c", ("c",))),
    "gru": (("gates_rz", "gru gates", "rz", ("r", "z")),
            ("gate_n", "gru gate", "n", ("nh", "nx"))),
}


def layer_entries(net):
    """Per-inference entries: the cell's gate products in two groups (an LSTM's W_i, W_f, W_o
    and its W_c; a GRU's W_r, W_z and its candidate's W_n), both ``steps`` times, and the head
    (once), all on the same lanes, then the element-wise unit. ``nonzeros_per_group``: each
    lane's non-zero weights of that matrix; ``cycles``: the busiest lane's words for it (a row
    without non-zeros costs one) per inference."""
    from slimgen.hw.lstm_schedule import cell_rows
    eng = net.engine
    sched, cell, head, T = eng.schedule, eng.cell, eng.head, eng.steps
    P = eng.lanes
    rows = cell_rows(cell)
    words = {r: [sum(max(1, int(np.count_nonzero(W[j]))) for j in sched.neurons[p])
                 for p in range(P)] for r, (W, _) in rows.items()}
    entries = []
    for name, kind, gates, row_names in _GATE_ENTRIES[cell.cell]:
        per_lane = [sum(int(np.count_nonzero(cell.W[g][j])) for g in gates
                        for j in sched.neurons[p]) for p in range(P)]
        lane_words = [sum(words[r][p] for r in row_names) for p in range(P)]
        W = np.concatenate([cell.W[g] for g in gates])
        entries.append(_entry(name, kind, W, cell.gate_bits(gates[0]), per_lane, P,
                              T * max(lane_words), T))
    head_lane = [int(np.count_nonzero(head.W[:, [int(j) for j in range(cell.n_hidden)
                                                 if sched.rank[j] in sched.head_cols[p]]]))
                 for p in range(P)]
    return entries + [
        _entry("head", "dense", head.W, head.weight_bits, head_lane, P,
               max(sched.head_words), 1),
        _elementwise_entry(cell.cell, cell.n_hidden, T, eng.ew_multipliers, eng.ew_ii),
    ]


def _elementwise_entry(cell, n_hidden, steps, n_mul, ii):
    """The element-wise unit: per hidden unit and step its products (an LSTM's z_g·M_g for
    the four gates and the cell's three; a GRU's three z_g·M_g and two), on its own ``n_mul``
    multipliers, a unit every ``ii`` cycles."""
    from slimgen.hw.lstm_engine import EW_PRODUCTS
    products = EW_PRODUCTS[cell]
    return {
        "name": "elementwise", "kind": f"{cell} cell", "engine": "time-multiplexed",
        "shape": [int(n_hidden), products], "weight_bits": None, "sparsity": None,
        "nonzeros": None, "nonzeros_per_group": None, "lanes": int(n_mul),
        "mults_direct": products, "mults": float(products),
        "cycles": int(steps * n_hidden * ii),
        "mults_per_inference": int(steps * n_hidden * products),
    }


def cycles_estimate(net):
    """Cycles per inference, one in flight: the engine's timing replayed word by word
    (:func:`slimgen.hw.lstm_engine.lstm_cycles`)."""
    return int(net.engine.cycles_estimate)
