"""The hardware compiler: any feed-forward integer network onto the shared-array engine.

``compile_network(int_net, lanes=P)`` builds the layer programs (:mod:`slimgen.hw.program`),
checks that the engine can run them and gives the :class:`slimgen.hw.engine.Engine` with a
plain-Python summary per layer (:func:`summary`): the engine and algorithm, taps, cycles,
useful multiplications and their bound ``⌈multiplications / P⌉``.
"""

import numpy as np

from .program import (MAX_OPERAND_BITS, build_programs, layer_cycles, layer_mults,
                      network_cycles)

__all__ = ["compile_network", "summary", "check_programs"]


def check_programs(programs, int_net):
    """``ValueError`` when an operand is wider than one multiplier takes."""
    from .engine import _Tables
    t = _Tables(programs, programs[0].lanes, int_net.input_bits)
    if t.act_bits > MAX_OPERAND_BITS:
        widest = max(programs[:-1], key=lambda p: p.out_bits)   # the logits stay in registers
        raise ValueError(f"Activations need {t.act_bits} signed bits (layer {widest.source}, "
                         f"{widest.name}); the multipliers take at most {MAX_OPERAND_BITS}")
    if t.weight_bits > MAX_OPERAND_BITS:
        raise ValueError(f"Weights need {t.weight_bits} signed bits; the multipliers take at "
                         f"most {MAX_OPERAND_BITS}")


def summary(programs, int_net):
    """Per layer: ``name``, ``kind``, ``engine``, ``algorithm`` (``"direct"``), ``shape``,
    ``taps`` (tap-table entries per output position), ``cycles``, ``mults_per_inference``
    (useful products), ``bound`` (⌈mults / lanes⌉), and the entries the flow's
    ``generate.json`` shares with the other engines."""
    out = []
    for p in programs:
        P = p.lanes
        mults = layer_mults(p)
        W = p.weights
        mac = p.op == "mac"
        kind = "pool" if not mac else ("dense" if p.name.startswith("dense") else "conv")
        nonzeros = int(np.count_nonzero(W)) if mac else 0
        size = int(np.prod(p.kernel_shape)) if mac else 0
        out.append({
            "name": p.name, "kind": kind,
            "engine": "direct, shared array" if mac else f"{p.op} pool, shared array",
            "algorithm": "direct" if mac else p.op,
            "shape": [int(v) for v in p.kernel_shape], "weight_bits": int(p.weight_bits) if mac else None,
            "sparsity": float(1 - nonzeros / size) if mac else None, "nonzeros": nonzeros,
            "nonzeros_per_group": [int(np.count_nonzero(W[:, lane])) for lane in range(P)]
            if mac else None,
            "taps": sum(len(taps) for _, _, taps in p.groups) if mac else
            len(p.groups) * len(p.groups[0][2]),
            "lanes": int(P), "outputs": p.n_out,
            "mults_direct": int(size // p.out_shape[2]) if mac else 0,
            "mults": float(mults / p.n_out), "mults_per_inference": int(mults),
            "cycles": int(layer_cycles(p)), "bound": int(-(-mults // P)),
        })
    return out


def compile_network(int_net, *, lanes, mutation=None):
    """The :class:`~slimgen.hw.engine.Engine` of an integer network on ``lanes`` lanes, with
    ``.programs``, ``.summary`` (:func:`summary`), ``.cycles`` (from the first input to the
    result, :func:`slimgen.hw.program.network_cycles`) and ``.bound`` (all useful products
    over the lanes). ``mutation``: a bug planted on purpose (tests only). One ``ValueError``
    says what cannot be built."""
    from .engine import Engine
    programs = build_programs(int_net, lanes=lanes, mutation=mutation)
    check_programs(programs, int_net)
    engine = Engine(programs, n_inputs=int_net.n_inputs, input_bits=int_net.input_bits,
                    n_classes=int_net.n_classes, logit_bits=int_net.logit_bits)
    engine.summary = summary(programs, int_net)
    engine.cycles = network_cycles(programs, int_net.n_inputs, int_net.n_classes)
    mults = sum(e["mults_per_inference"] for e in engine.summary)
    engine.mults = mults
    engine.bound = -(-mults // lanes)
    return engine
