# amaranth: UnusedElaboratable=no
"""hw/lib/requantizer.requantize on Amaranth's simulator against sw.fixed.requantize: random
accumulators, ties, saturation on both sides, negative accumulators, constant and run-time
multiplier and shift; the error messages word for word."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from slimgen.hw.lib.requantizer import requantize
from slimgen.sw.fixed import requantize as golden


def simulate(acc_bits, rows, *, multiplier, shift, out_bits, relu, registered=False):
    """Outputs for ``rows`` of (acc, M, s); ``multiplier``/``shift`` an int (constant) or
    ``"value"`` (a port of ``m_bits``/4 bits driven with the row's M/s); ``multiplier`` a
    tuple of ints: ``(values, index)``, the index driven with the row's M's position.
    ``registered``: each output read one clock after its row's inputs."""
    m = Module()
    acc = Signal(signed(acc_bits))
    M = Signal(unsigned(max(r[1] for r in rows).bit_length())) if multiplier == "value" \
        else multiplier
    if isinstance(multiplier, tuple):
        index = Signal(range(len(multiplier)))
        M = (multiplier, index)
    s = Signal(unsigned(max(r[2] for r in rows).bit_length())) if shift == "value" else shift
    y = requantize(m, acc, M, s, out_bits=out_bits, relu=relu, name="rq",
                   registered=registered)
    assert y.shape() == (unsigned(out_bits) if relu else signed(out_bits))
    out = []

    async def bench(ctx):
        for a, mv, sv in rows:
            ctx.set(acc, a)
            if multiplier == "value":
                ctx.set(M, mv)
            if isinstance(multiplier, tuple):
                ctx.set(index, multiplier.index(mv))
            if shift == "value":
                ctx.set(s, sv)
            if registered:
                await ctx.tick()
            out.append(ctx.get(y))

    sim = Simulator(m)
    if registered:
        sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return np.array(out, dtype=np.int64)


def ties(M, s, lo, hi, count=8):
    """Accumulators in [lo, hi] nearest 0 with ``acc·M ≡ 2^(s−1) (mod 2^s)`` (the product is
    a tie of the rounding), ``count`` on each side of 0; none when ``M`` holds 2^s."""
    g = 1 << min((M & -M).bit_length() - 1, s)          # gcd(M, 2^s)
    if g > 1 << (s - 1):
        return []
    period = (1 << s) // g
    a0 = ((1 << (s - 1)) // g) * pow(M // g, -1, period) % period if period > 1 else 0
    found = [a0 + k * period for k in range(-count, count)]
    assert all((a * M) % (1 << s) == 1 << (s - 1) for a in found)
    return [a for a in found if lo <= a <= hi]


def accumulators(rng, acc_bits, M, s, n=200, out_bits=8):
    """The accumulator range's two ends, ties on both sides of 0, random accumulators over the
    whole range and as many over ±2^(out_bits+1) output steps (most of them not saturating)."""
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    near = min(hi, ((2 << out_bits) << s) // M + 1)
    return ([lo, hi, 0, -1, 1] + ties(M, s, lo, hi) + rng.integers(lo, hi + 1, n).tolist()
            + rng.integers(-near, near + 1, n).tolist())


@pytest.mark.parametrize("acc_bits,M,s,out_bits,relu", [
    (20, 181, 9, 8, True), (20, 181, 9, 8, False), (16, 1, 1, 4, True),
    (24, 0b1011011, 12, 8, True),
    (18, 255, 7, 6, False), (12, 3, 2, 8, False), (32, 2**14 + 1, 20, 8, True),
])
def test_constant_multiplier_and_shift(acc_bits, M, s, out_bits, relu):
    rng = np.random.default_rng(acc_bits * 1000 + M + s)
    accs = accumulators(rng, acc_bits, M, s, out_bits=out_bits)
    assert min(accs[5:21]) < 0 < max(accs[5:21])      # ties of both signs
    got = simulate(acc_bits, [(a, M, s) for a in accs], multiplier=M, shift=s,
                   out_bits=out_bits, relu=relu)
    expected = golden(np.array(accs), M, s, relu=relu, out_bits=out_bits)
    np.testing.assert_array_equal(got, expected)
    # The data saturates on both sides, and reaches values strictly inside the range.
    lo, hi = (0, (1 << out_bits) - 1) if relu else (-(1 << (out_bits - 1)),
                                                   (1 << (out_bits - 1)) - 1)
    assert expected.min() == lo and expected.max() == hi
    assert np.any((expected > lo) & (expected < hi))


@pytest.mark.parametrize("multiplier,shift", [("value", 5), (77, "value"), ("value", "value")])
@pytest.mark.parametrize("relu", [True, False])
def test_run_time_multiplier_and_shift(multiplier, shift, relu):
    rng = np.random.default_rng(3 + relu)
    rows = []
    for _ in range(40):
        M = int(rng.integers(1, 256)) if multiplier == "value" else multiplier
        s = int(rng.integers(1, 16)) if shift == "value" else shift
        rows += [(a, M, s) for a in accumulators(rng, 16, M, s, n=20)[:60]]
    if multiplier == "value":   # the widest M at the edges of the accumulator
        rows += [(-(1 << 15), 255, 1), ((1 << 15) - 1, 255, 1)]
    got = simulate(16, rows, multiplier=multiplier, shift=shift, out_bits=8, relu=relu)
    expected = np.array([golden(a, M, s, relu=relu, out_bits=8) for a, M, s in rows])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("registered", [False, True])
def test_multiplier_chosen_among_constants(registered):
    """``(values, index)``: one shift-add network per value and a multiplexer (the engine's
    per-layer M); registered, the product one clock behind, the shift that clock's."""
    values = (1, 77, 181, 2**14 + 1)
    rng = np.random.default_rng(7 + registered)
    rows = []
    for M in values:
        for s in (1, 9, 20):
            rows += [(a, M, s) for a in accumulators(rng, 20, M, s, n=20)[:50]]
    got = simulate(20, rows, multiplier=values, shift="value", out_bits=8, relu=False,
                   registered=registered)
    expected = np.array([golden(a, M, s, relu=False, out_bits=8) for a, M, s in rows])
    np.testing.assert_array_equal(got, expected)
    assert expected.min() == -128 and expected.max() == 127


@pytest.mark.parametrize("multiplier", [181, (1, 77, 181, 2**14 + 1), "value"])
@pytest.mark.parametrize("s", [1, 2, 9])
def test_registered_with_a_constant_shift_holds_only_the_bits_it_rounds(multiplier, s):
    """A constant shift s > 1 (one layer's, a dataflow stage's): the product is held from bit
    s − 1 up; the outputs are the golden model's, ties and saturation included."""
    rng = np.random.default_rng(11 + s)
    values = multiplier if isinstance(multiplier, tuple) else \
        (181,) if multiplier == "value" else (multiplier,)
    rows = [(a, M, s) for M in values for a in accumulators(rng, 20, M, s, n=30)]
    if multiplier == "value":
        rows += [(a, 255, s) for a in accumulators(rng, 20, 255, s, n=30)]
    got = simulate(20, rows, multiplier=multiplier, shift=s, out_bits=8, relu=False,
                   registered=True)
    expected = np.array([golden(a, M, s, relu=False, out_bits=8) for a, M, s in rows])
    np.testing.assert_array_equal(got, expected)
    assert expected.min() == -128 and expected.max() == 127


def test_ties_round_up():
    # 2.5 → 3 and −2.5 → −2 (half up, toward +∞), as the golden model.
    got = simulate(8, [(5, 1, 1), (-5, 1, 1), (3, 1, 1), (-3, 1, 1)], multiplier=1, shift=1,
                   out_bits=8, relu=False)
    assert got.tolist() == [3, -2, 2, -1]


def test_bad_arguments():
    m, acc = Module(), Signal(signed(8))
    with pytest.raises(TypeError, match=r"^Accumulator must be a signed Value, "
                                        r"not unsigned\(8\)$"):
        requantize(m, Signal(8), 3, 2, out_bits=8, relu=True, name="q")
    with pytest.raises(ValueError, match=r"^Multiplier must be a positive integer, not 0$"):
        requantize(m, acc, 0, 2, out_bits=8, relu=True, name="q")
    with pytest.raises(TypeError, match=r"^Multiplier must be an int or an unsigned Value, "
                                        r"not signed\(4\)$"):
        requantize(m, acc, Signal(signed(4)), 2, out_bits=8, relu=True, name="q")
    with pytest.raises(ValueError, match=r"^Shift must be at least 1, not 0$"):
        requantize(m, acc, 3, 0, out_bits=8, relu=True, name="q")
    with pytest.raises(TypeError, match=r"^Shift must be an int or an unsigned Value, "
                                        r"not signed\(3\)$"):
        requantize(m, acc, 3, Signal(signed(3)), out_bits=8, relu=True, name="q")
    with pytest.raises(ValueError, match=r"^Output bits must be a positive integer, not 0$"):
        requantize(m, acc, 3, 2, out_bits=0, relu=True, name="q")
