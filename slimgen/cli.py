"""The ``slimgen`` command: each stage of the flow as a subcommand, and the whole flow.

    slimgen flow [--run runs/NAME] [--board icebreaker|ulx3s-85f] [--sim icarus|verilator] ...
    slimgen train | compress | quantize | generate | verify | build | report --run runs/NAME
            [options]
    slimgen summary [--run runs/NAME]
    slimgen sweep space.yaml [--workers N] [--storage URL]   (slimgen.sweep)
    slimgen sweep worker --storage URL --study NAME

``slimgen compress`` with ``--run`` is the flow's compress stage; without it, the artifact tool
(``--in float.npz --out compressed.npz``, :mod:`slimgen.compress_cli`). A refused command
changes nothing in the run folder; Ctrl-C exits with 130.
"""

import argparse
import json
import os
import sys

from slimgen import api, settings_merge
from slimgen.results import SUMMARY_KEYS, format_summary  # noqa: F401  (the summary's table)
from slimgen.compress_cli import METHODS
from slimgen.flow import STAGES, FlowError
from slimgen.host_cli import EXIT_BROKEN_PIPE
from slimgen.planner import OBJECTIVES
from slimgen.settings import ACT_MEMORIES, ENGINES, WEIGHT_MEMORIES

__all__ = ["main"]


def _add_run_options(p, *, run_required=False):
    if run_required:
        p.add_argument("--run", required=True, help="run folder")
    else:
        p.add_argument("--run", default="runs/default", help="run folder (default: runs/default)")
    p.add_argument("--model", choices=("mlp", "cnn", "lstm"), help="preset network (default mlp)")
    p.add_argument("--net", help="a network description of your own (JSON, see README) or a "
                                 "data set's preset (mnist1d-cnn, mnist1d-gru, mnist1d-lstm, "
                                 "mnist1d-mlp, mnist-cnn); replaces --model")
    p.add_argument("--seed", type=int, help="split, initialisation and shuffling seed")
    p.add_argument("--data", help="'digits' (built in), 'mnist1d' or 'mnist5k' (the [data] "
                                  "extra), or a path to an .npz with x and y")
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
                        "array of lanes × layers lanes, at most the board's DSP blocks; auto: "
                        "sparse when pruned, else folded; the LSTM runs its four gates and head "
                        "on shared lanes that skip zero weights); dataflow (the CNN and --net "
                        "feed-forward networks): a pipeline of engines, one stage per weighted "
                        "layer, several images in flight, --lanes shared out among the stages "
                        "as lanes and copies of their engines")
    p.add_argument("--copies", type=int,
                   help="copies of the whole design taking samples in turn: the interval "
                        "between results over the copies (throughput), the latency the same "
                        "(default 1; --objective throughput chooses them)")
    p.add_argument("--layout", choices=("rows", "banks"), help="sparse layout and balanced groups")
    p.add_argument("--board", help="icebreaker (default) or ulx3s-85f")
    p.add_argument("--objective", choices=OBJECTIVES + ("none",),
                   help="let the planner choose the lanes for the board: the fewest cycles, "
                        "the most inferences per second, or the fewest logic cells (replaces "
                        "--lanes; plan.json lists every design it weighed); none: --lanes again")
    p.add_argument("--fps", type=float, help="with --objective: at least this many "
                                             "inferences per second at the board's clock")
    p.add_argument("--weight-memory", dest="weight_memory", choices=WEIGHT_MEMORIES,
                   help="where the shared array (the folded MLP, a --net the compiler builds) "
                        "keeps its weights: bram (in the bitstream), "
                        "spram (the iCEBreaker's 1 Mbit of single-port RAM, sent over the "
                        "UART by 'slimgen classify' when the board has none), or auto (default: "
                        "spram when the block RAMs are predicted not to hold them)")
    p.add_argument("--act-memory", dest="act_memory", choices=ACT_MEMORIES,
                   help="where the lanes of the recurrent engine (--model lstm, a --net with an "
                        "lstm or gru layer) and of the CNN's shared array keep their copies of "
                        "the activations: auto (default: where yosys puts them by cost, LUT RAM "
                        "on the ECP5) or bram (a block RAM a lane, the LUTs left for more "
                        "copies; --objective weighs both)")
    p.add_argument("--sim", choices=("icarus", "verilator"), help="simulator for verify")
    p.add_argument("--config", dest="config_file",
                   help="a JSON file of run settings (the keys of config.json); options given "
                        "on the command line override it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


# The run options of the command line, each a setting of RunConfig under the same name.
_OPTIONS = ("model", "seed", "data", "epochs", "hidden", "weight_bits", "lanes", "copies",
            "board", "sim",
            "method", "sparsity", "bits", "engine", "layout", "compress_epochs",
            "finetune_epochs", "objective", "fps", "weight_memory", "act_memory")


def _option(name):
    return "--" + name.replace("_", "-")


def _config(args, run_root):
    """The run's settings: the stored ``config.json`` (or, for a new run or a new model kind,
    that kind's defaults), then a ``--config`` file, then the command line; merged, and a bad
    setting named by where it came from (:func:`slimgen.settings_merge.merge_settings`)."""
    stored = settings_merge.stored_settings(run_root)
    config_file = getattr(args, "config_file", None)
    if config_file is not None and not config_file.strip():
        raise FlowError(f"--config must name a JSON file of run settings, not {config_file!r}")
    from_file = settings_merge.settings_object(config_file, f"--config {config_file}") \
        if config_file else {}
    given = {key: getattr(args, key) for key in _OPTIONS if getattr(args, key, None) is not None}
    if given.get("objective") == "none":      # back to --lanes: no planner, no rate
        given.update(objective=None, fps=None)
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
    return settings_merge.merge_settings(run_root, stored, given, from_file=from_file,
                              config_file=config_file, words=settings_merge.CLI_WORDS)


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
    _add_sweep_parser(sub)
    from slimgen import compress_cli, export_cli, host_cli, import_cli, wino_cli
    wino_cli.add_parser(sub)
    compress_cli.add_parser(sub)
    host_cli.add_parser(sub)
    import_cli.add_parser(sub)
    export_cli.add_parser(sub)
    return p


def _add_sweep_parser(sub):
    p = sub.add_parser("sweep", help="search the design space (Optuna, multi-objective) and "
                                     "report the Pareto front",
                       description="Run (or continue) the sweep of a space file: trials are "
                                   "whole flows, the study lives in a database; 'slimgen sweep "
                                   "worker --storage URL --study NAME' joins it from another "
                                   "machine.")
    p.add_argument("space", help="the space file (YAML, or .json): parameters, fixed "
                                 "settings, objectives, n_trials, sampler, seed")
    _add_sweep_options(p)
    p.add_argument("--workers", type=int, default=1,
                   help="worker processes to start here (default 1; 0: only write the report "
                        "of the study as it is)")
    p.add_argument("--heartbeat", type=float, default=None,
                   help="seconds between a worker's heartbeats (default 10); a trial silent "
                        "for three is failed and retried")


def _add_sweep_options(p):
    p.add_argument("--storage", help="an SQLAlchemy URL of the study's database (default: "
                                     "sqlite in the sweep folder), e.g. "
                                     "postgresql://user@host/db")
    p.add_argument("--dir", dest="sweep_dir",
                   help="the sweep folder: run folders, stage cache, report (default "
                        "sweep/NAME)")


def _sweep_worker_parser():
    """``slimgen sweep worker``: join a sweep whose study is in ``--storage``."""
    p = argparse.ArgumentParser(prog="slimgen sweep worker",
                                description="Run trials of a sweep's study until it is done "
                                            "(a cluster's job array starts one per node).")
    p.add_argument("--storage", required=True, help="the study's database (SQLAlchemy URL)")
    p.add_argument("--study", required=True, help="the study's name (the space's name)")
    p.add_argument("--dir", dest="sweep_dir",
                   help="where this worker's run folders and stage cache go (default "
                        "sweep/STUDY)")
    p.add_argument("--index", type=int, default=1,
                   help="worker 0 also runs the default design (slimgen sweep starts it)")
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
    elif argv[:2] == ["sweep", "worker"]:
        args = _sweep_worker_parser().parse_args(argv[2:])
        args.command, stage = "sweep worker", None
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
    if args.command in ("wino", "compress", "classify", "import", "export") and stage is None:
        return args.func(args)
    if args.command == "sweep":
        from slimgen import sweep
        heartbeat = sweep.HEARTBEAT if args.heartbeat is None else args.heartbeat
        sweep.sweep(args.space, storage=args.storage, workers=args.workers,
                    sweep_dir=args.sweep_dir, heartbeat=heartbeat)
        return 0
    if args.command == "sweep worker":
        from slimgen import sweep
        if args.index < 0:
            raise FlowError(f"--index must be a non-negative integer, not {args.index}")
        sweep.work(args.storage, args.study, sweep_dir=args.sweep_dir, index=args.index)
        return 0
    if args.command == "summary":
        s = api.open(args.run).summary().as_dict()
        print(json.dumps(s, indent=2, sort_keys=True) if args.json else format_summary(s))
        return 0
    if stage == "compress":
        api.open(args.run)                  # compressing alone needs a run to compress
    # Every check before the run folder is touched: a refused command changes nothing.
    project = api.Project(args.run, _config(args, args.run), progress=not args.quiet)
    if args.command == "flow":
        summary = project.flow(args.stop_after, skip_build=args.skip_build,
                               rerun_from=args.rerun_from)
    else:
        project.stage(stage)
        summary = project.summary()
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
