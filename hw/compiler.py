"""The hardware compiler: any feed-forward integer network onto the shared-array engine.

``compile_network(int_net, lanes=P)`` chooses each convolution's algorithm (:func:`choose`),
builds the layer programs (:mod:`slimgen.hw.program`), checks that the engine can run them
and gives the :class:`slimgen.hw.engine.Engine` with a plain-Python summary per layer
(:func:`summary`): the engine and algorithm and why, taps, cycles, useful multiplications
and their bound ``⌈multiplications / P⌉``.

The cost model. A convolution of stride 1 with a kernel of r ≥ 3 taps (r × r in 2-D) has
the candidates direct and the Winograd/CRT algorithms of :data:`CANDIDATES` for its r (those
with the same matrices counted once; in 2-D each nested as F(m×m, r×r),
:func:`slimgen.hw.program.wino_2d`). Each is built as the layer's program and measured:

- ``cycles``: the layer's own cycles on the P lanes, its taps with every input present
  (:func:`slimgen.hw.program.layer_cycles`; in the network the layers overlap the load,
  each other's drain and the send, :func:`~slimgen.hw.program.network_cycles`);
- ``transform_adders``: the adders of the input transform BT and the output transform AT as
  shift-add networks (:class:`slimgen.hw.lib.transform.TransformUnit`), and of the product
  by q⁻¹ when the scale is not a power of two;
- ``operand_bits`` (V = BT d, a multiplier operand), ``weight_bits`` (U = G g in the weight
  memory) and ``acc_bits`` (the α running sums per lane, the output transform).

A candidate whose operand or weight is wider than a multiplier takes
(:data:`~slimgen.hw.program.MAX_OPERAND_BITS`), or with more than :data:`MAX_POINTS` running
sums per lane, is rejected. Of the others the one with the
fewest cycles wins (ties: fewer transform adders), but a Winograd algorithm must save at least
:data:`MIN_SAVING` of the direct cycles: its transforms and its α accumulators per lane are
logic the direct layer does not need.
"""

import numpy as np

from slimgen.sw.fixed import signed_bits
from slimgen.sw.winograd import csd_digits

from .lib.const_mul import ShiftAddNetwork
from .program import (MAX_OPERAND_BITS, build_programs, fuse_pool, layer_cycles, layer_mults,
                      network_cycles, wino_2d, wino_algorithm, wino_program)

__all__ = ["compile_network", "compile_dataflow", "dataflow_lanes", "summary", "check_programs", "choose", "options", "CANDIDATES",
           "MIN_SAVING", "MAX_POINTS"]

# (m, moduli) of the Winograd/CRT candidates F(m, r) for every kernel r ≥ 3.
CANDIDATES = ((2, "toomcook"), (4, "toomcook"), (2, "crt"), (4, "crt"))
# The fraction of the direct cycles a Winograd algorithm must save to be chosen.
MIN_SAVING = 0.05
# The most running sums (α, α² in 2-D) per lane: each is a register and so is its copy in the
# drain's bank, 2·α·P·acc_bits flip-flops (F(2×2, 3×3) on 4 lanes of 20 bits: 2,560, half
# the iCE40UP5K's logic cells; F(4×4, 3×3) would need 36 per lane). Every 1-D candidate of
# the kernels a description takes (1 to 7 taps) stays below it.
MAX_POINTS = 16


def check_programs(programs, int_net):
    """``ValueError`` when an operand is wider than one multiplier takes."""
    from .engine import _Tables
    t = _Tables(programs, programs[0].lanes, (0, (1 << int_net.input_bits) - 1))
    if t.act_bits > MAX_OPERAND_BITS:
        widest = max(programs[:-1], key=lambda p: p.out_bits)   # the logits stay in registers
        raise ValueError(f"Activations need {t.act_bits} signed bits (layer {widest.source}, "
                         f"{widest.name}); the multipliers take at most {MAX_OPERAND_BITS}")
    if t.opd_bits > MAX_OPERAND_BITS:
        widest = max(programs, key=lambda p: p.v_bits)
        raise ValueError(f"Transformed inputs need {t.opd_bits} signed bits (layer "
                         f"{widest.source}, {widest.name}); the multipliers take at most "
                         f"{MAX_OPERAND_BITS}")
    if t.weight_bits > MAX_OPERAND_BITS:
        raise ValueError(f"Weights need {t.weight_bits} signed bits; the multipliers take at "
                         f"most {MAX_OPERAND_BITS}")


# ------------------------------------------------------------------ the cost model

def _transform_adders(wino, y_bits):
    """Adders of BT and AT as the engine's :class:`~slimgen.hw.lib.transform.TransformUnit`
    builds them (the same shift-add networks; wiring shifts not counted), and of the product
    by q⁻¹ modulo 2^y_bits (one per canonical signed digit after the first)."""
    adders = 0
    for M in (wino.BT, wino.AT):
        net = ShiftAddNetwork(len(M[0]))
        net.apply(M, list(range(len(M[0]))), share=True)
        adders += sum(op is not None and op[0] != "shl" for op in net.ops)
    if wino.q != 1:
        adders += len(csd_digits(pow(wino.q, -1, 1 << y_bits))) - 1
    return adders


def _figures(p):
    """One candidate's figures (the module docstring's cost model); the transform adders of
    an algorithm with more than :data:`MAX_POINTS` points are not counted (None): it is
    rejected, and sharing the subexpressions of its large matrices takes minutes."""
    weights = p.weights
    w_bits = signed_bits(int(weights.min(initial=0)), int(weights.max(initial=0)))
    adders = 0 if not p.wino else None if p.wino.alpha > MAX_POINTS else \
        _transform_adders(p.wino, p.y_bits)
    return {"algorithm": p.wino.name if p.wino else "direct", "cycles": int(layer_cycles(p)),
            "mults_per_inference": int(layer_mults(p)),
            "transform_adders": adders,
            "operand_bits": int(p.v_bits) if p.wino else None, "weight_bits": int(w_bits),
            "acc_bits": int(p.acc_bits), "accumulators_per_lane": p.wino.alpha if p.wino else 1,
            "rejected": None}


def _candidates(r, dims):
    """The distinct Winograd/CRT algorithms of :data:`CANDIDATES` for kernel r (r × r when
    ``dims`` is 2)."""
    seen, out = set(), []
    for m, moduli in CANDIDATES:
        wino = wino_algorithm(m, r, moduli)
        wino = wino_2d(wino) if dims == 2 else wino
        key = (wino.BT, wino.AT, wino.G)
        if key not in seen:
            seen.add(key)
            out.append(wino)
    return out


def _eligible(layer, last):
    """None when a record may run on Winograd, else why not."""
    if layer.kind != "conv":
        return f"{layer.kind} layer: no sliding window"
    if last:
        return "the last layer: its logits go to the argmax in class order"
    if len(set(layer.W.shape[2:])) != 1:
        return f"a {'×'.join(map(str, layer.W.shape[2:]))} kernel: Winograd takes square ones"
    if layer.stride != 1:
        return f"stride {layer.stride}: Winograd needs stride 1"
    if layer.kernel < 3:
        return f"kernel {layer.kernel}: Winograd pays from 3 taps"
    return None


def choose(int_net, *, lanes, force=None):
    """Each convolution's algorithm by the cost model (module docstring): ``(algorithms,
    notes)`` with ``algorithms`` ``{record index: Wino}`` for :func:`build_programs` and
    ``notes`` ``{record index: (why, candidates)}`` for every weighted record.

    ``force`` ``{record index: (algorithm name, why)}`` overrides the cost model's choice
    for those layers (a plan that fits a board, :func:`options`); the name must be
    ``"direct"`` or one of the layer's candidates that is not rejected; a layer forced onto the
    cost model's own choice keeps its reason. A force on a layer that runs direct only, or on
    no weighted layer, is a ``ValueError``."""
    force = dict(force or {})
    direct = build_programs(int_net, lanes=lanes)
    algorithms, notes = {}, {}
    in_range = (0, (1 << int_net.input_bits) - 1)
    for i, p in enumerate(direct):
        layer = int_net.layers[p.source]
        if p.op != "mac":
            in_range = (p.lo, p.hi)
            continue
        # a max pool next: free in the drain of a Winograd layer whose tile is its window
        after = direct[i + 1] if i + 1 < len(direct) and direct[i + 1].op == "max" else None
        pool_cycles = layer_cycles(after) if after else 0
        reason = _eligible(layer, p is direct[-1])
        if reason:
            if force.pop(p.source, ("direct",))[0] != "direct":
                raise ValueError(f"Layer {p.source} ({p.name}) runs direct only: {reason}")
            notes[p.source] = (f"direct: {reason}", [])
            in_range = (p.lo, p.hi)
            continue
        pooled = f" + {pool_cycles} for the max pool after it" if after else ""
        base = _figures(p)
        base["with_pool"] = base["cycles"] + pool_cycles
        cands = [base]
        for wino in _candidates(layer.kernel, layer.dims):
            q = wino_program(p.source, layer, p.in_shape, lanes, None, wino, in_range)
            fused = after and fuse_pool(q, after.source, int_net.layers[after.source])
            f = _figures(fused or q)
            f["pool_fused"] = bool(fused)
            f["with_pool"] = f["cycles"] + (0 if fused else pool_cycles)
            if f["operand_bits"] > MAX_OPERAND_BITS:
                f["rejected"] = (f"V = BT d needs {f['operand_bits']} signed bits; the "
                                 f"multipliers take at most {MAX_OPERAND_BITS}")
            elif f["weight_bits"] > MAX_OPERAND_BITS:
                f["rejected"] = (f"U = G g needs {f['weight_bits']} signed bits; the "
                                 f"multipliers take at most {MAX_OPERAND_BITS}")
            elif wino.alpha > MAX_POINTS:
                f["rejected"] = (f"{wino.alpha} running sums per lane (at most {MAX_POINTS}, "
                                 f"registers with a bank copy each)")
            elif q.y_bits > 31:
                f["rejected"] = f"the exact sums need {q.y_bits} bits (at most 31)"
            elif f["with_pool"] > (1 - MIN_SAVING) * base["with_pool"]:
                f["rejected"] = (f"{f['with_pool']} cycles, not {MIN_SAVING:.0%} fewer than "
                                 f"the direct {base['cycles']}" + pooled)
            cands.append((f, wino))
        ok = [(f, w) for f, w in cands[1:] if f["rejected"] is None]
        figures = [base] + [f for f, _ in cands[1:]]
        wino = None
        if ok:
            f, wino = min(ok, key=lambda c: (c[0]["with_pool"], c[0]["transform_adders"]))
            saving = 1 - f["with_pool"] / base["with_pool"]
            why = (f"{wino.name}: {f['with_pool']} cycles against {base['cycles']} direct"
                   f"{pooled} ({saving:.0%} fewer), the fewest of {len(figures)} candidates, "
                   f"{f['transform_adders']} transform adders, {wino.alpha} accumulators of "
                   f"{f['acc_bits']} bits per lane"
                   + (f", the max pool in its drain" if f["pool_fused"] else ""))
        else:
            why = (f"direct: {base['cycles']} cycles{pooled}; no Winograd candidate saves "
                   f"{MIN_SAVING:.0%} within the multipliers' {MAX_OPERAND_BITS} bits")
        best = wino.name if wino else "direct"
        if p.source in force and force[p.source][0] != best:
            name, forced_why = force.pop(p.source)
            if name == "direct":
                wino = None
            else:
                picked = [w for f, w in ok if w.name == name]
                if not picked:
                    rejected = [f["rejected"] for f, w in cands[1:] if w.name == name]
                    raise ValueError(
                        f"Layer {p.source} ({p.name}) cannot run on {name}: "
                        + (rejected[0] if rejected else "its candidates are "
                           + ", ".join(["direct"] + [w.name for _, w in ok])))
                wino = picked[0]
            why = forced_why or f"{name}: forced (the cost model's choice is {best})"
        force.pop(p.source, None)         # the cost model's own choice keeps its reason
        if wino is not None:
            algorithms[p.source] = wino
        notes[p.source] = (why, figures)
        in_range = (p.lo, p.hi)
    if force:
        raise ValueError(f"No weighted layer at record {', '.join(map(str, sorted(force)))} "
                         f"to force an algorithm on")
    return algorithms, notes


def options(notes):
    """Per convolution that has a Winograd candidate: ``{record index: [(algorithm name,
    cycles), ...]}`` (a max pool after it counted, unless it runs in the drain), direct first, then the candidates not rejected (from :func:`choose`'s
    ``notes``)."""
    out = {}
    for source, (_, figures) in notes.items():
        ok = [(f["algorithm"], f["with_pool"]) for f in figures[1:] if f["rejected"] is None]
        if ok:
            out[source] = [(figures[0]["algorithm"], figures[0]["with_pool"])] + ok
    return out


# ------------------------------------------------------------------ the summary

def summary(programs, int_net, notes=None):
    """Per layer: ``name``, ``kind``, ``engine``, ``algorithm`` (``"direct"``, a Winograd
    algorithm's name such as ``"F(4, 3) CRT"``, or the pool's op), ``why`` and ``candidates``
    (:func:`choose`'s notes), ``shape``, ``taps`` (tap-table entries per output position, per
    tile for Winograd), ``cycles``, ``mults_per_inference`` (useful products), ``bound``
    (⌈mults / lanes⌉), and the entries the flow's ``generate.json`` shares with the other
    engines."""
    notes = notes or {}
    out = []
    for p in programs:
        P = p.lanes
        mults = layer_mults(p)
        W = p.weights
        mac = p.op in ("mac", "wino")
        kind = "pool" if not mac else ("dense" if p.name.startswith("dense") else "conv")
        nonzeros = int(np.count_nonzero(int_net.layers[p.source].W)) if mac else 0
        size = int(np.prod(p.kernel_shape)) if mac else 0
        algorithm = p.wino.name if p.wino else ("direct" if mac else p.op)
        # a pooled tile's outputs are computed, then pooled (fuse_pool)
        outputs = p.n_out * (p.outs if p.pooled else 1)
        engine = (f"winograd {algorithm}, shared array" if p.wino else
                  "direct, shared array" if mac else f"{p.op} pool, shared array")
        why, candidates = notes.get(p.source, ("direct" if mac else f"{p.op} pool", []))
        out.append({
            "name": p.name, "kind": kind, "engine": engine, "algorithm": algorithm,
            "why": why, "candidates": candidates,
            "shape": [int(v) for v in p.kernel_shape],
            "weight_bits": int(p.weight_bits) if mac else None,
            "sparsity": float(1 - nonzeros / size) if mac else None,
            "nonzeros": nonzeros,
            "nonzeros_per_group": [int(np.count_nonzero(W[:, lane])) for lane in range(P)]
            if mac else None,
            "taps": sum(len(taps) for _, _, taps in p.groups) if mac else
            len(p.groups) * len(p.groups[0][2]),
            "lanes": int(P), "outputs": outputs,
            "mults_direct": int(size // p.out_shape[2]) if mac else 0,
            "mults": float(mults / outputs), "mults_per_inference": int(mults),
            "cycles": int(layer_cycles(p)), "bound": int(-(-mults // P)),
        })
        if p.pooled:            # the pool in its drain: no cycle, no product of its own
            out.append({
                "name": f"maxpool{p.fused_pool}", "kind": "pool",
                "engine": f"max pool in {p.name}'s drain, shared array", "algorithm": "max",
                "why": f"its window is {p.name}'s {p.wino.name} output tile: each lane's "
                       f"running max over the tile, one word written",
                "candidates": [], "shape": [p.mh, p.m], "weight_bits": None,
                "sparsity": None, "nonzeros": 0, "nonzeros_per_group": None, "taps": 0,
                "lanes": int(P), "outputs": p.n_out, "mults_direct": 0, "mults": 0.0,
                "mults_per_inference": 0, "cycles": 0, "bound": 0})
    return out


def compile_network(int_net, *, lanes, mutation=None, winograd=True, force=None,
                    weights="bram"):
    """The :class:`~slimgen.hw.engine.Engine` of an integer network on ``lanes`` lanes, with
    ``.programs``, ``.summary`` (:func:`summary`), ``.cycles`` (from the first input to the
    result, :func:`slimgen.hw.program.network_cycles`), ``.interval`` (between results with
    samples back to back: ``cycles − 1``, the next sample's first input taken as the result
    goes) and ``.bound`` (all useful products
    over the lanes). ``winograd``: let the cost model (:func:`choose`) put convolutions on
    Winograd/CRT algorithms; False runs every one direct; ``force`` fixes some layers'
    algorithms (:func:`choose`); ``weights``: the weight rows in ``"bram"`` or the UP5K's
    ``"spram"`` (:class:`~slimgen.hw.engine.Engine`). ``mutation``: a bug planted on purpose
    (tests only). One ``ValueError`` says what cannot be built."""
    from .engine import Engine
    algorithms, notes = choose(int_net, lanes=lanes, force=force) if winograd else ({}, {})
    programs = build_programs(int_net, lanes=lanes, mutation=mutation, algorithms=algorithms)
    check_programs(programs, int_net)
    engine = Engine(programs, n_inputs=int_net.n_inputs, input_bits=int_net.input_bits,
                    n_classes=int_net.n_classes, logit_bits=int_net.logit_bits,
                    weights=weights)
    engine.summary = summary(programs, int_net, notes)
    engine.cycles = network_cycles(programs, int_net.n_inputs)
    # the loader takes the next sample's first input on the cycle after the last logit, the
    # cycle the result goes: the samples overlap by that one cycle
    engine.interval = engine.cycles - 1
    mults = sum(e["mults_per_inference"] for e in engine.summary)
    engine.mults = mults
    engine.bound = -(-mults // lanes)
    return engine


def _stage(int_net, bounds, k, lanes, winograd, mutation=None):
    """Stage k's programs on ``lanes`` lanes and the cost model's notes (its convolutions
    chosen as the shared array's, but the last layer before another stage direct, unless a
    pool in its drain puts its words in address order)."""
    from .dataflow import stage_bounds
    stop = bounds[k][1]
    algorithms, notes = {}, {}
    if winograd:
        tail = build_programs(int_net, lanes=lanes)[stop - 1]
        force = {}
        if k < len(bounds) - 1 and tail.op == "mac" \
                and not _eligible(int_net.layers[tail.source], False):
            force[tail.source] = ("direct", f"direct: it ends stage {k}, whose outputs go to "
                                            f"stage {k + 1} in address order")
        algorithms, notes = choose(int_net, lanes=lanes, force=force)
    programs = build_programs(int_net, lanes=lanes, algorithms=algorithms, mutation=mutation)
    check_programs(programs, int_net)
    start, stop = stage_bounds(programs)[k]     # a pool in a Winograd drain is no program
    return programs[start:stop], notes


#: The logic of one more copy of a stage's engine besides its lanes, in lanes' worth (its
#: walker, drain, requantizer, buffers and queue; the resource model on the digits CNN on the
#: ECP5: about 2,600 LUTs an engine, 600 a lane).
COPY_LANES = 4


def dataflow_lanes(int_net, multipliers, *, winograd=True):
    """``(lanes, copies)`` per stage of :func:`compile_dataflow`: ``multipliers`` in all
    (each stage's lanes times its copies), given out one step at a time to the stage with
    the longest interval (the pipeline's), as one to four more lanes or one more copy
    (:class:`~slimgen.hw.dataflow.Replicas`), whichever shortens it most per logic (a copy
    counting :data:`COPY_LANES` lanes more than its own);
    when no step shortens it within what is left, the rest stay unused. ``ValueError`` when
    there are fewer multipliers than stages."""
    from .dataflow import replicated_interval, stage_bounds, stage_interval
    bounds = stage_bounds(build_programs(int_net, lanes=1))
    if isinstance(multipliers, bool) or not isinstance(multipliers, int) \
            or multipliers < len(bounds):
        raise ValueError(f"A dataflow pipeline of {len(bounds)} stages (one per weighted "
                         f"layer) needs at least {len(bounds)} lanes, not {multipliers!r}")
    cache, last = {}, len(bounds) - 1

    def interval(k, P, R):
        if (k, P) not in cache:
            programs = _stage(int_net, bounds, k, P, winograd)[0]
            cache[k, P] = (stage_interval(programs), programs)
        one, programs = cache[k, P]
        return replicated_interval(one, R, programs[0].n_in,
                                   1 if k == last else programs[-1].n_out)
    lanes, copies = [1] * len(bounds), [1] * len(bounds)
    while True:
        left = multipliers - sum(P * R for P, R in zip(lanes, copies))
        k = max(range(len(bounds)), key=lambda k: (interval(k, lanes[k], copies[k]), -k))
        now = interval(k, lanes[k], copies[k])
        # (lanes, copies), the multipliers the step takes, and its logic in lanes' worth
        steps = [((lanes[k] + d, copies[k]), d * copies[k], d * copies[k])
                 for d in range(1, 5)] \
            + [((lanes[k], copies[k] + 1), lanes[k], lanes[k] + COPY_LANES)]
        gains = [((now - interval(k, P, R)) / logic, -logic, P, R)
                 for (P, R), cost, logic in steps if cost <= left and interval(k, P, R) < now]
        if not gains:
            return lanes, copies
        _, _, lanes[k], copies[k] = max(gains)


def compile_dataflow(int_net, *, lanes, copies=None, winograd=True, queues=None,
                     mutation=None):
    """The :class:`~slimgen.hw.dataflow.Dataflow` pipeline of an integer network: one stage
    per weighted layer with the pools after it (:func:`~slimgen.hw.dataflow.stage_bounds`),
    stage k on ``lanes[k]`` lanes (one number: every stage's) and ``copies[k]`` copies of
    its engine taking samples in turn (default one; :func:`dataflow_lanes` shares out a
    number of multipliers). Each stage's convolutions are chosen by the cost model on
    its own lanes (:func:`choose`), but the last layer of a stage before another runs direct
    (its outputs go on in address order) unless a max pool in its drain puts them in it; ``.summary`` gives each layer's stage, ``.cycles``
    (an idle pipeline, first input to result), ``.interval`` (the slowest stage's), ``.mults``
    and ``.bound`` (every useful product over every lane, a sample at a time). ``queues``:
    each stage's queue depth but the last's (:class:`~slimgen.hw.dataflow.Dataflow`);
    ``mutation``: a bug planted on purpose (tests only). One ``ValueError`` says what cannot
    be built."""
    from .dataflow import Dataflow, stage_bounds
    bounds = stage_bounds(build_programs(int_net, lanes=1))
    lanes = [lanes] * len(bounds) if isinstance(lanes, int) and not isinstance(lanes, bool) \
        else list(lanes)
    if len(lanes) != len(bounds):
        raise ValueError(f"Give one lane count, or one per stage ({len(bounds)}: one per "
                         f"weighted layer), not {len(lanes)}")
    stages, entries = [], []
    for k, P in enumerate(lanes):
        programs, notes = _stage(int_net, bounds, k, P, winograd, mutation)
        stages.append(programs)
        for e in summary(programs, int_net, notes):
            e["engine"] = e["engine"].replace("shared array", f"dataflow stage {k}")
            e["stage"], e["module"] = k, f"stage{k}"    # its engine, Dataflow's submodule
            entries.append(e)
    hw = Dataflow(stages, n_inputs=int_net.n_inputs, input_bits=int_net.input_bits,
                  n_classes=int_net.n_classes, logit_bits=int_net.logit_bits, queues=queues,
                  replicas=copies)
    for e in entries:
        e["copies"] = hw.replicas[e["stage"]]
    hw.summary = entries
    hw.mults = sum(e["mults_per_inference"] for e in entries)
    hw.bound = -(-hw.mults // hw.multipliers)
    return hw
