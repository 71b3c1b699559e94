"""``slimgen wino``: generate a Winograd/CRT convolution algorithm and report on it.

    slimgen wino --m 4 --r 3 [--moduli toomcook|crt|"x,x-1,x+1,x^2+1"] [--points 0,1,-1,2,-2]
                 [--inner-points ...] [--2d | --n N --s S] [--search] [--json]

prints the matrices, the multiplication count, the integer form's scales, the bit growth for
``--data-bits``/``--weight-bits`` inputs, the operation counts and the float32/float16 errors.

Limits: an input tile of at most :data:`MAX_TILE` points per dimension (``m + r - 1``; beyond it
even float32 keeps no correct digit and the exact entries grow past 32 digits), points whose
numerator and denominator are at most :data:`MAX_POINT`, at most :data:`MAX_TRIALS` error trials
and at most :data:`MAX_TRIAL_VALUES` tile values in all (trials × input tile size, a few minutes
of work), run in chunks of :data:`CHUNK_VALUES` tile values so that memory stays bounded. An
error analysis that will take longer than :data:`PROGRESS_EVERY` seconds says so on stderr up
front, with an estimate, and then every :data:`PROGRESS_EVERY` seconds. A float error that is
infinite (an overflow) or above :data:`WARN_ERROR` is warned about on stderr; in ``--json`` it is ``null``. A closed stdout (``| head``) ends the
command quietly with status 141.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import re
import sys
import time
from fractions import Fraction

import numpy as np

from slimgen.host_cli import EXIT_BROKEN_PIPE, write_stdout
from slimgen.sw.winograd import (default_points, direct_error, float_error, format_matrix,
                                 integer_form, search_crt, search_points, winograd_1d, winograd_2d)

__all__ = ["MAX_TILE", "MAX_POINT", "MAX_TRIALS", "MAX_TRIAL_VALUES", "CHUNK_VALUES",
           "PROGRESS_EVERY", "WARN_ERROR", "add_parser", "run", "stream_errors"]

#: Largest input tile (m + r - 1 points) per dimension. Measured with the default points: at
#: 32 points float32's mean relative error is 0.4 to 0.6, at 33 it is 0.6 to 0.9, from 49 on
#: float32 overflows; float16 overflows from 14 points on.
MAX_TILE = 32
#: Largest numerator and denominator of a point (--points, --col-points, --inner-points): useful
#: points are small (0, ±1, ±2, ±1/2, ...); larger ones only make the matrices overflow.
MAX_POINT = 1 << 20
#: Most error-analysis trials (the mean is steady long before; more only takes longer).
MAX_TRIALS = 1_000_000
#: Most tile values in all (trials × input tile size): F(4×4, 3×3)'s 36-value tile takes the
#: full MAX_TRIALS; F(16×16, 17×17)'s 1,024-value tile at most 65,536 trials, about 3 minutes.
MAX_TRIAL_VALUES = 1 << 26
#: Seconds between progress lines on stderr (none for an analysis that takes less).
PROGRESS_EVERY = 5.0
#: Tile values (trials × input tile size) per chunk of the error analysis: about 100 MB at most.
CHUNK_VALUES = 1 << 20
#: A mean relative float error above this keeps less than one correct digit: warned about.
WARN_ERROR = 0.1


def _integer(lo, hi=None):
    """An argparse type: an integer in [lo, hi] (lo 0 or 1 without an upper bound)."""
    what = f"an integer from {lo} to {hi}" if hi is not None else \
        {0: "a non-negative integer", 1: "a positive integer"}[lo]

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
        return value
    return parse


def _moduli(text):
    """An argparse type: a word must name a construction; anything else is parsed as moduli."""
    word = text.strip().lower()
    if word.isalpha() and word not in ("toomcook", "tc", "crt", "x"):
        raise argparse.ArgumentTypeError(f'must be toomcook, crt, or moduli in x such as '
                                         f'"x,x-1,x+1,x^2+1", not {text!r}')
    return text


def add_parser(subparsers):
    """Register the ``wino`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "wino", help="generate a Winograd/CRT convolution algorithm F(m, r)",
        description="Generate F(m, r) (or F(m×n, r×s)) exactly and report its matrices, "
                    "multiplications, integer scales, bit growth and float errors.")
    p.add_argument("--m", type=_integer(1), default=4, help="outputs per tile (default 4)")
    p.add_argument("--r", type=_integer(1), default=3, help="filter taps (default 3)")
    p.add_argument("--moduli", type=_moduli, default="toomcook",
                   help='toomcook, crt, or a list such as "x,x-1,x+1,x^2+1" (default toomcook)')
    p.add_argument("--points", default=None,
                   help='Toom-Cook points, e.g. "0,1,-1,1/2,-1/2" (m + r - 2 of them)')
    p.add_argument("--inner-points", default=None,
                   help="points of the small algorithms for moduli of degree > 1")
    p.add_argument("--2d", dest="two_d", action="store_true",
                   help="nest into F(m×m, r×r)")
    p.add_argument("--n", type=_integer(1), default=None, help="2-D: outputs per tile along columns")
    p.add_argument("--s", type=_integer(1), default=None, help="2-D: filter taps along columns")
    p.add_argument("--col-moduli", type=_moduli, default=None,
                   help="2-D: column moduli when they differ from --moduli")
    p.add_argument("--col-points", default=None,
                   help="2-D: column Toom-Cook points when they differ from --points")
    p.add_argument("--data-bits", type=_integer(1, 64), default=8,
                   help="signed input width, 1 to 64 (default 8)")
    p.add_argument("--weight-bits", type=_integer(1, 64), default=8,
                   help="signed weight width, 1 to 64 (default 8)")
    p.add_argument("--trials", type=_integer(1, MAX_TRIALS), default=1000,
                   help=f"error-analysis trials, 1 to {MAX_TRIALS} and at most "
                        f"{MAX_TRIAL_VALUES:,} tile values in all (default 1000)")
    p.add_argument("--seed", type=_integer(0), default=0, help="error-analysis seed")
    p.add_argument("--search", action="store_true",
                   help="also search the best Toom-Cook points and the cheapest CRT set")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def _matrix_json(rows):
    return [[str(v) for v in row] for row in rows]


def _check_tile(m, r, names="m + r"):
    tile = m + r - 1
    if tile > MAX_TILE:
        raise ValueError(f"F({m}, {r}) has an input tile of {names} - 1 = {tile} points; "
                         f"slimgen wino handles at most {MAX_TILE}, beyond which even float32 "
                         f"keeps no correct digit (mean relative error above 0.5 with the "
                         f"default points) and the exact matrices' entries grow past 32 digits")


def _check_points(text, option):
    """The distinct points of ``option``'s ``text`` ("0,1,-1,1/2") as Fractions, numerators and
    denominators at most :data:`MAX_POINT`, or a ``ValueError`` naming the option."""
    tokens = [t.strip() for t in text.split(",") if t.strip()]
    points = []
    for t in tokens:
        exponent = re.search(r"[eE]([+-]?\d+)$", t)
        huge = exponent is not None and abs(int(exponent.group(1))) > 30  # not worth parsing
        try:
            p = None if huge else Fraction(t)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{option}: {t!r} is not a rational number such as 2, -1/2 or "
                             f"0.25") from None
        if huge or abs(p.numerator) > MAX_POINT or p.denominator > MAX_POINT:
            small = int(exponent.group(1)) < 0 if huge else abs(p) < 1
            raise ValueError(f"{option}: {t} is too {'fine' if small else 'large'} a point: "
                             f"numerators and denominators up to {MAX_POINT:,} are taken (such "
                             f"as 3, -1/2 or 1/1024); larger ones only make the matrices' "
                             f"entries overflow")
        if p in points:
            raise ValueError(f"{option}: {t} appears more than once; the points must be "
                             f"distinct")
        points.append(p)
    return tuple(points)


def _is_toomcook(moduli):
    return moduli.strip().lower() in ("toomcook", "toom-cook", "tc")


def _is_named(moduli):
    return _is_toomcook(moduli) or moduli.strip().lower() == "crt"


def _checked_options(args):
    """The points of ``args`` parsed and checked against the other options, each complaint
    naming the options: ``(points, col_points, inner_points)``, each None when not given."""
    two_d = args.two_d or args.n is not None or args.s is not None
    given = [o for o, v in (("--col-moduli", args.col_moduli), ("--col-points", args.col_points))
             if v is not None]
    if given and not two_d:
        raise ValueError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to "
                         f"the columns of a 2-D algorithm: add --2d (or --n/--s), or leave "
                         f"{'them' if len(given) > 1 else 'it'} out")
    _check_tile(args.m, args.r)
    n = args.m if args.n is None else args.n
    s = args.r if args.s is None else args.s
    if two_d:
        _check_tile(n, s, "m + r" if args.n is None and args.s is None else "n + s")
    points = col_points = inner = None
    if args.points is not None:
        if not _is_toomcook(args.moduli):
            raise ValueError(f"--points apply only to --moduli toomcook (the default), not "
                             f"--moduli {args.moduli}; give the moduli themselves with --moduli, "
                             f"or --inner-points for the factors of degree > 1")
        points = _check_points(args.points, "--points")
        _check_count(points, "--points", f"F({args.m}, {args.r})", args.m + args.r - 2, "m + r")
    if args.inner_points is not None:
        inner = _check_points(args.inner_points, "--inner-points")
    if two_d:
        same = (n, s) == (args.m, args.r)
        col_moduli = args.col_moduli if args.col_moduli is not None else args.moduli
        if args.col_moduli is None and not (same or _is_named(args.moduli)):
            raise ValueError(f"--moduli {args.moduli} are the rows'; the columns' F({n}, {s}) "
                             f"have another size: give --col-moduli too")
        if args.col_points is not None:
            if not _is_toomcook(col_moduli):
                raise ValueError(f"--col-points apply only to Toom-Cook columns (--col-moduli "
                                 f"toomcook, or --moduli toomcook without --col-moduli), not "
                                 f"moduli {col_moduli}")
            col_points = _check_points(args.col_points, "--col-points")
            _check_count(col_points, "--col-points", f"the columns' F({n}, {s})", n + s - 2,
                         "m + r" if args.n is None and args.s is None else "n + s")
        elif points is not None and not same:
            raise ValueError(f"--points are the rows'; the columns' F({n}, {s}) have another "
                             f"size: give --col-points too")
    return points, col_points, inner


def _check_count(points, option, name, degree, sizes):
    if len(points) != degree:
        raise ValueError(f"{option}: {name} needs {degree} distinct finite points ({sizes} - 2; "
                         f"the point at infinity is added), not {len(points)}")


def _check_work(args):
    """Refuse more than :data:`MAX_TRIAL_VALUES` tile values of error analysis."""
    two_d = args.two_d or args.n is not None or args.s is not None
    tile = args.m + args.r - 1
    name = f"F({args.m}, {args.r})"
    if two_d:
        n = args.m if args.n is None else args.n
        s = args.r if args.s is None else args.s
        tile *= n + s - 1
        name = f"F({args.m}×{n}, {args.r}×{s})"
    if args.trials * tile > MAX_TRIAL_VALUES:
        raise ValueError(f"--trials {args.trials:,} of {name}, whose input tile holds {tile:,} "
                         f"values, is {args.trials * tile:,} tile values; slimgen wino analyses "
                         f"at most {MAX_TRIAL_VALUES:,} (a few minutes): use --trials "
                         f"{MAX_TRIAL_VALUES // tile:,} or fewer (the mean error is steady long "
                         f"before)")


def _points_text(points):
    return ", ".join(str(p) for p in points)


def stream_errors(alg, *, trials, seed, progress=None) -> dict:
    """:func:`slimgen.sw.winograd.error_report` in chunks of at most :data:`CHUNK_VALUES` tile
    values, so that memory does not grow with ``trials``: each figure is the mean of the chunk
    means weighted by their sizes (the same as one call when one chunk holds every trial).

    ``progress(done, total)``, when given, is called after each chunk with the trials done so
    far and in all (4 · ``trials``: float32, float16, and the direct form of each)."""
    tile = int(np.prod(getattr(alg, "N", None) or (alg.rows.N, alg.cols.N)))
    chunk = max(1, CHUNK_VALUES // tile)
    out, finished = {}, 0
    for name in ("float32", "float16"):
        for key, fn in ((name, float_error), ("direct_" + name, direct_error)):
            rng, total, done = np.random.default_rng(seed), 0.0, 0
            while done < trials:
                n = min(chunk, trials - done)
                total += n * fn(alg, name, trials=n, rng=rng)
                done += n
                finished += n
                if progress is not None:
                    progress(finished, 4 * trials)
            out[key] = total / trials if math.isfinite(total) else math.inf
    return out


def _duration(seconds):
    seconds = max(1, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"


class _Progress:
    """Says on stderr how long an error analysis will take, once it is known to take longer than
    :data:`PROGRESS_EVERY` seconds, and then how far it is every :data:`PROGRESS_EVERY` s."""

    def __init__(self, name, trials, *, out=None, clock=time.monotonic):
        self.name, self.trials, self.out, self.clock = name, trials, out, clock
        self.start = self.last = clock()
        self.announced = False

    def __call__(self, done, total):
        now = self.clock()
        left = (now - self.start) / done * (total - done)
        if not self.announced:
            if left < PROGRESS_EVERY:
                return
            self.announced = True
            self._say(f"error analysis of {self.name} over {self.trials:,} trials takes about "
                      f"{_duration(now - self.start + left)}; progress every "
                      f"{PROGRESS_EVERY:g} s (fewer --trials are quicker)")
            self.last = now
        elif now - self.last >= PROGRESS_EVERY and done < total:
            self._say(f"error analysis {100 * done // total}% done, about {_duration(left)} "
                      f"left")
            self.last = now

    def _say(self, text):
        print(f"slimgen wino: {text}", file=self.out or sys.stderr, flush=True)


def _warnings(rep):
    """One line per float error that is infinite or keeps less than one correct digit."""
    lines = []
    for dtype, largest in (("float32", "3.4e38"), ("float16", "65504")):
        e = rep["errors"][dtype]
        if not math.isfinite(e):
            lines.append(f"{rep['algorithm']} overflows {dtype}: its transforms exceed {dtype}'s "
                         f"largest number ({largest}), so the {dtype} error is inf; "
                         + ("use float32 or a smaller tile" if dtype == "float16"
                            else "use a smaller tile"))
        elif e > WARN_ERROR:
            lines.append(f"{rep['algorithm']} in {dtype} keeps under one correct digit (mean "
                         f"relative error {e:.2g}); "
                         + ("use float32 or a smaller tile" if dtype == "float16"
                            else "use a smaller tile or other points"))
    return lines


def _finite_or_none(value):
    """JSON has no inf or NaN: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _report(args) -> dict:
    two_d = args.two_d or args.n is not None or args.s is not None
    points, col_points, inner = _checked_options(args)
    _check_work(args)
    try:
        return _built_report(args, two_d, points, col_points, inner)
    except (OverflowError, ZeroDivisionError):
        given = [(o, p) for o, p in (("--points", points), ("--col-points", col_points),
                                     ("--inner-points", inner)) if p is not None]
        what = "; ".join(f"{o} {_points_text(p)}" for o, p in given) or "these options"
        raise ValueError(f"{what}: the matrices' entries grow too large for float64 (above "
                         f"1.8e308), so the algorithm cannot be measured; use points that are "
                         f"small and well apart, such as the defaults "
                         f"{_points_text(default_points(args.m + args.r - 2))}") from None


def _built_report(args, two_d, points, col_points, inner) -> dict:
    if two_d:
        alg = winograd_2d(args.m, args.r, moduli=args.moduli, points=points,
                          inner_points=inner, n=args.n, s=args.s,
                          col_moduli=args.col_moduli, col_points=col_points)
        parts = {"rows": alg.rows, "cols": alg.cols}
    else:
        alg = winograd_1d(args.m, args.r, moduli=args.moduli, points=points,
                          inner_points=inner)
        parts = {"": alg}
    form = integer_form(alg)
    ops = form.op_counts()
    out = {
        "algorithm": alg.name,
        "alpha": alg.alpha,
        "parts": {k: {"m": a.m, "r": a.r, "alpha": a.alpha,
                      "moduli": [str(x) for x in a.moduli],
                      "inner_points": [str(p) for p in a.inner_points],
                      "AT": _matrix_json(a.AT), "G": _matrix_json(a.G), "BT": _matrix_json(a.BT)}
                  for k, a in parts.items()},
        "integer_form": form.to_dict(),
        "op_counts": ops.to_dict(),
        "bit_growth": form.bit_growth(args.data_bits, args.weight_bits).to_dict(),
        "errors": stream_errors(alg, trials=args.trials, seed=args.seed,
                                progress=_Progress(alg.name, args.trials)),
    }
    if args.search:
        sizes = {(a.m, a.r) for a in parts.values()}
        out["search"] = {f"F({m}, {r})": {"points": search_points(m, r).to_dict(),
                                          "crt": search_crt(m, r).to_dict()}
                         for m, r in sorted(sizes)}
    return out


def _print_text(rep, out):
    w = out.write
    ops = rep["op_counts"]
    w(f"{rep['algorithm']}: {rep['alpha']} multiplications per tile\n")
    w(f"multiplications per output: {ops['multiplications']:.4g} "
      f"(direct {ops['direct_multiplications']}, "
      f"{ops['direct_multiplications'] / ops['multiplications']:.2f}x fewer)\n")
    for name, part in rep["parts"].items():
        label = f"{name}: " if name else ""
        w(f"\n{label}F({part['m']}, {part['r']}), alpha {part['alpha']}, moduli "
          f"{{{', '.join(part['moduli'])}}} + inf")
        if part["inner_points"]:
            w(f", inner points {', '.join(part['inner_points'])}")
        w("\n")
        for key in ("AT", "G", "BT"):
            w(f"{key} =\n{format_matrix(part[key])}\n")
    form = rep["integer_form"]
    forms = [("", form)] if "AT" in form else [("rows ", form["rows"]), ("cols ", form["cols"])]
    w("\nInteger form (matrix = scale * integer matrix):\n")
    for label, f in forms:
        for key in ("AT", "G", "BT"):
            S = f[key]
            w(f"  {label}{key}: scale {S['scale']}"
              f"{' (power of two)' if S['power_of_two'] else ''}, entries: {S['kind']}\n")
    shift = form["shift"]
    w(f"  output y = {form['scale']} * P"
      f"{f' (power of two: shift by {-shift})' if shift is not None and shift <= 0 else ''}\n")
    for label, f in forms:
        if label:
            continue
        for key in ("G",):
            w(f"  G_int =\n{format_matrix(f[key]['matrix'])}\n")
    bg = rep["bit_growth"]
    w(f"\nBit growth for {bg['data_bits']}-bit data and {bg['weight_bits']}-bit weights:\n")
    for st in bg["stages"]:
        w(f"  {st['stage']:<14} [{st['min']}, {st['max']}]  {st['bits']} bits\n")
    w(f"\nOperations per output: {ops['multiplications']:.4g} mul, {ops['additions']:.4g} add, "
      f"{ops['shifts']:.4g} shift (direct: {ops['direct_multiplications']} mul, "
      f"{ops['direct_additions']} add); filter transform offline: {ops['filter_adds']} add, "
      f"{ops['filter_shifts']} shift; output scale: {ops['scale_op']}\n")
    e = rep["errors"]
    w(f"\nMean relative error vs float64 direct: float32 {e['float32']:.3e} "
      f"(direct {e['direct_float32']:.3e}), float16 {e['float16']:.3e} "
      f"(direct {e['direct_float16']:.3e})\n")
    for size, res in rep.get("search", {}).items():
        p, c = res["points"], res["crt"]
        w(f"\nSearch {size}: best points {', '.join(p['points'])}: float16 {p['error']:.3e} vs "
          f"default {p['default_error']:.3e} ({p['gain']:.2f}x); cheapest CRT "
          f"{{{', '.join(c['moduli'])}}}, alpha {c['alpha']}\n")


def run(args) -> int:
    """Run ``slimgen wino``; returns the exit status (2 for invalid arguments, 141 when stdout
    was closed early)."""
    try:
        rep = _report(args)
    except (ValueError, TypeError) as exc:
        print(f"slimgen wino: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("slimgen wino: interrupted", file=sys.stderr)
        return 128 + 2
    for line in _warnings(rep):
        print(f"slimgen wino: warning: {line}", file=sys.stderr)
    if args.json:
        text = json.dumps(_finite_or_none(rep), allow_nan=False) + "\n"
    else:
        buf = io.StringIO()
        _print_text(rep, buf)
        text = buf.getvalue()
    return 0 if write_stdout(text) else EXIT_BROKEN_PIPE
