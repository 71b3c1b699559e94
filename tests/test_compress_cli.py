"""``slimgen compress`` (through its own parser; the lead wires it into slimgen.cli)."""

import argparse
import json

import numpy as np
import pytest

from slimgen import compress_cli
from slimgen.sw.artifact import load_artifact, load_float_model, save_float_model
from slimgen.sw.nn import build_model, mlp_spec


def _main(argv):
    p = argparse.ArgumentParser()
    compress_cli.add_parser(p.add_subparsers(dest="command"))
    return compress_cli.run(p.parse_args(argv))


@pytest.fixture
def float_model(tmp_path):
    path = tmp_path / "float.npz"
    save_float_model(path, build_model(mlp_spec((64, 16, 10)), np.random.default_rng(0)),
                     dataset="digits", split_seed=0)
    return path


@pytest.mark.parametrize("method, extra", [
    ("joint", ["--bits", "4"]),
    ("balanced", ["--groups", "4", "--layout", "banks"]),
])
def test_compress_writes_contract(tmp_path, float_model, capsys, method, extra):
    out = tmp_path / "c.npz"
    rc = _main(["compress", "--in", str(float_model), "--out", str(out), "--method", method,
                "--sparsity", "0.8", "--epochs", "2", "--finetune-epochs", "1", "--quiet",
                "--json", *extra])
    assert rc == 0
    figures = json.loads(capsys.readouterr().out)
    manifest, _ = load_artifact(out, "float")
    c = manifest["compression"]
    assert c["method"] == figures["method"] and abs(c["sparsity"] - 0.8) < 0.03
    model, _ = load_float_model(out)
    zeros = np.mean(np.concatenate([l.params["W"].ravel() for l in model.layers
                                    if l.kind == "dense"]) == 0)
    assert np.isclose(zeros, c["sparsity"])
    if method == "joint":
        assert len(c["layer_weight_bits"]) == 2
    else:
        assert c["groups"] == 4 and c["layout"] == "banks"


def test_compress_missing_input(tmp_path, capsys):
    rc = _main(["compress", "--in", str(tmp_path / "none.npz"), "--out", str(tmp_path / "c.npz"),
                "--method", "self_prune"])
    assert rc == 1
    assert capsys.readouterr().err.startswith("slimgen compress: error: Model file ")


def test_joint_keeps_one_width_per_conv_and_dense_layer_of_a_cnn(tmp_path, capsys):
    from slimgen.sw.nn import cnn_spec
    path, out = tmp_path / "cnn.npz", tmp_path / "c.npz"
    save_float_model(path, build_model(cnn_spec(channels=(2, 4)), np.random.default_rng(0)),
                     dataset="digits", split_seed=0)
    assert _main(["compress", "--in", str(path), "--out", str(out), "--method", "joint",
                  "--bits", "4", "--sparsity", "0.5", "--epochs", "1", "--quiet", "--json"]) == 0
    bits = json.loads(capsys.readouterr().out)["layer_weight_bits"]
    manifest, _ = load_artifact(out, "float")
    assert manifest["compression"]["layer_weight_bits"] == bits
    assert len(bits) == 3 and all(b in (2, 3, 4, 6, 8) for b in bits)  # conv, conv, dense


def test_alpha_max_ratio_reaches_the_method_and_a_bad_one_is_refused(tmp_path, float_model,
                                                                     capsys):
    out = tmp_path / "c.npz"
    base = ["compress", "--in", str(float_model), "--out", str(out), "--method", "self_prune",
            "--sparsity", "0.5", "--epochs", "1", "--finetune-epochs", "1", "--quiet"]
    assert _main(base + ["--alpha-max-ratio", "1.0"]) == 0
    assert load_artifact(out, "float")[0]["compression"]["config"]["alpha_max_ratio"] == 1.0
    out.unlink()
    assert _main(base + ["--alpha-max-ratio", "0.1"]) == 1
    assert capsys.readouterr().err == ("slimgen compress: error: --alpha-max-ratio must be a "
                                       "number ≥ 0.2 (the floor of every threshold's α/β), "
                                       "not 0.1\n")
    assert not out.exists()                     # nothing written for a refused configuration
    assert _main(base) == 0                     # the default: no ceiling
    assert load_artifact(out, "float")[0]["compression"]["config"]["alpha_max_ratio"] is None
