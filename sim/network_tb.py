"""cocotb bench of the network top: every sample through the RTL, logits compared with the
golden model sample by sample.

Data in (``SLIMGEN_TB_DATA``, an ``.npz``): ``inputs`` (n, n_inputs) integer codes,
``expected`` (n, n_classes) golden logits, ``logit_bits``, ``cls_bits``.
Optional: ``weights``, the weight image of a network that takes its weights at run time
(``load`` and ``loaded`` ports), streamed in before the first sample, with ``loaded`` low before
and high after; ``ready_probability`` (default 1) and ``seed``: below 1, the samples are streamed a
second time to a consumer ready on that fraction of the cycles, and must be exact again.
Results out (``SLIMGEN_TB_OUT``, an ``.npz`` written whole): ``logits`` and ``cls`` as the
hardware gave them (streamed back to back), ``latency`` (cycles from a sample's first input
transfer to its result's, both counted, one sample in flight), ``result_cycles`` (the cycle of
each result, counted from the cycle before the first input, samples streamed back to back to
a consumer always ready) and ``interval`` (the mean cycles between consecutive results there,
(last − first) / (n − 1); the latency when n = 1).
"""

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge
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


def _check(dut, phase, raw, expected, n_classes, logit_bits, cls_bits):
    """Logits and classes decoded from ``raw``; the number of samples that differ, logged."""
    decoded = [_decode(v, n_classes, logit_bits, cls_bits) for v in raw]
    cls = np.array([c for c, _ in decoded], dtype=np.int64)
    logits = np.array([l for _, l in decoded], dtype=np.int64).reshape(len(raw), n_classes)
    bad = np.flatnonzero((logits != expected).any(axis=1) | (cls != np.argmax(expected, axis=1)))
    for k in bad[:5]:
        dut._log.error("%s, sample %d: hardware logits %s class %d, golden %s class %d", phase,
                       k, logits[k].tolist(), cls[k], expected[k].tolist(),
                       np.argmax(expected[k]))
    return logits, cls, len(bad)


async def _stream(dut, inputs, **ready):
    """All ``inputs`` back to back, the driver never waiting for results: the raw results and
    the cycle of each, counted from the cycle before the first input."""
    t0, cycles = get_sim_time("ns"), []
    get = cocotb.start_soon(stream_get(
        dut, "o", len(inputs),
        lambda k, v: cycles.append(round((get_sim_time("ns") - t0) / CLOCK_NS) + 1), **ready))
    await stream_put(dut, "i", inputs.reshape(-1))
    return await get, np.array(cycles, dtype=np.int64)


async def _load_weights(dut, image):
    """The weight image into ``load``; ``loaded`` must be low before and high after."""
    await ReadOnly()
    assert int(dut.loaded.value) == 0, "loaded is high out of reset, before any weight"
    await RisingEdge(dut.clk)
    await stream_put(dut, "load", image)
    await ReadOnly()
    assert int(dut.loaded.value) == 1, f"loaded is low after the {len(image)} image bytes"
    await RisingEdge(dut.clk)
    dut._log.info("%d weight bytes loaded", len(image))


@cocotb.test()
async def network_matches_golden(dut):
    """Each sample alone (latency), then all samples streamed (interval); all logits exact."""
    with np.load(bench_file("SLIMGEN_TB_DATA")) as f:
        inputs, expected = f["inputs"], f["expected"]
        logit_bits, cls_bits = int(f["logit_bits"]), int(f["cls_bits"])
        ready_probability = float(f["ready_probability"]) if "ready_probability" in f else 1.0
        seed = int(f["seed"]) if "seed" in f else 0
        weights = f["weights"] if "weights" in f else None
    n, n_classes = expected.shape
    fields = (n_classes, logit_bits, cls_bits)
    await start_clock_and_reset(dut)
    if weights is not None:
        await _load_weights(dut, weights)

    # One sample in flight: latency of the first sample.
    first, cycles = await _stream(dut, inputs[:1])
    latency = int(cycles[0])
    cls0, logits0 = _decode(first[0], *fields)
    assert logits0 == expected[0].tolist() and cls0 == int(np.argmax(expected[0])), \
        f"first sample after reset: hardware {logits0} class {cls0}, golden " \
        f"{expected[0].tolist()}"

    # All samples back to back: the driver never waits for results.
    raw, cycles = await _stream(dut, inputs)
    interval = (cycles[-1] - cycles[0]) / (n - 1) if n > 1 else float(latency)
    await RisingEdge(dut.clk)
    logits, cls, n_bad = _check(dut, "back to back", raw, expected, *fields)
    _save_whole(bench_file("SLIMGEN_TB_OUT"), logits=logits, cls=cls,
                latency=np.int64(latency), interval=np.float64(interval), result_cycles=cycles)
    assert n_bad == 0, f"{n_bad} of {n} samples differ from the golden model"

    if ready_probability < 1:  # again, to a consumer that is sometimes not ready
        raw, _ = await _stream(dut, inputs, ready_probability=ready_probability,
                               rng=np.random.default_rng(seed))
        _, _, n_bad = _check(dut, "random ready", raw, expected, *fields)
        assert n_bad == 0, (f"{n_bad} of {n} samples differ from the golden model with a "
                            f"consumer ready {ready_probability:.0%} of the cycles")
    dut._log.info("%d samples bit-exact; latency %d cycles, interval %.1f cycles/sample",
                  n, latency, interval)
