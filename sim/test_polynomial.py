"""Launch the polynomial-unit bench: residue (fold) networks, CRT reconstruction and the folded
CRT input transform ``Bᵀ d B``, structured and flat, on random and extreme data, against the
exact polynomial arithmetic of ``slimgen.sw.winograd``; on Icarus and Verilator."""

import io
from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned

from slimgen.hw.lib.polynomial import CrtUnit, FoldedTransform2D, FoldUnit, crt_matrix
from slimgen.hw.verilog import to_verilog
from slimgen.sim.runner import run_bench
from slimgen.sw.artifact import write_bytes_atomic
from slimgen.sw.winograd import integer_form, winograd_1d, winograd_2d
from slimgen.sw.winograd import polynomials as P
from slimgen.sw.winograd.moduli import parse_moduli

from .testing import require_simulator

MODULI = parse_moduli("x-1,x+1,x^2+1,x^4+1")


def _data(rng, n, width, lo, hi):
    return np.concatenate([rng.integers(lo, hi + 1, (n, width)), np.full((1, width), hi),
                           np.full((1, width), lo)])


def _residues(x):
    out = []
    for mk in MODULI:
        r = P.mod(P.trim(x), mk.coeffs)
        out += [int(v) for v in r] + [0] * (mk.degree - len(r))
    return out


def _case(name, structured, rng):
    """``(dut, inputs, expected, in_bits)``."""
    if name == "fold":
        dut = FoldUnit(MODULI, 16, in_shape=signed(8), structured=structured)
        xs = _data(rng, 20, 16, -128, 127)
        return dut, xs, np.array([_residues(x) for x in xs]), 8
    if name == "crt":
        dut = CrtUnit(MODULI, in_shape=signed(10), structured=structured)
        us = _data(rng, 20, 8, -512, 511)
        C, scale = crt_matrix(MODULI)
        C = np.array(C, dtype=object)
        want = [[Fraction(int(v)) * scale / dut.scale for v in C @ u] for u in us]
        assert all(v.denominator == 1 for row in want for v in row)
        return dut, us, np.array([[int(v) for v in row] for row in want]), 10
    a = winograd_2d(4, 3, "crt")
    BT = np.array(integer_form(winograd_1d(4, 3, "crt")).BT.matrix)
    dut = FoldedTransform2D(a, in_shape=unsigned(8), stages=2)
    xs = _data(rng, 20, 36, 0, 255)
    return dut, xs, np.array([(BT @ x.reshape(6, 6) @ BT.T).reshape(-1) for x in xs]), 8


_UNITS = [("fold", True), ("fold", False), ("crt", True), ("crt", False), ("folded_bt_2d", True)]


@pytest.mark.sim
# every unit on Icarus in CI, one on Verilator; all of them on Verilator with -m long
@pytest.mark.parametrize("name,structured,sim", [(n, s, "icarus") for n, s in _UNITS] + [
    pytest.param(n, s, "verilator", marks=() if (n, s) == ("crt", True) else pytest.mark.long)
    for n, s in _UNITS])
def test_polynomial_unit(name, structured, sim, tmp_path):
    require_simulator(sim)
    dut, xs, expected, in_bits = _case(name, structured, np.random.default_rng(len(name)))
    verilog = tmp_path / "unit.v"
    write_bytes_atomic(verilog, to_verilog(dut, "unit").encode())
    buf = io.BytesIO()
    np.savez(buf, inputs=xs, expected=expected, in_bits=in_bits, out_bits=dut.out_bits)
    write_bytes_atomic(tmp_path / "data.npz", buf.getvalue())
    run_bench(verilog=verilog, toplevel="unit", test_module="slimgen.sim.polynomial_tb",
              build_dir=tmp_path / "build", sim=sim,
              extra_env={"SLIMGEN_TB_DATA": tmp_path / "data.npz"})
