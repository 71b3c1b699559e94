"""Bad inputs found in review of issue 21: each is refused with one message naming the bad
value and what would be right, before anything in the run folder changes; or, where it is
not an error, noticed and said.

Uses the small trained run of :mod:`test_run_settings` (MLP 64-8-10, one epoch, quantized and
generated) and its helpers.
"""

import json
import shutil

import numpy as np
import pytest

from slimgen.cli import main
from test_run_settings import data_files, refused, run, snapshot, trained  # noqa: F401


def refused_in_stage(argv, run, capsys):
    """Like :func:`refused`, for a refusal once the stage has started (after its ``== stage
    ==`` line): the folder is unchanged and the error is the last line."""
    before = snapshot(run)
    assert main(argv + ["--run", str(run), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert snapshot(run) == before
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line]
    assert lines[:-1] == [f"== {argv[0]} =="], err
    return lines[-1]


# ---- 1. settings that passed the checks, then failed after the folder was wiped ---------------

@pytest.mark.parametrize("argv, message", [
    (["flow", "--method", "balanced", "--lanes", "9", "--compress-epochs", "1",
      "--finetune-epochs", "0", "--skip-build"],
     "--lanes must be at most 8 for balanced sparsity on the MLP 64-8-10 with layout rows (one "
     "row group per lane in every layer, and layer0 has only 8 outputs), not 9"),
    (["flow", "--method", "balanced", "--layout", "banks", "--lanes", "64",
      "--compress-epochs", "1", "--finetune-epochs", "0", "--skip-build"],
     "--lanes must be at most 8 for balanced sparsity on the MLP 64-8-10 with layout banks (one "
     "input bank per lane in every layer, and layer1 has only 8 inputs), not 64"),
    (["compress", "--model", "cnn", "--lanes", "8"],
     "--lanes must be at most 4 for balanced sparsity on the CNN (one row group per lane in "
     "every layer, and conv0 has only 4 output channels), not 8"),
    (["train", "--sizes", "64,100000000,10"],
     "--sizes must be at most 4096 units a layer (what the artifacts and the hardware take), "
     "not 100000000 (layer0 outputs)"),
    (["train", "--model", "lstm", "--hidden", "100000"],
     "--hidden must be at most 4096 (what the artifacts and the hardware take), not 100000"),
    (["train", "--epochs", "99999999999999999999"],
     "--epochs must be at most 100000 (a bound on training time), not 99999999999999999999"),
    (["train", "--method", "magnitude", "--compress-epochs", "0"],
     "--compress-epochs must be an integer from 1 to 100000, or unset for the method's "
     "default, not 0"),
])
def test_a_setting_that_would_fail_later_is_refused_at_once(run, capsys, argv, message):
    assert refused(argv, run, capsys) == f"slimgen {argv[0]}: error: {message}"


# ---- 3. stage records of the wrong type --------------------------------------------------------

@pytest.mark.parametrize("name, text, message", [
    ("train.json", "[1,2]", "{r}/train.json is not a stage record (a JSON object) but [1, 2]: "
                            "delete it and rerun the train stage ('slimgen train --run {r}')"),
    ("generate.json", '"x"', "{r}/generate.json is not a stage record (a JSON object) but "
                             "\"x\": delete it and rerun the generate stage ('slimgen generate "
                             "--run {r}')"),
    ("generate.json", '{"layers": 5}', "{r}/generate.json is not a valid stage record: layers "
                                       "is 5, not a list of layer entries: delete it and rerun "
                                       "the generate stage ('slimgen generate --run {r}')"),
    ("generate.json", '{"layers": [1]}', "{r}/generate.json is not a valid stage record: "
                                         "layers[0] is 1, not a layer entry (a JSON object): "
                                         "delete it and rerun the generate stage ('slimgen "
                                         "generate --run {r}')"),
    ("verify.json", '{"cycles_between_inferences": "x", "cycles_per_inference": 3}',
     "{r}/verify.json is not a valid stage record: cycles_between_inferences is 'x', not a "
     "number: delete it and rerun the verify stage ('slimgen verify --run {r}')"),
    ("verify.json", b"\xff\xfe{}", "{r}/verify.json is not UTF-8 text, so not a stage record: "
                                   "delete it and rerun the verify stage ('slimgen verify "
                                   "--run {r}')"),
])
@pytest.mark.parametrize("command", ["summary", "generate", "report"])
def test_a_stage_record_of_the_wrong_type_is_refused_and_nothing_removed(run, capsys, name,
                                                                         text, message,
                                                                         command):
    for other in ("verify.json", "waveform.vcd", "report.md"):
        (run / other).write_text("{}\n")
    path = run / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert refused([command], run, capsys) == \
        f"slimgen {command}: error: " + message.format(r=run)


# ---- 2. wrong or mixed results -------------------------------------------------------------------

def _resave_float(path, *, sizes=None, split_seed=None, model=None):
    """Rewrite the float artifact ``path``: another architecture or split seed."""
    from slimgen.sw.artifact import load_float_model, save_float_model
    from slimgen.sw.nn import build_model, mlp_spec
    m, manifest = load_float_model(path)
    if sizes is not None:
        m = build_model(mlp_spec(sizes), np.random.default_rng(0))
    extra = {k: v for k, v in manifest.items()
             if k in ("model", "compression")}
    save_float_model(path, m, dataset=manifest["dataset"],
                     split_seed=manifest["split_seed"] if split_seed is None else split_seed,
                     history=manifest["history"], extra=extra)


def test_batch_size_has_an_upper_limit():
    from slimgen.flow import RunConfig, SettingError
    with pytest.raises(SettingError, match=r"^batch_size must be at most 65536 \(a bound on "
                                           r"memory\), not 1000000$"):
        RunConfig(batch_size=1_000_000)


def test_a_float_artifact_of_another_architecture_is_refused(run, capsys):
    _resave_float(run / "float.npz", sizes=[64, 32, 10])
    line = refused_in_stage(["quantize"], run, capsys)
    assert line == (f"slimgen quantize: error: {run}/float.npz holds the mlp dense 64→32, "
                    f"dense 32→10, but this run makes the mlp dense 64→8, dense 8→10: rerun "
                    f"the train stage ('slimgen flow --run {run} --skip-build --from train')")


def test_an_integer_artifact_of_another_architecture_is_refused(run, tmp_path, capsys):
    other = tmp_path / "other"
    for stage in ("train", "quantize"):
        assert main([stage, "--run", str(other), "--epochs", "1", "--sizes", "64,16,10",
                     "--quiet"]) == 0
    shutil.copy(other / "model.npz", run / "model.npz")
    capsys.readouterr()
    line = refused_in_stage(["generate"], run, capsys)
    assert line == (f"slimgen generate: error: {run}/model.npz holds the layers dense 64→16, "
                    f"dense 16→10, but this run makes the mlp dense 64→8, dense 8→10: rerun "
                    f"the quantize stage ('slimgen flow --run {run} --skip-build --from "
                    f"quantize')")


def test_a_seed_mismatch_names_the_file_loaded(run, capsys):
    assert main(["compress", "--run", str(run), "--method", "magnitude", "--sparsity", "0.5",
                 "--compress-epochs", "1", "--finetune-epochs", "0", "--quiet"]) == 0
    _resave_float(run / "compressed.npz", split_seed=5)
    capsys.readouterr()
    line = refused_in_stage(["quantize"], run, capsys)
    assert line == (f"slimgen quantize: error: {run}/compressed.npz was trained on 'digits' "
                    f"split seed 5, but this run uses 'digits' seed 0: rerun the compress stage "
                    f"('slimgen flow --run {run} --skip-build --from compress')")


def test_quantize_never_writes_a_model_its_loader_refuses(tmp_path, capsys):
    run, cfg = tmp_path / "r", tmp_path / "c.json"
    cfg.write_text('{"act_bits": 16, "weight_bits": 16}')
    assert main(["train", "--run", str(run), "--sizes", "64,3000,10", "--epochs", "1",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["quantize", "--run", str(run), "--config", str(cfg), "--quiet"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        "slimgen quantize: error: the quantized model these settings make is one the hardware "
        "cannot take (layer 3 (dense): The dense layer needs 41-bit accumulators; at most 40 "
        "are supported): lower --weight-bits (16), --act-bits (16) or the layer sizes, which "
        "widen the accumulators; model.npz was not written")
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "float.npz",
                                                     "summary.json", "train.json"]


def test_a_changed_data_file_is_a_changed_setting(tmp_path, capsys, data_files):  # noqa: F811
    from slimgen.flow import Run, run_flow, stage_done
    data, run = tmp_path / "d.npz", tmp_path / "r"
    shutil.copy(data_files["100"], data)
    argv = ["--run", str(run), "--data", str(data), "--sizes", "100,8,10", "--epochs", "1",
            "--quiet"]
    for stage in ("train", "quantize"):
        assert main([stage] + argv) == 0
    assert stage_done(Run.existing(run), "train")
    with np.load(data) as f:
        x, y = f["x"], f["y"]
    np.savez(data, x=x[::-1], y=y[::-1])
    capsys.readouterr()
    line = refused(["generate"] + argv[2:], run, capsys)
    assert line == (f"slimgen generate: error: the data file {data} changed since the train "
                    f"stage read it, so generate would mix results of two data sets: run "
                    f"'slimgen flow --run {run} --skip-build --from train' (or 'slimgen train "
                    f"--run {run}' first); nothing was changed")
    logs = []
    r = Run.existing(run, log=logs.append)
    assert not stage_done(r, "train")
    assert f"== train == the data file {data} changed since it was trained on: training " \
           f"again" in logs
    run_flow(r, ("train",))
    assert stage_done(r, "train") and not (run / "model.npz").exists()


# ---- 5. and 6. messages, and what was silently accepted ------------------------------------------

def test_report_with_another_board_asks_for_generate_again(run):
    # the plan (plan.json) and the compiler's choices are the board's: generate runs again
    from slimgen.flow import FlowError, RunConfig, check_stage_inputs
    (run / "report.md").write_text("old\n")
    stored = json.loads((run / "config.json").read_text())
    with pytest.raises(FlowError) as e:
        check_stage_inputs(run, RunConfig.from_dict({**stored, "board": "ulx3s-85f"}),
                           "report")
    assert str(e.value) == (f"settings ['board'] change the outputs of generate, which report "
                            f"reads: run 'slimgen flow --run {run}' with these options (or "
                            f"'slimgen generate --run {run}' with them first); nothing was "
                            f"changed")
    assert (run / "report.md").read_text() == "old\n"


def test_from_build_with_skip_build_is_refused(run, capsys):
    assert refused(["flow", "--from", "build", "--skip-build"], run, capsys) == \
        "slimgen flow: error: --from build with --skip-build runs nothing: leave out one of them"


def test_report_on_a_folder_with_no_stage_records_is_refused(tmp_path, capsys):
    new = tmp_path / "new"
    assert main(["report", "--run", str(new), "--quiet"]) == 1
    assert capsys.readouterr().err == f"slimgen report: error: {new} has no stage records to " \
                                      f"report on: run 'slimgen flow --run {new}' first\n"
    assert not new.exists()


def test_the_report_says_which_files_it_could_not_read(run, capsys):
    from slimgen.flow import Run, run_stage
    (run / "waveform.vcd").write_text("not a waveform\n")
    for name in ("float.npz", "model.npz"):
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[:len(data) // 2])
    (run / "summary.json").write_text("{damaged")
    logs = []
    run_stage(Run.existing(run, log=logs.append), "report")
    md = (run / "report.md").read_text()
    assert "Could not be read, so missing from this report: float.npz (" in md
    assert "; model.npz (" in md
    assert any(line.startswith(f"report: {run}/float.npz could not be read (") for line in logs)
    assert json.loads((run / "summary.json").read_text())["run"] == str(run)


def test_a_report_that_cannot_be_written_names_the_folder(run, monkeypatch):
    from slimgen import report

    def denied(path, data):
        raise PermissionError(1, "Operation not permitted", str(path) + ".x.tmp")
    monkeypatch.setattr(report, "write_bytes_atomic", denied)
    (run / "waveform.vcd").write_text("x\n")
    with pytest.raises(report.ReportError) as e:
        report.write_report(run)
    assert str(e.value) == f"cannot write the report into {run}: Operation not permitted"


def test_a_damaged_summary_says_it_is_rebuilt_from_the_stage_records(run):
    from slimgen.report import ReportError, write_report
    (run / "summary.json").write_text("[1]")
    with pytest.raises(ReportError) as e:
        write_report(run)
    assert str(e.value) == (f"{run}/summary.json is not a JSON object; it is derived from the "
                            f"stage records, and 'slimgen report --run {run}' rebuilds it")


def test_an_lstm_artifact_of_another_width_is_refused(tmp_path, capsys):
    runs = {}
    for hidden in (4, 8):
        runs[hidden] = tmp_path / f"h{hidden}"
        for stage in ("train", "quantize"):
            assert main([stage, "--run", str(runs[hidden]), "--model", "lstm", "--hidden",
                         str(hidden), "--lanes", "4", "--epochs", "1", "--quiet"]) == 0
    run = runs[4]
    shutil.copy(runs[8] / "model.npz", run / "model.npz")
    capsys.readouterr()
    assert refused_in_stage(["generate"], run, capsys) == (
        f"slimgen generate: error: {run}/model.npz holds an LSTM of 8 hidden units, but this "
        f"run makes one of 4: rerun the quantize stage ('slimgen flow --run {run} --skip-build "
        f"--from quantize')")


def test_flow_refuses_a_damaged_record_before_any_stage_runs(run, capsys):
    (run / "verify.json").write_text("[]")
    before = snapshot(run)
    assert main(["flow", "--run", str(run), "--from", "generate", "--skip-build",
                 "--quiet"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"slimgen flow: error: {run}/verify.json is not a stage record (a JSON object) but []: "
        f"delete it and rerun the verify stage ('slimgen verify --run {run}')")
    assert snapshot(run) == before


def test_artifact_advice_has_skip_build_when_the_run_never_built(run, capsys):
    data = (run / "model.npz").read_bytes()
    (run / "model.npz").write_bytes(data[:500])
    assert refused_in_stage(["generate"], run, capsys) == (
        f"slimgen generate: error: Model file {run}/model.npz is damaged or truncated (not a "
        f"readable slimgen-artifact file): File is not a zip file: rerun the quantize stage "
        f"('slimgen flow --run {run} --skip-build --from quantize')")
    (run / "model.npz").write_bytes(data)
    # a float artifact whose spec no longer fits its weights: the artifact's own advice
    with np.load(run / "float.npz") as f:
        arrays = {k: f[k] for k in f.files}
    manifest = json.loads(arrays.pop("manifest").tobytes())
    manifest["spec"][0]["n_out"] = 9
    np.savez_compressed(run / "float.npz", manifest=np.frombuffer(
        json.dumps(manifest).encode(), dtype=np.uint8), **arrays)
    line = refused_in_stage(["quantize"], run, capsys)
    assert line.endswith(f"Rerun the train stage to regenerate it (slimgen flow --run {run} "
                         f"--skip-build --from train)")
