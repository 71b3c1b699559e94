"""``slimgen export --run runs/NAME --onnx OUT.onnx [--no-check] [--json]``: a run's integer
model (``model.npz``) as a QONNX graph (:func:`slimgen.qonnx_io.to_qonnx`) that qonnx's
``execute_onnx`` runs, Brevitas-style: the input, the weights and the activations behind
``Quant`` nodes, channels-first, the logits at the scale in the model's metadata
(``slimgen.logit_scale``).

Before the file is written, the graph runs on the run's test split with ``execute_onnx``
(unless ``--no-check``) and the figures say how it agrees with the golden model: the fraction
of samples with the same class, with every logit equal, and the largest logit difference in
units of the logits. Power-of-two scales make it bit-exact; otherwise float32 rounds a few
values that lie within about 10⁻⁶ of a rounding tie the other way.
"""

import json
import sys
from pathlib import Path

__all__ = ["add_parser", "run", "main", "export_run"]


def add_parser(subparsers):
    """Register the ``export`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "export", help="write a run's integer model as a QONNX graph",
        description="Write a run's quantized model (model.npz) as a QONNX graph (ONNX with "
                    "Quant nodes) that qonnx's execute_onnx runs, after checking it against "
                    "the golden model on the run's test split.")
    p.add_argument("--run", required=True, help="run folder with a model.npz (runs/NAME)")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the file to write")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="write without running the graph on the test split")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(func=run)
    return p


def export_run(root, path, *, check=True):
    """Export the integer model of the run folder ``root`` to ``path`` and return the
    figures; refused with one message (nothing written) when the run has no usable integer
    model, the network has a layer QONNX cannot express, or ``path`` cannot be written."""
    from slimgen.flow import FlowError, Run
    from slimgen.qonnx_io import export_checked
    from slimgen.stages import load_int_artifact
    path = Path(path)
    if path.is_dir():
        raise FlowError(f"--onnx {path} is a folder; give the file to write, e.g. "
                        f"{path / 'model.onnx'}")
    run = Run.existing(root)
    int_net = load_int_artifact(run)
    x = run.dataset("vector").part("test")[0] if check else None
    try:
        figures = export_checked(int_net, path, x)
    except OSError as e:
        raise OSError(f"cannot write --onnx {path}: {e.strerror or e}") from None
    return {"onnx": str(path), **figures}


def run(args):
    """The ``export`` subcommand: export, then print the figures."""
    figures = export_run(args.run, args.onnx, check=args.check)
    if args.json:
        print(json.dumps(figures))
        return 0
    for key, value in figures.items():
        text = f"{value:.6g}" if isinstance(value, float) else str(value)
        print(f"{key:<22}  {text}")
    return 0


def main(argv=None):
    """``slimgen export ...`` on its own: the command line's ``export`` (exit status 0, or 1
    with one line on standard error)."""
    from slimgen.cli import main as slimgen_main
    argv = sys.argv[1:] if argv is None else list(argv)
    return slimgen_main(["export", *(argv[1:] if argv[:1] == ["export"] else argv)])


if __name__ == "__main__":
    sys.exit(main())
