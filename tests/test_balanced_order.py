# amaranth: UnusedElaboratable=no
"""Input banks with a chosen input order (method 5): the layout, the balance trained under the
order, and the order carried from the compressed model to the network's first sparse engine."""

from dataclasses import replace

import numpy as np
import pytest
from amaranth.hdl import Fragment

from slimgen.sim.testing import (balanced_mask, dense_network, random_dense_layer,
                                 random_sparse_layer)
from slimgen.sw.compress.balanced import (BalancedConfig, as_rows, bank_of, balanced_prune,
                                          deal_inputs, group_counts, tile_inputs)
from slimgen.sw.compress.masked_train import FitConfig, weight_keys
from slimgen.sw.compress.self_prune import SelfPruneConfig
from slimgen.sw.data import load_digits
from slimgen.sw.golden import dense_accumulate
from slimgen.sw.nn import build_model, mlp_spec
from slimgen.sw.sparse_layout import (SparseLayout, build_layout, check_order,
                                      lane_of, lane_partials, layout_accumulate)

FIT = FitConfig(epochs=2, batch_size=64, lr=1e-3, lr_threshold=1e-2)
SP = SelfPruneConfig(target_sparsity=0.9, epochs=3, finetune_epochs=2, lr_lambda=0.1)


@pytest.fixture(scope="module")
def digits():
    return load_digits(view="vector", seed=0)


# -- the layout ---------------------------------------------------------------------------------

def test_check_order():
    assert check_order(None, 4) is None
    assert check_order(range(4), 4) is None                      # the identity is the plain layout
    assert check_order(np.array([2, 0, 3, 1]), 4) == (2, 0, 3, 1)
    with pytest.raises(ValueError, match=r"^Input order must have 4 entries \(a permutation of "
                                         r"range\(4\)\), not 3$"):
        check_order([2, 0, 1], 4)
    with pytest.raises(ValueError, match=r"^Input order must be a permutation of range\(4\); "
                                         r"missing \[3\]$"):
        check_order([2, 0, 1, 1], 4)
    with pytest.raises(ValueError, match=r"^Input order must be a permutation of range\(4\); "
                                         r"missing \[3\], out of range \[-1\]$"):
        check_order([2, 0, 1, -1], 4)
    with pytest.raises(ValueError, match=r"^Input order must be a sequence of integers \(a "
                                         r"permutation of range\(4\)\), not \[0\.0, 1\.0, 2\.0, "
                                         r"3\.0\]$"):
        check_order([0.0, 1.0, 2.0, 3.0], 4)


@pytest.mark.parametrize("lanes,index_bits,dense", [(3, None, False), (4, 1, False),
                                                    (4, None, True)])
def test_ordered_layout_round_trip(lanes, index_bits, dense):
    rng = np.random.default_rng(lanes)
    order = rng.permutation(12)
    mask = balanced_mask(rng.normal(size=(9, 12)), lanes=lanes, layout="banks", density=0.4,
                         order=order)
    layer = random_sparse_layer(rng, mask, weight_bits=6, in_signed=True, requant=False)
    lay = build_layout(layer.W, lanes=lanes, layout="banks", weight_bits=6,
                       index_bits=index_bits, dense=dense, order=order)
    assert lay.order == tuple(order)
    np.testing.assert_array_equal(lay.decode(), layer.W)
    v = rng.integers(-128, 128, 12)
    np.testing.assert_array_equal(layout_accumulate(lay, layer.b, v),
                                  dense_accumulate(v[None], layer.W, layer.b)[0])
    # lane p's local column c holds input order[c·P + p]: its partial sums use only those
    part = lane_partials(lay, v)
    lane = lane_of(layer.W.shape, lanes, "banks", order)
    for p in range(lanes):
        np.testing.assert_array_equal(part[p], (np.where(lane == p, layer.W, 0) * v).sum(axis=1))
    back = SparseLayout.from_dict(lay.to_dict())
    assert back.order == lay.order and back.words == lay.words
    if not dense and index_bits is None:   # balanced in its own banks: equal lanes, no dummy
        assert len(set(lay.lane_lengths)) == 1 and lay.dummies == 0


def test_plain_layout_is_unchanged_by_an_identity_order():
    rng = np.random.default_rng(0)
    W = np.where(rng.random((6, 10)) < 0.4, rng.integers(-7, 8, (6, 10)), 0)
    plain = build_layout(W, lanes=3, layout="banks")
    same = build_layout(W, lanes=3, layout="banks", order=list(range(10)))
    assert same.order is None and same.words == plain.words
    d = plain.to_dict()
    del d["order"]                                               # a layout saved before orders
    assert SparseLayout.from_dict(d).order is None
    with pytest.raises(ValueError, match=r"^An input order applies to the banks layout, not "
                                         r"'rows'$"):
        build_layout(W, lanes=3, layout="rows", order=rng.permutation(10))


# -- choosing the order -------------------------------------------------------------------------

@pytest.mark.parametrize("n_in,groups", [(64, 4), (64, 8), (10, 4)])
def test_dealt_order_shares_out_the_important_inputs(n_in, groups):
    rng = np.random.default_rng(n_in + groups)
    importance = rng.random(n_in)
    order = deal_inputs(importance, groups)
    assert sorted(order.tolist()) == list(range(n_in))
    bank = bank_of(n_in, groups, order)
    ranked = np.argsort(-importance)
    for c in range(n_in // groups):          # every round of the deal: one input to every bank
        assert sorted(bank[ranked[c * groups:(c + 1) * groups]].tolist()) == list(range(groups))
    np.testing.assert_array_equal(np.bincount(bank, minlength=groups),
                                  np.bincount(np.arange(n_in) % groups, minlength=groups))


@pytest.mark.parametrize("groups,block", [(4, (2, 2)), (8, (2, 4)), (2, (1, 2))])
def test_tiled_order_spreads_every_bank_over_the_image(groups, block):
    order = tile_inputs(64, groups)
    bank = bank_of(64, groups, order).reshape(8, 8)
    a, b = block
    for r in range(0, 8, a):                 # every a × b patch holds one pixel of every bank
        for c in range(0, 8, b):
            assert sorted(bank[r:r + a, c:c + b].ravel().tolist()) == list(range(groups))
    assert tile_inputs(60, 4) is None and tile_inputs(36, 8) is None


# -- balanced sparsity under the order ----------------------------------------------------------

@pytest.mark.parametrize("input_order", ["dealt", "tiled"])
def test_balanced_prune_is_exact_in_its_own_banks(digits, input_order):
    def run():
        m = build_model(mlp_spec((64, 16, 10)), np.random.default_rng(0))
        cfg = BalancedConfig(groups=4, layout="banks", prune=SP, input_order=input_order)
        return balanced_prune(m, digits, cfg, fit=FIT)
    r = run()
    order = r.info["input_order"]
    assert sorted(order) == list(range(64)) and order != list(range(64))
    keys = weight_keys(r.model)
    for n, k in enumerate(keys):
        w = as_rows(r.model.layers[k[0]].params[k[1]], "dense")
        banks = bank_of(w.shape[1], 4, order if n == 0 else None)
        counts = group_counts((w != 0).astype(float), 4, "banks", banks)
        assert all(len(set(row)) == 1 for row in counts.tolist())
        assert r.info["group_counts"][f"{k[0]}.{k[1]}"] == counts.astype(int).tolist()
    again = run()                                                  # same seed, same bits
    assert again.info["input_order"] == order
    for k in keys:
        np.testing.assert_array_equal(again.model.layers[k[0]].params[k[1]],
                                      r.model.layers[k[0]].params[k[1]])


def test_natural_order_and_rows_return_no_order(digits):
    m = build_model(mlp_spec((64, 16, 10)), np.random.default_rng(0))
    r = balanced_prune(m, digits, BalancedConfig(groups=4, layout="banks", prune=SP), fit=FIT)
    assert r.info["input_order"] is None
    m = build_model(mlp_spec((64, 16, 10)), np.random.default_rng(0))
    cfg = BalancedConfig(groups=4, layout="rows", prune=SP, input_order="dealt")
    assert balanced_prune(m, digits, cfg, fit=FIT).info["input_order"] is None
    with pytest.raises(ValueError, match=r"^input_order must be one of 'natural', 'dealt', "
                                         r"'tiled', not 'x'$"):
        BalancedConfig(input_order="x")


# -- carried through quantize to the hardware ---------------------------------------------------

def test_quantize_carries_the_order(digits):
    from slimgen.sw.network import preset
    from slimgen.sw.quantize import quantize_network
    net = preset("mlp", sizes=(64, 16, 10))
    model = build_model(net.float_spec()[0], np.random.default_rng(0))
    x = digits.part("train")[0]
    order = deal_inputs(np.arange(64.0), 4).tolist()
    q = quantize_network(net, model, x, input_scale=1 / 16, input_order=order)
    assert q.input_order == tuple(order)
    assert quantize_network(net, model, x, input_scale=1 / 16).input_order is None
    with pytest.raises(ValueError, match=r"^Input order must have 64 entries"):
        quantize_network(net, model, x, input_scale=1 / 16, input_order=order[:-1])


def _ordered_model(rng, order):
    l0 = random_dense_layer(rng, 12, 8, density=0.3)
    l1 = random_dense_layer(rng, 8, 3, requant=False, density=0.5)
    return dense_network([l0, l1], input_order=order)


@pytest.mark.parametrize("lanes", [3, 4])
def test_network_banks_store_the_first_layer_in_order(lanes):
    from hw_sim import run_stream
    from slimgen.hw.network import Network
    rng = np.random.default_rng(lanes)
    order = tuple(int(i) for i in rng.permutation(12))
    q = _ordered_model(rng, order)
    dut = Network(q, lanes=lanes, engines="sparse", layout="banks")
    assert dut.engines[0].sparse_layout.order == order
    assert dut.engines[1].sparse_layout.order is None
    x = rng.integers(0, 256, (3, 12))                            # inputs in their natural order
    out, _ = run_stream(dut, x.reshape(-1), len(x))
    expected = q(x)
    for k, payload in enumerate(out):
        assert [int(v) for v in payload.logits] == expected[k].tolist()
    rows = Network(q, lanes=lanes, engines="sparse", layout="rows")   # no use for an order
    assert rows.engines[0].sparse_layout.order is None
    Fragment.get(rows, None)                                     # elaborated, so never unused
    with pytest.raises(ValueError, match=r"^Input order must have 12 entries"):
        replace(q, input_order=order[:-1])

