"""Launch the UART bridge bench: real digit images sent over the serial line by a simulated
host, replies checked against the golden model; on the simulator named by SLIMGEN_SIM."""

import numpy as np
import pytest

from slimgen.sim.runner import default_simulator
from slimgen.sim.uart_bridge import verify_uart_bridge
from slimgen.sw.uart_protocol import divisor

from .testing import require_simulator, trained_int_network


@pytest.fixture(scope="module")
def digits_model():
    qmodel, x_q, _ = trained_int_network("mlp", view="vector", sizes=(64, 32, 10),
                                         train_options={"epochs": 5})
    return qmodel, x_q


@pytest.mark.sim
def test_uart_bridge_fast_line(digits_model, tmp_path):
    """Twenty images at 8 clock cycles per bit, plus the bad-request recovery test."""
    sim = default_simulator()
    require_simulator(sim)
    qmodel, x_q = digits_model
    r = verify_uart_bridge(qmodel, x_q[:20], divisor=8, build_dir=tmp_path, sim=sim)
    assert r.bit_exact and len(r.logits) == 20
    np.testing.assert_array_equal(r.logits, qmodel(x_q[:20]))
    assert (r.expected < 0).any()  # negative logits made it through the sign extension
    # 65 request and 42 reply frames of 10 bits, plus the network's latency.
    assert (r.cycles > (65 + 42) * 10 * 8).all()


@pytest.mark.sim
@pytest.mark.slow
def test_uart_bridge_real_baud(digits_model, tmp_path):
    """One image at the iCEBreaker's real divisor (12 MHz / 115200 baud)."""
    sim = default_simulator()
    require_simulator(sim)
    qmodel, x_q = digits_model
    d = divisor(12e6, 115200)
    assert d == 104
    r = verify_uart_bridge(qmodel, x_q[20:21], divisor=d, build_dir=tmp_path, sim=sim,
                           testcase="bridge_matches_golden")
    assert r.bit_exact
