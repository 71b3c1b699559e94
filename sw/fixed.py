"""Fixed-point arithmetic shared by every integer model: widths, rounding, saturation, the
requantization multiplier/shift rule and the symmetric weight quantizer.

Pure functions over Python or NumPy integers. The hardware computes exactly the same
operations (:func:`slimgen.hw.lib.requantizer.requantize`, used by every engine),
so these formulas are the contract between the two:

- a ``b``-bit two's complement number lies in ``[−2^(b−1), 2^(b−1) − 1]`` (:func:`signed_range`);
- a ``b``-bit symmetric weight lies in ``[−q, q]``, ``q = 2^(b−1) − 1`` (:func:`symmetric_max`):
  the code −2^(b−1) is never used, so negating a weight never overflows;
- rounding shift ``round_half_up(v, s) = floor(v / 2^s + 1/2) = (v + 2^(s−1)) >> s`` (ties toward
  +∞, for negative v too);
- requantization ``y = sat(relu(round_half_up(acc · M, s)))`` with ``M / 2^s ≈ r``, the ratio of
  the accumulator's scale to the output's (:func:`multiplier_shift`);
- weights ``W_q = clip(rint(W / scale), −q, q)``, ``scale = max|W| / q`` (:func:`quantize_symmetric`).
"""

import math

import numpy as np

__all__ = ["MAX_SHIFT", "signed_bits", "signed_range", "symmetric_max", "saturate",
           "round_half_up_shift", "requantize", "multiplier_shift", "quantize_symmetric"]

MAX_SHIFT = 62      # round_half_up_shift adds 2^(shift − 1) to an int64


def _check_width(name, bits):
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or bits < 1:
        raise ValueError(f"{name} must be a positive integer, not {bits!r}")
    return int(bits)


def signed_bits(lo, hi):
    """Fewest bits ``b`` of a two's complement number holding every integer in ``[lo, hi]``:
    the smallest ``b ≥ 1`` with ``−2^(b−1) ≤ lo`` and ``hi ≤ 2^(b−1) − 1``."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"The range must have lo ≤ hi, not [{lo}, {hi}]")
    b = 1
    while lo < -(1 << (b - 1)) or hi > (1 << (b - 1)) - 1:
        b += 1
    return b


def signed_range(bits):
    """``(−2^(bits−1), 2^(bits−1) − 1)``: the range of a ``bits``-bit two's complement number."""
    bits = _check_width("Bit width", bits)
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def symmetric_max(bits):
    """``q = 2^(bits−1) − 1``: ``bits``-bit symmetric weights lie in ``[−q, q]`` (bits ≥ 2)."""
    bits = _check_width("Weight bits", bits)
    if bits < 2:
        raise ValueError(f"Weight bits must be at least 2, not {bits}")
    return (1 << (bits - 1)) - 1


def saturate(v, bits, *, signed=True):
    """``v`` clipped to ``bits`` bits: :func:`signed_range` when ``signed``, else
    ``[0, 2^bits − 1]``. Any integer array shape."""
    lo, hi = signed_range(bits) if signed else (0, (1 << _check_width("Bit width", bits)) - 1)
    return np.clip(v, lo, hi)


def round_half_up_shift(v, shift):
    """``floor(v / 2^shift + 1/2)`` for integer arrays: ``(v + 2^(shift−1)) >> shift``,
    ``1 ≤ shift ≤`` :data:`MAX_SHIFT`."""
    v = np.asarray(v, dtype=np.int64)
    if not 1 <= shift <= MAX_SHIFT:
        raise ValueError(f"Shift must be at least 1, not {shift}" if shift < 1 else
                         f"Shift must be at most {MAX_SHIFT}, not {shift}")
    return (v + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)


def requantize(acc, multiplier, shift, *, relu=True, out_bits=8):
    """Accumulators to activations: ``sat(relu(round_half_up(acc · M, shift)))``.

    With ``relu`` the result saturates to [0, 2^out_bits − 1], else to the signed range
    [−2^(out_bits−1), 2^(out_bits−1) − 1]. Any int64 array shape.
    """
    y = round_half_up_shift(np.asarray(acc, dtype=np.int64) * np.int64(multiplier), shift)
    return saturate(y, out_bits, signed=not relu)


def multiplier_shift(ratio, multiplier_bits):
    """The requantization rule: ``M, s`` with ``M / 2^s ≈ ratio``, ``s ≥ 1``.

    With ``ratio = m · 2^e``, ``m ∈ [1/2, 1)`` (exactly, :func:`math.frexp`)::

        s = multiplier_bits − 1 − e
        M = round(m · 2^(multiplier_bits−1))   ∈ [2^(mb−2), 2^(mb−1)]   (ties to even)

    so M has ``mb − 1`` significant bits (relative error ≤ 2^−(mb−1)) and, even when it rounds
    up to ``2^(mb−1)``, fits an unsigned ``mb``-bit operand: the range ``[1, 2^mb − 1]`` the
    artifacts check. A ratio that would need ``s < 1`` (output scale smaller than the
    accumulator's) or ``s >`` :data:`MAX_SHIFT` is a ``ValueError``.
    """
    if isinstance(multiplier_bits, bool) or not isinstance(multiplier_bits, (int, np.integer)) \
            or multiplier_bits < 2:
        raise ValueError(f"Multiplier bits must be an integer of at least 2, "
                         f"not {multiplier_bits!r}")
    if not (np.isfinite(ratio) and ratio > 0):
        raise ValueError(f"Requantization ratio must be a positive finite number, not {ratio}")
    m, e = math.frexp(float(ratio))
    shift = int(multiplier_bits) - 1 - e
    if shift < 1:
        raise ValueError(f"Requantization ratio {ratio} is too large for a right shift; "
                         "the layer's output scale is smaller than its accumulator's")
    if shift > MAX_SHIFT:
        raise ValueError(f"Requantization ratio {ratio} is too small: it needs a shift of "
                         f"{shift}, more than {MAX_SHIFT}")
    return int(round(m * (1 << (int(multiplier_bits) - 1)))), shift


def quantize_symmetric(W, bits, *, channel_axis=None):
    """Symmetric weight quantization: ``(W_q, scale)`` with

        q = 2^(bits−1) − 1,   scale = max|W| / q,   W_q = clip(rint(W / scale), −q, q)  (int64)

    over the whole array (``scale`` a float), or per output channel along ``channel_axis``
    (``scale`` an array of W's shape with every other axis of length 1). A zero maximum gives
    scale 1, and zeros (pruned weights) stay exactly zero. ``W`` any float array shape, divided
    in its own dtype.
    """
    q = symmetric_max(bits)
    W = np.asarray(W)
    if channel_axis is None:
        scale = float(np.abs(W).max(initial=0.0)) / q or 1.0
    else:
        if not -W.ndim <= channel_axis < W.ndim:
            raise ValueError(f"Channel axis must be an axis of the {W.ndim}-d weights, "
                             f"not {channel_axis!r}")
        others = tuple(a for a in range(W.ndim) if a != channel_axis % W.ndim)
        scale = np.abs(W).max(axis=others, keepdims=True, initial=0.0) / q
        scale = np.where(scale > 0, scale, 1.0)
    return np.clip(np.rint(W / scale), -q, q).astype(np.int64), scale
