"""The compressed weight layout: exact words, fillers, dummies, round trips, cycle model."""

import numpy as np
import pytest

from slimgen.sim.testing import balanced_mask, magnitude_mask, random_sparse_layer
from slimgen.sw.golden import dense, dense_accumulate
from slimgen.sw.integer_model import IntDense
from slimgen.sw.sparse_layout import SparseLayout, build_layout, lane_partials, layout_accumulate


def test_words_of_a_small_row():
    # columns 1 (3) and 4 (−2): runs 1 and 2, so 2 index bits; value in bits 0..3.
    lay = build_layout(np.array([[0, 3, 0, 0, -2]]), lanes=1, weight_bits=4)
    assert lay.index_bits == 2 and lay.word_bits == 7
    assert lay.words == ((3 | 1 << 4, (-2 & 0xF) | 2 << 4 | 1 << 6),)
    assert [lay.fields(w) for w in lay.words[0]] == [(3, 1, 0), (-2, 2, 1)]


def test_fillers_and_dummies():
    W = np.array([[0, 0, 0, 0, 0, 5], [0, 0, 0, 0, 0, 0]])
    lay = build_layout(W, lanes=1, weight_bits=4, index_bits=1)
    # run 5 with at most 1 per word: fillers at columns 1 and 3, then the 5 at column 5.
    assert [lay.fields(w) for w in lay.words[0]] == [(0, 1, 0), (0, 1, 0), (5, 1, 1), (0, 0, 1)]
    assert (lay.fillers, lay.dummies, lay.nnz) == (2, 1, 1)
    np.testing.assert_array_equal(lay.decode(), W)


@pytest.mark.parametrize("layout", ["rows", "banks"])
@pytest.mark.parametrize("lanes", [1, 3, 4])
@pytest.mark.parametrize("index_bits,dense", [(None, False), (1, False), (3, False), (None, True)])
def test_round_trip_and_lane_sums(layout, lanes, index_bits, dense):
    rng = np.random.default_rng(lanes)
    mask = magnitude_mask(rng.normal(size=(9, 14)), nnz=40)
    mask[2] = False
    mask[5] = True
    layer = random_sparse_layer(rng, mask, weight_bits=6, in_signed=True, requant=False)
    lay = build_layout(layer.W, lanes=lanes, layout=layout, weight_bits=6,
                       index_bits=index_bits, dense=dense)
    np.testing.assert_array_equal(lay.decode(), layer.W)
    v = rng.integers(-128, 128, 14)
    np.testing.assert_array_equal(layout_accumulate(lay, layer.b, v),
                                  dense_accumulate(v[None], layer.W, layer.b)[0])
    assert sum(lay.lane_lengths) == lay.nnz + lay.fillers + lay.dummies
    assert lay.stream_cycles >= lay.lower_bound
    assert SparseLayout.from_dict(lay.to_dict()).words == lay.words


@pytest.mark.parametrize("layout", ["rows", "banks"])
@pytest.mark.parametrize("lanes", [4, 8])
def test_balanced_reaches_the_lower_bound(layout, lanes):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(32, 64))
    mask = balanced_mask(W, lanes=lanes, layout=layout, density=0.25)
    lay = build_layout(np.where(mask, 1, 0), lanes=lanes, layout=layout)
    assert len(set(lay.lane_lengths)) == 1 and lay.dummies == 0
    assert lay.stream_cycles == lay.lower_bound and lay.utilisation == 1.0
    unbalanced = build_layout(np.where(magnitude_mask(W, nnz=lay.nnz), 1, 0), lanes=lanes,
                              layout=layout)
    assert unbalanced.nnz == lay.nnz and unbalanced.stream_cycles > lay.stream_cycles


def test_lane_partials_rows_and_banks():
    W = np.arange(1, 13).reshape(3, 4) * np.array([1, 0, 1, 1])
    v = np.array([1, 2, 3, 4])
    rows = lane_partials(build_layout(W, lanes=2, layout="rows"), v)
    np.testing.assert_array_equal(rows, [[W[0] @ v, W[2] @ v], [W[1] @ v, 0]])
    banks = lane_partials(build_layout(W, lanes=2, layout="banks"), v)
    np.testing.assert_array_equal(banks, [W[:, 0::2] @ v[0::2], W[:, 1::2] @ v[1::2]])


def test_layout_errors():
    W = np.ones((3, 4), dtype=np.int64)
    with pytest.raises(ValueError, match=r"^Layout must be one of 'rows', 'banks', not 'cols'$"):
        build_layout(W, lanes=2, layout="cols")
    with pytest.raises(TypeError, match=r"^Lane count must be a positive integer, not 0$"):
        build_layout(W, lanes=0)
    with pytest.raises(ValueError, match=r"^Lane count must be at most the layer's 3 outputs, "
                                         r"not 4$"):
        build_layout(W, lanes=4)
    with pytest.raises(ValueError, match=r"^Lane count must be at most the layer's 4 inputs, "
                                         r"not 5$"):
        build_layout(W, lanes=5, layout="banks")
    with pytest.raises(ValueError, match=r"^Weights must lie in \[−1, 1\] for 2 bits, found 2$"):
        build_layout(W * 2, lanes=1, weight_bits=2)
    with pytest.raises(ValueError, match=r"^Index bits must be an integer from 1 to 16, not 0$"):
        build_layout(W, lanes=1, index_bits=0)
    with pytest.raises(ValueError, match=r"^A dense layout has no index field"):
        build_layout(W, lanes=1, index_bits=2, dense=True)
    with pytest.raises(TypeError, match=r"^W must be an integer array, not float64$"):
        build_layout(W * 1.0, lanes=1)


def test_layer_accumulator_width_is_exact():
    """The accumulator width the sparse array is built for holds every sum of a layer with
    extreme weights on inputs at either end of their range, signed or not, and is tight."""
    rng = np.random.default_rng(3)
    for signed in (False, True):
        layer = random_sparse_layer(rng, rng.random((6, 10)) < 0.5, in_signed=signed,
                                    requant=False, extreme="max")
        lo, hi = (-128, 127) if signed else (0, 255)
        acc = dense(np.array([[lo] * 10, [hi] * 10]), layer)
        bound = 1 << (layer.acc_bits - 1)
        assert np.all(acc >= -bound) and np.all(acc < bound)
        assert np.abs(acc).max() >= bound // 2   # the width is tight
    with pytest.raises(ValueError, match=r"^IntDense: weights must lie in \[−1, 1\] for 2 bits, "
                                         r"found 3$"):
        IntDense(np.full((1, 1), 3), np.zeros(1, dtype=np.int64), weight_bits=2)
