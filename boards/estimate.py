"""A resource estimate from the generated Verilog, for a fit check before synthesis.

Synthesis and place-and-route take a minute or more; counting what will need hard blocks takes
milliseconds and catches the usual misfit (too many lanes) at once:

- multipliers: every ``a * b`` of two non-constant operands in yosys' Verilog becomes one DSP
  block (``synth_ice40 -dsp`` maps each onto an SB_MAC16, ``synth_ecp5`` onto an 18×18
  multiplier) — an estimate: an operand wider than the block's takes more than one;
- block RAM: every memory (``reg [w-1:0] name [d-1:0]``) of at least :data:`MIN_BRAM_BITS` bits,
  in the block shape that needs the fewest blocks; smaller memories go to logic.

The estimate is a lower bound in spirit (logic cells are not estimated at all); the tools'
reports remain the final word after synthesis.
"""

import math
import re
from dataclasses import dataclass

__all__ = ["Estimate", "estimate_resources", "check_estimate", "BLOCK_SHAPES", "MIN_BRAM_BITS"]

#: Block RAM shapes (depth, width) per device family.
BLOCK_SHAPES = {
    "ice40": ((256, 16), (512, 8), (1024, 4), (2048, 2)),
    "ecp5": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)),
}
MIN_BRAM_BITS = 2048

_MEMORY = re.compile(r"^\s*reg\s*(?:\[(\d+):0\])?\s*(\\?\S+)\s*\[(\d+):0\]\s*;", re.MULTILINE)
_MULTIPLY = re.compile(r"^\s*assign\s+\S+\s*=\s*(.+?)\s\*\s(.+?);\s*$", re.MULTILINE)
_CONSTANT = re.compile(r"^\$?(signed|unsigned)?\(?\s*\d+'[shdbo]*[0-9a-fA-F_xz]+\s*\)?$")


@dataclass(frozen=True)
class Estimate:
    """Hard blocks a design will need: DSP blocks, block RAMs, and the memories behind them."""
    dsp: int
    bram: int
    memories: tuple  # (name, depth, width, blocks)

    def to_dict(self):
        return {"dsp_estimate": self.dsp, "bram_estimate": self.bram}


def _blocks(depth, width, family):
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in BLOCK_SHAPES[family])


def estimate_resources(verilog, family):
    """The :class:`Estimate` of a Verilog text for ``family`` (``"ice40"`` or ``"ecp5"``)."""
    if family not in BLOCK_SHAPES:
        raise ValueError(f"Family must be one of {', '.join(BLOCK_SHAPES)}, not {family!r}")
    dsp = 0
    for a, b in _MULTIPLY.findall(verilog):
        if not (_CONSTANT.match(a.strip()) or _CONSTANT.match(b.strip())):
            dsp += 1
    memories = []
    for msb, name, last in _MEMORY.findall(verilog):
        width, depth = int(msb or 0) + 1, int(last) + 1
        blocks = _blocks(depth, width, family) if width * depth >= MIN_BRAM_BITS else 0
        memories.append((name, depth, width, blocks))
    return Estimate(dsp, sum(m[3] for m in memories), tuple(memories))


def check_estimate(estimate, board):
    """Raise :class:`slimgen.boards.build.DesignDoesNotFit` when the estimate already exceeds
    ``board``'s DSP blocks or block RAMs; returns the estimate otherwise."""
    from .build import DesignDoesNotFit, fit_knobs
    over = {}
    for name, need, key in (("DSP blocks", estimate.dsp, "dsp"),
                            ("block RAMs", estimate.bram, "bram")):
        have = board.totals.get(key)
        if have is not None and need > have:
            over[name] = (need, have)
    if over:
        parts = "; ".join(f"{name}: {need} needed, {have} available"
                          for name, (need, have) in over.items())
        raise DesignDoesNotFit(f"The design does not fit the {board.description} (estimated "
                               f"before synthesis from the generated Verilog): {parts}."
                               f"{fit_knobs(board)}", over)
    return estimate
