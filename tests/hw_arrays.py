"""Amaranth-simulator helpers for components whose stream payloads are arrays of integers."""

from hw_sim import run_stream

__all__ = ["pack", "unpack", "run_arrays"]


def pack(values, width):
    """Integers (any sign) into one unsigned int, element 0 in the low bits."""
    out = 0
    for k, v in enumerate(values):
        out |= (int(v) & ((1 << width) - 1)) << (k * width)
    return out


def unpack(value, width, count, signed=True):
    out = []
    for k in range(count):
        f = (int(value) >> (k * width)) & ((1 << width) - 1)
        if signed and f >> (width - 1):
            f -= 1 << width
        out.append(f)
    return out


def run_arrays(dut, inputs, n_out, *, max_cycles=500_000, extra=None):
    """Send the packed ints ``inputs`` on ``dut.i``, collect ``n_out`` raw payloads from ``dut.o``
    (always ready). ``extra``: a signal summed every cycle (e.g. active multipliers).
    Returns ``(outputs, cycles, extra_sum)``."""
    if extra is None:
        out, cycles = run_stream(dut, inputs, n_out, max_cycles=max_cycles, raw=True)
        return out, cycles, 0
    return run_stream(dut, inputs, n_out, max_cycles=max_cycles, raw=True, extra=extra)
