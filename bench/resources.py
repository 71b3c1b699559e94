# amaranth: UnusedElaboratable=no
"""Predicted against measured resources of whole board designs (issue 19).

For every design of :data:`DESIGNS` (the presets' engines on random weights, the compiler's
shared-array engine on fuzzed, example and data-set networks with the Winograd algorithms the
flow's board fit chose, the MNIST-1D CNN bench/benchmarks.py trained; several lane counts;
every engine kind in both splits on the iCEBreaker and the ULX3S-85F) the board top is built
with the YoWASP tools exactly as the flow's build stage builds it
(:func:`slimgen.boards.build.build_bitstream`) and its logic cells / LUTs, DSP blocks and block
RAMs are compared with :func:`slimgen.boards.resource_model.predict_top`, which reads the same
top's Amaranth netlist and never runs synthesis.

The logic coefficients are fitted (``--fit``) on the calibration designs only
(``split="cal"``) and then checked on the validation designs (``split="val"``), which never
enter the fit. Builds are cached in ``/tmp/slimgen_resources/<design>.json`` under a hash of
the design's netlist, so a changed design is built again.

Prints a table (with the model's carry-chain and flip-flop bits beside yosys' own count of the
synthesised cells), the error per family and split, then one JSON line.
Run: ``python bench/resources.py [--fit] [--only NAME ...] [--no-build] [--trained DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

CACHE = Path("/tmp/slimgen_resources")
#: where bench/benchmarks.py's runs are (``--trained``): the run:<...> designs' models
TRAINED = Path("runs/benchmarks")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "nets"


@dataclass(frozen=True)
class Design:
    """One design of the bench: a name, the board, how its network is made, the split."""
    name: str
    board: str
    kind: str         # mlp-dense, mlp-sparse, mlp-folded, cnn, lstm, gru, fuzz:<seed>, net:<name>,
    #                   run:<bench>/<seed>: the integer model a bench/benchmarks.py run trained
    lanes: int
    split: str        # "cal" (fits the coefficients) or "val" (only checked)
    #: the compiler's algorithm of each convolution that has Winograd candidates, in order
    #: (as the flow's board fit chose them); empty: the cost model's own choice
    algorithms: tuple = ()
    density: float = 1.0        # of a net:<name>'s random weights
    weight_bits: int = 6        # of the MLPs' and net:<file>'s random weights
    act_memory: str = "auto"    # the lanes' activation copies (cnn, lstm, gru): auto or bram


DESIGNS = (
    Design("mlp-dense-4", "icebreaker", "mlp-dense", 4, "cal"),
    Design("mlp-dense-2", "icebreaker", "mlp-dense", 2, "val"),
    Design("mlp-sparse-4", "icebreaker", "mlp-sparse", 4, "val"),
    Design("mlp-folded-6", "icebreaker", "mlp-folded", 3, "cal"),   # 2 layers × 3
    Design("cnn-4", "icebreaker", "cnn", 4, "cal"),
    Design("cnn-8", "icebreaker", "cnn", 8, "val"),
    Design("lstm-4", "icebreaker", "lstm", 4, "val"),
    Design("lstm-2", "icebreaker", "lstm", 2, "cal"),
    Design("fuzz1-4", "icebreaker", "fuzz:1", 4, "cal"),
    Design("fuzz2-3", "icebreaker", "fuzz:2", 3, "val"),
    Design("fuzz3-2", "icebreaker", "fuzz:3", 2, "cal"),
    Design("cnn3_dense2-4", "icebreaker", "net:cnn3_dense2", 4, "val",
           ("direct", "direct", "direct")),       # F(2×2, 3×3) does not fit the iCEBreaker
    Design("mlp-dense-8-ecp5", "ulx3s-85f", "mlp-dense", 8, "cal"),
    Design("cnn-4-ecp5", "ulx3s-85f", "cnn", 4, "val"),
    Design("lstm-4-ecp5", "ulx3s-85f", "lstm", 4, "cal"),
    Design("fuzz1-4-ecp5", "ulx3s-85f", "fuzz:1", 4, "val"),
    # issue 19, second round: every engine kind of the planner's designs in both splits
    Design("mnist1d-cnn-4", "icebreaker", "net:mnist1d-cnn", 4, "cal",
           ("direct", "F(2, 3) Toom-Cook", "F(2, 3) Toom-Cook"), 0.5),
    Design("cnn1d-4", "icebreaker", "net:cnn1d", 4, "val",
           ("F(2, 3) Toom-Cook", "F(2, 3) Toom-Cook")),
    # the MNIST-1D CNN as bench/benchmarks.py trains it (seeds 0 and 1), as the flow built it
    Design("mnist1d-cnn-s0", "icebreaker", "run:mnist1d-cnn/s0", 4, "val",
           ("direct", "F(2, 3) Toom-Cook", "F(2, 3) Toom-Cook")),
    Design("mnist1d-cnn-s1", "icebreaker", "run:mnist1d-cnn/s1", 4, "val",
           ("direct", "F(2, 3) Toom-Cook", "F(2, 3) Toom-Cook")),
    Design("mlp-folded-8-ecp5", "ulx3s-85f", "mlp-folded", 4, "cal", weight_bits=8),
    Design("cnn1d-4-ecp5", "ulx3s-85f", "net:cnn1d", 4, "cal",
           ("F(4, 3) Toom-Cook", "F(4, 3) Toom-Cook")),
    Design("mlp-dense-32-ecp5", "ulx3s-85f", "mlp-dense", 32, "val", weight_bits=8),
    Design("mlp-folded-6-ecp5", "ulx3s-85f", "mlp-folded", 3, "val"),
    Design("cnn-8-ecp5", "ulx3s-85f", "cnn", 8, "cal"),
    Design("fuzz3-2-ecp5", "ulx3s-85f", "fuzz:3", 2, "cal"),
    Design("cnn-16-ecp5", "ulx3s-85f", "cnn", 16, "val"),    # the planner's throughput CNN
    Design("lstm-2-ecp5", "ulx3s-85f", "lstm", 2, "val"),
    Design("mlp-folded-8", "icebreaker", "mlp-folded", 4, "val", weight_bits=8),  # the planner's
    # 2-D Winograd on the compiler: 16 running sums per lane
    Design("cnn3_dense2-4-ecp5", "ulx3s-85f", "net:cnn3_dense2", 4, "val",
           ("F(2×2, 3×3) Toom-Cook",) * 3),
    # the GRU on the recurrent engine (examples/nets/gru.json)
    Design("gru-2", "icebreaker", "gru", 2, "val"),
    Design("gru-4-ecp5", "ulx3s-85f", "gru", 4, "val"),
    # the lanes' activation copies in block RAM (act_memory, the planner's copies of stop 38)
    Design("gru-8-ecp5", "ulx3s-85f", "gru", 8, "val"),
    Design("gru-8-ecp5-bram", "ulx3s-85f", "gru", 8, "val", act_memory="bram"),
    Design("cnn-8-ecp5-bram", "ulx3s-85f", "cnn", 8, "val", act_memory="bram"),
)


def make_design(design):
    """``(qmodel, network_factory)`` of ``design`` (random weights from a fixed seed)."""
    from slimgen.sw.network import load_network, preset
    from slimgen.sw.random_network import random_int_network
    rng = np.random.default_rng(19)
    kind, lanes = design.kind, design.lanes
    if kind.startswith("mlp"):
        from slimgen.models import mlp
        engines = kind.split("-")[1]
        net = preset("mlp", sizes=(64, 32, 10), input_bits=5)
        q = random_int_network(rng, net, density=0.3 if engines == "sparse" else 1.0,
                               weight_bits=design.weight_bits, act_bits=8)
        cfg = SimpleNamespace(lanes=lanes, engines=engines, layout="rows")
        return q, lambda: mlp.make_network(q, cfg)
    if kind == "cnn":
        from slimgen.models import cnn
        from slimgen.sim.testing import random_cnn
        q = random_cnn(rng, (8, 8, 1), cnn.CHANNELS, 2, cnn.N_CLASSES)
        cfg = SimpleNamespace(lanes=lanes, engines="dense", layout="rows",
                              act_memory=design.act_memory)
        return q, lambda: cnn.make_network(q, cfg)
    if kind in ("lstm", "gru"):
        from slimgen.models import lstm
        net = preset("lstm", hidden=lstm.N_HIDDEN, input_bits=5, h_frac=7) if kind == "lstm" \
            else load_network(EXAMPLES / "gru.json")
        q = random_int_network(rng, net, density=0.3, weight_bits=6)
        return q, lambda: lstm.make_network(q, SimpleNamespace(lanes=lanes,
                                                              act_memory=design.act_memory))
    from slimgen.hw.compiler import choose, compile_network, options
    from slimgen.sw.network import DATA_PRESETS
    if kind.startswith("run:"):
        from slimgen.sw.artifact import load_int_network
        q = load_int_network(TRAINED / kind[4:] / "model.npz")[0]
    elif kind.startswith("fuzz:"):
        from slimgen.sim.fuzz import fuzz_case
        q = fuzz_case(int(kind[5:])).int_net
    elif kind[4:] in DATA_PRESETS:          # a data set's network, as the flow trains it
        q = random_int_network(rng, preset(kind[4:]), density=design.density, weight_bits=8,
                               act_bits=8)
    else:
        q = random_int_network(rng, load_network(EXAMPLES / f"{kind[4:]}.json"),
                               density=design.density, weight_bits=design.weight_bits,
                               act_bits=8)
    force = None
    if design.algorithms:
        sources = sorted(options(choose(q, lanes=lanes)[1]))
        force = {s: (a, None) for s, a in zip(sources, design.algorithms, strict=True)}
    return q, lambda: compile_network(q, lanes=lanes, force=force)


def netlist_of(design):
    """The Amaranth netlist of ``design``'s board top, as the build elaborates it."""
    from slimgen.boards.build import get_board
    from slimgen.boards.resource_model import top_netlist
    q, factory = make_design(design)
    return top_netlist(q, get_board(design.board), network_factory=factory)


def yosys_cells(folder):
    """yosys' own count of the synthesised cells (the last ``stat`` of ``slimgen.rpt`` in a
    build folder): ``{"lut", "carry", "ff"}`` (LUT4s, carry bits: ``SB_CARRY`` or two per
    ``CCU2C``, flip-flops), which the model's counts are checked against; None without it."""
    import re
    rpt = Path(folder) / "slimgen.rpt"
    if not rpt.exists():
        return None
    text = rpt.read_text(errors="replace")
    block = text[text.rfind("Printing statistics"):].split("design hierarchy")[0]
    cells = {}
    for m in re.finditer(r"^\s+(\d+)\s+(\S+)\s*$", block, re.M):
        cells[m.group(2)] = cells.get(m.group(2), 0) + int(m.group(1))
    return {"lut": cells.get("SB_LUT4", 0) + cells.get("LUT4", 0),
            "carry": cells.get("SB_CARRY", 0) + 2 * cells.get("CCU2C", 0),
            "ff": sum(v for k, v in cells.items() if k.startswith("SB_DFF")
                      or k == "TRELLIS_FF")}


def measure(design, netlist_key, *, build=True):
    """The build's ``{lc, dsp, bram, fmax, seconds}`` of ``design`` (cached), or None."""
    from slimgen.boards.build import DesignDoesNotFit, build_bitstream, get_board, \
        parse_log_utilisation
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{design.name}.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if cached.get("key") == netlist_key:
            if "yosys" not in cached:
                cached["yosys"] = yosys_cells(CACHE / design.name)
            return cached
    if not build:
        return None
    q, factory = make_design(design)
    board = get_board(design.board)
    t0 = time.monotonic()
    try:
        r = build_bitstream(q, design.board, CACHE / design.name, network_factory=factory,
                            check_timing=False)
        out = {"key": netlist_key, "lc": r.lc_used, "dsp": r.dsp_used, "bram": r.bram_used,
               "fmax": r.fmax_mhz, "seconds": r.seconds, "fits": True}
    except DesignDoesNotFit:
        # nextpnr stopped after packing: its utilisation table is the measurement
        util = parse_log_utilisation((CACHE / design.name / "slimgen.tim").read_text())
        get = lambda cell: util.get(cell, (0, 0))[0]  # noqa: E731
        out = {"key": netlist_key, "lc": get(board.lc_cell), "dsp": get(board.dsp_cell),
               "bram": get(board.bram_cell), "fmax": None,
               "seconds": round(time.monotonic() - t0, 1), "fits": False}
    out["yosys"] = yosys_cells(CACHE / design.name)
    path.write_text(json.dumps(out))
    return out


def netlist_key(netlist):
    """A short hash of a netlist's text: the cache key of its build."""
    return hashlib.sha256(str(netlist).encode()).hexdigest()[:16]


def collect(designs, *, build=True, log=print):
    """``[(design, netlist, measured or None)]``, building what the cache lacks, one design at
    a time."""
    rows = []
    for d in designs:
        if d.kind.startswith("run:") and not (TRAINED / d.kind[4:] / "model.npz").exists():
            log(f"{d.name}: skipped, no {TRAINED / d.kind[4:] / 'model.npz'} (--trained)")
            continue
        t0 = time.monotonic()
        netlist = netlist_of(d)
        key = netlist_key(netlist)
        got = measure(d, key, build=build)
        log(f"{d.name}: {'measured' if got else 'not built'} "
            f"({time.monotonic() - t0:.0f} s)")
        rows.append((d, netlist, got))
    return rows


# ------------------------------------------------------------------------------- the fit

#: Candidate models of the logic cells from the counts, each a list of feature groups (one
#: coefficient per group) and whether it has a constant term; chosen by leave-one-out error
#: on the calibration designs alone.
MODELS = {
    "one scale": ((("carry", "inc", "mux", "logic", "ff", "lutram", "rom"),), False),
    "lut/ff": ((("carry", "inc", "mux", "logic", "lutram", "rom"), ("ff",)), False),
    "carry/lut/ff": ((("carry", "inc"), ("mux", "logic", "lutram", "rom"), ("ff",)), False),
    "carry/inc/lut/ff": ((("carry",), ("inc",), ("mux", "logic", "lutram", "rom"), ("ff",)),
                         False),
    "carry/mux/logic/ff": ((("carry", "inc"), ("mux",), ("logic", "rom", "lutram"), ("ff",)),
                           False),
    "lut/ff + base": ((("carry", "inc", "mux", "logic", "lutram", "rom"), ("ff",)), True),
    "carry/lut/lutram/ff": ((("carry", "inc"), ("mux", "logic", "rom"), ("lutram",), ("ff",)),
                            False),
    # the carry chains' share taken from yosys (its carry cells against the counted bits),
    # the rest fitted to what remains of the measured figure
    "yosys carry + lut/ff": ((("mux", "logic", "rom", "lutram"), ("ff",)), False),
    "yosys carry + lut/lutram/ff": ((("mux", "logic", "rom"), ("lutram",), ("ff",)), False),
}
#: the models whose carry coefficient is yosys' carry cells per counted carry bit
YOSYS_CARRY = {"yosys carry + lut/ff", "yosys carry + lut/lutram/ff"}

#: Logic cells per counted bit inside a group before the fit (the group's coefficient
#: scales them): a carry-chain bit one cell, a 2:1 multiplexer bit half a LUT4 (two per LUT
#: with a select), a logic bit a third of a LUT4, a ROM in logic its LUT4s (``rom_luts``
#: counts them), a flip-flop one iCE40 logic cell (it packs with a LUT or takes a cell of its
#: own); an ECP5 flip-flop is a cell of its own (TRELLIS_FF, not counted) but some need a
#: LUT to reach it (nextpnr's feed-through LUTs: 348 of cnn1d-4-ecp5's 5,560), so the fit
#: may give it a small share; an ECP5 LUT RAM bit 6/64 (a 16 × 4 DPR16X4 is four RAM LUTs
#: and two RAMW LUTs in nextpnr's TRELLIS_COMB count).
PRIORS = {
    "ice40": {"carry": 1.0, "inc": 1.0, "mux": 0.5, "logic": 1 / 3, "rom": 1.0,
              "lutram": 1 / 32, "ff": 1.0},
    "ecp5": {"carry": 1.0, "inc": 1.0, "mux": 0.5, "logic": 1 / 3, "rom": 1.0,
             "lutram": 6 / 64, "ff": 1.0},
}


def _design_matrix(counts, groups, base, family):
    X = np.array([[sum(PRIORS[family][f] * c.get(f, 0) for f in g) for g in groups]
                  for c in counts], dtype=float)
    return np.hstack([X, np.ones((len(counts), 1))]) if base else X


def _nnls(X, y):
    """Non-negative least squares (small problems: every subset of active columns)."""
    from itertools import combinations
    best = (np.inf, np.zeros(X.shape[1]))
    for k in range(1, X.shape[1] + 1):
        for cols in combinations(range(X.shape[1]), k):
            w, *_ = np.linalg.lstsq(X[:, cols], y, rcond=None)
            if (w >= 0).all():
                full = np.zeros(X.shape[1])
                full[list(cols)] = w
                err = float(((X @ full - y) ** 2).sum())
                if err < best[0]:
                    best = (err, full)
    return best[1]


def fit(counts, measured, model, family):
    """The coefficients (per feature, and ``base``) of ``model`` fitted to ``measured``."""
    groups, base = MODELS[model]
    measured = np.array(measured, dtype=float)
    carry = 0.0
    if model in YOSYS_CARRY:      # yosys' carry cells per counted bit (``_ycarry``: calibrate)
        bits = np.array([c.get("carry", 0) + c.get("inc", 0) for c in counts], dtype=float)
        carry = float(sum(c["_ycarry"] for c in counts) / max(1.0, bits.sum()))
        measured = measured - carry * bits
    w = _nnls(_design_matrix(counts, groups, base, family), measured)
    coefficients = {f: 0.0 for f in PRIORS[family]}
    if model in YOSYS_CARRY:
        coefficients["carry"] = coefficients["inc"] = round(carry, 4)
    for g, wg in zip(groups, w):
        for f in g:
            coefficients[f] = round(float(wg * PRIORS[family][f]), 4)
    coefficients["base"] = round(float(w[-1]), 1) if base else 0.0
    return coefficients


def leave_one_out(counts, measured, model, family):
    """Largest relative error over the designs, each predicted by a fit on the others."""
    from slimgen.boards.resource_model import FEATURES
    worst = 0.0
    for i in range(len(counts)):
        rest = [k for k in range(len(counts)) if k != i]
        if len(rest) < len(MODELS[model][0]) + MODELS[model][1]:
            return None
        c = fit([counts[k] for k in rest], [measured[k] for k in rest], model, family)
        pred = c["base"] + sum(c[f] * counts[i].get(f, 0) for f in FEATURES)
        worst = max(worst, abs(pred - measured[i]) / measured[i])
    return worst


def _dropped(counts, measured, model, family):
    """The feature groups of ``model`` present in the designs that its fit prices at 0."""
    groups, _ = MODELS[model]
    c = fit(counts, measured, model, family)
    return ["/".join(g) for g in groups
            if any(cc.get(f, 0) for cc in counts for f in g) and not any(c[f] for f in g)]


def calibrate(rows, family, *, log=print):
    """The model and coefficients for ``family`` chosen and fitted on the calibration rows."""
    from slimgen.boards.resource_model import predict
    cal = [(d, n, m) for d, n, m in rows if m and d.split == "cal" and _family(d) == family]
    counts = [dict(predict(n, family).counts, _ycarry=(m.get("yosys") or {}).get("carry", 0))
              for _, n, m in cal]
    measured = [m["lc"] for _, _, m in cal]
    scores = {name: leave_one_out(counts, measured, name, family) for name in MODELS}
    dropped = {name: _dropped(counts, measured, name, family) for name in MODELS} if cal else {}
    for name, s in scores.items():
        why = f" (rejected: fits {', '.join(dropped[name])} at 0)" if dropped.get(name) else ""
        log(f"  {family} {name:<20} leave-one-out worst error on {len(cal)} calibration "
            f"designs: {'-' if s is None else f'{100 * s:.1f}%'}{why}")
    # a model that prices a kind of hardware the designs have at nothing has not found what
    # it costs, only traded it against a correlated count (carry chains against flip-flops)
    usable = {k: v for k, v in scores.items() if v is not None and cal and not dropped[k]}
    if not usable:
        log(f"  {family}: too few calibration designs built; the model's own coefficients")
        from slimgen.boards.resource_model import COEFFICIENTS
        return None, COEFFICIENTS[family]
    model = min(usable, key=usable.get)
    return model, fit(counts, measured, model, family)


def _family(design):
    from slimgen.boards.build import get_board
    return get_board(design.board).family


def table(rows, coefficients):
    """Printed rows and the JSON records of predicted against measured; ``carry c/y`` and
    ``FF c/y`` set the model's carry-chain bits (``carry`` + ``inc``) and flip-flop bits
    beside yosys' own count of the synthesised design (:func:`yosys_cells`)."""
    from slimgen.boards.resource_model import predict
    records = []
    print(f"{'design':<18} {'board':<11} {'split':<5} {'LC pred':>8} {'LC meas':>8} "
          f"{'error':>7} {'DSP p/m':>8} {'BRAM p/m':>9} {'fmax':>6} {'carry c/y':>10} "
          f"{'FF c/y':>10}")
    for d, n, m in rows:
        fam = _family(d)
        p = predict(n, fam, coefficients=coefficients[fam])
        rec = {"design": d.name, "board": d.board, "family": fam, "split": d.split,
               "lc_estimate": p.lc, "dsp_estimate": p.dsp, "bram_estimate": p.bram,
               "counts": p.counts}
        if m:
            rec.update(lc_used=m["lc"], dsp_used=m["dsp"], bram_used=m["bram"],
                       fmax_mhz=m["fmax"], lc_error=round((p.lc - m["lc"]) / m["lc"], 4),
                       yosys=m.get("yosys"))
        records.append(rec)
        fmax = f"{m['fmax']:>6.1f}" if m and m.get("fmax") else "no fit"
        y = (m or {}).get("yosys") or {}
        check = (f"{p.counts['carry'] + p.counts['inc']:>5}/{y.get('carry', '-'):<4} "
                 f"{p.counts['ff']:>5}/{y.get('ff', '-'):<4}")
        meas = (f"{m['lc']:>8} {100 * rec['lc_error']:>+6.1f}% {p.dsp:>3}/{m['dsp']:<4} "
                f"{p.bram:>4}/{m['bram']:<4} {fmax:>6} {check}") if m else "not built"
        print(f"{d.name:<18} {d.board:<11} {d.split:<5} {p.lc:>8} {meas}")
    return records


def summarise(records):
    """Per family and split: worst and mean |LC error|, DSP and BRAM exact counts."""
    out = {}
    for family in ("ice40", "ecp5"):
        for split in ("cal", "val"):
            rs = [r for r in records if r["split"] == split and r["family"] == family
                  and "lc_used" in r]
            if not rs:
                continue
            errs = [abs(r["lc_error"]) for r in rs]
            out[f"{family} {split}"] = {
                "designs": len(rs), "lc_worst_error": round(max(errs), 4),
                "lc_mean_error": round(float(np.mean(errs)), 4),
                "lc_within_15pct": sum(e <= 0.15 for e in errs),
                "dsp_exact": sum(r["dsp_estimate"] == r["dsp_used"] for r in rs),
                "bram_exact": sum(r["bram_estimate"] == r["bram_used"] for r in rs)}
    return out


def main(argv=None):
    global TRAINED
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--no-build", action="store_true", help="use cached builds only")
    p.add_argument("--fit", action="store_true",
                   help="fit the coefficients on the calibration designs (else the model's "
                        "own, slimgen.boards.resource_model.COEFFICIENTS)")
    p.add_argument("--only", nargs="*", help="design names")
    p.add_argument("--trained", default=str(TRAINED),
                   help=f"bench/benchmarks.py's runs folder, whose trained models the run:... "
                        f"designs build (default {TRAINED})")
    args = p.parse_args(argv)
    TRAINED = Path(args.trained)
    from slimgen.boards.resource_model import COEFFICIENTS
    designs = [d for d in DESIGNS if not args.only or d.name in args.only]
    t0 = time.monotonic()
    rows = collect(designs, build=not args.no_build, log=lambda s: print(s, file=sys.stderr))
    coefficients = dict(COEFFICIENTS)
    chosen = {}
    if args.fit:
        for family in ("ice40", "ecp5"):
            model, c = calibrate(rows, family)
            chosen[family] = model
            coefficients[family] = c
            print(f"{family}: {model}: {c}")
    records = table(rows, coefficients)
    split = summarise(records)
    for name, s in split.items():
        print(f"{name}: {s['designs']} designs, LC worst {100 * s['lc_worst_error']:.1f}%, "
              f"mean {100 * s['lc_mean_error']:.1f}%, within 15%: {s['lc_within_15pct']}, "
              f"DSP exact {s['dsp_exact']}, BRAM exact {s['bram_exact']}")
    print(json.dumps({"bench": "resources", "designs": records, "splits": split,
                      "models": chosen, "coefficients": coefficients,
                      "seconds": round(time.monotonic() - t0, 1)}))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
