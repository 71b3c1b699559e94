"""The plan of a generated design, before synthesis: per layer and in all, for one board.

:func:`make_plan` joins the generate stage's per-layer entries (engine, lanes, algorithm when
the engine chose one, cycles) with the resource model's prediction of the board top
(:mod:`slimgen.boards.resource_model`): a layer that is a module of its own in the network
(``layer0`` of the MLP's per-layer engines, ...) gets its own logic cells / LUTs, DSP blocks
and block RAMs; layers that share one array (the compiler's engine, which the folded MLP is, the
CNN, the LSTM engine) are marked ``"shared"`` and the shared hardware is one row of its own, with
the board top's UART bridge; the layers of a dataflow pipeline's stage share its engine (the
stage's first layer holds its figures, the pools after it say shared). The totals are the
whole design's. :func:`format_plan` is the
table ``slimgen generate`` prints.
"""

from __future__ import annotations

__all__ = ["SHARED", "make_plan", "format_plan"]

SHARED = "shared"

_LAYER_KEYS = ("name", "kind", "engine", "stage", "lanes", "algorithm", "why", "candidates",
               "cycles")


def _layer_module(name, modules):
    """The module key of the layer called ``name`` (``bridge.network.<name>``), or None."""
    key = f"bridge.network.{name}"
    return key if key in modules else None


def make_plan(layers, prediction, *, board, cycles, interval=None, cycles_lower_bound=None,
              multipliers=None):
    """The plan (a dict, what ``plan.json`` holds).

    Parameters
    ----------
    layers : list of dict
        The generate stage's layer entries (``name``, ``engine``, ``lanes``, ``cycles``, ...).
    prediction : Prediction
        :func:`slimgen.boards.resource_model.predict` of the board top.
    board : Board
        The board it is predicted for.
    cycles : int
        Cycles of one inference, from the schedule (``cycles_estimate``).
    interval : int, optional
        Cycles between results with inferences back to back, when the design is a pipeline
        of engines that says it exactly (``interval_estimate``); otherwise one inference at
        a time bounds it by ``cycles`` (``interval_at_most``).
    """
    modules = prediction.modules
    # a module's figures include its submodules' (bridge.network.layer0.core); a layer's
    # module is its own (``name``) or its entry's ``module`` (a dataflow stage's engine,
    # which the layers of the stage share: the first of them holds its figures)
    per_key = {}
    for key, figures in modules.items():
        for name in {e.get("module") or e.get("name") for e in layers}:
            own = _layer_module(name, modules) if name else None
            if own and (key == own or key.startswith(own + ".")):
                agg = per_key.setdefault(own, {"lc": 0, "dsp": 0, "bram": 0})
                for k in agg:
                    agg[k] += figures[k]
    rows, attributed = [], {"lc": 0, "dsp": 0, "bram": 0}
    taken = set()
    for e in layers:
        row = {k: e[k] for k in _LAYER_KEYS if k in e}
        own = _layer_module(e.get("module") or e.get("name"), modules)
        if own and own in per_key and own not in taken:
            taken.add(own)
            for k in attributed:
                row[f"{k}_estimate"] = per_key[own][k]
                attributed[k] += per_key[own][k]
        else:
            row.update(lc_estimate=SHARED, dsp_estimate=SHARED, bram_estimate=SHARED)
        rows.append(row)
    totals = {"lc_estimate": prediction.lc, "dsp_estimate": prediction.dsp,
              "bram_estimate": prediction.bram, "cycles_estimate": int(cycles),
              # one inference at a time: the next starts at the latest when this one ends
              "interval_at_most": int(cycles)}
    if interval is not None:
        totals["interval_estimate"] = interval if isinstance(interval, float) else int(interval)
    if cycles_lower_bound is not None:
        totals["cycles_lower_bound"] = int(cycles_lower_bound)
    if multipliers is not None:
        totals["multipliers"] = int(multipliers)
    shared = {f"{k}_estimate": (prediction.lc if k == "lc" else getattr(prediction, k))
              - attributed[k] for k in attributed}
    return {
        "board": board.name, "family": board.family, "lc_name": board.lc_name,
        "available": {"lc": board.totals.get("lc"), "dsp": board.totals.get("dsp"),
                      "bram": board.totals.get("bram")},
        "layers": rows,
        # what no single layer owns: shared arrays, control, argmax, the UART bridge
        "shared": shared,
        "totals": totals,
        "structure": dict(prediction.counts),
    }


def format_plan(plan):
    """The plan as a short text table (one line per layer, the shared row, the totals)."""
    head = f"{'layer':<10} {'engine':<34} {'lanes':>5} {'cycles':>7} {'LC':>7} {'DSP':>7} " \
           f"{'BRAM':>7}"
    lines = [f"plan for {plan['board']} ({plan['lc_name']}, DSP blocks, block RAMs "
             f"predicted before synthesis)", head]
    for r in plan["layers"]:
        lines.append(f"{str(r.get('name', '')):<10} {str(r.get('engine', ''))[:34]:<34} "
                     f"{r.get('lanes', ''):>5} {r.get('cycles', ''):>7} "
                     f"{r['lc_estimate']:>7} {r['dsp_estimate']:>7} {r['bram_estimate']:>7}")
    s, t, a = plan["shared"], plan["totals"], plan["available"]
    lines.append(f"{'shared':<10} {'control, shared array, UART bridge':<34} {'':>5} {'':>7} "
                 f"{s['lc_estimate']:>7} {s['dsp_estimate']:>7} {s['bram_estimate']:>7}")
    lines.append(f"{'total':<10} {'':<34} {'':>5} {t['cycles_estimate']:>7} "
                 f"{t['lc_estimate']:>7} {t['dsp_estimate']:>7} {t['bram_estimate']:>7}")
    lines.append(f"{'available':<10} {'':<34} {'':>5} {'':>7} {a['lc'] or '':>7} "
                 f"{a['dsp'] or '':>7} {a['bram'] or '':>7}")
    return "\n".join(lines)
