"""cocotb bench of one convolution layer: frames through the RTL, every output compared with the
golden model (requantized activations, or the raw accumulators — the integer correlation plus
bias — for layers that do not requantize).

Data in (``SLIMGEN_TB_DATA``): ``frames`` (F, H, W, Cin) activations, ``expected``
(F, O, O, Cout) golden outputs in stream order, ``signed_out`` and ``out_bits``. The bench also
counts the multiplier products (port ``active``) and writes ``cycles`` and ``products`` to the
file named in ``SLIMGEN_TB_RESULT`` when that is set.
"""

import json
import os

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from slimgen.sim.streams import (bench_file, start_clock_and_reset, stream_get, stream_put,
                                 unpack_fields)


async def _count_products(dut, box):
    while True:
        await ReadOnly()
        if dut.active.value.is_resolvable:
            box["products"] += dut.active.value.to_unsigned()
        box["cycles"] += 1
        await RisingEdge(dut.clk)


@cocotb.test()
async def conv_layer_matches_golden(dut):
    with np.load(bench_file("SLIMGEN_TB_DATA")) as f:
        frames, expected = f["frames"], f["expected"]
        signed_out, out_bits = bool(f["signed_out"]), int(f["out_bits"])
    await start_clock_and_reset(dut)
    box = {"products": 0, "cycles": 0}
    cocotb.start_soon(_count_products(dut, box))
    get = cocotb.start_soon(stream_get(dut, "o", expected.size))
    await stream_put(dut, "i", frames.reshape(-1))
    raw = await get
    out = np.array([unpack_fields(v, [out_bits], [signed_out])[0] for v in raw])
    out = out.reshape(expected.shape)
    bad = np.argwhere(out != expected)
    for idx in bad[:5]:
        dut._log.error("output %s: hardware %d, golden %d", idx.tolist(), out[tuple(idx)],
                       expected[tuple(idx)])
    if os.environ.get("SLIMGEN_TB_RESULT"):
        with open(os.environ["SLIMGEN_TB_RESULT"], "w") as fh:
            json.dump(box, fh)
    assert len(bad) == 0, f"{len(bad)} of {expected.size} outputs differ from the golden model"
