"""``slimgen import MODEL.onnx --run runs/NAME [--data digits|FILE.npz] [--seed S]``: an ONNX
model (:mod:`slimgen.import_onnx`) made the trained model of a run folder, from which
``slimgen flow --run runs/NAME`` goes on (compress with any method, fine-tuning on the data;
quantize; ...).

It writes into the run folder

- ``net.json``: the network description the import made;
- ``config.json``: model ``net``, ``net`` that file, ``data``, ``seed``, and ``source`` the
  ONNX file, so the train stage imports it again (``slimgen flow --from train`` re-imports,
  never trains from a random start);
- ``float.npz``, ``train.json``: the float model, its accuracy on the data's test and
  validation splits, ``imported_from`` and the agreement with onnxruntime;
- ``import.json``: the source (path, SHA-256, opset, producer), the node of every layer, and
  the agreement on the test split (:func:`slimgen.import_onnx.check_agreement`).

Everything is checked before anything is written: the file (an operator or layout slimgen
cannot import is named with its node), the settings, and the data against the network (samples
of its input size, channels-last; no more classes than its outputs).
"""

import hashlib
import sys
import tempfile
from pathlib import Path

__all__ = ["add_parser", "run", "main", "import_run", "import_stage", "TOLERANCE"]

#: The largest relative difference to onnxruntime accepted without a warning; above
#: ``REFUSE`` the import is refused (the imported model does not compute the ONNX model).
TOLERANCE = 1e-5
REFUSE = 1e-3


def add_parser(subparsers):
    """Register the ``import`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "import", help="import an ONNX model into a run folder",
        description="Import a sequential ONNX model (Conv, Gemm/MatMul, BatchNormalization, "
                    "pooling, LSTM, GRU, ...) as a run's trained model; 'slimgen flow --run "
                    "RUN' then compresses and quantizes it.")
    p.add_argument("model", metavar="MODEL.onnx", help="the ONNX model file")
    p.add_argument("--run", required=True, help="run folder to write (e.g. runs/NAME)")
    p.add_argument("--data", help="'digits' (built in, the default), 'mnist1d' or 'mnist5k' (the "
                                  "[data] extra), or a path to an .npz with "
                                  "x (flat channels-last samples in [0, 1]) and y")
    p.add_argument("--seed", type=int, help="split and fine-tuning seed (default 0)")
    p.add_argument("--name", help="the network's name (default: the file's stem)")
    p.add_argument("--quiet", action="store_true", help="no progress messages")
    p.set_defaults(func=run)
    return p


def run(args):
    """The ``import`` subcommand: import, then print the network and the figures."""
    log = (lambda msg: None) if args.quiet else None
    figures = import_run(args.model, args.run, data=args.data, seed=args.seed, name=args.name,
                         progress=not args.quiet, log=log)
    from slimgen.sw.network import load_network
    print(load_network(Path(args.run) / "net.json").summary())
    for key in ("float_accuracy", "val_accuracy", "import_max_relative_difference",
                "import_argmax_agreement"):
        if key in figures:       # a QONNX source is checked against qonnx at quantize
            print(f"{key:<30}  {figures[key]:.6g}")
    print(f"then: slimgen flow --run {args.run} --to quantize")
    return 0


def _settings(root, source, data, seed):
    """The run settings of an import into ``root``: a stored net run keeps its settings of the
    later stages (compression, quantization, hardware); anything else starts from the
    defaults."""
    from slimgen.flow import STAGE_SETTINGS, _read_json
    from slimgen.settings import RunConfig
    settings = RunConfig().to_dict()
    stored = _read_json(root / "config.json") or {}
    if stored.get("model") == "net":
        settings.update({k: v for k, v in stored.items()
                         if k in settings and k not in STAGE_SETTINGS["train"]})
    settings.update(model="net", source=str(source),
                    data=data if data is not None else stored.get("data", "digits"),
                    seed=seed if seed is not None else stored.get("seed", 0))
    return settings


def _config(settings, net_path):
    from slimgen.flow import FlowError
    from slimgen.settings import RunConfig, SettingError
    try:
        return RunConfig.from_dict({**settings, "net": str(net_path)})
    except SettingError as e:
        raise FlowError(f"--{e.setting}{str(e)[len(e.setting):]}") from None


def import_run(source, root, *, data=None, seed=None, name=None, progress=True, log=None):
    """Import the ONNX model ``source`` into the run folder ``root`` (see the module
    docstring) and return the train stage's figures. Refuses with one message
    (:class:`~slimgen.import_onnx.OnnxImportError`, :class:`~slimgen.flow.FlowError`) and
    writes nothing when the file, a setting or the data is wrong."""
    from slimgen.flow import FlowError, Run, check_data, run_stage
    from slimgen.sw.artifact import write_bytes_atomic
    if not str(root).strip():
        raise FlowError(f"--run must name a run folder (e.g. runs/NAME), not {str(root)!r}")
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise FlowError(f"--run {root} is a file, not a run folder")
    network, model, info, quantized = _import(source, name)
    settings = _settings(root, source, data, seed)
    text = (network.to_json() + "\n").encode()
    with tempfile.TemporaryDirectory() as tmp:        # every check before anything is written
        trial = Path(tmp) / "net.json"
        trial.write_bytes(text)
        config = _config(settings, trial)
        dataset = check_data(config)
        if not quantized:      # onnxruntime cannot run quantizers: qonnx checks at quantize
            _agreement(source, network, model, info, dataset.part("test")[0])
    write_bytes_atomic(root / "net.json", text)
    run = Run(root, _config(settings, root / "net.json"), progress=progress, log=log)
    return run_stage(run, "train")


def _import(source, name):
    """``(network, float_model, info, quantized)``: a QONNX model (quantizers on weights and
    activations) through :func:`slimgen.qonnx_io.float_import` (its integer model is made at
    the quantize stage, from the source), any other through
    :func:`~slimgen.import_onnx.import_onnx`."""
    from slimgen.import_onnx import import_onnx
    from slimgen.qonnx_io import float_import, is_qonnx
    if is_qonnx(source):
        return (*float_import(source, name=name), True)
    return (*import_onnx(source, name=name), False)


def _agreement(source, network, model, info, x, log=None):
    """:func:`~slimgen.import_onnx.check_agreement` on ``x``; refused when the float model does
    not compute the ONNX model, warned about above :data:`TOLERANCE`."""
    from slimgen.flow import FlowError
    from slimgen.import_onnx import check_agreement
    figures = check_agreement(source, network, model, x, info=info)
    rel = figures["max_relative_difference"]
    if not rel <= REFUSE:
        raise FlowError(f"{source}: the imported model's outputs differ from onnxruntime's by "
                        f"up to {rel:.3g} of their largest (argmax agreement "
                        f"{figures['argmax_agreement']:.3f}) on {figures['samples']} samples; "
                        f"this is a bug in slimgen's importer: please report it with the "
                        f"model; nothing was written")
    if rel > TOLERANCE and log:
        log(f"import: the outputs differ from onnxruntime's by up to {rel:.3g} of their "
            f"largest (float32 rounding in onnxruntime; tolerance {TOLERANCE})")
    return figures


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def import_stage(run):
    """The train stage of an imported run (``config.source`` set): import the source again,
    write ``float.npz`` and ``import.json`` (and ``net.json`` when the source's network
    changed), and return the figures for ``train.json``."""
    from slimgen.flow import FlowError, _write_json, check_data, data_sha256
    from slimgen.sw.artifact import save_float_model, write_bytes_atomic
    from slimgen.sw.network import NetworkError, load_network
    from slimgen.sw.nn import evaluate
    c = run.config
    digest = data_sha256(c)
    if not Path(c.source).is_file():
        raise FlowError(f"{c.source}, the ONNX model this run was imported from, does not "
                        f"exist: import it again ('slimgen import MODEL.onnx --run "
                        f"{run.root}')")
    try:
        name = load_network(c.net).name
    except NetworkError:
        name = None
    network, model, info, quantized = _import(c.source, name)
    text = network.to_json() + "\n"
    if Path(c.net).read_text(encoding="utf-8", errors="replace") != text:
        run.log(f"import: {c.source} holds another network than {c.net}: {c.net} rewritten")
        write_bytes_atomic(c.net, text.encode())
    data = check_data(c, run.dataset())
    x_test = run.dataset("vector").part("test")[0]
    agreement = {"runtime": "qonnx, at the quantize stage (its qonnx_* figures)"} if quantized \
        else _agreement(c.source, network, model, info, x_test, log=run.log)
    save_float_model(run.path("float.npz"), model, dataset=c.data, split_seed=c.seed,
                     history=[], extra={"model": c.model, "imported_from": c.source},
                     network=network)
    _write_json(run.path("import.json"), {
        "source": c.source, "sha256": _sha256(c.source), "opset": info["opset"],
        "ir_version": info["ir_version"], "producer_name": info["producer_name"],
        "producer_version": info["producer_version"], "graph_name": info["graph_name"],
        "input": {k: info["input"][k] for k in ("name", "shape", "batch")},
        "output": info["output"], "dropped_final": info["final"],
        "layers": [{"layer": i, "type": layer["type"], "node": node} for i, (layer, node) in
                   enumerate(zip(network.layers[1:], info["nodes"]), 1)],
        "dropped": info["dropped"], "data": c.data, "split": "test", "agreement": agreement})
    return {"model": c.model, "imported_from": c.source,
            "float_accuracy": evaluate(model, *data.part("test")),
            "val_accuracy": evaluate(model, *data.part("val")),
            **({} if quantized else {
                "import_max_relative_difference": agreement["max_relative_difference"],
                "import_argmax_agreement": agreement["argmax_agreement"]}),
            **({"_data_sha256": digest} if digest else {})}


def main(argv=None):
    """``slimgen import ...`` on its own: the command line's ``import`` (exit status 0, or 1
    with one line on standard error)."""
    from slimgen.cli import main as slimgen_main
    argv = sys.argv[1:] if argv is None else list(argv)
    return slimgen_main(["import", *(argv[1:] if argv[:1] == ["import"] else argv)])


if __name__ == "__main__":
    sys.exit(main())
