"""The integer golden model (slimgen.sw.golden) against an independent reference on random
networks (slimgen.sw.random_network).

The reference below evaluates the same integer arithmetic the slow way: loops over output
positions and kernel taps (padding worked out from the description, not from the record),
window loops for pools, per-step per-unit loops for the recurrent cells with tables computed
here, and rounding written as floor(v / 2^s + 1/2) (float64 while that is exact, fractions
beyond). Every value is also checked against its declared width.
"""

import itertools
import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from slimgen.sw import golden
from slimgen.sw.fixed import multiplier_shift
from slimgen.sw.integer_model import act_range
from slimgen.sw.network import LAYER_FIELDS, RECURRENT_FORMAT
from slimgen.sw.random_network import random_description, random_inputs, random_int_network

FAST_SEEDS = range(60)
SLOW_SEEDS = range(60, 600)
N_SAMPLES = 5
DEFAULT_FORMAT = {name: v[0] for name, v in RECURRENT_FORMAT.items()}
EXACT = 2.0 ** 52          # float64 holds every integer below; v / 2^s + 1/2 stays exact


# ------------------------------------------------------------------ the reference

def sigmoid(z):
    """1 / (1 + e^−z), without overflow."""
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


class Reference:
    """Evaluates an IntNetwork's records with plain loops; ``mutation`` plants one mistake
    (to show the comparison can fail). Collects the values the width checks need."""

    def __init__(self, mutation=None):
        self.mutation = mutation
        self.violations = []          # (record index, what) of values outside their width
        self.seen = Counter()         # coverage of outputs and table indices

    # rounding and saturation -----------------------------------------------------------
    def round_shift(self, v, s):
        """floor(v / 2^s + 1/2) of integers v: a Python int, or an array of exact float64
        (or Python ints); float64 while that is exact, fractions beyond."""
        down = self.mutation == "round_half_down"
        if np.ndim(v) == 0:
            v = int(v)
            if abs(v) < EXACT:
                q = v / 2.0 ** s
                return int(math.ceil(q - 0.5) if down else math.floor(q + 0.5))
            q = Fraction(v, 1 << s)
            return -math.floor(Fraction(1, 2) - q) if down else math.floor(q + Fraction(1, 2))
        v = np.asarray(v)
        if v.dtype != object and np.abs(v).max(initial=0) < EXACT:
            q = v / 2.0 ** s
            return np.ceil(q - 0.5) if down else np.floor(q + 0.5)
        return np.array([self.round_shift(a, s) for a in v.reshape(-1)],
                        dtype=object).reshape(v.shape)

    def clip(self, v, lo, hi):
        if self.mutation == "no_saturation":
            return v
        return np.minimum(np.maximum(v, lo), hi)

    def requant(self, acc, M, s, bits, signed):
        """clip(floor(acc · M / 2^s + 1/2)) with M one number or one per last-axis channel."""
        M = np.asarray(M)
        if np.abs(acc).max(initial=0) * int(M.max()) < EXACT:
            prod = acc * M.astype(np.float64)
        else:
            prod = acc.astype(np.int64).astype(object) * M.astype(object)
        y = self.round_shift(prod, s)
        return np.asarray(self.clip(y, *act_range(bits, signed)), dtype=np.float64)

    def check(self, j, what, v, lo, hi):
        v = np.asarray(v, dtype=np.float64)
        if v.size and (v.min() < lo or v.max() > hi):
            self.violations.append((j, what, float(v.min()), float(v.max()), lo, hi))

    def cover(self, key, y, lo, hi):
        y = np.asarray(y)
        self.seen[key + "_low"] += int((y == lo).sum())
        self.seen[key + "_high"] += int((y == hi).sum())
        self.seen[key + "_middle"] += int(((y > lo) & (y < hi)).sum())

    # layers ----------------------------------------------------------------------------
    def padding(self, size, k, stride, padding):
        """(before, after): TensorFlow's "same" (ceil(size / stride) outputs, the odd zero
        after), "valid" or p on both sides."""
        if padding == "valid":
            return 0, 0
        if padding != "same":
            return padding, padding
        out = (size + stride - 1) // stride
        total = max(0, (out - 1) * stride + k - size)
        before = total // 2
        if self.mutation == "pad_split":
            before = total - total // 2
        return before, total - before

    def weighted(self, j, rec, x, desc, shape_in):
        """A dense or convolution record: acc = b + Σ W x (zero padding), requantized."""
        n = len(x)
        acc_lo, acc_hi = act_range(rec.acc_bits, True)
        if rec.kind == "dense":
            acc = np.empty((n, rec.n_out))
            for o in range(rec.n_out):
                acc[:, o] = rec.b[o] + x @ rec.W[o].astype(np.float64)
        else:
            k, stride = desc["kernel"], desc["stride"]
            if self.mutation == "conv_stride_1":
                stride = 1
            spatial = shape_in[:-1]
            pads = [self.padding(size, k, stride, desc["padding"]) for size in spatial]
            out = [(size + a + b - k) // stride + 1 for size, (a, b) in zip(spatial, pads)]
            acc = np.empty((n, *out, rec.c_out))
            for pos in itertools.product(*map(range, out)):
                a = np.broadcast_to(rec.b.astype(np.float64), (n, rec.c_out)).copy()
                for tap in itertools.product(range(k), repeat=len(spatial)):
                    src = [p * stride + t - before
                           for p, t, (before, _) in zip(pos, tap, pads)]
                    if all(0 <= s < size for s, size in zip(src, spatial)):
                        a += x[(slice(None), *src)] @ \
                            rec.W[(slice(None), slice(None), *tap)].T.astype(np.float64)
                    self.check(j, "partial sum", a, acc_lo, acc_hi)
                acc[(slice(None), *pos)] = a
        self.check(j, "accumulator", acc, acc_lo, acc_hi)
        if not rec.requant:
            return acc
        y = self.requant(acc, rec.multiplier, rec.shift, rec.out_bits, rec.out_signed)
        self.cover("relu" if rec.relu else "signed", y, *act_range(rec.out_bits,
                                                                   rec.out_signed))
        return y

    def pool(self, j, rec, x, desc):
        n, *spatial, c = x.shape
        if rec.global_:
            windows = [(slice(None), *pos) for pos in itertools.product(*map(range, spatial))]
            out_positions = [()]
            count = math.prod(spatial)
        else:
            size = desc["size"]
            stride = size if self.mutation == "pool_stride_size" else desc["stride"]
            out = [(d - size) // stride + 1 for d in spatial]
            out_positions = list(itertools.product(*map(range, out)))
            count = size ** len(spatial)
        y = np.empty((n, *(out if not rec.global_ else ()), c))
        for pos in out_positions:
            if not rec.global_:
                windows = [(slice(None), *(p * stride + t for p, t in zip(pos, tap)))
                           for tap in itertools.product(range(size), repeat=len(spatial))]
            values = np.stack([x[w] for w in windows])                     # (window, n, c)
            if rec.op == "max":
                y[(slice(None), *pos)] = values.max(axis=0)
            else:
                y[(slice(None), *pos)] = self.requant(values.sum(axis=0), rec.multiplier,
                                                      rec.shift, rec.bits, rec.signed)
        return y

    def flatten(self, x):
        """Channels-last raster order, channel fastest."""
        n, *spatial, c = x.shape
        y = np.empty((n, math.prod(spatial) * c))
        for pos in itertools.product(*map(range, spatial)):
            flat = 0
            for p, size in zip(pos, spatial):
                flat = flat * size + p
            for ch in range(c):
                y[:, flat * c + ch] = x[(slice(None), *pos, ch)]
        return y

    def recurrent(self, j, rec, x):
        """Per sample, step and unit, the cell of slimgen.sw.golden's docstring."""
        fmt = rec.fmt
        A, F = fmt.table_bits, fmt.gate_frac
        half = 1 << (A - 1)
        S = {u: math.floor(sigmoid(u * 2.0 ** -fmt.sigmoid_frac) * 2 ** F + 0.5)
             for u in range(-half, half)}
        T = {u: math.floor(math.tanh(u * 2.0 ** -fmt.tanh_frac) * 2 ** F + 0.5)
             for u in range(-half, half)}
        h_lo, h_hi = act_range(fmt.h_bits, True)
        c_lo, c_hi = act_range(fmt.c_bits, True)
        W = {g: rec.W[g].tolist() for g in rec.gates}
        b = {g: rec.b[g].tolist() for g in rec.b}
        n, steps, n_in = x.shape
        H = rec.n_hidden
        rnd, clip = self.round_shift, lambda v, lo, hi: min(max(v, lo), hi)
        if self.mutation == "no_saturation":
            clip = lambda v, lo, hi: v                                     # noqa: E731

        acc_lo, acc_hi = act_range(rec.acc_bits, True)

        def index(z, g):
            if not acc_lo <= z <= acc_hi:
                self.violations.append((j, f"gate {g} accumulator", z, acc_lo, acc_hi))
            u = clip(rnd(z * rec.multiplier[g], rec.shift[g]), -half, half - 1)
            self.seen["index_low" if u == -half else "index_high" if u == half - 1
                      else "index_middle"] += 1
            return u

        def dot(g, row, v, lo=0, hi=None):
            return sum(w * a for w, a in zip(W[g][row][lo:hi], v[lo:hi]))

        out = np.empty((n, steps, H))
        for s in range(n):
            h, c = [0] * H, [0] * H
            for t in range(steps):
                v = [int(a) for a in x[s, t]] + h
                h_new, c_new = [], []
                for u in range(H):
                    if rec.cell == "lstm":
                        i, f, o = (S[index(b[g][u] + dot(g, u, v), g)] for g in "ifo")
                        g_ = T[index(b["c"][u] + dot("c", u, v), "c")]
                        cu = clip(rnd(f * c[u] + i * g_, F), c_lo, c_hi)
                        k = F - fmt.tanh_frac
                        uc = clip(rnd(cu, k) if k else cu, -half, half - 1)
                        hu = clip(rnd(o * T[uc], 2 * F - fmt.h_frac), h_lo, h_hi)
                        c_new.append(cu)
                    else:
                        r, z = (S[index(b[g][u] + dot(g, u, v), g)] for g in "rz")
                        ax = b["n"][u] + dot("n", u, v, 0, n_in)
                        ah = b["hn"][u] + dot("n", u, v, n_in)
                        nu = T[index(ax * 2 ** F + r * ah, "n")]
                        hu = clip(rnd(((1 << F) - z) * nu + z * h[u] * 2 ** (F - fmt.h_frac),
                                      2 * F - fmt.h_frac), h_lo, h_hi)
                    h_new.append(hu)
                h, c = h_new, c_new
                self.check(j, "h", h, h_lo, h_hi)
                if rec.cell == "lstm":
                    self.check(j, "c", c, c_lo, c_hi)
                out[s, t] = h
        return out if rec.sequences else out[:, -1]

    def forward(self, int_net, x):
        """Every record's output (float64 arrays of integers), checking widths on the way."""
        net = int_net.network
        a = np.asarray(x, dtype=np.float64).reshape(len(x), *net.input_shape)
        lo, hi = 0, (1 << net.input_bits) - 1
        outputs = []
        for j, rec in enumerate(int_net.layers):
            desc = net.layers[rec.source]
            shape_in = net.shapes[rec.source - 1]
            if rec.kind in ("dense", "conv", "recurrent"):
                self.check(j, "input", a, *act_range(rec.in_bits, rec.in_signed))
            if rec.kind in ("dense", "conv"):
                a = self.weighted(j, rec, a, desc, shape_in)
                self.check(j, "output", a, *act_range(rec.out_width, rec.out_signed))
            elif rec.kind == "pool":
                self.check(j, "input", a, *act_range(rec.bits, rec.signed))
                a = self.pool(j, rec, a, desc)
                self.check(j, "output", a, *act_range(rec.bits, rec.signed))
            elif rec.kind == "recurrent":
                a = self.recurrent(j, rec, a)
            elif rec.kind == "relu":
                self.check(j, "input", a, *act_range(rec.bits, True))
                a = np.maximum(a, 0)
                self.check(j, "output", a, *act_range(rec.bits, False))
            elif rec.kind == "flatten":
                a = self.flatten(a)
            else:
                raise AssertionError(f"no reference for {rec.kind}")
            outputs.append(a)
        return outputs


# ------------------------------------------------------------------ cases

def make_case(seed, wide=False):
    """A random description, integer model and inputs; the options vary with the seed
    (``wide``: 16-bit weights and activations)."""
    rng = np.random.default_rng(seed)
    net = random_description(rng)
    density = (None, 1.0, 0.5, None)[seed % 4]
    weight_bits = 16 if wide else None if seed % 3 else int(rng.integers(2, 9))
    act_bits = 16 if wide else None if seed % 5 else int(rng.integers(2, 9))
    int_net = random_int_network(rng, net, density=density, weight_bits=weight_bits,
                                 act_bits=act_bits)
    return net, int_net, random_inputs(rng, int_net, N_SAMPLES)


_CASES = {}


def case(seed):
    if seed not in _CASES:
        _CASES[seed] = make_case(seed)
    return _CASES[seed]


def compare(seed, reference=None):
    """Reference outputs and golden trace of one seed: (reference, outputs, trace, logits)."""
    net, int_net, x = case(seed)
    reference = reference or Reference()
    outputs = reference.forward(int_net, x)
    return reference, outputs, golden.forward(int_net, x, trace=True), golden.forward(int_net, x)


def check_seed(seed, wide=False):
    net, int_net, x = make_case(seed, wide) if wide else case(seed)
    ref = Reference()
    outputs = ref.forward(int_net, x)
    trace, logits = golden.forward(int_net, x, trace=True), golden.forward(int_net, x)
    assert ref.violations == [], f"seed {seed}: values outside their width: {ref.violations}"
    assert len(trace) == len(int_net.layers)
    for j, (rec, want, got) in enumerate(zip(int_net.layers, outputs, trace)):
        assert got.dtype == np.int64
        assert got.shape == (len(x), *net.shapes[rec.source]), (seed, j, rec.kind)
        np.testing.assert_array_equal(got, want.astype(np.int64),
                                      err_msg=f"seed {seed}, record {j} ({rec.kind})")
    np.testing.assert_array_equal(logits, outputs[-1].reshape(len(x), -1).astype(np.int64))
    np.testing.assert_array_equal(int_net.trace(x)[-1], trace[-1])
    assert logits.shape == (len(x), net.n_outputs)
    return ref


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_golden_equals_reference(seed):
    check_seed(seed)


@pytest.mark.slow
def test_golden_equals_reference_sweep():
    for seed in SLOW_SEEDS:
        check_seed(seed)
        _CASES.pop(seed, None)


@pytest.mark.slow
def test_golden_equals_reference_wide():
    """16-bit weights and activations: products far beyond float64's 2^53."""
    for seed in range(200):
        check_seed(seed, wide=True)


# ------------------------------------------------------------------ the cases cover enough

def test_every_layer_kind_appears():
    kinds, features = Counter(), Counter()
    for seed in FAST_SEEDS:
        net, int_net, _ = case(seed)
        for i, layer in enumerate(net.layers):
            kind = layer["type"]
            kinds[kind] += 1
            if kind in ("lstm", "gru"):
                features[f"{kind} sequences={layer['sequences']}"] += 1
            if kind in ("conv1d", "conv2d"):
                p = layer["padding"]
                features[f"padding {p if isinstance(p, str) else 'number'}"] += 1
                features[f"stride {layer['stride']}"] += 1
                features[f"bias {layer['bias']}"] += 1
            if kind in ("maxpool", "avgpool"):
                features[f"{kind} {len(net.shapes[i - 1]) - 1}-d"] += 1
                features["pool stride < size" if layer["stride"] < layer["size"]
                         else "pool stride = size"] += 1
        for rec in int_net.layers:
            features[f"record {type(rec).__name__}"] += 1
            if rec.kind in ("dense", "conv") and rec.requant:
                features["per-channel" if np.ndim(rec.multiplier) else "per-layer"] += 1
                features["fused relu" if rec.relu else "signed out"] += 1
            if rec.kind == "recurrent" and rec.fmt.to_dict() != DEFAULT_FORMAT:
                features["recurrent format not default"] += 1
        features[f"input bits {net.input_bits}"] += 1
    missing = set(LAYER_FIELDS) - set(kinds)
    assert not missing, f"layer kinds never drawn: {sorted(missing)}"
    want = ["lstm sequences=True", "lstm sequences=False", "gru sequences=True",
            "gru sequences=False", "padding same", "padding valid", "padding number",
            "stride 1", "stride 2", "bias False", "maxpool 1-d", "maxpool 2-d",
            "avgpool 1-d", "avgpool 2-d", "pool stride < size", "pool stride = size",
            "record IntRelu", "record IntFlatten", "record IntRecurrent", "per-channel",
            "per-layer", "fused relu", "signed out", "recurrent format not default",
            "input bits 1", "input bits 8"]
    assert [f for f in want if not features[f]] == []


def test_outputs_cover_zero_middle_and_saturation():
    seen = Counter()
    for seed in FAST_SEEDS:
        seen.update(compare(seed)[0].seen)
    for key in ("relu", "signed", "index"):
        for end in ("low", "middle", "high"):
            assert seen[f"{key}_{end}"] > 0, (key, end, seen)
        total = sum(seen[f"{key}_{end}"] for end in ("low", "middle", "high"))
        assert seen[f"{key}_middle"] > total / 4, (key, seen)


# ------------------------------------------------------------------ the test can fail

@pytest.mark.parametrize("mutation", ["round_half_down", "pad_split", "conv_stride_1",
                                      "pool_stride_size", "no_saturation"])
def test_a_wrong_reference_differs(mutation):
    """Each planted mistake changes some output of some seed (or its shape)."""
    for seed in FAST_SEEDS:
        try:
            _, outputs, trace, _ = compare(seed, Reference(mutation))
        except (ValueError, IndexError, KeyError):
            return                        # shapes no longer fit, or an index left its table
        for want, got in zip(outputs, trace):
            if want.shape != got.shape or not np.array_equal(want.astype(np.int64), got):
                return
    pytest.fail(f"the mistake {mutation!r} went unnoticed on every seed")


# ------------------------------------------------------------------ the generator itself

def test_same_seed_same_network():
    a, b = make_case(7), make_case(7)
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[2], b[2])
    for ra, rb in zip(a[1].layers, b[1].layers):
        assert type(ra) is type(rb)
        for name in ("W", "b"):
            if hasattr(ra, name) and not isinstance(getattr(ra, name), dict):
                np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))


def test_inputs_start_with_all_zero_and_all_max():
    _, int_net, x = case(0)
    hi = (1 << int_net.input_bits) - 1
    assert x.shape == (N_SAMPLES, int_net.n_inputs) and x.dtype == np.int64
    assert (x[0] == 0).all() and (x[1] == hi).all()
    assert x.min() >= 0 and x.max() <= hi


@pytest.mark.parametrize("kinds, ranks", [({"dense", "relu"}, {1}), ({"conv1d"}, {2}),
                                          ({"conv2d", "relu"}, {3}), ({"gru"}, {2}),
                                          ({"maxpool", "global_avgpool"}, {2, 3})])
def test_kinds_restrict_the_description(kinds, ranks):
    seen = set()
    for seed in range(30):
        net = random_description(np.random.default_rng(seed), kinds=kinds, max_layers=5)
        used = {layer["type"] for layer in net.layers} - {"input", "dense", "flatten"}
        assert used <= kinds
        assert len(net.layers) - 1 <= 5
        seen.add(len(net.input_shape))
    assert seen == ranks


def test_average_pool_multiplier():
    for seed in FAST_SEEDS:
        net, int_net, _ = case(seed)
        for rec in int_net.of_kind("pool"):
            if rec.op == "avg":
                shape = net.shapes[rec.source - 1]
                count = math.prod(shape[:-1]) if rec.global_ else rec.size ** rec.dims
                assert (rec.multiplier, rec.shift) == multiplier_shift(1 / count, 16)


@pytest.mark.parametrize("call, message", [
    (lambda: random_description(0), "rng must be a numpy.random.Generator, not int"),
    (lambda: random_description(np.random.default_rng(0), max_layers=1),
     "max_layers must be an integer of at least 2, not 1"),
    (lambda: random_description(np.random.default_rng(0), kinds={"conv3d"}),
     "Layer kind 'conv3d' is not known"),
    (lambda: random_int_network(np.random.default_rng(0), case(0)[0], density=2),
     "density must be a number from 0 to 1 or None, not 2"),
    (lambda: random_int_network(np.random.default_rng(0), case(0)[0], weight_bits=1),
     "weight_bits must be an integer from 2 to 16 or None, not 1"),
])
def test_bad_arguments(call, message):
    with pytest.raises((TypeError, ValueError), match=message.replace("(", r"\(")):
        call()


def _layout(rec):
    """What quantize_network decides about a record (not its numbers)."""
    keys = ("source", "relu", "requant", "in_bits", "in_signed", "stride", "pad", "op",
            "dims", "size", "global_", "bits", "signed", "cell", "fmt", "sequences")
    out = {"record": type(rec).__name__, **{k: getattr(rec, k) for k in keys
                                            if hasattr(rec, k)}}
    if rec.kind in ("dense", "conv"):
        out["W"] = rec.W.shape
        if rec.requant:
            out["out_bits"] = rec.out_bits
    if rec.kind == "pool" and rec.op == "avg":
        out["M"] = (rec.multiplier, rec.shift)
    return out


def test_layout_is_quantize_networks():
    """Records, sources, fused ReLUs, widths and signedness as quantize_network makes them
    from a float model of the same description (8-bit weights and activations)."""
    from slimgen.sw.nn import build_model
    from slimgen.sw.quantize import QuantConfig, quantize_network
    compared = 0
    for seed in FAST_SEEDS:
        net = case(seed)[0]
        rng = np.random.default_rng(seed)
        try:
            model = build_model(net.float_spec()[0], rng)
        except ValueError as e:                # a float layer this tree does not have yet
            assert "type must be one of" in str(e)
            continue
        x = rng.random((16, net.n_inputs)) * 4
        quantized = quantize_network(net, model, x, input_scale=0.01, config=QuantConfig())
        ours = random_int_network(rng, net, weight_bits=8, act_bits=8)
        assert [_layout(r) for r in ours.layers] == [_layout(r) for r in quantized.layers], \
            f"seed {seed}:\n{net.summary()}"
        compared += 1
    if not compared:
        pytest.skip("the float model builds none of the random descriptions")


def test_a_relu_after_the_logits_is_kept():
    from slimgen.sw.network import check_network
    from slimgen.sw.nn import build_model
    from slimgen.sw.quantize import quantize_network
    net = check_network({"layers": [{"type": "input", "shape": [4]},
                                    {"type": "dense", "units": 3}, {"type": "relu"}]})
    model = build_model(net.float_spec()[0], np.random.default_rng(0))
    x = np.random.default_rng(1).random((50, 4))
    int_net = quantize_network(net, model, x, input_scale=1 / 255)
    assert (model.forward(x) >= 0).all()
    assert (int_net(np.clip(np.rint(x * 255), 0, 255).astype(np.int64)) >= 0).all()


def _wide_gru(n_in, in_bits):
    """A GRU as quantize_network makes it with 16-bit weights when the input weights set the
    gate's scale (all float input weights 1, input codes at scale 1 / (2^in_bits − 1)),
    gate_frac 15, z = ½ so that h shows the candidate gate n."""
    from slimgen.sw.integer_model import IntDense, IntNetwork, IntRecurrent, RecurrentFormat
    from slimgen.sw.network import check_network
    q = (1 << 15) - 1
    net = check_network({"layers": [
        {"type": "input", "shape": [1, n_in], "bits": in_bits},
        {"type": "gru", "hidden": 1, "gate_frac": 15, "h_frac": 7, "tanh_frac": 5,
         "c_bits": 17},
        {"type": "dense", "units": 2}]})
    fmt = RecurrentFormat(**{k: net.layers[1][k] for k in RECURRENT_FORMAT})
    W = {g: np.full((1, n_in + 1), q, dtype=np.int64) for g in "rzn"}
    W["z"][:] = 0
    b = {g: np.zeros(1, dtype=np.int64) for g in ("r", "z", "n", "hn")}
    s_g = 1 / ((1 << in_bits) - 1) / q
    M, S = {}, {}
    for g in "rz":
        M[g], S[g] = multiplier_shift(s_g * 2.0 ** fmt.sigmoid_frac, 16)
    M["n"], S["n"] = multiplier_shift(s_g * 2.0 ** (fmt.tanh_frac - fmt.gate_frac), 16)
    gru = IntRecurrent("gru", fmt, W, b, M, S, in_bits=in_bits, weight_bits=16,
                       c_weight_bits=16, source=1)
    logits = IntDense(np.ones((2, 1), dtype=np.int64), np.zeros(2, dtype=np.int64), 1, 1,
                      False, False, in_bits=8, in_signed=True, weight_bits=2, source=2)
    return IntNetwork(net, (gru, logits), 1.0, in_bits)


def test_a_gru_too_wide_for_the_golden_model_is_refused():
    """16 inputs of 16 bits: (W_n x) · 2^15 · M_n would pass 2^63 in the golden model's int64
    (it did, before records checked their accumulators)."""
    with pytest.raises(ValueError, match=r"^The gru cell needs 52-bit accumulators; at most "
                                         r"40 are supported$"):
        _wide_gru(16, 16)


def test_the_widest_gru_accepted_is_exact():
    int_net = _wide_gru(1, 8)
    assert int_net.layers[0].acc_bits == 40
    x = np.array([[255], [200], [128], [1], [0]])
    ref = Reference()
    want = ref.forward(int_net, x)[0]
    assert ref.violations == []
    np.testing.assert_array_equal(golden.forward(int_net, x, trace=True)[0],
                                  want.astype(np.int64))
