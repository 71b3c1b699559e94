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
    (["--points", "0,1"], "--points: F(4, 3) needs 5 distinct finite points (m + r - 2; the "
                          "point at infinity is added), not 2"),
    (["--points", "0,1,1,2,-1"], "--points: 1 appears more than once; the points must be "
                                 "distinct"),
    (["--points", "0,1,-1,1/0,2"], "--points: '1/0' is not a rational number such as 2, -1/2 or "
                                   "0.25"),
    (["--points", "0,1,-1,0.5,1e-300"],
     "--points: 1e-300 is too fine a point: numerators and denominators up to 1,048,576 are "
     "taken (such as 3, -1/2 or 1/1024); larger ones only make the matrices' entries overflow"),
    (["--points", "0,1,-1,0.5,1e999999999"],
     "--points: 1e999999999 is too large a point: numerators and denominators up to 1,048,576 "
     "are taken (such as 3, -1/2 or 1/1024); larger ones only make the matrices' entries "
     "overflow"),
    (["--points", "0,1,-1,1/2,-1048577"],
     "--points: -1048577 is too large a point: numerators and denominators up to 1,048,576 are "
     "taken (such as 3, -1/2 or 1/1024); larger ones only make the matrices' entries overflow"),
    (["--inner-points", "1,3/2097152", "--moduli", "crt"],
     "--inner-points: 3/2097152 is too fine a point: numerators and denominators up to "
     "1,048,576 are taken (such as 3, -1/2 or 1/1024); larger ones only make the matrices' "
     "entries overflow"),
    (["--points", "0,1,-1,2", "--moduli", "crt"],
     "--points apply only to --moduli toomcook (the default), not --moduli crt; give the moduli "
     "themselves with --moduli, or --inner-points for the factors of degree > 1"),
    (["--2d", "--col-points", "0,1,-1"],
     "--col-points: the columns' F(4, 3) needs 5 distinct finite points (m + r - 2; the point "
     "at infinity is added), not 3"),
    (["--m", "2", "--n", "4", "--col-points", "0,1,-1"],
     "--col-points: the columns' F(4, 3) needs 5 distinct finite points (n + s - 2; the point "
     "at infinity is added), not 3"),
    (["--2d", "--col-moduli", "crt", "--col-points", "0,1,-1,2,-2"],
     "--col-points apply only to Toom-Cook columns (--col-moduli toomcook, or --moduli toomcook "
     "without --col-moduli), not moduli crt"),
    (["--2d", "--points", "0,1,-1,2,-2", "--n", "2"],
     "--points are the rows'; the columns' F(2, 3) have another size: give --col-points too"),
    (["--moduli", "x,x-1,x+1,x^2+1", "--n", "2"],
     "--moduli x,x-1,x+1,x^2+1 are the rows'; the columns' F(2, 3) have another size: give "
     "--col-moduli too"),
    (["--col-moduli", "crt"],
     "--col-moduli applies to the columns of a 2-D algorithm: add --2d (or --n/--s), or leave "
     "it out"),
    (["--col-moduli", "crt", "--col-points", "0,1,-1"],
     "--col-moduli and --col-points apply to the columns of a 2-D algorithm: add --2d (or "
     "--n/--s), or leave them out"),
    (["--2d", "--m", "16", "--r", "17", "--trials", "1000000"],
     "--trials 1,000,000 of F(16×16, 17×17), whose input tile holds 1,024 values, is "
     "1,024,000,000 tile values; slimgen wino analyses at most 67,108,864 (a few minutes): use "
     "--trials 65,536 or fewer (the mean error is steady long before)"),
    (["--m", "16", "--r", "17", "--n", "2", "--s", "3", "--trials", "600000"],
     "--trials 600,000 of F(16×2, 17×3), whose input tile holds 128 values, is 76,800,000 tile "
     "values; slimgen wino analyses at most 67,108,864 (a few minutes): use --trials 524,288 or "
     "fewer (the mean error is steady long before)"),
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


def test_points_that_overflow_float64_are_named(capsys, monkeypatch):
    """Points within MAX_POINT whose matrices still overflow float64 (their entries become
    floats for the error analysis) are refused with the points, not a traceback."""
    def overflow(*args, **kwargs):
        raise OverflowError("integer division result too large for a float")
    monkeypatch.setattr(wino_cli, "integer_form", overflow)
    assert _run(["--points", "0,1,-1,1/2,1/1048576"], capsys) == (
        2, "", "slimgen wino: error: --points 0, 1, -1, 1/2, 1/1048576: the matrices' entries "
               "grow too large for float64 (above 1.8e308), so the algorithm cannot be measured; "
               "use points that are small and well apart, such as the defaults 0, 1, -1, 2, -2\n")


def test_the_largest_work_is_taken():
    """Exactly MAX_TRIAL_VALUES tile values pass the check (the run itself takes minutes)."""
    args = _parser().parse_args(["wino", "--2d", "--m", "16", "--r", "17", "--trials", "65536"])
    wino_cli._check_work(args)
    args.trials += 1
    with pytest.raises(ValueError, match=r"^--trials 65,537 of F\(16×16, 17×17\)"):
        wino_cli._check_work(args)


def test_errors_in_chunks_report_progress(monkeypatch):
    monkeypatch.setattr(wino_cli, "CHUNK_VALUES", 4 * 100)   # F(2, 3): a tile of 4 inputs
    calls = []
    wino_cli.stream_errors(winograd_1d(2, 3), trials=250, seed=0,
                           progress=lambda done, total: calls.append((done, total)))
    assert calls == [(d, 1000) for d in (100, 200, 250, 350, 450, 500, 600, 700, 750, 850, 950,
                                         1000)]


def test_a_long_analysis_says_how_long_up_front_and_then_every_few_seconds():
    """Silent while the analysis is quick; an estimate once it will take more than
    PROGRESS_EVERY seconds, then one line per PROGRESS_EVERY seconds."""
    import io
    now = [0.0]
    out = io.StringIO()
    quick = wino_cli._Progress("F(4, 3)", 1000, out=out, clock=lambda: now[0])
    for done in range(100, 1001, 100):
        now[0] += 0.1
        quick(done, 1000)
    assert out.getvalue() == ""
    now[0] = 0.0
    slow = wino_cli._Progress("F(16×16, 17×17)", 65536, out=out, clock=lambda: now[0])
    for done in range(1, 101):
        now[0] += 2.0      # 2 s per chunk of 100 chunks: 200 s in all
        slow(done, 100)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("slimgen wino: error analysis of F(16×16, 17×17) over 65,536 trials "
                        "takes about 3 min 20 s; progress every 5 s (fewer --trials are "
                        "quicker)")
    assert lines[1] == "slimgen wino: error analysis 4% done, about 3 min 12 s left"
    assert lines[-1] == "slimgen wino: error analysis 97% done, about 6 s left"
    assert len(lines) == 1 + 32    # the estimate after chunk 1, then after chunks 4, 7, ..., 97
