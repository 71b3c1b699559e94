"""A network of the user's own (``--net net.json``, :mod:`slimgen.sw.network`): trained,
compressed, quantized and checked against the golden model like the presets.

Hardware: a network whose integer model has the structure one of the presets' engines takes
(:func:`hardware_kind`) is built on that engine: dense layers with ReLU (the MLP's engines,
every layer on one folded array unless pruned), 3×3 stride-1 'same' convolutions with ReLU,
one max-pool and dense layers (the CNN's shared Winograd array), or an LSTM's last state and
a dense head (the LSTM engine). Any other feed-forward network goes through the compiler
(:func:`slimgen.hw.compiler.compile_network`): every layer on one shared array of ``lanes``
multipliers, 1-D convolutions on Winograd/CRT where the cost model finds it saves cycles and
the design is predicted to fit the run's board, the per-layer programs, cycles, bound and
reasons in ``generate.json``. A recurrent
network no preset engine takes (a GRU) is refused at generate with the reasons.
"""

import math
from types import SimpleNamespace

from slimgen.sw.network import NetworkError, load_network, to_float_input

__all__ = ["VIEW", "check_config", "check_data", "network", "float_input", "hardware_kind",
           "make_network", "layer_entries", "multipliers", "cycles_estimate"]

VIEW = "vector"


def network(config, act_bits=None, pixel_max=None):
    """The description in the file ``config.net`` (its own input width)."""
    return load_network(config.net)


def check_config(config):
    """The description file must be readable and a valid description."""
    from slimgen.settings import SettingError
    if not isinstance(config.net, str) or not config.net:
        raise SettingError("net", f"must be the path of a network description (.json), not "
                                  f"{config.net!r}")
    try:
        net = load_network(config.net)
    except NetworkError as e:
        raise SettingError("net", f"{config.net!r} cannot be used: {e}") from None
    if config.method == "lstm_gates" and not any(layer["type"] in ("lstm", "gru")
                                                 for layer in net.layers):
        raise SettingError("method", f"'lstm_gates' prunes LSTM and GRU gates; the network "
                                     f"{net.name} ({config.net}) has no lstm or gru layer")


def check_data(config, shape, n_classes):
    """Refuse samples of another size than the description's input and labels beyond its
    outputs."""
    net = load_network(config.net)
    if math.prod(shape) != net.n_inputs:
        raise ValueError(f"samples have {math.prod(shape)} values, but the network "
                         f"{net.name} takes inputs of shape {list(net.input_shape)} "
                         f"({net.n_inputs} values)")
    if n_classes > net.n_outputs:
        raise ValueError(f"labels go up to {n_classes - 1} ({n_classes} classes), but the "
                         f"network {net.name} has {net.n_outputs} outputs")


def float_input(config, x):
    """Flat samples (n, n_inputs) → the float model's input layout."""
    return to_float_input(load_network(config.net), x)


def hardware_kind(int_model):
    """``(name, None)`` of the preset whose engine takes ``int_model`` (``"mlp"``, ``"cnn"``,
    ``"lstm"``), or ``(None, reasons)`` with each engine's refusal."""
    from slimgen.hw.cnn_schedule import cnn_parts
    from slimgen.hw.lstm_schedule import lstm_classifier
    from slimgen.hw.network import mlp_layers
    reasons = {}
    for name, check in (("mlp", mlp_layers), ("cnn", _cnn_3x3), ("lstm", lstm_classifier)):
        try:
            check(int_model)
            return name, None
        except (TypeError, ValueError) as e:
            reasons[name] = str(e)
    return None, reasons


def _cnn_3x3(int_model):
    """The CNN engine's structure, with its Winograd F(2×2, 3×3): 3×3 kernels, padding 1."""
    from slimgen.hw.cnn_schedule import cnn_parts
    convs = cnn_parts(int_model)[0]
    for i, conv in enumerate(convs):
        if conv.kernel != 3 or conv.padding != 1:
            raise ValueError(f"Convolution {i} is {conv.kernel}×{conv.kernel} with padding "
                             f"{conv.pad}; the CNN engine runs 3×3 kernels with padding 1")


def make_network(int_model, config):
    from slimgen.models import get_model_kind
    name, reasons = hardware_kind(int_model)
    if name is None:
        return _compiled(int_model, config, reasons)
    # the settings the engine reads; a dense MLP goes on one folded array, as the preset does
    engines = config.engines
    if name == "mlp" and config.engine == "auto" and config.method == "none":
        engines = "folded"
    settings = SimpleNamespace(lanes=config.lanes, layout=config.layout, engine=config.engine,
                               engines=engines)
    hw = get_model_kind(name).make_network(int_model, settings)
    hw.slimgen_kind = name        # which engine's layer entries and cycle model apply
    return hw


def _compiled(int_model, config, reasons):
    """The compiler's shared-array engine, or one message with its and the presets' reasons.

    The compiler's cost model picks Winograd/CRT where it saves cycles, which costs
    accumulators, wider weights and transform units; when the resource model
    (:func:`slimgen.boards.resource_model.predict_top`) says that design does not fit the
    run's board and the all-direct one does, the direct one is built, and each convolution's
    ``why`` says so."""
    from slimgen.hw.compiler import compile_network
    try:
        hw = compile_network(int_model, lanes=config.lanes)
    except ValueError as e:
        why = "; ".join(f"{k}: {v}" for k, v in reasons.items())
        raise ValueError(f"the network {int_model.network.name} ({config.net}) cannot be "
                         f"built: the compiler says {e}; and it fits none of the preset "
                         f"engines ({why}); run the software stages with --to quantize") \
            from None
    if any(e["algorithm"] not in ("direct", e["kind"]) for e in hw.summary):
        hw = _within_board(hw, int_model, config)
    hw.slimgen_kind = "compiler"
    return hw


def _within_board(hw, int_model, config):
    """``hw``, or the all-direct engine when only that one fits ``config.board``."""
    from slimgen.boards.build import get_board
    from slimgen.boards.resource_model import predict_top
    from slimgen.hw.compiler import compile_network
    board = get_board(config.board)
    budget = {k: board.totals[k] for k in ("lc", "dsp", "bram") if board.totals.get(k)}

    def over(engine_factory):
        p = predict_top(int_model, board, network_factory=engine_factory)
        need = {"lc": p.lc, "dsp": p.dsp, "bram": p.bram}
        return {k: (need[k], have) for k, have in budget.items() if need[k] > have}

    too_much = over(lambda: compile_network(int_model, lanes=config.lanes))
    if not too_much:
        return hw
    direct = compile_network(int_model, lanes=config.lanes, winograd=False)
    if over(lambda: compile_network(int_model, lanes=config.lanes, winograd=False)):
        direct._MustUse__silence = True    # not built: no "created but never used" warning
        return hw                       # neither fits: the build says by how much
    hw._MustUse__silence = True
    names = {"lc": board.lc_name, "dsp": "DSP blocks", "bram": "block RAMs"}
    short = ", ".join(f"{need:,} {names[k]} of {have:,}" for k, (need, have) in too_much.items())
    for old, new in zip(hw.summary, direct.summary):
        if old["algorithm"] != new["algorithm"]:
            new["why"] = (f"direct: {old['algorithm']} saves cycles ({old['cycles']:,} against "
                          f"{new['cycles']:,}), but the design with it is predicted to need "
                          f"{short} on the {board.name}; the all-direct one fits")
            new["candidates"] = old["candidates"]
    return direct


def _kind(hw):
    from slimgen.models import get_model_kind
    return get_model_kind(hw.slimgen_kind)


def layer_entries(hw):
    if hw.slimgen_kind == "compiler":
        return hw.summary
    return _kind(hw).layer_entries(hw)


def multipliers(hw):
    if hw.slimgen_kind == "compiler":
        return hw.lanes
    count = getattr(_kind(hw), "multipliers", None)
    return count(hw) if count else sum(e["lanes"] for e in layer_entries(hw))


def cycles_estimate(hw):
    """Cycles of one inference: the compiler's exact count from the first input to the
    result, else the preset engine's model."""
    if hw.slimgen_kind == "compiler":
        return hw.cycles
    estimate = getattr(_kind(hw), "cycles_estimate", None)
    return estimate(hw) if estimate else sum(e["cycles"] for e in layer_entries(hw))
