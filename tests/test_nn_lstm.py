"""LSTM forward against the per-sample, per-gate loop reference; gate parameters kept apart."""

import numpy as np

from slimgen.sw.nn import LSTM
from slimgen.sw.nn.lstm import GATES, lstm_loop


def test_lstm_matches_loop_reference():
    rng = np.random.default_rng(0)
    lstm = LSTM(5, 7, return_sequences=True, rng=rng)
    for p in lstm.params.values():
        p += 0.3 * rng.normal(size=p.shape)
    x = rng.normal(size=(4, 6, 5))
    np.testing.assert_allclose(lstm.forward(x), lstm_loop(x, lstm.params), rtol=1e-12, atol=1e-12)


def test_lstm_last_state_is_last_step_of_sequence():
    rng = np.random.default_rng(1)
    last, seq = LSTM(3, 4, rng=np.random.default_rng(2)), LSTM(3, 4, return_sequences=True,
                                                              rng=np.random.default_rng(2))
    x = rng.normal(size=(2, 5, 3))
    np.testing.assert_array_equal(last.forward(x), seq.forward(x)[:, -1])


def test_lstm_has_separate_gate_matrices():
    lstm = LSTM(8, 32)
    assert set(lstm.params) == {f"{m}_{g}" for m in "WUb" for g in GATES}
    assert lstm.params["W_f"].shape == (8, 32) and lstm.params["U_c"].shape == (32, 32)
    np.testing.assert_array_equal(lstm.params["b_f"], np.ones(32))
    # U orthogonal
    np.testing.assert_allclose(lstm.params["U_i"].T @ lstm.params["U_i"], np.eye(32), atol=1e-12)


def test_zeroed_gate_matrix_changes_only_that_gate():
    # pruning W_i entirely: the input gate then depends on h only (method 2 relies on this)
    rng = np.random.default_rng(3)
    lstm = LSTM(2, 3, return_sequences=True, rng=rng)
    lstm.params["W_i"][...] = 0
    x = rng.normal(size=(2, 4, 2))
    np.testing.assert_allclose(lstm.forward(x), lstm_loop(x, lstm.params), atol=1e-12)
