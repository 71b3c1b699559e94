# amaranth: UnusedElaboratable=no
"""Benchmark of the balanced-sparse MAC array and the pruned-gate LSTM engine (issue 7).

Cycles. A trained digits MLP's first layer (64 → 64, 8-bit weights) pruned to 25 % density two
ways with the same non-zero count: balanced (method 5's hard prune, ``balance_masks`` of
:mod:`slimgen.sw.compress.balanced`, groups = lanes) and plain magnitude pruning of the whole
matrix. For both layouts (rows, banks) and 4 and 8 lanes: lane utilisation (useful MACs /
lane-cycles), compute cycles per inference (the lanes' stream plus the 4-cycle pipeline) against
the lower bound ceil(nnz / P), and the cycles of a whole vector measured on Amaranth's simulator
(load and send overlapped). Then the LSTM classifier (digits, H = 16; i, f, o pruned at 1·std,
then the same count balanced) on its engine, :class:`slimgen.hw.lstm_engine.LstmEngine`:
cycles per sequence (its cycle model, exact up to the element-wise unit's phase) against the
lanes' bound and against the bound of all its multipliers (the lanes and the element-wise
unit's one or two, as the flow picks them: every product over every multiplier).

Goals: balanced ≥ 95 % utilisation and compute cycles within 5 % of the lower bound.

Resources (``--synth``, the default; ``--no-synth`` skips): logic cells, DSPs, block RAM and
fmax, out of context (:func:`slimgen.boards.unit_synth.synth_unit`), on iCE40UP5K and ECP5-85F, of
the sparse array (balanced, rows) and the dense engine (``hw/dense.py``) with the same lanes on
the same layer, and of the LSTM engine.

Prints a table, then one JSON line. Run: ``python bench/sparse_hw.py [--no-synth] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from slimgen.sim.testing import prune_gates, trained_int_network
from slimgen.sw.compress.balanced import balance_masks
from slimgen.sw.data import load_digits
from slimgen.sw.integer_model import IntDense
from slimgen.sw.nn import TrainConfig, build_model, mlp_spec, train
from slimgen.sim.testing import magnitude_mask
from slimgen.sw.sparse_layout import build_layout

DENSITY = 0.25
UTIL_GOAL, BOUND_GOAL = 0.95, 1.05


def trained_layer(seed=0):
    """First layer of a trained 64-64-10 digits MLP: float W (n_out, n_in) = (64, 64)."""
    data = load_digits(seed=seed)
    model = build_model(mlp_spec((64, 64, 10)), np.random.default_rng(seed))
    train(model, data, TrainConfig(seed=seed, epochs=10), progress=False)
    return model.layers[0].params["W"].T.copy()


def quantize(W, mask, weight_bits=8):
    qmax = (1 << (weight_bits - 1)) - 1
    Wm = np.where(mask, W, 0.0)
    Wq = np.clip(np.rint(Wm / (np.abs(Wm).max() / qmax)), -qmax, qmax).astype(np.int64)
    # a kept weight that rounds to 0 still takes its slot: keep it at ±1
    Wq = np.where(mask & (Wq == 0), np.sign(Wm).astype(np.int64), Wq)
    return Wq


def masks_for(W, lanes, layout):
    """(balanced, magnitude) masks with the same non-zero count."""
    budget = magnitude_mask(W, nnz=int(round(DENSITY * W.size)))
    key = (0, "W")
    bal = balance_masks({key: np.abs(W).T}, {key: budget.T}, {key: "dense"}, lanes, layout)[key].T
    return bal, magnitude_mask(W, nnz=int(bal.sum()))


def measured_cycles_per_vector(layer, lanes, layout):
    """Cycles per vector, vectors streamed back to back, on Amaranth's simulator."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from hw_sim import run_stream
    from slimgen.hw.sparse_mac import SparseMacArray
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (4, layer.n_in))
    n = layer.n_out
    _, c1 = run_stream(SparseMacArray(layer, lanes=lanes, layout=layout), X[:1].ravel(), n)
    _, c4 = run_stream(SparseMacArray(layer, lanes=lanes, layout=layout), X.ravel(), 4 * n)
    return (c4 - c1) / 3


def cycle_rows(W, quick):
    from slimgen.hw.sparse_mac import SparseMacCore
    rows = []
    for layout in ("rows", "banks"):
        for lanes in (4, 8):
            bal, mag = masks_for(W, lanes, layout)
            for kind, mask in (("balanced", bal), ("magnitude", mag)):
                Wq = quantize(W, mask)
                lay = build_layout(Wq, lanes=lanes, layout=layout)
                compute = lay.stream_cycles + SparseMacCore.LATENCY
                layer = IntDense(Wq, np.zeros(W.shape[0], dtype=np.int64), 1 << 10, 16)
                rows.append({
                    "matrix": "mlp1 64x64", "layout": layout, "lanes": lanes, "pruning": kind,
                    "nnz": lay.nnz, "index_bits": lay.index_bits, "dummies": lay.dummies,
                    "lane_entries_min": min(lay.lane_lengths),
                    "lane_entries_max": max(lay.lane_lengths),
                    "utilisation": round(lay.utilisation, 4),
                    "lower_bound": lay.lower_bound, "compute_cycles": compute,
                    "vs_bound": round(compute / lay.lower_bound, 4),
                    "cycles_per_output": round(compute / W.shape[0], 2),
                    "vector_cycles_measured": None if quick else
                    measured_cycles_per_vector(layer, lanes, layout),
                })
    return rows


def lstm_model(n_hidden=16, seed=0):
    """The digits LSTM classifier (an IntNetwork), gates i, f, o pruned at 1·std."""
    return trained_int_network("lstm", view="sequence", hidden=n_hidden, seed=seed,
                               prune=lambda model: prune_gates(model, q=1.0),
                               train_options={"epochs": 15, "batch_size": 32, "lr": 1e-2})[0]


def lstm_rows(qmodel):
    """Cycles per sequence of the LSTM classifier's engine (:class:`slimgen.hw.lstm_engine.
    LstmEngine`, the flow's): q·std-pruned gates, and the same count balanced over the lanes."""
    import dataclasses
    from slimgen.hw.lstm_engine import EW_PRODUCTS, LstmEngine
    from slimgen.models.lstm import ew_multipliers
    from slimgen.sim.testing import balanced_mask
    lstm = qmodel.layers[0]
    H = lstm.n_hidden
    ifo = np.concatenate([lstm.W[g] for g in "ifo"])          # (3H, n_in + H), gate-major
    rows = []
    for lanes in (4, 8):
        bal = balanced_mask(np.abs(ifo), lanes=lanes, layout="rows",
                            density=np.count_nonzero(ifo) / ifo.size)
        Wb = {g: np.where(bal[k * H:(k + 1) * H], np.where(ifo[k * H:(k + 1) * H] == 0, 1,
                                                           ifo[k * H:(k + 1) * H]), 0)
              for k, g in enumerate("ifo")}
        Wb["c"] = lstm.W["c"]
        balanced = dataclasses.replace(
            qmodel, layers=(dataclasses.replace(lstm, W=Wb),) + tuple(qmodel.layers[1:]))
        for kind, model in (("q·std", qmodel), ("balanced", balanced)):
            n_ew = ew_multipliers(model, lanes)        # the flow's choice
            eng = LstmEngine(model, lanes=lanes, ew_multipliers=n_ew)
            cell = model.layers[0]
            nnz = sum(int(np.count_nonzero(cell.W[g])) for g in "ifoc")
            steps = eng.steps
            lane_mults = steps * nnz + int(np.count_nonzero(eng.head.W))
            all_mults = lane_mults + steps * H * EW_PRODUCTS["lstm"]
            rows.append({"lanes": lanes, "gates": kind,
                         "ifo_nnz": int(sum(np.count_nonzero(cell.W[g]) for g in "ifo")),
                         "step_words_max": max(eng.schedule.step_words),
                         "step_bound": -(-nnz // lanes),
                         "cycles_per_sequence": eng.cycles_estimate,
                         "sequence_bound": -(-lane_mults // lanes),
                         "multipliers": lanes + n_ew,
                         "all_bound": -(-all_mults // (lanes + n_ew))})
    return rows


def synth_rows(W, qmodel, build_root):
    from slimgen.boards.unit_synth import synth_unit
    from slimgen.hw.dense import DenseEngine
    from slimgen.hw.lstm_engine import LstmEngine
    from slimgen.hw.sparse_mac import SparseMacArray
    rows = []
    units = []
    for lanes in (4, 8):
        bal, _ = masks_for(W, lanes, "rows")
        Wq = quantize(W, bal)
        b = np.zeros(W.shape[0], dtype=np.int64)
        sparse = IntDense(Wq, b, 1 << 10, 16)
        dense = IntDense(quantize(W, np.ones(W.shape, dtype=bool)), b, 1 << 10, 16)
        units.append((f"sparse rows P={lanes}", lambda s=sparse, p=lanes: SparseMacArray(s, lanes=p)))
        units.append((f"dense P={lanes}", lambda d=dense, p=lanes: DenseEngine(d, lanes=p)))
    units.append(("lstm engine P=4", lambda: LstmEngine(qmodel, lanes=4)))
    for board in ("ice40up5k", "ecp5-85f"):
        for name, make in units:
            r = synth_unit(make(), board, Path(build_root) / board / name.replace(" ", "_"))
            rows.append({"unit": name, "board": board, "logic_cells": r.logic_cells,
                         "dsps": r.dsps, "brams": r.brams, "fmax_mhz": r.fmax_mhz,
                         "fits": r.fits, "seconds": r.seconds})
            print(f"  synth {board:10s} {name:18s} LC {r.logic_cells:6d} DSP {r.dsps:3d} "
                  f"BRAM {r.brams:3d} fmax {r.fmax_mhz}", flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-synth", action="store_true", help="skip the resource measurements")
    ap.add_argument("--quick", action="store_true", help="skip the simulated vector timings")
    ap.add_argument("--build", default=None, help="folder for the synthesis builds")
    args = ap.parse_args(argv)
    t0 = time.time()
    W = trained_layer()
    rows = cycle_rows(W, args.quick)
    print(f"{'layout':6s} {'P':>2s} {'pruning':10s} {'nnz':>5s} {'util':>6s} {'bound':>6s} "
          f"{'cycles':>6s} {'/bound':>6s} {'cyc/out':>7s} {'vector(sim)':>11s} goals")
    for r in rows:
        ok = ""
        if r["pruning"] == "balanced":
            ok = ("util " + ("ok" if r["utilisation"] >= UTIL_GOAL else "MISS") + ", bound "
                  + ("ok" if r["vs_bound"] <= BOUND_GOAL else "MISS"))
        print(f"{r['layout']:6s} {r['lanes']:2d} {r['pruning']:10s} {r['nnz']:5d} "
              f"{r['utilisation']:6.3f} {r['lower_bound']:6d} {r['compute_cycles']:6d} "
              f"{r['vs_bound']:6.3f} {r['cycles_per_output']:7.2f} "
              f"{str(r['vector_cycles_measured']):>11s} {ok}")
    qmodel = lstm_model()
    lrows = lstm_rows(qmodel)
    print(f"\nLSTM engine (H=16): {'P':>2s} {'gates':9s} {'ifo nnz':>7s} {'step':>5s} "
          f"{'bound':>6s} {'cyc/seq':>8s} {'bound':>6s} {'/bound':>6s} {'all mult':>8s} "
          f"{'bound':>6s} {'/bound':>6s}")
    for r in lrows:
        print(f"{'':20s}{r['lanes']:2d} {r['gates']:9s} {r['ifo_nnz']:7d} "
              f"{r['step_words_max']:5d} {r['step_bound']:6d} {r['cycles_per_sequence']:8d} "
              f"{r['sequence_bound']:6d} {r['cycles_per_sequence'] / r['sequence_bound']:6.3f} "
              f"{r['multipliers']:8d} {r['all_bound']:6d} "
              f"{r['cycles_per_sequence'] / r['all_bound']:6.3f}")
    srows = []
    if not args.no_synth:
        print("\nOut-of-context synthesis (logic cells, DSPs, block RAMs, fmax MHz):")
        with tempfile.TemporaryDirectory() as tmp:
            srows = synth_rows(W, qmodel, args.build or tmp)
    bal = [r for r in rows if r["pruning"] == "balanced"]
    goals = {"balanced_util_min": min(r["utilisation"] for r in bal),
             "balanced_vs_bound_max": max(r["vs_bound"] for r in bal),
             "util_goal_met": all(r["utilisation"] >= UTIL_GOAL for r in bal),
             "bound_goal_met": all(r["vs_bound"] <= BOUND_GOAL for r in bal)}
    print(json.dumps({"bench": "sparse_hw", "density": DENSITY, "cycles": rows, "lstm": lrows,
                      "synth": srows, "goals": goals, "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
