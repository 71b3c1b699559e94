"""The compiler's fuzz bench: seeded random descriptions (:mod:`slimgen.sim.fuzz`, every layer
kind the shared-array engine takes) compiled to Verilog and run on Verilator on random
inputs, logits bit-exact against the golden model, the latency and the interval between
results equal to the compiler's cycle count and interval (the weight rows in block RAM, and in
one case in SPRAM). Six cases run in CI (``sim``); all of them with ``pytest -m fuzz``. The cost
model puts most sequence cases' convolutions on Winograd/CRT algorithms (1 and 3 of the CI
six) and an image's 3×3 convolutions of stride 1 on F(2×2, 3×3) where it pays (cases 7, 30,
70, 80 and 102, the first image cases that it does; 80 in CI). Planted bugs
(:data:`slimgen.hw.program.MUTATIONS`) must make the bench fail.

The same cases run as dataflow pipelines (:func:`slimgen.hw.compiler.compile_dataflow`, one
stage per weighted layer on a random lane count of its own, in odd cases on 1 to 3 copies of
its engine): logits exact with the samples back to back and to a consumer ready half the time,
the latency and the intervals equal to the pipeline's cycle model (the slowest stage's
interval: no stage waits for a queue); two in CI, the others with ``-m fuzz``; a planted bug
fails it too.

The recurrent layers (LSTM, GRU) run on the recurrent engine
(:class:`slimgen.hw.lstm_cell.LstmClassifier`), fuzzed with cases of their own
(:func:`slimgen.sim.fuzz.recurrent_case`): two in CI, sixteen with ``-m fuzz``, the latency
the engine's cycle model at some phase of its element-wise unit."""

import math

import numpy as np
import pytest

from slimgen.hw.compiler import compile_dataflow, compile_network
from slimgen.hw.dataflow import stage_bounds
from slimgen.hw.lstm_cell import LstmClassifier
from slimgen.hw.lstm_engine import lstm_cycles
from slimgen.hw.program import build_programs, execute
from slimgen.hw.verilog import to_verilog
from slimgen.sim.fuzz import fuzz_case, recurrent_case
from slimgen.sim.network import verify_network
from slimgen.sim.runner import BenchFailed
from slimgen.sw.artifact import write_bytes_atomic

from .testing import require_simulator

# one case of each family, a 2-D Winograd layer, a max pool in a Winograd drain (86)
CI_SEEDS = (0, 1, 2, 3, 4, 80, 86)
FUZZ_SEEDS = tuple(range(5, 24)) + (30, 70, 102, 103)
RECURRENT_CI_SEEDS = (0, 3)           # an LSTM on one element-wise multiplier, a GRU on two
RECURRENT_FUZZ_SEEDS = (1, 2) + tuple(range(4, 18))
DATAFLOW_CI_SEEDS = (1, 30)    # F(4, 6) inside a stage, copies; outputs wider than the inputs
DATAFLOW_FUZZ_SEEDS = tuple(s for s in CI_SEEDS + FUZZ_SEEDS if s not in DATAFLOW_CI_SEEDS)


def _run(case, tmp_path, mutation=None, weights="bram"):
    require_simulator("verilator")
    engine = compile_network(case.int_net, lanes=case.lanes, mutation=mutation,
                             weights=weights)
    verilog = tmp_path / "network.v"
    write_bytes_atomic(verilog, to_verilog(engine, "network").encode())
    r = verify_network(verilog, case.int_net, case.x, build_dir=tmp_path / "build",
                       sim="verilator", log_file=tmp_path / "bench.log",
                       weight_image=engine.weight_image() if weights == "spram" else None)
    return engine, r


def _check(seed, tmp_path, weights="bram"):
    case = fuzz_case(seed)
    engine, r = _run(case, tmp_path, weights=weights)
    assert r.n == len(case.x) and r.bit_exact
    np.testing.assert_array_equal(r.logits, case.int_net(case.x))
    # the bench's latency runs from the first input transfer to the result's transfer, and
    # its samples go back to back
    assert r.latency == engine.cycles, (r.latency, engine.cycles)
    assert set(np.diff(r.result_cycles)) == {engine.interval}
    return engine


def _check_recurrent(seed, tmp_path):
    """Recurrent case ``seed`` on Verilator: logits exact, the latency of one sequence the
    cycle model's, and so every interval between results (back to back) the same. The
    element-wise unit on one multiplier in seeds 0, 1, 4, 5, …; on two in 2, 3, 6, 7, …"""
    require_simulator("verilator")
    case = recurrent_case(seed)
    ew = 1 + seed // 2 % 2
    dut = LstmClassifier(case.int_net, lanes=case.lanes, ew_multipliers=ew)
    verilog = tmp_path / "network.v"
    write_bytes_atomic(verilog, to_verilog(dut, "network").encode())
    r = verify_network(verilog, case.int_net, case.x, build_dir=tmp_path / "build",
                       sim="verilator", log_file=tmp_path / "bench.log")
    assert r.n == len(case.x) and r.bit_exact
    np.testing.assert_array_equal(r.logits, case.int_net(case.x))
    eng = dut.engine
    assert r.latency == lstm_cycles(eng.schedule, eng.steps, ew_multipliers=ew) \
        == eng.cycles_estimate, (r.latency, eng.cycles_estimate)
    assert set(np.diff(r.result_cycles)) == {dut.interval}, (r.result_cycles, dut.interval)


def dataflow_lanes(case):
    """Case ``case``'s pipeline: per stage, 1 to twice the case's lanes and, in odd cases,
    1 to 3 copies of its engine (seeded)."""
    stages = len(stage_bounds(build_programs(case.int_net, lanes=1)))
    rng = np.random.default_rng([18, case.seed])
    lanes = [int(v) for v in rng.integers(1, 2 * case.lanes + 1, stages)]
    copies = [int(v) for v in rng.integers(1, 4, stages)] if case.seed % 2 else [1] * stages
    return lanes, copies


def _run_dataflow(case, tmp_path, *, queues=None, mutation=None, ready_probability=0.5):
    require_simulator("verilator")
    lanes, copies = dataflow_lanes(case)
    hw = compile_dataflow(case.int_net, lanes=lanes, copies=copies, queues=queues,
                          mutation=mutation)
    verilog = tmp_path / "network.v"
    write_bytes_atomic(verilog, to_verilog(hw, "network").encode())
    r = verify_network(verilog, case.int_net, case.x, build_dir=tmp_path / "build",
                       sim="verilator", log_file=tmp_path / "bench.log",
                       ready_probability=ready_probability, seed=case.seed)
    return hw, r


def _check_dataflow(seed, tmp_path):
    """Case ``seed`` as a dataflow pipeline on Verilator: logits exact (also to a consumer
    ready half the time), the latency the model's, and the intervals between results (back
    to back) the slowest stage's: every one without copies; with them, their sum over the
    last lcm(copies) results (the pattern the copies repeat)."""
    case = fuzz_case(seed, n=14)
    hw, r = _run_dataflow(case, tmp_path)
    assert r.n == len(case.x) and r.bit_exact
    np.testing.assert_array_equal(r.logits, case.int_net(case.x))
    assert r.latency == hw.cycles, (r.latency, hw.cycles)
    diffs = np.diff(r.result_cycles)
    if max(hw.replicas) == 1:
        assert set(diffs) == {hw.interval}, (r.result_cycles, hw.interval)
    else:
        period = math.lcm(*hw.replicas)
        assert diffs[-period:].sum() == period * hw.interval, (diffs, hw.interval)
    return hw


CHECKS = {"net": _check, "recurrent": _check_recurrent, "dataflow": _check_dataflow}


@pytest.mark.sim
@pytest.mark.parametrize("kind, seed", [("net", s) for s in CI_SEEDS]
                         + [("recurrent", s) for s in RECURRENT_CI_SEEDS]
                         + [("dataflow", s) for s in DATAFLOW_CI_SEEDS])
def test_fuzz_ci(kind, seed, tmp_path):
    CHECKS[kind](seed, tmp_path)


@pytest.mark.sim
@pytest.mark.fuzz
@pytest.mark.parametrize("kind, seed", [("net", s) for s in FUZZ_SEEDS]
                         + [("recurrent", s) for s in RECURRENT_FUZZ_SEEDS]
                         + [("dataflow", s) for s in DATAFLOW_FUZZ_SEEDS])
def test_fuzz(kind, seed, tmp_path):
    CHECKS[kind](seed, tmp_path)


@pytest.mark.sim
def test_a_winograd_case_with_its_weight_rows_in_spram(tmp_path):
    """Case 1 (a convolution on F(4, 6) Toom-Cook, whose products read the weight rows from
    the sequencer) with the rows loaded at run time into the SPRAM model (sim/models)."""
    engine = _check(1, tmp_path, weights="spram")
    assert engine.weights == "spram" and any(e["algorithm"] != "direct" and e["kind"] == "conv"
                                             for e in engine.summary)


@pytest.mark.sim
@pytest.mark.parametrize("mutation, seed", [
    ("pad_edge", 2),
    ("transform", 1),                     # case 1 runs a convolution on F(4, 6) Toom-Cook
    pytest.param("transform", 80, marks=pytest.mark.fuzz),     # F(2×2, 3×3)
    pytest.param("shift", 5, marks=pytest.mark.fuzz),
])
def test_a_planted_bug_fails_the_bench(mutation, seed, tmp_path):
    """The bug changes what the programs compute (checked in Python first), and the bench
    then reports the hardware differs from the golden model."""
    case = fuzz_case(seed)
    programs = compile_network(case.int_net, lanes=case.lanes, mutation=mutation).programs
    assert not np.array_equal(execute(programs, case.x), case.int_net(case.x))
    with pytest.raises(BenchFailed):
        _run(case, tmp_path, mutation)


@pytest.mark.sim
def test_a_dataflow_pipeline_with_the_smallest_queues_loses_nothing(tmp_path):
    """Queues of one group of words each, a consumer ready a fifth of the time: every stage
    is held by the credit of the one after, and the logits are still exact."""
    case = fuzz_case(12)
    lanes, copies = dataflow_lanes(case)
    hw = compile_dataflow(case.int_net, lanes=lanes, copies=copies)
    hw._MustUse__silence = True       # only its stages' figures are read
    smallest = [s[-1].groups[0][1] for s in hw.stages[:-1]]
    hw, r = _run_dataflow(case, tmp_path, queues=smallest, ready_probability=0.2)
    assert hw.queues == smallest and r.bit_exact


@pytest.mark.sim
def test_a_planted_bug_fails_the_dataflow_bench(tmp_path):
    case = fuzz_case(2)
    with pytest.raises(BenchFailed):
        _run_dataflow(case, tmp_path, mutation="pad_edge")


@pytest.mark.sim
def test_copies_of_a_recurrent_classifier(tmp_path):
    """Three copies of recurrent case 3 (a GRU) taking sequences in turn, on Verilator:
    exact (also to a consumer ready half the time), the latency one copy's, the results'
    intervals over three of them three times the mean the flow predicts."""
    from slimgen.hw.dataflow import Replicas, replicated_interval
    require_simulator("verilator")
    case = recurrent_case(3, n=10)
    copies = [LstmClassifier(case.int_net, lanes=case.lanes, ew_multipliers=2)
              for _ in range(3)]
    top = Replicas(copies, n_in=case.int_net.n_inputs, n_out=1)
    verilog = tmp_path / "network.v"
    write_bytes_atomic(verilog, to_verilog(top, "network").encode())
    r = verify_network(verilog, case.int_net, case.x, build_dir=tmp_path / "build",
                       sim="verilator", log_file=tmp_path / "bench.log", ready_probability=0.5)
    assert r.n == len(case.x) and r.bit_exact
    assert r.latency == copies[0].engine.cycles_estimate
    mean = replicated_interval(copies[0].interval, 3, case.int_net.n_inputs, 1)
    assert np.diff(r.result_cycles)[-3:].sum() == 3 * mean, (r.result_cycles, mean)
