"""The streaming max-pool unit on Amaranth's simulator, against the integer golden model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw_sim import run_stream
from slimgen.hw.maxpool import MaxPool
from slimgen.sw.cnn_quant import maxpool_int


def _frames(rng, n, c, h, w, bits=8):
    return rng.integers(0, 1 << bits, (n, c, h, w))


def _raster(a):
    """(n, C, H, W) → the (y, x, c) raster stream of all frames."""
    return a.transpose(0, 2, 3, 1).reshape(-1)


@pytest.mark.parametrize("c, h, w, k", [(1, 4, 4, 2), (3, 6, 4, 2), (2, 5, 7, 2), (2, 6, 6, 3)])
def test_matches_golden_two_frames(c, h, w, k):
    rng = np.random.default_rng(c * 100 + h * 10 + w)
    a = _frames(rng, 2, c, h, w)
    dut = MaxPool(height=h, width=w, channels=c, kernel=k)
    out, _ = run_stream(dut, _raster(a), 2 * dut.n_out)
    assert out == _raster(maxpool_int(a, k)).tolist()


def test_backpressure():
    rng = np.random.default_rng(5)
    a = _frames(rng, 2, 1, 4, 6)
    dut = MaxPool(height=4, width=6, channels=1, kernel=2)
    want = _raster(maxpool_int(a, 2)).tolist()
    inputs, out = _raster(a), []

    async def driver(ctx):
        for v in inputs:
            ctx.set(dut.i.payload, int(v))
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        r = np.random.default_rng(1)
        while len(out) < len(want):
            ctx.set(dut.o.ready, int(r.random() < 0.4))
            *_, valid, ready, payload = await ctx.tick().sample(dut.o.valid, dut.o.ready,
                                                                dut.o.payload)
            if valid and ready:
                out.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(driver)
    sim.add_testbench(monitor)
    sim.run_until(1e-3)
    assert out == want


def test_one_input_per_cycle():
    a = _frames(np.random.default_rng(2), 1, 2, 4, 4)
    dut = MaxPool(height=4, width=4, channels=2, kernel=2)
    _, cycles = run_stream(dut, _raster(a), dut.n_out)
    assert cycles <= a.size + 3


@pytest.mark.parametrize("kw, msg", [
    (dict(height=0, width=4, channels=1), "Height must be a positive integer, not 0"),
    (dict(height=4, width=4, channels=1, kernel=5), "Kernel 5 is larger than the 4×4 frame"),
    (dict(height=4, width=4, channels=1.5), "Channel count must be a positive integer, not 1.5"),
])
def test_messages(kw, msg):
    with pytest.raises(ValueError) as e:
        MaxPool(**kw)
    assert str(e.value) == msg
