"""``slimgen wino``: generate a Winograd/CRT convolution algorithm and report on it.

    slimgen wino --m 4 --r 3 [--moduli toomcook|crt|"x,x-1,x+1,x^2+1"] [--points 0,1,-1,2,-2]
                 [--inner-points ...] [--2d | --n N --s S] [--search] [--json]

prints the matrices, the multiplication count, the integer form's scales, the bit growth for
``--data-bits``/``--weight-bits`` inputs, the operation counts and the float32/float16 errors.
"""

from __future__ import annotations

import json
import sys

from slimgen.sw.winograd import (error_report, format_matrix, integer_form, search_crt,
                                 search_points, winograd_1d, winograd_2d)

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    """Register the ``wino`` subcommand on an argparse ``subparsers`` object."""
    p = subparsers.add_parser(
        "wino", help="generate a Winograd/CRT convolution algorithm F(m, r)",
        description="Generate F(m, r) (or F(m×n, r×s)) exactly and report its matrices, "
                    "multiplications, integer scales, bit growth and float errors.")
    p.add_argument("--m", type=int, default=4, help="outputs per tile (default 4)")
    p.add_argument("--r", type=int, default=3, help="filter taps (default 3)")
    p.add_argument("--moduli", default="toomcook",
                   help='toomcook, crt, or a list such as "x,x-1,x+1,x^2+1" (default toomcook)')
    p.add_argument("--points", default=None,
                   help='Toom-Cook points, e.g. "0,1,-1,1/2,-1/2" (m + r - 2 of them)')
    p.add_argument("--inner-points", default=None,
                   help="points of the small algorithms for moduli of degree > 1")
    p.add_argument("--2d", dest="two_d", action="store_true",
                   help="nest into F(m×m, r×r)")
    p.add_argument("--n", type=int, default=None, help="2-D: outputs per tile along columns")
    p.add_argument("--s", type=int, default=None, help="2-D: filter taps along columns")
    p.add_argument("--col-moduli", default=None,
                   help="2-D: column moduli when they differ from --moduli")
    p.add_argument("--col-points", default=None,
                   help="2-D: column Toom-Cook points when they differ from --points")
    p.add_argument("--data-bits", type=int, default=8, help="signed input width (default 8)")
    p.add_argument("--weight-bits", type=int, default=8, help="signed weight width (default 8)")
    p.add_argument("--trials", type=int, default=1000, help="error-analysis trials")
    p.add_argument("--seed", type=int, default=0, help="error-analysis seed")
    p.add_argument("--search", action="store_true",
                   help="also search the best Toom-Cook points and the cheapest CRT set")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)
    return p


def _matrix_json(rows):
    return [[str(v) for v in row] for row in rows]


def _report(args) -> dict:
    two_d = args.two_d or args.n is not None or args.s is not None
    if two_d:
        alg = winograd_2d(args.m, args.r, moduli=args.moduli, points=args.points,
                          inner_points=args.inner_points, n=args.n, s=args.s,
                          col_moduli=args.col_moduli, col_points=args.col_points)
        parts = {"rows": alg.rows, "cols": alg.cols}
    else:
        alg = winograd_1d(args.m, args.r, moduli=args.moduli, points=args.points,
                          inner_points=args.inner_points)
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
        "errors": error_report(alg, trials=args.trials, seed=args.seed),
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
    """Run ``slimgen wino``; returns the exit status (2 for invalid arguments)."""
    try:
        rep = _report(args)
    except (ValueError, TypeError) as exc:
        print(f"slimgen wino: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rep))
    else:
        _print_text(rep, sys.stdout)
    return 0
