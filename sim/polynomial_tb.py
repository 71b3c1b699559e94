"""cocotb bench of one polynomial unit (residue network, CRT reconstruction or folded input
transform): vectors through the RTL, every output vector compared with the exact result of
``slimgen.sw.winograd``'s polynomial arithmetic, in order.

Data in (``SLIMGEN_TB_DATA``): ``inputs`` (n, n_in) and ``expected`` (n, n_out) integers,
``in_bits`` (inputs are packed element 0 lowest, two's complement) and ``out_bits`` (signed
output elements).
"""

import cocotb
import numpy as np

from slimgen.sim.streams import (bench_file, start_clock_and_reset, stream_get, stream_put,
                                 unpack_fields)


def _pack(values, width):
    out = 0
    for k, v in enumerate(values):
        out |= (int(v) & ((1 << width) - 1)) << (k * width)
    return out


@cocotb.test()
async def polynomial_unit_matches_sw(dut):
    with np.load(bench_file("SLIMGEN_TB_DATA")) as f:
        inputs, expected = f["inputs"], f["expected"]
        in_bits, out_bits = int(f["in_bits"]), int(f["out_bits"])
    n, n_out = expected.shape
    await start_clock_and_reset(dut)
    get = cocotb.start_soon(stream_get(dut, "o", n))
    await stream_put(dut, "i", [_pack(x, in_bits) for x in inputs])
    raw = await get
    out = np.array([unpack_fields(v, [out_bits] * n_out, [True] * n_out) for v in raw])
    bad = np.flatnonzero((out != expected).any(axis=1))
    for k in bad[:3]:
        dut._log.error("vector %d: hardware %s, expected %s", k, out[k].tolist(),
                       expected[k].tolist())
    assert len(bad) == 0, f"{len(bad)} of {n} vectors differ from the exact result"
