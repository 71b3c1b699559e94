"""Launch the UART bridge bench: real digit images sent over the serial line by a simulated
host, replies checked against the golden model; on the simulator named by SLIMGEN_SIM. Also a
network that keeps its weights in the UP5K's SPRAM, its weight image sent over the line first."""

from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from slimgen.sim.runner import default_simulator
from slimgen.sim.uart_bridge import verify_uart_bridge
from slimgen.sw.artifact import write_bytes_atomic
from slimgen.sw.uart_protocol import divisor

from .testing import require_simulator, trained_int_network

#: The bench's tests of run-time weight loading, skipped for weights in the bitstream.
LOADING_TESTS = {"bridge_answers_unloaded_until_loaded", "bridge_abandons_a_short_load"}


@pytest.fixture(scope="module")
def digits_model():
    qmodel, x_q, _ = trained_int_network("mlp", view="vector", sizes=(64, 32, 10),
                                         train_options={"epochs": 5})
    return qmodel, x_q


def _outcomes(build_dir, sim):
    """``{test name: "passed" | "skipped" | "failed"}`` of the bench's last run."""
    root = ElementTree.parse(Path(build_dir) / sim / "results.xml").getroot()
    out = {}
    for case in root.iter("testcase"):
        kind = "failed" if case.find("failure") is not None or case.find("error") is not None \
            else "skipped" if case.find("skipped") is not None else "passed"
        out[case.get("name")] = kind
    return out


@pytest.mark.sim
def test_uart_bridge_fast_line(digits_model, tmp_path):
    """Twenty images at 8 clock cycles per bit, plus the bad-request recovery test (LOAD,
    which this network does not take, answered with ERROR)."""
    sim = default_simulator()
    require_simulator(sim)
    qmodel, x_q = digits_model
    r = verify_uart_bridge(qmodel, x_q[:20], divisor=8, build_dir=tmp_path, sim=sim)
    assert r.bit_exact and len(r.logits) == 20
    np.testing.assert_array_equal(r.logits, qmodel(x_q[:20]))
    assert (r.expected < 0).any()  # negative logits made it through the sign extension
    # 65 request and 42 reply frames of 10 bits, plus the network's latency.
    assert (r.cycles > (65 + 42) * 10 * 8).all()
    outcomes = _outcomes(tmp_path, sim)
    assert {name for name, kind in outcomes.items() if kind == "skipped"} == LOADING_TESTS
    assert all(kind == "passed" for name, kind in outcomes.items() if name not in LOADING_TESTS)


@pytest.mark.sim
def test_uart_bridge_weights_in_spram(digits_model, tmp_path):
    """The digits MLP on 8 lanes with its weights in the UP5K's four SPRAMs (8 × 8 bits a row):
    INFER before LOAD answered UNLOADED, LOAD then twenty images bit-exact, a LOAD cut short
    abandoned by the byte timeout and a whole one working again."""
    from slimgen.hw.lib.weights import spram_blocks
    sim = default_simulator()
    require_simulator(sim)
    qmodel, x_q = digits_model
    from slimgen.hw.compiler import compile_network
    net = compile_network(qmodel, lanes=8, weights="spram")
    r = verify_uart_bridge(qmodel, x_q[:20], divisor=8, build_dir=tmp_path, sim=sim,
                           network=net)
    assert spram_blocks(8, net.weight_bits) == 4
    assert net.weight_bytes == 4 * 2 * (64 * 4 + 32 * 2)  # 4 SPRAMs × 2 bytes × 320 rows
    assert r.bit_exact and len(r.logits) == 20
    np.testing.assert_array_equal(r.logits, qmodel(x_q[:20]))
    outcomes = _outcomes(tmp_path, sim)
    assert LOADING_TESTS <= set(outcomes) and set(outcomes.values()) == {"passed"}, outcomes


@pytest.mark.sim
def test_classify_loads_spram_weights_on_simulated_board(digits_model, tmp_path, capsys):
    """``slimgen classify`` (pyserial over ``socket://``) against the simulated bridge with the
    weights in SPRAM: the first image finds the board unloaded, sends the run's weights.bin
    (progress on stderr) and is answered exactly; the second goes straight through."""
    import argparse
    from slimgen import host_cli
    from slimgen.hw.compiler import compile_network
    from slimgen.sw.artifact import save_int_network
    from slimgen.sw.data import load_digits
    from slimgen.sw.quantize import quantize_inputs
    from .test_host import REPLY_SECONDS, SimulatedBoard   # skips without pyserial
    sim = default_simulator()
    require_simulator(sim)
    qmodel, _ = digits_model
    run = tmp_path / "run"
    run.mkdir()
    save_int_network(run / "model.npz", qmodel, dataset="digits", split_seed=0,
                     extra={"model": "mlp"})
    net = compile_network(qmodel, lanes=8, weights="spram")
    write_bytes_atomic(run / "weights.bin", net.weight_image())
    x, _ = load_digits(seed=0).part("test")
    p = argparse.ArgumentParser()
    host_cli.add_parser(p.add_subparsers())
    board = SimulatedBoard(qmodel, tmp_path / "bench", sim, network=net)
    try:
        url = board.url()
        for k in (0, 1):
            args = p.parse_args(["classify", "--port", url, "--run", str(run),
                                 "--timeout", str(REPLY_SECONDS), f"digits:{k}"])
            assert args.func(args) == 0
            captured = capsys.readouterr()
            golden = qmodel(quantize_inputs(x[k:k + 1], qmodel.input_scale, qmodel.input_bits))
            assert captured.out.splitlines()[1:] == [
                "logits " + " ".join(str(v) for v in golden[0].tolist()), "golden model: equal"]
            loading = "slimgen classify: loading the board's weights: 2,560 bytes"
            assert captured.err.splitlines() == ([f"{loading}, about 0.2 s at 115200 baud",
                                                  f"{loading} sent"] if k == 0 else [])
    finally:
        board.stop()


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
