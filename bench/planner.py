"""The planner against today's designs (issue 19): throughput on the ULX3S-85F, latency on the
iCEBreaker, and the resource model's prediction against nextpnr, on every design built.

    python bench/planner.py [--only mlp,cnn,...] [--runs DIR] [--fresh] [--epochs 20]

For each network (the three presets on the digits, a description the compiler takes and the
GRU description on the recurrent engine), two runs through the whole flow from nothing, seed 0,
Verilator on every test image::

    python -m slimgen flow --run <runs>/<name>-<variant> <network> --board B [--objective O]

``today``: the run's default lanes and engine; ``planned``: ``--objective throughput`` on the
ULX3S-85F, ``--objective latency`` on the iCEBreaker. The interval between results and the
latency are measured by the verify stage (back to back, on Verilator); fmax, LUTs / logic cells,
DSP blocks and block RAMs by nextpnr. Throughput is ``fmax / interval`` and its bound
``fmax / max(multiplications per inference / multipliers, input words)`` (one input word a
cycle). A final JSON line holds every row. Run folders are kept (``--fresh`` starts again).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import slimgen  # noqa: F401  (before NumPy: pins its kernels)

HERE = Path(__file__).resolve().parent
#: name: (flow options of the network, input words per inference)
NETWORKS = {
    "mlp": (["--model", "mlp"], 64),
    "cnn": (["--model", "cnn"], 64),
    # the CNN preset with lanes free to choose (balanced sparsity ties them to its groups)
    "cnn-mag": (["--model", "cnn", "--method", "magnitude", "--sparsity", "0.75"], 64),
    "lstm": (["--model", "lstm", "--method", "lstm_gates"], 64),
    "cnn1d": (["--net", str(HERE.parent / "examples" / "nets" / "cnn1d.json")], 64),
    # the GRU on the recurrent engine (its element-wise unit's multipliers count)
    "gru": (["--net", str(HERE.parent / "examples" / "nets" / "gru.json")], 64),
    # MNIST 28×28: 410 kbit of 8-bit weights, over the UP5K's 120 kbit of block RAM
    "mnist-mlp": (["--model", "mlp", "--data", "mnist5k", "--sizes", "784,64,10"], 784),
}
#: board: (the planned run's objective, the goal's words)
BOARDS = {"ulx3s-85f": ("throughput", "inferences/s ≥ 80 % of the bound, with half the "
                                      "multipliers where there is the work"),
          "icebreaker": ("latency", "latency no worse than today")}


def run_flow(name, board, objective, runs, epochs):
    """One run of ``name`` on ``board`` (``objective`` None: today's design); its figures."""
    options, words = NETWORKS[name]
    run = runs / f"{name}-{board}-{objective or 'today'}"
    cmd = [sys.executable, "-m", "slimgen", "flow", "--run", str(run), *options,
           "--board", board, "--sim", "verilator", "--epochs", str(epochs), "--quiet"]
    if objective:
        cmd += ["--objective", objective]
    env = dict(os.environ, AMARANTH_USE_YOSYS=os.environ.get("AMARANTH_USE_YOSYS", "builtin"))
    t = time.monotonic()
    log = run.with_name(run.name + ".log")
    with open(log, "w", encoding="utf-8") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                            check=False).returncode
    seconds = time.monotonic() - t
    if rc != 0:
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-1:]
        return {"name": name, "board": board, "variant": objective or "today", "error":
                tail[0] if tail else f"exit {rc}", "seconds": round(seconds)}
    read = lambda stage: json.loads((run / f"{stage}.json").read_text())  # noqa: E731
    gen, ver, build, plan = read("generate"), read("verify"), read("build"), read("plan")
    fmax = build["fmax_mhz"] * 1e6
    per_result = max(gen["mults_per_inference"] / gen["multipliers"], words)
    interval = ver["cycles_between_inferences"]
    return {
        "name": name, "board": board, "variant": objective or "today",
        "engine": gen["engines"][0] + (f" ×{gen['copies']}" if gen.get("copies", 1) > 1
                                       else ""),
        "copies": gen.get("copies", 1), "lanes": gen["lanes"],
        "multipliers": gen["multipliers"],
        "mults_per_inference": gen["mults_per_inference"], "input_words": words,
        "bit_exact": ver["hw_bit_exact"], "images": ver["images_verified"],
        "latency": ver["cycles_per_inference"], "interval": interval,
        "cycles_predicted": gen["cycles_estimate"],
        # a pipeline's exact interval, else one inference at a time: at most its cycles
        "interval_predicted": plan["totals"].get("interval_estimate",
                                                 plan["totals"]["interval_at_most"]),
        "fmax_mhz": build["fmax_mhz"], "inferences_per_second": fmax / interval,
        "bound_per_second": fmax / per_result,
        "of_bound": (fmax / interval) / (fmax / per_result),
        "lc": build["lc_used"], "lc_predicted": build["lc_estimate"], "dsp": build["dsp_used"],
        "dsp_predicted": build["dsp_estimate"], "dsp_total": build["dsp_total"],
        "bram": build["bram_used"], "bram_predicted": build["bram_estimate"],
        "bram_total": build["bram_total"], "weight_memory": gen["weight_memory"],
        "weight_bits": 8 * gen["weight_bytes"], "spram": build.get("spram_used", 0),
        "spram_predicted": build.get("spram_estimate"), "seconds": round(seconds)}


def table(rows):
    head = (f"{'network':<9} {'board':<10} {'design':<10} {'engine':<28} {'mult':>4} "
            f"{'exact':>5} {'latency':>7} {'interval':>8} {'(pred)':>7} {'fmax':>5} "
            f"{'inf/s':>8} {'of bound':>8} {'LC/LUT':>6} {'(pred)':>6} {'DSP':>7} {'BRAM':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['name']:<9} {r['board']:<10} {r['variant']:<10} failed: "
                         f"{r['error']}")
            continue
        lines.append(
            f"{r['name']:<9} {r['board']:<10} {r['variant']:<10} {r['engine'][:28]:<28} "
            f"{r['multipliers']:>4} {'yes' if r['bit_exact'] else 'NO':>5} {r['latency']:>7} "
            f"{r['interval']:>8.0f} {r['interval_predicted']:>7} {r['fmax_mhz']:>5.1f} "
            f"{r['inferences_per_second']:>8.0f} {r['of_bound']:>8.0%} {r['lc']:>6} "
            f"{r['lc_predicted']:>6} {r['dsp']:>3}/{r['dsp_predicted']:<3} "
            f"{r['bram']:>3}/{r['bram_predicted']:<3}"
            + (f" SPRAM {r['spram']}/{r['spram_predicted']}" if r["weight_memory"] == "spram"
               else ""))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(NETWORKS), help="networks, comma-separated")
    ap.add_argument("--boards", default=",".join(BOARDS), help="boards, comma-separated")
    ap.add_argument("--runs", default="runs/planner", help="folder of the run folders")
    ap.add_argument("--epochs", type=int, default=20, help="training epochs (default 20)")
    ap.add_argument("--fresh", action="store_true", help="remove earlier run folders first")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n]
    boards = [b for b in args.boards.split(",") if b]
    bad = [n for n in names if n not in NETWORKS] + [b for b in boards if b not in BOARDS]
    if bad:
        print(f"unknown: {', '.join(bad)}; networks: {', '.join(NETWORKS)}; boards: "
              f"{', '.join(BOARDS)}", file=sys.stderr)
        return 2
    runs = Path(args.runs)
    if args.fresh and runs.exists():
        shutil.rmtree(runs)
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for board in boards:
        objective, _ = BOARDS[board]
        for name in names:
            for variant in (None, objective):
                print(f"{name} on {board}, {variant or 'today'} ...", file=sys.stderr,
                      flush=True)
                rows.append(run_flow(name, board, variant, runs, args.epochs))
    print(table(rows))
    goals = []
    for board in boards:
        objective, words = BOARDS[board]
        for name in names:
            today, planned = [next((r for r in rows if r["name"] == name and r["board"] == board
                                    and r["variant"] == v), {}) for v in ("today", objective)]
            if "error" in today or "error" in planned:
                goals.append({"network": name, "board": board, "goal": words, "met": None})
                continue
            if objective == "throughput":
                # the network has the work for half the board's multipliers when, on them,
                # its multiplications and not its input words would set the pace
                half = planned["dsp_total"] / 2
                has_work = planned["mults_per_inference"] / half > planned["input_words"]
                met = planned["of_bound"] >= 0.8 and (not has_work
                                                      or planned["multipliers"] >= half)
                why = (f"{planned['of_bound']:.0%} of the bound on {planned['multipliers']} "
                       f"multipliers" + (f"; the network has the work for {half:.0f}"
                                         if has_work else "; input-bound at half the board"))
            else:
                met = planned["latency"] <= today["latency"]
                why = f"{planned['latency']} cycles against {today['latency']}"
            goals.append({"network": name, "board": board, "goal": words, "met": met,
                          "why": why})
        # weights the block RAMs cannot hold, in SPRAM: built and bit-exact
        for r in rows:
            if r["board"] == board and r.get("weight_memory") == "spram":
                goals.append({
                    "network": r["name"], "board": board,
                    "goal": "weights over the block RAM fit through SPRAM, bit-exact",
                    "met": r["bit_exact"] and r["spram"] > 0,
                    "why": f"{r['variant']}: {r['weight_bits']:,} weight bits in {r['spram']} "
                           f"SPRAMs, {r['bram']} of {r['bram_total']} block RAMs, "
                           f"{r['images']} images {'bit-exact' if r['bit_exact'] else 'NOT exact'}"})
    exact = [r for r in rows if "error" not in r]
    print("\ngoals:")
    for g in goals:
        verdict = {True: "met", False: "missed", None: "not measured"}[g["met"]]
        print(f"  {g['network']:<9} {g['board']:<10} {g['goal']:<36} {verdict}"
              + (f" ({g['why']})" if g.get("why") else ""))
    print(json.dumps({"bench": "planner", "rows": rows, "goals": goals,
                      "dsp_exact": all(r["dsp"] == r["dsp_predicted"] for r in exact),
                      "bram_exact": all(r["bram"] == r["bram_predicted"] for r in exact),
                      "lc_worst_error": max((abs(r["lc_predicted"] / r["lc"] - 1) for r in exact),
                                            default=None)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
