"""``slimgen compress``: compress a trained float artifact with one of the methods.

    slimgen compress --in runs/default/float.npz --out runs/default/compressed.npz
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

__all__ = ["add_parser", "run", "METHODS"]

METHODS = ("self_prune", "joint", "balanced", "sign", "lstm_gates", "magnitude")
VIEWS = {"dense": "vector", "conv2d": "image", "lstm": "sequence"}


def add_parser(subparsers):
    """Register the ``compress`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "compress", help="prune / balance / quantize a trained float model",
        description="Compress a trained float artifact with one of the compression methods and "
                    "write a compressed float artifact (pruned weights exactly 0). With --run "
                    "RUN instead, run the flow's compress stage on a run folder (with the run "
                    "options of the other stages: --method, --sparsity, --compress-epochs, ...).")
    p.add_argument("--in", dest="inp", default="runs/default/float.npz", help="float artifact")
    p.add_argument("--out", default="runs/default/compressed.npz", help="compressed artifact")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--sparsity", type=float, default=0.9, help="target fraction of zero weights")
    p.add_argument("--bits", type=float, default=4.0, help="joint: target average weight bits")
    p.add_argument("--groups", type=int, default=4, help="balanced: lanes (groups)")
    p.add_argument("--layout", default="rows", help="balanced: rows or banks")
    p.add_argument("--input-order", default=None, choices=("natural", "dealt", "tiled"),
                   help="balanced, banks: how the first layer's inputs are placed in the banks "
                        "(default: tiled)")
    p.add_argument("--distribution", default="halfnormal", help="sign: Δ distribution")
    p.add_argument("--scale", type=float, default=1e-3, help="sign: starting scale of Δ")
    p.add_argument("--gates", default="ifo", help="lstm_gates: gates to prune (subset of ifo)")
    p.add_argument("--q", type=float, default=None,
                   help="lstm_gates: quality factor (τ = q·std) instead of --sparsity")
    p.add_argument("--scope", default="global", help="magnitude: layer or global")
    p.add_argument("--alpha-max-ratio", type=float, default=None,
                   help="self_prune, joint, balanced: hold each threshold's α at most this times "
                        "its β (default: no ceiling; 1.0 kept a digits CNN from collapsing at "
                        "the hard mask, see slimgen.sw.compress.self_prune)")
    p.add_argument("--epochs", type=int, default=None, help="epochs of the compression phase")
    p.add_argument("--finetune-epochs", type=int, default=None, help="epochs of fine-tuning")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(func=run)
    return p


def _epochs(args):
    d = {}
    if args.epochs is not None:
        d["epochs"] = args.epochs
    if args.finetune_epochs is not None:
        d["finetune_epochs"] = args.finetune_epochs
    return d


def compress(model, data, args, progress=False):
    """Run the method named in ``args`` on ``model``; returns a :class:`Compressed`."""
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
        model, manifest = load_float_model(args.inp)
        kind = model.layers[0].kind
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
        save_float_model(args.out, model, dataset=manifest["dataset"],
                         split_seed=manifest["split_seed"],
                         history=manifest.get("history", []), extra={"compression": info})
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
