"""The SPRAM weight store's image and checks (hw/lib/weights.py); the store itself is simulated
in sim/test_network.py (the primitive has no Amaranth simulation model)."""

import pytest

from slimgen.hw.lib.weights import SPRAM_WORDS, SpramWeights, spram_blocks, weight_image


def test_rows_pack_lane_zero_in_the_low_bits_padded_to_halfwords():
    # 3 lanes of 5 bits: 15 bits, one SPRAM; row = w0 | w1 << 5 | w2 << 10 (two's complement)
    image = weight_image([[1, -1], [2, 0], [-16, 15]], 5)
    row0 = 1 | 2 << 5 | (-16 & 31) << 10
    row1 = 31 | 0 << 5 | 15 << 10
    assert image == bytes([row0 & 255, row0 >> 8, row1 & 255, row1 >> 8])


def test_a_row_wider_than_sixteen_bits_spans_several_sprams_low_halfword_first():
    assert spram_blocks(5, 8) == 3 and spram_blocks(2, 8) == 1 and spram_blocks(8, 8) == 4
    image = weight_image([[0x12], [0x34], [-1]], 8)
    assert image == bytes([0x12, 0x34, 0xFF, 0x00])


def test_out_of_range_words_and_bad_depths_are_refused():
    with pytest.raises(ValueError, match=r"Weight 8 does not fit 4 signed bits \(-8 … 7\)"):
        weight_image([[8]], 4)
    with pytest.raises(ValueError, match="same number of weight words"):
        weight_image([[1, 2], [3]], 4)
    with pytest.raises(ValueError, match=f"1 to {SPRAM_WORDS:,} weight words, not 16,385"):
        SpramWeights([[0] * (SPRAM_WORDS + 1)], 4)


def test_the_store_exposes_its_image_and_blocks():
    store = SpramWeights([[1, 2, 3]] * 4, 6)
    assert store.blocks == 2 and store.depth == 3 and len(store.image) == 2 * 2 * 3


# ---------------------------------------------------------------- the flow's choice and files

def _folded_config(memory, board="icebreaker"):
    from types import SimpleNamespace
    return SimpleNamespace(engines="folded", lanes=4, layout="rows", board=board,
                           weight_memory=memory)


@pytest.fixture(scope="module")
def mnist_sized_mlp():
    """784-64-10 with 8-bit weights: 8 lanes × 6,400 words, 410 kbit, over the UP5K's 120 kbit
    of block RAM and within its 1 Mbit of SPRAM."""
    import numpy as np
    from slimgen.sim.testing import dense_network, random_dense_layer
    rng = np.random.default_rng(3)
    return dense_network([random_dense_layer(rng, 784, 64),
                          random_dense_layer(rng, 64, 10, requant=False)])


def test_auto_puts_weights_the_block_rams_cannot_hold_in_spram_on_the_icebreaker(
        mnist_sized_mlp):
    from slimgen.models.mlp import make_network
    net = make_network(mnist_sized_mlp, _folded_config("auto"))
    assert net.weights == "spram" and net.weight_bytes == 2 * 4 * 6400
    assert make_network(mnist_sized_mlp, _folded_config("bram")).weights == "bram"
    # the ULX3S has no SPRAM: its block RAMs hold them
    assert make_network(mnist_sized_mlp, _folded_config("auto", "ulx3s-85f")).weights == "bram"


def test_auto_keeps_a_small_mlp_in_block_ram():
    import numpy as np
    from slimgen.models.mlp import make_network
    from slimgen.sim.testing import dense_network, random_dense_layer
    rng = np.random.default_rng(4)
    q = dense_network([random_dense_layer(rng, 64, 32),
                       random_dense_layer(rng, 32, 10, requant=False)])
    assert make_network(q, _folded_config("auto")).weights == "bram"


def test_spram_is_refused_where_it_cannot_be_used(mnist_sized_mlp):
    from slimgen.flow import RunConfig, SettingError
    from slimgen.models.mlp import make_network
    with pytest.raises(SettingError, match=r"^weight_memory 'spram' .* which the ulx3s-85f does "
                                           r"not have; give 'bram' or 'auto'"):
        RunConfig(weight_memory="spram", board="ulx3s-85f")
    with pytest.raises(SettingError, match=r"the cnn engine keeps its weights in block RAM"):
        RunConfig(model="cnn", weight_memory="spram")
    with pytest.raises(SettingError, match=r"^weight_memory must be one of"):
        RunConfig(weight_memory="flash")
    config = _folded_config("spram")
    config.engines = "dense"
    with pytest.raises(ValueError, match=r"weights in SPRAM need the folded engine"):
        make_network(mnist_sized_mlp, config)


def test_a_network_the_compiler_builds_takes_spram_and_a_preset_engines_does_not():
    """A --net the compiler builds (a 1-D CNN) keeps its weight rows in SPRAM when asked (the
    same schedule: sim/test_fuzz.py runs such a case); one the CNN preset's engine takes is
    refused with the reason."""
    from types import SimpleNamespace

    import numpy as np
    from slimgen.models.net import make_network
    from slimgen.sw.network import check_network
    from slimgen.sw.random_network import random_int_network

    def config(memory):
        return SimpleNamespace(lanes=4, board="icebreaker", net="n.json", engine="auto",
                               method="none", layout="rows", weight_memory=memory)
    rng = np.random.default_rng(6)
    conv1d = random_int_network(rng, check_network({"name": "c1", "layers": [
        {"type": "input", "shape": [16, 4]}, {"type": "conv1d", "channels": 8, "kernel": 5},
        {"type": "relu"}, {"type": "flatten"}, {"type": "dense", "units": 10}]}),
        density=1.0, weight_bits=8, act_bits=8)
    in_spram, in_bram = (make_network(conv1d, config(m)) for m in ("spram", "bram"))
    in_spram._MustUse__silence = in_bram._MustUse__silence = True    # not elaborated here
    assert in_spram.slimgen_kind == "compiler" and in_spram.weights == "spram"
    assert in_spram.weight_bytes == 2 * spram_blocks(4, in_spram.weight_bits) \
        * in_spram.weight_depth and "load" in in_spram.signature.members
    assert in_bram.weights == "bram" and "load" not in in_bram.signature.members
    cnn = random_int_network(rng, check_network({"name": "c2", "layers": [
        {"type": "input", "shape": [8, 8, 1]}, {"type": "conv2d", "channels": 4, "kernel": 3},
        {"type": "relu"}, {"type": "maxpool", "size": 2}, {"type": "flatten"},
        {"type": "dense", "units": 10}]}), density=1.0, weight_bits=8, act_bits=8)
    with pytest.raises(ValueError, match=r"^--weight-memory spram is for the compiler's shared "
                                         r"array .*; c2 runs on the cnn preset's engine, which "
                                         r"keeps its weights in block RAM: give --weight-memory "
                                         r"bram or auto$"):
        make_network(cnn, config("spram"))


def test_generate_writes_the_image_and_verify_refuses_one_of_another_length(tmp_path):
    import json
    from dataclasses import replace
    from slimgen.flow import FlowError, Run, run_stage
    from slimgen.sim.testing import untrained_int_run
    _, config = untrained_int_run("mlp", tmp_path)
    run = Run(tmp_path, replace(config, weight_memory="spram"), progress=False,
              log=lambda msg: None)
    figures = run_stage(run, "generate")
    image = (tmp_path / "weights.bin").read_bytes()
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert figures["weight_memory"] == plan["weight_memory"] == "spram"
    assert len(image) == figures["weight_bytes"] == plan["weight_bytes"] > 0
    (tmp_path / "weights.bin").write_bytes(image[:-2])
    with pytest.raises(FlowError, match=rf"weights.bin is {len(image) - 2:,} bytes, but the "
                                        rf"network of .*plan.json takes {len(image):,}"):
        run_stage(run, "verify")
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(FlowError, match=r"weights.bin does not exist, but generate put the "
                                        r"weights in SPRAM"):
        run_stage(run, "verify")
    # back to block RAM: generate removes the image nobody would send
    run = Run(tmp_path, replace(config, weight_memory="bram"), progress=False,
              log=lambda msg: None)
    (tmp_path / "weights.bin").write_bytes(image)
    assert run_stage(run, "generate")["weight_memory"] == "bram"
    assert not (tmp_path / "weights.bin").exists()
    assert "weight_bytes" not in json.loads((tmp_path / "plan.json").read_text())


def test_the_resource_model_counts_the_sprams_and_the_build_check_refuses_too_many(
        mnist_sized_mlp):
    from dataclasses import replace
    from slimgen.boards.build import DesignDoesNotFit, get_board
    from slimgen.boards.estimate import check_estimate
    from slimgen.boards.resource_model import predict_top
    from slimgen.hw.compiler import compile_network
    board = get_board("icebreaker")
    p = predict_top(mnist_sized_mlp, board,
                    network_factory=lambda: compile_network(mnist_sized_mlp, lanes=8,
                                                            weights="spram"))
    assert p.spram == 4 and p.to_dict()["spram_estimate"] == 4 and p.bram < 30
    assert check_estimate(p, board) is p
    with pytest.raises(DesignDoesNotFit, match=r"SPRAMs: 5 needed, 4 available"):
        check_estimate(replace(p, spram=5), board)
    with pytest.raises(DesignDoesNotFit, match=r"SPRAMs: 4 needed, 0 available"):
        check_estimate(p, get_board("ulx3s-85f"))
