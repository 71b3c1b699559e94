"""Sweeps end to end: two worker processes on one SQLite study, stage reuse, infeasible
designs, a worker killed mid-trial (its trial failed and retried), continuing a study, and a
real PostgreSQL server."""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from slimgen import sweep as sw
from slimgen.sweep_cache import stage_keys
from slimgen.sweep_space import load_space, space_from_dict

TINY = """\
name: {name}
fixed:
  model: mlp
  sizes: [64, 16, 10]
  epochs: {epochs}
parameters:
  lanes: [1, 2, 4]
  weight_bits: {{low: 4, high: 8}}
objectives:
  int_accuracy: max
  multipliers: min
n_trials: {n}
sampler: random
seed: 0
"""


def _space(tmp_path, name="tiny", n=4, epochs=1):
    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY.format(name=name, n=n, epochs=epochs))
    return path


def _study(d, name):
    return optuna.load_study(study_name=name, storage=sw.storage_url(None, d))


def test_stage_keys_follow_the_settings_each_stage_reads():
    space = space_from_dict(
        {"parameters": {"lanes": [1, 2]}, "objectives": {"int_accuracy": "max"}})
    a, b = stage_keys(space.config({"lanes": 1})), stage_keys(space.config({"lanes": 2}))
    # lanes is read from generate on (method none: compress ignores it)
    assert [a[s] == b[s] for s in a] == [True, True, True, False, False, False]
    c = stage_keys(space.config({"lanes": 1, "weight_bits": 6}))
    assert [a[s] == c[s] for s in a] == [True, True, False, False, False, False]
    # a setting the method does not use changes nothing; balanced groups follow the lanes
    assert stage_keys(space.config({"lanes": 1, "sparsity": 0.5})) == a
    m1 = stage_keys(space.config({"method": "balanced", "lanes": 1}))
    m2 = stage_keys(space.config({"method": "balanced", "lanes": 2}))
    assert m1["train"] == m2["train"] and m1["compress"] != m2["compress"]


@pytest.mark.slow
def test_a_trial_asked_after_n_trials_were_taken_yields():
    # two workers that count the study at the same moment both ask for the last trial
    study = optuna.create_study(directions=["maximize"])
    first, second, third = (study.ask() for _ in range(3))
    assert not sw._surplus(study, second, 2)
    assert sw._surplus(study, third, 2)
    third.set_user_attr("surplus", True)
    study.tell(third, state=TrialState.PRUNED)
    fourth = study.ask()
    assert sw._surplus(study, fourth, 2)            # a surplus trial takes no slot ...
    study.tell(first, state=TrialState.FAIL)
    assert not sw._surplus(study, fourth, 2)        # ... and a failed one frees its slot
    study.tell(second, [1.0])
    p = sw.progress(study, 2)
    assert (p["complete"], p["infeasible"], p["failed"], p["running"]) == (1, 0, 1, 1)


def test_two_workers_share_one_sqlite_study_and_its_stages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _space(tmp_path, n=5)
    d = tmp_path / "sweep" / "tiny"
    lines = []
    report = sw.sweep(path, workers=2, sweep_dir=d, heartbeat=2, log=lines.append)
    study = _study(d, "tiny")
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 5 and not study.get_trials(states=(TrialState.FAIL,))
    assert len({t.user_attrs["worker"] for t in done}) == 2          # both workers ran trials
    assert "5/5 trials done (5 complete, 0 infeasible)" in lines[-1]
    # every trial trains the same model: trained once, its float.npz linked into every run
    assert len(list((d / "cache" / "train").iterdir())) == 2        # the entry and its lock
    inodes = {os.stat(p).st_ino for p in glob.glob(str(d / "runs" / "*" / "float.npz"))}
    assert len(inodes) == 1
    for t in done:
        f = t.user_attrs["figures"]
        assert t.values == [f["int_accuracy"], f["multipliers"]]
        assert os.path.exists(f["report_html"])
    assert study.user_attrs["default"]["figures"]["multipliers"] == 8    # folded: 4 lanes × 2 layers
    page = report.read_text()
    assert "Pareto front" in page and "report</a>" in page
    # a second `slimgen sweep` with more trials continues the study (same seed: no repeats of
    # the default design)
    path.write_text(path.read_text().replace("n_trials: 5", "n_trials: 7"))
    sw.sweep(path, workers=1, sweep_dir=d, heartbeat=2, log=lines.append)
    study = _study(d, "tiny")
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 7
    assert "7/7 trials done" in lines[-1]
    # another space under the same name is refused
    path.write_text(path.read_text().replace("multipliers: min", "cycles_estimate: min"))
    with pytest.raises(sw.SweepError, match="was made with another space \\(objectives differ"):
        sw.sweep(path, workers=1, sweep_dir=d, log=lines.append)


@pytest.mark.slow
def test_infeasible_designs_are_recorded_with_their_reason(tmp_path):
    space = tmp_path / "cnn.yaml"
    space.write_text("name: cnn\nfixed: {model: cnn, epochs: 1, compress_epochs: 1, "
                     "finetune_epochs: 0}\nparameters:\n  method: [balanced, magnitude]\n"
                     "  lanes: [4, 8]\nobjectives: {int_accuracy: max}\nsampler: grid\n")
    d = tmp_path / "sweep"
    sw.sweep(space, workers=0, sweep_dir=d, log=lambda m: None)    # makes the study only
    assert sw.work(sw.storage_url(None, d), "cnn", sweep_dir=d, index=0,
                   log=lambda m: None) == 4
    study = _study(d, "cnn")
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert [t.params for t in pruned] == [{"method": "balanced", "lanes": 8}]
    assert pruned[0].user_attrs["infeasible"].startswith(
        "lanes must be at most 4 for balanced sparsity on the CNN")
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3


def _worker(url, name, d, index):
    return subprocess.Popen([sys.executable, "-m", "slimgen", "sweep", "worker", "--storage",
                             url, "--study", name, "--dir", str(d), "--index", str(index)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_killed_worker_leaves_its_trial_failed_and_retried(tmp_path):
    path = _space(tmp_path, name="kill", n=4, epochs=20)
    d = tmp_path / "sweep"
    url = sw.storage_url(None, d)
    d.mkdir()
    sw.open_study(url, space=load_space(path), heartbeat=1.0)
    victim = _worker(url, "kill", d, 1)
    other = _worker(url, "kill", d, 0)
    study = _study(d, "kill")
    deadline = time.monotonic() + 120
    killed = None
    while killed is None and time.monotonic() < deadline:
        for t in study.get_trials(states=(TrialState.RUNNING,)):
            if t.user_attrs.get("worker", "").endswith(f":{victim.pid}"):
                time.sleep(0.5)                          # mid-trial
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                killed = t.number
        time.sleep(0.2)
    assert killed is not None, "the victim never ran a trial"
    assert other.wait(timeout=240) == 0
    study = _study(d, "kill")
    trial = study.trials[killed]
    assert trial.state == TrialState.FAIL
    retries = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == trial.params
    assert retries[0].user_attrs["run"] != trial.user_attrs["run"]      # a folder of its own
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else \
        (os.path.dirname(shutil.which("initdb")) if shutil.which("initdb") else None)


@pytest.mark.slow
@pytest.mark.skipif(_pg_bin() is None, reason="PostgreSQL's initdb and pg_ctl are not "
                                              "installed (apt-get install postgresql)")
def test_a_sweep_on_a_real_postgresql_server(tmp_path, monkeypatch):
    import tempfile
    pg = _pg_bin()
    # a folder of its own under /tmp: pytest's tmp_path sits in a folder only root may enter
    home = tempfile.mkdtemp(prefix="slimgen-pg-")
    data = __import__("pathlib").Path(home) / "pgdata"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # initdb refuses to run as root: run the server as the postgres user then
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        os.chmod(home, 0o755)
        data.mkdir()
        shutil.chown(data, "postgres")
    subprocess.run(as_user + [f"{pg}/initdb", "-D", str(data), "-U", "slimgen", "-A", "trust"],
                   check=True, capture_output=True, cwd=home)
    subprocess.run(as_user + [f"{pg}/pg_ctl", "-D", str(data), "-w", "-l",
                              str(data / "server.log"), "-o",
                              f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, cwd=home)
    try:
        url = f"postgresql+psycopg2://slimgen@127.0.0.1:{port}/postgres"
        monkeypatch.chdir(tmp_path)
        path = _space(tmp_path, name="pg", n=4)
        lines = []
        sw.sweep(path, storage=url, workers=2, sweep_dir=tmp_path / "sweep", heartbeat=2,
                 log=lines.append)
        study = optuna.load_study(study_name="pg", storage=url)
        assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
        assert not (tmp_path / "sweep" / "study.db").exists()
        assert "4/4 trials done" in lines[-1]
    finally:
        subprocess.run(as_user + [f"{pg}/pg_ctl", "-D", str(data), "-m", "fast", "stop"],
                       capture_output=True, cwd=home)
        shutil.rmtree(home, ignore_errors=True)
