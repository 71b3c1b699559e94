"""The sweep's report: one HTML page (``<dir>/report.html``, figures embedded) with the study's
progress, the Pareto front of its objectives drawn for every pair of them (the front
highlighted, the default design marked), a table of the front's designs with every figure and
a link to each run's report, and the infeasible designs with their reasons.

The front is that of the complete trials (infeasible ones have no figures). With every
objective turned into one to minimise (``v`` for min, ``-v`` for max), trial ``a`` dominates
``b`` when ``a_k ≤ b_k`` for every objective ``k`` and ``a_k < b_k`` for one; the front is
the trials no trial dominates (:func:`pareto_front`). The page reloads itself every 30 s while
the sweep runs.
"""

import html
import os
from itertools import combinations
from pathlib import Path

from slimgen.report_figures import _plt, _png
from slimgen.report_render import render_html
from slimgen.sw.artifact import write_bytes_atomic

__all__ = ["pareto_front", "front_trials", "write_sweep_report", "sweep_report_html"]

# The figures of a front design the table shows beyond the objectives (those a run has).
TABLE_FIGURES = ("hw_accuracy", "int_accuracy", "float_accuracy", "lc_used", "dsp_used",
                 "bram_used", "fmax_mhz", "cycles_per_inference", "cycles_between_inferences",
                 "latency_us", "multipliers", "mults_per_inference", "sparsity")


def pareto_front(points, directions):
    """The indices of the non-dominated rows of ``points`` (n, k) for the ``directions``
    (``"maximize"`` or ``"minimize"``, k of them), in their order. Equal rows are all kept."""
    sign = [-1.0 if d == "maximize" else 1.0 for d in directions]
    costs = [[s * float(v) for s, v in zip(sign, p)] for p in points]

    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))

    return [i for i, c in enumerate(costs)
            if not any(dominates(o, c) for j, o in enumerate(costs) if j != i)]


def _objectives(study):
    space = study.user_attrs["space"]
    from slimgen.sweep_space import ALIASES
    return [(ALIASES.get(k, k), {"max": "maximize", "min": "minimize"}.get(d, d))
            for k, d in space["objectives"].items()]


def front_trials(study):
    """``(complete, front)``: the complete trials, and those on the Pareto front."""
    from optuna.trial import TrialState
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.values is not None]
    directions = [d for _, d in _objectives(study)]
    idx = pareto_front([t.values for t in complete], directions)
    return complete, [complete[i] for i in idx]


def _fmt(v):
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _label(figure, direction):
    return f"{figure} ({'higher' if direction == 'maximize' else 'lower'} is better)"


def _scatter(complete, front, default, objectives):
    """One PNG: a panel for every pair of objectives (one objective: value per trial)."""
    plt = _plt()
    pairs = list(combinations(range(len(objectives)), 2)) or [(None, 0)]
    cols = min(3, len(pairs))
    rows = -(-len(pairs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows), squeeze=False)
    on_front = {t.number for t in front}
    for ax, (i, j) in zip(axes.flat, pairs):
        def xy(trials):
            return ([t.number if i is None else t.values[i] for t in trials],
                    [t.values[j] for t in trials])
        rest = [t for t in complete if t.number not in on_front]
        ax.scatter(*xy(rest), s=18, c="#9aa5b1", label="trial")
        ax.scatter(*xy(front), s=34, c="#d35400", label="Pareto front", zorder=3)
        if default is not None:
            dx = None if i is None else default.get(objectives[i][0])
            dy = default.get(objectives[j][0])
            if dy is not None and (i is None or dx is not None):
                ax.scatter([dx if i is not None else -1], [dy], marker="*", s=180,
                           c="#1f5fa8", edgecolors="k", linewidths=0.5, zorder=4,
                           label="default design")
        ax.set_xlabel("trial" if i is None else _label(*objectives[i]))
        ax.set_ylabel(_label(*objectives[j]))
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8, loc="best")
    return _png(fig)


def _link(run_report, out_dir):
    if not run_report:
        return ""
    try:
        return os.path.relpath(run_report, out_dir)
    except ValueError:
        return str(run_report)


def sweep_report_html(study, out_dir, *, progress=None, finished=True):
    """The report page's HTML for ``study``; links are relative to ``out_dir``."""
    from slimgen.sweep import format_progress
    from slimgen.sweep import progress as study_progress
    from optuna.trial import TrialState
    objectives = _objectives(study)
    space = study.user_attrs["space"]
    p = progress or study_progress(study)
    complete, front = front_trials(study)
    default = study.user_attrs.get("default") or {}
    default_figures = default.get("figures")
    blocks = [("cards", [("trials done", f"{p['done']} / {p['n_trials']}",
                          f"{p['complete']} complete, {p['infeasible']} infeasible"),
                         ("running", str(p["running"]), f"{p['waiting']} queued"),
                         ("failed", str(p["failed"]), "worker stopped: retried")])]
    blocks.append(("p", ("Finished: " if finished else "Running (this page reloads every "
                                                       "30 s): ") + format_progress(p)))
    params = list(space["parameters"])
    figures = [f for f, _ in objectives]
    blocks.append(("h2", "Pareto front"))
    if complete:
        blocks.append(("img", "front", _scatter(complete, front, default_figures, objectives),
                       f"Every complete trial (grey) for each pair of objectives; the "
                       f"{len(front)} designs of the Pareto front over all "
                       f"{len(objectives)} objectives in orange; the default design (the "
                       f"flow with the fixed settings) as a blue star."))
    else:
        blocks.append(("p", "No trial is complete yet."))
    if default_figures:
        blocks.append(("p", "Default design: " + ", ".join(
            f"{f} {_fmt(default_figures.get(f))}" for f in figures) + "."))
    elif default.get("infeasible"):
        blocks.append(("p", f"Default design: infeasible ({default['infeasible']})."))
    blocks.append(("p", "@@FRONT@@"))
    infeasible = [t for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
                  if not t.user_attrs.get("surplus")]
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    if infeasible:
        blocks.append(("details", f"Infeasible designs ({len(infeasible)})",
                       ["trial"] + params + ["reason"],
                       [[t.number] + [_fmt(t.params.get(k)) for k in params]
                        + [t.user_attrs.get("infeasible", "")] for t in infeasible]))
    if failed:
        blocks.append(("details", f"Failed trials ({len(failed)}: their worker stopped)",
                       ["trial", "worker", "run folder"],
                       [[t.number, t.user_attrs.get("worker", ""), t.user_attrs.get("run", "")]
                        for t in failed]))
    page = render_html(f"Sweep {study.study_name}",
                       f"objectives: {', '.join(f'{f} {d[:3]}' for f, d in objectives)}; "
                       f"sampler {space['sampler']}, seed {space['seed']}", blocks)
    page = page.replace(f"<p>@@FRONT@@</p>", _front_table(front, objectives, params, out_dir))
    if not finished:
        page = page.replace("<meta charset=\"utf-8\">",
                            "<meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"30\">",
                            1)
    return page


def _front_table(front, objectives, params, out_dir):
    """The front's designs, best first on the first objective, with links to run reports."""
    if not front:
        return ""
    figures = [f for f, _ in objectives]
    rest = [f for f in TABLE_FIGURES if f not in figures and f not in params
            and any(f in t.user_attrs.get("figures", {}) for t in front)]
    header = ["trial"] + params + figures + rest + ["report"]
    direction = objectives[0][1]
    order = sorted(front, key=lambda t: (-t.values[0] if direction == "maximize"
                                         else t.values[0], t.number))
    e = lambda s: html.escape(str(s), quote=True)
    out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
    for t in order:
        f = t.user_attrs.get("figures", {})
        cells = [e(t.number)] + [e(_fmt(t.params.get(k))) for k in params]
        cells += [e(_fmt(f.get(k, v))) for k, v in zip(figures, t.values)]
        cells += [e(_fmt(f.get(k))) for k in rest]
        link = _link(f.get("report_html"), out_dir)
        cells.append(f"<a href=\"{e(link)}\">report</a>" if link else "")
        out.append("<tr>" + "".join(f"<td class=\"num\">{c}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</table>"


def write_sweep_report(study, out_dir, *, progress=None, finished=True):
    """Write ``out_dir/report.html`` whole; returns its path."""
    out_dir = Path(out_dir)
    path = out_dir / "report.html"
    write_bytes_atomic(path, sweep_report_html(study, out_dir, progress=progress,
                                               finished=finished).encode("utf-8"))
    return path
