"""Launch the network bench on the CNN of one shared multiplier array: a random CNN of the
digits' shape (8×8, 1→4→8 channels, max-pool, sparse dense 128→10) with random and extreme
images through its Verilog on Icarus and on Verilator; logits must equal the golden model's.
The digits themselves go through it in :mod:`test_flow_cnn`."""

from dataclasses import replace

import numpy as np
import pytest

from slimgen.hw.cnn import CNN
from slimgen.hw.verilog import to_verilog
from slimgen.sim.network import verify_network
from slimgen.sw.artifact import write_bytes_atomic

from .testing import random_cnn, require_simulator


def _verify(net, qmodel, x_q, sim, tmp_path):
    """The CNN's Verilog on ``sim``: bit-exact logits, the latency the schedule's exact
    cycle model gives; the bench's result."""
    verilog = tmp_path / "network.v"
    write_bytes_atomic(verilog, to_verilog(net, "network").encode())
    r = verify_network(verilog, qmodel, x_q, build_dir=tmp_path / "build", sim=sim)
    assert r.n == len(x_q) and r.bit_exact
    np.testing.assert_array_equal(r.logits, qmodel(x_q))
    assert r.latency == net.schedule.cycles_estimate(), (r.latency,
                                                         net.schedule.cycles_estimate())
    return r


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_random_cnn_bit_exact(sim, tmp_path):
    require_simulator(sim)
    rng = np.random.default_rng(21)
    qmodel = random_cnn(rng, (8, 8, 1), (4, 8), pool=2, n_classes=10, density=0.2,
                        conv_bias=False)
    x_q = np.concatenate([rng.integers(0, 256, (6, qmodel.n_inputs)),
                          np.zeros((1, qmodel.n_inputs), dtype=np.int64),
                          np.full((1, qmodel.n_inputs), 255)])
    net = CNN(qmodel, lanes=4)
    r = _verify(net, qmodel, x_q, sim, tmp_path)
    assert np.all(np.diff(r.result_cycles) == net.interval) and r.interval <= r.latency


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("sim, lanes", [("icarus", 16), ("verilator", 8)])
def test_pruned_filters_on_more_lanes_bit_exact(sim, lanes, tmp_path):
    # Issue 16: 7-bit weights with conv1's filters pruned (as magnitude pruning to 90-95 %
    # does) so that an output channel with fewer products than the m² = 4 outputs of a tile
    # (S·n_k: n_k on 16 lanes, 2·n_k on 8) follows a full one; the output path dropped values
    require_simulator(sim)
    rng = np.random.default_rng(22)
    qmodel = random_cnn(rng, (8, 8, 1), (4, 8), pool=2, n_classes=10, weight_bits=7,
                        density=0.2, conv_bias=False)
    conv0, conv1, *rest = qmodel.layers
    W = conv1.W.copy()
    for k, n in enumerate([4, 1, 3, 1, 2, 4, 1, 2]):     # input channels kept per output
        W[k, n:] = 0
    qmodel = replace(qmodel, layers=(conv0, replace(conv1, W=W), *rest))
    x_q = np.concatenate([rng.integers(0, 256, (6, qmodel.n_inputs)),
                          np.full((1, qmodel.n_inputs), 255)])
    net = CNN(qmodel, lanes=lanes)
    assert [len(f) for f in net.schedule.filters[1]] == [4, 1, 3, 1, 2, 4, 1, 2]
    _verify(net, qmodel, x_q, sim, tmp_path)
