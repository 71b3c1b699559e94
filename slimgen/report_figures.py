"""The figures of a run's report (matplotlib, rendered to PNG bytes): accuracy per stage,
training curves, per-layer sparsity and bits, non-zeros per group, multiplications saved,
resources against the board, timing, and one inference as a waveform."""

import io

import numpy as np

__all__ = ["STAGE_ACCURACY", "BOARD_NAMES", "RESOURCES", "fig_accuracy", "fig_training",
           "fig_layers", "fig_groups", "fig_mults", "fig_resources", "fig_timing", "fig_waveform"]

STAGE_ACCURACY = (("float_accuracy", "float"), ("compressed_accuracy", "compressed"),
                  ("int_accuracy", "integer (golden model)"),
                  ("hw_accuracy", "hardware (simulated RTL)"))
BOARD_NAMES = {"icebreaker": "iCEBreaker (iCE40UP5K)", "ulx3s-85f": "ULX3S (ECP5-85F)",
               "ulx3s-25f": "ULX3S (ECP5-25F)"}
RESOURCES = (("lc", "logic cells"), ("dsp", "DSP multipliers"), ("bram", "block RAMs"),
             ("spram", "SPRAMs"))
BLUE, GREY, GREEN, ORANGE, RED = "#1f5fa8", "#b8c2cc", "#2e8b57", "#e08a1e", "#c0392b"


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
