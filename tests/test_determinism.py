"""Same seed, same bits: training, quantization and the generated Verilog."""

import numpy as np

from slimgen.hw.network import Network
from slimgen.hw.verilog import to_verilog
from slimgen.sw.data import load_digits
from slimgen.sw.nn import TrainConfig, build_model, mlp_spec, train
from slimgen.sw.network import preset
from slimgen.sw.quantize import quantize_network


def _train_and_quantize(seed):
    data = load_digits(seed=seed)
    model = build_model(mlp_spec((64, 16, 10)), np.random.default_rng(seed))
    train(model, data, TrainConfig(epochs=3, seed=seed), progress=False)
    return model, quantize_network(preset("mlp", sizes=(64, 16, 10)), model,
                                   data.part("train")[0], input_scale=1 / 16)


def test_same_seed_same_weights_and_verilog():
    m1, q1 = _train_and_quantize(1)
    m2, q2 = _train_and_quantize(1)
    for (k, a), b in zip(m1.state().items(), m2.state().values()):
        assert np.array_equal(a, b), k
    for l1, l2 in zip(q1.layers, q2.layers):
        assert np.array_equal(l1.W, l2.W) and l1.meta() == l2.meta()
    assert to_verilog(Network(q1, lanes=2), "network") == to_verilog(Network(q2, lanes=2),
                                                                     "network")
    _, q3 = _train_and_quantize(2)
    assert not np.array_equal(q1.layers[0].W, q3.layers[0].W)
