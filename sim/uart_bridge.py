"""Verify the UART bridge on an HDL simulator, with the bench playing the host on the serial
line (see :mod:`slimgen.sim.uart_bridge_tb`)."""

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slimgen.sw.artifact import write_bytes_atomic

from .runner import default_simulator, run_bench

__all__ = ["UARTVerification", "write_bridge_verilog", "verify_uart_bridge"]


@dataclass(frozen=True, eq=False)
class UARTVerification:
    """What came back over the line: logits (n, n_classes), classes (n,), cycles per exchange."""
    logits: np.ndarray
    cls: np.ndarray
    expected: np.ndarray
    cycles: np.ndarray
    divisor: int
    simulator: str

    @property
    def bit_exact(self):
        return bool(np.array_equal(self.logits, self.expected)
                    and np.array_equal(self.cls, np.argmax(self.expected, axis=1)))


def write_bridge_verilog(path, qmodel, *, divisor, lanes=4, timeout_bytes=64,
                         name="uart_bridge", network=None):
    """Write the Verilog of a :class:`slimgen.hw.uart_bridge.UARTBridge` to ``path``
    (serving ``network`` when given, see the bridge)."""
    from slimgen.hw.uart_bridge import UARTBridge
    from slimgen.hw.verilog import to_verilog
    bridge = UARTBridge(qmodel, divisor=divisor, lanes=lanes, timeout_bytes=timeout_bytes,
                        network=network)
    write_bytes_atomic(path, to_verilog(bridge, name).encode())
    return Path(path)


def verify_uart_bridge(qmodel, x_q, *, divisor, build_dir, lanes=4, timeout_bytes=64, sim=None,
                       testcase=None, network=None):
    """Run every row of ``x_q`` (n, n_inputs) through a UART bridge with clock divisor
    ``divisor``, as a host would over the serial line.

    ``timeout_bytes`` is shorter than the bridge's default so that the timeout test stays
    quick. ``testcase`` picks one cocotb test of the bench (all by default). ``network``: the
    network the bridge serves instead of a :class:`slimgen.hw.network.Network`; one with a
    ``load`` port gets its weight image with LOAD after each reset. Raises
    :class:`slimgen.sim.runner.BenchFailed` when an image's reply differs from the golden model.
    """
    from .network import prepare_bench
    sim = sim or default_simulator()
    build_dir, x_q, expected = prepare_bench(build_dir, qmodel, x_q)
    verilog = write_bridge_verilog(build_dir / "uart_bridge.v", qmodel, divisor=divisor,
                                   lanes=lanes, timeout_bytes=timeout_bytes, network=network)
    weights = {} if network is None or not hasattr(network, "load") else \
        {"weights": np.frombuffer(network.weight_image(), dtype=np.uint8)}
    data_path, out_path = build_dir / "bench_data.npz", build_dir / "bench_out.npz"
    buf = io.BytesIO()
    np.savez(buf, inputs=x_q, expected=expected, divisor=divisor,
             logit_bits=qmodel.logit_bits, timeout_bytes=timeout_bytes, **weights)
    write_bytes_atomic(data_path, buf.getvalue())
    out_path.unlink(missing_ok=True)
    run_bench(verilog=verilog, toplevel="uart_bridge", test_module="slimgen.sim.uart_bridge_tb",
              build_dir=build_dir, sim=sim, testcase=testcase,
              extra_env={"SLIMGEN_TB_DATA": data_path.resolve(),
                         "SLIMGEN_TB_OUT": out_path.resolve()})
    with np.load(out_path) as f:
        return UARTVerification(f["logits"], f["cls"], expected, f["cycles"], divisor, sim)
