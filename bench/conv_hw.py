# amaranth: UnusedElaboratable=no
"""Benchmark: the CNN engine's convolution on each Winograd algorithm, and the polynomial units.

For each algorithm (F(2×2,3×3), F(4×4,3×3) Toom-Cook and CRT, F(6×6,3×3)), one random CNN of a
single convolution (Cin × H × W → Cout, 3×3, padding 1, a max-pool of the output tile, a dense
layer) on the shared multiplier array of :class:`slimgen.hw.cnn.CNN`, the flow's engine:

* multiplications per output and input channel (α² per tile, non-zero filter and input
  channel, from the schedule the engine runs) against the theory (α²/m²);
* cycles per output of the convolution (its product cycles over its outputs) and of a whole
  image, measured on Amaranth's simulator (bit-exact against the golden model) against the
  schedule's estimate;
* multiplier busy: products / (lanes · product cycles) of the convolution;
* logic cells, DSPs, block RAM and fmax on iCE40UP5K and ECP5-85F (:func:`boards.unit_synth`,
  out of context).

The polynomial table sets the structured residue and CRT units and the folded 2-D transform
of :mod:`slimgen.hw.lib.polynomial` against flat shift-add matrices. Prints the tables, then one
JSON line.

    python bench/conv_hw.py [--no-synth] [--quick] [--part conv|poly|all]
                            [--boards ice40up5k,ecp5-85f] [--build build/conv_hw]
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from slimgen.hw.cnn import CNN
from slimgen.sim.testing import random_cnn
from slimgen.sw.winograd import winograd_2d

CIN, COUT, SIZE = 4, 8, 12
# (name, algorithm factory, lanes: a multiple of α dividing α²)
CASES = [
    ("F(2x2,3x3)", lambda: winograd_2d(2, 3), 4),
    ("F(4x4,3x3) Toom-Cook", lambda: winograd_2d(4, 3), 6),
    ("F(4x4,3x3) CRT", lambda: winograd_2d(4, 3, "crt"), 7),
    ("F(6x6,3x3)", lambda: winograd_2d(6, 3), 8),
]
IMAGES = 2


def cnn_for(alg, rng):
    """One convolution of the bench's shape, pooled by the algorithm's output tile."""
    return random_cnn(rng, (SIZE, SIZE, CIN), (COUT,), pool=alg.m[0], n_classes=4,
                      weight_bits=6, conv_bias=False)


def simulate(qmodel, x, alg, lanes):
    """``IMAGES`` images through :class:`CNN` on Amaranth's simulator, checked against the
    golden model. Returns the design and its figures."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from hw_sim import run_stream
    dut = CNN(qmodel, algorithm=alg, lanes=lanes)
    out, cycles = run_stream(dut, x.reshape(-1), len(x))
    got = np.array([[int(v) for v in p.logits] for p in out])
    if not np.array_equal(got, qmodel(x)):
        raise AssertionError(f"{alg.name}: hardware differs from the golden model")
    sch = dut.schedule
    _, _, _, cout, oh, ow, th, tw = sch.layer_shapes[0]
    products = th * tw * sum(len(f) for f in sch.filters[0]) * sch.alpha ** 2
    conv_cycles = sch.conv_cycles(0)
    outputs = oh * ow * cout
    return dut, {
        "lanes": lanes,
        "mults_per_output": products / (outputs * CIN),
        "conv_cycles_per_output": conv_cycles / outputs,
        "busy": products / (lanes * conv_cycles),
        "image_cycles": cycles / len(x), "image_cycles_estimate": sch.cycles_estimate(),
        "products": products,
    }


def polynomial_units():
    """``(name, structured unit, flat units)``: the residue tree, the CRT tree and the folded
    2-D input transform of F(4×4,3×3) CRT, each against the flat matrix with and without
    sub-expression sharing."""
    from amaranth.hdl import signed, unsigned

    from slimgen.hw.lib.polynomial import CrtUnit, FoldedTransform2D, FoldUnit
    from slimgen.hw.lib.transform import Transform2D
    from slimgen.sw.winograd import integer_form, winograd_1d

    mods = "x-1,x+1,x^2+1,x^4+1,x^8+1".split(",")
    BT = integer_form(winograd_1d(4, 3, "crt")).BT.matrix
    return [
        ("residues of 16 mod x±1,x²+1,x⁴+1,x⁸+1",
         lambda: FoldUnit(mods, 16, in_shape=signed(8)),
         lambda s: FoldUnit(mods, 16, in_shape=signed(8), structured=False, share=s)),
        ("CRT from x±1,x²+1,x⁴+1,x⁸+1",
         lambda: CrtUnit(mods, in_shape=signed(8)),
         lambda s: CrtUnit(mods, in_shape=signed(8), structured=False, share=s)),
        ("F(4x4,3x3) CRT: Bᵀ d B",
         lambda: FoldedTransform2D(winograd_2d(4, 3, "crt"), in_shape=unsigned(8)),
         lambda s: Transform2D(BT, BT, in_shape=unsigned(8), share=s)),
    ]


def polynomial_table(args):
    """Structured against flat: adders, and out-of-context synthesis on each board."""
    from slimgen.hw.lib.polynomial import live_adders
    rows = []
    for name, structured, flat in polynomial_units():
        for form, make in (("structured", structured), ("flat, shared", lambda: flat(True)),
                           ("flat, unshared", lambda: flat(False))):
            unit = make()
            r = {"unit": name, "form": form, "adders": live_adders(unit.net, unit.outputs),
                 "out_bits": unit.out_bits}
            if not args.no_synth:
                from slimgen.boards.unit_synth import synth_unit
                for board in args.boards.split(","):
                    tag = re.sub(r"[^A-Za-z0-9]+", "_", f"{name}_{form}")
                    rep = synth_unit(make(), board, Path(args.build) / "poly" / tag / board,
                                     reuse=args.quick)
                    r[board] = {"lc": rep.logic_cells, "wrapper_ffs": rep.wrapper_ffs,
                                "fmax": rep.fmax_mhz and round(rep.fmax_mhz, 1)}
            rows.append(r)
            line = f"{name:<40} {form:<15} adders {r['adders']:>4}"
            for b in ([] if args.no_synth else args.boards.split(",")):
                line += f"  | {b}: LC {r[b]['lc']} (wrapper FFs {r[b]['wrapper_ffs']}) " \
                        f"fmax {r[b]['fmax']}"
            print(line, flush=True)
    return rows


UP5K_DSPS = 8


def synthesize(make, lanes, board, build, args):
    """Out-of-context figures of one design on one board."""
    from slimgen.boards.unit_synth import synth_unit
    if args.quick and board == "ice40up5k" and lanes > UP5K_DSPS:
        # one DSP per lane: cannot fit; quick runs skip the (long) build
        return {"lc": None, "dsp": None, "bram": None, "fmax": None, "fits": False,
                "skipped": f"{lanes} multipliers > {UP5K_DSPS} DSPs"}
    rep = synth_unit(make(), board, build, reuse=args.quick)
    return {"lc": rep.logic_cells, "dsp": rep.dsps, "bram": rep.brams,
            "fmax": rep.fmax_mhz and round(rep.fmax_mhz, 1), "fits": rep.fits}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--boards", default="ice40up5k,ecp5-85f")
    ap.add_argument("--build", default="build/conv_hw")
    ap.add_argument("--quick", action="store_true",
                    help="reuse earlier builds whose Verilog is unchanged, and skip iCE40 builds "
                         "of designs with more multipliers than the UP5K has DSPs")
    ap.add_argument("--cases", default="",
                    help="comma-separated case numbers (0-3) to run, default all")
    ap.add_argument("--part", choices=["conv", "poly", "all"], default="all",
                    help="the engines table, the polynomial-unit table, or both")
    args = ap.parse_args(argv)
    poly = polynomial_table(args) if args.part in ("poly", "all") else None
    if args.part == "poly":
        print(json.dumps({"bench": "conv_hw", "polynomial": poly}))
        return
    rows = []
    pick = [int(c) for c in args.cases.split(",") if c.strip()] or range(len(CASES))
    for name, make, lanes in (CASES[c] for c in pick):
        alg = make()
        rng = np.random.default_rng(0)
        qmodel = cnn_for(alg, rng)
        x = rng.integers(0, 256, (IMAGES, qmodel.n_inputs))
        t0 = time.monotonic()
        _, r = simulate(qmodel, x, alg, lanes)
        r.update(design=name, theory=alg.alpha / (alg.m[0] * alg.m[1]),
                 sim_seconds=round(time.monotonic() - t0, 1))
        if not args.no_synth:
            for board in args.boards.split(","):
                r[board] = synthesize(lambda: CNN(qmodel, algorithm=alg, lanes=lanes), lanes,
                                      board, Path(args.build) / name.replace(" ", "_") / board,
                                      args)
        rows.append(r)
        print(_row(r, args), flush=True)
    goals = {
        "mults_equal_theory": all(abs(r["mults_per_output"] - r["theory"]) < 1e-9 for r in rows),
        "busy_at_least_90": all(r["busy"] >= 0.9 for r in rows),
    }
    print("goals:", goals)
    print(json.dumps({"bench": "conv_hw", "layer": {"c_in": CIN, "c_out": COUT, "size": SIZE},
                      "rows": rows, "polynomial": poly, "goals": goals}))


def _row(r, args):
    s = (f"{r['design']:<22} lanes {r['lanes']:>2}  mults/out {r['mults_per_output']:.3f} "
         f"(theory {r['theory']:.3f})  conv cycles/out {r['conv_cycles_per_output']:.2f}  "
         f"busy {100 * r['busy']:.1f}%  image cycles {r['image_cycles']:.0f} "
         f"(estimate {r['image_cycles_estimate']})")
    if not args.no_synth:
        for b in args.boards.split(","):
            q = r[b]
            s += (f"  | {b}: LC {q['lc']} DSP {q['dsp']} BRAM {q['bram']} "
                  f"fmax {q['fmax']} {'' if q['fits'] else '(does not fit)'}"
                  f"{' ' + q['skipped'] if q.get('skipped') else ''}")
    return s


if __name__ == "__main__":
    main()
