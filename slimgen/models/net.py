"""A network of the user's own (``--net net.json``, :mod:`slimgen.sw.network`): trained,
compressed, quantized and checked against the golden model like the presets.

Hardware: a network whose integer model has the structure one of the presets' engines takes
(:func:`hardware_kind`) is built on that engine: dense layers with ReLU (the MLP's engines:
unless pruned, every layer on one folded array, which is the compiler's), 3×3 stride-1 'same'
convolutions with ReLU, one max-pool and dense layers (the CNN's shared Winograd array), or an
LSTM's or a GRU's last state and a dense head (the recurrent engine,
:class:`slimgen.hw.lstm_engine.LstmEngine`). Any other feed-forward network goes
through the compiler (:func:`slimgen.hw.compiler.compile_network`): every layer on one shared
array of ``lanes`` multipliers, convolutions (1-D, and 2-D 3×3 on F(2×2, 3×3)) on
Winograd/CRT where the cost model finds it saves cycles and the design is predicted to fit the
run's board, the per-layer programs, cycles, bound and reasons in ``generate.json``; the
weights in block RAM, or in the UP5K's SPRAMs when the block RAMs are predicted not to hold
them (``--weight-memory``). A recurrent network the recurrent
engine does not take (stacked cells, every step's state out) is refused at generate with the
reasons.
"""

import math
from types import SimpleNamespace

from slimgen.sw.network import NetworkError, load_network, to_float_input

__all__ = ["VIEW", "check_config", "check_data", "network", "float_input", "hardware_kind",
           "make_network", "dataflow_network", "layer_entries", "multipliers", "cycles_estimate"]

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
    from slimgen.hw.lstm_schedule import recurrent_classifier
    from slimgen.hw.network import mlp_layers
    reasons = {}
    for name, check in (("mlp", mlp_layers), ("cnn", _cnn_3x3), ("lstm", recurrent_classifier)):
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


def dataflow_network(int_model, config):
    """``--engine dataflow``: the compiler's pipeline
    (:func:`slimgen.hw.compiler.compile_dataflow`), one stage per weighted layer, the
    ``--lanes`` multipliers shared out among the stages by
    :func:`~slimgen.hw.compiler.dataflow_lanes`; its weights in block RAM."""
    from slimgen.hw.compiler import compile_dataflow, dataflow_lanes
    if getattr(config, "act_memory", "auto") != "auto":
        raise ValueError(f"--act-memory {config.act_memory} is for the lanes' copies of the "
                         f"activations in the recurrent engine and the CNN's shared array; "
                         f"the dataflow pipeline keeps none: give --act-memory auto")
    if getattr(config, "weight_memory", "auto") == "spram":
        raise ValueError("--weight-memory spram is for the compiler's shared array; the "
                         "dataflow pipeline keeps its weights in block RAM: give "
                         "--weight-memory bram or auto")
    try:
        lanes, copies = dataflow_lanes(int_model, config.lanes)
        hw = compile_dataflow(int_model, lanes=lanes, copies=copies)
    except ValueError as e:
        raise ValueError(f"the network {int_model.network.name} cannot be built as a dataflow "
                         f"pipeline: {e}") from None
    hw.slimgen_kind = "compiler"
    unused = config.lanes - hw.multipliers
    stages = ", ".join(f"{P}" + (f" × {R} copies" if R > 1 else "")
                       for P, R in zip(lanes, copies))
    hw.slimgen_note = (f"dataflow pipeline of {len(lanes)} stages on {stages} lanes, an "
                       f"interval of {hw.interval:,} cycles (the slowest stage's), "
                       f"{hw.cycles:,} cycles through" + (
                           f"; {unused} of the {config.lanes} lanes left out: no step "
                           f"shortens the slowest stage within them" if unused else ""))
    return hw


def make_network(int_model, config):
    from slimgen.models import get_model_kind
    name, reasons = hardware_kind(int_model)
    if name not in ("lstm", "cnn") and getattr(config, "act_memory", "auto") != "auto":
        raise ValueError(f"--act-memory {config.act_memory} is for the lanes' copies of the "
                         f"activations in the recurrent engine and the CNN's shared array; "
                         f"{int_model.network.name} runs on "
                         + (f"the {name} preset's engine" if name else "the compiler's engine")
                         + ", which keeps no such copies: give --act-memory auto")
    if getattr(config, "engine", "auto") == "dataflow":
        return dataflow_network(int_model, config)
    if name in ("cnn", "lstm") and getattr(config, "weight_memory", "auto") == "spram":
        raise ValueError(f"--weight-memory spram is for the compiler's shared array (networks "
                         f"of dense layers, and those no preset engine takes); "
                         f"{int_model.network.name} runs on the {name} preset's engine, which "
                         f"keeps its weights in block RAM: give --weight-memory bram or auto")
    if name is None:
        return _compiled(int_model, config, reasons)
    # the settings the engine reads; a dense MLP goes on one folded array, as the preset does
    engines = config.engines
    if name == "mlp" and config.engine == "auto" and config.method == "none":
        engines = "folded"
    settings = SimpleNamespace(lanes=config.lanes, layout=config.layout, engine=config.engine,
                               engines=engines, board=config.board,
                               weight_memory=getattr(config, "weight_memory", "auto"),
                               act_memory=getattr(config, "act_memory", "auto"))
    hw = get_model_kind(name).make_network(int_model, settings)
    hw.slimgen_kind = name        # which engine's layer entries and cycle model apply
    return hw


def _compiled(int_model, config, reasons):
    """The compiler's shared-array engine, or one message with its and the presets' reasons.

    The compiler's cost model picks, per convolution, the Winograd/CRT algorithm with the
    fewest cycles, which costs accumulators, wider weights and transform units; when the
    resource model (:func:`slimgen.boards.resource_model.predict_top`) says that design does
    not fit the run's board, :func:`_within_board` looks for the fastest per-layer choice
    that does, and each convolution's ``why`` says so."""
    from slimgen.hw.compiler import compile_network
    from slimgen.models.mlp import with_weight_memory
    try:
        hw = with_weight_memory(int_model, getattr(config, "weight_memory", "auto"),
                                getattr(config, "board", None),
                                lambda weights: compile_network(int_model, lanes=config.lanes,
                                                                weights=weights))
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


#: At most this many combinations of per-layer algorithms are predicted after the single
#: layers, when looking for one that fits.
MAX_PLANS = 32


def _plans(per_layer):
    """Every choice of one algorithm per layer from ``per_layer`` ``{record: [(name,
    cycles), ...]}`` as ``{record: name}``, fastest first (ties: fewer Winograd layers); the
    layers' cycles add up because each layer's count depends on its own algorithm only."""
    import itertools
    sources = sorted(per_layer)
    plans = []
    for combo in itertools.product(*(per_layer[s] for s in sources)):
        cycles = sum(c for _, c in combo)
        winograd = sum(name != "direct" for name, _ in combo)
        plans.append((cycles, winograd, {s: name for s, (name, _) in zip(sources, combo)}))
    plans.sort(key=lambda p: (p[0], p[1]))
    return [plan for _, _, plan in plans]


def _within_board(hw, int_model, config):
    """``hw`` when it is predicted to fit ``config.board`` (at most
    :data:`slimgen.boards.resource_model.LC_SHARE` of its logic cells), else the engine of
    the fastest per-layer choice of algorithms predicted to fit: each layer's algorithms are
    first predicted alone (the other layers direct), then the combinations of those that fit
    (:func:`_plans`, at most :data:`MAX_PLANS`), the all-direct design last; ``hw`` when
    none fits (the build says by how much)."""
    from slimgen.boards.build import get_board
    from slimgen.boards.resource_model import LC_SHARE, planned_lc, predict_top
    from slimgen.hw.compiler import choose, compile_network, options
    from slimgen.models.mlp import with_weight_memory
    board = get_board(config.board)
    budget = {k: board.totals[k] for k in ("lc", "dsp", "bram") if board.totals.get(k)}
    if "lc" in budget:       # the share the flow plans (the model's error, routing)
        budget["lc"] = planned_lc(board)
    names = {"lc": board.lc_name, "dsp": "DSP blocks", "bram": "block RAMs"}

    def build(plan):
        """The engine of ``plan`` ({record: algorithm name}), its weights where
        ``--weight-memory`` says (``auto``: this plan's own block RAMs decide, not those of
        the cost model's choice, which may need SPRAM where a slower plan does not); a layer
        on the cost model's own choice keeps its reason, the others get theirs below."""
        return with_weight_memory(
            int_model, getattr(config, "weight_memory", "auto"), config.board,
            lambda weights: compile_network(int_model, lanes=config.lanes, weights=weights,
                                            force={s: (n, None) for s, n in plan.items()}))

    def over(plan=None, engine=None):
        """What ``plan`` (or the built ``engine``) needs beyond the budget."""
        if engine is None:
            engine = build(plan)
            engine._MustUse__silence = True   # predicted, not built: no "never used" warning
        p = predict_top(int_model, board, network_factory=lambda: engine)
        need = {"lc": p.lc, "dsp": p.dsp, "bram": p.bram}
        return {k: (need[k], have) for k, have in budget.items() if need[k] > have}

    too_much = over(engine=hw)
    if not too_much:
        return hw
    short = ", ".join(f"{need:,} {names[k]} of {have:,}" + (
        f" planned ({LC_SHARE[board.family]:.0%} of {board.totals['lc']:,})" if k == "lc" else "")
        for k, (need, have) in too_much.items())
    fastest = {e["name"]: e for e in hw.summary}
    per_layer = options(choose(int_model, lanes=config.lanes)[1])
    direct = {s: "direct" for s in per_layer}
    # one layer at a time on each of its algorithms, the others direct: an algorithm that
    # does not fit on its own is left out of every combination (more Winograd layers only
    # add transform units, accumulators and weights)
    alone = {s: [opts[0]] + [(n, c) for n, c in opts[1:] if not over({**direct, s: n})]
             for s, opts in per_layer.items()}

    def winograd_layers(plan):
        return sum(n != "direct" for n in plan.values())
    # the plans of one Winograd layer fit (predicted above); of the others at most MAX_PLANS
    # are predicted, fastest first, the all-direct one last
    every = _plans(alone)
    several = [plan for plan in every if winograd_layers(plan) > 1][:MAX_PLANS]
    plans = [plan for plan in every if winograd_layers(plan) == 1 or plan in several]
    for plan in plans + [direct]:
        if winograd_layers(plan) != 1 and over(plan):
            continue
        hw._MustUse__silence = True
        chosen = build(plan)
        for e in chosen.summary:
            old = fastest.get(e["name"])
            if old is None or old["algorithm"] == e["algorithm"] or e["kind"] != "conv":
                continue
            e["why"] = (f"{e['algorithm']}: the cost model's {old['algorithm']} is faster "
                        f"({old['cycles']:,} cycles against {e['cycles']:,}), but the design "
                        f"with it is predicted to need {short} on the {board.name}; this is "
                        f"the fastest choice of algorithms per layer predicted to fit")
            e["candidates"] = old["candidates"]
        return chosen
    return hw                            # nothing fits: the build says by how much


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
