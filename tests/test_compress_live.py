"""Self-pruning's final count on live neurons (``keep_live_scores``): exact, no kept weight on a
dead neuron, the same as the plain top scores when none is dead."""

import numpy as np

from slimgen.sw.compress.masked_train import weight_keys
from slimgen.sw.compress.self_prune import (dead_weights, dense_pairs, keep_live_scores,
                                            keep_top_scores)
from slimgen.sw.nn import build_model, cnn_spec, mlp_spec


def test_dense_pairs_follow_the_chain():
    m = build_model(mlp_spec((8, 6, 5, 3)), np.random.default_rng(0))
    keys = weight_keys(m)
    assert dense_pairs(m, keys) == [(keys[0], keys[1]), (keys[1], keys[2])]
    c = build_model(cnn_spec(), np.random.default_rng(0))
    assert dense_pairs(c, weight_keys(c)) == []          # conv → conv → pool/flatten → dense


def test_dead_neurons_lose_their_weights_to_the_next_best():
    a, b = (0, "W"), (2, "W")
    rng = np.random.default_rng(0)
    s_a = rng.random((6, 5)) + 1.0
    s_a[:, 4] += 5.0                 # neuron 4 has the best inputs ...
    s_b = rng.random((5, 3)) + 2.0
    s_b[4] = 0.1                     # ... and the worst outputs: the plain top scores waste them
    scores, pairs, t = {a: s_a, b: s_b}, [(a, b)], 1 - 20 / 45
    top = keep_top_scores(scores, t)
    assert dead_weights(top, pairs)[a][:, 4].sum() == 6
    live = keep_live_scores(scores, t, pairs)
    assert sum(int(m.sum()) for m in live.values()) == 20
    assert not any(d.any() for d in dead_weights(live, pairs).values())
    assert not live[a][:, 4].any() and not live[b][4].any()
    assert live[b][:4].all()         # every live neuron's outputs, then its best inputs
    assert np.array_equal(live[a][:, :4], s_a[:, :4] >= np.sort(s_a[:, :4], axis=None)[-8])


def test_never_more_dead_weights_than_the_top_scores():
    rng = np.random.default_rng(2)
    pairs = [((0, "W"), (2, "W")), ((2, "W"), (4, "W"))]
    for _ in range(20):
        scores = {(0, "W"): rng.random((8, 6)), (2, "W"): rng.random((6, 5)) ** 3,
                  (4, "W"): rng.random((5, 3))}
        for t in (0.5, 0.8):
            top, live = keep_top_scores(scores, t), keep_live_scores(scores, t, pairs)
            assert sum(int(m.sum()) for m in live.values()) == \
                sum(int(m.sum()) for m in top.values())
            assert (sum(int(d.sum()) for d in dead_weights(live, pairs).values())
                    <= sum(int(d.sum()) for d in dead_weights(top, pairs).values()))


def test_live_equals_top_when_nothing_is_dead():
    rng = np.random.default_rng(1)
    scores = {(0, "W"): rng.random((10, 6)) + 1.0, (2, "W"): rng.random((6, 4)) + 1.0}
    scores[(2, "W")][:, 0] += 5.0    # every hidden neuron keeps an output
    pairs = [((0, "W"), (2, "W"))]
    for t in (0.3, 0.6):
        top, live = keep_top_scores(scores, t), keep_live_scores(scores, t, pairs)
        assert not any(d.any() for d in dead_weights(top, pairs).values())
        assert all(np.array_equal(top[k], live[k]) for k in scores)


def test_average_ranks_by_the_mean_score_over_the_final_steps():
    """``average``: the mask keeps exactly the target count, the best mean |w|/β over the final
    fraction of the steps (here on live neurons too), and the pruned weights stay zero."""
    from slimgen.sw.compress import self_prune as sp
    from slimgen.sw.compress.masked_train import FitConfig
    from slimgen.sw.data import load_digits
    data = load_digits(view="vector", seed=0)
    seen = []

    class Spy(sp._MeanScores):
        def after_step(self, state):
            n = self.n
            super().after_step(state)
            if self.n > n:
                seen.append(self.tr.scores(state.raw))

    orig, sp._MeanScores = sp._MeanScores, Spy
    try:
        m = build_model(mlp_spec((64, 16, 10)), np.random.default_rng(0))
        cfg = sp.SelfPruneConfig(target_sparsity=0.9, epochs=3, finetune_epochs=1, average=0.4,
                                 live=True)
        r = sp.self_prune(m, data, cfg, fit=FitConfig(epochs=2, batch_size=64))
    finally:
        sp._MeanScores = orig
    steps = 3 * -(-len(data.part("train")[1]) // 64)
    assert len(seen) == round(0.4 * steps)
    mean = {k: sum(s[k] for s in seen) / len(seen) for k in r.masks}
    want = keep_live_scores(mean, 0.9, dense_pairs(m, weight_keys(m)))
    assert all(np.array_equal(r.masks[k], want[k]) for k in r.masks)
    n = sum(w.size for w in r.masks.values())
    assert sum(int(w.sum()) for w in r.masks.values()) == round(0.1 * n)
    for k, mask in r.masks.items():
        assert np.all(m.layers[k[0]].params[k[1]][~mask] == 0)
