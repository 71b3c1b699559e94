"""Launch the network bench: every image of the digits test split through the generated Verilog
of a trained, quantized MLP (one engine per layer, and every layer folded onto one array), on
Icarus and on Verilator; logits must equal the golden model's. Random MLPs streamed through the
per-layer network: latency and the interval between results exactly the model's, and exact
logits with a consumer that is sometimes not ready."""

from dataclasses import replace

import numpy as np
import pytest

from slimgen.hw.compiler import compile_network
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


NETWORKS = {"per-layer": lambda q: Network(q, lanes=4),
            "folded": lambda q: compile_network(q, lanes=8)}     # the compiler's shared array


@pytest.mark.sim
@pytest.mark.slow
# CI: the per-layer engines on Icarus, the folded one on Verilator; -m long: the other two
@pytest.mark.parametrize("sim,kind", [
    (sim, kind) if (sim == "icarus") == (kind == "per-layer")
    else pytest.param(sim, kind, marks=pytest.mark.long)
    for sim in ("icarus", "verilator") for kind in NETWORKS])
def test_network_every_test_image(sim, kind, digits_model, tmp_path):
    require_simulator(sim)
    qmodel, x_q, y = digits_model
    assert len(x_q) == 360
    verilog = tmp_path / "network.v"
    net = NETWORKS[kind](qmodel)
    write_bytes_atomic(verilog, to_verilog(net, "network").encode())
    r = verify_network(verilog, qmodel, x_q, build_dir=tmp_path / "build", sim=sim)
    assert r.n == 360 and r.bit_exact
    np.testing.assert_array_equal(r.logits, qmodel(x_q))
    assert np.mean(r.cls == y) == np.mean(argmax_first(qmodel(x_q)) == y)
    assert 0 < r.latency < 2000 and 0 < r.interval <= r.latency
    # the engines' cycle models, exact: one sample alone, and results back to back
    assert r.latency == (net.latency if kind == "per-layer" else net.cycles)
    assert np.all(np.diff(r.result_cycles) == net.interval)


# Random MLPs on the per-layer network: (sizes, lanes, engines). The digits-sized one on 32 and
# 10 lanes is paced by its input (64 words a sample); the others by a layer's lanes, by a
# layer's serializer (more outputs than the lanes' cycles), by the argmax, and a sparse layer.
DATAFLOW = {
    "digits-sized": ((64, 32, 10), (32, 10), "dense"),
    "lanes-bound": ((12, 10, 8, 5), (3, 2, 2), "dense"),
    "serializer-bound": ((4, 16, 6, 3), (8, 6, 3), "dense"),
    "argmax-bound": ((5, 6, 8), (6, 8), "dense"),
    "sparse-first": ((12, 9, 4), (3, 2), ("sparse", "dense")),
}


def dataflow_case(case):
    sizes, lanes, engines = DATAFLOW[case]
    rng = np.random.default_rng(sorted(DATAFLOW).index(case))
    layers = [random_dense_layer(rng, a, b, requant=k < len(sizes) - 2,
                                 density=0.5 if engines != "dense" else 1.0)
              for k, (a, b) in enumerate(zip(sizes, sizes[1:]))]
    qmodel = dense_network(layers)
    x_q = np.concatenate([rng.integers(0, 256, (5, sizes[0])), np.full((1, sizes[0]), 255)])
    return qmodel, Network(qmodel, lanes=list(lanes), engines=engines), x_q


def check_dataflow(case, sim, tmp_path):
    require_simulator(sim)
    qmodel, net, x_q = dataflow_case(case)
    verilog = tmp_path / "network.v"
    write_bytes_atomic(verilog, to_verilog(net, "network").encode())
    r = verify_network(verilog, qmodel, x_q, build_dir=tmp_path / "build", sim=sim,
                       ready_probability=0.5, seed=1)
    assert r.n == len(x_q) and r.bit_exact
    np.testing.assert_array_equal(r.logits, qmodel(x_q))
    assert r.latency == net.latency
    assert np.diff(r.result_cycles).tolist() == [net.interval] * (len(x_q) - 1)
    assert r.interval == net.interval


@pytest.mark.sim
@pytest.mark.parametrize("case", list(DATAFLOW))
def test_network_dataflow(case, tmp_path):
    from slimgen.sim.runner import default_simulator
    check_dataflow(case, default_simulator(), tmp_path)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("case", ["lanes-bound",
                                  pytest.param("serializer-bound", marks=pytest.mark.long)])
def test_network_dataflow_on_verilator(case, tmp_path):
    """The default simulator is Icarus; one case on the other in CI, both with -m long."""
    check_dataflow(case, "verilator", tmp_path)


def test_dataflow_model_figures():
    """The model's figures of the cases above: each paced by what its name says."""
    intervals = {case: dataflow_case(case)[1].stage_intervals for case in DATAFLOW}
    assert intervals["digits-sized"] == [64, 32, 11]        # the input: 64 words a sample
    assert intervals["lanes-bound"] == [48, 40, 24, 6]      # 4 groups of 12 inputs
    assert intervals["serializer-bound"] == [16, 16, 6, 4]  # 16 outputs (8 lanes' cycles)
    assert intervals["argmax-bound"] == [6, 8, 9]           # 8 logits, then the result
    # Network.latency of two dense engines (DenseEngine.cycles_per_vector) and the argmax
    assert dataflow_case("digits-sized")[1].latency == 209


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
    net = compile_network(qmodel, lanes=5)
    write_bytes_atomic(verilog, to_verilog(net, "network").encode())
    r = verify_network(verilog, qmodel, x_q, build_dir=tmp_path / "build", sim=sim)
    assert r.n == 40 and r.bit_exact
    np.testing.assert_array_equal(r.logits, qmodel(x_q))
    assert r.latency == net.cycles
    assert np.all(np.diff(r.result_cycles) == net.interval)


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


def _spram_case():
    """Random three-layer MLP with 8-bit weights on 5 lanes: rows of 40 bits in 3 SPRAMs."""
    rng = np.random.default_rng(12)
    qmodel = dense_network([random_dense_layer(rng, 20, 12), random_dense_layer(rng, 12, 9),
                            random_dense_layer(rng, 9, 5, requant=False)])
    net = compile_network(qmodel, lanes=5, weights="spram")
    return qmodel, net, rng.integers(0, 256, (24, 20))


@pytest.mark.sim
@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_folded_network_with_weights_in_spram(sim, tmp_path):
    """Weights written at run time into the SPRAM model (sim/models), then every sample exact;
    the same latency as with the weights in block RAM."""
    require_simulator(sim)
    qmodel, net, x_q = _spram_case()
    assert net.weight_bytes == 2 * 3 * net.weight_depth
    verilog = tmp_path / "network.v"
    write_bytes_atomic(verilog, to_verilog(net, "network").encode())
    r = verify_network(verilog, qmodel, x_q, build_dir=tmp_path / "build", sim=sim,
                       weight_image=net.weight_image())
    assert r.n == len(x_q) and r.bit_exact
    np.testing.assert_array_equal(r.logits, qmodel(x_q))
    verilog_bram = tmp_path / "bram.v"
    bram = compile_network(qmodel, lanes=5)
    write_bytes_atomic(verilog_bram, to_verilog(bram, "network").encode())
    assert r.latency == verify_network(verilog_bram, qmodel, x_q[:2], build_dir=tmp_path / "b2",
                                       sim=sim).latency


@pytest.mark.sim
def test_spram_bench_catches_a_wrong_weight_image(tmp_path):
    """One byte of the image changed must make the bench fail (the weights are really read
    from what was loaded)."""
    from slimgen.sim.runner import default_simulator
    sim = default_simulator()
    require_simulator(sim)
    qmodel, net, x_q = _spram_case()
    image = bytearray(net.weight_image())
    image[7] ^= 0x10
    verilog = tmp_path / "network.v"
    write_bytes_atomic(verilog, to_verilog(net, "network").encode())
    with pytest.raises(BenchFailed, match=r"1 of 1 tests failed"):
        verify_network(verilog, qmodel, x_q, build_dir=tmp_path / "build", sim=sim,
                       weight_image=bytes(image), log_file=tmp_path / "sim.log")
