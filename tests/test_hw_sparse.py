# amaranth: UnusedElaboratable=no
"""The sparse MAC array on Amaranth's simulator, against the golden model and the cycle model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from slimgen.hw.sparse_mac import SparseMacArray, SparseMacCore
from slimgen.sim.testing import balanced_mask, magnitude_mask, random_sparse_layer
from slimgen.sw import golden
from slimgen.sw.integer_model import IntDense
from slimgen.sw.sparse_layout import build_layout, layout_accumulate

from hw_sim import run_stream


def _signed(values, shape):
    if not shape.signed:
        return np.array(values, dtype=np.int64)
    w = shape.width
    v = np.array(values, dtype=np.int64) & ((1 << w) - 1)
    return np.where(v >> (w - 1), v - (1 << w), v)


CORE_CASES = [(layout, lanes, kind, index_bits, False) for layout in ("rows", "banks")
              for lanes, kind, index_bits in [(4, "balanced", None), (3, "magnitude", 1),
                                              (2, "magnitude", None)]]
# banks with an input order (input i in lane pos[i] mod P at pos[i] div P)
CORE_CASES += [("banks", 4, "balanced", None, True), ("banks", 3, "magnitude", 1, True)]


@pytest.mark.parametrize("layout,lanes,kind,index_bits,ordered", CORE_CASES)
def test_core_sums_and_run_cycles(layout, lanes, kind, index_bits, ordered):
    """Write a vector, start, count busy cycles, read every row back with a stalling reader."""
    rng = np.random.default_rng(lanes)
    order = rng.permutation(16) if ordered else None
    scores = rng.normal(size=(10, 16))
    mask = (balanced_mask(scores, lanes=lanes, layout=layout, density=0.3, order=order)
            if kind == "balanced" else magnitude_mask(scores, nnz=45))
    mask[3] = False
    layer = random_sparse_layer(rng, mask, weight_bits=5, in_signed=True, requant=False)
    lay = build_layout(layer.W, lanes=lanes, layout=layout, weight_bits=5, index_bits=index_bits,
                       order=order)
    if ordered and kind == "balanced":
        assert lay.dummies == lanes and len(set(lay.lane_lengths)) == 1   # row 3: a dummy each
    core = SparseMacCore(lay, layer.b, in_bits=8, in_signed=True, acc_bits=layer.acc_bits)
    vectors = [rng.integers(-128, 128, 16), np.full(16, -128), rng.integers(-128, 128, 16)]
    busy_cycles, rows = [], []

    async def bench(ctx):
        for v in vectors:
            for i, x in enumerate(v):
                ctx.set(core.wr_addr, i)
                ctx.set(core.wr_data, int(x))
                ctx.set(core.wr_en, 1)
                await ctx.tick()
            ctx.set(core.wr_en, 0)
            ctx.set(core.start, 1)
            await ctx.tick()
            ctx.set(core.start, 0)
            n = 1
            while ctx.get(core.busy):
                await ctx.tick()
                n += 1
            busy_cycles.append(n)
            # Read-back: rows in order, rd_en low every third cycle (a stalled consumer).
            got, issued, cycle, pipe = [], 0, 0, []
            while len(got) < layer.n_out:
                en = cycle % 3 != 2
                ctx.set(core.rd_en, en)
                ctx.set(core.rd_row, min(issued, layer.n_out - 1))
                await ctx.tick()
                if en:
                    pipe.append(issued < layer.n_out)
                    issued += 1
                    if len(pipe) >= 2 and pipe[-2]:
                        got.append(ctx.get(core.rd_data))
                cycle += 1
            rows.append(got)

    sim = Simulator(core)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert busy_cycles == [core.run_cycles] * len(vectors)
    assert core.run_cycles == lay.stream_cycles + 4
    for v, got in zip(vectors, rows):
        np.testing.assert_array_equal(got, layout_accumulate(lay, layer.b, v))


@pytest.mark.parametrize("layout", ["rows", "banks"])
@pytest.mark.parametrize("weight_bits,requant,relu,signed_in,dense", [
    (2, True, True, False, False), (4, True, False, True, False), (8, False, False, True, False),
    (6, True, True, False, True)])
def test_array_layer(layout, weight_bits, requant, relu, signed_in, dense):
    rng = np.random.default_rng(weight_bits)
    mask = magnitude_mask(rng.normal(size=(9, 12)), nnz=40)
    mask[0], mask[1] = False, True
    layer = random_sparse_layer(rng, mask, weight_bits=weight_bits, in_signed=signed_in,
                                requant=requant, relu=relu)
    dut = SparseMacArray(layer, lanes=3, layout=layout, dense=dense)
    lo, hi = (-128, 127) if signed_in else (0, 255)
    X = np.concatenate([rng.integers(lo, hi + 1, (3, 12)), np.full((1, 12), hi)])
    out, _ = run_stream(dut, X.ravel(), X.shape[0] * 9)
    out = _signed(out, dut.o.payload.shape()).reshape(X.shape[0], 9)
    np.testing.assert_array_equal(out, golden.dense(X, layer))


@pytest.mark.parametrize("lanes", [3, 4])
def test_array_input_order(lanes):
    """Banks with an input order: the stream still carries the inputs in their natural order,
    and the Verilog differs from the plain layout's only when the order is not the identity."""
    from slimgen.hw.verilog import to_verilog
    rng = np.random.default_rng(lanes)
    order = rng.permutation(12)
    mask = balanced_mask(rng.normal(size=(9, 12)), lanes=lanes, layout="banks", density=0.5,
                         order=order)
    layer = random_sparse_layer(rng, mask, weight_bits=4)
    dut = SparseMacArray(layer, lanes=lanes, layout="banks", order=order)
    assert dut.sparse_layout.order == tuple(order)
    X = np.concatenate([rng.integers(0, 256, (3, 12)), np.full((1, 12), 255)])
    out, _ = run_stream(dut, X.ravel(), X.shape[0] * 9)
    np.testing.assert_array_equal(np.array(out).reshape(X.shape[0], 9), golden.dense(X, layer))
    plain = to_verilog(SparseMacArray(layer, lanes=lanes, layout="banks"), "top")
    same = to_verilog(SparseMacArray(layer, lanes=lanes, layout="banks", order=range(12)), "top")
    assert same == plain
    assert to_verilog(SparseMacArray(layer, lanes=lanes, layout="banks", order=order),
                      "top") != plain


@pytest.mark.parametrize("n_out,n_in", [(8, 32), (24, 10)])
def test_array_cycles_per_vector(n_out, n_in):
    """Back-to-back vectors take the modelled cycles each (load and send overlap)."""
    rng = np.random.default_rng(0)
    mask = balanced_mask(rng.normal(size=(n_out, n_in)), lanes=4, layout="rows", density=0.5)
    layer = random_sparse_layer(rng, mask)
    dut = SparseMacArray(layer, lanes=4)
    X = rng.integers(0, 256, (6, n_in))
    _, c2 = run_stream(dut, X[:2].ravel(), 2 * n_out)
    _, c6 = run_stream(SparseMacArray(layer, lanes=4), X.ravel(), 6 * n_out)
    assert (c6 - c2) / 4 == dut.cycles_per_vector


def test_array_errors():
    layer = IntDense(np.eye(3, dtype=np.int64), np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match=r"^Layer must be an IntDense, not 3$"):
        SparseMacArray(3)
    with pytest.raises(ValueError, match=r"^Lane count must be at most the layer's 3 outputs, "
                                         r"not 4$"):
        SparseMacArray(layer, lanes=4)
    with pytest.raises(TypeError, match=r"^Layout must be a SparseLayout, not None$"):
        SparseMacCore(None, [0], in_bits=8, acc_bits=8)
    with pytest.raises(ValueError, match=r"^Bias must have 3 entries, not 2$"):
        SparseMacCore(build_layout(layer.W, lanes=1), [0, 0], in_bits=8, acc_bits=8)
