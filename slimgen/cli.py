"""The ``slimgen`` command: each stage of the flow as a subcommand, and the whole flow.

    slimgen flow [--run runs/NAME] [--board icebreaker|ulx3s-85f] [--sim icarus|verilator] ...
    slimgen train | compress | quantize | generate | verify | build | report --run runs/NAME
            [options]
    slimgen summary [--run runs/NAME]

``slimgen compress`` with ``--run`` is the flow's compress stage; without it, the artifact tool
(``--in float.npz --out compressed.npz``, :mod:`slimgen.compress_cli`). A refused command
changes nothing in the run folder; Ctrl-C exits with 130.
"""

import argparse
import json
import os
import sys

from slimgen.flow import (STAGES, FlowError, Run, check_data, check_stage_inputs, run_flow,
                          run_stage)
from slimgen.settings import ENGINES, RunConfig, SettingError

__all__ = ["main"]

SUMMARY_KEYS = (
    "float_accuracy", "compressed_accuracy", "int_accuracy", "hw_accuracy", "images_verified", "hw_bit_exact",
    "board", "lc_used", "lc_total", "dsp_used", "dsp_total", "bram_used", "bram_total",
    "fmax_mhz", "target_mhz", "cycles_per_inference", "cycles_between_inferences",
    "inferences_per_second", "latency_us", "cycles_lower_bound", "latency_over_bound",
    "bitstream",
)


def _add_run_options(p, *, run_required=False):
    if run_required:
        p.add_argument("--run", required=True, help="run folder")
    else:
        p.add_argument("--run", default="runs/default", help="run folder (default: runs/default)")
    p.add_argument("--model", choices=("mlp", "cnn", "lstm"), help="model kind (default mlp)")
    p.add_argument("--seed", type=int, help="split, initialisation and shuffling seed")
    p.add_argument("--data", help="'digits' (built in) or a path to an .npz with x and y")
    p.add_argument("--sizes", help="MLP layer sizes, e.g. 64,32,10")
    p.add_argument("--epochs", type=int)
    p.add_argument("--hidden", type=int, help="LSTM hidden units (default 32)")
    p.add_argument("--weight-bits", dest="weight_bits", type=int,
                   help="weight bits (default 8; 10 for the LSTM)")
    p.add_argument("--lanes", type=int, help="MAC lanes in hardware: per layer for the MLP's "
                                             "dense and sparse engines, shared by every layer "
                                             "for the CNN and the LSTM (and groups of balanced "
                                             "sparsity)")
    p.add_argument("--method", help="compression: none (default), self_prune, joint, balanced, "
                                    "sign, magnitude")
    p.add_argument("--sparsity", type=float, help="target fraction of zero weights")
    p.add_argument("--bits", type=float, help="joint: target average weight bits")
    p.add_argument("--compress-epochs", dest="compress_epochs", type=int,
                   help="epochs of the compression phase (default: the method's)")
    p.add_argument("--finetune-epochs", dest="finetune_epochs", type=int,
                   help="epochs of masked fine-tuning after compression (default: the method's)")
    p.add_argument("--engine", choices=ENGINES,
                   help="hardware engine of the MLP's dense layers (folded: every layer on one "
                        "array of lanes × layers lanes; auto: sparse when pruned, else folded; "
                        "the LSTM runs its four gates and head on shared lanes that skip "
                        "zero weights)")
    p.add_argument("--layout", choices=("rows", "banks"), help="sparse layout and balanced groups")
    p.add_argument("--board", help="icebreaker (default) or ulx3s-85f")
    p.add_argument("--sim", choices=("icarus", "verilator"), help="simulator for verify")
    p.add_argument("--config", dest="config_file",
                   help="a JSON file of run settings (the keys of config.json); options given "
                        "on the command line override it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _settings_object(path, where):
    """The JSON object of run settings in ``path`` (a ``--config`` file or a run's
    ``config.json``; ``where`` names it in messages), with no unknown keys. Its values are
    checked once merged with the others (see :func:`_config`)."""
    from pathlib import Path
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FlowError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FlowError(f"{where} is not a JSON file of run settings ({e})") from None
    if not isinstance(d, dict):
        raise FlowError(f"{where} must hold one JSON object of settings, e.g. "
                        f'{{"model": "cnn", "lanes": 4}}, not a {type(d).__name__}')
    known = set(RunConfig().to_dict())
    if set(d) - known:
        raise FlowError(f"{where}: Unknown run settings {sorted(set(d) - known)}; known: "
                        f"{sorted(known)}")
    return d


# The run options of the command line, each a setting of RunConfig under the same name.
_OPTIONS = ("model", "seed", "data", "epochs", "hidden", "weight_bits", "lanes", "board", "sim",
            "method", "sparsity", "bits", "engine", "layout", "compress_epochs",
            "finetune_epochs")


def _option(name):
    return "--" + name.replace("_", "-")


def _config(args, run_root):
    """The run's settings: the stored ``config.json`` (or, for a new run or a new model kind,
    that kind's defaults), then a ``--config`` file, then the command line; checked once,
    merged, and a bad setting named by where it came from."""
    from pathlib import Path
    stored_path = Path(run_root) / "config.json"
    stored = _settings_object(stored_path, str(stored_path)) if stored_path.exists() else None
    config_file = getattr(args, "config_file", None)
    from_file = _settings_object(config_file, f"--config {config_file}") if config_file else {}
    given = {key: getattr(args, key) for key in _OPTIONS if getattr(args, key, None) is not None}
    if getattr(args, "sizes", None):
        try:
            given["sizes"] = [int(s) for s in args.sizes.split(",")]
        except ValueError:
            raise FlowError(f"--sizes must be integers separated by commas, not {args.sizes!r}") \
                from None
    model = given.get("model") or from_file.get("model")
    defaults = RunConfig().to_dict()
    if stored is None or (model is not None and model != stored.get("model", "mlp")):
        # A new run, or a new model kind: start from that kind's defaults.
        from slimgen.models import MODEL_KINDS, get_model_kind
        kind = model or "mlp"
        if kind in MODEL_KINDS:
            defaults.update(getattr(get_model_kind(kind), "DEFAULTS", {}), model=kind)
        base, base_origin = defaults, "default"
    else:
        base, base_origin = {**defaults, **stored}, "stored"
    settings = {**base, **from_file, **given}
    origin = {k: "given" if k in given else "file" if k in from_file else base_origin
              for k in settings}
    try:
        config = RunConfig.from_dict(settings)
    except SettingError as e:
        where = origin.get(e.setting, "default")
        message = str(e)[len(e.setting):]
        if where == "file":
            raise FlowError(f"--config {args.config_file}: {e}") from None
        if where == "stored":
            raise FlowError(f"{stored_path} is not a valid run configuration: {e}") from None
        raise FlowError(f"{_option(e.setting)}{message}") from None
    _check_used(config, given)
    return config


def _check_used(config, given):
    """Refuse options given on the command line that the model kind or the method would ignore
    (a silently ignored option reads as if it had taken effect)."""
    method, model = config.method, config.model
    unused = None
    if "bits" in given and method != "joint":
        unused = ("bits", "the joint method's target average weight bits",
                  "give --method joint, or leave --bits out")
    elif "sparsity" in given and method == "none":
        unused = ("sparsity", "a compression method's target",
                  "give a --method, or leave --sparsity out")
    for name in ("compress_epochs", "finetune_epochs"):
        if name in given and method == "none":
            unused = unused or (name, "the epochs of a compression method",
                                f"give a --method, or leave {_option(name)} out")
    if "compress_epochs" in given and method == "lstm_gates":
        unused = unused or ("compress_epochs", "the epochs of a compression method",
                            "it prunes at once, then fine-tunes: --finetune-epochs")
    if unused:
        name, what, hint = unused
        raise FlowError(f"{_option(name)} is {what}; --method {method} does not use it ({hint})")
    for name, what, kinds, note in (
            ("sizes", "the MLP's layer sizes", ("mlp",), None),
            ("hidden", "the LSTM's hidden units", ("lstm",), None),
            ("engine", "the MLP's and the CNN's engine choice", ("mlp", "cnn"),
             "its gates and head share sparse lanes"),
            ("layout", "the MLP's and the CNN's sparse layout", ("mlp", "cnn"),
             "its gates and head share sparse lanes")):
        if name in given and model not in kinds:
            raise FlowError(f"{_option(name)} is {what}; --model {model} does not use it"
                            + (f" ({note})" if note else ""))
    if "weight_bits" in given and method == "joint" and model != "lstm":
        raise FlowError("--weight-bits is not used with --method joint, which chooses each "
                        "layer's width (its average: --bits)")


def format_summary(summary):
    """The summary as a two-column table, the issue's keys first, then one row per layer."""
    keys = [k for k in SUMMARY_KEYS if k in summary]
    keys += sorted(k for k in summary if k not in keys and k != "layers")
    width = max(len(k) for k in keys)
    lines = []
    for k in keys:
        v = summary[k]
        if isinstance(v, float):
            v = f"{v:.4f}" if v < 10 else f"{v:.1f}"
        lines.append(f"{k:<{width}}  {v}")
    layers = summary.get("layers") or []
    if layers:
        lines.append("")
        lines.append(f"{'layer':<8} {'engine':<12} {'shape':>8} {'bits':>4} {'sparsity':>8} "
                     f"{'mults/out':>9} {'lanes':>5} {'cycles':>6}  non-zeros per lane")
        for e in layers:
            shape = "x".join(str(d) for d in e["shape"])
            bits = "-" if e.get("weight_bits") is None else e["weight_bits"]
            sparsity = "-" if e.get("sparsity") is None else f"{e['sparsity']:.3f}"
            groups = e.get("nonzeros_per_group") or "-"
            lines.append(f"{e['name']:<8} {e['engine']:<12} {shape:>8} {bits:>4} "
                         f"{sparsity:>8} {e['mults']:>9.1f} {e['lanes']:>5} "
                         f"{e['cycles']:>6}  {groups}")
    return "\n".join(lines)


def _parser():
    p = argparse.ArgumentParser(prog="slimgen", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    flow = sub.add_parser("flow", help="run every stage: " + ", ".join(STAGES))
    _add_run_options(flow)
    flow.add_argument("--skip-build", action="store_true", help="no bitstream (verify, then "
                                                                "the report)")
    flow.add_argument("--from", dest="rerun_from", choices=STAGES,
                      help="run this stage and every later one again (by default a stage "
                           "already done with the current settings is kept)")
    for stage in STAGES:
        if stage != "compress":  # `slimgen compress` without --run is the artifact tool
            _add_run_options(sub.add_parser(stage, help=f"run the {stage} stage"))
    summary = sub.add_parser("summary", help="print a run's summary.json as a table")
    summary.add_argument("--run", default="runs/default")
    summary.add_argument("--json", action="store_true")
    from slimgen import compress_cli, host_cli, wino_cli
    wino_cli.add_parser(sub)
    compress_cli.add_parser(sub)
    host_cli.add_parser(sub)
    return p


def _compress_stage_parser():
    """``slimgen compress --run R [run options]``: the flow's compress stage on a run folder
    (without ``--run``, ``slimgen compress`` is the artifact tool of :mod:`compress_cli`)."""
    p = argparse.ArgumentParser(
        prog="slimgen compress",
        description="Run the flow's compress stage on a run folder (the run options of every "
                    "stage; 'slimgen compress --in A --out B' compresses an artifact instead).")
    _add_run_options(p, run_required=True)
    return p


def _is_compress_stage(argv):
    return argv[:1] == ["compress"] and any(a == "--run" or a.startswith("--run=")
                                            for a in argv[1:])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if _is_compress_stage(argv):
        args = _compress_stage_parser().parse_args(argv[1:])
        args.command = "compress"
        stage = "compress"
    else:
        args = _parser().parse_args(argv)
        # `slimgen compress` without --run is the artifact tool, not the stage
        stage = args.command if args.command in STAGES and args.command != "compress" else None
    try:
        return _main(args, stage)
    except KeyboardInterrupt:
        where = "; the run folder keeps every finished stage" if hasattr(args, "run") else ""
        print(f"\nslimgen {args.command}: interrupted{where}", file=sys.stderr)
        return 130
    except (FlowError, ValueError, OSError, RuntimeError) as e:
        print(f"slimgen {args.command}: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        if os.environ.get("SLIMGEN_TRACEBACK"):
            raise
        print(f"slimgen {args.command}: error: {type(e).__name__}: {e} (this is a bug in "
              f"slimgen: please report it with the command; SLIMGEN_TRACEBACK=1 shows the "
              f"traceback)", file=sys.stderr)
        return 2


def _main(args, stage):
    if getattr(args, "run", None) == "":
        raise FlowError("--run must name a run folder (e.g. runs/default), not ''")
    if getattr(args, "run", None) and os.path.exists(args.run) and not os.path.isdir(args.run):
        raise FlowError(f"--run {args.run} is a file, not a run folder")
    if args.command in ("wino", "compress", "classify") and stage is None:
        return args.func(args)
    if args.command == "summary":
        s = Run.existing(args.run).summary()
        print(json.dumps(s, indent=2, sort_keys=True) if args.json else format_summary(s))
        return 0
    # Every check before the run folder is touched: a refused command changes nothing.
    config = _config(args, args.run)
    if stage is not None:
        check_stage_inputs(args.run, config, stage)
    if stage in (None, "train"):          # flow, or train
        check_data(config)
    run = Run(args.run, config, progress=not args.quiet)
    if args.command == "flow":
        stages = tuple(st for st in STAGES if not (args.skip_build and st == "build"))
        summary = run_flow(run, stages, rerun_from=args.rerun_from)
    else:
        run_stage(run, stage)
        summary = run.summary()
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
