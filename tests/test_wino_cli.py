"""``slimgen wino``: what a user can get wrong, the limits, and a closed stdout."""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from slimgen import wino_cli
from slimgen.sw.winograd import error_report, winograd_1d, winograd_2d


def _parser():
    parser = argparse.ArgumentParser(prog="slimgen")
    wino_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser


def _run(argv, capsys):
    """``(status, stdout, stderr)`` of ``slimgen wino ARGV``, usage errors included."""
    try:
        args = _parser().parse_args(["wino", *argv])
    except SystemExit as e:
        status = e.code
    else:
        status = wino_cli.run(args)
    out, err = capsys.readouterr()
    return status, out, err


def _usage(option, value, message):
    return (option, value, f"slimgen wino: error: argument {option}: {message}, not {value!r}")


@pytest.mark.parametrize("option, value, last_line", [
    _usage("--m", "0", "must be a positive integer"),
    _usage("--m", "-3", "must be a positive integer"),
    _usage("--m", "1.5", "must be a positive integer"),
    _usage("--r", "x", "must be a positive integer"),
    _usage("--n", "0", "must be a positive integer"),
    _usage("--s", "-1", "must be a positive integer"),
    _usage("--trials", "0", "must be an integer from 1 to 1000000"),
    _usage("--trials", "100000000", "must be an integer from 1 to 1000000"),
    _usage("--data-bits", "0", "must be an integer from 1 to 64"),
    _usage("--weight-bits", "100000", "must be an integer from 1 to 64"),
    _usage("--seed", "-1", "must be a non-negative integer"),
])
def test_bad_numbers_are_usage_errors(option, value, last_line, capsys):
    status, out, err = _run([option, value], capsys)
    assert status == 2 and out == "" and err.splitlines()[-1] == last_line


@pytest.mark.parametrize("argv, message", [
    (["--m", "100", "--r", "50"],
     "F(100, 50) has an input tile of m + r - 1 = 149 points; slimgen wino handles at most 32, "
     "beyond which even float32 keeps no correct digit (mean relative error above 0.5 with the "
     "default points) and the exact matrices' entries grow past 32 digits"),
    (["--m", "31", "--r", "3"],
     "F(31, 3) has an input tile of m + r - 1 = 33 points; slimgen wino handles at most 32, "
     "beyond which even float32 keeps no correct digit (mean relative error above 0.5 with the "
     "default points) and the exact matrices' entries grow past 32 digits"),
    (["--m", "2", "--r", "3", "--n", "40", "--s", "3"],
     "F(40, 3) has an input tile of n + s - 1 = 42 points; slimgen wino handles at most 32, "
     "beyond which even float32 keeps no correct digit (mean relative error above 0.5 with the "
     "default points) and the exact matrices' entries grow past 32 digits"),
    (["--m", "4", "--r", "3", "--moduli", "x,x-1,x^2-1,x+2"],
     "Moduli x-1 and x^2-1 are not co-prime: both are divisible by x-1"),
    (["--moduli", "x,2y+1"], "Cannot parse polynomial '2y+1': expected a polynomial in x such "
                             "as 'x', 'x-1', 'x^2+1' or '2x-1'"),
    (["--moduli", ""], "Moduli (none) have total degree 0, but F(4, 3) needs 5 (m + r - 2; the "
                       "point at infinity is added)"),
    (["--points", "0,1"], "F(4, 3) needs 5 distinct finite points (m + r - 2; the point at "
                          "infinity is added), not 2"),
    (["--points", "0,1,1,2,-1"], "Points must be distinct, but 1 appears more than once"),
    (["--points", "0,1,-1,1/0,2"], "Point must be a rational number such as '2' or '-1/2', "
                                   "not '1/0'"),
])
def test_bad_algorithms_are_refused(argv, message, capsys):
    status, out, err = _run(argv, capsys)
    assert (status, out, err) == (2, "", f"slimgen wino: error: {message}\n")


def test_largest_tile_still_runs(capsys):
    status, out, err = _run(["--m", "30", "--r", "3", "--trials", "20"], capsys)
    assert status == 0 and out.startswith("F(30, 3): 32 multiplications per tile\n")
    assert "warning: F(30, 3) in float32 keeps under one correct digit" in err


def test_float_overflow_is_warned_about(capsys):
    status, out, err = _run(["--m", "12", "--r", "3", "--trials", "50"], capsys)
    assert status == 0 and "float16 inf" in out
    assert err == ("slimgen wino: warning: F(12, 3) overflows float16: its transforms exceed "
                   "float16's largest number (65504), so the float16 error is inf; use float32 "
                   "or a smaller tile\n")
    status, out, err = _run(["--m", "4", "--r", "3", "--trials", "50"], capsys)
    assert status == 0 and err == ""


def test_json_stays_json_when_an_error_is_inf(capsys):
    status, out, err = _run(["--m", "12", "--r", "3", "--trials", "50", "--json"], capsys)
    assert status == 0 and "overflows float16" in err

    def strict(name):
        raise AssertionError(f"{name} is not JSON")
    rep = json.loads(out, parse_constant=strict)
    assert rep["errors"]["float16"] is None and rep["errors"]["float32"] > 0


@pytest.mark.parametrize("alg", [winograd_1d(4, 3), winograd_2d(2, 3)], ids=["1d", "2d"])
def test_errors_in_chunks_equal_the_library_up_to_a_chunk(alg):
    assert wino_cli.stream_errors(alg, trials=300, seed=2) == \
        error_report(alg, trials=300, seed=2)


def test_errors_in_chunks_bound_the_memory(monkeypatch):
    """Many trials run in chunks of at most ``CHUNK_VALUES`` tile values; the figures are the
    mean over all trials (chunk means weighted by their sizes)."""
    alg = winograd_1d(2, 3)
    sizes = []
    real = wino_cli.float_error

    def spy(algorithm, dtype, *, trials, rng):
        sizes.append(trials)
        return real(algorithm, dtype, trials=trials, rng=rng)
    monkeypatch.setattr(wino_cli, "float_error", spy)
    monkeypatch.setattr(wino_cli, "CHUNK_VALUES", 4 * 100)   # F(2, 3): a tile of 4 inputs
    e = wino_cli.stream_errors(alg, trials=250, seed=0)
    assert sizes == [100, 100, 50] * 2                         # float32, then float16
    rng = np.random.default_rng(0)
    parts = [real(alg, "float16", trials=t, rng=rng) for t in (100, 100, 50)]
    assert e["float16"] == pytest.approx((100 * parts[0] + 100 * parts[1] + 50 * parts[2]) / 250)


@pytest.mark.parametrize("json_option", [[], ["--json"]], ids=["text", "json"])
def test_closed_stdout_is_quiet(json_option):
    """``slimgen wino | head``, head gone: no "Broken pipe", exit status 141 (SIGPIPE's)."""
    r, w = os.pipe()
    os.close(r)                      # the reader is gone before the first write
    try:
        p = subprocess.run([sys.executable, "-m", "slimgen", "wino", "--trials", "5",
                            *json_option], stdout=w, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(w)
    assert (p.returncode, p.stderr) == (141, b"")


def test_interrupted(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(wino_cli, "winograd_1d", interrupted)
    assert _run([], capsys) == (130, "", "slimgen wino: interrupted\n")


@pytest.mark.parametrize("option", ["--moduli", "--col-moduli"])
def test_unknown_moduli_name(option, capsys):
    status, out, err = _run([option, "karatsuba"], capsys)
    assert (status, out) == (2, "")
    assert err.splitlines()[-1] == (f"slimgen wino: error: argument {option}: must be toomcook, "
                                    f"crt, or moduli in x such as \"x,x-1,x+1,x^2+1\", not "
                                    f"'karatsuba'")
