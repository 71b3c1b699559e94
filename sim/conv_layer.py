"""Run the convolution-layer bench on one layer: build the Verilog, write the data, run cocotb."""

import io
import json
from pathlib import Path

import numpy as np

from slimgen.hw.conv_layer import ConvLayer
from slimgen.hw.verilog import to_verilog
from slimgen.sw.artifact import write_bytes_atomic
from slimgen.sw.golden import conv

from .runner import run_bench

__all__ = ["verify_conv_layer"]


def verify_conv_layer(layer, frames, *, algorithm=None, lanes=None, tile=2, build_dir, sim=None,
                      log_file=None):
    """Every frame (F, Cin, H, W) through the RTL of ``ConvLayer`` of the :class:`IntConv`
    ``layer``; raises ``BenchFailed`` on any difference from :func:`slimgen.sw.golden.conv`.
    Returns ``{"cycles": ..., "products": ...}`` counted by the bench."""
    frames = np.asarray(frames, dtype=np.int64)
    _, _, H, W = frames.shape
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    dut = ConvLayer(layer, height=H, width=W, algorithm=algorithm, lanes=lanes, tile=tile)
    verilog = build_dir / "conv_layer.v"
    write_bytes_atomic(verilog, to_verilog(dut, "conv_layer").encode())
    frames = frames.transpose(0, 2, 3, 1)                           # (F, H, W, Cin)
    expected = conv(frames, layer)                                  # (F, Oh, Ow, Cout)
    buf = io.BytesIO()
    np.savez(buf, frames=frames, expected=expected,
             signed_out=not layer.requant,
             out_bits=layer.out_bits if layer.requant else layer.acc_bits)
    write_bytes_atomic(build_dir / "data.npz", buf.getvalue())
    result = build_dir / "result.json"
    run_bench(verilog=verilog, toplevel="conv_layer", test_module="slimgen.sim.conv_layer_tb",
              build_dir=build_dir / "build", sim=sim, log_file=log_file,
              extra_env={"SLIMGEN_TB_DATA": build_dir / "data.npz",
                         "SLIMGEN_TB_RESULT": result})
    return json.loads(result.read_text())

