"""The compiler's fast tests: the layer programs against the golden model (pure Python),
the engine on Amaranth's simulator bit-exact with exactly the cycles the compiler counts,
planted bugs caught, and its refusals word for word."""

import numpy as np
import pytest
from amaranth.hdl import Fragment

from slimgen.hw.compiler import compile_network
from slimgen.hw.program import build_programs, execute, layer_mults
from slimgen.sim.fuzz import fuzz_case
from slimgen.sim.streams import unpack_fields
from slimgen.sim.testing import dense_network, random_dense_layer, random_lstm_cell
from slimgen.sw.integer_model import IntNetwork
from slimgen.sw.network import check_network
from slimgen.sw.random_network import random_description, random_inputs, random_int_network

from hw_sim import run_stream

FEED_FORWARD = {"conv1d", "conv2d", "maxpool", "avgpool", "global_avgpool", "flatten", "dense",
                "relu", "batchnorm", "dropout"}


@pytest.mark.parametrize("seed", range(40))
def test_programs_equal_the_golden_model(seed):
    rng = np.random.default_rng(seed)
    int_net = random_int_network(rng, random_description(rng, kinds=FEED_FORWARD), density=None)
    x = random_inputs(rng, int_net, 6)
    programs = build_programs(int_net, lanes=int(rng.integers(1, 7)))
    np.testing.assert_array_equal(execute(programs, x), int_net(x))


@pytest.mark.parametrize("seed", range(24))
def test_fuzz_cases_programs_equal_the_golden_model(seed):
    case = fuzz_case(seed)
    programs = build_programs(case.int_net, lanes=case.lanes)
    np.testing.assert_array_equal(execute(programs, case.x), case.int_net(case.x))


@pytest.mark.parametrize("mutation, at_least", [("pad_edge", 4), ("shift", 8)])
def test_planted_bugs_change_the_outputs(mutation, at_least):
    """Of the first 10 fuzz cases, how many a bug changes (as measured: the padding edge
    matters only where an edge row or column reaches an output)."""
    wrong = 0
    for seed in range(10):
        case = fuzz_case(seed)
        out = execute(build_programs(case.int_net, lanes=case.lanes, mutation=mutation), case.x)
        wrong += not np.array_equal(out, case.int_net(case.x))
    assert wrong >= at_least


def _simulate(engine, int_net, x):
    nc, lb = int_net.n_classes, int_net.logit_bits
    cls_bits = max(1, (nc - 1).bit_length())
    logits, cycles = [], []
    for row in x:
        out, n = run_stream(engine, row.tolist(), 1, raw=True)
        fields = unpack_fields(out[0], [cls_bits] + [lb] * nc, [False] + [True] * nc)
        logits.append(fields[1:])
        cycles.append(n)
    return np.array(logits), cycles


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 6, 11])
def test_engine_bit_exact_with_the_counted_cycles(seed):
    """On Amaranth's simulator: every family, kernels up to 7, stride 2, asymmetric padding,
    per-channel multipliers, a ReLU on the logits (seeds as in :mod:`slimgen.sim.fuzz`)."""
    case = fuzz_case(seed, n=2)
    engine = compile_network(case.int_net, lanes=case.lanes)
    logits, cycles = _simulate(engine, case.int_net, case.x)
    np.testing.assert_array_equal(logits, case.int_net(case.x))
    assert cycles == [engine.cycles] * len(case.x)


def test_summary_and_bound():
    case = fuzz_case(2)
    engine = compile_network(case.int_net, lanes=case.lanes)
    assert [e["algorithm"] for e in engine.summary] == ["direct", "max", "direct", "avg",
                                                        "direct", "direct"]
    for e in engine.summary:
        assert e["bound"] == -(-e["mults_per_inference"] // case.lanes) <= e["cycles"]
    assert engine.bound == -(-engine.mults // case.lanes)
    assert engine.cycles > sum(e["cycles"] for e in engine.summary)     # load and send too
    Fragment.get(engine, None)                          # it elaborates (and is used)


def test_pruned_filters_cost_no_cycles():
    rng = np.random.default_rng(3)
    layer = random_dense_layer(rng, 12, 8)
    W = layer.W.copy()
    W[:4] = 0                                           # the first group of 4 lanes pruned
    W[4:, 6:] = 0                                       # and half the inputs of the other
    pruned = random_dense_layer(rng, 12, 8, requant=False)
    net = dense_network([type(layer)(W, layer.b, requant=False, relu=False,
                                     out_bits=pruned.acc_bits)])
    (p,) = build_programs(net, lanes=4)
    assert [len(taps) for _, _, taps in p.groups] == [1, 6]     # a bias-only group keeps 1
    assert layer_mults(p) == int(np.count_nonzero(W))


def test_multiplications_skip_the_padding():
    case = fuzz_case(6)                     # a 7-tap 'same' conv1d on 1 channel first
    p = build_programs(case.int_net, lanes=case.lanes)[0]
    conv = case.int_net.layers[0]
    full = sum(len(taps) for _, _, taps in p.groups) * p.out_shape[1]
    assert layer_mults(p) < full * p.lanes and layer_mults(p) > 0


def test_recurrent_layers_are_refused():
    rng = np.random.default_rng(0)
    cell = random_lstm_cell(rng, 4, 6)
    net = check_network({"layers": [{"type": "input", "shape": [5, 4]},
                                    {"type": "lstm", "hidden": 6},
                                    {"type": "dense", "units": 3}]})
    dense = random_dense_layer(rng, 6, 3, requant=False)
    int_net = IntNetwork(net, [cell, dense], 1.0, 8)
    with pytest.raises(ValueError, match=r"^Layer 0 is a recurrent lstm cell; the compiler takes "
                                         r"feed-forward layers only \(convolution, dense, pool, "
                                         r"flatten, relu\)$"):
        compile_network(int_net, lanes=4)


def test_operands_wider_than_the_multiplier_are_refused():
    rng = np.random.default_rng(0)
    net = dense_network([random_dense_layer(rng, 6, 5, out_bits=20),
                         random_dense_layer(rng, 5, 3, in_bits=20, requant=False)])
    with pytest.raises(ValueError, match=r"^Activations need 21 signed bits \(layer 0, dense0\); "
                                         r"the multipliers take at most 18$"):
        compile_network(net, lanes=2)


@pytest.mark.parametrize("lanes, message", [
    (0, "Lanes must be a positive integer, not 0"),
    (True, "Lanes must be a positive integer, not True"),
])
def test_bad_lanes(lanes, message):
    case = fuzz_case(4)
    with pytest.raises(ValueError, match=f"^{message}$"):
        compile_network(case.int_net, lanes=lanes)


def test_bad_mutation():
    with pytest.raises(ValueError, match=r"^Mutation must be one of pad_edge, shift or None, "
                                         r"not 'x'$"):
        build_programs(fuzz_case(4).int_net, lanes=2, mutation="x")
