"""cocotb bench of one dense engine: random vectors through the RTL, outputs compared with the
golden model vector by vector, three times: one vector alone (its latency), all vectors back
to back with the consumer always ready (the interval between the vectors' last outputs), and
all vectors again with a consumer that is ready on about half the cycles.

Data in (``SLIMGEN_TB_DATA``): ``inputs`` (n, n_in), ``expected`` (n, n_out) golden outputs,
``signed_out`` (whether outputs are signed accumulators), ``out_bits``, ``latency`` and
``interval`` (the engine's model: both must be met exactly) and ``seed`` (of the random ready).
"""

import cocotb
import numpy as np
from cocotb.utils import get_sim_time

from slimgen.sim.streams import (CLOCK_NS, bench_file, start_clock_and_reset, stream_get,
                                 stream_put, unpack_fields)


async def _run(dut, inputs, n_out, **ready):
    """Send ``inputs`` (n, n_in) back to back; the outputs (n·n_out payloads) and the cycle of
    each vector's last output, counted from the cycle before the first input."""
    t0, last = get_sim_time("ns"), []

    def on_transfer(k, _):
        if k % n_out == n_out - 1:
            last.append(round((get_sim_time("ns") - t0) / CLOCK_NS) + 1)

    get = cocotb.start_soon(stream_get(dut, "o", len(inputs) * n_out, on_transfer, **ready))
    await stream_put(dut, "i", inputs.reshape(-1))
    return await get, np.array(last)


@cocotb.test()
async def dense_matches_golden(dut):
    with np.load(bench_file("SLIMGEN_TB_DATA")) as f:
        inputs, expected = f["inputs"], f["expected"]
        signed_out, out_bits = bool(f["signed_out"]), int(f["out_bits"])
        model_latency, model_interval, seed = int(f["latency"]), int(f["interval"]), int(f["seed"])
    n, n_out = expected.shape
    await start_clock_and_reset(dut)
    failures = []
    for phase, x, ready in [("alone", inputs[:1], {}), ("back to back", inputs, {}),
                            ("random ready", inputs, dict(ready_probability=0.5,
                                                          rng=np.random.default_rng(seed)))]:
        raw, last = await _run(dut, x, n_out, **ready)
        out = np.array([unpack_fields(v, [out_bits], [signed_out])[0] for v in raw])
        out = out.reshape(len(x), n_out)
        bad = np.flatnonzero((out != expected[:len(x)]).any(axis=1))
        for k in bad[:3]:
            dut._log.error("%s, vector %d: hardware %s, golden %s", phase, k, out[k].tolist(),
                           expected[k].tolist())
        if len(bad):
            failures.append(f"{phase}: {len(bad)} of {len(x)} vectors differ from the golden model")
        if phase == "alone" and last[0] != model_latency:
            failures.append(f"latency {last[0]} cycles, the model's {model_latency}")
        if phase == "back to back" and not np.all(np.diff(last) == model_interval):
            failures.append(f"intervals {np.diff(last).tolist()}, the model's {model_interval}")
    assert not failures, "; ".join(failures)
    dut._log.info("%d vectors bit-exact three times; latency %d, interval %d cycles", n,
                  model_latency, model_interval)
