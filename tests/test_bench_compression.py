"""bench/compression.py's summary and goals: per-seed losses kept in seed order, and the standard
error of every points-lost goal (for balanced sparsity, of the per-seed difference from
self-pruning), so that a reader can tell a miss by noise from a miss by a margin."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture(scope="module")
def comp():
    sys.path.insert(0, str(BENCH))   # the bench imports its sibling compression_balanced
    try:
        spec = importlib.util.spec_from_file_location("bench_compression",
                                                      BENCH / "compression.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


def _row(seed, method, target, test, sparsity=None):
    return {"seed": seed, "model": "mlp", "method": method, "target": target,
            "sparsity": target if sparsity is None else sparsity, "test": test, "val": test}


def test_standard_error_over_seeds(comp):
    assert comp.standard_error([1.0, 3.0]) == 1.0          # std 1.414 / √2
    assert comp.standard_error([0.5, 0.5, 0.5]) == 0.0
    assert comp.standard_error([2.0]) is None


def test_summary_keeps_losses_per_seed_and_goals_carry_paired_errors(comp):
    rows = []
    for seed, dense, sp, rows4 in ((1, 0.98, 0.97, 0.96), (0, 0.97, 0.95, 0.95)):
        rows += [_row(seed, "dense", 0.0, dense, 0.0), _row(seed, "self_prune", 0.95, sp),
                 {**_row(seed, "balanced_rows_4", 0.95, rows4), "exact_balance": True}]
    summary = comp.summarize(rows)
    sp = comp._find(summary, "mlp", "self_prune", 0.95)
    assert sp["seeds"] == [0, 1]                           # seed order, whatever the row order
    assert sp["lost_seeds"] == pytest.approx([2.0, 1.0])
    assert sp["lost"] == pytest.approx(1.5)
    goals = {g["goal"]: g for g in comp.goals(summary)}
    g = goals["MLP self-prune 95% zero, lost <= 1.0"]
    assert (g["measured"], g["se"], g["met"]) == (1.5, 0.5, False)
    # balanced rows lose 2.0 and 2.0: paired differences 0.0 and 1.0 from self-pruning
    g = goals["balanced rows G=4 at 95%: exact, lost vs self-prune <= 0.5"]
    assert (g["measured"], g["se"], g["met"]) == (0.5, 0.5, True)
