"""The compiler's fast tests: the layer programs against the golden model (pure Python),
the engine on Amaranth's simulator bit-exact with exactly the cycles the compiler counts,
planted bugs caught, and its refusals word for word."""

import re

import numpy as np
import pytest
from amaranth.hdl import Fragment

from slimgen.hw.compiler import compile_network
from slimgen.hw.engine import Engine
from slimgen.hw.program import (build_programs, execute, layer_mults, network_cycles,
                                wino_2d, wino_algorithm)
from slimgen.sim.fuzz import fuzz_case
from slimgen.sim.streams import unpack_fields
from slimgen.sim.testing import dense_network, random_dense_layer, random_recurrent_cell
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


def _simulate_paced(engine, int_net, x, *, idle, gap=0.0, stall=0.0, seed=0):
    """Samples back to back on Amaranth's simulator, the first input ``idle`` cycles after
    reset, an idle cycle before an input with probability ``gap``, the consumer not ready
    with probability ``stall`` → (logits, cycles from the first input transfer to the first
    result's, both counted)."""
    from amaranth.hdl import Value
    from amaranth.sim import Simulator
    nc, lb = int_net.n_classes, int_net.logit_bits
    cls_bits = max(1, (nc - 1).bit_length())
    rng = np.random.default_rng(seed)
    out, edges = [], {"in": None, "out": None}

    async def driver(ctx):
        if idle:
            await ctx.tick().repeat(idle)
        n = idle
        for v in x.ravel().tolist():
            if rng.random() < gap:
                ctx.set(engine.i.valid, 0)
                await ctx.tick()
                n += 1
            ctx.set(engine.i.payload, v)
            ctx.set(engine.i.valid, 1)
            while True:
                n += 1
                if (await ctx.tick().sample(engine.i.ready))[-1]:
                    break
            edges["in"] = edges["in"] or n
        ctx.set(engine.i.valid, 0)

    async def monitor(ctx):
        n = 0
        while len(out) < len(x):
            ready = int(rng.random() >= stall)
            ctx.set(engine.o.ready, ready)
            valid, payload = (await ctx.tick().sample(engine.o.valid,
                                                      Value.cast(engine.o.payload)))[-2:]
            n += 1
            assert n < 200_000
            if valid and ready:
                out.append(unpack_fields(payload, [cls_bits] + [lb] * nc,
                                         [False] + [True] * nc)[1:])
                edges["out"] = edges["out"] or n

    sim = Simulator(engine)
    sim.add_clock(1e-6)
    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    sim.run()
    return np.array(out), edges["out"] - edges["in"] + 1


@pytest.mark.parametrize("seed", [2, 5, 6])
def test_engine_waits_for_inputs_and_for_the_consumer(seed):
    """Inputs that start late and come with gaps (the walker holds a tap until its word is
    written, and a padding tap until the sample's first input), samples back to back, a
    consumer not always ready: bit-exact; a sample that starts late, its inputs one a cycle,
    takes exactly the counted cycles (cases 5 and 6 take fewer if the walker runs its
    padding taps before the first input)."""
    case = fuzz_case(seed, n=3)
    engine = compile_network(case.int_net, lanes=case.lanes)
    logits, _ = _simulate_paced(engine, case.int_net, case.x, idle=7, gap=0.3, stall=0.3,
                                seed=seed)
    np.testing.assert_array_equal(logits, case.int_net(case.x))
    engine = compile_network(case.int_net, lanes=case.lanes)
    logits, latency = _simulate_paced(engine, case.int_net, case.x[:1], idle=7)
    np.testing.assert_array_equal(logits, case.int_net(case.x[:1]))
    assert latency == engine.cycles


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


def test_groups_with_the_same_taps_share_one_tap_list():
    """A dense layer with nothing pruned apart keeps its n_in taps once for its G groups
    (its weights G·n_in rows); a group with pruned taps keeps its own list; bit-exact and
    the counted cycles on Amaranth's simulator."""
    rng = np.random.default_rng(5)
    first, second = random_dense_layer(rng, 12, 10), random_dense_layer(rng, 10, 6,
                                                                         requant=False)
    first.W[first.W == 0] = 1                          # every tap of every group
    second.W[:3, :4] = 0                               # the first group of 3 lanes prunes 4
    net = dense_network([first, second])
    engine = compile_network(net, lanes=3)
    t = engine.t
    assert t.shared == [True, False] and t.wptr
    assert len(t.taps) == 12 + (6 + 10) and len(t.weights[0]) == 4 * 12 + (6 + 10)
    x = rng.integers(0, 1 << net.input_bits, (3, net.n_inputs))
    logits, cycles = _simulate(engine, net, x)
    np.testing.assert_array_equal(logits, net(x))
    assert cycles == [engine.cycles] * len(x)


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
    cell = random_recurrent_cell(rng, 4, 6)
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
    with pytest.raises(ValueError, match=r"^Mutation must be one of pad_edge, shift, transform "
                                         r"or None, not 'x'$"):
        build_programs(fuzz_case(4).int_net, lanes=2, mutation="x")


# ------------------------------------------------------------------ Winograd/CRT layers

WINOS = {3: [wino_algorithm(2, 3), wino_algorithm(4, 3), wino_algorithm(4, 3, "crt")],
         5: [wino_algorithm(2, 5), wino_algorithm(2, 5, "crt"), wino_algorithm(4, 5)]}


def _conv1d_net(rng, *, r, density=None, weight_bits=None, act_bits=None, length=None):
    """Two 1-D convolutions of r taps ('same' or 'valid', then 'same'), a dense layer."""
    length = length or int(rng.integers(r, 20))
    net = check_network({"name": "wino", "layers": [
        {"type": "input", "shape": [length, int(rng.integers(1, 4))],
         "bits": int(rng.integers(2, 9))},
        {"type": "conv1d", "channels": int(rng.integers(1, 8)), "kernel": r,
         "padding": str(rng.choice(["same", "valid"]))}, {"type": "relu"},
        {"type": "conv1d", "channels": int(rng.integers(1, 8)), "kernel": r,
         "padding": "same", "bias": bool(rng.random() < 0.5)},
        {"type": "flatten"}, {"type": "dense", "units": 3}]})
    return random_int_network(rng, net, density=density, weight_bits=weight_bits,
                              act_bits=act_bits)


@pytest.mark.parametrize("seed", range(24))
def test_winograd_programs_equal_the_golden_model(seed):
    """Every algorithm (Toom-Cook and CRT, scales 1/2 to 1/360), edge tiles (lengths not a
    multiple of m), pruned filters, 2 to 8 bits, 1 to 7 lanes (several groups)."""
    rng = np.random.default_rng([18, seed])
    r = (3, 5)[seed % 2]
    int_net = _conv1d_net(rng, r=r, density=(None, 1.0, 0.3)[seed % 3])
    x = random_inputs(rng, int_net, 6)
    convs = [k for k, layer in enumerate(int_net.layers) if layer.kind == "conv"]
    for wino in WINOS[r]:
        lanes = int(rng.integers(1, 8))
        programs = build_programs(int_net, lanes=lanes, algorithms={k: wino for k in convs})
        assert [p.op for p in programs] == ["wino", "wino", "mac"]
        np.testing.assert_array_equal(execute(programs, x), int_net(x))


def test_winograd_edge_tiles_and_pruned_channels():
    rng = np.random.default_rng(5)
    int_net = _conv1d_net(rng, r=3, density=1.0, length=11)
    conv = int_net.layers[0]
    conv.W[:, 0] = 0                                    # input channel 0 pruned everywhere
    x = random_inputs(rng, int_net, 4)
    (p, *_) = build_programs(int_net, lanes=8, algorithms={0: wino_algorithm(4, 3, "crt")})
    assert p.positions[1] == -(-p.out_shape[1] // 4) and p.out_shape[1] % 4 != 0
    assert all(c != 0 for _, _, taps in p.groups for _, _, c in taps) or conv.c_in == 1
    np.testing.assert_array_equal(execute(build_programs(
        int_net, lanes=8, algorithms={0: wino_algorithm(4, 3, "crt")}), x), int_net(x))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_winograd_engine_bit_exact_with_the_counted_cycles(seed):
    """On Amaranth's simulator: two Winograd layers on different algorithms in one engine."""
    rng = np.random.default_rng([19, seed])
    r = (3, 5)[seed % 2]
    int_net = _conv1d_net(rng, r=r)
    convs = [k for k, layer in enumerate(int_net.layers) if layer.kind == "conv"]
    a, b = rng.choice(len(WINOS[r]), 2, replace=False)
    algorithms = {convs[0]: WINOS[r][a], convs[1]: WINOS[r][b]}
    _assert_engine_runs(int_net, build_programs(int_net, lanes=int(rng.integers(1, 6)),
                                                algorithms=algorithms), rng)


def _assert_engine_runs(int_net, programs, rng):
    """The programs' engine on Amaranth's simulator, two random samples: logits bit-exact,
    every sample's cycles :func:`network_cycles`."""
    engine = Engine(programs, n_inputs=int_net.n_inputs, input_bits=int_net.input_bits,
                    n_classes=int_net.n_classes, logit_bits=int_net.logit_bits)
    x = random_inputs(rng, int_net, 2)
    logits, cycles = _simulate(engine, int_net, x)
    np.testing.assert_array_equal(logits, int_net(x))
    assert cycles == [network_cycles(programs, int_net.n_inputs)] * len(x)


def _conv2d_net(rng, *, density=None):
    """Two 3×3 convolutions ('same' or 'valid', then 'same') on a small image, a dense layer."""
    net = check_network({"name": "wino2d", "layers": [
        {"type": "input", "shape": [int(rng.integers(3, 8)), int(rng.integers(3, 8)),
                                    int(rng.integers(1, 3))], "bits": int(rng.integers(2, 9))},
        {"type": "conv2d", "channels": int(rng.integers(1, 5)), "kernel": 3,
         "padding": str(rng.choice(["same", "valid"]))}, {"type": "relu"},
        {"type": "conv2d", "channels": int(rng.integers(1, 5)), "kernel": 3,
         "padding": "same", "bias": bool(rng.random() < 0.5)},
        {"type": "flatten"}, {"type": "dense", "units": 3}]})
    return random_int_network(rng, net, density=density)


WINOS_2D = [wino_2d(wino_algorithm(2, 3)), wino_2d(wino_algorithm(4, 3)),
            wino_2d(wino_algorithm(4, 3, "crt"))]


@pytest.mark.parametrize("seed", range(24))
def test_2d_winograd_programs_equal_the_golden_model(seed):
    """F(2×2, 3×3), F(4×4, 3×3) Toom-Cook and CRT (α = 7², 13 entries past the 6 × 6 tile):
    tiles past the bottom and right edges, pruned filters, 2 to 8 bits, several groups."""
    rng = np.random.default_rng([32, seed])
    int_net = _conv2d_net(rng, density=(None, 1.0, 0.3)[seed % 3])
    x = random_inputs(rng, int_net, 4)
    convs = [k for k, layer in enumerate(int_net.layers) if layer.kind == "conv"]
    for wino in WINOS_2D:
        programs = build_programs(int_net, lanes=int(rng.integers(1, 6)),
                                  algorithms={k: wino for k in convs})
        assert [p.op for p in programs] == ["wino", "wino", "mac"]
        np.testing.assert_array_equal(execute(programs, x), int_net(x))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_2d_winograd_engine_bit_exact_with_the_counted_cycles(seed):
    """On Amaranth's simulator: F(2×2, 3×3) on the first or on both convolutions, tiles past
    the bottom and right edges, one to four lanes."""
    rng = np.random.default_rng([31, seed])
    int_net = _conv2d_net(rng, density=(None, 1.0, 0.3)[seed % 3])
    convs = [k for k, layer in enumerate(int_net.layers) if layer.kind == "conv"]
    algorithms = {k: WINOS_2D[0] for k in convs[:1 + seed % 2]}
    _assert_engine_runs(int_net, build_programs(int_net, lanes=int(rng.integers(1, 5)),
                                                algorithms=algorithms), rng)


@pytest.mark.parametrize("seed, wino", [(0, 0), (1, 0), (2, 2)])
def test_2d_winograd_beside_pools_and_strided_layers(seed, wino):
    """On Amaranth's simulator: a 2-D Winograd layer in a design whose other layers walk
    several rows of their own (a max-pool, a direct convolution of stride 2 after it), so
    the next row of positions, the column check and the y step serve every kind of layer;
    and F(4×4, 3×3) CRT (49 points: the entries past its 6 × 6 tile counted through)."""
    rng = np.random.default_rng([33, seed])
    net = check_network({"name": "mixed", "layers": [
        {"type": "input", "shape": [7, 6, 2], "bits": 5},
        {"type": "conv2d", "channels": 3, "kernel": 3, "padding": "same"}, {"type": "relu"},
        {"type": "maxpool", "size": 2, "stride": 1}, {"type": "relu"},
        {"type": "conv2d", "channels": 2, "kernel": 3, "stride": 2, "padding": "same"},
        {"type": "flatten"}, {"type": "dense", "units": 3}]})
    int_net = random_int_network(rng, net, density=1.0)
    programs = build_programs(int_net, lanes=1 + seed, algorithms={0: WINOS_2D[wino]})
    assert [p.op for p in programs] == ["wino", "max", "mac", "mac"]
    m = WINOS_2D[wino].m
    assert programs[2].stride == 2 and programs[0].positions == (-(-7 // m), -(-6 // m))
    _assert_engine_runs(int_net, programs, rng)


def test_a_wrong_transform_constant_changes_the_outputs():
    wrong = 0
    for seed in range(10):
        rng = np.random.default_rng([18, seed])
        int_net = _conv1d_net(rng, r=3, density=1.0)
        x = random_inputs(rng, int_net, 6)
        programs = build_programs(int_net, lanes=4, algorithms={0: wino_algorithm(2, 3)},
                                  mutation="transform")
        wrong += not np.array_equal(execute(programs, x), int_net(x))
    assert wrong >= 8


def test_the_cost_model_takes_winograd_where_it_pays():
    """A dense 1-D convolution of 8 channels in, 4 out on 4 lanes: F(4, 3) nearly halves the
    cycles (α = 6 products per 4 outputs, the CRT form needs 7); the same layer 90 % pruned
    stays direct (direct skips every zero tap, Winograd whole channels only); stride 2 stays
    direct and says why; a 2-D 3×3 convolution takes F(2×2, 3×3) (F(4×4, 3×3): 36 running
    sums per lane, rejected) and a 5×5 one stays direct."""
    rng = np.random.default_rng(0)
    net = check_network({"name": "c", "layers": [
        {"type": "input", "shape": [32, 8], "bits": 4},
        {"type": "conv1d", "channels": 4, "kernel": 3, "padding": "same"}, {"type": "relu"},
        {"type": "conv1d", "channels": 4, "kernel": 3, "stride": 2}, {"type": "relu"},
        {"type": "flatten"}, {"type": "dense", "units": 3}]})
    int_net = random_int_network(rng, net, density=1.0, weight_bits=4, act_bits=4)
    engine = compile_network(int_net, lanes=4)
    first, second, dense = engine.summary
    assert first["algorithm"] == "F(4, 3) Toom-Cook"
    assert first["engine"] == "winograd F(4, 3) Toom-Cook, shared array"
    names = [c["algorithm"] for c in first["candidates"]]
    assert names == ["direct", "F(2, 3) Toom-Cook", "F(4, 3) Toom-Cook", "F(4, 3) CRT"]
    cycles = {c["algorithm"]: c["cycles"] for c in first["candidates"]}
    best = cycles["F(4, 3) Toom-Cook"]
    assert first["cycles"] == best == min(cycles.values()) < 0.6 * cycles["direct"]
    assert first["why"].startswith(f"F(4, 3) Toom-Cook: {best} cycles against "
                                   f"{cycles['direct']} direct")
    assert second["algorithm"] == "direct" and second["candidates"] == []
    assert second["why"] == "direct: stride 2: Winograd needs stride 1"
    assert dense["why"] == "direct: dense layer: no sliding window"
    assert engine.cycles == network_cycles(engine.programs, int_net.n_inputs)
    assert compile_network(int_net, lanes=4, winograd=False).cycles > engine.cycles + 200

    sparse = random_int_network(rng, net, density=0.1, weight_bits=4, act_bits=4)
    first = compile_network(sparse, lanes=4).summary[0]
    assert first["algorithm"] == "direct"
    assert all(c["rejected"] for c in first["candidates"][1:])
    assert first["why"].startswith("direct: ")

    def image(kernel):
        """The first layer's summary of a kernel × kernel convolution on an 8×8 image."""
        net = check_network({"name": "i", "layers": [
            {"type": "input", "shape": [8, 8, 2]},
            {"type": "conv2d", "channels": 3, "kernel": kernel},
            {"type": "flatten"}, {"type": "dense", "units": 3}]})
        return compile_network(random_int_network(rng, net), lanes=2).summary[0]
    first = image(3)
    assert first["algorithm"] == "F(2×2, 3×3) Toom-Cook"
    assert first["why"].startswith("F(2×2, 3×3) Toom-Cook: 1041 cycles against 2304 direct")
    assert "16 accumulators of" in first["why"]
    rejected = {c["algorithm"]: c["rejected"] for c in first["candidates"][1:]}
    assert rejected["F(4×4, 3×3) Toom-Cook"].startswith("36 running sums per lane (at most 16")
    first = image(5)
    assert first["algorithm"] == "direct"
    rejected = {c["algorithm"]: c["rejected"] for c in first["candidates"][1:]}
    assert list(rejected) == ["F(2×2, 5×5) Toom-Cook", "F(4×4, 5×5) Toom-Cook",
                              "F(2×2, 5×5) CRT", "F(4×4, 5×5) CRT"]
    assert rejected["F(2×2, 5×5) Toom-Cook"].startswith("36 running sums per lane")
    assert rejected["F(2×2, 5×5) CRT"].startswith("49 running sums per lane")
    assert rejected["F(4×4, 5×5) Toom-Cook"].startswith("V = BT d needs 20 signed bits")
    assert rejected["F(4×4, 5×5) CRT"].startswith("U = G g needs ")


def test_the_cost_model_rejects_operands_wider_than_the_multiplier():
    """16-bit activations (after a ReLU: 17 signed bits) into a 3-tap convolution: F(4, 3)
    Toom-Cook's V = BT d grows by 3 bits (a row 4, 0, −5, 0, 1), F(2, 3)'s by 1."""
    rng = np.random.default_rng(1)
    net = check_network({"name": "w", "layers": [
        {"type": "input", "shape": [24, 4], "bits": 8},
        {"type": "conv1d", "channels": 4, "kernel": 1}, {"type": "relu"},
        {"type": "conv1d", "channels": 4, "kernel": 3, "padding": "same"},
        {"type": "flatten"}, {"type": "dense", "units": 3}]})
    int_net = random_int_network(rng, net, density=1.0, weight_bits=2, act_bits=16)
    (_, second, _) = compile_network(int_net, lanes=4).summary
    rejected = {c["algorithm"]: c["rejected"] for c in second["candidates"][1:]}
    assert rejected["F(4, 3) Toom-Cook"] == ("V = BT d needs 20 signed bits; the multipliers "
                                             "take at most 18")
    assert not (rejected["F(2, 3) Toom-Cook"] or "").startswith("V = BT d")


def test_a_forced_algorithm_per_layer():
    """``force`` puts each layer on the algorithm a plan chose (bit-exact programs, the plan's
    own why); ``options`` lists direct and the candidates that are not rejected; an algorithm
    that is not a layer's candidate is refused by name."""
    from slimgen.hw.compiler import choose, options
    rng = np.random.default_rng(3)
    int_net = _conv1d_net(rng, r=3, density=1.0, weight_bits=4, act_bits=4, length=16)
    per_layer = options(choose(int_net, lanes=3)[1])
    a, b = [k for k, layer in enumerate(int_net.layers) if layer.kind == "conv"]
    assert set(per_layer) == {a, b}
    for opts in per_layer.values():
        assert opts[0][0] == "direct" and len(opts) > 1
        assert all(n.startswith("F(") and c > 0 for n, c in opts[1:])
    name = per_layer[b][1][0]
    engine = compile_network(int_net, lanes=3, force={a: ("direct", "plan: direct"),
                                                      b: (name, "plan: winograd")})
    first, second, _ = engine.summary
    assert (first["algorithm"], first["why"]) == ("direct", "plan: direct")
    assert (second["algorithm"], second["why"]) == (name, "plan: winograd")
    assert second["cycles"] == dict(per_layer[b])[name]
    x = random_inputs(rng, int_net, 4)
    np.testing.assert_array_equal(execute(engine.programs, x), int_net(x))
    names = ", ".join(["direct"] + [n for n, _ in per_layer[a][1:]])
    with pytest.raises(ValueError, match=rf"^Layer {a} \(conv{a}\) cannot run on F\(4, 5\) "
                                         rf"Toom-Cook: its candidates are {re.escape(names)}$"):
        compile_network(int_net, lanes=3, force={a: ("F(4, 5) Toom-Cook", "")})
    dense = len(int_net.layers) - 1
    with pytest.raises(ValueError, match=rf"^Layer {dense} \(dense{dense}\) runs direct only: "
                                         r"dense layer: no sliding window$"):
        compile_network(int_net, lanes=3, force={dense: ("F(2, 3) Toom-Cook", "")})
    with pytest.raises(ValueError, match=r"^No weighted layer at record 99 to force an "
                                         r"algorithm on$"):
        compile_network(int_net, lanes=3, force={99: ("direct", "")})
    # a layer forced onto the cost model's own choice keeps its reason
    own = compile_network(int_net, lanes=3)
    same = compile_network(int_net, lanes=3, force={
        k: (e["algorithm"], None) for k, e in zip((a, b), own.summary)})
    assert [e["why"] for e in same.summary] == [e["why"] for e in own.summary]


# ------------------------------------------------------------------ a max pool in the drain

def _pooled_net(rng, *, dims, m):
    """A convolution of 3 taps ('same' or 'valid') whose max pool of m (stride m) runs in its
    Winograd drain, a ReLU before or after the pool, then a convolution and a dense layer."""
    size = [int(rng.integers(m + 2, 11))] * dims
    conv = "conv2d" if dims == 2 else "conv1d"
    relu_first = bool(rng.random() < 0.5)
    layers = [{"type": "input", "shape": [*size, int(rng.integers(1, 3))],
               "bits": int(rng.integers(2, 9))},
              {"type": conv, "channels": int(rng.integers(1, 5)), "kernel": 3,
               "padding": str(rng.choice(["same", "valid"]))}] \
        + [{"type": "relu"}] * relu_first + [{"type": "maxpool", "size": m}] \
        + [{"type": "relu"}] * (not relu_first) \
        + [{"type": conv, "channels": 2, "kernel": 1}, {"type": "flatten"},
           {"type": "dense", "units": 3}]
    return random_int_network(rng, check_network({"name": "pooled", "layers": layers}),
                              density=(None, 1.0, 0.4)[int(rng.integers(3))])


@pytest.mark.parametrize("seed", range(24))
def test_a_max_pool_in_the_winograd_drain_equals_the_golden_model(seed):
    """A max pool whose window is a Winograd layer's tile (F(2, 3), F(4, 3), F(2×2, 3×3),
    F(4×4, 3×3)) runs in its drain: no program of its own, the pooled shape, odd edges
    (tiles the pool drops are not run), bit-exact."""
    rng = np.random.default_rng([34, seed])
    dims, m = (1, 2), (2, 4)
    dims, m = dims[seed % 2], m[(seed // 2) % 2]
    int_net = _pooled_net(rng, dims=dims, m=m)
    wino = wino_algorithm(m, 3)
    programs = build_programs(int_net, lanes=int(rng.integers(1, 5)),
                              algorithms={0: wino_2d(wino) if dims == 2 else wino})
    assert [p.op for p in programs] == ["wino", "mac", "mac"] and programs[0].pooled
    OH, OW, _ = build_programs(int_net, lanes=1)[0].out_shape       # the direct conv's
    assert programs[0].positions == (OH // m if dims == 2 else 1, OW // m)
    x = random_inputs(rng, int_net, 4)
    np.testing.assert_array_equal(execute(programs, x), int_net(x))


@pytest.mark.parametrize("seed, dims, m", [(0, 2, 2), (1, 1, 2), (2, 2, 4), (3, 1, 4),
                                           (4, 2, 2)])
def test_a_max_pool_in_the_winograd_drain_on_the_engine(seed, dims, m):
    """On Amaranth's simulator: the running max in the drain, the pooled words in address
    order (the next layer reads them as they come, no wait for the layer's end),
    bit-exact with exactly the counted cycles."""
    rng = np.random.default_rng([35, seed])
    int_net = _pooled_net(rng, dims=dims, m=m)
    wino = wino_algorithm(m, 3)
    programs = build_programs(int_net, lanes=int(rng.integers(1, 5)),
                              algorithms={0: wino_2d(wino) if dims == 2 else wino})
    assert programs[0].pooled
    _assert_engine_runs(int_net, programs, rng)


def test_the_cost_model_puts_a_max_pool_in_the_drain():
    """The digits CNN's shape: the second convolution takes F(2×2, 3×3), whose tile is the
    2 × 2 pool's window, and says so; the pool costs no cycle and is listed as in the
    drain; the latency drops by the pool's cycles at least."""
    rng = np.random.default_rng(36)
    net = check_network({"name": "cnn", "layers": [
        {"type": "input", "shape": [8, 8, 1], "bits": 5},
        {"type": "conv2d", "channels": 4, "kernel": 3, "padding": "same"}, {"type": "relu"},
        {"type": "conv2d", "channels": 8, "kernel": 3, "padding": "same"}, {"type": "relu"},
        {"type": "maxpool", "size": 2}, {"type": "flatten"}, {"type": "dense", "units": 10}]})
    int_net = random_int_network(rng, net)
    engine = compile_network(int_net, lanes=4)
    entries = {e["name"]: e for e in engine.summary}
    assert [p.op for p in engine.programs] == ["wino", "wino", "mac"]
    assert entries["conv1"]["algorithm"] == "F(2×2, 3×3) Toom-Cook"
    assert "+ 512 for the max pool after it" in entries["conv1"]["why"]
    assert entries["conv1"]["why"].endswith("the max pool in its drain")
    pool = entries["maxpool2"]
    assert pool["engine"] == "max pool in conv1's drain, shared array" and pool["cycles"] == 0
    assert entries["conv1"]["outputs"] == 8 * 8 * 8 and pool["outputs"] == 4 * 4 * 8
    unfused = build_programs(int_net, lanes=4, algorithms={0: engine.programs[0].wino})
    assert [p.op for p in unfused] == ["wino", "mac", "max", "mac"]
    assert network_cycles(unfused, int_net.n_inputs) - engine.cycles > 512 - 1
