"""Launch the sparse MAC array bench: random sparse layers (balanced and magnitude-pruned, both
layouts, every weight width from 2 to 8 bits, empty and fully dense rows, narrow relative indices
with fillers, the dense layout, signed and unsigned inputs, requantized and raw outputs, input
orders of the banks layout: random ones, and the dealt order of a 64-64 layer on real digits),
all in one Verilog top, on Icarus and Verilator."""

import io

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from slimgen.hw.sparse_mac import SparseMacArray
from slimgen.hw.verilog import to_verilog
from slimgen.sim.runner import run_bench
from slimgen.sw import golden
from slimgen.sw.artifact import write_bytes_atomic
from slimgen.sw.integer_model import act_range

from .testing import balanced_mask, magnitude_mask, random_sparse_layer, require_simulator

# name: (weight_bits, layout, lanes, mask kind, options)
CASES = [
    (2, "rows", 4, "balanced", dict(n_in=24, n_out=12)),
    (3, "banks", 4, "balanced", dict(n_in=24, n_out=10, requant=False)),
    (4, "rows", 3, "magnitude", dict(n_in=20, n_out=11, in_signed=True, relu=False)),
    (5, "banks", 3, "magnitude", dict(n_in=22, n_out=9, index_bits=1)),
    (6, "rows", 8, "edges", dict(n_in=16, n_out=16)),
    (7, "banks", 2, "edges", dict(n_in=15, n_out=8, in_signed=True, requant=False)),
    (8, "rows", 4, "dense", dict(n_in=12, n_out=9, dense=True, extreme="max", requant=False)),
    (8, "banks", 4, "magnitude", dict(n_in=20, n_out=6, extreme="min", requant=False)),
    (8, "rows", 5, "magnitude", dict(n_in=32, n_out=13, index_bits=2, in_signed=True)),
    # input orders (banks): a random permutation, balanced in its own banks; one with narrow
    # indices and 3 lanes; the 8×8 digits' pixels dealt by importance, on real images
    (4, "banks", 4, "balanced", dict(n_in=24, n_out=10, order="random")),
    (6, "banks", 3, "magnitude", dict(n_in=22, n_out=9, order="random", index_bits=1,
                                      in_signed=True, requant=False)),
    (8, "banks", 8, "balanced", dict(n_in=64, n_out=16, order="digits")),
]


def _digits(n):
    """The first n digits images as 8-bit input codes (pixels 0..16 → 0..240)."""
    from slimgen.sw.data import load_digits
    x = load_digits(view="vector").x[:n]
    return np.rint(x * 240).astype(np.int64)


def _order(rng, kind, n_in, lanes):
    if kind is None:
        return None
    if kind == "random":
        return rng.permutation(n_in)
    # "digits": every lane gets its share of the informative pixels (method 5's dealt order)
    from slimgen.sw.compress.balanced import deal_inputs
    return deal_inputs(_digits(200).std(axis=0) + 1e-3 * rng.random(n_in), lanes)


def _mask(rng, kind, n_out, n_in, lanes, layout, order=None):
    scores = rng.normal(size=(n_out, n_in))
    if kind == "balanced":
        return balanced_mask(scores, lanes=lanes, layout=layout, density=0.3, order=order)
    if kind == "magnitude":
        return magnitude_mask(scores, nnz=int(0.3 * n_out * n_in))
    mask = magnitude_mask(scores, nnz=int(0.3 * n_out * n_in))
    if kind == "edges":   # empty rows and fully dense rows
        mask[1] = mask[4] = False
        mask[2] = mask[n_out - 1] = True
    else:                 # dense
        mask[:] = True
    return mask


def make_cases(seed=0):
    """The arrays and their data: [(array, inputs, expected)]."""
    rng = np.random.default_rng(seed)
    out = []
    for wb, layout, lanes, kind, opts in CASES:
        opts = dict(opts)
        n_in, n_out = opts.pop("n_in"), opts.pop("n_out")
        index_bits, dense = opts.pop("index_bits", None), opts.pop("dense", False)
        kind_order = opts.pop("order", None)
        order = _order(rng, kind_order, n_in, lanes)
        mask = _mask(rng, kind, n_out, n_in, lanes, layout, order)
        layer = random_sparse_layer(rng, mask, weight_bits=wb, **opts)
        array = SparseMacArray(layer, lanes=lanes, layout=layout, index_bits=index_bits,
                               dense=dense, order=order)
        lo, hi = act_range(layer.in_bits, layer.in_signed)
        x = np.concatenate([rng.integers(lo, hi + 1, (5, n_in)), np.full((1, n_in), hi),
                            np.full((1, n_in), lo), np.zeros((1, n_in), dtype=np.int64)])
        if kind_order == "digits":
            x = np.concatenate([_digits(24), x])
        out.append((array, x, golden.dense(x, layer)))
    return out


class BenchTop(wiring.Component):
    """Several arrays side by side; array k on ports ``i<k>``, ``o<k>``."""

    def __init__(self, arrays):
        self.arrays = arrays
        sig = {}
        for k, a in enumerate(arrays):
            sig[f"i{k}"] = In(stream.Signature(a.i.payload.shape()))
            sig[f"o{k}"] = Out(stream.Signature(a.o.payload.shape()))
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        for k, a in enumerate(self.arrays):
            m.submodules[f"array{k}"] = a
            wiring.connect(m, wiring.flipped(getattr(self, f"i{k}")), a.i)
            wiring.connect(m, a.o, wiring.flipped(getattr(self, f"o{k}")))
        return m


def run_sparse_bench(sim, tmp_path, seed=0):
    """Build the bench top and run it; returns (cases, latencies)."""
    cases = make_cases(seed)
    verilog = tmp_path / "sparse.v"
    write_bytes_atomic(verilog, to_verilog(BenchTop([a for a, _, _ in cases]), "sparse").encode())
    arrays = {"cases": len(cases)}
    for k, (a, x, y) in enumerate(cases):
        shape = a.o.payload.shape()
        arrays.update({f"inputs{k}": x, f"expected{k}": y, f"signed_out{k}": shape.signed,
                       f"out_bits{k}": shape.width, f"in_bits{k}": a.layer.in_bits})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes_atomic(tmp_path / "data.npz", buf.getvalue())
    run_bench(verilog=verilog, toplevel="sparse", test_module="slimgen.sim.sparse_mac_tb",
              build_dir=tmp_path / "build", sim=sim,
              extra_env={"SLIMGEN_TB_DATA": tmp_path / "data.npz",
                         "SLIMGEN_TB_OUT": tmp_path / "out.npz"},
              log_file=tmp_path / "sim.log")
    with np.load(tmp_path / "out.npz") as f:
        return cases, f["latency"]



@pytest.mark.sim
# Verilator takes over two minutes to build these arrays: CI runs Icarus, -m long both
@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.long)])
def test_sparse_arrays_bit_exact(sim, tmp_path):
    require_simulator(sim)
    cases, latency = run_sparse_bench(sim, tmp_path)
    # The measured latency is the modelled compute phase plus a fixed load/send overhead.
    overhead = latency - np.array([a.run_cycles for a, _, _ in cases])
    assert len(set(overhead.tolist())) == 1, (latency.tolist(), overhead.tolist())
