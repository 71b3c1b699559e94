"""Verify a network top bit-exact against the golden model on an HDL simulator."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slimgen.sw.artifact import write_bytes_atomic
from slimgen.sw.golden import argmax_first

from .runner import run_bench

__all__ = ["NetworkVerification", "verify_network", "prepare_bench"]


@dataclass(frozen=True, eq=False)
class NetworkVerification:
    """What the simulator gave: logits (n, n_classes), classes (n,), and the cycle counts:
    ``latency`` (one sample alone, its first input transfer to its result's, both counted),
    ``result_cycles`` (n,) (each result's cycle, samples streamed back to back to a consumer
    always ready) and ``interval`` (the mean cycles between consecutive results there)."""
    logits: np.ndarray
    cls: np.ndarray
    expected: np.ndarray
    latency: int
    interval: float
    simulator: str
    result_cycles: np.ndarray = None

    @property
    def bit_exact(self):
        return bool(np.array_equal(self.logits, self.expected)
                    and np.array_equal(self.cls, argmax_first(self.expected)))

    @property
    def n(self):
        return len(self.logits)


def prepare_bench(build_dir, qmodel, x_q):
    """The bench's folder (made), the inputs as int64 (n, n_inputs), and the golden logits."""
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    x_q = np.asarray(x_q, dtype=np.int64)
    if x_q.ndim != 2 or x_q.shape[1] != qmodel.n_inputs:
        raise ValueError(f"Inputs must have shape (n, {qmodel.n_inputs}), not {x_q.shape}")
    return build_dir, x_q, qmodel(x_q)


def verify_network(verilog_path, qmodel, x_q, *, build_dir, sim=None, toplevel="network",
                   log_file=None, ready_probability=1.0, seed=0, weight_image=None):
    """Run every row of ``x_q`` (n, n_inputs) through the Verilog network at ``verilog_path``.

    Raises :class:`slimgen.sim.runner.BenchFailed` when any sample differs from the golden
    model (the bench's log names the first few). ``log_file``: where the simulator's output
    goes (default: the terminal). ``ready_probability`` below 1: the samples are also streamed
    to a consumer ready on that fraction of the cycles (drawn with ``seed``), and must be
    exact there too. ``weight_image``: the bytes of a network whose weights are written at run
    time (a ``load`` port, :mod:`slimgen.hw.lib.weights`), sent before the first sample.
    """
    if not 0 < ready_probability <= 1:
        raise ValueError(f"Ready probability must be in (0, 1], not {ready_probability!r}")
    from slimgen.hw.lib.argmax import result_layout
    from .runner import default_simulator
    sim = sim or default_simulator()
    build_dir, x_q, expected = prepare_bench(build_dir, qmodel, x_q)
    layout = result_layout(qmodel.n_classes, qmodel.logit_bits)
    data_path, out_path = build_dir / "bench_data.npz", build_dir / "bench_out.npz"
    import io
    buf = io.BytesIO()
    np.savez(buf, inputs=x_q, expected=expected, logit_bits=qmodel.logit_bits,
             cls_bits=layout["cls"].shape.width, ready_probability=float(ready_probability),
             seed=int(seed),
             **({} if weight_image is None else
                {"weights": np.frombuffer(bytes(weight_image), dtype=np.uint8)}))
    write_bytes_atomic(data_path, buf.getvalue())
    out_path.unlink(missing_ok=True)
    run_bench(verilog=verilog_path, toplevel=toplevel, test_module="slimgen.sim.network_tb",
              build_dir=build_dir, sim=sim,
              extra_env={"SLIMGEN_TB_DATA": data_path.resolve(),
                         "SLIMGEN_TB_OUT": out_path.resolve()},
              log_file=log_file)
    with np.load(out_path) as f:
        return NetworkVerification(f["logits"], f["cls"], expected, int(f["latency"]),
                                   float(f["interval"]), sim, f["result_cycles"])
