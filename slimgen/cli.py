"""The ``slimgen`` command: each stage of the flow as a subcommand, and the whole flow.

    slimgen flow [--run runs/NAME] [--board icebreaker|ulx3s-85f] [--sim icarus|verilator] ...
    slimgen train | quantize | generate | verify | build [--run runs/NAME] [options]
    slimgen summary [--run runs/NAME]
"""

import argparse
import json
import sys

from slimgen.flow import ENGINES, STAGES, FlowError, Run, RunConfig, run_flow, run_stage

__all__ = ["main"]

SUMMARY_KEYS = (
    "float_accuracy", "compressed_accuracy", "int_accuracy", "hw_accuracy", "images_verified", "hw_bit_exact",
    "board", "lc_used", "lc_total", "dsp_used", "dsp_total", "bram_used", "bram_total",
    "fmax_mhz", "target_mhz", "cycles_per_inference", "cycles_between_inferences",
    "inferences_per_second", "latency_us", "cycles_lower_bound", "latency_over_bound",
    "bitstream",
)


def _add_run_options(p):
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


def _config_file(path):
    """The settings of a ``--config`` JSON file, checked against :class:`RunConfig`."""
    from pathlib import Path
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise FlowError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FlowError(f"--config {path} is not a JSON file of run settings ({e})") from None
    if not isinstance(d, dict):
        raise FlowError(f"--config {path} must hold one JSON object of settings, e.g. "
                        f'{{"model": "cnn", "lanes": 4}}, not a {type(d).__name__}')
    try:
        RunConfig.from_dict({**RunConfig().to_dict(), **d})
    except (ValueError, TypeError) as e:
        raise FlowError(f"--config {path}: {e}") from None
    return d


def _config(args, run_root):
    from pathlib import Path
    stored_path = Path(run_root) / "config.json"
    base = None
    if stored_path.exists():
        try:
            base = RunConfig.from_dict(json.loads(stored_path.read_text()))
        except (ValueError, TypeError) as e:
            raise FlowError(f"{stored_path} is not a valid run configuration: {e}") from None
    from_file = _config_file(args.config_file) if getattr(args, "config_file", None) else {}
    model = getattr(args, "model", None) or from_file.get("model")
    if base is None or (model is not None and model != base.model):
        # A new run, or a new model kind: start from that kind's defaults.
        from slimgen.models import get_model_kind
        kind_defaults = getattr(get_model_kind(model or "mlp"), "DEFAULTS", {})
        base = RunConfig(**{**kind_defaults, "model": model or "mlp"})
    changes = dict(from_file)
    for key in ("model", "seed", "data", "epochs", "hidden", "weight_bits", "lanes", "board",
                "sim", "method", "sparsity", "bits", "engine", "layout", "compress_epochs",
                "finetune_epochs"):
        v = getattr(args, key, None)
        if v is not None:
            changes[key] = v
    if getattr(args, "sizes", None):
        try:
            changes["sizes"] = tuple(int(s) for s in args.sizes.split(","))
        except ValueError:
            raise FlowError(f"--sizes must be integers separated by commas, not {args.sizes!r}") \
                from None
    return RunConfig.from_dict({**base.to_dict(), **changes})


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
        if stage != "compress":  # `slimgen compress` works on artifacts (compress_cli)
            _add_run_options(sub.add_parser(stage, help=f"run the {stage} stage"))
    summary = sub.add_parser("summary", help="print a run's summary.json as a table")
    summary.add_argument("--run", default="runs/default")
    summary.add_argument("--json", action="store_true")
    from slimgen import compress_cli, host_cli, wino_cli
    wino_cli.add_parser(sub)
    compress_cli.add_parser(sub)
    host_cli.add_parser(sub)
    return p


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        if args.command in ("wino", "compress", "classify"):
            return args.func(args)
        if args.command == "summary":
            s = Run(args.run).summary()
            print(json.dumps(s, indent=2, sort_keys=True) if args.json else format_summary(s))
            return 0
        run = Run(args.run, _config(args, args.run), progress=not args.quiet)
        if args.command == "flow":
            stages = tuple(st for st in STAGES if not (args.skip_build and st == "build"))
            summary = run_flow(run, stages, rerun_from=args.rerun_from)
        else:
            run_stage(run, args.command)
            summary = run.summary()
        print(format_summary(summary))
        return 0
    except (FlowError, ValueError, OSError, RuntimeError) as e:
        print(f"slimgen {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
