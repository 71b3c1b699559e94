"""What a design's hard blocks are, and the check of a prediction against a board.

- :data:`BLOCK_SHAPES`: the block RAM shapes (depth, width) of each device family, which
  :mod:`slimgen.boards.resource_model` places memories into as yosys does;
- :func:`multiplier_blocks`: the DSP blocks of one ``a × b`` multiply as yosys' ``mul2dsp``
  splits it (:data:`DSP_SHAPES`): each operand into slices of the block's width from the
  bottom, a slice narrower than the minimum left to logic, and a partial product narrower
  than the minimum result width too (measured with YoWASP yosys: iCE40 16×16 and 17×16 one
  SB_MAC16, 18×16 and 19×17 two, 18×18 and 20×18 three; ECP5 19×17 one MULT18X18D, 20×18 two);
- :func:`check_estimate`: a design whose predicted DSP blocks or block RAMs exceed the
  board's is refused before synthesis (both predictions are exact on every design
  bench/resources.py builds; logic cells are predicted within a margin, so they are left to
  the tools).
"""

__all__ = ["check_estimate", "multiplier_blocks", "BLOCK_SHAPES", "DSP_SHAPES"]

#: Block RAM shapes (depth, width) per device family.
BLOCK_SHAPES = {
    "ice40": ((256, 16), (512, 8), (1024, 4), (2048, 2)),
    "ecp5": ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1)),
}

#: DSP block per family: (max operand width, min operand width, min product width).
DSP_SHAPES = {"ice40": (16, 2, 11), "ecp5": (18, 2, 0)}


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


def check_estimate(estimate, board):
    """Raise :class:`slimgen.boards.build.DesignDoesNotFit` when the estimate (a
    :class:`slimgen.boards.resource_model.Prediction`) already exceeds ``board``'s DSP blocks
    block RAMs or SPRAMs (a board without SPRAM has none); returns the estimate otherwise.
    Logic cells are not refused before synthesis: their prediction is within a margin, not
    exact."""
    from .build import DesignDoesNotFit, fit_knobs
    over = {}
    for name, need, key in (("DSP blocks", estimate.dsp, "dsp"),
                            ("block RAMs", estimate.bram, "bram"),
                            ("SPRAMs", estimate.spram, "spram")):
        have = board.totals.get(key, 0 if key == "spram" else None)
        if have is not None and need > have:
            over[name] = (need, have)
    if over:
        parts = "; ".join(f"{name}: {need} needed, {have} available"
                          for name, (need, have) in over.items())
        source = estimate.source
        raise DesignDoesNotFit(f"The design does not fit the {board.description} (estimated "
                               f"before synthesis from {source}): {parts}."
                               f"{fit_knobs(board)}", over)
    return estimate
