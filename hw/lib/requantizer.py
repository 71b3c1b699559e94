"""The requantizer: accumulators to activations, as :func:`slimgen.sw.fixed.requantize`::

    y = sat(relu(round_half_up(acc · M, s)))      round_half_up(v, s) = (v + 2^(s−1)) >> s

``relu``: ``y`` ∈ [0, 2^out_bits − 1], ``unsigned(out_bits)``; else ``y`` ∈
[−2^(out_bits−1), 2^(out_bits−1) − 1], ``signed(out_bits)``. Its two pieces,
:func:`round_half_up` and :func:`saturate`, mirror :func:`slimgen.sw.fixed.round_half_up_shift`
and :func:`slimgen.sw.fixed.saturate` for the datapaths that scale by other means (the LSTM's
element-wise unit).
"""

from amaranth.hdl import Const, Mux, Signal, Value, signed, unsigned

from .const_mul import const_times, select_times

__all__ = ["clamp", "requantize", "round_half_up", "saturate"]


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def round_half_up(v, shift):
    """``floor(v / 2^s + 1/2)`` as an expression, ``s`` an int ≥ 0 (0: ``v`` itself) or an
    unsigned Value whose run-time value is at least 1.

    Computed as ``((v >> (s − 1)) + 1) >> 1``, equal to ``(v + 2^(s−1)) >> s`` for floor
    shifts (with ``v = q·2^(s−1) + r``, ``0 ≤ r < 2^(s−1)``: both are ``⌊(q + 1) / 2⌋``), so a
    run-time shift needs no ``2^(s−1)`` constant.
    """
    v = Value.cast(v)
    if _is_int(shift):
        if shift < 0:
            raise ValueError(f"Shift must be at least 0, not {shift}")
        return ((v >> (shift - 1)) + 1) >> 1 if shift else v
    shift = Value.cast(shift)
    if shift.shape().signed:
        raise TypeError(f"Shift must be an int or an unsigned Value, not {shift.shape()!r}")
    return ((v >> (shift - 1)[:len(shift)]) + 1) >> 1


def clamp(v, lo, hi):
    """``v`` clipped to ``[lo, hi]`` (ints) as an expression."""
    return Mux(v < lo, lo, Mux(v > hi, hi, v))


def saturate(m, v, bits, *, signed_out=True, name):
    """``v`` clipped to ``[−2^(bits−1), 2^(bits−1) − 1]`` (``signed(bits)``) or, with
    ``signed_out=False``, to ``[0, 2^bits − 1]`` (``unsigned(bits)``; negatives become 0, the
    ReLU); a Signal of ``m`` named ``name``."""
    if not _is_int(bits) or bits < 1:
        raise ValueError(f"Output bits must be a positive integer, not {bits!r}")
    if signed_out:
        lo, hi, shape = -(1 << (bits - 1)), (1 << (bits - 1)) - 1, signed(bits)
    else:
        lo, hi, shape = 0, (1 << bits) - 1, unsigned(bits)
    y = Signal(shape, name=name)
    m.d.comb += y.eq(clamp(v, lo, hi))
    return y


def requantize(m, acc, multiplier, shift, *, out_bits, relu, name, registered=False):
    """Add the combinational requantizer of ``acc`` to ``m``; returns its output Value
    (the caller registers it). With ``registered`` the product ``acc · M`` goes through a
    register first: the output follows ``acc`` one cycle later, and ``shift`` is that
    cycle's (a shorter path: the rounding and saturation do not follow the product).

    Parameters
    ----------
    m : Module
    acc : Value
        The accumulator, a signed Value of any width.
    multiplier : int, (ints, Value) or Value
        ``M``: a constant ``int ≥ 1`` (a shift-add network over its canonical signed digits,
        :func:`slimgen.hw.lib.const_mul.const_times`, no DSP block); a pair ``(values,
        index)``, ``values[index]`` of constants ``≥ 1`` chosen at run time (one network per
        distinct value and a multiplexer, :func:`~slimgen.hw.lib.const_mul.select_times`, no
        DSP block); or an unsigned Value (a product: a multiplier block).
    shift : int or Value
        ``s``: a constant ``int ≥ 1`` or an unsigned Value whose run-time value is at least 1.
    out_bits : int
        Output width.
    relu : bool
        Clip negatives to 0 (unsigned output) or saturate to the signed range.
    name : str
        Prefix of the signals added.
    registered : bool
        Register the product (one cycle of latency).

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
    if isinstance(shift, Const):
        shift = shift.value
    # a constant shift s > 1 of a registered product: the product from bit s − 1 up (all its
    # rounding reads), held, then ((v ≫ (s−1)) + 1) ≫ 1 (round_half_up's own steps)
    low = shift - 1 if registered and _is_int(shift) and shift > 1 else 0
    if _is_int(multiplier):
        if multiplier < 1:
            raise ValueError(f"Multiplier must be a positive integer, not {multiplier}")
        product, m_bits = const_times(m, acc, multiplier, low=low, name=f"{name}_prod"), \
            multiplier.bit_length()
    elif isinstance(multiplier, tuple):
        values, index = multiplier
        values = [int(v) for v in values]
        if not values or min(values) < 1:
            raise ValueError(f"Multipliers must be positive integers, not {values}")
        m_bits = max(values).bit_length()
        product = select_times(m, acc, values, index, len(acc) + m_bits + 1, f"{name}_prod",
                               low=low)
    else:
        multiplier = Value.cast(multiplier)
        if multiplier.shape().signed:
            raise TypeError(f"Multiplier must be an int or an unsigned Value, not "
                            f"{multiplier.shape()!r}")
        product, m_bits = acc * multiplier, len(multiplier)
        if low:
            product = product >> low
    if _is_int(shift) and shift < 1:
        raise ValueError(f"Shift must be at least 1, not {shift}")
    # |acc · M| ≤ 2^(a−1) · (2^mb − 1): the product fits a + mb signed bits, its rounding too.
    if low:
        held = Signal(signed(len(acc) + m_bits + 1 - low), name=f"{name}_product")
        m.d.sync += held.eq(product)
        product, shift = held, None
    elif registered:
        held = Signal(signed(len(acc) + m_bits + 1), name=f"{name}_product")
        m.d.sync += held.eq(product)
        product = held
    scaled = Signal(signed(len(acc) + m_bits + 1), name=f"{name}_scaled")
    m.d.comb += scaled.eq((product + 1) >> 1 if shift is None else round_half_up(product, shift))
    return saturate(m, scaled, out_bits, signed_out=not relu, name=name)
