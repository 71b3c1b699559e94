"""The planner: the lanes (the folding) and the engines of a run's hardware chosen for an
objective within the board's budget (issue 19), before synthesis.

``--objective latency|throughput|area`` (and ``--fps N``) replace ``--lanes`` (and
``--engine auto``): every lane count of :data:`LANES` the run's engine takes, on each engine
setting worth weighing (:func:`_engines`: the MLP's folded array or one dense engine per
layer, a dataflow pipeline), is built as the generate stage builds it; its cycles and interval
come from the engine's schedule (exact for the compiler's engine and the MLP's per-layer
pipeline, the engines' own cycle models for the others), its logic cells / LUTs, DSP blocks
and block RAMs from the resource model (:func:`slimgen.boards.resource_model.predict_top`),
and

- ``latency``: the fewest cycles per inference (ties: fewer logic cells);
- ``throughput``: the shortest interval between inferences (ties: fewer cycles, fewer cells);
- ``area``: the fewest logic cells (ties: fewer DSP blocks, block RAMs)

among the designs that fit the board (at most
:data:`~slimgen.boards.resource_model.LC_SHARE` of its logic cells, per family) and reach
``fps`` inferences per second at the board's clock (``clock / interval``) when it is given.
For ``throughput`` (and a rate, ``fps``) every design that fits is also weighed on
:data:`COPIES` copies taking samples in turn (:class:`slimgen.hw.dataflow.Replicas`, the
``copies`` setting): the network's share of the predicted resources times the copies, the
interval their mean over the copies; the copies chosen are then predicted whole, and chosen
again if they do not fit (:func:`plan_lanes`). One message says why when none does.
Balanced sparsity fixes the lanes (one group of weights per lane, chosen at compression): the
planner keeps them and says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["OBJECTIVES", "LANES", "COPIES", "Candidate", "PlanError", "weigh", "pick", "plan_lanes",
           "planned_config"]

OBJECTIVES = ("latency", "throughput", "area")
#: The copies of a whole design weighed for throughput (and for a rate, ``fps``), each count
#: up to the first that does not fit (:func:`_copies`).
COPIES = tuple(range(2, 65))     # every count: weighing one is arithmetic, not a build
#: The lane counts tried (those the engine and the board's multipliers take).
LANES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)



class PlanError(ValueError):
    """No design meets the objective's constraints on the board."""


@dataclass(frozen=True)
class Candidate:
    """One design as built: its lanes and engine setting, its schedule's figures and its
    predicted resources."""
    lanes: int
    engine: str             # the run's engine setting it was built with (auto, dense, ...)
    multipliers: int
    cycles: int             # one inference, first input to result
    interval: float         # between results with inferences back to back (a mean)
    lc: int
    dsp: int
    bram: int
    over: tuple             # ((resource, needed, available), ...) beyond the board
    fps: float              # inferences per second at the board's clock: clock / interval
    copies: int = 1         # copies of the whole design taking samples in turn
    act_memory: str = "auto"    # the recurrent engine's activations: auto (by size) or bram

    @property
    def fits(self):
        return not self.over

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["over"] = [list(o) for o in self.over]
        d["fps"] = round(self.fps, 1)
        return d


def _over(board, need):
    """((resource, needed, available), ...) beyond the board (logic: its planned share)."""
    from slimgen.boards.resource_model import planned_lc
    have = {k: board.totals.get(k) for k in need}
    if have["lc"]:
        have["lc"] = planned_lc(board)
    return tuple((k, need[k], have[k]) for k in ("lc", "dsp", "bram")
                 if have[k] and need[k] > have[k])


def _candidate(kind, int_model, config, board):
    """The :class:`Candidate` of ``config``'s design, and its network's own share of the
    predicted resources (what each more copy adds)."""
    from slimgen.boards.resource_model import predict_top
    net = kind.make_network(int_model, config)
    p = predict_top(int_model, board, network_factory=lambda: net)
    count = getattr(kind, "multipliers", None)
    estimate = getattr(kind, "cycles_estimate", None)
    entries = kind.layer_entries(net)
    multipliers = int(count(net)) if count else sum(e["lanes"] for e in entries)
    cycles = int(estimate(net)) if estimate else sum(e["cycles"] for e in entries)
    # one inference at a time on a shared array: the next starts when this one ends
    interval = getattr(net, "interval", cycles)     # a dataflow's copies: a mean, maybe
    interval = interval if isinstance(interval, float) else int(interval)   # fractional
    need = {"lc": p.lc, "dsp": p.dsp, "bram": p.bram}
    share = {k: sum(f[k] for name, f in p.modules.items()
                    if name == "bridge.network" or name.startswith("bridge.network."))
             for k in need}
    return Candidate(config.lanes, config.engine, multipliers, cycles, interval, p.lc, p.dsp,
                     p.bram, _over(board, need), board.clock_hz / interval,
                     act_memory=getattr(config, "act_memory", "auto")), share


def _copies(c, share, n_inputs, board):
    """``c`` on each count of :data:`COPIES` (up to the one past the board): the network's
    share of the resources times the copies (the UART bridge once), the interval their mean
    (:func:`slimgen.hw.dataflow.replicated_interval`)."""
    from slimgen.hw.dataflow import replicated_interval
    out = []
    for R in COPIES:
        need = {k: getattr(c, k) + (R - 1) * share[k] for k in share}
        interval = replicated_interval(c.interval, R, n_inputs, 1)
        over = _over(board, need)
        out.append(dataclasses.replace(c, copies=R, multipliers=c.multipliers * R,
                                       interval=interval, lc=need["lc"], dsp=need["dsp"],
                                       bram=need["bram"], over=over,
                                       fps=board.clock_hz / interval))
        if over or interval == n_inputs:      # more copies neither fit nor go faster
            break
    return out


def _engines(kind, int_model, config, board):
    """The engine settings worth weighing: with ``engine`` auto, the MLP's and the CNN's
    dense layers also on dense engines (the MLP then one engine per layer, a dataflow
    pipeline with several samples in flight, :class:`slimgen.hw.network.Network`); the CNN
    and the networks the compiler builds also as the compiler's dataflow pipeline (one
    stage per weighted layer, :func:`slimgen.hw.compiler.compile_dataflow`, ``--lanes``
    shared out among the stages). Pairs ``(engine, act_memory)``: with ``act_memory`` auto on a
    board with block RAM, the lanes' copies of the activations of the recurrent engine and the
    CNN's shared array also in block RAM (LUTs for block RAMs, which can make room for more
    copies)."""
    name = kind.__name__.rsplit(".", 1)[-1]
    if name == "net":
        from slimgen.models.net import hardware_kind
        name = hardware_kind(int_model)[0] or "compiler"
    engines = (config.engine,) if config.engine != "auto" else \
        {"mlp": ("auto", "dense"), "cnn": ("auto", "dense", "dataflow"),
         "compiler": ("auto", "dataflow")}.get(name, ("auto",))
    act = getattr(config, "act_memory", "auto")
    both = name in ("lstm", "cnn") and act == "auto" and board.totals.get("bram")
    return [(e, a) for e in engines
            for a in (("auto", "bram") if both and e != "dataflow" else (act,))]


def weigh(kind, int_model, config, board, *, log=None):
    """Every lane count of :data:`LANES` that ``kind``'s engine takes for ``config`` (only
    ``config.lanes`` with balanced sparsity), built and predicted: a list of
    :class:`Candidate`. :class:`PlanError` when none can be built."""
    from slimgen.settings import SettingError
    # more lanes than twice the DSP blocks would not fit in logic either
    every = [n for n in LANES if n <= 2 * max(1, board.totals.get("dsp") or 1)]
    candidates, seen, refused, variants = [], set(), [], []
    for engine, act_memory in _engines(kind, int_model, config, board):
        # balanced sparsity fixes the lanes of a shared array (one group per lane); the
        # dataflow pipeline's stages are the compiler's, which take any
        lanes_tried = every if config.method != "balanced" or engine == "dataflow" \
            else (config.lanes,)
        for lanes in lanes_tried:
            try:
                cfg = dataclasses.replace(config, lanes=lanes, engine=engine,
                                          act_memory=act_memory)
            except SettingError as e:     # more lanes than the network's layers can use
                refused.append(f"{lanes} lanes: {e}")
                continue
            try:
                c, share = _candidate(kind, int_model, cfg, board)
            except ValueError as e:       # an engine that cannot take this folding
                refused.append(f"{lanes} lanes: {e}")
                continue
            if c.fits and (config.objective == "throughput" or config.fps) \
                    and getattr(cfg, "weight_memory", "auto") != "spram":
                variants.extend(_copies(c, share, int_model.n_inputs, board))
            # the engine setting or the lanes changed nothing (the folded MLP's lanes are
            # capped at the board's DSP blocks): the first setting that builds it is kept
            same = (c.multipliers, c.cycles, c.interval, c.lc, c.dsp, c.bram)
            if same in seen:
                continue
            seen.add(same)
            candidates.append(c)
            if log:
                log(f"plan: {lanes} lanes, engine {engine}"
                    + (", activations in block RAM" if act_memory == "bram" else "")
                    + f": {c.cycles:,} cycles, interval "
                    f"{_cycles(c.interval)}, {c.lc:,} {board.lc_name}, {c.dsp} DSP, {c.bram} BRAM"
                    + ("" if c.fits else " (does not fit)"))
    if not candidates:
        raise PlanError(f"no lane count of {', '.join(map(str, every))} can be built "
                        f"for this network ({refused[0]})")
    for c in variants:
        same = (c.multipliers, c.cycles, c.interval, c.lc, c.dsp, c.bram)
        if same not in seen:
            seen.add(same)
            candidates.append(c)
    return candidates


def _cycles(v):
    """A cycle count for a message: a mean over copies to two decimals (112.08, 396.5)."""
    return f"{v:,}" if isinstance(v, int) else f"{v:,.2f}".rstrip("0").rstrip(".")


def _lanes_words(n):
    return f"{n} lane" + ("s" if n != 1 else "")


def pick(candidates, config, board):
    """``(chosen, why)``: the :class:`Candidate` ``config.objective`` picks among those that
    fit ``board`` and reach ``config.fps`` (module docstring), and one sentence saying why.
    :class:`PlanError` when none fits or reaches the rate."""
    from slimgen.boards.resource_model import LC_SHARE
    objective, fps = config.objective, config.fps
    fitting = [c for c in candidates if c.fits]
    if not fitting:
        small = min(candidates, key=lambda c: c.lc)
        names = {"lc": f"{board.lc_name} of the", "dsp": "DSP blocks of", "bram": "block RAMs of"}
        share = LC_SHARE[board.family]
        planned = f" planned ({share * 100:.0f} % of the board's)"
        need = ", ".join(f"{n:,} {names[k]} {a:,}" + (planned if k == "lc" else "")
                         for k, n, a in small.over)
        raise PlanError(f"no design fits the {board.name}: the smallest "
                        f"({_lanes_words(small.lanes)}) needs {need}; take a bigger board or "
                        f"a smaller network")
    meeting = [c for c in fitting if fps is None or c.fps >= fps]
    if not meeting:
        best = max(fitting, key=lambda c: c.fps)
        raise PlanError(f"fps {fps:,.10g}: the fastest design that fits the {board.name} gives "
                        f"{best.fps:,.0f} inferences/s ({_lanes_words(best.lanes)}, an interval of "
                        f"{_cycles(best.interval)} cycles at {board.clock_hz / 1e6:g} MHz); ask for at "
                        f"most that, or a bigger board")
    key = {"latency": lambda c: (c.cycles, c.lc),
           "throughput": lambda c: (c.interval, c.cycles, c.lc),
           "area": lambda c: (c.lc, c.dsp, c.bram, c.cycles)}[objective]
    chosen = min(meeting, key=key)
    figure = {"latency": f"{chosen.cycles:,} cycles per inference",
              "throughput": f"{chosen.fps:,.0f} inferences/s (an interval of "
                            f"{_cycles(chosen.interval)} cycles)",
              "area": f"{chosen.lc:,} {board.lc_name}"}[objective]
    why = (f"{objective}: {_lanes_words(chosen.lanes)} ({chosen.multipliers} multipliers"
           + (", one dense engine per layer" if chosen.engine == "dense" else "")
           + (f", {chosen.copies} copies of the design taking samples in turn"
              if chosen.copies > 1 else "")
           + (", a dataflow pipeline of one stage per weighted layer"
              if chosen.engine == "dataflow" else "")
           + (", each lane's activations in a block RAM" if chosen.act_memory == "bram" else "")
           + f"), {figure}, "
           + (f"the best of {len(meeting)} designs that fit the {board.name}" if len(meeting) > 1
              else f"the only design that fits the {board.name}")
           + (f" at {fps:,.10g} inferences/s or more" if fps else ""))
    if config.method == "balanced" and chosen.engine != "dataflow":
        why += f" (balanced sparsity fixes the lanes at {config.lanes}: one group per lane)"
    return chosen, why


def plan_lanes(kind, int_model, config, board, *, log=None):
    """``(chosen, candidates, why)``: :func:`weigh` then :func:`pick`. A chosen design of
    several copies is built and predicted whole (the copies' distributor and collector are
    not in the one copy's share) and, if that does not fit, replaced by what it predicts and
    the choice made again."""
    from slimgen.boards.resource_model import planned_lc
    candidates = weigh(kind, int_model, config, board, log=log)
    while True:
        chosen, why = pick(candidates, config, board)
        if chosen.copies == 1:
            return chosen, candidates, why
        whole = _replicated(kind, int_model, config, chosen, board)
        candidates[candidates.index(chosen)] = whole
        if whole.fits:
            return whole, candidates, why
        if log:
            log(f"plan: {chosen.copies} copies of {_lanes_words(chosen.lanes)} predicted whole: "
                f"{whole.lc:,} {board.lc_name}, over the {planned_lc(board):,} planned; "
                f"choosing again")


def _replicated(kind, int_model, config, chosen, board):
    """``chosen`` (copies of a design) with the resources its whole top is predicted to use."""
    from slimgen.boards.resource_model import predict_top
    from slimgen.models import make_hardware
    cfg = dataclasses.replace(config, lanes=chosen.lanes, engine=chosen.engine,
                              copies=chosen.copies, act_memory=chosen.act_memory)
    net = make_hardware(kind, int_model, cfg)
    p = predict_top(int_model, board, network_factory=lambda: net)
    need = {"lc": p.lc, "dsp": p.dsp, "bram": p.bram}
    return dataclasses.replace(chosen, lc=p.lc, dsp=p.dsp, bram=p.bram, over=_over(board, need))


def planned_config(config, plan):
    """``config`` with the lanes the planner chose (``plan``: the generate stage's
    ``plan.json``, which holds them under ``planner``); ``config`` itself without an
    objective."""
    if config.objective is None:
        return config
    return dataclasses.replace(config, lanes=int(plan["planner"]["lanes"]),
                               engine=plan["planner"]["engine"],
                               copies=int(plan["planner"].get("copies", 1)),
                               act_memory=plan["planner"].get("act_memory", "auto"))
