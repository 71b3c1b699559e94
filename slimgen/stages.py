"""The flow's stages, one function each: ``stage_<name>(run) -> figures`` (a dict recorded as
``<name>.json``); what each reads and writes is in :mod:`slimgen.flow`. Every artifact a stage
loads is checked against the run's settings (model kind, architecture, data, split seed) before
use, and ``model.npz`` is written only once its own loader takes it.
"""

import dataclasses
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from slimgen import flow
from slimgen.flow import FlowError, STAGES, _write_json, check_data, data_sha256, \
    skip_build_option
from slimgen.host import WEIGHTS_FILE
from slimgen.sw.artifact import (ArtifactError, load_float_model, load_int_network,
                                 save_float_model, save_int_network, write_bytes_atomic)

__all__ = ["stage_train", "stage_compress", "stage_quantize", "stage_generate", "stage_verify",
           "stage_build", "stage_report", "load_float_artifact", "load_int_artifact"]


def _describe_spec(spec):
    """A float model's architecture in a few words: ``dense 64→8, dense 8→10``."""
    parts = []
    for layer in spec if isinstance(spec, list) else []:
        if not isinstance(layer, dict):
            continue
        n_in = layer.get("n_in", layer.get("c_in"))
        n_out = layer.get("n_out", layer.get("c_out", layer.get("n_hidden")))
        if n_in is not None and n_out is not None:
            parts.append(f"{layer.get('type')} {n_in}→{n_out}")
    return ", ".join(parts) or "no layers"


def _advice(run, stage):
    return f"rerun the {stage} stage ('slimgen flow --run {run.root}" \
           f"{skip_build_option(run.root)} --from {stage}')"


def _artifact_error(run, e, stage):
    """An artifact's own refusal (of the output of ``stage``), its advice given the run's flow
    options (``--skip-build`` when the run never built), or added when it gives none."""
    text = str(e)
    if "Rerun the" not in text:
        return FlowError(f"{text}: {_advice(run, stage)}")
    if skip_build_option(run.root):
        for stage in STAGES:
            text = text.replace(f"--run {run.root} --from {stage})",
                                f"--run {run.root} --skip-build --from {stage})")
    return FlowError(text)


def load_float_artifact(run, name, stage):
    """``(model, manifest)`` of the float artifact ``name`` (written by ``stage``), refused
    unless it holds what the run's settings make: the model kind, its architecture, the data
    and split seed."""
    c = run.config
    path = run.need(name, stage)
    try:
        model, manifest = load_float_model(path)
    except ArtifactError as e:
        raise _artifact_error(run, e, stage) from None
    expected = _network(run).float_spec()[0]
    kind = manifest.get("model", c.model)
    if kind != c.model or model.spec() != expected:
        raise FlowError(f"{path} holds the {kind} {_describe_spec(model.spec())}, but this run "
                        f"makes the {c.model} {_describe_spec(expected)}: {_advice(run, stage)}")
    if manifest["split_seed"] != c.seed or manifest["dataset"] != c.data:
        raise FlowError(f"{path} was trained on {manifest['dataset']!r} split seed "
                        f"{manifest['split_seed']}, but this run uses {c.data!r} seed {c.seed}: "
                        f"{_advice(run, stage)}")
    return model, manifest


def _network(run, data=None, act_bits=None):
    """The run's network description (its input codes as wide as ``act_bits``, and as the
    data's largest value needs)."""
    pixel_max = data.pixel_max if data is not None else 16
    return run.kind.network(run.config, act_bits=act_bits, pixel_max=pixel_max)


def stage_train(run):
    from slimgen.sw.nn import TrainConfig, build_model, evaluate, train
    c = run.config
    if c.source is not None:      # an imported model (slimgen import): import it again
        from slimgen.import_cli import import_stage
        return import_stage(run)
    digest = data_sha256(c)      # before reading it: a file changed since is seen as changed
    data = check_data(c, run.dataset())
    network = _network(run, data)
    model = build_model(network.float_spec()[0], np.random.default_rng(c.seed))
    tc = TrainConfig(epochs=c.epochs, batch_size=c.batch_size, lr=c.lr, seed=c.seed)
    history = train(model, data, tc, progress=run.progress)
    acc = evaluate(model, *data.part("test"))
    save_float_model(run.path("float.npz"), model, dataset=c.data, split_seed=c.seed,
                     history=history, extra={"model": c.model}, network=network)
    return {"model": c.model, "float_accuracy": acc,
            "val_accuracy": evaluate(model, *data.part("val")), "epochs": c.epochs,
            **({"_data_sha256": digest} if digest else {})}


def stage_compress(run):
    import argparse
    from slimgen import compress_cli
    from slimgen.sw.nn import evaluate
    c = run.config
    if c.method == "none":
        run.path("compressed.npz").unlink(missing_ok=True)
        return {"method": "none"}
    model, manifest = load_float_artifact(run, "float.npz", "train")
    data = run.dataset()
    parser = argparse.ArgumentParser()
    compress_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["compress", "--method", c.method, "--sparsity", str(c.sparsity),
                              "--bits", str(c.bits), "--groups", str(c.lanes),
                              "--layout", c.layout, "--seed", str(c.seed)]
                             + (["--epochs", str(c.compress_epochs)]
                                if c.compress_epochs is not None else [])
                             + (["--finetune-epochs", str(c.finetune_epochs)]
                                if c.finetune_epochs is not None else []))
    result = compress_cli.compress(model, data, args, progress=run.progress)
    info = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in result.info.items()}
    x, y = data.part("test")
    save_float_model(run.path("compressed.npz"), model, dataset=c.data, split_seed=c.seed,
                     history=manifest.get("history", []),
                     extra={"model": c.model, "compression": info}, network=_network(run, data))
    weights = [p for layer in model.layers for name, p in layer.params.items()
               if name.startswith(("W", "U"))]
    return {
        "method": c.method,
        "compressed_accuracy": evaluate(model, x, y),
        "sparsity": float(sum((w == 0).sum() for w in weights) / sum(w.size for w in weights)),
        "layer_sparsity": [float((w == 0).mean()) for w in weights],
    }


def _layer_weight_bits(network, model, array_bits):
    """One weight width per weight layer of ``network`` from joint pruning and quantization's
    one per weight array (a recurrent layer's W_g and U_g: the widest), or None."""
    from slimgen.sw.compress.masked_train import weight_keys
    keys = weight_keys(model)
    if array_bits is None or len(array_bits) != len(keys):
        return None       # not one width per weight array (e.g. an older artifact)
    _, origin = network.float_spec()
    widest = {}
    for (j, _), b in zip(keys, array_bits):
        widest[origin[j]] = max(widest.get(origin[j], 0), int(b))
    return [widest[i] for i in network.weight_layers()]


def stage_quantize(run):
    from slimgen.sw.golden import argmax_first
    c = run.config
    if c.source:
        from slimgen import qonnx_io
        if qonnx_io.is_qonnx(c.source):      # the user's own integer model, never requantized
            return qonnx_io.quantize_stage(run)
    if c.method == "none":
        model, manifest = load_float_artifact(run, "float.npz", "train")
    else:
        model, manifest = load_float_artifact(run, "compressed.npz", "compress")
    from slimgen.sw.quantize import QuantConfig, quantize_network
    compression = manifest.get("compression", {})
    data = run.dataset("vector")
    # joint pruning and quantization chose the activation width too
    act_bits = int(compression.get("act_bits") or c.act_bits)
    network = _network(run, data, act_bits)
    bits = _layer_weight_bits(network, model, compression.get("layer_weight_bits"))
    try:
        int_model = quantize_network(
            network, model, data.part("train")[0], input_scale=1.0 / data.pixel_max,
            config=QuantConfig(weight_bits=c.weight_bits, act_bits=act_bits),
            layer_weight_bits=bits, input_order=compression.get("input_order"))
    except ValueError as e:
        if "accumulators" in str(e):
            raise FlowError(f"the quantized model these settings make is one the hardware "
                            f"cannot take ({e}): lower --weight-bits ({c.weight_bits}), "
                            f"--act-bits ({act_bits}) or the layer sizes, which widen the "
                            f"accumulators; model.npz was not written") from None
        raise FlowError(f"cannot quantize the model: {e}") from None
    _save_int_checked(run, int_model)
    from slimgen.sw.network import to_float_input
    x_q, y = run.test_inputs(int_model)
    classes = argmax_first(int_model(x_q))
    x_float = to_float_input(network, data.part("test")[0])
    float_classes = argmax_first(model.forward(x_float))
    figures = {"int_accuracy": float(np.mean(classes == y)),
               # the integer model's class equals the float model's (the one it was quantized
               # from) on this fraction of the test split
               "int_float_agreement": float(np.mean(classes == float_classes)),
               "act_bits": c.act_bits, "logit_bits": int_model.logit_bits}
    weighted = int_model.of_kind("dense", "conv", "recurrent")
    figures["weight_bits"] = [int(layer.weight_bits) for layer in weighted]
    figures["acc_bits"] = [int(layer.acc_bits) for layer in weighted]
    return figures


def _save_int_checked(run, int_model):
    """Write ``model.npz`` only once its own loader takes it (every check of the artifact and
    of the hardware's limits): a temporary file in the run folder, loaded back, renamed."""
    c = run.config
    tmp = run.path(".model.new.npz")
    try:
        save_int_network(tmp, int_model, dataset=c.data, split_seed=c.seed,
                         extra={"model": c.model})
        load_int_network(tmp)
    except ArtifactError as e:
        tmp.unlink(missing_ok=True)
        why = str(e).split(": ", 1)[-1].split(". Rerun the", 1)[0]
        raise FlowError(f"the quantized model these settings make is one the hardware cannot "
                        f"take ({why}): lower --weight-bits ({c.weight_bits}), --act-bits "
                        f"({c.act_bits}) or the layer sizes, which widen the accumulators; "
                        f"model.npz was not written") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, run.path("model.npz"))


def load_int_artifact(run):
    """The integer model in ``model.npz``, refused unless its network is the run's."""
    path = run.need("model.npz", "quantize")
    try:
        int_model = load_int_network(path)[0]
    except ArtifactError as e:
        raise _artifact_error(run, e, "quantize") from None
    if run.config.model == "mlp":
        sizes = run.config.sizes
        expected = [(n_out, n_in) for n_in, n_out in zip(sizes, sizes[1:])]
        layers = int_model.layers
        shapes = [tuple(layer.W.shape) for layer in layers] \
            if all(layer.kind == "dense" for layer in layers) else None
        if shapes != expected:
            have = ", ".join(f"dense {i}→{o}" for o, i in shapes or [])
            want = ", ".join(f"dense {i}→{o}" for o, i in expected)
            raise FlowError(f"{path} holds the layers {have or 'of another model kind'}, but "
                            f"this run makes the mlp {want}: {_advice(run, 'quantize')}")
    if run.config.model == "lstm":
        cells = int_model.of_kind("recurrent")
        hidden = cells[0].n_hidden if cells else None
        if hidden != run.config.hidden:
            raise FlowError(f"{path} holds an LSTM of {hidden} hidden units, but this run makes "
                            f"one of {run.config.hidden}: {_advice(run, 'quantize')}")
    have, expected = int_model.network.float_spec()[0], _network(run).float_spec()[0]
    if have != expected:
        raise FlowError(f"{path} holds the network {_describe_spec(have)}, but this run makes "
                        f"the {run.config.model} {_describe_spec(expected)}: "
                        f"{_advice(run, 'quantize')}")
    return int_model


def stage_generate(run):
    from slimgen.hw.verilog import to_verilog
    int_model = load_int_artifact(run)
    from slimgen.models import inner_network, make_hardware
    config, planner = _planned(run, int_model)
    try:
        net = make_hardware(run.kind, int_model, config)
    except ValueError as e:
        raise FlowError(f"generate: {e}") from None
    one = inner_network(net)        # one copy of the design: its layers and counts
    if getattr(net, "slimgen_note", None):     # what the engine made of the settings
        run.log(f"generate: {net.slimgen_note}")
    text = to_verilog(net, "network")
    write_bytes_atomic(run.path("network.v"), text.encode())
    image = net.weight_image() if hasattr(net, "load") else None
    if image is not None:      # weights in SPRAM: the host sends them before the first sample
        write_bytes_atomic(run.path(WEIGHTS_FILE), image)
        run.log(f"generate: the weights go in SPRAM: {len(image):,} bytes in {WEIGHTS_FILE}, "
                f"sent over the UART by 'slimgen classify' when the board has none")
    else:
        run.path(WEIGHTS_FILE).unlink(missing_ok=True)
    layers = run.kind.layer_entries(one)
    # A kind whose layers share one multiplier array says how many multipliers it has in all;
    # otherwise every layer has its own lanes. Copies of the design multiply them.
    count = getattr(run.kind, "multipliers", None)
    multipliers = (int(count(one)) if count else sum(e["lanes"] for e in layers)) \
        * config.copies
    mults = sum(e.get("mults_per_inference", e["nonzeros"]) for e in layers)
    estimate = getattr(run.kind, "cycles_estimate", None)
    if config.copies > 1:
        run.log(f"generate: {config.copies} copies of the design take samples in turn, a "
                f"result every {net.interval:,} cycles on average")
    figures = {"lanes": [e["lanes"] for e in layers], "multipliers": multipliers,
               "copies": config.copies,
               "verilog_lines": text.count("\n"), "engines": [e["engine"] for e in layers],
               "layers": layers, "mults_per_inference": int(mults),
               # every multiplier busy on a useful product every cycle: the latency floor
               "cycles_lower_bound": int(-(-mults * config.copies // multipliers)),
               "cycles_estimate": int(estimate(one)) if estimate
               else sum(e["cycles"] for e in layers),
               "weight_memory": "spram" if image is not None else "bram",
               "weight_bytes": len(image) if image is not None else 0}
    if hasattr(net, "interval"):     # the next inference overlaps this one: results closer
        # a mean over a repeating pattern (a dataflow stage's copies) may be fractional
        figures["interval_estimate"] = net.interval if isinstance(net.interval, float) \
            else int(net.interval)
    if planner:     # the candidates go into plan.json only
        figures["planner"] = {k: v for k, v in planner.items() if k != "candidates"}
    _write_plan(run, int_model, figures, net, planner)
    return figures


def _planned(run, int_model):
    """The run's settings with the lanes the planner chose for ``--objective`` (and the
    planner's record for ``plan.json``), or the settings as they are without one."""
    from slimgen.boards.build import get_board
    from slimgen.planner import PlanError, plan_lanes
    config = run.config
    if config.objective is None:
        return config, None
    board = get_board(config.board)
    run.log(f"plan: {config.objective}" + (f" at {config.fps:,.10g} inferences/s or more"
                                           if config.fps else "") + f" on the {board.name}")
    try:
        chosen, candidates, why = plan_lanes(run.kind, int_model, config, board,
                                             log=run.log if run.progress else None)
    except PlanError as e:
        raise FlowError(f"generate: {e}") from None
    run.log(f"plan: {why}")
    return dataclasses.replace(config, lanes=chosen.lanes, engine=chosen.engine,
                               copies=chosen.copies, act_memory=chosen.act_memory), {
        "objective": config.objective, "fps": config.fps, "lanes": chosen.lanes,
        "engine": chosen.engine, "copies": chosen.copies, "act_memory": chosen.act_memory,
        "why": why,
        "candidates": [c.to_dict() for c in candidates]}


def _hardware_config(run):
    """The settings the run's hardware was generated with: the planner's lanes when the run
    has an objective (from ``plan.json``)."""
    from slimgen.planner import planned_config
    if run.config.objective is None:
        return run.config
    plan = flow._read_json(run.need("plan.json", "generate"))
    if not isinstance((plan or {}).get("planner"), dict):
        raise FlowError(f"{run.path('plan.json')} holds no planner's choice for --objective "
                        f"{run.config.objective}; run 'slimgen generate' again")
    return planned_config(run.config, plan)


def _write_plan(run, int_model, figures, net, planner=None):
    """``plan.json``: the layers and the resources of ``net`` (the network generate built)
    predicted for the run's board, printed as a short table unless the run is quiet."""
    from slimgen.boards.build import get_board
    from slimgen.boards.plan import format_plan, make_plan
    from slimgen.boards.resource_model import predict_top
    board = get_board(run.config.board)
    prediction = predict_top(int_model, board, network_factory=lambda: net)
    plan = make_plan(figures["layers"], prediction, board=board,
                     cycles=figures["cycles_estimate"], interval=figures.get("interval_estimate"),
                     cycles_lower_bound=figures["cycles_lower_bound"],
                     multipliers=figures["multipliers"])
    if planner:
        plan["planner"] = planner
    # where the weights are: in the bitstream, or in SPRAM, sent by the host (weights.bin)
    plan["weight_memory"] = figures["weight_memory"]
    if figures["weight_bytes"]:      # what slimgen.host checks weights.bin against
        plan["weight_bytes"] = figures["weight_bytes"]
    _write_json(run.path("plan.json"), plan)
    if run.progress:
        run.log(format_plan(plan))


def _weight_image(run):
    """The bytes of ``weights.bin`` when generate's network takes its weights at run time
    (``plan.json`` says so, and how long the image is), else None."""
    from slimgen.host import load_weight_image
    from slimgen.sw.artifact import ArtifactError
    plan = flow._read_json(run.need("plan.json", "generate")) or {}
    if plan.get("weight_memory") != "spram":
        return None
    try:
        image = load_weight_image(run.root)
    except ArtifactError as e:
        raise FlowError(str(e)) from None
    if image is None:
        raise FlowError(f"{run.path(WEIGHTS_FILE)} does not exist, but generate put the "
                        f"weights in SPRAM: run 'slimgen generate --run {run.root}' again")
    return image


def stage_verify(run):
    from slimgen.sim.network import verify_network
    from slimgen.sim.runner import BenchFailed
    qmodel = load_int_artifact(run)
    verilog = run.need("network.v", "generate")
    x_q, y = run.test_inputs(qmodel)
    image = _weight_image(run)
    run.log(f"verify: {len(x_q)} test samples through {verilog.name} on {run.config.sim}"
            + (f", after the {len(image):,} bytes of {WEIGHTS_FILE}" if image else ""))
    try:
        r = verify_network(verilog, qmodel, x_q, build_dir=run.path("sim"), sim=run.config.sim,
                           log_file=run.path("sim").resolve() / "verify.log",
                           weight_image=image)
    except BenchFailed as e:
        run.record("verify", {"hw_bit_exact": False, "images_verified": 0, "_failed": True})
        raise FlowError(f"Hardware differs from the golden model: {e}") from None
    return {
        "hw_accuracy": float(np.mean(r.cls == y)),
        "images_verified": r.n,
        "hw_bit_exact": r.bit_exact,
        "simulator": r.simulator,
        "cycles_per_inference": r.latency,
        "cycles_between_inferences": r.interval,
    }


def stage_build(run):
    from slimgen.boards.build import build_bitstream
    from slimgen.boards.build import get_board
    from slimgen.boards.estimate import check_estimate
    from slimgen.boards.resource_model import predict_top
    board = get_board(run.config.board)
    run.need("network.v", "generate")
    int_model = load_int_artifact(run)
    config = _hardware_config(run)
    from slimgen.models import make_hardware
    factory = lambda: make_hardware(run.kind, int_model, config)  # noqa: E731
    # predicted from the board top's own netlist, for the board built (the plan's may be
    # another's if the board changed since generate)
    estimate = check_estimate(predict_top(int_model, board, network_factory=factory), board)
    run.log(f"build: estimate {estimate.lc} {board.lc_name}, {estimate.dsp} DSP blocks, "
            f"{estimate.bram} block RAMs of {board.totals['lc']}, {board.totals['dsp']} and "
            f"{board.totals['bram']}; synthesizing for {board.name}")
    report = build_bitstream(int_model, run.config.board, run.path("build"),
                             network_factory=factory, progress=run.log if run.progress else None)
    figures = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(report).items()}
    figures["build_log"] = figures.pop("log", "")
    figures.update(estimate.to_dict())
    figures["tool_seconds"] = figures.pop("seconds")
    return figures


def stage_report(run):
    """``report.html`` (one self-contained page) and ``report.md``, with a waveform of one
    inference recorded on the run's simulator when verify has run."""
    from slimgen.report import write_report
    # summary.json is derived from the stage records: rewritten whole, so a damaged one is
    # replaced rather than refused
    try:
        _write_json(run.path("summary.json"), run.summary())
    except OSError as e:
        raise FlowError(f"cannot write the report into {run.root}: {e.strerror or e}") from None
    vcd = None
    if run.path("network.v").exists() and run.path("model.npz").exists() \
            and not run.path("waveform.vcd").exists():
        from slimgen.sim.waveform import record_inference_vcd
        try:
            int_model = load_int_artifact(run)
            x_q, _ = run.test_inputs(int_model)
            vcd = record_inference_vcd(run.path("network.v"), int_model, x_q[0],
                                       run.path("waveform.vcd"), sim=run.config.sim,
                                       log_file=run.path("sim").resolve() / "waveform.log")
        except Exception as e:  # the report notes a missing waveform; the run is still good
            run.log(f"report: no waveform ({e})")
    html, md = write_report(run.root, vcd=vcd, record_waveform=False, log=run.log)
    return {"report_html": str(html), "report_md": str(md)}


flow._STAGE_FUNCS.update({
    "train": stage_train, "compress": stage_compress, "quantize": stage_quantize,
    "generate": stage_generate, "verify": stage_verify, "build": stage_build,
    "report": stage_report})
