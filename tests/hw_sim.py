"""Helpers for tests on Amaranth's own simulator: push a stream, collect a stream."""

from amaranth.hdl import Value
from amaranth.sim import Simulator

__all__ = ["run_stream"]


def run_stream(dut, inputs, n_out, *, in_port="i", out_port="o", max_cycles=200_000,
               raw=False, extra=None):
    """Send ``inputs`` (ints) on ``dut.<in_port>``, collect ``n_out`` payloads from
    ``dut.<out_port>`` (always ready). Returns ``(outputs, cycles)``, or
    ``(outputs, cycles, extra_sum)`` with ``extra``, a signal summed every cycle (e.g. the
    active multipliers).

    ``raw``: inputs and outputs are the payloads' bits as unsigned ints (for struct and array
    payloads); else outputs are the payload values as the simulator gives them.
    """
    i, o = getattr(dut, in_port), getattr(dut, out_port)
    i_payload = Value.cast(i.payload) if raw else i.payload
    o_payload = Value.cast(o.payload) if raw else o.payload
    out, cycles, total = [], [0], [0]

    async def driver(ctx):
        for v in inputs:
            ctx.set(i_payload, int(v))
            ctx.set(i.valid, 1)
            await ctx.tick().until(i.ready)
        ctx.set(i.valid, 0)

    async def monitor(ctx):
        ctx.set(o.ready, 1)
        sampled = [o.valid, o_payload] + ([extra] if extra is not None else [])
        while len(out) < n_out:
            # Sample the handshake at the edge itself, as the hardware sees it.
            got = (await ctx.tick().sample(*sampled))[-len(sampled):]
            cycles[0] += 1
            if extra is not None:
                total[0] += got[2]
            if cycles[0] > max_cycles:
                raise TimeoutError(f"Only {len(out)} of {n_out} outputs after {max_cycles} cycles")
            if got[0]:
                out.append(got[1])

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    sim.run()
    return (out, cycles[0]) if extra is None else (out, cycles[0], total[0])
