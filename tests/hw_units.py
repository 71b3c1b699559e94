"""Helpers for tests of the resource model on small Amaranth units (no synthesis)."""

from amaranth.hdl import Module
from amaranth.lib import wiring

from slimgen.boards.resource_model import netlist_of, structure

__all__ = ["unit", "counts"]


def unit(body, ports):
    """A component with ``ports`` (name -> In/Out member) whose module ``body(m, self)``
    fills."""
    class Unit(wiring.Component):
        def __init__(self):
            super().__init__(ports)

        def elaborate(self, platform):
            m = Module()
            body(m, self)
            return m
    return Unit()


def counts(component, family="ice40"):
    """All counts of ``component``'s netlist, summed over its modules (the non-zero ones)."""
    total = {}
    for c in structure(netlist_of(component), family).values():
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return {k: v for k, v in total.items() if v}
