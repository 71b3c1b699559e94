"""Helpers for tests on Amaranth's own simulator: push a stream, collect a stream."""

from amaranth.sim import Simulator

__all__ = ["run_stream"]


def run_stream(dut, inputs, n_out, *, in_port="i", out_port="o", max_cycles=200_000):
    """Send ``inputs`` (ints) on ``dut.<in_port>``, collect ``n_out`` payloads from
    ``dut.<out_port>`` (always ready). Returns ``(outputs, cycles)``."""
    i, o = getattr(dut, in_port), getattr(dut, out_port)
    out, cycles = [], [0]

    async def driver(ctx):
        for v in inputs:
            ctx.set(i.payload, int(v))
            ctx.set(i.valid, 1)
            await ctx.tick().until(i.ready)
        ctx.set(i.valid, 0)

    async def monitor(ctx):
        ctx.set(o.ready, 1)
        while len(out) < n_out:
            # Sample the handshake at the edge itself, as the hardware sees it.
            *_, valid, payload = await ctx.tick().sample(o.valid, o.payload)
            cycles[0] += 1
            if cycles[0] > max_cycles:
                raise TimeoutError(f"Only {len(out)} of {n_out} outputs after {max_cycles} cycles")
            if valid:
                out.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    sim.run()
    return out, cycles[0]
