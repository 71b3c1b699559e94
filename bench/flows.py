"""The whole flow for every model kind on its default board, and the LSTM on the iCEBreaker:
accuracy at every stage, bit-exactness, resources, fmax, and latency against the bound set by
the multipliers in use (multiplications after Winograd and sparsity over the multipliers).

    python bench/flows.py [--runs runs/bench] [--only mlp,cnn,lstm,lstm-ice] [--fresh]

Each flow runs in ``<runs>/<name>`` through ``slimgen flow`` (stages already done with the same
settings are kept unless ``--fresh``). Needs the build tools of ``make setup`` (YoWASP yosys and
nextpnr, Icarus, Verilator). Prints a table and a final JSON line.
"""

import argparse
import json
import shutil
import time
from pathlib import Path

from slimgen.cli import main as slimgen

FLOWS = {
    # name: slimgen flow options (each kind's defaults do the rest)
    "mlp": [],
    "cnn": ["--model", "cnn"],
    "lstm": ["--model", "lstm", "--method", "lstm_gates"],
    "lstm-ice": ["--model", "lstm", "--method", "lstm_gates", "--board", "icebreaker",
                 "--lanes", "4"],
}
KEYS = ("board", "float_accuracy", "compressed_accuracy", "int_accuracy", "hw_accuracy",
        "images_verified", "hw_bit_exact", "lc_used", "lc_total", "dsp_used", "dsp_total",
        "bram_used", "bram_total", "fmax_mhz", "multipliers", "cycles_per_inference",
        "cycles_lower_bound", "latency_over_bound", "inferences_per_second")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default="runs/bench", help="folder of the run folders")
    ap.add_argument("--only", default=",".join(FLOWS), help="flows to run, comma-separated")
    ap.add_argument("--fresh", action="store_true", help="remove earlier run folders first")
    a = ap.parse_args(argv)
    names = a.only.split(",")
    unknown = [n for n in names if n not in FLOWS]
    if unknown:
        ap.error(f"unknown flows {unknown}; choose from {', '.join(FLOWS)}")
    rows = {}
    for name in names:
        run = Path(a.runs) / name
        if a.fresh and run.exists():
            shutil.rmtree(run)
        t = time.monotonic()
        rc = slimgen(["flow", "--run", str(run), "--quiet", *FLOWS[name]])
        summary = json.loads((run / "summary.json").read_text()) if rc == 0 else {}
        rows[name] = {"rc": rc, "seconds": round(time.monotonic() - t, 1),
                      **{k: summary.get(k) for k in KEYS}}
    print()
    print(f"{'flow':9} {'board':11} {'float':>6} {'comp':>6} {'int':>6} {'hw':>6} {'exact':>9} "
          f"{'LC/LUT':>12} {'DSP':>7} {'BRAM':>8} {'MHz':>5} {'mult':>4} {'cycles':>6} "
          f"{'bound':>6} {'ratio':>6} {'s':>5}")
    pct = lambda v: f"{100 * v:6.2f}" if v is not None else "     -"  # noqa: E731
    for name, r in rows.items():
        if r["rc"]:
            print(f"{name:9} failed (exit {r['rc']}, see {Path(a.runs) / name})")
            continue
        print(f"{name:9} {r['board']:11} {pct(r['float_accuracy'])} {pct(r['compressed_accuracy'])} "
              f"{pct(r['int_accuracy'])} {pct(r['hw_accuracy'])} "
              f"{r['images_verified']:>4} {'yes' if r['hw_bit_exact'] else 'NO':>4} "
              f"{r['lc_used']:>5}/{r['lc_total']:<6} {r['dsp_used']:>3}/{r['dsp_total']:<3} "
              f"{r['bram_used']:>3}/{r['bram_total']:<4} {r['fmax_mhz']:5.1f} "
              f"{r['multipliers']:>4} {r['cycles_per_inference']:>6} "
              f"{r['cycles_lower_bound']:>6} {r['latency_over_bound']:6.3f} {r['seconds']:5.0f}")
    print(json.dumps({"bench": "flows", "flows": rows}))
    return 0 if all(r["rc"] == 0 for r in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
