"""Waveforms of one inference: a small VCD writer and reader, and a matplotlib renderer.

A VCD here holds one clock ``clk`` and any number of signals sampled once per clock cycle;
:func:`write_vcd` writes such a file (the benches sample the top-level ports every cycle),
:func:`read_vcd` reads it back (or any VCD with a clock: scopes are flattened to dotted names),
and :func:`plot_waveform` draws chosen signals against the clock-cycle axis: one-bit signals as
lines, wider ones as bus segments labelled with their value in hex or decimal where the segment is
wide enough to hold the label.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Trace", "Waveform", "VCDError", "write_vcd", "read_vcd", "plot_waveform"]

_IDLE = "idle"  # a bus value outside its valid cycles


class _Beat:
    """A bus value in one valid cycle: never equal to the next, so each beat is a segment."""

    def __init__(self, value):
        self.value = value

_TIMESCALES = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0, "ps": 1e-3, "fs": 1e-6}


class VCDError(ValueError):
    """A VCD file that cannot be read, or a waveform without the signals asked for."""


@dataclass
class Trace:
    """One signal: its width and its value changes ``(time_ns, value)``; ``None`` is x or z."""
    name: str
    width: int
    changes: list = field(default_factory=list)

    def at(self, times):
        """The values (list) at each of ``times`` (ns, ascending): the last change at or before."""
        out, k, value = [], 0, None
        for t in times:
            while k < len(self.changes) and self.changes[k][0] <= t:
                value = self.changes[k][1]
                k += 1
            out.append(value)
        return out


@dataclass
class Waveform:
    """Traces by name; ``cycle_ns`` and ``edges`` (rising clock edges, ns) when a clock exists."""
    traces: dict
    clock: str = "clk"

    @property
    def edges(self):
        clk = self.traces.get(self.clock)
        if clk is None:
            raise VCDError(f"The waveform has no clock {self.clock!r}; it has "
                           f"{', '.join(sorted(self.traces)) or 'no signals'}")
        rising, last = [], None
        for t, v in clk.changes:
            if v == 1 and last != 1:
                rising.append(t)
            last = v
        return np.array(rising, dtype=np.float64)

    def cycles(self, name):
        """The value of signal ``name`` during each clock cycle (sampled just after each rising
        edge, so a change made at an edge counts for the cycle it starts)."""
        if name not in self.traces:
            raise VCDError(f"The waveform has no signal {name!r}; it has "
                           f"{', '.join(sorted(self.traces))}")
        edges = self.edges
        half = (np.diff(edges).min() / 2) if len(edges) > 1 else 0.5
        return self.traces[name].at(edges + half / 2)


def _vcd_id(k):
    chars = [chr(c) for c in range(33, 127)]
    out = ""
    while True:
        out += chars[k % len(chars)]
        k //= len(chars)
        if not k:
            return out


def write_vcd(path, signals, samples, *, period_ns=10, scope="top", comment=""):
    """Write a VCD of ``samples`` taken once per clock cycle, with the clock itself as ``clk``.

    ``signals``: list of ``(name, width)``. ``samples``: one tuple per cycle of values (int, or
    None for x), in the order of ``signals``; a value changes at the rising edge that starts its
    cycle. Returns ``path``. The file is written whole.
    """
    from slimgen.sw.artifact import write_bytes_atomic
    if not isinstance(period_ns, int) or period_ns < 2 or period_ns % 2:
        raise ValueError(f"Clock period must be an even number of ns, not {period_ns!r}")
    names = [n for n, _ in signals]
    if "clk" in names or len(set(names)) != len(names):
        raise ValueError(f"Signal names must be unique and not 'clk', not {names}")
    ids = [_vcd_id(k + 1) for k in range(len(signals))]
    lines = [f"$comment {comment or 'slimgen: one sample per clock cycle'} $end",
             "$timescale 1ns $end", f"$scope module {scope} $end", f"$var wire 1 {_vcd_id(0)} clk $end"]
    lines += [f"$var wire {w} {i} {n} $end" for (n, w), i in zip(signals, ids)]
    lines += ["$upscope $end", "$enddefinitions $end"]

    def fmt(value, width, ident):
        if width == 1:
            return f"{'x' if value is None else int(value) & 1}{ident}"
        if value is None:
            return f"bx {ident}"
        return f"b{int(value) & ((1 << width) - 1):b} {ident}"

    last = [object()] * len(signals)
    for c, row in enumerate(samples):
        if len(row) != len(signals):
            raise ValueError(f"Sample {c} has {len(row)} values for {len(signals)} signals")
        lines.append(f"#{c * period_ns}")
        lines.append(f"1{_vcd_id(0)}")
        for k, ((_, w), ident, v) in enumerate(zip(signals, ids, row)):
            if c == 0 or v != last[k]:
                lines.append(fmt(v, w, ident))
                last[k] = v
        lines.append(f"#{c * period_ns + period_ns // 2}")
        lines.append(f"0{_vcd_id(0)}")
    lines.append(f"#{len(samples) * period_ns}")
    write_bytes_atomic(path, ("\n".join(lines) + "\n").encode())
    return Path(path)


def _parse_value(text):
    digits = text.lower()
    if any(ch in "xz" for ch in digits):
        return None
    return int(digits, 2)


def read_vcd(path):
    """The :class:`Waveform` in the VCD file at ``path``; times in ns."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise VCDError(f"Waveform file {path} does not exist") from None
    except UnicodeDecodeError:
        raise VCDError(f"Waveform file {path} is not a text VCD (an FST file?)") from None
    header, sep, body = text.partition("$enddefinitions")
    if not sep:
        raise VCDError(f"Waveform file {path} is not a VCD: no $enddefinitions")
    unit = 1.0
    m = re.search(r"\$timescale\s+(\d+)\s*([munpf]?s)\s+\$end", header)
    if m:
        unit = int(m.group(1)) * _TIMESCALES[m.group(2)]
    scopes, by_id = [], {}
    for tok in re.finditer(r"\$(scope|upscope|var)\b(.*?)\$end", header, re.S):
        kind, args = tok.group(1), tok.group(2).split()
        if kind == "scope":
            scopes.append(args[-1])
        elif kind == "upscope":
            scopes.pop()
        else:
            width, ident, name = int(args[1]), args[2], args[3]
            full = ".".join(scopes[1:] + [name])
            by_id.setdefault(ident, []).append(Trace(full, width))
    time = 0.0
    for word in body.split()[1:]:  # skip the "$end" after $enddefinitions
        c = word[0]
        if c == "#":
            time = int(word[1:]) * unit
        elif c in "01xzXZ" and len(word) > 1:
            for tr in by_id.get(word[1:], ()):
                tr.changes.append((time, _parse_value(c)))
        elif c in "bB":
            pending = _parse_value(word[1:])
        elif c in "rR":
            pending = None
        elif c == "$":
            continue
        else:  # the identifier after a vector value
            for tr in by_id.get(word, ()):
                tr.changes.append((time, pending))
    traces = {tr.name: tr for group in by_id.values() for tr in group}
    return Waveform(traces)


def _label(value, width, fmt):
    if value is None:
        return "x"
    if fmt == "sdec" and value >> (width - 1):
        value -= 1 << width
    if fmt in ("dec", "sdec"):
        return str(value)
    return f"{value:x}"


def plot_waveform(wave, path=None, *, signals, windows=None, title=None, width_in=12.0):
    """Draw ``signals`` of ``wave`` against clock cycles; one panel per window.

    ``signals``: list of ``(name, label, fmt)`` or ``(name, label, fmt, valid)`` with ``fmt``
    ``"hex"``, ``"dec"`` or ``"sdec"`` (two's complement; one-bit signals ignore it) and
    ``valid`` the name of a one-bit signal that qualifies a bus: in cycles where it is low the
    bus is drawn as an idle grey line without a value, so only the values transferred stand out. ``windows``: list of ``(first_cycle,
    last_cycle, title)`` (default: the whole waveform). Saves a PNG at ``path`` if given; returns
    the matplotlib figure.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(wave.edges)
    if n == 0:
        raise VCDError("The waveform has no clock cycles")
    signals = [tuple(s) + (None,) * (4 - len(s)) for s in signals]
    values = {}
    for name, _, _, valid in signals:
        vals = wave.cycles(name)
        if valid is not None:
            vals = [_Beat(v) if q else _IDLE for v, q in zip(vals, wave.cycles(valid))]
        values[name] = vals
    windows = windows or [(0, n - 1, None)]
    rows = len(signals)
    row_h = 0.42
    heights = [rows * row_h + 0.7 for _ in windows]
    fig, axes = plt.subplots(len(windows), 1, figsize=(width_in, sum(heights) + 0.4),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (c0, c1, wtitle) in zip(axes[:, 0], windows):
        c0, c1 = max(0, int(c0)), min(n - 1, int(c1))
        px_per_cycle = ax.get_position().width * fig.get_figwidth() * fig.dpi / (c1 - c0 + 1)
        for r, (name, label, fmt, _) in enumerate(signals):
            y = rows - 1 - r
            vals = values[name][c0:c1 + 1]
            width = wave.traces[name].width
            if width == 1:
                xs = np.arange(c0, c1 + 2)
                ys = [y + 0.15 + 0.6 * (v or 0) for v in vals]
                ax.step(xs, ys + ys[-1:], where="post", color="#1f5fa8", lw=1.4)
                ax.fill_between(xs, y + 0.15, ys + ys[-1:], step="post", color="#1f5fa8",
                                alpha=0.12, lw=0)
                for k, v in enumerate(vals):
                    if v is None:  # x or z: a red band
                        ax.fill_between([c0 + k, c0 + k + 1], y + 0.15, y + 0.75,
                                        color="#f4c7c3", lw=0)
            else:
                _draw_bus(ax, vals, c0, y, width, fmt, px_per_cycle)
        ax.set_yticks([rows - 1 - r + 0.45 for r in range(rows)])
        ax.set_yticklabels([s[1] for s in signals], fontsize=9)
        ax.set_ylim(-0.1, rows)
        ax.set_xlim(c0, c1 + 1)
        ax.tick_params(axis="x", labelsize=8)
        span = c1 - c0 + 1
        step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
                    if span / s <= 25)
        ax.set_xticks(np.arange((c0 // step) * step, c1 + 2, step))
        ax.grid(axis="x", color="#dddddd", lw=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.set_xlabel("clock cycle", fontsize=9)
        if wtitle:
            ax.set_title(wtitle, fontsize=10, loc="left")
    if title:
        fig.suptitle(title, fontsize=11, x=0.01, ha="left")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def _draw_bus(ax, vals, c0, y, width, fmt, px_per_cycle):
    """Bus segments: a band per run of equal values, narrowed at each change, with its value."""
    lo, hi, mid = y + 0.15, y + 0.75, y + 0.45
    start = 0
    for k in range(1, len(vals) + 1):
        if k < len(vals) and vals[k] == vals[start]:
            continue
        x0, x1, v = c0 + start, c0 + k, vals[start]
        if v is _IDLE:
            ax.plot([x0, x1], [mid, mid], color="#999999", lw=1.0)
            start = k
            continue
        e = min(0.25, (x1 - x0) / 4)
        xs = [x0, x0 + e, x1 - e, x1, x1 - e, x0 + e, x0]
        ys = [mid, hi, hi, mid, lo, lo, mid]
        face = "#f4c7c3" if getattr(v, "value", v) is None else "#e8eef7"
        ax.fill(xs, ys, facecolor=face, edgecolor="#1f5fa8", lw=1.0)
        v = v.value if isinstance(v, _Beat) else v
        text = _label(v, width, fmt)
        if (x1 - x0) * px_per_cycle >= 7 * len(text) + 6:
            ax.text((x0 + x1) / 2, mid, text, ha="center", va="center", fontsize=8,
                    family="monospace")
        start = k
