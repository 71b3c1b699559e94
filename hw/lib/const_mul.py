"""Multiplication by constants without multipliers: shift-add networks over the constant's
canonical signed digits (non-adjacent form, :func:`slimgen.sw.winograd.csd_digits`)::

    c = Σ_k d_k · 2^(p_k),  d_k ∈ {−1, +1}        c · x = Σ_k d_k · (x << p_k)

A constant with ``n`` non-zero digits costs ``n − 1`` adders (none for ``±2^p``); the digits are
the fewest of any signed-digit form, so no DSP block and the fewest adders a single product
needs.
"""

from amaranth.hdl import Const, Value

from slimgen.sw.winograd import csd_digits

__all__ = ["csd_product"]


def csd_product(x, c):
    """``c · x`` as an exact Amaranth expression (full width, no wrap) for an integer ``c``:
    ``Σ_k d_k · (x << p_k)`` over the canonical signed digits of ``c``; ``0`` gives a
    1-bit zero constant. ``x`` any Value (signed or unsigned)."""
    if isinstance(c, bool) or not isinstance(c, int):
        raise TypeError(f"Constant must be an integer, not {c!r}")
    x = Value.cast(x)
    product = None
    for pos, sign in csd_digits(c):
        term = x << pos
        if product is None:
            product = term if sign > 0 else -term
        else:
            product = product + term if sign > 0 else product - term
    return Const(0, 1) if product is None else product
