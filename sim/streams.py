"""Small cocotb helpers shared by the benches: clock and reset, and stream drivers/monitors for
Amaranth ``lib.stream`` ports (flattened in Verilog to ``<name>__payload``, ``__valid``,
``__ready``).

A transfer happens at a rising edge where valid and ready are both high; both sides sample
the handshake in the ReadOnly phase before the edge.
"""

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["CLOCK_NS", "start_clock_and_reset", "stream_put", "stream_get", "bench_file",
           "unpack_fields"]

CLOCK_NS = 10


async def start_clock_and_reset(dut, cycles=2):
    """Start ``dut.clk`` and hold ``dut.rst`` high for ``cycles`` rising edges."""
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rst.value = 1
    for name in ("i__valid", "o__ready", "load__valid"):
        if hasattr(dut, name):
            getattr(dut, name).value = 0
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def stream_put(dut, port, values):
    """Send ``values`` (ints) on the input stream ``port``, one per transfer."""
    payload, valid, ready = (getattr(dut, f"{port}__{s}") for s in ("payload", "valid", "ready"))
    for v in values:
        payload.value = int(v)
        valid.value = 1
        while True:
            await ReadOnly()
            accepted = ready.value == 1
            await RisingEdge(dut.clk)
            if accepted:
                break
    valid.value = 0


async def stream_get(dut, port, count, on_transfer=None, *, ready_probability=1.0, rng=None):
    """Receive ``count`` payloads (unsigned ints) from the output stream ``port``.

    ``on_transfer(index, value)`` is called at each transfer, in simulation time.
    ``ready_probability``: below 1, a consumer that is sometimes not ready: each cycle
    ``ready`` is high with that probability, drawn from ``rng`` (a ``np.random.Generator``,
    required then); by default always ready.
    """
    if not 0 < ready_probability <= 1:
        raise ValueError(f"Ready probability must be in (0, 1], not {ready_probability!r}")
    if ready_probability < 1 and rng is None:
        raise ValueError("A ready probability below 1 needs a random generator (rng)")
    payload, valid, ready = (getattr(dut, f"{port}__{s}") for s in ("payload", "valid", "ready"))
    ready.value = 1
    out = []
    while len(out) < count:
        if ready_probability < 1:
            ready.value = int(rng.random() < ready_probability)
        await ReadOnly()
        if valid.value == 1 and ready.value == 1:
            if not payload.value.is_resolvable:
                raise AssertionError(f"{port}__payload holds unresolved bits {payload.value} "
                                     f"during a transfer")
            v = payload.value.to_unsigned()
            if on_transfer is not None:
                on_transfer(len(out), v)
            out.append(v)
        await RisingEdge(dut.clk)
    ready.value = 0
    return out


def unpack_fields(value, widths, signed):
    """Split an unsigned int into fields of ``widths`` bits from the LSB up."""
    fields = []
    for w, s in zip(widths, signed):
        f = value & ((1 << w) - 1)
        if s and f >> (w - 1):
            f -= 1 << w
        fields.append(f)
        value >>= w
    return fields


def bench_file(var):
    """The path in environment variable ``var`` (set by the launcher)."""
    path = os.environ.get(var)
    if not path:
        raise RuntimeError(f"Environment variable {var} must name the bench's data file")
    return path


# cocotb needs this module importable in the simulator; nothing runs at import.
_ = cocotb
