"""The report of a run: ``runs/<name>/report.html`` (one self-contained file) and ``report.md``.

It shows accuracy at every stage (float, compressed, integer, hardware), the training curves,
per layer the engine, bit width, sparsity, non-zeros per group and the multiplications saved by
Winograd or sparsity, the resources used against the board's totals, the maximum frequency
against the board clock, cycles and inferences per second, and one inference as a waveform.

It reads what the flow wrote (``config.json``, ``summary.json``, ``float.npz`` for the training
history, ``model.npz`` for the per-layer figures of an MLP when the summary has no ``layers``,
``waveform.vcd``) and draws whatever subset exists: a run that stopped before the build says
"not built". The HTML embeds its CSS and its figures (base64 PNG) and links nothing; the
Markdown refers to the same PNGs, saved in ``report/`` beside it.
"""

import json
from pathlib import Path

import numpy as np

from slimgen.sw.artifact import write_bytes_atomic

from .report_figures import (BOARD_NAMES, RESOURCES, STAGE_ACCURACY, fig_accuracy, fig_groups,
                             fig_layers, fig_mults, fig_resources, fig_timing, fig_training,
                             fig_waveform)
from .report_render import render_html, render_md

__all__ = ["ReportError", "write_report", "layer_rows"]



class ReportError(ValueError):
    """The folder is not a run folder, or one of its files is damaged."""


def _read_json(path):
    path = Path(path)
    if path.name == "summary.json":
        redo = (f"it is derived from the stage records, and 'slimgen report --run "
                f"{path.parent}' rebuilds it")
    else:
        redo = "rerun the stage that writes it"
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportError(f"{path} is damaged ({e}); {redo}") from None
    if not isinstance(obj, dict):
        raise ReportError(f"{path} is not a JSON object; {redo}")
    return obj


def _pct(v):
    return f"{100 * v:.1f}%"


def _num(v):
    if isinstance(v, float) and not v.is_integer() and abs(v) < 1000:
        return f"{v:,.1f}"
    return f"{int(v):,}"


# ---------------------------------------------------------------------------------- the facts

def _artifact(path, kind, unreadable=None):
    """``(manifest, arrays)`` of the artifact at ``path``, or None when it is missing or
    unreadable (the report draws what it can); an unreadable one is added to the list
    ``unreadable`` as ``(file name, why)``, for the report to say so."""
    if not path.exists():
        return None
    from slimgen.sw.artifact import ArtifactError, load_artifact
    try:
        return load_artifact(path, kind)
    except ArtifactError as e:
        if unreadable is not None:
            why = str(e).split(": ", 1)[-1].split(". Rerun the", 1)[0]
            unreadable.append((path.name, why))
        return None


def _history(root, unreadable=None):
    """The per-epoch training history from ``float.npz``'s manifest, or []."""
    loaded = _artifact(root / "float.npz", "float", unreadable)
    return (loaded[0].get("history") or []) if loaded else []


def layer_rows(root, summary, unreadable=None):
    """Per-layer dicts: ``summary["layers"]`` when the flow wrote them, else derived from the
    integer model in ``model.npz`` (dense engines: every weight is multiplied, zeros too)."""
    if summary.get("layers"):
        return [dict(layer) for layer in summary["layers"]]
    loaded = _artifact(root / "model.npz", "int", unreadable)
    if not loaded:
        return []
    manifest, arrays = loaded
    lanes = summary.get("lanes")
    rows = []
    for i, meta in enumerate(manifest.get("layers", [])):
        W = arrays.get(f"layer{i}.W")
        if W is None:
            continue
        n_out, n_in = W.shape[0], int(np.prod(W.shape[1:]))
        kind = meta.get("kind", meta.get("type", "dense"))
        rows.append({
            "name": f"{kind}{i}", "kind": kind, "engine": "dense",
            "shape": [int(v) for v in W.shape], "weight_bits": meta.get("weight_bits"),
            "sparsity": float(np.mean(W == 0)),
            "lanes": lanes[i] if isinstance(lanes, list) and i < len(lanes) else lanes,
            "mults_direct": int(n_in), "mults": int(n_in),
        })
    return rows


def _predicted(estimate, used):
    """``[predicted, error]`` cells of a resource row (empty when nothing was predicted)."""
    if estimate is None:
        return ["", ""]
    if not used:
        return [f"{estimate:,}", "exact" if estimate == used else ""]
    error = (estimate - used) / used
    return [f"{estimate:,}", "exact" if estimate == used else f"{100 * error:+.1f}%"]


def _plan(root, unreadable):
    """``plan.json`` (generate's prediction), or None when missing or unreadable."""
    try:
        plan = _read_json(root / "plan.json")
    except ReportError as e:
        unreadable.append(("plan.json", str(e).split(" (", 1)[0].split(": ", 1)[-1]))
        return None
    if plan is not None and not all(k in plan for k in ("board", "layers", "shared", "totals")):
        unreadable.append(("plan.json", "not a plan"))
        return None
    return plan


def plan_rows(plan):
    """The plan's table rows: each layer, the shared hardware, the totals."""
    def cell(v):
        return _num(v) if isinstance(v, (int, float)) else str(v)
    rows = [[str(r.get("name", "")), str(r.get("engine", "")), cell(r.get("lanes", "")),
             cell(r.get("cycles", "")), cell(r["lc_estimate"]), cell(r["dsp_estimate"]),
             cell(r["bram_estimate"])] for r in plan["layers"]]
    sh, t = plan["shared"], plan["totals"]
    rows.append(["shared", "control, shared array, UART bridge", "", "",
                 cell(sh["lc_estimate"]), cell(sh["dsp_estimate"]), cell(sh["bram_estimate"])])
    rows.append(["total", "", "", cell(t["cycles_estimate"]), cell(t["lc_estimate"]),
                 cell(t["dsp_estimate"]), cell(t["bram_estimate"])])
    return rows


def _inferences_per_second(s):
    if s.get("inferences_per_second"):
        return float(s["inferences_per_second"])
    mhz = s.get("target_mhz")
    interval = s.get("cycles_between_inferences") or s.get("cycles_per_inference")
    return mhz * 1e6 / interval if mhz and interval else None


# ------------------------------------------------------------------------------- the waveform

def _record_waveform(root, config, vcd_path):
    """Record one test sample's inference of an MLP run; returns a note on failure."""
    if not (root / "network.v").exists() or not (root / "model.npz").exists():
        return "not recorded: the run has no network.v (run 'slimgen generate')"
    try:
        from slimgen.sim.waveform import record_inference_vcd
        from slimgen.sw.artifact import load_int_network
        from slimgen.sw.data import load_dataset
        from slimgen.sw.quantize import quantize_inputs
        qmodel, _ = load_int_network(root / "model.npz")
        x, _ = load_dataset(config.get("data", "digits"), seed=config.get("seed", 0)).part("test")
        x_q = quantize_inputs(x[:1].reshape(1, -1), qmodel.input_scale, qmodel.input_bits)
        record_inference_vcd(root / "network.v", qmodel, x_q[0], vcd_path,
                             sim=config.get("sim", "icarus"), build_dir=root / "sim" / "waveform",
                             log_file=(root / "sim" / "waveform.log").resolve())
    except Exception as e:  # a report is still worth writing without its waveform
        return f"not recorded: {type(e).__name__}: {e}"
    return None


# ------------------------------------------------------------------- the document, two renderers

def _agreement(root, s):
    """Rows of the agreement table: the float model against the model it was imported from
    (``import.json``), the integer model against the float one, the hardware against the
    integer model."""
    rows = []
    imported = _read_json(root / "import.json")
    if isinstance(imported, dict):
        agree = imported.get("agreement", imported)
        rel, same = agree.get("max_relative_difference"), agree.get("argmax_agreement")
        rows.append([f"float model vs its source ({imported.get('source', 'ONNX')})",
                     (f"outputs within {rel:.2g} relative" if isinstance(rel, (int, float))
                      else "") + (f", same class on {_pct(same)}"
                                  if isinstance(same, (int, float)) else "")])
    if s.get("int_float_agreement") is not None:
        rows.append(["integer (golden model) vs float", f"same class on "
                     f"{_pct(s['int_float_agreement'])}"])
    if s.get("hw_bit_exact") is not None:
        rows.append(["hardware vs integer", ("every logit equal" if s["hw_bit_exact"]
                                             else "logits DIFFER") +
                     f" on {s.get('images_verified', 0)} test samples"])
    return rows


def _build(root, config, s, vcd_note, vcd_path, unreadable):
    """The report as a list of blocks: ("h2", text), ("p", text), ("cards", [(label, value,
    note)]), ("table", header, rows), ("img", name, png, caption), ("details", title, header,
    rows). Artifacts that could not be read are added to ``unreadable``."""
    B = []
    rows = layer_rows(root, s, unreadable)
    history = _history(root, unreadable)
    # the figures of the stage records came from these: say so when one is unreadable now
    if s.get("layers"):
        _artifact(root / "model.npz", "int", unreadable)
    _artifact(root / "compressed.npz", "float", unreadable)
    plan = _plan(root, unreadable)
    if unreadable:
        B.append(("p", "Could not be read, so missing from this report: " + "; ".join(
            f"{name} ({why})" for name, why in unreadable) + "."))
    ips = _inferences_per_second(s)
    built = s.get("lc_used") is not None
    acc = s.get("hw_accuracy")
    cards = [
        ("hardware accuracy", _pct(acc) if acc is not None else "not verified",
         f"{s['images_verified']} test images" if s.get("images_verified") else ""),
        ("bit-exact", {True: "yes", False: "NO"}.get(s.get("hw_bit_exact"), "not verified"),
         f"against the golden model on {s.get('simulator', 'the simulator')}"
         if s.get("hw_bit_exact") is not None else ""),
        ("cycles per inference", _num(s["cycles_per_inference"])
         if s.get("cycles_per_inference") else "not measured",
         f"{_num(s['cycles_between_inferences'])} between inferences"
         if s.get("cycles_between_inferences") else ""),
        ("inferences per second", _num(ips) if ips else "not measured",
         f"at the {s['target_mhz']:g} MHz board clock" if ips and s.get("target_mhz") else ""),
        ("maximum frequency", f"{s['fmax_mhz']:g} MHz" if s.get("fmax_mhz") else "not built",
         f"board clock {s['target_mhz']:g} MHz" if s.get("target_mhz") else ""),
        ("logic cells", f"{100 * s['lc_used'] / s['lc_total']:.0f}%" if built and s.get("lc_total")
         else "not built", f"{s['lc_used']:,} of {s['lc_total']:,}" if built and s.get("lc_total")
         else ""),
    ]
    B.append(("cards", cards))

    B.append(("h2", "Accuracy at every stage"))
    png = fig_accuracy(s)
    if png:
        B.append(("img", "accuracy", png, "Test-split accuracy after each stage; the hardware "
                  "figure comes from the simulated RTL, image by image."))
        B.append(("table", ["stage", "test accuracy"],
                  [[label, _pct(s[k]) if s.get(k) is not None else "not run"]
                   for k, label in STAGE_ACCURACY]))
    else:
        B.append(("p", "No stage has reported an accuracy yet."))
    agreement = _agreement(root, s)
    if agreement:
        B.append(("h2", "Agreement between the models"))
        B.append(("table", ["compared", "on the test split"], agreement))

    png = fig_training(history)
    if png:
        B.append(("h2", "Training"))
        secs = f" in {s['train_seconds']:g} s" if s.get("train_seconds") else ""
        B.append(("img", "training", png, f"{len(history)} epochs{secs}; the parameters of the "
                  f"epoch with the best validation accuracy are kept."))

    B.append(("h2", "Layers"))
    if rows:
        header = ["layer", "kind", "engine", "shape", "weight bits", "zeros", "non-zeros per group",
                  "lanes", "mults per output (direct → used)", "cycles"]
        table = []
        for r in rows:
            nz = r.get("nonzeros_per_group")
            nz = "" if not nz else (f"{nz[0]} × {len(nz)}" if min(nz) == max(nz)
                                    else f"{min(nz)}–{max(nz)} ({len(nz)} groups)")
            m, md = r.get("mults"), r.get("mults_direct")
            mults = f"{md:g} → {m:g}" + (f" ({md / m:.2f}×)" if m and md and m < md else "") \
                if m and md else ""
            lanes = r.get("lanes")
            table.append([r.get("name", ""), r.get("kind", ""), r.get("engine", ""),
                          "×".join(str(v) for v in r["shape"]) if r.get("shape") else "",
                          "" if r.get("weight_bits") is None else r["weight_bits"],
                          _pct(r["sparsity"]) if r.get("sparsity") is not None else "", nz,
                          "" if lanes is None else lanes, mults,
                          _num(r["cycles"]) if r.get("cycles") else ""])
        keep = [k for k in range(len(header)) if any(str(r[k]) for r in table)]
        B.append(("table", [header[k] for k in keep], [[r[k] for k in keep] for r in table]))
        for name, fig, caption in (
                ("layers", fig_layers, "Sparsity and weight bit width per layer."),
                ("groups", fig_groups, "Non-zero weights in each group (one group per MAC lane); "
                 "equal bars mean no lane waits for another. The dashed line is the mean."),
                ("mults", fig_mults, "Multiplications per output: direct against what the "
                 "hardware performs after Winograd transforms and skipping zeros.")):
            png = fig(rows)
            if png:
                B.append(("img", name, png, caption))
    else:
        B.append(("p", "No per-layer figures: the run has no model yet."))

    board = BOARD_NAMES.get(s.get("board"), s.get("board", "board"))
    B.append(("h2", f"Hardware on the {board}"))
    if built:
        for name, fig, caption in (
                ("resources", fig_resources, "Resources used against the board's totals "
                 "(green up to 80%, orange up to 100%, red: does not fit)."),
                ("timing", fig_timing, "Maximum frequency from the place-and-route timing report "
                 "against the clock the board runs the design at.")):
            png = fig(s)
            if png:
                B.append(("img", name, png, caption))
        # measured by nextpnr beside the resource model's prediction before synthesis
        lc_name = (plan or {}).get("lc_name")
        table = [[lc_name if k == "lc" and lc_name else label,
                  f"{s[k + '_used']:,} of {s[k + '_total']:,}",
                  *_predicted(s.get(k + "_estimate"), s[k + "_used"])]
                 for k, label in RESOURCES if s.get(k + "_used") is not None and s.get(k + "_total")]
        table += [[label, v, "", ""] for label, v in (
            ("maximum frequency", f"{s['fmax_mhz']:g} MHz" if s.get("fmax_mhz") else None),
            ("board clock", f"{s['target_mhz']:g} MHz" if s.get("target_mhz") else None),
            ("bitstream", s.get("bitstream"))) if v]
        B.append(("table", ["", "built", "predicted", "error"], table))
    else:
        B.append(("p", "Not built: the run stopped before the build stage, so there are no "
                  "resource or timing figures. Run 'slimgen build' for them."))
    if plan:
        planner = plan.get("planner")
        B.append(("h2", "The plan, before synthesis"))
        B.append(("p", f"Per layer as generate planned it for the {plan['board']}: engine, "
                  f"lanes and cycles from the schedule; {plan.get('lc_name', 'logic cells')}, "
                  f"DSP blocks and block RAMs from the resource model ('shared' where layers "
                  f"share one array)." + (f" The planner chose: {planner['why']}." if planner
                                          else "")
                  + (f" The weights are in the board's SPRAMs, which the bitstream cannot "
                     f"initialise: 'slimgen classify' sends the {plan.get('weight_bytes', 0):,} "
                     f"bytes of weights.bin over the UART when the board has none (once after power-up)."
                     if plan.get("weight_memory") == "spram" else "")))
        B.append(("table", ["layer", "engine", "lanes", "cycles",
                            plan.get("lc_name", "logic cells"), "DSP", "BRAM"], plan_rows(plan)))
        if planner:
            B.append(("details", "Every design the planner weighed",
                      ["lanes", "engine", "multipliers", "cycles", "interval", "inferences/s",
                       plan.get("lc_name", "logic cells"), "DSP", "BRAM", "fits"],
                      [[_num(c["lanes"]), c["engine"] + (", activations in BRAM"
                                                         if c.get("act_memory") == "bram" else ""),
                        _num(c["multipliers"]), _num(c["cycles"]),
                        _num(c["interval"]), _num(c["fps"]), _num(c["lc"]), _num(c["dsp"]),
                        _num(c["bram"]), "yes" if not c["over"] else "no: " + ", ".join(
                            f"{k} {n:,} of {a:,}" for k, n, a in c["over"])]
                       for c in planner["candidates"]]))

    B.append(("h2", "Latency and throughput"))
    if s.get("cycles_per_inference"):
        table = [["cycles per inference (one in flight)", _num(s["cycles_per_inference"])]]
        if s.get("cycles_between_inferences"):
            table.append(["cycles between inferences (streamed)",
                          _num(s["cycles_between_inferences"])])
        if s.get("cycles_lower_bound"):
            table.append(["lower bound: multiplications over the multipliers in use",
                          _num(s["cycles_lower_bound"])])
        if s.get("latency_over_bound"):
            table.append(["latency over the lower bound", f"{s['latency_over_bound']:.2f}×"])
        if ips:
            table.append([f"inferences per second at {s.get('target_mhz', 0):g} MHz", _num(ips)])
            if s.get("fmax_mhz") and s.get("target_mhz"):
                table.append([f"inferences per second at fmax ({s['fmax_mhz']:g} MHz)",
                              _num(ips * s["fmax_mhz"] / s["target_mhz"])])
        B.append(("table", ["", ""], table))
    else:
        B.append(("p", "Not measured: the run has not been verified on the simulator."))

    B.append(("h2", "One inference, cycle by cycle"))
    if vcd_path is not None and vcd_path.exists():
        try:
            png, n, answer = fig_waveform(vcd_path)
            B.append(("img", "waveform", png,
                      f"The top-level streams during one inference ({n} clock cycles){answer}. "
                      f"Pixels go in while 'in valid' and 'in ready' are both high; the "
                      f"class and its logit come out in the cycle where 'out valid' and "
                      f"'out ready' are. Bus values are shown only in cycles where their stream "
                      f"is valid. The full waveform is {vcd_path.name} in the run folder "
                      f"(open it with GTKWave)."))
        except Exception as e:
            B.append(("p", f"The waveform {vcd_path.name} could not be drawn: {e}"))
    else:
        B.append(("p", f"No waveform: {vcd_note or 'not recorded'}."))

    keys = sorted(k for k in s if not isinstance(s[k], (list, dict)) or k in ("lanes", "acc_bits"))
    B.append(("details", "Every figure in summary.json", ["key", "value"],
              [[k, json.dumps(s[k]) if isinstance(s[k], (list, dict, bool)) or s[k] is None
                else (f"{s[k]:.4g}" if isinstance(s[k], float) else str(s[k]))] for k in keys]))
    return B


def write_report(run_dir, *, vcd=None, record_waveform=True, log=None):
    """Write ``report.html`` and ``report.md`` (with its PNGs in ``report/``) into the run
    folder ``run_dir``; returns ``(html_path, md_path)``.

    ``vcd``: a waveform of one inference to draw (copied to ``waveform.vcd`` in the run
    folder). Without it the report draws the run's ``waveform.vcd``, and when there is none and
    ``record_waveform`` is true, records one on the run's simulator (MLP runs with
    ``model.npz`` and ``network.v``; other models pass their own ``vcd``, see
    :func:`slimgen.sim.waveform.record_inference_vcd`). A waveform that cannot be recorded is
    noted in the report, not raised; so is a run file that cannot be read (also through
    ``log``, a function taking one line, when given).
    """
    root = Path(run_dir)
    config = _read_json(root / "config.json")
    summary = _read_json(root / "summary.json")
    if config is None and summary is None:
        raise ReportError(f"{root} is not a run folder: it has neither config.json nor "
                          f"summary.json (run 'slimgen flow --run {root}' first)")
    config, s = config or {}, summary or {}
    vcd_path, note = root / "waveform.vcd", None
    if vcd is not None:
        if Path(vcd).resolve() != vcd_path.resolve():
            write_bytes_atomic(vcd_path, Path(vcd).read_bytes())
    elif not vcd_path.exists() and record_waveform:
        note = _record_waveform(root, config, vcd_path)
    elif not vcd_path.exists():
        note = "not recorded for this report"

    unreadable = []
    blocks = _build(root, config, s, note, vcd_path, unreadable)
    for name, why in unreadable:
        if log is not None:
            log(f"report: {root / name} could not be read ({why}); the report says so")
    name = root.resolve().name
    model = s.get("model") or config.get("model") or "mlp"
    parts = [f"model {model}"]
    if config.get("sizes") and model == "mlp":
        parts[0] += " " + "-".join(str(v) for v in config["sizes"])
    if s.get("method") or config.get("method"):
        parts.append(f"compression {s.get('method') or config.get('method')}")
    parts.append(f"data {config.get('data', 'digits')} (split seed {config.get('seed', 0)})")
    parts.append(f"board {s.get('board') or config.get('board', '?')}")
    title, subtitle = f"slimgen run {name}", " · ".join(parts)

    image_dir = root / "report"
    html_path, md_path = root / "report.html", root / "report.md"
    try:
        image_dir.mkdir(exist_ok=True)
        for b in blocks:
            if b[0] == "img":
                write_bytes_atomic(image_dir / f"{b[1]}.png", b[2])
        write_bytes_atomic(html_path, render_html(title, subtitle, blocks).encode())
        write_bytes_atomic(md_path, render_md(title, subtitle, blocks, "report").encode())
    except OSError as e:
        raise ReportError(f"cannot write the report into {root}: "
                          f"{e.strerror or e}") from None
    return html_path, md_path
