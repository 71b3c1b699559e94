"""Launch the LSTM classifier bench (:mod:`slimgen.sim.network_tb`): every image of the digits
test split, as 8 steps of 8-pixel rows, through the generated Verilog of a trained LSTM with
pruned i, f, o gates on :class:`slimgen.hw.lstm_engine.LstmEngine`, and random classifiers on
random inputs (one and two element-wise multipliers), on Icarus and Verilator; logits must
equal the golden model's."""

import numpy as np
import pytest

from slimgen.hw.lstm_cell import LstmClassifier
from slimgen.hw.verilog import to_verilog
from slimgen.sim.network import verify_network
from slimgen.sim.runner import BenchFailed, default_simulator
from slimgen.sw.artifact import write_bytes_atomic
from slimgen.sw.golden import argmax_first
from slimgen.sw.integer_model import RecurrentFormat

from .testing import (prune_gates, random_recurrent_classifier, require_simulator,
                      trained_int_network)


def trained_lstm_classifier(n_hidden=16, q=1.0, seed=0):
    """A digits LSTM classifier, gates i, f, o pruned at q·std, quantized; with the test split
    as integer codes (n, 64) and its labels."""
    return trained_int_network("lstm", view="sequence", hidden=n_hidden, seed=seed,
                               prune=lambda model: prune_gates(model, q=q),
                               train_options={"epochs": 15, "batch_size": 32, "lr": 1e-2})


@pytest.fixture(scope="module")
def digits_lstm():
    return trained_lstm_classifier()


@pytest.mark.sim
@pytest.mark.slow
# CI runs Verilator (sim/test_flow_lstm.py runs every image through the flow too)
@pytest.mark.parametrize("sim", [pytest.param("icarus", marks=pytest.mark.long), "verilator"])
def test_lstm_every_test_image(sim, digits_lstm, tmp_path):
    require_simulator(sim)
    qmodel, x_q, y = digits_lstm
    assert len(x_q) == 360
    top = LstmClassifier(qmodel, lanes=4)
    verilog = tmp_path / "lstm.v"
    write_bytes_atomic(verilog, to_verilog(top, "lstm").encode())
    r = verify_network(verilog, qmodel, x_q, build_dir=tmp_path / "build", sim=sim,
                       toplevel="lstm", log_file=tmp_path / "sim.log")
    assert r.n == 360 and r.bit_exact
    np.testing.assert_array_equal(r.logits, qmodel(x_q))
    assert np.mean(r.cls == y) == np.mean(argmax_first(qmodel(x_q)) == y) > 0.85
    # A sample takes at most the modelled cycles, and within 1.25× of the multipliers' bound:
    # every non-zero weight's multiply, steps times, plus the head's, over the 4 lanes.
    lstm, head = qmodel.layers
    mults = 8 * sum(int(np.count_nonzero(lstm.W[g])) for g in "ifoc") + \
        int(np.count_nonzero(head.W))
    # The cycle model replays the engine: the latency is its estimate.
    assert r.latency == top.engine.cycles_estimate, (r.latency, top.engine.cycles_estimate)
    assert r.latency <= 1.25 * mults / 4, (r.latency, mults / 4)
    # ... and of all five multipliers' bound (the element-wise unit's 7 products per hidden
    # unit and step on its one).
    all_mults = mults + 8 * lstm.n_hidden * 7
    assert r.latency <= 1.25 * all_mults / 5, (r.latency, all_mults / 5)


_NARROW = {"fmt": RecurrentFormat(gate_frac=6, tanh_frac=6, c_bits=9, h_frac=5, table_bits=7),
           "weight_bits": 4, "c_weight_bits": 3, "head_weight_bits": 5, "in_bits": 4}
_CLASSIFIERS = [(3, {}, 1, "lstm"), (3, {}, 2, "lstm"), (7, _NARROW, 1, "lstm"),
                (7, _NARROW, 2, "lstm"), (3, {}, 1, "gru"), (3, {}, 2, "gru"),
                (7, _NARROW, 1, "gru"), (7, _NARROW, 2, "gru")]


@pytest.mark.sim
# every case on Icarus in CI, one on Verilator; all of them on Verilator with -m long
@pytest.mark.parametrize("sim,lanes,fmt,ew,cell", [("icarus", *c) for c in _CLASSIFIERS] + [
    pytest.param("verilator", *c, marks=() if c[0] == 3 and c[2] == 2 else pytest.mark.long)
    for c in _CLASSIFIERS])
def test_lstm_random_classifier(sim, lanes, fmt, ew, cell, tmp_path):
    """Random LSTM and GRU weights over the tables' whole range (c and h saturate), random
    inputs, on one and on two element-wise multipliers."""
    require_simulator(sim)
    rng = np.random.default_rng(lanes)
    qmodel = random_recurrent_classifier(rng, 6, 7, 5, steps=5, density=0.2, cell=cell, **fmt)
    x_q = rng.integers(0, 1 << qmodel.input_bits, (12, 5 * 6))
    verilog = tmp_path / "lstm.v"
    write_bytes_atomic(verilog, to_verilog(LstmClassifier(qmodel, lanes=lanes,
                                                          ew_multipliers=ew), "lstm").encode())
    r = verify_network(verilog, qmodel, x_q, build_dir=tmp_path / "build", sim=sim,
                       toplevel="lstm", log_file=tmp_path / "sim.log")
    assert r.n == 12 and r.bit_exact
    np.testing.assert_array_equal(r.logits, qmodel(x_q))


@pytest.mark.sim
def test_lstm_bench_catches_a_wrong_weight(digits_lstm, tmp_path):
    """The bench is not blind: RTL with one recurrent weight of the f gate changed must fail."""
    import dataclasses
    sim = default_simulator()
    require_simulator(sim)
    qmodel, x_q, _ = digits_lstm
    lstm, head = qmodel.layers
    W = dict(lstm.W)
    W["f"] = W["f"].copy()
    r, c = np.argwhere(W["f"][:, lstm.n_in:] != 0)[0]
    W["f"][r, lstm.n_in + c] = -W["f"][r, lstm.n_in + c]
    broken = dataclasses.replace(qmodel, layers=(dataclasses.replace(lstm, W=W), head))
    verilog = tmp_path / "broken.v"
    write_bytes_atomic(verilog, to_verilog(LstmClassifier(broken), "lstm").encode())
    with pytest.raises(BenchFailed, match=r"1 of 1 tests failed"):
        verify_network(verilog, qmodel, x_q[:6], build_dir=tmp_path / "build", sim=sim,
                       toplevel="lstm", log_file=tmp_path / "sim.log")
