"""The CNN model kind: convolutions on the Winograd datapath and the dense classifier as a
balanced-sparse MAC array, all on one shared array of multipliers; the digits' image view.

The hardware CNN (:data:`CHANNELS`) is smaller than :func:`slimgen.sw.nn.cnn_spec`'s default
(8, 16): conv3x3 1→4 → conv3x3 4→8 → max-pool 2 → dense 128→10, about the same accuracy on the
8×8 digits with a quarter of the second layer's multiplications.

Engine (:class:`slimgen.hw.cnn.CNN`): F(2×2,3×3) for every convolution (16 multiplications per
2×2 output tile and input channel instead of 36) and the dense layer's non-zeros, all on the
same ``--lanes`` multipliers (default 4, one DSP block each), one layer after the other;
convolution filters pruned to zero cost no products. The
latency is then close to its bound, the multiplications over the multipliers: separate
multipliers per layer would each idle while the other layers run.
"""

import numpy as np

from slimgen.sw.network import preset

__all__ = ["VIEW", "CHANNELS", "DEFAULTS", "check_config", "check_data", "network",
           "make_network", "layer_entries", "multipliers", "cycles_estimate"]

VIEW = "image"
CHANNELS = (4, 8)
# The default: the compressed digits CNN (balanced sparsity, groups = lanes) on the
# iCEBreaker (the flow's default board), verified on Verilator (every test image in under a
# minute; Icarus takes several).
DEFAULTS = {"method": "balanced", "sim": "verilator"}


# The Winograd F(2×2, 3×3) every convolution runs on: α = m + r − 1 points per tile side.
ALPHA = 2 + 3 - 1
IMAGE, N_CLASSES = (1, 8, 8), 10   # the digits: one channel of 8×8 pixels, 10 classes


def check_config(config):
    """Refuse lanes and layouts the shared array cannot take (:class:`slimgen.hw.cnn.CNN`)."""
    from slimgen.settings import SettingError
    if config.layout != "rows":
        raise SettingError("layout", f"must be 'rows' for the CNN (its shared array takes "
                                     f"rows), not {config.layout!r}")
    if getattr(config, "engine", "auto") == "dataflow":     # the compiler's stages: --lanes is their sum
        return
    lanes = [p for p in range(ALPHA, ALPHA * ALPHA + 1, ALPHA) if (ALPHA * ALPHA) % p == 0]
    if config.lanes not in lanes:
        allowed = ", ".join(map(str, lanes[:-1])) + f" or {lanes[-1]}"
        raise SettingError("lanes", f"must be {allowed} for the CNN (a multiple of α = {ALPHA} "
                                    f"that divides α² = {ALPHA * ALPHA}), not {config.lanes!r}")
    # balanced sparsity: one row group per lane in every conv and dense layer
    narrowest = min(CHANNELS[0], N_CLASSES)   # conv0's output channels
    if config.method == "balanced" and config.lanes > narrowest:
        raise SettingError("lanes", f"must be at most {narrowest} for balanced sparsity on the "
                                    f"CNN (one row group per lane in every layer, and conv0 "
                                    f"has only {CHANNELS[0]} output channels), not "
                                    f"{config.lanes}")


def check_data(config, shape, n_classes):
    """Refuse images of another size than 8×8 (``shape``: one sample's in the image view) and
    labels beyond the 10 outputs."""
    if tuple(shape) != IMAGE:
        raise ValueError(f"samples are {shape[-2]}×{shape[-1]} images, but the CNN takes "
                         f"{IMAGE[1]}×{IMAGE[2]} images")
    if n_classes > N_CLASSES:
        raise ValueError(f"labels go up to {n_classes - 1} ({n_classes} classes), but the CNN "
                         f"has {N_CLASSES} outputs")


def network(config, act_bits=None, pixel_max=16):
    """The CNN preset (:data:`CHANNELS`), its input codes ``act_bits`` wide."""
    return preset("cnn", channels=CHANNELS, input_bits=act_bits or config.act_bits)


def make_network(int_model, config):
    """The shared array (:class:`slimgen.hw.cnn.CNN`), or with ``--engine dataflow`` the
    compiler's pipeline (:func:`slimgen.models.net.dataflow_network`)."""
    if getattr(config, "engine", "auto") == "dataflow":
        from slimgen.models.net import dataflow_network
        return dataflow_network(int_model, config)
    from slimgen.hw.cnn import CNN
    return CNN(int_model, lanes=config.lanes, engine=config.engines, layout=config.layout,
               act_memory=getattr(config, "act_memory", "auto"))


def multipliers(net):
    """Every layer runs on the same lanes: the multipliers in use are the lanes, once (a
    dataflow pipeline's: every stage's)."""
    return net.multipliers


def layer_entries(net):
    if getattr(net, "slimgen_kind", None) == "compiler":
        return net.summary
    entries = []
    sch = net.schedule
    alg = sch.algorithm
    alpha2 = alg.alpha
    for k, conv in enumerate(sch.convs):
        W = conv.W
        cin, _, _, cout, oh, ow, th, tw = sch.layer_shapes[k]
        # products with a non-zero filter W[k, c]: α² per tile (edge tiles whole); the
        # engine skips the others
        filters = int(np.any(W != 0, axis=(2, 3)).sum())
        mults = th * tw * filters * alpha2
        entries.append({
            "name": f"conv{k}", "kind": "conv", "engine": f"winograd {alg.name}, shared array",
            "algorithm": alg.name,
            "shape": [int(v) for v in W.shape], "weight_bits": int(conv.weight_bits),
            "sparsity": float((W == 0).mean()), "nonzeros": int((W != 0).sum()),
            "nonzero_filters": filters, "nonzeros_per_group": None, "lanes": int(sch.lanes),
            "mults_direct": int(conv.c_in * conv.kernel ** 2),
            "mults": float(mults / (cout * oh * ow)), "mults_per_inference": int(mults),
            "cycles": int(sch.transform_cycles(k) + sch.conv_cycles(k)),
        })
    layer = sch.dense[0]
    W, lay = layer.W, sch.sparse_layout
    P = lay.lanes
    n_out, n_in = W.shape
    sparse = sch.engine == "sparse"
    entries.append({
        "name": "dense0", "kind": "dense",
        "engine": f"{'sparse' if sparse else 'dense'} rows, shared array",
        "shape": [int(n_out), int(n_in)], "weight_bits": int(layer.weight_bits),
        "sparsity": float((W == 0).mean()), "nonzeros": int((W != 0).sum()),
        "nonzeros_per_group": [int((W[p::P] != 0).sum()) for p in range(P)],
        "lane_cycles": [int(v) for v in lay.lane_lengths], "lanes": int(P),
        "mults_direct": int(n_in), "mults": float((W != 0).sum() / n_out),
        "mults_per_inference": int((W != 0).sum()) if sparse else int(W.size),
        "cycles": int(sch.dense_cycles),
    })
    return entries


def cycles_estimate(net):
    """Cycles of one inference alone, from its first input to its result."""
    if getattr(net, "slimgen_kind", None) == "compiler":
        return net.cycles
    return net.schedule.cycles_estimate()

