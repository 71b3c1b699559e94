"""Space files of `slimgen sweep`: what they hold, and one message naming the key for each
mistake, before anything is created."""

import json

import pytest

from slimgen.cli import main
from slimgen.sweep_space import SpaceError, load_space, space_from_dict

GOOD = """\
name: s1
fixed:
  model: mlp
  sizes: [64, 16, 10]
  epochs: 1
parameters:
  lanes: [1, 2]
  weight_bits: {low: 4, high: 8}
  lr: {low: 1.0e-3, high: 1.0e-2, log: true}
  sparsity: {low: 0.5, high: 0.9, step: 0.1}
  method: {choices: [none, magnitude]}
objectives:
  hardware_accuracy: max
  lc: min
n_trials: 7
"""


def _space(tmp_path, text, name="space.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_space_file_is_read_whole(tmp_path):
    s = load_space(_space(tmp_path, GOOD))
    assert s.name == "s1" and s.n_trials == 7 and s.sampler == "nsga2" and s.seed == 0
    assert [(p.name, p.kind) for p in s.params] == [
        ("lanes", "categorical"), ("weight_bits", "int"), ("lr", "float"),
        ("sparsity", "float"), ("method", "categorical")]
    assert s.params[2].log and s.params[3].step == 0.1
    assert s.objectives == (("hw_accuracy", "maximize"), ("lc_used", "minimize"))
    assert s.stages[-1] == "build"                  # a resource is an objective: it builds
    assert s.population_size == 4
    c = s.config({"lanes": 2, "weight_bits": 5})
    assert (c.model, c.sizes, c.epochs, c.lanes, c.weight_bits) == ("mlp", (64, 16, 10), 1, 2, 5)
    # the stored form reads back as the same space (a worker joining reads it from the study)
    assert space_from_dict(s.to_dict()) == s


def test_json_spaces_and_stages_without_build(tmp_path):
    d = {"parameters": {"lanes": [1, 2]}, "objectives": {"int_accuracy": "max"},
         "fixed": {"epochs": 1}}
    s = load_space(_space(tmp_path, json.dumps(d), "mine.json"))
    assert s.name == "mine" and s.stages == ("train", "compress", "quantize")


def test_model_kind_defaults_apply_under_the_fixed_settings(tmp_path):
    s = space_from_dict({"fixed": {"model": "cnn", "epochs": 1},
                         "parameters": {"lanes": [4, 8], "method": ["balanced", "magnitude"]},
                         "objectives": {"cycles": "min"}})
    c = s.config()
    assert (c.method, c.sim) == ("balanced", "verilator")      # the CNN's defaults


def test_a_grid_takes_its_size_as_steps(tmp_path):
    s = space_from_dict({"parameters": {"lanes": [1, 2], "weight_bits": {"low": 4, "high": 8,
                                                                        "step": 2}},
                         "objectives": {"int_accuracy": "max"}, "sampler": "grid"})
    assert [p.grid() for p in s.params] == [[1, 2], [4, 6, 8]]
    assert s.n_trials == 6


@pytest.mark.parametrize("text, message", [
    ("parameters: {lanes: [1]}\nobjectives: {int_accuracy: max}\ncolour: red\n",
     "unknown key 'colour'; the keys are name, fixed, parameters, objectives, n_trials, "
     "sampler, seed, population"),
    ("objectives: {int_accuracy: max}\n",
     "parameters: must be a mapping of one or more searched settings (e.g. lanes: [4, 8]), "
     "not None"),
    ("parameters: {lane: [1, 2]}\nobjectives: {int_accuracy: max}\n",
     "parameters.lane: is not a run setting; the settings are model, net"),
    ("parameters: {lanes: [1, 2]}\n", "objectives: must map one or more figures to max or "
                                      "min (e.g. hw_accuracy: max), not None"),
    ("parameters: {lanes: [1, 2]}\nobjectives: {luck: max}\n",
     "objectives.luck: is not a figure of a run; the figures are float_accuracy"),
    ("parameters: {lanes: [1, 2]}\nobjectives: {lc: up}\n",
     "objectives.lc: must be max or min, not 'up'"),
    ("parameters: {lr: {low: 1e-4, high: 1.0e-2}}\nobjectives: {lc: min}\n",
     "parameters.lr.low: must be a number, not '1e-4' (YAML reads 1e-4 as text: write "
     "1.0e-4)"),
    ("parameters: {lanes: {low: 4, high: 2}}\nobjectives: {lc: min}\n",
     "parameters.lanes: low (4) must be below high (2)"),
    ("parameters: {lanes: {low: 1, hi: 2}}\nobjectives: {lc: min}\n",
     "parameters.lanes.hi: is not a key of a parameter"),
    ("parameters: {lanes: [1, 2]}\nobjectives: {lc: min}\nsampler: tpe\n",
     "sampler: must be one of nsga2, random, grid, not 'tpe'"),
    ("parameters: {lanes: [1, 2]}\nobjectives: {lc: min}\nn_trials: 0\n",
     "n_trials: must be an integer from 1 to 100000, not 0"),
    ("parameters: {lr: {low: 0.001, high: 0.01}}\nobjectives: {lc: min}\nsampler: grid\n",
     "parameters.lr: needs a step (and no log) for the grid sampler, or a list of choices"),
    ("parameters: {lanes: [1, 2]}\nobjectives: {lc: min}\nfixed: {lanes: 2}\n",
     "parameters.lanes: is also in fixed: give it in one of them"),
    ("parameters: {lanes: [1, 0]}\nobjectives: {lc: min}\n",
     "parameters.lanes: the value 0 makes no valid run with any other parameter's values: "
     "lanes must be a positive integer, not 0"),
    ("parameters: {lanes: [1, 2]}\nobjectives: {lc: min}\nfixed: {epochs: -1}\n",
     "fixed.epochs: must be a positive integer, not -1"),
    ("parameters: {lanes: [8]}\nobjectives: {lc: min}\nfixed: {model: cnn, method: balanced}\n",
     "parameters.lanes: the value 8 makes no valid run with any other parameter's values: "
     "lanes must be at most 4 for balanced sparsity on the CNN"),
    ("parameters: [lanes]\nobjectives: {lc: min}\n", "parameters: must be a mapping"),
    ("name: a/b\nparameters: {lanes: [1, 2]}\nobjectives: {lc: min}\n",
     "name: must be a name of letters, digits"),
    ("parameters: {lanes: [1, 2\n", "is not valid YAML"),
])
def test_bad_space_files_name_the_key(tmp_path, text, message):
    path = _space(tmp_path, text)
    with pytest.raises(SpaceError) as e:
        load_space(path)
    assert str(e.value).startswith(f"{path}: {message}") or \
        (message == "is not valid YAML" and message in str(e.value))


def test_the_command_line_refuses_a_bad_space_before_creating_anything(tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _space(tmp_path, "parameters: {lanes: [1, 2]}\nobjectives: {lc: up}\n")
    assert main(["sweep", str(path)]) == 1
    assert capsys.readouterr().err == \
        f"slimgen sweep: error: {path}: objectives.lc: must be max or min, not 'up'\n"
    assert main(["sweep", str(tmp_path / "none.yaml")]) == 1
    assert "none.yaml: no such space file" in capsys.readouterr().err
    assert not (tmp_path / "sweep").exists()
    assert main(["sweep", "worker", "--storage", "nonsense", "--study", "x"]) == 1
    assert "slimgen sweep worker: error: cannot open the study's database nonsense" in \
        capsys.readouterr().err
