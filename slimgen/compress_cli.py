"""``slimgen compress``: compress a trained float artifact with one of the methods.

    slimgen compress --in runs/NAME/float.npz --out pruned.npz
                     --method self_prune|joint|balanced|sign|lstm_gates|magnitude
                     [--sparsity 0.9] [--bits 4] [--groups 4 --layout rows|banks]
                     [--input-order natural|dealt|tiled]
                     [--distribution halfnormal --scale 1e-3] [--gates ifo | --q 2.0]
                     [--scope layer|global] [--epochs N] [--finetune-epochs N] [--seed S]
                     [--alpha-max-ratio R]

The output is a float artifact (pruned weights exactly 0) whose manifest carries
``compression = {"method", "sparsity", "layer_weight_bits", "groups", "layout", "input_order",
...}``; the quantize stage passes ``layer_weight_bits`` (one per convolution and dense layer) to
the MLP's and the CNN's quantizer, and the MLP's ``input_order`` (balanced sparsity with input
banks: where the first layer's inputs sit in the banks; None for the natural order) to its
integer model, which gives it to the hardware.
"""

from __future__ import annotations

import json
import sys

__all__ = ["add_parser", "check_args", "compress", "run", "METHODS", "DEFAULTS", "USES"]

METHODS = ("self_prune", "joint", "balanced", "sign", "lstm_gates", "magnitude")
VIEWS = {"dense": "vector", "conv2d": "image", "lstm": "sequence"}


#: The value of each method option left out (None in the parsed arguments, so that an option
#: given to a method that does not use it can be refused).
DEFAULTS = {"sparsity": 0.9, "bits": 4.0, "groups": 4, "layout": "rows", "input_order": None,
            "distribution": "halfnormal", "scale": 1e-3, "gates": None, "q": None,
            "scope": "global", "alpha_max_ratio": None, "epochs": None,
            "finetune_epochs": None}

#: The options each method uses (every method also takes --seed).
USES = {
    "self_prune": ("sparsity", "alpha_max_ratio", "epochs", "finetune_epochs"),
    "joint": ("bits", "sparsity", "alpha_max_ratio", "epochs", "finetune_epochs"),
    "balanced": ("groups", "layout", "input_order", "sparsity", "alpha_max_ratio", "epochs",
                 "finetune_epochs"),
    "sign": ("distribution", "scale", "sparsity", "epochs", "finetune_epochs"),
    "lstm_gates": ("gates", "q", "sparsity", "finetune_epochs"),
    "magnitude": ("sparsity", "scope", "epochs", "finetune_epochs"),
}

#: The run folder's own files: ``--out`` may not replace them (the run's summary would then
#: mix two models); ``slimgen compress --run`` compresses a run.
RUN_FILES = ("float.npz", "compressed.npz", "model.npz")


def add_parser(subparsers):
    """Register the ``compress`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "compress", help="prune / balance / quantize a trained float model",
        description="Compress a trained float artifact with one of the compression methods and "
                    "write a compressed float artifact (pruned weights exactly 0). With --run "
                    "RUN instead, run the flow's compress stage on a run folder (with the run "
                    "options of the other stages: --method, --sparsity, --compress-epochs, ...).")
    p.add_argument("--in", dest="inp", help="float artifact to read (e.g. runs/NAME/float.npz)")
    p.add_argument("--out", help="compressed artifact to write (not a run folder's own files: "
                                 "'slimgen compress --run NAME' compresses a run)")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--sparsity", type=float, help="target fraction of zero weights (default 0.9)")
    p.add_argument("--bits", type=float, help="joint: target average weight bits (default 4)")
    p.add_argument("--groups", type=int, help="balanced: lanes (groups) (default 4)")
    p.add_argument("--layout", choices=("rows", "banks"), help="balanced: rows (default) or banks")
    p.add_argument("--input-order", choices=("natural", "dealt", "tiled"),
                   help="balanced, banks: how the first layer's inputs are placed in the banks "
                        "(default: tiled)")
    p.add_argument("--distribution", help="sign: Δ distribution (default halfnormal)")
    p.add_argument("--scale", type=float, help="sign: starting scale of Δ (default 1e-3)")
    p.add_argument("--gates", help="lstm_gates: gates to prune, one or more of an LSTM's i, "
                                   "f, o and a GRU's r, z (default: all of them)")
    p.add_argument("--q", type=float,
                   help="lstm_gates: quality factor (τ = q·std) instead of --sparsity")
    p.add_argument("--scope", choices=("layer", "global"),
                   help="magnitude: layer or global (default)")
    p.add_argument("--alpha-max-ratio", type=float,
                   help="self_prune, joint, balanced: hold each threshold's α at most this times "
                        "its β (default: no ceiling; 1.0 kept a digits CNN from collapsing at "
                        "the hard mask, see slimgen.sw.compress.self_prune)")
    p.add_argument("--epochs", type=int, help="epochs of the compression phase")
    p.add_argument("--finetune-epochs", type=int, help="epochs of fine-tuning")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(func=run)
    return p


def _option(name):
    return "--" + name.replace("_", "-")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_args(args):
    """Refuse, before anything is read or written, the options of the artifact tool that cannot
    work or that the method would ignore, with a :class:`ValueError` naming the option."""
    import math
    import os
    from pathlib import Path
    for name, what in (("inp", "the float artifact to read"), ("out", "the file to write")):
        if getattr(args, name) is None:
            raise ValueError("--in and --out are both needed: the float artifact to read and the "
                             "compressed artifact to write (e.g. --in runs/NAME/float.npz --out "
                             "pruned.npz); 'slimgen compress --run NAME' compresses a run folder "
                             "in place")
        if not getattr(args, name).strip():
            raise ValueError(f"{'--in' if name == 'inp' else '--out'} must name {what} (an .npz "
                             f"file), not {getattr(args, name)!r}")
    out = Path(args.out)
    if out.is_dir() or args.out.endswith((os.sep, "/")):
        raise ValueError(f"--out {args.out} is a folder: name the file to write in it, e.g. "
                         f"{out / 'compressed.npz'}")
    if out.name in RUN_FILES and (out.parent / "config.json").exists():
        raise ValueError(f"--out {args.out} is a file of the run folder {out.parent}, whose "
                         f"summary would then mix two models: compress the run with 'slimgen "
                         f"compress --run {out.parent} --method {args.method}', or write "
                         f"another file")
    method, uses = args.method, USES[args.method]
    for name in DEFAULTS:
        if getattr(args, name, None) is not None and name not in uses:
            users = ", ".join(m for m in METHODS if name in USES[m])
            raise ValueError(f"{_option(name)} is not used by --method {method} (only by "
                             f"{users}): leave it out")
    if method == "lstm_gates" and args.q is not None and args.sparsity is not None:
        raise ValueError("--q and --sparsity both set how much lstm_gates prunes: give one")
    if args.input_order is not None and args.layout != "banks":
        raise ValueError(f"--input-order places the first layer's inputs in the banks of "
                         f"--layout banks, not {args.layout or 'rows'}: give --layout banks, "
                         f"or leave it out")

    def number(name, what, ok):
        v = getattr(args, name)
        if v is not None and not (math.isfinite(v) and ok(v)):
            raise ValueError(f"{_option(name)} must be {what}, not {v!r}")

    def integer(name, least):
        v = getattr(args, name)
        what = {0: "a non-negative integer", 1: "a positive integer"}[least]
        if v is not None and not (_is_int(v) and v >= least):
            raise ValueError(f"{_option(name)} must be {what}, not {v!r}")

    from slimgen.sw.compress.joint_prune_quant import JointConfig
    from slimgen.sw.compress.self_prune import SelfPruneConfig
    from slimgen.sw.compress.sign_sparsify import DISTRIBUTIONS
    from slimgen.sw.compress.lstm_gate_prune import PRUNABLE_GATES
    widths = JointConfig().bits
    floor = SelfPruneConfig().alpha_min_ratio
    number("sparsity", "a number in [0, 1)", lambda v: 0 <= v < 1)
    number("bits", f"a number from {min(widths)} to {max(widths)} (the joint method's "
                   f"candidate widths {', '.join(map(str, widths))})",
           lambda v: min(widths) <= v <= max(widths))
    number("scale", "a positive number", lambda v: v > 0)
    number("q", "a non-negative number", lambda v: v >= 0)
    number("alpha_max_ratio", f"a number ≥ {floor} (the floor of every threshold's α/β)",
           lambda v: v >= floor)
    for name, least in (("groups", 1), ("epochs", 1), ("finetune_epochs", 0), ("seed", 0)):
        integer(name, least)
    if args.distribution is not None and args.distribution not in DISTRIBUTIONS:
        raise ValueError(f"--distribution must be one of {', '.join(DISTRIBUTIONS)}, "
                         f"not {args.distribution!r}")
    gates = args.gates
    if gates is not None and (not gates or any(g not in PRUNABLE_GATES for g in gates)
                              or len(set(gates)) != len(gates)):
        raise ValueError(f"--gates must be one or more of the gates "
                         f"{', '.join(PRUNABLE_GATES)} (an LSTM's i, f, o, a GRU's r, z), each "
                         f"once (e.g. ifo or io; the candidate c or n stays dense), not "
                         f"{gates!r}")


def _resolved(args):
    """``args`` with every method option left out at its default."""
    import argparse
    values = vars(args).copy()
    for name, default in DEFAULTS.items():
        if values.get(name) is None:
            values[name] = default
    return argparse.Namespace(**values)


def _epochs(args):
    d = {}
    if args.epochs is not None:
        d["epochs"] = args.epochs
    if args.finetune_epochs is not None:
        d["finetune_epochs"] = args.finetune_epochs
    return d


def compress(model, data, args, progress=False):
    """Run the method named in ``args`` on ``model`` (options left out, None: their
    :data:`DEFAULTS`); returns a :class:`Compressed`."""
    args = _resolved(args)
    from slimgen.sw.compress.masked_train import FitConfig
    from slimgen.sw.compress.self_prune import SelfPruneConfig
    fit = FitConfig(lr=1e-3, lr_threshold=1e-2, batch_size=32, seed=args.seed)
    ft = FitConfig(lr=1e-3, batch_size=32, seed=args.seed)
    sp = SelfPruneConfig(target_sparsity=args.sparsity, lr_lambda=0.1,
                         alpha_max_ratio=getattr(args, "alpha_max_ratio", None), **_epochs(args))
    if args.method == "self_prune":
        from slimgen.sw.compress.self_prune import self_prune
        return self_prune(model, data, sp, fit=fit, finetune=ft, progress=progress)
    if args.method == "joint":
        from slimgen.sw.compress.joint_prune_quant import JointConfig, joint_prune_quantize
        return joint_prune_quantize(model, data, JointConfig(target_bits=args.bits, prune=sp),
                                    fit=fit, progress=progress)
    if args.method == "balanced":
        from slimgen.sw.compress.balanced import BalancedConfig, balanced_prune
        # input banks: the pixels tiled over the banks unless told otherwise (rows: no order)
        order = getattr(args, "input_order", None) or ("tiled" if args.layout == "banks"
                                                       else "natural")
        cfg = BalancedConfig(groups=args.groups, layout=args.layout, prune=sp, input_order=order)
        return balanced_prune(model, data, cfg, fit=fit, finetune=ft, progress=progress)
    if args.method == "sign":
        from slimgen.sw.compress.sign_sparsify import SignSparsifyConfig, sign_sparsify
        cfg = SignSparsifyConfig(distribution=args.distribution, scale=args.scale,
                                 target_sparsity=args.sparsity, **_epochs(args))
        return sign_sparsify(model, data, cfg, fit=FitConfig(lr=0.02, batch_size=32,
                                                             optimizer="sgd", seed=args.seed),
                             finetune=ft, progress=progress)
    if args.method == "lstm_gates":
        from slimgen.sw.compress.lstm_gate_prune import GatePruneConfig, lstm_gate_prune
        e = {"finetune_epochs": args.finetune_epochs} if args.finetune_epochs is not None else {}
        cfg = GatePruneConfig(gates=args.gates, q=args.q,
                              target_sparsity=None if args.q is not None else args.sparsity, **e)
        return lstm_gate_prune(model, data, cfg, fit=ft, progress=progress)
    from slimgen.sw.compress.magnitude import MagnitudeConfig, magnitude_prune
    cfg = MagnitudeConfig(target_sparsity=args.sparsity, scope=args.scope, **_epochs(args))
    return magnitude_prune(model, data, cfg, fit=ft, finetune=ft, progress=progress)


def run(args) -> int:
    from slimgen.sw.artifact import ArtifactError, load_float_model, save_float_model
    from slimgen.sw.data import load_dataset
    from slimgen.sw.nn import evaluate
    try:
        check_args(args)
        model, manifest = load_float_model(args.inp)
        kind = model.layers[0].kind
        if args.method == "lstm_gates" and not any(l.kind in ("lstm", "gru")
                                                   for l in model.layers):
            raise ValueError(f"--method lstm_gates prunes LSTM and GRU gates; {args.inp} has "
                             f"no LSTM or GRU layer (its layers: "
                             f"{', '.join(l.kind for l in model.layers)})")
        network = None
        if "network" in manifest:          # the description says how samples are laid out
            from dataclasses import replace
            from slimgen.sw.network import check_network, to_float_input
            network = check_network(manifest["network"])
            data = load_dataset(manifest["dataset"], view="vector", seed=manifest["split_seed"])
            data = replace(data, x=to_float_input(network, data.x))
        else:
            data = load_dataset(manifest["dataset"], view=VIEWS.get(kind, "vector"),
                                seed=manifest["split_seed"])
        x, y = data.part("test")
        before = evaluate(model, x, y)
        res = compress(model, data, args, progress=not args.quiet)
        after = evaluate(model, x, y)
        # one width per convolution and dense layer, in order (what the MLP and CNN quantizers take)
        n_weighted = sum(1 for layer in model.layers if layer.kind in ("conv2d", "dense"))
        info = dict(res.info)
        info.setdefault("layer_weight_bits", None)
        info.setdefault("groups", None)
        info.setdefault("layout", None)
        info.setdefault("input_order", None)
        if info["layer_weight_bits"] is not None and len(info["layer_weight_bits"]) != n_weighted:
            info["layer_weight_bits"] = None  # e.g. an LSTM's gate matrices: no quantizer takes them
        info.update(float_accuracy_before=before, float_accuracy_after=after)
        try:
            save_float_model(args.out, model, dataset=manifest["dataset"],
                             split_seed=manifest["split_seed"],
                             history=manifest.get("history", []), extra={"compression": info},
                             network=network)
        except OSError as e:
            raise OSError(f"cannot write --out {args.out}: {e.strerror or e}") from None
    except (ArtifactError, ValueError, OSError) as e:
        print(f"slimgen compress: error: {e}", file=sys.stderr)
        return 1
    figures = {k: info[k] for k in ("method", "sparsity", "layer_weight_bits", "groups",
                                    "layout", "float_accuracy_before", "float_accuracy_after")}
    if args.json:
        print(json.dumps(figures))
    else:
        for k, v in figures.items():
            print(f"{k:22} {v:.4f}" if isinstance(v, float) else f"{k:22} {v}")
        print(f"{'written':22} {args.out}")
    return 0
