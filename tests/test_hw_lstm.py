# amaranth: UnusedElaboratable=no
"""The LSTM cell on Amaranth's simulator, against the integer golden model."""

import numpy as np
import pytest

from slimgen.hw.lstm_cell import LstmCell, LstmClassifier
from slimgen.sw.lstm_golden import LstmFormat, lstm_forward_int, random_int_lstm

from hw_sim import run_stream


@pytest.mark.parametrize("fmt,layout,lanes", [
    (LstmFormat(), "rows", (3, 2)),
    (LstmFormat(gate_frac=6, tanh_frac=6, c_bits=9, h_frac=5, table_bits=7, weight_bits=4,
                c_weight_bits=3, in_bits=4), "banks", (4, 3)),
])
def test_cell_random_weights(fmt, layout, lanes):
    """Random weights spread over the tables' whole range (saturating c and h)."""
    rng = np.random.default_rng(fmt.gate_frac)
    lstm = random_int_lstm(rng, 5, 9, fmt=fmt, spread=8)
    steps = 4
    X = rng.integers(0, 1 << fmt.in_bits, (3, steps, 5))
    dut = LstmCell(lstm, steps=steps, gate_lanes=lanes[0], c_lanes=lanes[1], layout=layout)
    out, cycles = run_stream(dut, X.ravel(), 3 * 9)
    w = fmt.h_bits
    out = np.array(out, dtype=np.int64) & ((1 << w) - 1)
    out = np.where(out >> (w - 1), out - (1 << w), out).reshape(3, 9)
    np.testing.assert_array_equal(out, lstm_forward_int(lstm, X))
    # Three sequences back to back: the state was reset between them, and each took the
    # modelled cycles (the third one's output is the only one not overlapped).
    assert cycles <= 3 * dut.cycles_per_sequence + 9 + 4


def test_cell_errors():
    lstm = random_int_lstm(np.random.default_rng(0), 2, 3)
    with pytest.raises(TypeError, match=r"^LSTM must be an IntLSTM, not None$"):
        LstmCell(None)
    with pytest.raises(TypeError, match=r"^Step count must be a positive integer, not 0$"):
        LstmCell(lstm, steps=0)
    with pytest.raises(TypeError, match=r"^Model must be an IntLSTMClassifier, not"):
        LstmClassifier(lstm)
