"""Resources of a design predicted from its own structure, before synthesis (issue 19).

The board top is elaborated as :func:`slimgen.boards.build.build_bitstream` builds it and
turned into Amaranth's netlist (cells: operators with their widths, multiplexers, pattern
matches, flip-flops, memories). Every cell is counted by kind and width (:func:`structure`):

==============  ==============================================================================
``carry``       bits of adders, subtractors, negations and ordered comparisons of two
                signals (the carry chain: one logic cell per bit on iCE40, half a CCU2
                per bit on ECP5), as wide as the operands' significant bits
``inc``         bits of additions and subtractions of a constant (counters, rounding),
                which yosys often narrows or folds
``mux``         bits of 2:1 multiplexers: ``Mux``, each assignment of a ``with m.If/Switch``
                (the conditional assignment lists), variable part selects and shifts (a
                log₂ tree), small memories' read multiplexers
``logic``       bits of bitwise and, or, xor, equality tests, reductions and pattern matches
``ff``          flip-flop bits (registers, and the bits of a small written memory on iCE40,
                which has no distributed RAM)
``lutram``      bits of small memories, ECP5 only (distributed RAM: a LUT holds 16 × 2 bits)
``rom``         LUT4s of the ROMs kept in logic, the trees yosys makes of them
                (:func:`rom_luts`)
==============  ==============================================================================

Only what yosys keeps is counted: a cell that computes what an earlier one computes from the
same inputs is merged with it, again and again (``opt_merge`` on the flattened design; two
layers' Winograd transforms of one algorithm read the same operand bus, so the second tree
goes; an expression such as a bank read at a run-time index is a new multiplexer at every
use in Amaranth's netlist, one in yosys'), and only the output bits that
something reads, traced back bit by bit from the ports, memories and instances, are counted
(``opt_clean``, ``wreduce``: an adder is as wide as its highest bit read) (:func:`_merged`,
:func:`_live_nets`).

The logic cells (iCE40 ``ICESTORM_LC``) or LUT4s (ECP5 ``TRELLIS_COMB``) nextpnr reports are
``base + Σ coefficient × count`` with one small set of coefficients per family
(:data:`COEFFICIENTS`), fitted on a calibration set of built designs and checked on others
(``bench/resources.py``; bench/README.md says how and how well). DSP blocks come from the
multiplies of two signals, each operand's significant width (its sign or zero extension
stripped) split as yosys' ``mul2dsp`` splits it (:func:`slimgen.boards.estimate.multiplier_blocks`);
block RAMs from the memories, as :mod:`slimgen.boards.estimate` counts them from Verilog.

Each count is attributed to the top-level submodule of the network it sits in
(:attr:`Prediction.modules`), so a plan can give per-layer figures where layers are modules
of their own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from .estimate import BLOCK_SHAPES, multiplier_blocks

__all__ = ["FEATURES", "LC_SHARE", "planned_lc", "COEFFICIENTS", "Prediction", "top_netlist", "netlist_of", "structure",
           "predict", "predict_top", "memory_kind", "memory_blocks", "BLOCK_STYLES"]

FEATURES = ("carry", "inc", "mux", "logic", "ff", "lutram", "rom")

#: The share of a board's logic cells / LUTs a design may be predicted to use when the flow
#: plans one (the planner, the compiler's board fit), per device family: the logic figure is
#: off by up to 10.4 % on the iCE40 designs bench/resources.py checks and up to 10.1 % on
#: the ECP5 ones (DSP blocks and block RAMs are exact), and routing gets slow near a full device:
#: on the ECP5-85F YoWASP's nextpnr routed copies of a design at 42 % of the LUTs in 4
#: minutes, at 68 % in 20 and 69 % in 38, and at 75 % and 90 % not in 72 and 81
#: (bench/README.md, stops 34 and 35).
LC_SHARE = {"ice40": 0.9, "ecp5": 0.7}


def planned_lc(board):
    """The logic cells / LUTs of ``board`` (a :class:`slimgen.boards.build.Board`) a
    design may be predicted to use when the flow plans one: :data:`LC_SHARE` of them."""
    return round(board.totals["lc"] * LC_SHARE[board.family])

#: Logic cells (iCE40) or LUT4s (ECP5) per counted bit, per family, and ``base``: fitted by
#: ``bench/resources.py --fit`` on its calibration designs only (non-negative least squares
#: of the model its leave-one-out error chose; bench/README.md). ``rom`` counts LUT4s
#: (:func:`rom_luts`), priced with the other LUT counts.
COEFFICIENTS = {
    # "one scale" on 7 iCEBreaker designs (leave-one-out worst 8.0 %): every count at its
    # prior (a carry bit, a flip-flop, a ROM LUT4 one logic cell, a multiplexer bit a half,
    # a logic bit a third) times 0.99
    "ice40": {"base": 0.0, "carry": 0.9912, "inc": 0.9912, "mux": 0.4956, "logic": 0.3304,
              "rom": 0.9912, "lutram": 0.031, "ff": 0.9912},
    # "lut/ff" on 6 ULX3S designs (leave-one-out worst 12.9 %): the LUT counts at their priors
    # times 1.10; flip-flops are TRELLIS_FF, but each brings about 0.38 LUT of next-state
    # logic the counts miss
    "ecp5": {"base": 0.0, "carry": 1.0956, "inc": 1.0956, "mux": 0.5478, "logic": 0.3652,
             "rom": 1.0956, "lutram": 0.1027, "ff": 0.3815},
}

_CARRY_OPS = {"+", "-", "u<", "u>", "u<=", "u>=", "s<", "s>", "s<=", "s>="}
_LOGIC_OPS = {"&", "|", "^", "==", "!=", "r|", "r&", "r^", "b"}
_SHIFT_OPS = {"<<", "u>>", "s>>"}
_DIVIDE_OPS = {"u//", "s//", "u%", "s%"}
_FREE_OPS = {"~", "u", "s"}


@dataclass(frozen=True)
class Prediction:
    """What a design is predicted to need on one family."""
    family: str
    lc: int
    dsp: int
    bram: int
    counts: dict                    # feature -> bits, the whole design
    modules: dict = field(default_factory=dict)   # module name -> {"lc", "dsp", "bram", ...}
    spram: int = 0                  # SB_SPRAM256KA instances (iCE40UP5K single-port RAMs)

    #: what :func:`slimgen.boards.estimate.check_estimate`'s refusal names
    source = "the design's netlist"

    def to_dict(self):
        return {"lc_estimate": self.lc, "dsp_estimate": self.dsp, "bram_estimate": self.bram,
                "spram_estimate": self.spram}


def top_netlist(qmodel, board, *, lanes=4, network_factory=None, network_options=None):
    """The netlist of the board top :func:`slimgen.boards.build.build_bitstream` builds."""
    from .top import BoardTop
    top = BoardTop(qmodel, lanes=lanes, leds=board.leds, network_options=network_options,
                   network_factory=network_factory)
    return netlist_of(top, board.platform())


def netlist_of(elaboratable, platform=None):
    """Amaranth's netlist of ``elaboratable`` (elaborated for ``platform``); a component's
    signature members are its ports, as Amaranth's Verilog and RTLIL back-ends make them."""
    from amaranth.hdl import Fragment, Value
    from amaranth.hdl._ir import PortDirection, build_netlist
    from amaranth.lib import wiring
    ports = {}
    if isinstance(getattr(elaboratable, "signature", None), wiring.Signature):
        for path, member, value in elaboratable.signature.flatten(elaboratable):
            direction = PortDirection.Input if member.flow == wiring.In \
                else PortDirection.Output
            ports["__".join(map(str, path))] = (Value.cast(value), direction)
    return build_netlist(Fragment.get(elaboratable, platform), ports, name="top")


def _significant(value):
    """Bits of an operand once the zero or sign extension an operator input carries is
    stripped (a constant's own bits are kept)."""
    nets = list(value)
    while len(nets) > 1 and nets[-1].is_const and nets[-1].const == 0:
        nets.pop()
    while len(nets) > 1 and nets[-1] == nets[-2]:
        nets.pop()
    return len(nets)


def _low_zeros(value):
    """Constant-zero bits at the bottom of an operand (a term shifted left)."""
    n = 0
    for net in value:
        if not (net.is_const and net.const == 0):
            break
        n += 1
    return n


def _is_const(value):
    return all(net.is_const for net in value)


def _const_of(value):
    """The unsigned integer of a constant operand."""
    return sum(net.const << k for k, net in enumerate(value))


def _assignment_bits(cell, flip_flops):
    """Multiplexer bits of a conditional assignment list. A constant assigned (a reset, a
    counter cleared) goes to the flip-flop's synchronous set/reset input; a register that
    holds its value unless assigned (the default is its own output) takes the first
    assignment through its clock enable."""
    bits = sum(len(a.value) for a in cell.assignments if not _is_const(a.value))
    held = all(net.is_cell and net.cell in flip_flops for net in cell.default)
    return max(0, bits - len(cell.default)) if held else bits


#: yosys' block RAM libraries (``share/ice40/brams.txt``, ``share/lattice/brams_16kd.txt``):
#: per block kind, its address bits, data widths, byte width (0: none), cost, and whether a
#: RAM (written) may use it (ECP5's PDPW16KD writes only 36 bits at once).
_BLOCKS = {
    "ice40": (("RAM4K", 11, (2, 4, 8, 16), 1, 64, True),),
    "ecp5": (("DP16KD", 14, (1, 2, 4, 9, 18), 9, 128, True),
             ("PDPW16KD", 14, (1, 2, 4, 9, 18, 36), 9, 128, True)),
}
#: memory_libmap's cost of a bit left to logic (ROM, RAM), of ECP5's 16 × 4 LUT RAM, and its
#: factors for read multiplexer and write decoder bits.
_LOGIC_COST_ROM, _LOGIC_COST_RAM = 1 / 16, 1.0
_LUTRAM_COST, _LUTRAM_SHAPE = 4, (16, 4)
_FACTOR_MUX = _FACTOR_DEMUX = 0.5
#: memory_libmap's emulation score (× ``FACTOR_EMU`` 2) of a block for slimgen's memories,
#: read from its debug log on the CNN and compiler engines (iCE40): 1 for a ROM, 7 for a RAM
#: whose read port sees its own writes (transparency and read-first emulated). On ECP5 a RAM's
#: is 5, as YoWASP yosys 0.70 maps the LSTM engine's non-transparent 74-deep RAMs: 17, 18 and
#: 19 bits wide to LUT RAM (cost 134, 136, 138), 20 and 24 bits to a 36-bit-wide PDPW16KD
#: (128 + 2 × 5 against LUT RAM's 140, 168).
_EMULATION = {("ice40", False): 1, ("ice40", True): 7, ("ecp5", False): 1, ("ecp5", True): 5}
_FACTOR_EMU = 2


def _port_copies(family, written, reads):
    """Copies of a memory its read ports need: an iCE40 block reads on one port; an ECP5
    DP16KD has two, both free to read in a ROM, one shared with the write in a RAM."""
    reads = max(1, reads)
    return reads if family == "ice40" or written else -(-reads // 2)


def _block_cost(depth, width, family, *, written, reads):
    """``(cost, blocks)`` of the cheapest block RAM geometry, as memory_libmap's
    ``handle_geom`` finds it: for each base width, the memory cut into address slices of the
    block's depth, the slices laid side by side across as many blocks as their bits need
    (a 528 × 9 ROM: three 256-deep slices of 9 bits in two 16-bit-wide blocks), a read
    multiplexer over the slices, a write decoder when there are several."""
    best = None
    for _, abits, dbits, byte, cost, ram_ok in _BLOCKS[family]:
        if written and not ram_ok:
            continue
        for i, unit in enumerate(dbits):
            eff = 1 if not written else min(byte or unit, unit)
            swizzle = -(-width // eff) * eff
            slices = -(-depth // (1 << (abits - i)))
            blocks = -(-(slices * swizzle) // unit) * _port_copies(family, written, reads)
            total = cost * blocks + _FACTOR_MUX * (slices - 1) * width * max(1, reads) \
                + _FACTOR_EMU * _EMULATION[family, written]
            if written and slices > 1:
                total += _FACTOR_DEMUX * slices
            if best is None or total < best[0]:
                best = (total, blocks)
    return best


#: Values of yosys' ``ram_style`` attribute that ask memory_libmap for block RAM whatever the
#: cost (what :func:`slimgen.hw.lib.act_memory.act_memory_attrs` sets for ``"bram"``).
BLOCK_STYLES = ("block", "block_ram", "ebr", "bram")


def memory_kind(depth, width, family, *, written=True, reads=1, style=None):
    """Where yosys puts a ``depth × width`` memory on ``family``: ``("block", n)`` block RAMs,
    ``("lutram", n)`` ECP5 16 × 4 LUT RAMs, or ``("logic", 0)``; block RAM whatever the cost
    when its ``ram_style`` attribute (``style``) is one of :data:`BLOCK_STYLES`.

    As yosys' ``memory_libmap`` chooses: the cheapest of soft logic (a ROM bit costs 1/16, a
    RAM bit 1), the family's block RAM (:func:`_block_cost`: 64 per iCE40 block, 128 per ECP5
    block, plus multiplexers and emulated port behaviour) and, for a RAM on ECP5, LUT RAM (4 per 16 × 4). Logic wins
    ties (yosys keeps the first of equal costs, logic first, its cost truncated to an
    integer)."""
    cost, blocks = _block_cost(depth, width, family, written=written, reads=reads)
    if style in BLOCK_STYLES:
        return ("block", blocks)
    logic = int(depth * width * (_LOGIC_COST_RAM if written else _LOGIC_COST_ROM))
    choice, best = ("logic", 0), logic
    candidates = [(cost, ("block", blocks))]
    if family == "ecp5" and written:
        d, w = _LUTRAM_SHAPE
        rows = -(-depth // d)
        n = -(-width // w) * rows * max(1, reads)
        candidates.insert(0, (_LUTRAM_COST * n + (rows - 1) * width * reads * _FACTOR_MUX,
                              ("lutram", n)))
    for cost, kind in candidates:
        if cost < best:
            choice, best = kind, cost
    return choice


def memory_blocks(depth, width, family, *, written=True, reads=1):
    """Block RAMs of a ``depth × width`` memory on ``family`` (0: not in block RAM)."""
    kind, n = memory_kind(depth, width, family, written=written, reads=reads)
    return n if kind == "block" else 0


def rom_luts(depth, width, family):
    """LUT4s of the trees yosys makes of a ``depth × width`` ROM kept in logic: per output
    bit, a LUT4 for every 16 of the ``2^a`` words its ``a`` address bits reach (yosys fills
    the words past ``depth`` rather than leaving them free), and the 2:1 multiplexers that
    join them: LUT4s on the iCE40 (``2^(a−4) − 1``); on the ECP5 free in a slice's PFUMX and
    L6MUX21 up to 7 address bits, a LUT4 for every two 128-word halves above.

    YoWASP yosys on ROMs of random words (as weights are): ECP5 24 × 8 to 128 × 15 as
    counted, 159 × 13 216 LUT4s (221 counted), 200 × 8 144-156 (136), 256 × 8 155-169 (136);
    iCE40 24 × 8 25-28 (24), 48 × 8 58-61 (56), 100 × 8 119-124 (120)."""
    a = max(4, (depth - 1).bit_length())
    leaves = 1 << (a - 4)
    muxes = leaves - 1 if family == "ice40" else (1 << max(0, a - 7)) - 1
    return width * (leaves + muxes)


def _rom_width(cell):
    """The data bits of a ROM that vary from word to word: yosys keeps a column that is the
    same in every word as a constant (a 75 × 15 table of multipliers whose top 4 bits are all
    zero is mapped as 75 × 11, in logic rather than a block RAM)."""
    init = [int(v) for v in cell.init] if len(cell.init) else [0]
    if len(init) < cell.depth:        # the words not given are zero
        init.append(0)
    return sum(1 for k in range(cell.width) if len({(v >> k) & 1 for v in init}) > 1)


#: Operators whose output bit k depends on their inputs' bits 0..k only (an adder's carry
#: runs upwards) or on bit k only (bitwise operators, a multiplexer's data).
_UPWARD_OPS = {"+", "-", "*"}
_BITWISE_OPS = {"&", "|", "^", "~", "m"}
#: Cells that only compute their outputs: dropped by yosys (``opt_clean``) when nothing
#: reads them, and narrowed (``wreduce``) to the output bits something reads.
_PURE = ("Operator", "Part", "Matches", "PriorityMatch", "AssignmentList", "FlipFlop")


def _merged(netlist):
    """``{net: net}``: the outputs of cells that compute what an earlier cell computes from
    the same inputs, mapped to that cell's, found again and again until nothing changes (as
    yosys' ``opt_merge`` runs on the flattened design: two layers' Winograd transforms of
    the same algorithm read the same operand bus, so the second whole tree goes)."""
    from amaranth.hdl import _nir
    pure = tuple(getattr(_nir, name) for name in _PURE)
    canon = {}

    def find(net):
        while net in canon:
            net = canon[net]
        return net

    def key(cell):
        out = [type(cell).__name__]
        for name, v in sorted(vars(cell).items()):
            if name in ("module_idx", "src_loc", "attributes"):
                continue
            if isinstance(v, _nir.Net):
                v = find(v)
            elif isinstance(v, _nir.Value):
                v = tuple(find(n) for n in v)
            elif isinstance(v, tuple) and v and isinstance(v[0], _nir.Value):
                v = tuple(tuple(find(n) for n in x) for x in v)
            elif isinstance(v, tuple) and v and isinstance(v[0], _nir.Assignment):
                v = tuple((find(a.cond), a.start, tuple(find(n) for n in a.value))
                          for a in v)
            out.append((name, v))
        return tuple(out)

    gone = set()
    changed = True
    while changed:
        changed = False
        seen = {}
        for idx, cell in enumerate(netlist.cells):
            if idx in gone or not isinstance(cell, pure):
                continue
            first = seen.setdefault(key(cell), idx)
            if first != idx:
                gone.add(idx)
                changed = True
                for net in cell.output_nets(idx):
                    canon[net] = _nir.Net.from_cell(first, net.bit)
    return {net: find(net) for net in canon}


def _live_nets(netlist, constants):
    """The nets something outside the pure logic needs (a port, an instance, a memory
    write), traced back bit by bit: an adder's output bit k needs its inputs' bits 0..k, a
    bitwise operator's, a multiplexer's or a flip-flop's bit k their inputs' bit k; a net of
    ``constants`` (:func:`slimgen.boards.constant_nets.constant_nets`) needs nothing. What is
    not live, yosys removes (``opt_clean``) or narrows (``wreduce``: an accumulator of which
    only the low bits are read keeps only those)."""
    from amaranth.hdl import _nir
    pure = tuple(getattr(_nir, name) for name in _PURE)
    canon = _merged(netlist)
    live = set()
    work = []
    for cell in netlist.cells:
        if not isinstance(cell, pure):
            work.extend(cell.input_nets())
    while work:
        net = work.pop()
        net = canon.get(net, net)
        if net.is_const or net in live or net in constants:
            continue
        live.add(net)
        if not net.is_cell:
            continue
        cell, k = netlist.cells[net.cell], net.bit
        if isinstance(cell, _nir.Operator) and cell.operator in _UPWARD_OPS:
            for v in cell.inputs:
                work.extend(v[:k + 1])
        elif isinstance(cell, _nir.Operator) and cell.operator in _BITWISE_OPS:
            *sel, = cell.inputs[:1] if cell.operator == "m" else ()
            for v in sel:
                work.extend(v)
            for v in cell.inputs[len(sel):]:
                work.append(v[k])
        elif isinstance(cell, _nir.Operator) and cell.operator in _SHIFT_OPS \
                and _is_const(cell.inputs[1]):          # wiring: the one bit it moves
            value, amount = cell.inputs[0], _const_of(cell.inputs[1])
            j = k - amount if cell.operator == "<<" else k + amount
            if 0 <= j < len(value) or cell.operator == "s>>":
                work.append(value[min(j, len(value) - 1)])
        elif isinstance(cell, _nir.FlipFlop):
            work.extend((cell.data[k], cell.clk, cell.arst))
        elif isinstance(cell, _nir.AssignmentList):
            work.extend(net for net, _ in cell.comb_edges_to(k))
        else:
            work.extend(cell.input_nets())
    return live


def structure(netlist, family):
    """Counts of ``netlist`` for ``family``: ``{module: {feature: bits, "dsp", "bram"}}``,
    ``module`` the name path of the cell's module (a tuple)."""
    from amaranth.hdl import _nir

    from .constant_nets import constant_nets
    counts = defaultdict(lambda: defaultdict(int))
    memories = {}
    ports = defaultdict(list)
    sync_reads = defaultdict(int)
    flip_flops = set()
    constants = constant_nets(netlist)
    live = _live_nets(netlist, constants)

    def folded(value):          # the value with its constant nets as constants
        return _nir.Value(_nir.Net.from_const(constants[n]) if n in constants else n
                          for n in value)
    for cell_idx, cell in enumerate(netlist.cells):
        if isinstance(cell, _nir.FlipFlop):
            flip_flops.add(cell_idx)
        if isinstance(cell, (_nir.SyncReadPort, _nir.AsyncReadPort, _nir.SyncWritePort)):
            ports[cell.memory].append(cell)
        if isinstance(cell, _nir.SyncReadPort):
            sync_reads[cell.memory] += 1
    for cell_idx, cell in enumerate(netlist.cells):
        c = counts[netlist.modules[cell.module_idx].name]
        if isinstance(cell, (_nir.Operator, _nir.FlipFlop, _nir.Part, _nir.AssignmentList,
                             _nir.Matches)):
            used = sorted(net.bit for net in cell.output_nets(cell_idx) if net in live)
            if not used:                  # nothing reads it: yosys removes it
                continue
        if isinstance(cell, _nir.Operator):
            op, ins = cell.operator, tuple(folded(v) for v in cell.inputs)
            width = len(ins[-1]) if op != "m" else len(ins[1])
            if op in _UPWARD_OPS or op in _BITWISE_OPS:    # up to the highest bit read
                width = min(width, used[-1] + 1)
            if op in ("+", "-") and len(ins) == 2:
                # as wide as the operands' significant bits and a carry (yosys trims the
                # sign extension above), at most the result bits read; low bits where an
                # operand is zero (a shifted term) pass the other through
                top = min(width, max(_significant(v) for v in ins) + 1)
                bits = max(0, top - max(_low_zeros(v) for v in ins))
                c["inc" if any(_is_const(v) for v in ins) else "carry"] += bits
            elif op == "-":                                   # negation
                c["carry"] += min(width, _significant(ins[0]))
            elif op in _CARRY_OPS:
                if any(_is_const(v) for v in ins):   # against a constant: a few LUTs
                    c["logic"] += max(_significant(v) for v in ins if not _is_const(v))
                else:
                    c["carry"] += max(_significant(v) for v in ins)
            elif op == "*":
                a, b = ins
                if _is_const(a) or _is_const(b):
                    c["carry"] += width
                else:
                    c["dsp"] += multiplier_blocks(_significant(a), _significant(b), family)
            elif op == "m":
                c["mux"] += len(used)
            elif op in _DIVIDE_OPS:      # a carry chain per quotient bit
                c["carry"] += width * width
            elif op in _SHIFT_OPS and _is_const(ins[1]):    # by a constant: wiring
                pass
            elif op in _SHIFT_OPS:
                c["mux"] += len(used) * max(1, math.ceil(math.log2(max(2, len(ins[0])))))
            elif op in _BITWISE_OPS:
                c["logic"] += len(used)
            elif op in _LOGIC_OPS:
                c["logic"] += max(len(v) for v in ins)
            elif op not in _FREE_OPS:
                c["logic"] += width
        elif isinstance(cell, _nir.Matches):
            # a pattern tests its cared-for bits; one bit is a wire
            c["logic"] += sum(n for n in (len(p) - p.count("-") for p in cell.patterns)
                              if n > 1)
        elif isinstance(cell, _nir.AssignmentList):
            c["mux"] += _assignment_bits(cell, flip_flops)
        elif isinstance(cell, _nir.Part):
            positions = max(1, (len(cell.value) - cell.width) // cell.stride + 1)
            c["mux"] += cell.width * (positions - 1)
        elif isinstance(cell, _nir.FlipFlop):
            c["ff"] += len(used)
        elif isinstance(cell, _nir.Instance) and cell.type == "SB_SPRAM256KA":
            c["spram"] += 1           # a single-port RAM primitive, placed as it is
        elif isinstance(cell, _nir.Memory):
            written = any(isinstance(p, _nir.SyncWritePort) for p in ports[cell_idx])
            reads = sum(1 for p in ports[cell_idx] if not isinstance(p, _nir.SyncWritePort))
            width = cell.width if written else _rom_width(cell)
            depth = _depth_read(cell.depth, [folded(p.addr) for p in ports[cell_idx]
                                             if not isinstance(p, _nir.SyncWritePort)])
            kind, n = memory_kind(depth, width, family, written=written, reads=reads,
                                  style=cell.attributes.get("ram_style"))
            bits = depth * width
            if kind == "block":
                c["bram"] += n
            elif kind == "lutram":    # 16-deep LUT RAMs and a read multiplexer over them
                c["lutram"] += bits * max(1, reads)
                rows = -(-depth // _LUTRAM_SHAPE[0])
                c["mux"] += max(1, reads) * cell.width * (rows - 1)
            elif written:         # flip-flops and a read multiplexer per port
                c["ff"] += bits + sync_reads[cell_idx] * cell.width
                c["mux"] += reads * cell.width * (depth - 1)
            else:                 # a ROM: a tree of LUTs over the address per output bit
                c["rom"] += rom_luts(depth, width, family) * reads
                c["ff"] += sync_reads[cell_idx] * cell.width   # the read data registers
    return {name: dict(c) for name, c in counts.items()}


def _depth_read(depth, addresses):
    """The words of a ``depth``-deep memory its read ports can reach: with the top bits of
    every read address constant 0, the words below them (yosys keeps only those; the words
    past them are written but never read)."""
    if not addresses:
        return depth
    reach = max(1 << max((k + 1 for k, n in enumerate(a)
                          if not (n.is_const and n.const == 0)), default=0)
                for a in addresses)
    return min(depth, reach)


def _lc(counts, coefficients):
    return sum(coefficients[k] * counts.get(k, 0) for k in FEATURES)


def predict(netlist, family, *, coefficients=None, depth=3):
    """The :class:`Prediction` of ``netlist`` on ``family``; ``modules`` sums the counts per
    module path below the top cut at ``depth`` names (``bridge.network.<unit>`` by default;
    ``""`` is the top's own)."""
    coefficients = coefficients or COEFFICIENTS[family]
    per_module = structure(netlist, family)
    total = defaultdict(int)
    modules = defaultdict(lambda: defaultdict(int))
    for name, c in per_module.items():
        key = ".".join(name[1:depth + 1])
        for k, v in c.items():
            total[k] += v
            modules[key][k] += v
    out = {}
    for key, c in modules.items():
        out[key] = {"lc": round(_lc(c, coefficients)), "dsp": c.get("dsp", 0),
                    "bram": c.get("bram", 0)}
    lc = round(coefficients["base"] + _lc(total, coefficients))
    return Prediction(family, lc, total.get("dsp", 0), total.get("bram", 0),
                      {k: total.get(k, 0) for k in FEATURES}, out, total.get("spram", 0))


def predict_top(qmodel, board, *, lanes=4, network_factory=None, network_options=None,
                coefficients=None):
    """The :class:`Prediction` of the board top of ``qmodel`` on ``board`` (a
    :class:`slimgen.boards.build.Board`)."""
    netlist = top_netlist(qmodel, board, lanes=lanes, network_factory=network_factory,
                          network_options=network_options)
    return predict(netlist, board.family, coefficients=coefficients)
