"""Every array and manifest field of an integer LSTM artifact is checked when loaded
(issue 21)."""

import numpy as np
import pytest

from slimgen.sw.lstm_artifact import load_int_lstm, save_int_lstm
from slimgen.sw.lstm_golden import IntLSTMClassifier, LstmFormat, random_int_lstm
from slimgen.sw.sparse_golden import SparseLayer

from test_artifact_checks import refused, rewrite, setitem


@pytest.fixture
def path(tmp_path):
    rng = np.random.default_rng(0)
    fmt = LstmFormat(weight_bits=6, h_frac=6)
    lstm = random_int_lstm(rng, 4, 5, fmt=fmt)
    head = SparseLayer(rng.integers(-127, 128, (3, 5)), rng.integers(-500, 500, 3),
                       in_bits=fmt.h_bits, in_signed=True, weight_bits=8, requant=False)
    path = tmp_path / "model.npz"
    save_int_lstm(path, IntLSTMClassifier(lstm, head, steps=3), dataset="digits", split_seed=0)
    return path


CASES = [
    (lambda m, a: setitem(m, "steps", 0),
     "manifest field 'steps' is 0; it must be an integer from 1 to 4096"),
    (lambda m, a: setitem(m, "input_scale", float("nan")),
     "manifest field 'input_scale' is nan; it must be a positive finite number"),
    (lambda m, a: setitem(m, "n_hidden", -5),
     "manifest field 'n_hidden' is -5; it must be an integer from 1 to 4096"),
    (lambda m, a: setitem(m["multiplier"], "i", 0),
     "manifest field 'multiplier.i' is 0; it must be an integer from 1 to 65535"),
    (lambda m, a: setitem(m["multiplier"], "c", 2.5),
     "manifest field 'multiplier.c' is 2.5; it must be an integer from 1 to 65535"),
    (lambda m, a: setitem(m["shift"], "f", 100),
     "manifest field 'shift.f' is 100; it must be an integer from 1 to 62"),
    (lambda m, a: setitem(m["head"], "weight_bits", 20),
     "manifest field 'head.weight_bits' is 20; it must be 8, the head's weight width "
     "(lstm_format.head_weight_bits)"),
    (lambda m, a: setitem(m["head"], "in_bits", 0),
     "manifest field 'head.in_bits' is 0; it must be 7, the width of the hidden state "
     "(lstm_format.h_frac + 1)"),
    (lambda m, a: setitem(m["head"], "in_signed", False),
     "manifest field 'head.in_signed' is False; it must be True: the hidden state is signed"),
    (lambda m, a: a["lstm.W_c"].__setitem__((4, 8), 1 << 40),
     "array 'lstm.W_c' holds 1099511627776 at index (4, 8), outside [-127, 127], the range of "
     "8-bit weights (lstm_format.c_weight_bits)"),
    (lambda m, a: a["lstm.W_o"].__setitem__((0, 0), -32),
     "array 'lstm.W_o' holds -32 at index (0, 0), outside [-31, 31], the range of 6-bit "
     "weights (lstm_format.weight_bits)"),
    (lambda m, a: a["head.W"].__setitem__((2, 1), 128),
     "array 'head.W' holds 128 at index (2, 1), outside [-127, 127], the range of 8-bit "
     "weights (head.weight_bits)"),
    (lambda m, a: a["lstm.b_i"].__setitem__(3, -(1 << 45)),
     "array 'lstm.b_i' holds -35184372088832 at index 3, outside [-549755813888, "
     "549755813887], the range of 40-bit accumulators (the widest slimgen builds)"),
    (lambda m, a: a["head.b"].__setitem__(0, 1 << 45),
     "array 'head.b' holds 35184372088832 at index 0, outside [-549755813888, 549755813887], "
     "the range of 40-bit accumulators (the widest slimgen builds)"),
    (lambda m, a: a["lstm.b_f"].__setitem__(0, (1 << 39) - 1),
     "gate 'f' needs 41-bit accumulators for its weights and biases; slimgen builds at most 40"),
    (lambda m, a: setitem(a, "lstm.b_o", a["lstm.b_o"].astype(np.float64)),
     "array 'lstm.b_o' is of type float64; an integer model's arrays hold integers"),
]


@pytest.mark.parametrize("change,message", CASES)
def test_int_lstm_fields_and_arrays(tmp_path, path, change, message):
    bad = rewrite(path, tmp_path / "bad.npz", "int-lstm", change)
    refused(load_int_lstm, bad, message, "quantize")


def test_valid_lstm_loads(path):
    model, _ = load_int_lstm(path)
    assert model.steps == 3
