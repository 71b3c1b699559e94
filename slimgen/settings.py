"""Run settings: :class:`RunConfig`, everything a run depends on (``config.json`` in the run
folder), each field checked where the config is built, so that no run folder is touched for a
setting that cannot work."""

import math
from dataclasses import asdict, dataclass, fields

# where the lanes keep their copies of the activations (a module without Amaranth)
from slimgen.hw.lib.act_memory import ACT_MEMORIES

__all__ = ["RunConfig", "SettingError", "SettingTypeError", "ENGINES", "MAX_UNITS",
           "MAX_EPOCHS", "MAX_BATCH_SIZE"]

ENGINES = ("auto", "dense", "sparse", "folded", "dataflow")
#: The most copies of a design (``copies``): each a whole network engine, its memories too.
MAX_COPIES = 64
#: Where the compiler's shared array (the folded MLP's) keeps its weights: block RAM, the
#: iCE40UP5K's SPRAMs (written at run time, over the UART), or SPRAM only when the block RAMs
#: are predicted not to hold them.
WEIGHT_MEMORIES = ("auto", "bram", "spram")
# Upper limits, so that a typo fails here and not with a MemoryError after the run folder
# changed: a layer (MLP sizes, LSTM hidden units, lanes) of at most 4096 units, and bounded
# training loops.
MAX_UNITS = 4096
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 65_536


class SettingError(ValueError):
    """A run setting out of its range or at odds with another; ``setting`` names it, and the
    message starts with its name (the CLI puts the option or the file it came from there)."""

    def __init__(self, setting, message):
        super().__init__(f"{setting} {message}")
        self.setting = setting


class SettingTypeError(SettingError, TypeError):
    """A run setting of the wrong type (e.g. ``"seed": "0"`` in a config.json)."""


def _not(v, ok_type):
    """``not <value>``, with the type named when the type is wrong."""
    return f"not {v!r}" if ok_type else f"not {v!r} (a {type(v).__name__})"


def _check_int(name, v, least, most=None, *, cap=None):
    """An integer from ``least`` to ``most``; or, with ``cap`` (a sanity limit, not part of
    what the setting means), at least ``least``, and at most ``cap`` with a message of its
    own naming the limit and ``cap[1]``, why it is there."""
    if most is not None:
        what = f"an integer from {least} to {most}"
    else:
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(
            least, f"an integer ≥ {least}")
    is_int = isinstance(v, int) and not isinstance(v, bool)
    if not is_int:
        raise SettingTypeError(name, f"must be {what}, {_not(v, False)}")
    if v < least or (most is not None and v > most):
        raise SettingError(name, f"must be {what}, {_not(v, True)}")
    if cap is not None and v > cap[0]:
        raise SettingError(name, f"must be at most {cap[0]} ({cap[1]}), not {v}")


def _check_number(name, v, what, ok):
    """A real number (int or float, not bool) for which ``ok(v)`` holds."""
    is_number = isinstance(v, (int, float)) and not isinstance(v, bool)
    if not is_number:
        raise SettingTypeError(name, f"must be {what}, {_not(v, False)}")
    if not (math.isfinite(v) and ok(v)):
        raise SettingError(name, f"must be {what}, {_not(v, True)}")


def _check_choice(name, v, choices):
    if not isinstance(v, str) or v not in choices:
        raise SettingError(name, f"must be one of {', '.join(choices)}, not {v!r}")


@dataclass(frozen=True)
class RunConfig:
    """Everything a run depends on; stored as ``config.json`` in the run folder.

    Every field is checked where the config is built (type, range, and against the model kind
    and the board), so a run folder is never touched for a setting that cannot work; a bad one
    raises :class:`SettingError` (a ``ValueError``; :class:`SettingTypeError`, also a
    ``TypeError``, for a wrong type) naming the setting, the value and what is allowed.
    """
    model: str = "mlp"         # mlp, cnn or lstm (presets), or net (slimgen.models)
    net: str | None = None     # model net: the network description file (.json)
    source: str | None = None  # model net: the ONNX file it was imported from (the train
                               # stage imports it again, slimgen.import_cli)
    data: str = "digits"
    sizes: tuple = (64, 32, 10)  # MLP layer sizes
    hidden: int = 32           # LSTM hidden units
    seed: int = 0
    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    weight_bits: int = 8
    act_bits: int = 8
    method: str = "none"       # compression: none or a method of slimgen.compress_cli
    sparsity: float = 0.9      # target fraction of zero weights (pruning methods)
    bits: float = 4.0          # target average weight bits (joint)
    compress_epochs: int | None = None   # epochs of the compression phase (None: the method's)
    finetune_epochs: int | None = None   # epochs of masked fine-tuning after it (None: the method's)
    lanes: int = 4             # MAC lanes per layer (and groups of balanced sparsity)
    copies: int = 1            # copies of the whole design taking samples in turn
    engine: str = "auto"       # dense, sparse, folded, or auto (see ``engines``)
    layout: str = "rows"       # sparse engines and balanced groups: rows or banks
    board: str = "icebreaker"
    sim: str = "icarus"
    objective: str | None = None  # the planner: latency, throughput or area (None: lanes as given)
    fps: float | None = None      # the planner: at least this many inferences per second
    weight_memory: str = "auto"   # bram, spram (iCE40UP5K, loaded at run time) or auto
    act_memory: str = "auto"      # the lanes' activation copies (LSTM/GRU, CNN): bram or auto

    def __post_init__(self):
        from slimgen.models import MODEL_KINDS, get_model_kind
        _check_choice("model", self.model, MODEL_KINDS)
        if self.net is not None and self.model != "net":
            raise SettingError("net", f"is a network description of your own; it replaces "
                                      f"--model {self.model} (give one of them)")
        if self.source is not None and (not isinstance(self.source, str) or not self.source):
            raise SettingError("source", f"must be the path of an ONNX model (.onnx), not "
                                         f"{self.source!r}")
        if self.source is not None and self.model != "net":
            raise SettingError("source", f"is the ONNX model a network was imported from "
                                         f"('slimgen import'); it needs model 'net', not "
                                         f"{self.model!r}")
        from slimgen.sw.data import DATASETS, MissingExtraError, check_available, data_words
        if not isinstance(self.data, str) or not (self.data in DATASETS
                                                  or self.data.endswith(".npz")):
            raise SettingError("data", data_words(self.data))
        try:    # the data extra's package, before a run folder is touched
            check_available(self.data)
        except MissingExtraError as e:
            raise SettingError("data", str(e).removeprefix("Data set ")) from None
        sizes = self.sizes
        if isinstance(sizes, (list, tuple)) and len(sizes) >= 2 and all(
                isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sizes):
            object.__setattr__(self, "sizes", tuple(sizes))
        else:
            raise SettingError("sizes", f"must be two or more positive integers, not "
                                        f"{list(sizes) if isinstance(sizes, tuple) else sizes!r}")
        wide = [f"{s} ({'the inputs' if k == 0 else f'layer{k - 1} outputs'})"
                for k, s in enumerate(sizes) if s > MAX_UNITS]
        if wide:
            raise SettingError("sizes", f"must be at most {MAX_UNITS} units a layer (what the "
                                        f"artifacts and the hardware take), not "
                                        f"{', '.join(wide)}")
        units = (MAX_UNITS, "what the artifacts and the hardware take")
        for name, least, most, cap in (
                ("hidden", 1, None, units), ("seed", 0, None, None),
                ("epochs", 1, None, (MAX_EPOCHS, "a bound on training time")),
                ("batch_size", 1, None, (MAX_BATCH_SIZE, "a bound on memory")),
                ("weight_bits", 2, 16, None), ("act_bits", 2, 16, None),
                ("lanes", 1, None, units), ("copies", 1, MAX_COPIES, None)):
            _check_int(name, getattr(self, name), least, most, cap=cap)
        _check_number("lr", self.lr, "a positive number", lambda v: v > 0)
        from slimgen.compress_cli import METHODS
        _check_choice("method", self.method, ("none",) + METHODS)
        if self.method == "lstm_gates" and self.model not in ("lstm", "net"):
            raise SettingError("method", f"'lstm_gates' prunes LSTM and GRU gates; it needs "
                                         f"--model lstm or a --net with an lstm or gru layer, "
                                         f"not --model {self.model}")
        _check_number("sparsity", self.sparsity, "a number in [0, 1)", lambda v: 0 <= v < 1)
        from slimgen.sw.compress.joint_prune_quant import JointConfig
        widths = JointConfig().bits
        _check_number("bits", self.bits, f"a number from {min(widths)} to {max(widths)} (the "
                                         f"joint method's candidate widths "
                                         f"{', '.join(map(str, widths))})",
                      lambda v: min(widths) <= v <= max(widths))
        for name, least in (("compress_epochs", 1), ("finetune_epochs", 0)):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < least
                                  or v > MAX_EPOCHS):
                raise SettingError(name, f"must be an integer from {least} to {MAX_EPOCHS}, or "
                                         f"unset for the method's default, not {v!r}")
        _check_choice("engine", self.engine, ENGINES)
        if self.engine == "folded" and self.model != "mlp":
            raise SettingError("engine", f"'folded' (every layer on one array) is for --model "
                                         f"mlp, not {self.model!r}")
        if self.engine == "dataflow" and self.model not in ("cnn", "net"):
            raise SettingError("engine", f"'dataflow' (a pipeline of shared-array engines, one "
                                         f"stage per weighted layer) is for --model cnn and "
                                         f"--net networks without recurrent layers, not "
                                         f"{self.model!r}" + (
                                             "; the MLP's --engine dense is a pipeline of "
                                             "one engine per layer" if self.model == "mlp"
                                             else ""))
        if self.layout not in ("rows", "banks"):
            raise SettingError("layout", f"must be 'rows' or 'banks', not {self.layout!r}")
        from slimgen.boards.build import BOARDS
        _check_choice("board", self.board, tuple(BOARDS))
        _check_choice("sim", self.sim, ("icarus", "verilator"))
        from slimgen.planner import OBJECTIVES
        if self.objective is not None:
            _check_choice("objective", self.objective, OBJECTIVES)
        if self.fps is not None:
            _check_number("fps", self.fps, "a positive number of inferences per second",
                          lambda v: v > 0)
            if self.objective is None:
                raise SettingError("fps", f"is a target for the planner; give --objective "
                                          f"latency, throughput or area with it")
        _check_choice("weight_memory", self.weight_memory, WEIGHT_MEMORIES)
        if self.weight_memory == "spram" and not BOARDS[self.board].totals.get("spram"):
            raise SettingError("weight_memory", f"'spram' keeps the weights in single-port "
                                                f"RAMs, which the {self.board} does not have; "
                                                f"give 'bram' or 'auto'")
        if self.weight_memory == "spram" and self.model in ("cnn", "lstm"):
            raise SettingError("weight_memory", f"'spram' is for the compiler's shared array "
                                                f"(--model mlp, or a --net it builds); the "
                                                f"{self.model} engine keeps its weights in "
                                                f"block RAM: give 'bram' or 'auto'")
        _check_choice("act_memory", self.act_memory, ACT_MEMORIES)
        if self.act_memory == "bram" and self.model == "mlp":
            raise SettingError("act_memory", "'bram' puts the lanes' copies of the activations "
                                             "of the recurrent engine and of the CNN's shared "
                                             "array in block RAM; the MLP's engines keep no "
                                             "such copies: give 'auto'")
        # what the model kind's hardware can take (lanes, layout)
        get_model_kind(self.model).check_config(self)

    @property
    def engines(self):
        """The engine of every layer unless told otherwise: sparse ones for pruned models; for
        a dense MLP every layer on one shared array (the multipliers of one engine per layer,
        never idle while another layer runs); dense for the dense layers of other models."""
        if self.engine != "auto":
            return self.engine
        if self.method != "none":
            return "sparse"
        return "folded" if self.model == "mlp" else "dense"

    def to_dict(self):
        d = asdict(self)
        d["sizes"] = list(self.sizes)
        return d

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"Unknown run settings {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)
