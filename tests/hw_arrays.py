"""Amaranth-simulator helpers for components whose stream payloads are arrays of integers."""

from amaranth.hdl import Value
from amaranth.sim import Simulator

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
    out, cycles, acc = [], [0], [0]

    async def driver(ctx):
        for v in inputs:
            ctx.set(Value.cast(dut.i.payload), int(v))
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        ctx.set(dut.o.ready, 1)
        sigs = [dut.o.valid, Value.cast(dut.o.payload)] + ([extra] if extra is not None else [])
        while len(out) < n_out:
            got = await ctx.tick().sample(*sigs)
            valid, payload, rest = got[-len(sigs)], got[-len(sigs) + 1], got[-len(sigs) + 2:]
            cycles[0] += 1
            if rest:
                acc[0] += rest[0]
            if cycles[0] > max_cycles:
                raise TimeoutError(f"Only {len(out)} of {n_out} outputs after {max_cycles} cycles")
            if valid:
                out.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    sim.run()
    return out, cycles[0], acc[0]
