"""``slimgen classify``: classify one image on a board over its UART.

    slimgen classify --port /dev/ttyUSB1 [--run runs/NAME] [--baud 115200] [--timeout 2]
                     image.png | digits:<index>

prints the class and the logits the board answered, and, with a run folder (of any model kind:
MLP, CNN or LSTM), whether they equal the golden model's. A board whose network keeps its weights
in SPRAM answers the first image after configuration with UNLOADED; the command then sends the
run folder's weights.bin (a few seconds, its progress on stderr) and asks again.

Exit status: 0 when the board answered (and agreed with the golden model), 1 when the board's
logits differ from the golden model's, the port or line failed or the run's model file or weight
image is unusable, 2 for invalid arguments (a baud rate that is not 1 to 12,000,000, a bad
timeout or port name, a socket:// URL without host:port, a missing, unreadable or wrongly shaped
image, a bad index, a run folder that is empty, a file or without a model); 141 when stdout was
closed early (``| head``).
"""

import argparse
import json
import math
import os
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]

#: Named in the message for a bad ``--baud``.
STANDARD_BAUDS = (9600, 19200, 38400, 57600, 115200, 230400)


def _baud(text):
    from slimgen.host import MAX_BAUD
    try:
        baud = int(text)
    except ValueError:
        baud = 0
    if not 1 <= baud <= MAX_BAUD:
        rates = ", ".join(str(b) + (" (the rate slimgen's boards use)" if b == 115200 else "")
                          for b in STANDARD_BAUDS[:-1])
        raise argparse.ArgumentTypeError(f"must be a whole number of bits per second from 1 to "
                                         f"{MAX_BAUD:,} (the fastest USB UARTs), such as {rates} "
                                         f"or {STANDARD_BAUDS[-1]}, not {text!r}")
    return baud


def _timeout(text):
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds such as 2, "
                                         f"not {text!r}")
    return seconds


def _port(text):
    from slimgen.host import check_port
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must name a serial port such as /dev/ttyUSB1, COM3 or "
                                         f"socket://127.0.0.1:7000, not {text!r}")
    try:
        check_port(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)[0].lower() + str(e)[1:]) from None
    return text


def _run_folder(text):
    """A run folder's name: not empty, and not a file (its model.npz is read when the command
    runs; a missing folder is said then)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must name a run folder (e.g. runs/default), not "
                                         f"{text!r}")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a run folder; give the run "
                                         f"folder itself, such as {path.parent}")
    return text


def _image(text):
    """``digits:<index>`` with a whole index ≥ 0 (its upper bound is the split's, checked when
    the data is loaded), or an existing file (read when the command runs)."""
    if text.startswith("digits:"):
        index = text[len("digits:"):]
        if not (index.isascii() and index.isdigit()):
            raise argparse.ArgumentTypeError(f"must be a PNG file or digits:<index>, an index "
                                             f"from 0 into the digits test split, not {text!r}")
        return text
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"Image file {text} does not exist")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a PNG file")
    return text


def add_parser(subparsers):
    """Register the ``classify`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "classify", help="classify an image on a board over its UART",
        description="Send one image to a board running a slimgen network and print the class "
                    "and logits it answers.")
    p.add_argument("image", type=_image, help="a PNG (8×8 grayscale, or a larger square image) or "
                                 "digits:<index> (a sample of the digits test split)")
    p.add_argument("--port", required=True, type=_port,
                   help="serial port, e.g. /dev/ttyUSB1 (or a pyserial URL such as "
                        "socket://127.0.0.1:7000)")
    p.add_argument("--run", type=_run_folder, default=None,
                   help="run folder: its model.npz gives the golden logits to compare against "
                        "and the split seed of digits:<index>; its weights.bin, if any, is "
                        "loaded into a board that has none")
    p.add_argument("--baud", type=_baud, default=115200, help="baud rate (default 115200)")
    p.add_argument("--timeout", type=_timeout, default=2.0,
                   help="seconds to wait for the reply (default 2; a weight load is given its "
                        "time on the line more)")
    ink = p.add_mutually_exclusive_group()
    ink.add_argument("--dark-ink", dest="invert", action="store_const", const=True,
                     help="the digit is dark on a light background (default: guessed)")
    ink.add_argument("--light-ink", dest="invert", action="store_const", const=False,
                     help="the digit is light on a dark background")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def write_stdout(text) -> bool:
    """Write ``text`` to stdout; False when its reader has gone (``slimgen ... | head``), and
    stdout then points at /dev/null so that Python's flush at exit stays quiet too."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return False
    return True


#: Exit status when stdout was closed early: the shell's for a process ended by SIGPIPE.
EXIT_BROKEN_PIPE = 128 + 13


class LoadProgress:
    """Shows a weight load on ``stream`` (stderr): on a terminal one line rewritten in place,
    elsewhere (a log) a line when it starts and one when every byte is sent."""

    def __init__(self, stream, baud):
        self.stream, self.baud, self.started = stream, baud, False
        self.tty = hasattr(stream, "isatty") and stream.isatty()

    def __call__(self, sent, total):
        head = "slimgen classify: loading the board's weights"
        if self.tty:
            end = "\n" if sent == total else ""
            self.stream.write(f"\r{head}: {sent:,} / {total:,} bytes ({100 * sent // total} %)"
                              f"{end}")
        else:
            if not self.started:
                self.stream.write(f"{head}: {total:,} bytes, about "
                                  f"{10 * total / self.baud:.1f} s at {self.baud} baud\n")
            if sent == total:
                self.stream.write(f"{head}: {total:,} bytes sent\n")
        self.started = True
        self.stream.flush()


def run(args) -> int:
    """Run ``slimgen classify``; returns the exit status."""
    from slimgen.host import HostError, classify
    from slimgen.sw.artifact import ArtifactError
    try:
        c = classify(args.port, args.image, run=args.run, timeout=args.timeout, baud=args.baud,
                     invert=args.invert, progress=LoadProgress(sys.stderr, args.baud))
    except (HostError, ArtifactError) as e:
        print(f"slimgen classify: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        print(f"slimgen classify: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("slimgen classify: interrupted", file=sys.stderr)
        return 128 + 2
    same = c.matches_golden
    if args.json:
        out = {"class": c.cls, "logits": c.logits.tolist(), "label": c.label,
               "golden_logits": None if c.golden_logits is None else c.golden_logits.tolist(),
               "matches_golden": same}
        text = json.dumps(out) + "\n"
    else:
        label = f" (true class {c.label})" if c.label is not None else ""
        text = f"class {c.cls}{label}\nlogits " + " ".join(str(v) for v in c.logits.tolist())
        if same is True:
            text += "\ngolden model: equal"
        elif same is False:
            text += "\ngolden model: DIFFERENT, golden logits " + \
                " ".join(str(v) for v in c.golden_logits.tolist())
        text += "\n"
    if not write_stdout(text):
        return EXIT_BROKEN_PIPE
    return 1 if same is False else 0
