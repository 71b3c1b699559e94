"""A resource estimate from the generated Verilog, for a fit check before synthesis.

Synthesis and place-and-route take a minute or more; counting what will need hard blocks takes
milliseconds and catches the usual misfit (too many lanes) at once:

- multipliers: every ``a * b`` of two non-constant operands in yosys' Verilog becomes DSP
  blocks as yosys' ``mul2dsp`` splits it (:data:`DSP_SHAPES`): each operand into slices of the
  block's width from the bottom, a slice narrower than the minimum left to logic, and a
  partial product narrower than the minimum result width too (measured with YoWASP yosys:
  iCE40 16×16 and 17×16 one SB_MAC16, 18×16 and 19×17 two, 18×18 and 20×18 three; ECP5 19×17
  one MULT18X18D, 20×18 two). An operand whose width the Verilog does not declare counts as
  one slice;
- block RAM: every memory (``reg [w-1:0] name [d-1:0]``) of at least :data:`MIN_BRAM_BITS` bits,
  in the block shape that needs the fewest blocks; smaller memories go to logic, except on
  iCE40, which has no distributed RAM: there yosys puts a memory of
  :data:`MIN_ICE40_RAM_BITS` bits or more into a block RAM too (measured on the LSTM engine:
  a 32×13 RAM and a 128×14 ROM went into one each, a 10×21 ROM into logic).

The estimate is a lower bound in spirit (logic cells are not estimated at all); the tools'
reports remain the final word after synthesis. The flow no longer uses it:
:mod:`slimgen.boards.resource_model` predicts logic cells too, from the design's own netlist,
and places memories as yosys does (this module's size thresholds misplaced small ROMs and
buffers; see bench/README.md). :func:`check_estimate` takes either's figures.
"""

import math
import re
from dataclasses import dataclass

__all__ = ["Estimate", "estimate_resources", "check_estimate", "multiplier_blocks",
           "BLOCK_SHAPES", "DSP_SHAPES", "MIN_BRAM_BITS", "MIN_ICE40_RAM_BITS"]

#: Block RAM shapes (depth, width) per device family.
BLOCK_SHAPES = {
    "ice40": ((256, 16), (512, 8), (1024, 4), (2048, 2)),
    "ecp5": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)),
}
MIN_BRAM_BITS = 2048
MIN_ICE40_RAM_BITS = 256

#: DSP block per family: (max operand width, min operand width, min product width).
DSP_SHAPES = {"ice40": (16, 2, 11), "ecp5": (18, 2, 0)}

_MEMORY = re.compile(r"^\s*reg\s*(?:\[(\d+):0\])?\s*(\\?\S+)\s*\[(\d+):0\]\s*;", re.MULTILINE)
_MULTIPLY = re.compile(r"^\s*assign\s+\S+\s*=\s*(.+?)\s\*\s(.+?);\s*$", re.MULTILINE)
_CONSTANT = re.compile(r"^\$?(signed|unsigned)?\(?\s*\d+'[shdbo]*[0-9a-fA-F_xz]+\s*\)?$")
_DECLARATION = re.compile(r"^\s*(?:wire|reg|input|output)\s+(?:signed\s+)?(?:\[(\d+):0\]\s*)?"
                          r"(\\?[^\s\[;=]+)\s*(?:=[^;]*)?;", re.MULTILINE)
_SIZED = re.compile(r"^(\d+)'[shdbo]*[0-9a-fA-F_xz]+$")


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


def _width(operand, widths):
    """Bits of a multiply operand (``$signed(x)``, ``x``, ``{ 1'h0, x }``), or None."""
    text = operand.strip()
    for wrap in ("$signed(", "$unsigned("):
        if text.startswith(wrap) and text.endswith(")"):
            text = text[len(wrap):-1].strip()
    if text.startswith("{") and text.endswith("}"):
        parts = [_width(part, widths) for part in text[1:-1].split(",")]
        return None if None in parts else sum(parts)
    sized = _SIZED.match(text)
    if sized:
        return int(sized.group(1))
    return widths.get(text)


def _slices(width, family):
    top, low, _ = DSP_SHAPES[family]
    if width is None:
        return [top]
    return [top] * (width // top) + ([width % top] if width % top >= low else [])


def multiplier_blocks(a_width, b_width, family):
    """DSP blocks of one ``a_width × b_width`` multiply (None: a width not known)."""
    _, _, y_min = DSP_SHAPES[family]
    return sum(1 for a in _slices(a_width, family) for b in _slices(b_width, family)
               if a + b >= y_min)


def estimate_resources(verilog, family):
    """The :class:`Estimate` of a Verilog text for ``family`` (``"ice40"`` or ``"ecp5"``)."""
    if family not in BLOCK_SHAPES:
        raise ValueError(f"Family must be one of {', '.join(BLOCK_SHAPES)}, not {family!r}")
    widths = {name.strip(): int(msb or 0) + 1 for msb, name in _DECLARATION.findall(verilog)}
    dsp = 0
    for a, b in _MULTIPLY.findall(verilog):
        if not (_CONSTANT.match(a.strip()) or _CONSTANT.match(b.strip())):
            dsp += multiplier_blocks(_width(a, widths), _width(b, widths), family)
    memories = []
    for msb, name, last in _MEMORY.findall(verilog):
        width, depth = int(msb or 0) + 1, int(last) + 1
        least = MIN_ICE40_RAM_BITS if family == "ice40" else MIN_BRAM_BITS
        blocks = _blocks(depth, width, family) if width * depth >= least else 0
        memories.append((name, depth, width, blocks))
    return Estimate(dsp, sum(m[3] for m in memories), tuple(memories))


def check_estimate(estimate, board):
    """Raise :class:`slimgen.boards.build.DesignDoesNotFit` when the estimate (an
    :class:`Estimate`, or a :class:`slimgen.boards.resource_model.Prediction`) already exceeds
    ``board``'s DSP blocks or block RAMs; returns the estimate otherwise. Logic cells are not
    refused before synthesis: their prediction is within a margin, not exact."""
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
        source = getattr(estimate, "source", "the generated Verilog")
        raise DesignDoesNotFit(f"The design does not fit the {board.description} (estimated "
                               f"before synthesis from {source}): {parts}."
                               f"{fit_knobs(board)}", over)
    return estimate
