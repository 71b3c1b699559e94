"""bench/normalization.py's grid and its replay of an earlier run's tuning (``--tuning``): the
picks of a confirmation run must come from the same fold figures, and a log made with other
settings must be refused, not silently reused."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "normalization.py"


@pytest.fixture(scope="module")
def norm():
    spec = importlib.util.spec_from_file_location("bench_normalization", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SETTINGS = {"where": "pre", "affine": True, "project": False, "momentum": 0.0, "running": "both"}
POINTS = [("deep", "none", 8, 1e-3, None, False, False, None),
          ("deep", "method1", 8, 1e-2, 0.003, True, True, 0.0)]


def _log(tmp_path, tuning, folds=3, **settings):
    head = {"bench": "normalization", **SETTINGS, **settings, "folds": folds}
    path = tmp_path / "run.log"
    path.write_text("tuning ...\n  deep batch 8 ...\n" + json.dumps({**head, "tuning": tuning})
                    + "\n", encoding="utf-8")
    return path


def _entry(point, ces, accs):
    m, v, b, lr, lam, d, st, rho = point
    return {"model": m, "variant": v, "batch": b, "lr": lr, "lambda0": lam, "data_init": d,
            "stable": st, "momentum": rho, "val_ces": ces, "vals": accs}


def test_grid_offers_stable_training_to_every_variant_off_first(norm):
    for variant in ("none", "batchnorm"):
        g = norm.grid(variant, "tune", "tune")
        assert len(g) == 2 * len(norm.LR_GRID)
        assert [p[3] for p in g] == [False] * len(norm.LR_GRID) + [True] * len(norm.LR_GRID)
    g = norm.grid("method1", "tune", "tune")
    assert len(g) == 2 * 2 * len(norm.M1_LR_GRID) * len(norm.LAMBDA_GRID)
    # a tie keeps every axis off
    assert g[0] == (norm.M1_LR_GRID[0], norm.LAMBDA_GRID[0], False, False, 0.0)
    assert {p[3] for p in norm.grid("method1", "tune", "off")} == {False}
    assert {p[3] for p in norm.grid("none", "off", "on")} == {True}


def test_grid_offers_running_estimates_to_method1_only_off_first(norm):
    g = norm.grid("method1", "tune", "tune", "tune")
    n = 2 * 2 * len(norm.M1_LR_GRID) * len(norm.LAMBDA_GRID)
    assert norm.M1_MOMENTUM_GRID[0] == 0.0 and len(norm.M1_MOMENTUM_GRID) >= 2
    assert [p[4] for p in g] == [rho for rho in norm.M1_MOMENTUM_GRID for _ in range(n)]
    assert {p[4] for p in norm.grid("method1", "off", "off", 0.5)} == {0.5}
    assert {p[4] for p in norm.grid("none", "off", "off", "tune")} == {None}
    assert norm.momentum_arg("tune") == "tune" and norm.momentum_arg("0.9") == 0.9
    for bad in ("1", "-0.1", "fast"):
        with pytest.raises(Exception, match="'tune' or a number in \\[0, 1\\)"):
            norm.momentum_arg(bad)


def test_reuse_tuning_returns_the_fold_figures_in_job_order(norm, tmp_path):
    path = _log(tmp_path, [_entry(POINTS[1], [0.3, 0.2, 0.1], [0.9, 0.8, 0.7]),
                           _entry(POINTS[0], [0.6, 0.5, 0.4], [0.5, 0.4, 0.3])])
    got = norm.reuse_tuning(path, POINTS, SETTINGS, folds=2)
    assert got == [{"val_ce": 0.6, "val": 0.5}, {"val_ce": 0.5, "val": 0.4},
                   {"val_ce": 0.3, "val": 0.9}, {"val_ce": 0.2, "val": 0.8}]


def test_reuse_tuning_refuses_other_settings_fewer_folds_and_missing_points(norm, tmp_path):
    entries = [_entry(p, [0.1, 0.2], [0.9, 0.9]) for p in POINTS]
    with pytest.raises(ValueError, match=r"affine False \(now True\)"):
        norm.reuse_tuning(_log(tmp_path, entries, folds=2, affine=False), POINTS, SETTINGS, 2)
    with pytest.raises(ValueError, match="2 folds, fewer than the 5"):
        norm.reuse_tuning(_log(tmp_path, entries, folds=2), POINTS, SETTINGS, 5)
    with pytest.raises(ValueError, match="lacks the grid point deep batch 8 method1 lr 0.01 "
                                         "λ0 0.003 data init stable"):
        norm.reuse_tuning(_log(tmp_path, entries[:1], folds=2), POINTS, SETTINGS, 2)
    running = [*POINTS[:1], POINTS[1][:-1] + (0.9,)]
    with pytest.raises(ValueError, match="λ0 0.003 data init stable ρ 0.9"):
        norm.reuse_tuning(_log(tmp_path, entries, folds=2), running, SETTINGS, 2)
    other = tmp_path / "other.log"
    other.write_text('no json here\n{"bench": "compression"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="not bench/normalization.py's"):
        norm.reuse_tuning(other, POINTS, SETTINGS, 2)
    other.write_text("nothing\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no JSON line"):
        norm.reuse_tuning(other, POINTS, SETTINGS, 2)


def test_reuse_tuning_reads_outputs_older_than_the_momentum_field_as_its_default(norm, tmp_path):
    path = tmp_path / "old.log"
    head = {k: v for k, v in SETTINGS.items() if k not in ("momentum", "running")}
    points = [POINTS[0], POINTS[1][:6] + (False, 0.0)]  # unclipped; method 1 with the run's ρ
    entries = [_entry(p, [0.1], [0.9]) for p in points]
    for e in entries:
        del e["stable"], e["momentum"]      # before these axes: every point without them
    path.write_text(json.dumps({"bench": "normalization", **head, "folds": 1,
                                "tuning": entries}) + "\n", encoding="utf-8")
    got = norm.reuse_tuning(path, points, SETTINGS, 1)
    assert got == [{"val_ce": 0.1, "val": 0.9}] * 2
    with pytest.raises(ValueError, match="momentum 0.0 \\(now 0.5\\)"):
        norm.reuse_tuning(path, points, {**SETTINGS, "momentum": 0.5}, 1)
