"""Launch the host bench: ``slimgen classify`` (the host code, unmodified, over pyserial's
``socket://``) against the simulated UART bridge, on the simulator named by SLIMGEN_SIM: a
trained MLP, and the CNN and the LSTM of the flow's model kinds (untrained, quantized as the flow
does) behind the same bridge, as the board top serves them.

The bench runs in a thread; this test is its client on 127.0.0.1. Everything is bounded in
time: the bench stops when the test touches its stop file, and fails after ``BENCH_SECONDS``.
"""

import threading
import time

import numpy as np
import pytest

from slimgen.sim.runner import default_simulator, run_bench
from slimgen.sim.uart_bridge import write_bridge_verilog
from slimgen.sw.artifact import save_int_network, write_bytes_atomic
from slimgen.sw.data import load_digits
from slimgen.sw.quantize import quantize_inputs

from .testing import require_simulator, trained_int_network, untrained_int_run

pytest.importorskip("serial")

DIVISOR = 8           # clock cycles per bit: a fast line keeps the simulation short
BENCH_SECONDS = 300   # wall-clock limit of the bench
REPLY_SECONDS = 60    # the host's read timeout (simulated time runs slower than real time)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """A run folder with a small trained digits MLP (model.npz) and the model itself."""
    qmodel, _, _ = trained_int_network("mlp", view="vector", sizes=(64, 16, 10),
                                       train_options={"epochs": 5})
    root = tmp_path_factory.mktemp("run")
    save_int_network(root / "model.npz", qmodel, dataset="digits", split_seed=0,
                     extra={"model": "mlp"})
    return root, qmodel


@pytest.fixture(scope="module", params=["cnn", "lstm"])
def kind_run(request, tmp_path_factory):
    """A run folder with the model.npz of a CNN or LSTM (an untrained float model quantized as
    the flow does), the integer model, and the network the board top serves it on."""
    from slimgen.models import get_model_kind
    root = tmp_path_factory.mktemp(request.param)
    int_model, config = untrained_int_run(request.param, root)
    return root, int_model, get_model_kind(request.param).make_network(int_model, config)


class SimulatedBoard:
    """The host bench in a thread: ``url`` once it listens; ``stop()`` ends it. ``network``:
    the network behind the bridge instead of the MLP :class:`slimgen.hw.network.Network` of
    ``qmodel`` (as :class:`slimgen.boards.top.BoardTop` takes a model kind's)."""

    def __init__(self, qmodel, folder, sim, network=None):
        self.folder, self.error = folder, None
        self.port_file, self.stop_file = folder / "port", folder / "stop"
        # the bridge's own byte timeout for a network of its own (a weight load streams
        # thousands of bytes through the socket), the benches' short one otherwise
        verilog = write_bridge_verilog(folder / "uart_bridge.v", qmodel, divisor=DIVISOR,
                                       timeout_bytes=64 if network is None else 1024,
                                       network=network)
        self.log = folder / "bench.log"
        kwargs = dict(verilog=verilog, toplevel="uart_bridge", test_module="slimgen.sim.host_tb",
                      build_dir=folder, sim=sim, log_file=self.log,
                      extra_env={"SLIMGEN_TB_DIVISOR": DIVISOR,
                                 "SLIMGEN_TB_PORT_FILE": self.port_file.resolve(),
                                 "SLIMGEN_TB_STOP_FILE": self.stop_file.resolve(),
                                 "SLIMGEN_TB_SECONDS": BENCH_SECONDS})
        self.thread = threading.Thread(target=self._run, kwargs=kwargs, daemon=True)
        self.thread.start()

    def _run(self, **kwargs):
        try:
            run_bench(**kwargs)
        except BaseException as e:  # reported by stop()
            self.error = e

    def url(self, timeout=180):
        t_end = time.monotonic() + timeout
        while not self.port_file.exists():
            if not self.thread.is_alive():
                raise AssertionError(f"the bench ended before listening: {self.error}")
            if time.monotonic() > t_end:
                raise AssertionError(f"the bench did not listen within {timeout} s")
            time.sleep(0.1)
        return f"socket://127.0.0.1:{int(self.port_file.read_text())}"

    def stop(self):
        self.stop_file.touch()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the bench did not stop"
        if self.error is not None:
            raise self.error


@pytest.mark.sim
def test_classify_on_simulated_board(digits_run, tmp_path, capsys):
    import argparse
    import matplotlib.image as mpimg
    from slimgen import host_cli
    from slimgen.host import classify
    sim = default_simulator()
    require_simulator(sim)
    root, qmodel = digits_run
    x, y = load_digits(seed=0).part("test")
    board = SimulatedBoard(qmodel, tmp_path, sim)
    try:
        url = board.url()
        for k in (0, 1):
            c = classify(url, f"digits:{k}", run=root, timeout=REPLY_SECONDS)
            golden = qmodel(quantize_inputs(x[k:k + 1], qmodel.input_scale, qmodel.input_bits))
            assert c.logits.tolist() == golden[0].tolist() and c.matches_golden
            assert c.label == y[k]
        # A PNG drawn dark on white, 32×32, through the command line.
        big = np.kron(np.rint(x[2] * 16).reshape(8, 8), np.ones((4, 4)))
        mpimg.imsave(tmp_path / "digit.png", 16 - big, cmap="gray", vmin=0, vmax=16)
        p = argparse.ArgumentParser()
        host_cli.add_parser(p.add_subparsers())
        args = p.parse_args(["classify", "--port", url, "--run", str(root),
                             "--timeout", str(REPLY_SECONDS), str(tmp_path / "digit.png")])
        assert args.func(args) == 0
        out = capsys.readouterr().out.splitlines()
        golden = qmodel(quantize_inputs(x[2:3], qmodel.input_scale, qmodel.input_bits))[0]
        assert out == [f"class {int(np.argmax(golden))}",
                       "logits " + " ".join(str(v) for v in golden.tolist()),
                       "golden model: equal"]
    finally:
        board.stop()


@pytest.mark.sim
def test_classify_cnn_and_lstm_on_simulated_board(kind_run, tmp_path):
    """The CNN and the LSTM take the same request as the MLP: 64 codes in raster order."""
    from slimgen.host import classify
    sim = default_simulator()
    require_simulator(sim)
    root, int_model, network = kind_run
    x, y = load_digits(seed=0).part("test")
    board = SimulatedBoard(int_model, tmp_path, sim, network=network)
    try:
        url = board.url()
        for k in (0, 1):
            c = classify(url, f"digits:{k}", run=root, timeout=REPLY_SECONDS)
            golden = int_model(quantize_inputs(x[k:k + 1], int_model.input_scale,
                                               int_model.input_bits))
            assert c.logits.tolist() == golden[0].tolist() and c.matches_golden
            assert c.label == y[k]
    finally:
        board.stop()
