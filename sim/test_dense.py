"""Launch the dense-engine bench on random layers (random and extreme data): bit-exact alone,
back to back and with a sometimes-ready consumer; the latency and interval the model's."""

import io

import numpy as np
import pytest

from slimgen.hw.dense import DenseEngine
from slimgen.hw.verilog import to_verilog
from slimgen.sim.runner import default_simulator, run_bench
from slimgen.sw.artifact import write_bytes_atomic
from slimgen.sw.golden import dense

from .testing import random_dense_layer, require_simulator

CASES = {
    "random-requant": dict(n_in=24, n_out=10, lanes=4, requant=True, extreme=None),
    "random-logits": dict(n_in=17, n_out=5, lanes=2, requant=False, extreme=None),
    "sparse-1lane": dict(n_in=8, n_out=3, lanes=1, requant=True, extreme=None, density=0.3),
    "extreme-max": dict(n_in=32, n_out=4, lanes=4, requant=False, extreme="max"),
    "extreme-min": dict(n_in=32, n_out=4, lanes=4, requant=False, extreme="min"),
    # Expanding layers: the serializer (n_out a vector), not the lanes, sets the interval.
    "send-bound": dict(n_in=6, n_out=20, lanes=10, requant=True, extreme=None),
    "one-input": dict(n_in=1, n_out=7, lanes=3, requant=False, extreme=None),
    "two-inputs": dict(n_in=2, n_out=9, lanes=2, requant=True, extreme=None),
    "three-inputs": dict(n_in=3, n_out=11, lanes=2, requant=False, extreme=None),
}


@pytest.mark.sim
@pytest.mark.parametrize("case", list(CASES))
def test_dense_bench(case, tmp_path):
    run_case(case, default_simulator(), tmp_path)


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("case", ["random-requant",
                                  pytest.param("send-bound", marks=pytest.mark.long)])
def test_dense_bench_on_verilator(case, tmp_path):
    """The default simulator is Icarus; one case on the other in CI, both with -m long."""
    run_case(case, "verilator", tmp_path)


def test_random_ready_needs_a_generator():
    import asyncio
    from slimgen.sim.streams import stream_get
    with pytest.raises(ValueError, match=r"^A ready probability below 1 needs a random "
                                         r"generator \(rng\)$"):
        asyncio.run(stream_get(None, "o", 1, ready_probability=0.5))
    with pytest.raises(ValueError, match=r"^Ready probability must be in \(0, 1\], not 0$"):
        asyncio.run(stream_get(None, "o", 1, ready_probability=0))


def run_case(case, sim, tmp_path):
    require_simulator(sim)
    c = dict(CASES[case])
    lanes, n_in = c.pop("lanes"), c["n_in"]
    rng = np.random.default_rng(sorted(CASES).index(case))
    layer = random_dense_layer(rng, c.pop("n_in"), c.pop("n_out"), **c)
    x = np.concatenate([rng.integers(0, 256, (6, n_in)), np.full((1, n_in), 255),
                        np.zeros((1, n_in), dtype=np.int64)])
    expected = dense(x, layer)
    verilog = tmp_path / "dense.v"
    engine = DenseEngine(layer, lanes=lanes)
    write_bytes_atomic(verilog, to_verilog(engine, "dense").encode())
    buf = io.BytesIO()
    np.savez(buf, inputs=x, expected=expected, signed_out=not layer.requant,
             out_bits=layer.out_width, latency=engine.cycles_per_vector,
             interval=engine.interval, seed=sorted(CASES).index(case))
    write_bytes_atomic(tmp_path / "data.npz", buf.getvalue())
    run_bench(verilog=verilog, toplevel="dense", test_module="slimgen.sim.dense_tb",
              build_dir=tmp_path / "build", sim=sim,
              extra_env={"SLIMGEN_TB_DATA": tmp_path / "data.npz"})
