"""Launch the network bench: every image of the digits test split through the generated Verilog
of a trained, quantized MLP (one engine per layer, and every layer folded onto one array), on
Icarus and on Verilator; logits must equal the golden model's."""

from dataclasses import replace

import numpy as np
import pytest

from slimgen.hw.folded_mlp import FoldedMlp
from slimgen.hw.network import Network
from slimgen.hw.verilog import to_verilog
from slimgen.sim.network import verify_network
from slimgen.sim.runner import BenchFailed
from slimgen.sw.artifact import write_bytes_atomic
from slimgen.sw.golden import argmax_first

from .testing import dense_network, random_dense_layer, require_simulator, trained_int_network


@pytest.fixture(scope="module")
def digits_model():
    return trained_int_network("mlp", view="vector", sizes=(64, 32, 10))


NETWORKS = {"per-layer": lambda q: Network(q, lanes=4), "folded": lambda q: FoldedMlp(q, lanes=8)}


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
@pytest.mark.parametrize("kind", NETWORKS)
def test_network_every_test_image(sim, kind, digits_model, tmp_path):
    require_simulator(sim)
    qmodel, x_q, y = digits_model
    assert len(x_q) == 360
    verilog = tmp_path / "network.v"
    write_bytes_atomic(verilog, to_verilog(NETWORKS[kind](qmodel), "network").encode())
    r = verify_network(verilog, qmodel, x_q, build_dir=tmp_path / "build", sim=sim)
    assert r.n == 360 and r.bit_exact
    np.testing.assert_array_equal(r.logits, qmodel(x_q))
    assert np.mean(r.cls == y) == np.mean(argmax_first(qmodel(x_q)) == y)
    assert 0 < r.latency < 2000 and 0 < r.interval <= r.latency


@pytest.mark.sim
def test_folded_network_on_a_random_three_layer_model(tmp_path):
    """Random weights and inputs through three layers (both activation buffers in turn)."""
    from slimgen.sim.runner import default_simulator
    sim = default_simulator()
    require_simulator(sim)
    rng = np.random.default_rng(11)
    qmodel = dense_network([random_dense_layer(rng, 20, 12), random_dense_layer(rng, 12, 9),
                            random_dense_layer(rng, 9, 5, requant=False)])
    x_q = rng.integers(0, 256, (40, 20))
    verilog = tmp_path / "network.v"
    write_bytes_atomic(verilog, to_verilog(FoldedMlp(qmodel, lanes=5), "network").encode())
    r = verify_network(verilog, qmodel, x_q, build_dir=tmp_path / "build", sim=sim)
    assert r.n == 40 and r.bit_exact
    np.testing.assert_array_equal(r.logits, qmodel(x_q))


@pytest.mark.sim
def test_network_bench_catches_a_wrong_weight(digits_model, tmp_path):
    """The bench is not blind: RTL built from a model with one weight changed must fail."""
    from slimgen.sim.runner import default_simulator
    sim = default_simulator()
    require_simulator(sim)
    qmodel, x_q, _ = digits_model
    l0 = qmodel.layers[0]
    W = l0.W.copy()
    W[3, np.argmax(x_q[:8].sum(axis=0))] += 5  # an input pixel the first samples use
    broken = replace(qmodel, layers=(replace(l0, W=W),) + qmodel.layers[1:])
    verilog = tmp_path / "broken.v"
    write_bytes_atomic(verilog, to_verilog(Network(broken, lanes=4), "network").encode())
    with pytest.raises(BenchFailed, match=r"1 of 1 tests failed"):
        verify_network(verilog, qmodel, x_q[:8], build_dir=tmp_path / "build", sim=sim,
                       log_file=tmp_path / "sim.log")
