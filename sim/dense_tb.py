"""cocotb bench of one dense engine: random vectors through the RTL, outputs compared with the
golden model vector by vector.

Data in (``SLIMGEN_TB_DATA``): ``inputs`` (n, n_in), ``expected`` (n, n_out) golden outputs,
``signed_out`` (whether outputs are signed accumulators) and ``out_bits``.
"""

import cocotb
import numpy as np

from slimgen.sim.streams import (bench_file, start_clock_and_reset, stream_get, stream_put,
                                 unpack_fields)


@cocotb.test()
async def dense_matches_golden(dut):
    with np.load(bench_file("SLIMGEN_TB_DATA")) as f:
        inputs, expected = f["inputs"], f["expected"]
        signed_out, out_bits = bool(f["signed_out"]), int(f["out_bits"])
    n, n_out = expected.shape
    await start_clock_and_reset(dut)
    get = cocotb.start_soon(stream_get(dut, "o", n * n_out))
    await stream_put(dut, "i", inputs.reshape(-1))
    raw = await get
    out = np.array([unpack_fields(v, [out_bits], [signed_out])[0] for v in raw]).reshape(n, n_out)
    bad = np.flatnonzero((out != expected).any(axis=1))
    for k in bad[:3]:
        dut._log.error("vector %d: hardware %s, golden %s", k, out[k].tolist(),
                       expected[k].tolist())
    assert len(bad) == 0, f"{len(bad)} of {n} vectors differ from the golden model"
