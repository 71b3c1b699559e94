"""cocotb bench of a set of sparse MAC arrays in one top (ports ``i<k>``/``o<k>``, one array
each): random vectors through every array at once, outputs compared with the golden model.

Data in (``SLIMGEN_TB_DATA``, an ``.npz``): for case k, ``inputs<k>`` (n, n_in),
``expected<k>`` (n, n_out), ``signed_out<k>``, ``out_bits<k>``, ``in_bits<k>``.
Results out (``SLIMGEN_TB_OUT``): ``latency<k>``, cycles from the first vector's last input
transfer to its first output transfer, with nothing else in flight.
"""

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotb.utils import get_sim_time

from slimgen.sim.streams import CLOCK_NS, bench_file, stream_get, stream_put, unpack_fields


def _save_whole(path, **arrays):
    import io
    from slimgen.sw.artifact import write_bytes_atomic
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(path, buf.getvalue())


def _now():
    return round(get_sim_time("ns") / CLOCK_NS)


async def _run_case(dut, k, inputs, expected, signed_out, out_bits, in_bits):
    """First vector alone, then the rest back to back; returns (outputs, the cycle of the
    first vector's last input transfer)."""
    n, n_out = expected.shape
    mask = (1 << in_bits) - 1
    get = cocotb.start_soon(stream_get(dut, f"o{k}", n_out))
    await stream_put(dut, f"i{k}", [int(v) & mask for v in inputs[0]])
    t_in = _now()
    raw = list(await get)
    get = cocotb.start_soon(stream_get(dut, f"o{k}", (n - 1) * n_out))
    await stream_put(dut, f"i{k}", [int(v) & mask for v in inputs[1:].reshape(-1)])
    raw += await get
    out = np.array([unpack_fields(v, [out_bits], [signed_out])[0] for v in raw]).reshape(n, n_out)
    return out, t_in


@cocotb.test()
async def sparse_arrays_match_golden(dut):
    with np.load(bench_file("SLIMGEN_TB_DATA")) as f:
        cases = int(f["cases"])
        data = [(f[f"inputs{k}"], f[f"expected{k}"], bool(f[f"signed_out{k}"]),
                 int(f[f"out_bits{k}"]), int(f[f"in_bits{k}"])) for k in range(cases)]
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rst.value = 1
    for k in range(cases):
        getattr(dut, f"i{k}__valid").value = 0
        getattr(dut, f"o{k}__ready").value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0

    # Latency of the first output: watch each case's o valid.
    first_out = [None] * cases

    async def watch(k):
        valid = getattr(dut, f"o{k}__valid")
        while True:
            await RisingEdge(dut.clk)
            if valid.value == 1:
                first_out[k] = _now() - 1
                return

    for k in range(cases):
        cocotb.start_soon(watch(k))
    tasks = [cocotb.start_soon(_run_case(dut, k, *d)) for k, d in enumerate(data)]
    results = [await t for t in tasks]
    latency = np.array([first_out[k] - results[k][1] for k in range(cases)], dtype=np.int64)
    _save_whole(bench_file("SLIMGEN_TB_OUT"), latency=latency)
    failed = []
    for k, ((out, _), (inputs, expected, *_)) in enumerate(zip(results, data)):
        bad = np.flatnonzero((out != expected).any(axis=1))
        for v in bad[:2]:
            dut._log.error("case %d vector %d: hardware %s, golden %s", k, v, out[v].tolist(),
                           expected[v].tolist())
        if len(bad):
            failed.append(k)
    assert not failed, f"cases {failed} differ from the golden model"
    dut._log.info("%d cases bit-exact; first-vector latencies %s", cases, latency.tolist())
