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

from slimgen.compress_cli import METHODS
from slimgen.flow import (STAGES, FlowError, Run, check_data, check_flow, check_stage_inputs,
                          run_flow,
                          run_stage)
from slimgen.host_cli import EXIT_BROKEN_PIPE
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
    p.add_argument("--model", choices=("mlp", "cnn", "lstm"), help="preset network (default mlp)")
    p.add_argument("--net", help="a network description of your own (JSON, see README); "
                                 "replaces --model")
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
    p.add_argument("--method", help="compression: none (default), " + ", ".join(METHODS)
                                    + " (lstm_gates: a network with an LSTM or GRU)")
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
    that kind's defaults), then a ``--config`` file, then the command line; merged, and a bad
    setting named by where it came from (see :func:`_merge`)."""
    from pathlib import Path
    stored_path = Path(run_root) / "config.json"
    stored = _settings_object(stored_path, str(stored_path)) if stored_path.exists() else None
    config_file = getattr(args, "config_file", None)
    if config_file is not None and not config_file.strip():
        raise FlowError(f"--config must name a JSON file of run settings, not {config_file!r}")
    from_file = _settings_object(config_file, f"--config {config_file}") if config_file else {}
    given = {key: getattr(args, key) for key in _OPTIONS if getattr(args, key, None) is not None}
    if getattr(args, "sizes", None) is not None:
        try:
            given["sizes"] = [int(s) for s in args.sizes.split(",")]
        except ValueError:
            raise FlowError(f"--sizes must be integers separated by commas (e.g. 64,32,10), "
                            f"not {args.sizes!r}") from None
    if getattr(args, "net", None) is not None:
        if given.get("model") not in (None, "net"):
            raise FlowError(f"--net {args.net} and --model {given['model']}: give one of them "
                            f"(--net is a network of your own, --model a preset)")
        given.update(net=args.net, model="net")
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
        base, base_origin = {**defaults, **stored}, str(stored_path)
    config = _merge(((base_origin, base), (f"--config {config_file}", from_file),
                     ("command line", given)))
    # a --config file may be a run's config.json, which holds every setting: only its values
    # other than the defaults count as asked for
    from slimgen.models import get_model_kind
    kind_defaults = {**RunConfig().to_dict(),
                     **getattr(get_model_kind(config.model), "DEFAULTS", {})}
    _check_used(config, given, None)
    _check_used(config, {k: v for k, v in from_file.items() if v != kind_defaults.get(k)},
                config_file)
    return config


def _value_text(value):
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _merge(layers):
    """The :class:`RunConfig` of the settings ``layers`` (``(origin, settings)`` pairs, later
    ones overriding earlier ones: the stored config or the defaults, a ``--config`` file, the
    command line). A refusal blames the layer the bad setting came from, or, when that value
    was valid until a later layer changed another setting (new ``--sizes`` against the stored
    ``lanes``), names the later settings that made the difference."""
    first_where, first = layers[0]
    if first_where != "default":
        try:
            RunConfig.from_dict(first)
        except SettingError as e:
            raise FlowError(f"{first_where} is not a valid run configuration: {e}") from None
    merged, origin = {}, {}
    for where, settings in layers:
        merged.update(settings)
        origin.update(dict.fromkeys(settings, where))
    try:
        return RunConfig.from_dict(merged)
    except SettingError as e:
        raise FlowError(_refusal(e, layers, merged, origin)) from None


def _refusal(e, layers, merged, origin):
    """The message for the :class:`SettingError` ``e`` of the ``merged`` settings of
    ``layers`` (``origin`` names the layer each setting came from)."""
    name, message = e.setting, str(e)[len(e.setting):]
    where = origin.get(name, "default")
    wheres = [w for w, _ in layers]
    later = [(w, settings) for w, settings in layers[wheres.index(where) + 1:]] \
        if where in wheres else []

    def valid_without(layer, key):
        trial = {}
        for w, settings in layers:
            trial.update({k: v for k, v in settings.items() if not (w == layer and k == key)})
        try:
            RunConfig.from_dict(trial)
        except SettingError:
            return False
        return True

    culprits = [(w, k) for w, settings in later for k in settings if valid_without(w, k)]
    if where == "command line" or not culprits:
        if where == "command line":
            return f"{_option(name)}{message}"
        if where.startswith("--config"):
            return f"{where}: {e}"
        return str(e) if where == "default" else \
            f"{where} is not a valid run configuration: {e}"
    # a value valid where it came from, no longer with the later settings that changed
    value = _value_text(merged[name])
    with_ = ", ".join(f"{_option(k)} {_value_text(merged[k])}" if w == "command line" else
                      f"{k} {_value_text(merged[k])} in {w}" for w, k in culprits)
    of = f"the default {name} {value}" if where == "default" else \
        f"the {name} {value} of {where}" if where.startswith("--config") else \
        f"the stored {name} {value} ({where})"
    return f"with {with_}, {of} no longer fits: {e}; give {_option(name)} too"


def _check_used(config, asked, config_file):
    """Refuse settings asked for (``asked``: on the command line, or in the ``--config`` file
    ``config_file``) that the model kind or the method would ignore (a silently ignored
    setting reads as if it had taken effect)."""
    method, model = config.method, config.model
    where = f"--config {config_file}: " if config_file else ""
    name_of = (lambda name: name) if config_file else _option
    leave_out = (lambda name: f"remove {name} from it") if config_file else \
        (lambda name: f"leave {_option(name)} out")
    unused = None
    if "bits" in asked and method != "joint":
        unused = ("bits", "the joint method's target average weight bits",
                  f"give --method joint, or {leave_out('bits')}")
    elif "sparsity" in asked and method == "none":
        unused = ("sparsity", "a compression method's target",
                  f"give a --method, or {leave_out('sparsity')}")
    for name in ("compress_epochs", "finetune_epochs"):
        if name in asked and method == "none":
            unused = unused or (name, "the epochs of a compression method",
                                f"give a --method, or {leave_out(name)}")
    if "compress_epochs" in asked and method == "lstm_gates":
        unused = unused or ("compress_epochs", "the epochs of a compression method",
                            "it prunes at once, then fine-tunes: --finetune-epochs")
    if unused:
        name, what, hint = unused
        raise FlowError(f"{where}{name_of(name)} is {what}; --method {method} does not use it "
                        f"({hint})")
    for name, what, kinds, note in (
            ("sizes", "the MLP's layer sizes", ("mlp",), None),
            ("hidden", "the LSTM's hidden units", ("lstm",), None),
            ("engine", "the MLP's and the CNN's engine choice", ("mlp", "cnn"),
             "its gates and head share sparse lanes"),
            ("layout", "the MLP's and the CNN's sparse layout", ("mlp", "cnn"),
             "its gates and head share sparse lanes")):
        if name in asked and model not in kinds:
            raise FlowError(f"{where}{name_of(name)} is {what}; --model {model} does not use it"
                            + (f" ({note})" if note else ""))
    if "weight_bits" in asked and method == "joint" and model != "lstm":
        raise FlowError(f"{where}{name_of('weight_bits')} is not used with --method joint, "
                        f"which chooses each layer's width (its average: "
                        f"{name_of('bits')})")


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
    flow.add_argument("--to", dest="stop_after", choices=STAGES,
                      help="stop after this stage (e.g. --to quantize: the software stages "
                           "only)")
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
        status = _main(args, stage)
        sys.stdout.flush()          # a closed stdout fails here, not in the exit's flush
        return status
    except BrokenPipeError:
        # stdout's reader has gone (``slimgen summary | head -1``): what it read is all it
        # wanted, so no message; stdout goes to /dev/null so the interpreter's last flush of
        # what is left in the buffer is quiet too, and the status is the shell's for SIGPIPE
        _close_stdout()
        return EXIT_BROKEN_PIPE
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


def _close_stdout():
    """Point stdout at /dev/null (its reader has gone)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):   # stdout is not a file descriptor (e.g. captured in tests)
        pass
    finally:
        os.close(devnull)


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
    if stage == "compress":
        Run.existing(args.run)              # compressing alone needs a run to compress
    # Every check before the run folder is touched: a refused command changes nothing.
    config = _config(args, args.run)
    if stage is not None:
        check_stage_inputs(args.run, config, stage)
    if stage in (None, "train"):          # flow, or train
        check_data(config)
    if args.command == "flow":
        last = STAGES.index(args.stop_after or STAGES[-1])
        stages = tuple(st for st in STAGES[:last + 1] if not (args.skip_build and st == "build"))
        check_flow(stages, args.rerun_from)
    run = Run(args.run, config, progress=not args.quiet)
    if args.command == "flow":
        summary = run_flow(run, stages, rerun_from=args.rerun_from)
    else:
        run_stage(run, stage)
        summary = run.summary()
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
