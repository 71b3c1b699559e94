"""The CNN model kind: convolutions on the Winograd engine, a max-pool, the dense classifier on
the (balanced-)sparse array; the digits' image view.

The hardware CNN (:data:`CHANNELS`) is smaller than :func:`slimgen.sw.nn.cnn_spec`'s default
(8, 16): conv3x3 1→4 → conv3x3 4→8 → max-pool 2 → dense 128→10. The default (8, 16) needs four
times the multiplications in its second layer and twice the line buffers and transform-domain
memories for about the same accuracy on the 8×8 digits; neither fits the iCEBreaker (a single
F(2×2,3×3) convolution unit takes about 85% of the UP5K's logic cells, see the report of the
CNN flow), and the smaller one keeps the ULX3S build and the cocotb run of all test images short.

Default engines (:func:`conv_plan`): F(2×2,3×3) for every convolution (16 multiplications per
2×2 output tile and input channel instead of 36), the lanes chosen so that each convolution
takes about as many cycles per image as the busiest one (the layers run as a pipeline, so the
slowest one sets the rate): α² = 16 lanes for the widest layer, fewer for the 1-channel first
layer, which has a quarter of the work per output channel-pair.
"""

import math

from slimgen.sw.cnn_artifact import load_int_cnn, save_int_cnn
from slimgen.sw.cnn_quant import quantize_cnn
from slimgen.sw.nn import cnn_spec
from slimgen.sw.quant import QuantConfig

from .mlp import dense_entry

__all__ = ["VIEW", "CHANNELS", "DEFAULTS", "float_spec", "quantize", "save_int", "load_int", "make_network",
           "layer_entries", "conv_plan", "cycles_estimate", "cycles_lower_bound"]

VIEW = "image"
CHANNELS = (4, 8)
# The two F(2×2,3×3) convolution units alone need about twice the UP5K's logic cells and 22 of
# its 8 DSP blocks (see ``conv_plan``), so the CNN's default board is the ULX3S.
DEFAULTS = {"board": "ulx3s-85f"}


def float_spec(config):
    return cnn_spec(channels=CHANNELS)


def quantize(model, data, config, compression):
    qc = QuantConfig(weight_bits=config.weight_bits, act_bits=config.act_bits)
    n_layers = sum(layer.kind in ("conv2d", "dense") for layer in model.layers)
    bits = compression.get("layer_weight_bits")
    if bits is not None and len(bits) != n_layers:
        bits = None      # per dense layer only (the compress CLI's MLP convention): not usable
    return quantize_cnn(model, data.part("train")[0], 1.0 / data.pixel_max, qc,
                        layer_weight_bits=bits)


def save_int(path, int_model, *, dataset, split_seed):
    save_int_cnn(path, int_model, dataset=dataset, split_seed=split_seed)


def load_int(path):
    return load_int_cnn(path)[0]


def conv_plan(int_model, max_lanes=16):
    """``(algorithms, lanes)`` per convolution: F(2×2,3×3) each, the widest layer (most
    input·output channel pairs) with ``max_lanes`` (≤ α² = 16) and the others with the fewest
    lanes that keep them at most as slow as it."""
    from slimgen.sw.winograd import winograd_2d
    alg = winograd_2d(2, 3)
    alpha2 = alg.alpha
    work = [c.c_in * c.c_out for c in int_model.convs]
    top = max(work)
    steps_top = math.ceil(alpha2 / min(max_lanes, alpha2))
    lanes = []
    for w in work:
        # cycles ∝ w · ⌈α²/P⌉ (pass of Cout·S per input channel); match top · steps_top.
        budget = max(1, (top * steps_top) // w)
        lanes.append(min(alpha2, math.ceil(alpha2 / min(budget, alpha2))))
    return [alg] * len(work), lanes


def make_network(int_model, config):
    from slimgen.hw.cnn import CNN
    algs, lanes = conv_plan(int_model)
    return CNN(int_model, conv_algorithms=algs, conv_lanes=lanes, lanes=config.lanes,
               engines=config.engines, layout=config.layout)


def layer_entries(net):
    from slimgen.hw.cnn import conv_cycles
    entries = []
    for k, (conv, hw) in enumerate(zip(net.qmodel.convs, net.convs)):
        W = conv.W
        alg = hw.algorithm
        taps = conv.c_in * conv.kernel ** 2
        if alg is None:
            engine, per_out = "direct", taps
        else:
            (m, _), alpha2 = alg.m, alg.alpha
            engine, per_out = f"winograd {alg.name}", conv.c_in * alpha2 / (m * m)
        outputs = conv.c_out * hw.out_h * hw.out_w
        entries.append({
            "name": f"conv{k}", "kind": "conv", "engine": engine,
            "algorithm": alg.name if alg is not None else "direct",
            "shape": [int(v) for v in W.shape], "weight_bits": int(conv.weight_bits),
            "sparsity": float((W == 0).mean()), "nonzeros": int((W != 0).sum()),
            "nonzeros_per_group": None, "lanes": int(hw.lanes),
            "mults_direct": int(taps), "mults": float(per_out),
            "mults_per_inference": int(round(per_out * outputs)), "cycles": int(conv_cycles(hw)),
        })
    for k, (layer, engine) in enumerate(zip(net.qmodel.dense, net.engines)):
        e = dense_entry(f"dense{k}", layer.W, layer.weight_bits, engine)
        sparse = hasattr(engine, "sparse_layout")
        e["mults_per_inference"] = int((layer.W != 0).sum()) if sparse else int(layer.W.size)
        entries.append(e)
    return entries


def cycles_estimate(net):
    """Cycles of one inference alone through the layer pipeline: each convolution but the last
    only until it has the rows the next one's first band reads, the last one whole, then the
    dense engines."""
    est = 0
    for conv, nxt in zip(net.convs, net.convs[1:]):
        rows = nxt.n_win - nxt.layer.padding                 # input rows of nxt's first band
        est += conv_cycles_part(conv, min(conv.bands, -(-rows // conv.m)))
    est += conv_cycles_part(net.convs[-1], net.convs[-1].bands)
    return int(est + sum(e.cycles_per_vector for e in net.engines))


def conv_cycles_part(conv, bands):
    from slimgen.hw.cnn import conv_cycles
    return conv_cycles(conv) * bands // conv.bands


def cycles_lower_bound(entries):
    """Cycles per inference if every multiplier did a useful product every cycle: the
    multiplications after Winograd and sparsity over the multipliers in use."""
    return math.ceil(sum(e["mults_per_inference"] for e in entries) / sum(e["lanes"] for e in entries))
