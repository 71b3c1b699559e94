"""Benchmark: Winograd convolution engines against the direct engine at equal throughput.

For each algorithm (F(2×2,3×3), F(4×4,3×3) Toom-Cook and CRT, F(6×6,3×3)) and for the direct
engine at the same (or the nearest lower) throughput, on one random layer (Cin × H × W → Cout,
3×3, padding 1, outputs a multiple of every tile):

* multiplications per output and input channel, counted in simulation (Amaranth simulator, the
  engine's ``active`` port) against the theory (α²/m²; 9 for direct);
* cycles per output (one frame, first input to last output);
* multiplier busy: products / (lanes · cycles) between the first and the last product;
* logic cells, DSPs, block RAM and fmax on iCE40UP5K and ECP5-85F (:func:`boards.unit_synth`,
  out of context).

Goals: multiplications per output equal to the algorithm's count; busy ≥ 90% in steady state;
F(2×2,3×3) with fewer DSPs than direct at equal throughput. Prints a table, then one JSON line.

    python bench/conv_hw.py [--no-synth] [--quick] [--part conv|poly|all]
                            [--boards ice40up5k,ecp5-85f] [--build build/conv_hw]
"""

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

from slimgen.hw.conv_layer import ConvLayer
from slimgen.sim.testing import random_conv_layer
from slimgen.sw.golden import conv
from slimgen.sw.winograd import winograd_2d

CIN, COUT, SIZE = 4, 8, 12
# (name, algorithm factory, lanes, direct lanes at equal or nearest lower throughput)
CASES = [
    ("F(2x2,3x3)", lambda: winograd_2d(2, 3), 4, 9),
    ("F(4x4,3x3) Toom-Cook", lambda: winograd_2d(4, 3), 9, 36),
    ("F(4x4,3x3) CRT", lambda: winograd_2d(4, 3, "crt"), 7, 18),
    ("F(6x6,3x3)", lambda: winograd_2d(6, 3), 8, 36),
]


def simulate(layer, x, **kw):
    """One frame through ``ConvLayer`` on Amaranth's simulator, checked against the golden model.

    Returns the design and its figures: products per output and input channel, cycles per
    output (first input to last output), and the multipliers' busy fraction between the first
    and the last product (the steady state of one frame)."""
    from amaranth.sim import Simulator
    dut = ConvLayer(layer, height=SIZE, width=SIZE, **kw)
    stream = x.transpose(1, 2, 0).reshape(-1)          # (H, W, Cin) raster order
    expected = conv(x.transpose(1, 2, 0)[None], layer).reshape(-1)
    out, trace = [], []

    async def drive(ctx):
        for v in stream:
            ctx.set(dut.i.payload, int(v))
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def watch(ctx):
        ctx.set(dut.o.ready, 1)
        while len(out) < expected.size:
            *_, active, valid, payload = await ctx.tick().sample(dut.active, dut.o.valid,
                                                                 dut.o.payload)
            trace.append(active)
            if valid:
                out.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(drive)
    sim.add_testbench(watch)
    sim.run()
    got = np.array([int(v) & ((1 << layer.out_bits) - 1) for v in out])
    if not np.array_equal(got, expected):
        raise AssertionError(f"{kw}: hardware differs from the golden model")
    t = np.array(trace)
    nz = np.flatnonzero(t)
    window = t[nz[0]:nz[-1] + 1]
    outputs = dut.out_h * dut.out_w * layer.c_out
    products = int(t.sum())
    return dut, {
        "lanes": dut.lanes,
        "mults_per_output": products / (outputs * layer.c_in),
        "cycles_per_output": len(t) / outputs,
        "busy": float(window.sum() / (dut.lanes * len(window))),
        "products": products, "cycles": len(t),
    }


def polynomial_units():
    """``(name, structured unit, flat units)``: the residue tree, the CRT tree and the folded
    2-D input transform of F(4×4,3×3) CRT, each against the flat matrix with and without
    sub-expression sharing."""
    from amaranth.hdl import signed, unsigned

    from slimgen.hw.polynomial import CrtUnit, FoldedTransform2D, FoldUnit
    from slimgen.hw.transform import Transform2D
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
    from slimgen.hw.polynomial import live_adders
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


def synthesize(layer, kw, board, build, args, done):
    """Out-of-context figures of one design on one board (``done``: designs already built in
    this run, so the direct engine shared by two rows is built once)."""
    from slimgen.boards.unit_synth import synth_unit
    key = (kw["algorithm"] and kw["algorithm"].name, kw["lanes"], board)
    if key in done:
        return done[key]
    if args.quick and board == "ice40up5k" and kw["lanes"] > UP5K_DSPS:
        # one DSP per lane: cannot fit; quick runs skip the (long) build
        q = {"lc": None, "dsp": None, "bram": None, "fmax": None, "fits": False,
             "skipped": f"{kw['lanes']} multipliers > {UP5K_DSPS} DSPs"}
    else:
        rep = synth_unit(ConvLayer(layer, height=SIZE, width=SIZE, **kw), board, build,
                         reuse=args.quick)
        q = {"lc": rep.logic_cells, "dsp": rep.dsps, "bram": rep.brams,
             "fmax": rep.fmax_mhz and round(rep.fmax_mhz, 1), "fits": rep.fits}
    done[key] = q
    return q


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
    rng = np.random.default_rng(0)
    layer = random_conv_layer(rng, CIN, COUT, 3)
    x = rng.integers(0, 256, (CIN, SIZE, SIZE))
    rows, done = [], {}
    pick = [int(c) for c in args.cases.split(",") if c.strip()] or range(len(CASES))
    for name, make, lanes, d_lanes in (CASES[c] for c in pick):
        alg = make()
        theory = alg.alpha / (alg.m[0] * alg.m[1])
        for kind, kw, th in ((name, dict(algorithm=alg, lanes=lanes), theory),
                             (f"direct vs {name}", dict(algorithm=None, lanes=d_lanes, tile=2),
                              9.0)):
            t0 = time.monotonic()
            dut, r = simulate(layer, x, **kw)
            r.update(design=kind, theory=th, throughput=dut.lanes / th,
                     sim_seconds=round(time.monotonic() - t0, 1))
            if not args.no_synth:
                for board in args.boards.split(","):
                    folder = kind if alg is kw["algorithm"] else f"direct_{kw['lanes']}lanes"
                    r[board] = synthesize(layer, kw, board, Path(args.build) /
                                          folder.replace(" ", "_") / board, args, done)
            rows.append(r)
            print(_row(r, args), flush=True)
    w = {r["design"]: r for r in rows}
    f2, d2 = w.get("F(2x2,3x3)"), w.get("direct vs F(2x2,3x3)")
    goals = {
        "mults_equal_theory": all(abs(r["mults_per_output"] - r["theory"]) < 1e-9 for r in rows),
        "busy_at_least_90": all(r["busy"] >= 0.9 for r in rows),
        "f2x2_fewer_dsps_than_direct": (None if args.no_synth or f2 is None else
                                        all(f2[b]["dsp"] < _dsps(d2, b)
                                            for b in args.boards.split(","))),
        "f2x2_lanes_vs_direct": None if f2 is None else [f2["lanes"], d2["lanes"]],
    }
    print("goals:", goals)
    print(json.dumps({"bench": "conv_hw", "layer": {"c_in": CIN, "c_out": COUT, "size": SIZE},
                      "rows": rows, "polynomial": poly, "goals": goals}))


def _dsps(r, board):
    """DSPs of a row; a skipped build counts its lower bound, one DSP per multiplier."""
    return r[board]["dsp"] if r[board]["dsp"] is not None else r["lanes"]


def _row(r, args):
    s = (f"{r['design']:<32} lanes {r['lanes']:>2}  mults/out {r['mults_per_output']:.3f} "
         f"(theory {r['theory']:.3f})  cycles/out {r['cycles_per_output']:.2f}  "
         f"busy {100 * r['busy']:.1f}%")
    if not args.no_synth:
        for b in args.boards.split(","):
            q = r[b]
            s += (f"  | {b}: LC {q['lc']} DSP {q['dsp']} BRAM {q['bram']} "
                  f"fmax {q['fmax']} {'' if q['fits'] else '(does not fit)'}"
                  f"{' ' + q['skipped'] if q.get('skipped') else ''}")
    return s


if __name__ == "__main__":
    main()
