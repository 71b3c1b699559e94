"""The MAC lane: a registered multiply, then a running sum that restarts on a row's first
product::

    cycle t      prod ← a · b                              (the DSP block's output register)
    cycle t + 1  total = (first ? init : acc) + prod;  acc ← total   when en

The caller delays its own tags (valid, first, last, row) by one register alongside the product
and passes them as ``en`` and ``first`` of cycle t + 1; ``total`` is the row's sum including
this cycle's product (written to a result memory or an output bank on the row's last one).
:func:`accumulate` is the running sum alone (the transforms' row sums use it too).
"""

from amaranth.hdl import Mux, Signal, Value

__all__ = ["accumulate", "mac_lane"]


def accumulate(m, term, *, first, en, shape, init=0, name):
    """Running sum ``total = (first ? init : acc) + term``, kept in ``acc`` when ``en``;
    returns ``(total, acc)``, both of ``shape`` (the sum modulo its width)."""
    acc = Signal(shape, name=f"{name}_acc")
    total = Signal(shape, name=f"{name}_sum")
    m.d.comb += total.eq(Mux(first, init, acc) + term)
    with m.If(en):
        m.d.sync += acc.eq(total)
    return total, acc


def mac_lane(m, a, b, *, first, en, shape, init=0, prod_shape=None, name):
    """One lane: ``prod ← a · b`` every cycle, then :func:`accumulate` of ``prod`` with the
    flags ``first`` and ``en`` of the cycle after. ``prod_shape``: the product register's
    shape (default the exact shape of ``a · b``). Returns ``(total, acc)`` of ``shape``."""
    full = Value.cast(a) * Value.cast(b)
    prod = Signal(prod_shape or full.shape(), name=f"{name}_prod")
    m.d.sync += prod.eq(full)
    return accumulate(m, prod, first=first, en=en, shape=shape, init=init, name=name)
