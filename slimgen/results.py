"""What the stages give back: :class:`Summary` (a run's figures, printed as `slimgen summary`
prints them), one frozen result per stage with the figures the command line prints, and the
golden model's :class:`Trace`."""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

__all__ = ["Summary", "Trace", "TraceEntry", "TrainResult", "CompressResult", "QuantizeResult",
           "GenerateResult", "VerifyResult", "BuildResult", "ReportResult", "RESULTS",
           "format_summary", "SUMMARY_KEYS"]


SUMMARY_KEYS = (
    "float_accuracy", "compressed_accuracy", "int_accuracy", "hw_accuracy", "images_verified",
    "hw_bit_exact", "board", "lc_used", "lc_total", "dsp_used", "dsp_total", "bram_used",
    "bram_total", "fmax_mhz", "target_mhz", "cycles_per_inference", "cycles_between_inferences",
    "inferences_per_second", "latency_us", "cycles_lower_bound", "latency_over_bound",
    "bitstream",
)


def _number_text(v):
    if not isinstance(v, float):
        return str(v)
    if v and abs(v) < 1e-3:
        return f"{v:.3g}"          # e.g. an import's relative difference from its source
    return f"{v:.4f}" if v < 10 else f"{v:.1f}"


def format_summary(summary):
    """The summary as a two-column table, the issue's keys first, then one row per layer."""
    keys = [k for k in SUMMARY_KEYS if k in summary]
    keys += sorted(k for k in summary if k not in keys and k != "layers")
    width = max(len(k) for k in keys)
    lines = [f"{k:<{width}}  {_number_text(summary[k])}" for k in keys]
    layers = summary.get("layers") or []
    if layers:
        lines.append("")
        lines.append(f"{'layer':<8} {'engine':<12} {'shape':>8} {'bits':>4} {'sparsity':>8} "
                     f"{'mults/out':>9} {'lanes':>5} {'cycles':>6}  non-zeros per lane")
        for e in layers:
            shape = "x".join(str(d) for d in e["shape"])
            bits = "-" if e.get("weight_bits") is None else e["weight_bits"]
            sparsity = "-" if e.get("sparsity") is None else f"{e['sparsity']:.3f}"
            groups = e.get("nonzeros_per_group") or "-"
            lines.append(f"{e['name']:<8} {e['engine']:<12} {shape:>8} {bits:>4} "
                         f"{sparsity:>8} {e['mults']:>9.1f} {e['lanes']:>5} "
                         f"{e['cycles']:>6}  {groups}")
    return "\n".join(lines)


class Summary(Mapping):
    """A run's figures (``summary.json``), read only; printed as ``slimgen summary`` prints
    them. Keys read as attributes too (``summary.int_accuracy``)."""

    def __init__(self, figures):
        self._figures = json.loads(json.dumps(figures))      # a deep copy, plain values

    def __getitem__(self, key):
        return self._figures[key]

    def __iter__(self):
        return iter(self._figures)

    def __len__(self):
        return len(self._figures)

    def __getattr__(self, name):
        try:
            return self.__dict__["_figures"][name]
        except KeyError:
            raise AttributeError(f"the summary has no figure {name!r}") from None

    def as_dict(self):
        return json.loads(json.dumps(self._figures))

    def __repr__(self):
        return format_summary(self._figures)


def frozen_value(v):
    if isinstance(v, list):
        return tuple(frozen_value(e) for e in v)
    if isinstance(v, dict):
        return MappingProxyType({k: frozen_value(e) for k, e in v.items()})
    return v


class _Result:
    """A stage's figures as fields, ``figures`` its whole record (``<stage>.json``); printed
    as a few lines. ``_KEYS``: a field's key in the record where it is not its own name."""
    _KEYS = {}
    _LONG = ("history", "layers", "layer_sparsity")

    @classmethod
    def _of(cls, figures, **extra):
        values = {f.name: frozen_value(figures.get(cls._KEYS.get(f.name, f.name)))
                  for f in fields(cls) if f.name != "figures"}
        return cls(**{**values, **extra, "figures": MappingProxyType(dict(figures))})

    def __repr__(self):
        rows = [(f.name, getattr(self, f.name)) for f in fields(self)
                if f.name != "figures" and getattr(self, f.name) is not None]
        width = max([len(k) for k, _ in rows], default=0)
        lines = [type(self).__name__]
        for k, v in rows:
            if k in self._LONG:
                v = f"{len(v)} entries" if k != "history" else f"{len(v)} epochs"
            elif isinstance(v, tuple):
                v = ", ".join(map(str, v))
            lines.append(f"  {k:<{width}}  {_number_text(v)}")
        return "\n".join(lines)


@dataclass(frozen=True, repr=False)
class TrainResult(_Result):
    """The float model's accuracy on the test and validation splits, its epochs and their
    ``history`` (per epoch: loss, train and validation accuracy, learning rate)."""
    float_accuracy: float = None
    val_accuracy: float = None
    epochs: int = None
    history: tuple = ()
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "train_seconds"}


@dataclass(frozen=True, repr=False)
class CompressResult(_Result):
    """The compressed float model's test accuracy, its fraction of zero weights (in all and
    per weight array)."""
    method: str = None
    compressed_accuracy: float = None
    sparsity: float = None
    layer_sparsity: tuple = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "compress_seconds"}


@dataclass(frozen=True, repr=False)
class QuantizeResult(_Result):
    """The integer model's test accuracy; per weight layer its weight and accumulator widths;
    the activations' and the logits' widths."""
    int_accuracy: float = None
    weight_bits: tuple = None
    acc_bits: tuple = None
    act_bits: int = None
    logit_bits: int = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "quantize_seconds"}


@dataclass(frozen=True, repr=False)
class GenerateResult(_Result):
    """The Verilog file and its size, the multipliers, per layer its lanes and engine, the
    multiplications of one inference, the cycles' lower bound and estimate, the layers'
    entries (``slimgen summary``'s table)."""
    verilog: str = None
    verilog_lines: int = None
    multipliers: int = None
    lanes: tuple = None
    engines: tuple = None
    mults_per_inference: int = None
    cycles_lower_bound: int = None
    cycles_estimate: int = None
    layers: tuple = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "generate_seconds"}


@dataclass(frozen=True, repr=False)
class VerifyResult(_Result):
    """The simulated RTL's test accuracy, whether every logit of the ``images`` equalled the
    golden model's, the simulator, the cycles of one inference and between two."""
    hw_accuracy: float = None
    bit_exact: bool = None
    images: int = None
    simulator: str = None
    cycles: int = None
    cycles_between: int = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "verify_seconds", "bit_exact": "hw_bit_exact",
             "images": "images_verified", "cycles": "cycles_per_inference",
             "cycles_between": "cycles_between_inferences"}


@dataclass(frozen=True, repr=False)
class BuildResult(_Result):
    """Utilisation and timing from nextpnr's report, the estimate made before it from the
    design's netlist (logic cells / LUTs, DSP blocks, block RAMs), and the bitstream."""
    board: str = None
    lc_used: int = None
    lc_total: int = None
    dsp_used: int = None
    dsp_total: int = None
    bram_used: int = None
    bram_total: int = None
    fmax_mhz: float = None
    target_mhz: float = None
    bitstream: str = None
    lc_estimate: int = None
    dsp_estimate: int = None
    bram_estimate: int = None
    tool_seconds: float = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "build_seconds"}


@dataclass(frozen=True, repr=False)
class ReportResult(_Result):
    """The report's two files."""
    html: str = None
    md: str = None
    seconds: float = None
    figures: Mapping = field(default=None, compare=False)
    _KEYS = {"seconds": "report_seconds", "html": "report_html", "md": "report_md"}


RESULTS = {"train": TrainResult, "compress": CompressResult, "quantize": QuantizeResult,
            "generate": GenerateResult, "verify": VerifyResult, "build": BuildResult,
            "report": ReportResult}


@dataclass(frozen=True, eq=False)
class TraceEntry:
    """One record of the integer model: ``name`` (the description layer's kind and index,
    ``dense_1``), ``kind`` (the record's: dense, conv, pool, flatten, relu, recurrent),
    ``source`` (the description layer), ``layer`` (its kind) and ``output`` (int64, (n, *shape)
    channels-last)."""
    name: str
    kind: str
    source: int
    layer: str
    output: object

    def __repr__(self):
        out = self.output
        span = f" in [{out.min()}, {out.max()}]" if out.size else ""
        return f"{self.name:<14} {self.kind:<10} {str(out.shape):<16} {out.dtype}{span}"


class Trace(tuple):
    """The :class:`TraceEntry` of every integer record, in order; ``trace["dense_1"]`` by
    name too."""

    @property
    def names(self):
        return [e.name for e in self]

    def __getitem__(self, key):
        if isinstance(key, str):
            for e in self:
                if e.name == key:
                    return e
            raise KeyError(f"no record named {key!r}; the records are "
                           f"{', '.join(self.names)}")
        return super().__getitem__(key)

    def __repr__(self):
        return "\n".join(map(repr, self))
