"""The requantizer: accumulators to activations, as :func:`slimgen.sw.fixed.requantize`::

    y = sat(relu(round_half_up(acc · M, s)))      round_half_up(v, s) = (v + 2^(s−1)) >> s

``relu``: ``y`` ∈ [0, 2^out_bits − 1], ``unsigned(out_bits)``; else ``y`` ∈
[−2^(out_bits−1), 2^(out_bits−1) − 1], ``signed(out_bits)``. The rounding uses the identity
``(v + 2^(s−1)) >> s = ((v >> (s−1)) + 1) >> 1`` (floor shifts), which needs no ``2^(s−1)``
constant and so serves a run-time shift as well as a constant one.
"""

from amaranth.hdl import Mux, Signal, Value, signed, unsigned

from .const_mul import csd_product

__all__ = ["requantize"]


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def requantize(m, acc, multiplier, shift, *, out_bits, relu, name):
    """Add the combinational requantizer of ``acc`` to ``m``; returns its output Value
    (the caller registers it).

    Parameters
    ----------
    m : Module
    acc : Value
        The accumulator, a signed Value of any width.
    multiplier : int or Value
        ``M``: a constant ``int ≥ 1`` (a shift-add network over its canonical signed digits,
        no DSP block) or an unsigned Value (a product, e.g. a per-layer M from a table).
    shift : int or Value
        ``s``: a constant ``int ≥ 1`` or an unsigned Value whose run-time value is at least 1.
    out_bits : int
        Output width.
    relu : bool
        Clip negatives to 0 (unsigned output) or saturate to the signed range.
    name : str
        Prefix of the signals added.

    Returns
    -------
    Value
        ``unsigned(out_bits)`` with ``relu``, else ``signed(out_bits)``.
    """
    acc = Value.cast(acc)
    if not acc.shape().signed:
        raise TypeError(f"Accumulator must be a signed Value, not {acc.shape()!r}")
    if not _is_int(out_bits) or out_bits < 1:
        raise ValueError(f"Output bits must be a positive integer, not {out_bits!r}")
    if _is_int(multiplier):
        if multiplier < 1:
            raise ValueError(f"Multiplier must be a positive integer, not {multiplier}")
        product, m_bits = csd_product(acc, multiplier), multiplier.bit_length()
    else:
        multiplier = Value.cast(multiplier)
        if multiplier.shape().signed:
            raise TypeError(f"Multiplier must be an int or an unsigned Value, not "
                            f"{multiplier.shape()!r}")
        product, m_bits = acc * multiplier, len(multiplier)
    # |acc · M| < 2^(a−1) · 2^mb: the product fits a + mb signed bits; rounding can carry once.
    width = len(acc) + m_bits + 1
    if _is_int(shift):
        if shift < 1:
            raise ValueError(f"Shift must be at least 1, not {shift}")
        half = product >> (shift - 1)
    else:
        shift = Value.cast(shift)
        if shift.shape().signed:
            raise TypeError(f"Shift must be an int or an unsigned Value, not {shift.shape()!r}")
        half = product >> (shift - 1)[:len(shift)]
    scaled = Signal(signed(width), name=f"{name}_scaled")
    m.d.comb += scaled.eq((half + 1) >> 1)
    if relu:
        lo, hi, shape = 0, (1 << out_bits) - 1, unsigned(out_bits)
    else:
        lo, hi, shape = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1, signed(out_bits)
    y = Signal(shape, name=name)
    m.d.comb += y.eq(Mux(scaled < lo, lo, Mux(scaled > hi, hi, scaled)))
    return y
