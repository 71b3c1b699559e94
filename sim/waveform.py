"""Record one inference of a network top as a VCD (see :mod:`slimgen.sim.waveform_tb`)."""

import io
from pathlib import Path

import numpy as np

from slimgen.sw.artifact import write_bytes_atomic

from .runner import default_simulator, run_bench

__all__ = ["WAVEFORM_SIGNALS", "record_inference_vcd"]

#: What the report draws: ``(signal, label, format)`` for
#: :func:`slimgen.waveform_plot.plot_waveform`.
WAVEFORM_SIGNALS = [
    ("rst", "rst", "hex"),
    ("i__valid", "in valid", "hex"),
    ("i__ready", "in ready", "hex"),
    ("i__payload", "in pixel", "dec"),
    ("o__valid", "out valid", "hex"),
    ("o__ready", "out ready", "hex"),
    ("o_cls", "out class", "dec"),
    ("o_logit_cls", "out logit[class]", "sdec"),
]


def record_inference_vcd(verilog_path, qmodel, x_q_one_sample, out_vcd, sim="icarus", *,
                         build_dir=None, toplevel="network", log_file=None):
    """Run one sample ``x_q_one_sample`` (n_inputs,) through the Verilog network top at
    ``verilog_path`` and write the VCD of its top-level ports, one sample per clock cycle, to
    ``out_vcd``. Returns the path. The bench checks the logits against ``qmodel``'s.

    ``build_dir`` defaults to a ``waveform_sim`` folder beside ``out_vcd``.
    """
    from slimgen.hw.lib.argmax import result_layout
    sim = sim or default_simulator()
    out_vcd = Path(out_vcd).resolve()
    build_dir = Path(build_dir) if build_dir else out_vcd.parent / "waveform_sim"
    build_dir.mkdir(parents=True, exist_ok=True)
    x = np.asarray(x_q_one_sample, dtype=np.int64).reshape(-1)
    if x.shape != (qmodel.n_inputs,):
        raise ValueError(f"One sample has {qmodel.n_inputs} inputs, not shape "
                         f"{np.shape(x_q_one_sample)}")
    expected = qmodel(x[None, :])[0]
    layout = result_layout(qmodel.n_classes, qmodel.logit_bits)
    data_path = build_dir / "waveform_data.npz"
    buf = io.BytesIO()
    np.savez(buf, inputs=x, expected=expected, logit_bits=qmodel.logit_bits,
             cls_bits=layout["cls"].shape.width)
    write_bytes_atomic(data_path, buf.getvalue())
    run_bench(verilog=verilog_path, toplevel=toplevel, test_module="slimgen.sim.waveform_tb",
              build_dir=build_dir, sim=sim, log_file=log_file,
              extra_env={"SLIMGEN_TB_DATA": data_path.resolve(), "SLIMGEN_TB_OUT": out_vcd})
    return out_vcd
