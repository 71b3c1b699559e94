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

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

from slimgen.sw.artifact import write_bytes_atomic

__all__ = ["ReportError", "write_report", "layer_rows"]

STAGE_ACCURACY = (("float_accuracy", "float"), ("compressed_accuracy", "compressed"),
                  ("int_accuracy", "integer (golden model)"),
                  ("hw_accuracy", "hardware (simulated RTL)"))
BOARD_NAMES = {"icebreaker": "iCEBreaker (iCE40UP5K)", "ulx3s-85f": "ULX3S (ECP5-85F)",
               "ulx3s-25f": "ULX3S (ECP5-25F)"}
RESOURCES = (("lc", "logic cells"), ("dsp", "DSP multipliers"), ("bram", "block RAMs"))
BLUE, GREY, GREEN, ORANGE, RED = "#1f5fa8", "#b8c2cc", "#2e8b57", "#e08a1e", "#c0392b"


class ReportError(ValueError):
    """The folder is not a run folder, or one of its files is damaged."""


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path} is damaged ({e}); rerun the stage that writes it") from None


def _pct(v):
    return f"{100 * v:.1f}%"


def _num(v):
    if isinstance(v, float) and not v.is_integer() and abs(v) < 1000:
        return f"{v:,.1f}"
    return f"{int(v):,}"


# ---------------------------------------------------------------------------------- the facts

def _history(root):
    """The per-epoch training history from ``float.npz``'s manifest, or []."""
    path = root / "float.npz"
    if not path.exists():
        return []
    from slimgen.sw.artifact import ArtifactError, load_artifact
    try:
        manifest, _ = load_artifact(path, "float")
    except ArtifactError:
        return []
    return manifest.get("history") or []


def layer_rows(root, summary):
    """Per-layer dicts: ``summary["layers"]`` when the flow wrote them, else derived from the
    integer MLP in ``model.npz`` (dense engines: every weight is multiplied, zeros too)."""
    if summary.get("layers"):
        return [dict(layer) for layer in summary["layers"]]
    path = root / "model.npz"
    if not path.exists():
        return []
    from slimgen.sw.artifact import ArtifactError, load_artifact
    try:
        manifest, arrays = load_artifact(path, "int")
    except ArtifactError:
        return []
    lanes = summary.get("lanes")
    rows = []
    for i, meta in enumerate(manifest.get("layers", [])):
        W = arrays.get(f"layer{i}.W")
        if W is None:
            continue
        n_out, n_in = W.shape
        rows.append({
            "name": f"dense{i}", "kind": meta.get("type", "dense"), "engine": "dense",
            "shape": [int(n_out), int(n_in)], "weight_bits": meta.get("weight_bits"),
            "sparsity": float(np.mean(W == 0)),
            "lanes": lanes[i] if isinstance(lanes, list) and i < len(lanes) else lanes,
            "mults_direct": int(n_in), "mults": int(n_in),
        })
    return rows


def _inferences_per_second(s):
    if s.get("inferences_per_second"):
        return float(s["inferences_per_second"])
    mhz = s.get("target_mhz")
    interval = s.get("cycles_between_inferences") or s.get("cycles_per_inference")
    return mhz * 1e6 / interval if mhz and interval else None


# --------------------------------------------------------------------------------- the figures

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.rcParams.update({"font.size": 10, "axes.spines.top": False,
                         "axes.spines.right": False, "axes.titlesize": 11,
                         "axes.titlelocation": "left"})
    return plt


def _png(fig):
    plt = _plt()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def fig_accuracy(s):
    stages = [(label, s[k]) for k, label in STAGE_ACCURACY if s.get(k) is not None]
    if not stages:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(stages) + 1.1))
    vals = [100 * v for _, v in stages]
    lo = max(0, 5 * np.floor((min(vals) - 6) / 5))
    y = np.arange(len(stages))[::-1]
    ax.barh(y, [v - lo for v in vals], left=lo, color=[GREY] * (len(stages) - 1) + [BLUE],
            height=0.6)
    for yy, v in zip(y, vals):
        ax.text(v + 0.2, yy, f"{v:.2f}%", va="center", fontsize=10)
    ax.set_yticks(y, [label for label, _ in stages])
    ax.set_xlim(lo, 101.5)
    ax.set_xlabel(f"test accuracy, % (axis starts at {lo:g}%)")
    return _png(fig)


def fig_training(history):
    if not history:
        return None
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.2))
    a1.plot(ep, [h["loss"] for h in history], color=BLUE)
    a1.set_yscale("log")
    a1.set_xlabel("epoch")
    a1.set_title("training loss (cross-entropy, log scale)")
    a2.plot(ep, [100 * h["train_acc"] for h in history], color=GREY, label="train")
    val = [100 * h["val_acc"] for h in history if h.get("val_acc") is not None]
    if len(val) == len(ep):
        best = len(val) - 1 - int(np.argmax(val[::-1]))  # ties: the later epoch, as train keeps
        a2.plot(ep, val, color=BLUE,
                label=f"validation (best {val[best]:.1f}% at epoch {ep[best]}, kept)")
        a2.plot([ep[best]], [val[best]], "o", color=BLUE)
    a2.set_ylim(max(0, min(val or [0]) - 5) if len(ep) < 5 else 50, 101)
    a2.set_xlabel("epoch")
    a2.set_title("accuracy, %")
    a2.legend(loc="lower right", frameon=False)
    return _png(fig)


def fig_layers(rows):
    rows = [r for r in rows if r.get("sparsity") is not None]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    sp = [100 * r["sparsity"] for r in rows]
    ax.barh(y, sp, color=BLUE, height=0.6)
    for yy, r, v in zip(y, rows, sp):
        bits = f", {r['weight_bits']}-bit weights" if r.get("weight_bits") else ""
        ax.text(v + 1, yy, f"{v:.1f}% zeros{bits}" if v < 10 else f"{v:.0f}% zeros{bits}", va="center", fontsize=9)
    ax.set_yticks(y, [r["name"] for r in rows])
    ax.set_xlim(0, 130)
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("weights that are zero, %")
    return _png(fig)


def fig_groups(rows):
    rows = [r for r in rows if r.get("nonzeros_per_group")]
    if not rows:
        return None
    plt = _plt()
    cols = min(2, len(rows))
    nrow = -(-len(rows) // cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(5 * cols, 2.6 * nrow), squeeze=False)
    for ax in axes.flat[len(rows):]:
        ax.set_visible(False)
    for ax, r in zip(axes.flat, rows):
        nz = np.asarray(r["nonzeros_per_group"])
        balanced = nz.min() == nz.max()
        ax.bar(np.arange(len(nz)), nz, color=GREEN if balanced else ORANGE, width=0.8)
        ax.axhline(nz.mean(), color="#444444", lw=0.8, ls="--")
        what = (f"all {nz.max()} (balanced)" if balanced
                else f"{nz.min()} to {nz.max()}, idle lanes {100 * (1 - nz.mean() / nz.max()):.0f}%")
        ax.set_title(f"{r['name']}: {len(nz)} groups, non-zeros {what}", fontsize=10)
        ax.set_xlabel("group (one per lane)")
        ax.set_xticks(np.arange(len(nz)) if len(nz) <= 16 else
                      np.arange(0, len(nz), -(-len(nz) // 16)))
        ax.set_ylabel("non-zeros")
    return _png(fig)


def fig_mults(rows):
    rows = [r for r in rows if r.get("mults_direct") and r.get("mults")]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.75 * len(rows) + 1.3))
    y = np.arange(len(rows))[::-1]
    direct = np.array([r["mults_direct"] for r in rows], dtype=float)
    used = np.array([r["mults"] for r in rows], dtype=float)
    ax.barh(y + 0.18, direct, height=0.34, color=GREY, label="direct")
    ax.barh(y - 0.18, used, height=0.34, color=BLUE, label="in hardware")
    for yy, d, u in zip(y, direct, used):
        ax.text(d, yy + 0.18, f" {d:g}", va="center", fontsize=9)
        gain = f"  ({d / u:.2f}× fewer)" if u < d else ""
        ax.text(u, yy - 0.18, f" {u:g}{gain}", va="center", fontsize=9)
    ax.set_yticks(y, [f"{r['name']}\n{r.get('engine', '')}" for r in rows], fontsize=9)
    ax.set_xlim(0, direct.max() * 1.45)
    ax.set_xlabel("multiplications per output")
    ax.legend(loc="lower right", frameon=False)
    return _png(fig)


def fig_resources(s):
    items = [(label, s[f"{k}_used"], s[f"{k}_total"]) for k, label in RESOURCES
             if s.get(f"{k}_used") is not None and s.get(f"{k}_total")]
    if not items:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(items) + 1.1))
    y = np.arange(len(items))[::-1]
    frac = [u / t for _, u, t in items]
    colors = [GREEN if f <= 0.8 else ORANGE if f <= 1 else RED for f in frac]
    ax.barh(y, [100] * len(items), color="#eef1f4", height=0.6)
    ax.barh(y, [100 * f for f in frac], color=colors, height=0.6)
    for yy, (_, u, t), f in zip(y, items, frac):
        ax.text(101, yy, f"{u:,} of {t:,} ({100 * f:.0f}%)", va="center", fontsize=9)
    ax.set_yticks(y, [label for label, _, _ in items])
    ax.set_xlim(0, max(135, 100 * max(frac) + 35))
    ax.set_xticks(range(0, 101, 25))
    ax.set_xlabel(f"% of the {BOARD_NAMES.get(s.get('board'), s.get('board', 'board'))}'s total")
    return _png(fig)


def fig_timing(s):
    if not s.get("fmax_mhz") or not s.get("target_mhz"):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 1.7))
    fmax, clk = s["fmax_mhz"], s["target_mhz"]
    ax.barh([1, 0], [clk, fmax], color=[GREY, GREEN if fmax >= clk else RED], height=0.6)
    ax.text(clk, 1, f" {clk:g} MHz", va="center", fontsize=9)
    verdict = f"{fmax / clk:.2f}× the board clock" if fmax >= clk else "misses timing"
    ax.text(fmax, 0, f" {fmax:g} MHz ({verdict})", va="center", fontsize=9)
    ax.set_yticks([1, 0], ["board clock", "maximum frequency"])
    ax.set_xlim(0, max(fmax, clk) * 1.6)
    ax.set_xlabel("MHz")
    return _png(fig)


# ------------------------------------------------------------------------------- the waveform

def _record_waveform(root, config, vcd_path):
    """Record one test sample's inference of an MLP run; returns a note on failure."""
    if not (root / "network.v").exists() or not (root / "model.npz").exists():
        return "not recorded: the run has no network.v (run 'slimgen generate')"
    try:
        from slimgen.sim.waveform import record_inference_vcd
        from slimgen.sw.artifact import load_quantized_model
        from slimgen.sw.data import load_dataset
        from slimgen.sw.quant import quantize_inputs
        qmodel, _ = load_quantized_model(root / "model.npz")
        x, _ = load_dataset(config.get("data", "digits"), seed=config.get("seed", 0)).part("test")
        x_q = quantize_inputs(x[:1].reshape(1, -1), qmodel.input_scale, qmodel.input_bits)
        record_inference_vcd(root / "network.v", qmodel, x_q[0], vcd_path,
                             sim=config.get("sim", "icarus"), build_dir=root / "sim" / "waveform",
                             log_file=(root / "sim" / "waveform.log").resolve())
    except Exception as e:  # a report is still worth writing without its waveform
        return f"not recorded: {type(e).__name__}: {e}"
    return None


def fig_waveform(vcd_path):
    from slimgen.waveform_plot import plot_waveform, read_vcd
    wave = read_vcd(vcd_path)
    n = len(wave.edges)
    names = set(wave.traces)
    signals = [sig for sig in _WAVE_SIGNALS if sig[0] in names]
    if not signals:
        raise ValueError(f"{vcd_path} holds none of the signals the report draws")
    first_in = _first(wave, "i__valid", n)
    out = _first(wave, "o__valid", n, last=True)
    windows = [(0, n - 1, "the whole inference")]
    windows.append((max(0, first_in - 2), first_in + 21, "zoom: the first pixels go in"))
    windows.append((max(0, out - 14), min(n - 1, out + 3), "zoom: the result comes out"))
    answer = ""
    if "o_cls" in names and "o__valid" in names:
        cls = wave.cycles("o_cls")[out]
        logit = wave.cycles("o_logit_cls")[out] if "o_logit_cls" in names else None
        if cls is not None:
            answer = f"; the network answers class {cls}"
            if logit is not None:
                w = wave.traces["o_logit_cls"].width
                logit -= (1 << w) if logit >> (w - 1) else 0
                answer += f" with logit {logit}"
            answer += f" in cycle {out}"
    return _png(plot_waveform(wave, signals=signals, windows=windows, width_in=11)), n, answer


def _first(wave, name, n, last=False):
    if name not in wave.traces:
        return 0 if not last else n - 1
    high = [k for k, v in enumerate(wave.cycles(name)) if v == 1]
    if not high:
        return 0 if not last else n - 1
    return high[-1] if last else high[0]


_WAVE_SIGNALS = [
    ("rst", "rst", "hex"), ("i__valid", "in valid", "hex"), ("i__ready", "in ready", "hex"),
    ("i__payload", "in pixel", "dec", "i__valid"), ("o__valid", "out valid", "hex"),
    ("o__ready", "out ready", "hex"), ("o_cls", "out class", "dec", "o__valid"),
    ("o_logit_cls", "out logit[class]", "sdec", "o__valid"),
]


# ------------------------------------------------------------------- the document, two renderers

def _build(root, config, s, vcd_note, vcd_path):
    """The report as a list of blocks: ("h2", text), ("p", text), ("cards", [(label, value,
    note)]), ("table", header, rows), ("img", name, png, caption), ("details", title, header,
    rows)."""
    B = []
    rows = layer_rows(root, s)
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

    history = _history(root)
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
                          r.get("weight_bits", ""),
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
        table = [[label, f"{s[k + '_used']:,} of {s[k + '_total']:,}"]
                 for k, label in RESOURCES if s.get(k + "_used") is not None and s.get(k + "_total")]
        table += [[label, v] for label, v in (
            ("maximum frequency", f"{s['fmax_mhz']:g} MHz" if s.get("fmax_mhz") else None),
            ("board clock", f"{s['target_mhz']:g} MHz" if s.get("target_mhz") else None),
            ("bitstream", s.get("bitstream"))) if v]
        B.append(("table", ["", ""], table))
    else:
        B.append(("p", "Not built: the run stopped before the build stage, so there are no "
                  "resource or timing figures. Run 'slimgen build' for them."))

    B.append(("h2", "Latency and throughput"))
    if s.get("cycles_per_inference"):
        table = [["cycles per inference (one in flight)", _num(s["cycles_per_inference"])]]
        if s.get("cycles_between_inferences"):
            table.append(["cycles between inferences (streamed)",
                          _num(s["cycles_between_inferences"])])
        if s.get("cycles_lower_bound"):
            table.append(["lower bound from the multipliers in use", _num(s["cycles_lower_bound"])])
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


_CSS = """
body{font:15px/1.5 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;color:#1d2731;
 background:#f6f7f9;margin:0}
main{max-width:1040px;margin:0 auto;padding:28px 28px 60px;background:#fff;
 box-shadow:0 0 12px rgba(0,0,0,.06)}
h1{font-size:26px;margin:0 0 4px}
.sub{color:#5b6773;margin:0 0 20px}
h2{font-size:19px;margin:36px 0 10px;padding-bottom:4px;border-bottom:2px solid #e3e7ec}
.cards{display:grid;grid-template-columns:repeat(3,1fr);gap:12px}
.card{border:1px solid #e3e7ec;border-radius:8px;padding:10px 14px;background:#fbfcfd}
.card .l{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:#5b6773}
.card .v{font-size:24px;font-weight:600;color:#1f5fa8}
.card .n{font-size:12.5px;color:#5b6773;min-height:1.2em}
.card .v.bad{color:#c0392b}
figure{margin:14px 0 18px}
figure img{max-width:100%;height:auto;display:block;border:1px solid #eef0f3}
figcaption{font-size:13.5px;color:#4a5661;margin-top:6px;max-width:900px}
table{border-collapse:collapse;margin:10px 0 8px;font-size:14px}
th,td{padding:5px 12px;border-bottom:1px solid #e3e7ec;text-align:left;vertical-align:top}
th{background:#f0f3f6;font-weight:600}
tr:nth-child(even) td{background:#fafbfc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
details{margin-top:30px}
summary{cursor:pointer;font-weight:600}
"""


def _is_num(text):
    t = str(text).replace(",", "").replace("%", "").replace(" MHz", "")
    try:
        float(t)
        return True
    except ValueError:
        return False


def _text(t):
    return html.escape(t, quote=False)


def _html_table(header, rows):
    h = _text
    numeric = [bool(any(header)) and all(_is_num(r[k]) or r[k] in ("", "not run") for r in rows)
               for k in range(len(header))]
    cls = lambda k: " class=\"num\"" if numeric[k] else ""
    out = ["<table>"]
    if any(header):
        out.append("<tr>" + "".join(f"<th{cls(k)}>{h(str(c))}</th>"
                                    for k, c in enumerate(header)) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td{cls(k)}>{h(str(c))}</td>" for k, c in enumerate(r))
                   + "</tr>")
    return "".join(out) + "</table>"


def _render_html(title, subtitle, blocks):
    h = _text
    out = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{h(title)}</title><style>{_CSS}</style></head><body><main>",
           f"<h1>{h(title)}</h1><p class=\"sub\">{h(subtitle)}</p>"]
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out.append(f"<h2>{h(b[1])}</h2>")
        elif kind == "p":
            out.append(f"<p>{h(b[1])}</p>")
        elif kind == "cards":
            out.append("<div class=\"cards\">")
            for label, value, note in b[1]:
                bad = " bad" if value == "NO" else ""
                out.append(f"<div class=\"card\"><div class=\"l\">{h(label)}</div>"
                           f"<div class=\"v{bad}\">{h(value)}</div><div class=\"n\">{h(note)}</div>"
                           f"</div>")
            out.append("</div>")
        elif kind == "table":
            out.append(_html_table(b[1], b[2]))
        elif kind == "img":
            data = base64.b64encode(b[2]).decode()
            out.append(f"<figure><img alt=\"{html.escape(b[1])}\" src=\"data:image/png;base64,{data}\">"
                       f"<figcaption>{h(b[3])}</figcaption></figure>")
        elif kind == "details":
            out.append(f"<details><summary>{h(b[1])}</summary>{_html_table(b[2], b[3])}</details>")
    out.append("</main></body></html>\n")
    return "\n".join(out)


def _md_table(header, rows):
    cell = lambda c: str(c).replace("|", "\\|")
    header = [cell(c) for c in header] if any(header) else [" "] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _render_md(title, subtitle, blocks, image_dir):
    out = [f"# {title}", "", subtitle, ""]
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out += [f"## {b[1]}", ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "cards":
            out += [_md_table(["", "", ""], [[f"**{label}**", value, note]
                                             for label, value, note in b[1]]), ""]
        elif kind == "table":
            out += [_md_table(b[1], b[2]), ""]
        elif kind == "img":
            out += [f"![{b[1]}]({image_dir}/{b[1]}.png)", "", f"*{b[3]}*", ""]
        elif kind == "details":
            out += [f"<details><summary>{b[1]}</summary>", "", _md_table(b[2], b[3]), "",
                    "</details>", ""]
    return "\n".join(out)


def write_report(run_dir, *, vcd=None, record_waveform=True):
    """Write ``report.html`` and ``report.md`` (with its PNGs in ``report/``) into the run
    folder ``run_dir``; returns ``(html_path, md_path)``.

    ``vcd``: a waveform of one inference to draw (copied to ``waveform.vcd`` in the run
    folder). Without it the report draws the run's ``waveform.vcd``, and when there is none and
    ``record_waveform`` is true, records one on the run's simulator (MLP runs with
    ``model.npz`` and ``network.v``; other models pass their own ``vcd``, see
    :func:`slimgen.sim.waveform.record_inference_vcd`). A waveform that cannot be recorded is
    noted in the report, not raised.
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

    blocks = _build(root, config, s, note, vcd_path)
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
    image_dir.mkdir(exist_ok=True)
    for b in blocks:
        if b[0] == "img":
            write_bytes_atomic(image_dir / f"{b[1]}.png", b[2])
    html_path, md_path = root / "report.html", root / "report.md"
    write_bytes_atomic(html_path, _render_html(title, subtitle, blocks).encode())
    write_bytes_atomic(md_path, _render_md(title, subtitle, blocks, "report").encode())
    return html_path, md_path
