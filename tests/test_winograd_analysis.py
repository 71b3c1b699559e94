"""Float error analysis, searches and the ``wino`` CLI."""

import argparse
import json

import numpy as np
import pytest

from slimgen import wino_cli
from slimgen.sw.winograd import (direct_error, error_report, float_error, search_crt,
                                 search_points, winograd_1d, winograd_2d)


def test_error_small_in_float64_and_ordered():
    alg = winograd_1d(4, 3)
    assert float_error(alg, "float64", trials=200) < 1e-14
    e32 = float_error(alg, "float32", trials=500)
    e16 = float_error(alg, "float16", trials=500)
    assert 1e-9 < e32 < 1e-5 < e16 < 1e-2


def test_error_reproducible_with_generator():
    alg = winograd_2d(2, 3)
    a = float_error(alg, "float16", trials=300, rng=np.random.default_rng(4))
    b = float_error(alg, "float16", trials=300, rng=np.random.default_rng(4))
    assert a == b


def test_known_error_facts():
    # F(6, 3): 0, ±1, ±2, ±½ is far better than 0, ±1, ±2, ±3.
    good = float_error(winograd_1d(6, 3, points="0,1,-1,2,-2,1/2,-1/2"), "float16")
    bad = float_error(winograd_1d(6, 3, points="0,1,-1,2,-2,3,-3"), "float16")
    assert bad > 3 * good
    # F(4, 3): the CRT construction {x, x±1, x²+1} has 2-4x lower error than Toom-Cook.
    tc = error_report(winograd_1d(4, 3))
    crt = error_report(winograd_1d(4, 3, "crt"))
    for key in ("float32", "float16"):
        assert 1.5 < tc[key] / crt[key] < 4
    # Errors grow with the tile size.
    errs = [float_error(winograd_1d(m, 3), "float16") for m in (2, 4, 6, 8)]
    assert errs == sorted(errs)


def test_direct_error_baseline():
    alg = winograd_1d(4, 3)
    assert direct_error(alg, "float16") < float_error(alg, "float16")


def test_error_overflow_is_inf():
    alg = winograd_1d(8, 7, points=[0] + [s * c for c in (4, 5, 6, 7, 8, 9, 10) for s in (1, -1)][:12])
    assert float_error(alg, "float16", trials=50) == float("inf")


def test_error_messages():
    with pytest.raises(ValueError, match="^dtype must be one of float16, float32, float64, "
                                         "not 'half'$"):
        float_error(winograd_1d(2, 3), "half")
    with pytest.raises(ValueError, match="^trials must be a positive integer, not 0$"):
        float_error(winograd_1d(2, 3), trials=0)


def test_search_points_f43():
    res = search_points(4, 3, trials=300, max_evaluations=120)
    assert len(res.points) == 5 and len(set(res.points)) == 5
    assert res.default_points == tuple(winograd_1d(4, 3).points)
    assert res.error <= res.default_error * 1.05
    assert 1 < res.evaluated <= 120


def test_search_crt_f43():
    res = search_crt(4, 3)
    assert [str(x) for x in res.moduli] == ["x", "x-1", "x+1", "x^2+1"]
    assert res.cost[:2] == (0, 7)
    assert res.algorithm.alpha == 7


def test_search_crt_small_sizes_keep_plain_points():
    assert [str(x) for x in search_crt(2, 3).moduli] == ["x", "x-1", "x+1"]
    assert [str(x) for x in search_crt(1, 1).moduli] == []


def _cli(*argv):
    parser = argparse.ArgumentParser(prog="slimgen")
    sub = parser.add_subparsers(dest="command")
    wino_cli.add_parser(sub)
    args = parser.parse_args(["wino", *argv])
    return wino_cli.run(args)


def test_cli_text(capsys):
    assert _cli("--m", "4", "--r", "3", "--moduli", "x,x-1,x+1,x^2+1", "--trials", "100") == 0
    out = capsys.readouterr().out
    assert out.startswith("F(4, 3): 7 multiplications per tile\n")
    assert "moduli {x, x-1, x+1, x^2+1} + inf" in out
    assert "output y = 1/4 * P (power of two: shift by 2)" in out
    assert "P exact        [-195072, 196608]  19 bits" in out
    assert "float16" in out


def test_cli_json_2d(capsys):
    assert _cli("--m", "2", "--r", "3", "--2d", "--json", "--trials", "100") == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["algorithm"] == "F(2×2, 3×3)" and rep["alpha"] == 16
    assert rep["parts"]["rows"]["BT"][0] == ["1", "0", "-1", "0"]
    assert rep["op_counts"]["direct_multiplications"] == 9
    assert set(rep["errors"]) == {"float32", "float16", "direct_float32", "direct_float16"}


def test_cli_points_and_rectangular(capsys):
    assert _cli("--m", "4", "--r", "3", "--n", "2", "--s", "3", "--points", "0,1,-1,1/2,-1/2",
                "--col-points", "0,1,-1", "--json", "--trials", "50") == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["parts"]["rows"]["moduli"] == ["x", "x-1", "x+1", "x-1/2", "x+1/2"]
    assert rep["alpha"] == 24


def test_cli_error(capsys):
    assert _cli("--m", "4", "--r", "3", "--moduli", "x,x-1,x^2-1,x+2") == 2
    err = capsys.readouterr().err
    assert err == ("slimgen wino: error: Moduli x-1 and x^2-1 are not co-prime: both are "
                   "divisible by x-1\n")
