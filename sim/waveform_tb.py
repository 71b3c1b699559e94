"""cocotb bench that records one inference of the network top as a VCD.

It samples the top-level stream ports once per clock cycle (after each rising edge has
settled), sends one sample, takes its result, and writes the samples with
:func:`slimgen.waveform_plot.write_vcd`, plus two fields of the result, ``o_cls`` and
``o_logit_cls`` (the winning logit), decoded from ``o__payload``.

Data in (``SLIMGEN_TB_DATA``, an ``.npz``): ``inputs`` (n_inputs,) integer codes, ``expected``
(n_classes,) golden logits, ``logit_bits``, ``cls_bits``. Out: the VCD at ``SLIMGEN_TB_OUT``.
"""

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from slimgen.sim.streams import (CLOCK_NS, bench_file, start_clock_and_reset, stream_get,
                                 stream_put, unpack_fields)
from slimgen.waveform_plot import write_vcd

PORTS = ("rst", "i__valid", "i__ready", "i__payload", "o__valid", "o__ready", "o__payload")
IDLE_CYCLES = 4


def _value(handle):
    v = handle.value
    try:
        return v.to_unsigned() if hasattr(v, "to_unsigned") else int(v)
    except ValueError:  # x or z in some bit
        return None


@cocotb.test()
async def record_one_inference(dut):
    """One sample through the network, every cycle of it sampled; its logits checked."""
    with np.load(bench_file("SLIMGEN_TB_DATA")) as f:
        x, expected = f["inputs"], f["expected"]
        logit_bits, cls_bits = int(f["logit_bits"]), int(f["cls_bits"])
    n_classes = len(expected)
    handles = [getattr(dut, p) for p in PORTS]
    widths = [len(h) for h in handles]
    samples, running = [], True

    async def sample():
        while running:
            await RisingEdge(dut.clk)
            await ReadOnly()
            samples.append([_value(h) for h in handles])

    sampler = cocotb.start_soon(sample())
    await start_clock_and_reset(dut)
    get = cocotb.start_soon(stream_get(dut, "o", 1))
    await stream_put(dut, "i", x)
    raw = (await get)[0]
    for _ in range(IDLE_CYCLES):
        await RisingEdge(dut.clk)
    running = False
    await RisingEdge(dut.clk)
    sampler.cancel()

    fields = unpack_fields(raw, [cls_bits] + [logit_bits] * n_classes, [False] + [True] * n_classes)
    assert fields[1:] == expected.tolist(), f"hardware {fields[1:]}, golden {expected.tolist()}"

    def decode(p):
        if p is None:
            return None, None
        f = unpack_fields(p, [cls_bits] + [logit_bits] * n_classes, [False] + [True] * n_classes)
        return f[0], f[1 + f[0]] & ((1 << logit_bits) - 1) if f[0] < n_classes else None

    rows = [s + list(decode(s[PORTS.index("o__payload")])) for s in samples]
    signals = list(zip(PORTS, widths)) + [("o_cls", cls_bits), ("o_logit_cls", logit_bits)]
    write_vcd(bench_file("SLIMGEN_TB_OUT"), signals, rows, period_ns=CLOCK_NS, scope="network",
              comment="slimgen: one inference, top-level ports sampled every clock cycle")
