"""``slimgen classify``: classify one image on a board over its UART.

    slimgen classify --port /dev/ttyUSB1 [--run runs/NAME] [--baud 115200] [--timeout 2]
                     image.png | digits:<index>

prints the class and the logits the board answered, and, with a run folder, whether they equal
the golden model's. Exit status: 0 when the board answered (and agreed with the golden model),
1 when the board's logits differ from the golden model's or the port or line failed, 2 for
invalid arguments (a missing or wrongly shaped image, a bad index).
"""

import json
import sys

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register the ``classify`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "classify", help="classify an image on a board over its UART",
        description="Send one image to a board running a slimgen network and print the class "
                    "and logits it answers.")
    p.add_argument("image", help="a PNG (8×8 grayscale, or a larger square image) or "
                                 "digits:<index> (a sample of the digits test split)")
    p.add_argument("--port", required=True,
                   help="serial port, e.g. /dev/ttyUSB1 (or a pyserial URL such as "
                        "socket://127.0.0.1:7000)")
    p.add_argument("--run", default=None,
                   help="run folder: its model.npz gives the golden logits to compare against "
                        "and the split seed of digits:<index>")
    p.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    p.add_argument("--timeout", type=float, default=2.0,
                   help="seconds to wait for the reply (default 2)")
    ink = p.add_mutually_exclusive_group()
    ink.add_argument("--dark-ink", dest="invert", action="store_const", const=True,
                     help="the digit is dark on a light background (default: guessed)")
    ink.add_argument("--light-ink", dest="invert", action="store_const", const=False,
                     help="the digit is light on a dark background")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Run ``slimgen classify``; returns the exit status."""
    from slimgen.host import HostError, classify
    from slimgen.sw.artifact import ArtifactError
    try:
        c = classify(args.port, args.image, run=args.run, timeout=args.timeout, baud=args.baud,
                     invert=args.invert)
    except (HostError, ArtifactError) as e:
        print(f"slimgen classify: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        print(f"slimgen classify: error: {e}", file=sys.stderr)
        return 2
    same = c.matches_golden
    if args.json:
        out = {"class": c.cls, "logits": c.logits.tolist(), "label": c.label,
               "golden_logits": None if c.golden_logits is None else c.golden_logits.tolist(),
               "matches_golden": same}
        print(json.dumps(out))
    else:
        label = f" (true class {c.label})" if c.label is not None else ""
        print(f"class {c.cls}{label}")
        print("logits " + " ".join(str(v) for v in c.logits.tolist()))
        if same is True:
            print("golden model: equal")
        elif same is False:
            print("golden model: DIFFERENT, golden logits "
                  + " ".join(str(v) for v in c.golden_logits.tolist()))
    return 1 if same is False else 0
