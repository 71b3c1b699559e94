# amaranth: UnusedElaboratable=no
"""hw/lib on Amaranth's simulator: constant products (exact and wrapping), the selected
constant product, the MAC lane (registered product, running sum restarting on ``first`` from
``init``) and the running argmax (ties to the lowest index)."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from slimgen.hw.lib.argmax import running_argmax
from slimgen.hw.lib.const_mul import const_times, element_range, select_times
from slimgen.hw.lib.mac_lane import mac_lane


def run(m, bench, clock=True):
    sim = Simulator(m)
    if clock:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def wrap(v, width):
    return (v + (1 << (width - 1))) % (1 << width) - (1 << (width - 1))


CONSTANTS = [0, 1, -1, 2, -8, 3, -3, 7, 45, -45, 181, 0b1010101, -(2**13 - 1), 2**14 + 1]


@pytest.mark.parametrize("in_shape", [signed(9), unsigned(8)])
def test_const_times_exact_and_wrapping(in_shape):
    m = Module()
    x = Signal(in_shape)
    exact = {c: const_times(m, x, c, name=f"e{k}") for k, c in enumerate(CONSTANTS)}
    wrapped = {c: const_times(m, x, c, width=10, name=f"w{k}") for k, c in enumerate(CONSTANTS)}
    lo, hi = (-256, 255) if in_shape.signed else (0, 255)
    xs = [lo, hi, 0, 1, -1 if in_shape.signed else 2] + \
        np.random.default_rng(1).integers(lo, hi + 1, 40).tolist()
    got = []

    async def bench(ctx):
        for v in xs:
            ctx.set(x, v)
            got.append([(ctx.get(exact[c]), ctx.get(wrapped[c])) for c in CONSTANTS])

    run(m, bench, clock=False)
    for v, row in zip(xs, got):
        for c, (e, w) in zip(CONSTANTS, row):
            assert e == c * v, (c, v)
            assert w == wrap(c * v, 10), (c, v)
    for c in CONSTANTS:                 # the exact product's shape holds every product
        s_lo, s_hi = element_range(exact[c].shape())
        assert s_lo <= min(c * lo, c * hi) and max(c * lo, c * hi) <= s_hi, c


def test_const_times_refuses_a_non_integer():
    with pytest.raises(TypeError, match=r"^Constant must be an integer, not 1\.5$"):
        const_times(Module(), Signal(4), 1.5, name="p")


def test_select_times():
    m = Module()
    x, idx = Signal(signed(8)), Signal(range(4))
    coeffs = [3, 0, -2, 3]
    y = select_times(m, x, coeffs, idx, 12, "s")

    async def bench(ctx):
        for v in (-128, 127, 5, -7):
            ctx.set(x, v)
            for i, c in enumerate(coeffs):
                ctx.set(idx, i)
                assert ctx.get(y) == c * v

    run(m, bench, clock=False)


def test_mac_lane_sums_rows_from_init():
    """Rows of products with a bias as ``init``, idle cycles between them: every row's total
    at its last product equals init + Σ a·b, whatever the accumulator held before."""
    rng = np.random.default_rng(4)
    m = Module()
    a, b = Signal(unsigned(8)), Signal(signed(6))
    first, en, init = Signal(), Signal(), Signal(signed(20))
    total, acc = mac_lane(m, a, b, first=first, en=en, init=init, shape=signed(20), name="l")
    rows = [(int(rng.integers(-999, 999)), rng.integers(0, 256, n), rng.integers(-32, 32, n))
            for n in (1, 5, 3, 8)]
    sums = []

    async def bench(ctx):
        for bias, xs, ws in rows:
            for k, (x, w) in enumerate(zip(xs, ws)):
                ctx.set(a, int(x))               # cycle t: operands
                ctx.set(b, int(w))
                ctx.set(en, 0)
                await ctx.tick()
                ctx.set(first, k == 0)           # cycle t + 1: the product's flags
                ctx.set(en, 1)
                ctx.set(init, bias)
                if k == len(xs) - 1:
                    sums.append(ctx.get(total))
                await ctx.tick()
                ctx.set(en, 0)
                await ctx.tick()                 # an idle cycle: acc holds
        assert ctx.get(acc) == sums[-1]

    run(m, bench)
    assert sums == [bias + int(np.dot(xs, ws)) for bias, xs, ws in rows]


def test_running_argmax_ties_to_lowest_index():
    m = Module()
    value, index, en = Signal(signed(8)), Signal(range(5)), Signal()
    cls = Signal(range(5))
    running_argmax(m, value, index, en, cls)
    got = []

    async def bench(ctx):
        for logits in ([3, 7, 7, -2, 1], [-5, -5, -5, -5, -5], [-128, -127, 127, 127, -1]):
            for k, v in enumerate(logits):
                ctx.set(value, v)
                ctx.set(index, k)
                ctx.set(en, 1)
                await ctx.tick()
                ctx.set(en, 0)
                ctx.set(value, 127)          # a disabled cycle changes nothing
                await ctx.tick()
            got.append(ctx.get(cls))

    run(m, bench)
    assert got == [1, 0, 2]
