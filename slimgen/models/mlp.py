"""The MLP model kind: Dense/ReLU layers on the digits' vector view; one engine per layer
(dense or sparse, :class:`slimgen.hw.network.Network`) or every layer on one shared array
(folded, :class:`slimgen.hw.folded_mlp.FoldedMlp`)."""

from slimgen.sw.network import preset

__all__ = ["VIEW", "check_config", "check_data", "network", "make_network", "layer_entries",
           "multipliers"]

VIEW = "vector"


def _name(sizes):
    return "-".join(str(s) for s in sizes)


def check_config(config):
    """Refuse lanes the engines could not use (:func:`make_network` would cap them): the
    folded array has at most the widest layer's outputs, over the layers it serves; a dense or
    sparse rows engine at most its layer's outputs, a sparse banks engine its inputs.
    Balanced sparsity makes one group per lane in every layer: each layer needs at least as
    many output rows (input banks with ``layout="banks"``) as there are lanes."""
    from slimgen.settings import SettingError
    sizes, lanes = config.sizes, config.lanes
    outs = sizes[1:]
    if config.method == "balanced":
        banks = config.layout == "banks"
        widths = sizes[:-1] if banks else outs
        k = min(range(len(widths)), key=lambda i: widths[i])
        if lanes > widths[k]:
            group, what = ("input bank", "inputs") if banks else ("row group", "outputs")
            raise SettingError("lanes", f"must be at most {widths[k]} for balanced sparsity on "
                                        f"the MLP {_name(sizes)} with layout {config.layout} "
                                        f"(one {group} per lane in every layer, and layer{k} "
                                        f"has only {widths[k]} {what}), not {lanes}")
    if config.engines == "folded":
        limit = -(-max(outs) // len(outs))
        if lanes > limit:
            raise SettingError("lanes", f"must be at most {limit} for the folded MLP "
                                        f"{_name(sizes)} (its widest layer's {max(outs)} outputs "
                                        f"over its {len(outs)} layers), not {lanes}")
        return
    banks = config.engines == "sparse" and config.layout == "banks"
    limit = max(sizes[:-1]) if banks else max(outs)
    if lanes > limit:
        raise SettingError("lanes", f"must be at most {limit} for the MLP {_name(sizes)} on "
                                    f"{config.engines} engines (a layer's lanes are at most its "
                                    f"{'inputs' if banks else 'outputs'}), not {lanes}")


def check_data(config, shape, n_classes):
    """Refuse samples of another length than the first layer takes (``shape``: one sample's
    shape in the vector view) and labels beyond the last layer's outputs."""
    sizes = config.sizes
    if shape != (sizes[0],):
        raise ValueError(f"samples have {shape[0]} values, but the MLP {_name(sizes)} takes "
                         f"{sizes[0]}: make the first of --sizes {shape[0]}")
    if n_classes > sizes[-1]:
        raise ValueError(f"labels go up to {n_classes - 1} ({n_classes} classes), but the MLP "
                         f"{_name(sizes)} has {sizes[-1]} outputs: make the last of --sizes at "
                         f"least {n_classes}")


def network(config, act_bits=None, pixel_max=16):
    """The MLP preset of ``--sizes``, its input codes ``act_bits`` wide."""
    return preset("mlp", sizes=tuple(config.sizes), input_bits=act_bits or config.act_bits)


def make_network(int_model, config):
    memory = getattr(config, "weight_memory", "auto")
    if config.engines == "folded":
        # the multipliers of one engine per layer, shared by all layers
        from slimgen.hw.folded_mlp import FoldedMlp
        widest = max(layer.n_out for layer in int_model.layers)
        lanes = min(config.lanes * len(int_model.layers), widest)
        if memory == "auto":
            memory = _weight_memory(int_model, lanes, config.board)
        return FoldedMlp(int_model, lanes=lanes, weights=memory)
    if memory == "spram":
        raise ValueError(f"weights in SPRAM need the folded engine (every layer on one "
                         f"array), not {config.engines} engines; give --engine folded or "
                         f"--weight-memory bram")
    from slimgen.hw.network import Network
    return Network(int_model, lanes=config.lanes, engines=config.engines, layout=config.layout)


def _weight_memory(int_model, lanes, board_name):
    """``"spram"`` when the board has single-port RAMs and the folded MLP's weights in block
    RAM are predicted (:func:`slimgen.boards.resource_model.predict_top`) to need more block
    RAMs than the board has while they fit its SPRAMs; ``"bram"`` otherwise (the bitstream
    holds them, nothing to load at run time)."""
    from slimgen.boards.build import get_board
    board = get_board(board_name)
    if not board.totals.get("spram"):
        return "bram"
    from slimgen.boards.resource_model import predict_top
    from slimgen.hw.folded_mlp import FoldedMlp
    from slimgen.hw.lib.weights import SPRAM_WORDS, spram_blocks
    net = FoldedMlp(int_model, lanes=lanes)
    net._MustUse__silence = True         # predicted, not built: no "never used" warning
    if spram_blocks(lanes, net.weight_bits) > board.totals["spram"] \
            or net.weight_depth > SPRAM_WORDS:
        return "bram"                    # the build says by how much the block RAMs fall short
    need = predict_top(int_model, board, network_factory=lambda: net).bram
    return "spram" if need > board.totals["bram"] else "bram"


def multipliers(net):
    """MAC lanes in the whole network (shared by every layer when folded)."""
    return net.multipliers


def cycles_estimate(net):
    """Cycles of one inference: the per-layer engines' exact pipeline latency
    (:attr:`slimgen.hw.network.Network.latency`: a layer starts as the one before sends),
    else the folded array's exact :attr:`~slimgen.hw.folded_mlp.FoldedMlp.layer_cycles`, its
    layers one after another."""
    if hasattr(net, "engines"):
        return net.latency
    return sum(net.layer_cycles)


def layer_entries(net):
    if not hasattr(net, "engines"):   # folded: every layer on the same lanes
        return [{**dense_entry(f"layer{k}", layer.W, layer.weight_bits, None, lanes=net.lanes,
                               cycles=c), "engine": "folded dense"}
                for k, (layer, c) in enumerate(zip(net.qmodel.layers, net.layer_cycles))]
    entries = []
    for k, (layer, engine) in enumerate(zip(net.qmodel.layers, net.engines)):
        entries.append(dense_entry(f"layer{k}", layer.W, layer.weight_bits, engine))
    return entries


def dense_entry(name, W, weight_bits, engine, *, lanes=None, cycles=None):
    """The per-layer entry of a dense or sparse engine computing ``W`` (n_out, n_in); without
    an engine, of ``lanes`` dense lanes busy for ``cycles``."""
    P = engine.lanes if engine is not None else lanes
    if hasattr(engine, "sparse_layout"):
        L = engine.sparse_layout
        lane_cycles = [int(v) for v in L.lane_lengths]  # non-zeros, plus a word per empty row
        engine_name = f"sparse {L.layout}"
    else:
        lane_cycles = None
        engine_name = "dense"
    if engine_name == "sparse banks":  # lane p owns the inputs at positions p, p + P, ...
        lane = L.positions % P
        per_lane = [int((W[:, lane == p] != 0).sum()) for p in range(P)]
    else:                              # lane p owns outputs (rows) p, p + P, ...
        per_lane = [int((W[p::P] != 0).sum()) for p in range(P)]
    n_out, n_in = W.shape
    return {
        "name": name, "kind": "dense", "engine": engine_name,
        "shape": [int(n_out), int(n_in)], "weight_bits": int(weight_bits),
        "sparsity": float((W == 0).mean()), "nonzeros": int((W != 0).sum()),
        "nonzeros_per_group": per_lane, "lanes": int(P),
        **({"lane_cycles": lane_cycles} if lane_cycles is not None else {}),
        "mults_direct": int(n_in), "mults": float((W != 0).sum() / n_out),
        "cycles": int(engine.cycles_per_vector if engine is not None else cycles),
    }
