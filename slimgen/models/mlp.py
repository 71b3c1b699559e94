"""The MLP model kind: Dense/ReLU layers on the digits' vector view; one engine per layer
(dense or sparse, :class:`slimgen.hw.network.Network`) or every layer on one shared array
(folded: the compiler's engine, :func:`slimgen.hw.compiler.compile_network`, on ``--lanes`` ×
layers lanes, at most the widest layer's outputs and the board's DSP blocks)."""

from slimgen.sw.network import preset

__all__ = ["VIEW", "check_config", "check_data", "network", "make_network", "folded_lanes",
           "with_weight_memory", "layer_entries", "multipliers", "cycles_estimate"]

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


def folded_lanes(int_model, lanes, board_name=None):
    """The folded array's lanes: the multipliers of one engine of ``lanes`` per layer, shared
    by all layers, at most the widest layer's outputs and the board's DSP blocks (a lane is
    one multiplier: with more the design would not fit, and a deep MLP's default, 4 lanes a
    layer, would not on the iCEBreaker's 8)."""
    n = min(lanes * len(int_model.layers), max(layer.n_out for layer in int_model.layers))
    if board_name:
        from slimgen.boards.build import get_board
        n = min(n, get_board(board_name).totals.get("dsp") or n)
    return n


def make_network(int_model, config):
    memory = getattr(config, "weight_memory", "auto")
    if config.engines == "folded":
        from slimgen.hw.compiler import compile_network
        board = getattr(config, "board", None)
        lanes = folded_lanes(int_model, config.lanes, board)
        net = with_weight_memory(int_model, memory, board,
                                 lambda weights: compile_network(int_model, lanes=lanes,
                                                                 weights=weights))
        asked = config.lanes * len(int_model.layers)
        if lanes < asked:          # said in the generate log: the user asked for more
            widest = max(layer.n_out for layer in int_model.layers)
            why = (f"the widest layer's {widest} outputs" if lanes == widest else
                   f"the {board}'s {lanes} DSP blocks")
            net.slimgen_note = (f"the folded array has {lanes} lanes, not {config.lanes} "
                                f"lanes × {len(int_model.layers)} layers = {asked}: at most "
                                f"{why}")
        return net
    if memory == "spram":
        raise ValueError(f"weights in SPRAM need the folded engine (every layer on one "
                         f"array), not {config.engines} engines; give --engine folded or "
                         f"--weight-memory bram")
    from slimgen.hw.network import Network
    return Network(int_model, lanes=config.lanes, engines=config.engines, layout=config.layout)


def with_weight_memory(int_model, memory, board_name, build):
    """The compiler's engine ``build(weights)`` with ``int_model``'s weights where ``memory``
    (``--weight-memory``) says; with ``"auto"`` (the folded MLP's, and any network's the
    compiler builds) in the board's single-port RAMs when the block-RAM design is predicted
    (:func:`slimgen.boards.resource_model.predict_top`) to need more block RAMs than the
    board has while the weights fit its SPRAMs, else in block RAM (the bitstream holds them,
    nothing to load at run time; also without a board)."""
    if memory != "auto":
        return build(memory)
    net = build("bram")
    from slimgen.boards.build import get_board
    board = get_board(board_name) if board_name else None
    if not board or not board.totals.get("spram"):
        return net
    from slimgen.boards.resource_model import predict_top
    from slimgen.hw.lib.weights import SPRAM_WORDS, spram_blocks
    if spram_blocks(net.lanes, net.weight_bits) > board.totals["spram"] \
            or net.weight_depth > SPRAM_WORDS:
        return net                       # the build says by how much the block RAMs fall short
    if predict_top(int_model, board, network_factory=lambda: net).bram <= board.totals["bram"]:
        return net
    net._MustUse__silence = True         # predicted, not built: no "never used" warning
    return build("spram")


def _folded(net):
    return not hasattr(net, "engines")


def multipliers(net):
    """MAC lanes in the whole network (shared by every layer when folded)."""
    return net.lanes if _folded(net) else net.multipliers


def cycles_estimate(net):
    """Cycles of one inference: the per-layer engines' exact pipeline latency
    (:attr:`slimgen.hw.network.Network.latency`: a layer starts as the one before sends),
    else the folded array's exact count (:func:`slimgen.hw.program.network_cycles`)."""
    return net.cycles if _folded(net) else net.latency


def layer_entries(net):
    if _folded(net):                  # every layer on the same lanes: the compiler's summary
        return net.summary
    entries = []
    for k, (layer, engine) in enumerate(zip(net.qmodel.layers, net.engines)):
        entries.append(dense_entry(f"layer{k}", layer.W, layer.weight_bits, engine))
    return entries


def dense_entry(name, W, weight_bits, engine):
    """The per-layer entry of a dense or sparse engine computing ``W`` (n_out, n_in)."""
    P = engine.lanes
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
        "cycles": int(engine.cycles_per_vector),
    }
