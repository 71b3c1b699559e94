"""cocotb bench of the network top: every sample through the RTL, logits compared with the
golden model sample by sample.

Data in (``SLIMGEN_TB_DATA``, an ``.npz``): ``inputs`` (n, n_inputs) integer codes,
``expected`` (n, n_classes) golden logits, ``logit_bits``, ``cls_bits``.
Results out (``SLIMGEN_TB_OUT``, an ``.npz`` written whole): ``logits`` and ``cls`` as the
hardware gave them, ``latency`` (cycles from a sample's first input transfer to its result,
one sample in flight) and ``interval`` (cycles per sample with samples streamed back to back).
"""

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge
from cocotb.utils import get_sim_time

from slimgen.sim.streams import (CLOCK_NS, bench_file, start_clock_and_reset, stream_get,
                                 stream_put, unpack_fields)


def _decode(value, n_classes, logit_bits, cls_bits):
    fields = unpack_fields(value, [cls_bits] + [logit_bits] * n_classes,
                           [False] + [True] * n_classes)
    return fields[0], fields[1:]


def _save_whole(path, **arrays):
    from slimgen.sw.artifact import write_bytes_atomic
    import io
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


@cocotb.test()
async def network_matches_golden(dut):
    """Each sample alone (latency), then all samples streamed (interval); all logits exact."""
    with np.load(bench_file("SLIMGEN_TB_DATA")) as f:
        inputs, expected = f["inputs"], f["expected"]
        logit_bits, cls_bits = int(f["logit_bits"]), int(f["cls_bits"])
    n, n_classes = expected.shape
    await start_clock_and_reset(dut)

    # One sample in flight: latency of the first sample.
    t0 = get_sim_time("ns")
    get = cocotb.start_soon(stream_get(dut, "o", 1))
    await stream_put(dut, "i", inputs[0])
    first = await get
    latency = round((get_sim_time("ns") - t0) / CLOCK_NS)
    cls0, logits0 = _decode(first[0], n_classes, logit_bits, cls_bits)
    assert logits0 == expected[0].tolist() and cls0 == int(np.argmax(expected[0])), \
        f"first sample after reset: hardware {logits0} class {cls0}, golden " \
        f"{expected[0].tolist()}"

    # All samples back to back: the driver never waits for results.
    t0 = get_sim_time("ns")
    get = cocotb.start_soon(stream_get(dut, "o", n))
    await stream_put(dut, "i", inputs.reshape(-1))
    raw = await get
    interval = (get_sim_time("ns") - t0) / CLOCK_NS / n
    await RisingEdge(dut.clk)

    decoded = [_decode(v, n_classes, logit_bits, cls_bits) for v in raw]
    cls = np.array([c for c, _ in decoded], dtype=np.int64)
    logits = np.array([l for _, l in decoded], dtype=np.int64).reshape(n, n_classes)
    _save_whole(bench_file("SLIMGEN_TB_OUT"), logits=logits, cls=cls,
                latency=np.int64(latency), interval=np.float64(interval))
    bad = np.flatnonzero((logits != expected).any(axis=1) | (cls != np.argmax(expected, axis=1)))
    for k in bad[:5]:
        dut._log.error("sample %d: hardware logits %s class %d, golden %s class %d", k,
                       logits[k].tolist(), cls[k], expected[k].tolist(), np.argmax(expected[k]))
    assert len(bad) == 0, f"{len(bad)} of {n} samples differ from the golden model"
    dut._log.info("%d samples bit-exact; latency %d cycles, interval %.1f cycles/sample",
                  n, latency, interval)
