"""Design-space sweeps: one Optuna study in a database, workers that each run whole flows.

::

    slimgen sweep space.yaml [--workers N] [--storage URL] [--dir sweep/NAME]
    slimgen sweep worker --storage URL --study NAME [--dir sweep/NAME]

The study (its space, objectives and every trial's settings and figures) lives in a database:
``sweep/<name>/study.db`` (SQLite) by default, or any SQLAlchemy URL (PostgreSQL) that workers
on other machines reach. A trial is one flow (:func:`run_design`) in ``<dir>/runs/trial-NNNN``,
its stages reused across trials (:mod:`slimgen.sweep_cache`). Its outcome:

- ``COMPLETE``: the objectives' figures (all figures in the user attribute ``figures``);
- ``PRUNED``: infeasible — the flow refused the design (does not fit the board, misses
  timing, a setting the model cannot take); the reason in the user attribute ``infeasible``.
  NSGA-II's populations hold complete trials only, so it never breeds from one;
- ``FAIL``: its worker stopped (killed, the machine gone). Each worker beats a heartbeat into
  the database; a trial silent for three beats is failed by the next worker to look, and
  Optuna's :class:`~optuna.storages.RetryHeartbeatStaleTrialCallback` queues it again (a new trial
  with the same settings and its own run folder), up to :data:`MAX_RETRY` times.

A worker stops once ``n_trials`` trials are complete or infeasible; a trial asked when
``n_trials`` were already taken (two workers counted at once) yields at its start, pruned
with the user attribute ``surplus`` and counted nowhere. Running ``slimgen sweep``
again continues the study (a larger ``n_trials`` asks for more). Worker 0 also runs the
default design (the flow with the fixed settings alone), which the report marks.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

from slimgen.flow import FlowError, Run, check_data, run_flow
from slimgen.settings import SettingError
from slimgen.sweep_cache import restore_one, stage_keys, stage_lock, store
from slimgen.sweep_space import Space, SpaceError, load_space, space_from_dict

__all__ = ["SweepError", "Infeasible", "sweep", "work", "run_design", "open_study", "progress",
           "storage_url", "HEARTBEAT", "MAX_RETRY"]

HEARTBEAT = 10.0     # seconds between a worker's heartbeats; silent for 3 beats: failed
MAX_RETRY = 2        # a killed trial is queued again at most this many times
POLL = 2.0           # seconds between the coordinator's looks at the study


class SweepError(FlowError):
    """A sweep that cannot start or go on; the message says why and what to do."""


class Infeasible(Exception):
    """A design the flow refused; ``str()`` is the reason recorded with the trial."""


def _quiet_optuna():
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Trial.system_attrs (where a retried trial names the one it retries) is deprecated in
    # favour of nothing public yet
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")


# ------------------------------------------------------------------ the study

def storage_url(storage, sweep_dir):
    """The study's database: ``storage`` as given, or ``sweep_dir/study.db`` (SQLite)."""
    if storage is not None:
        if not isinstance(storage, str) or "://" not in storage:
            raise SweepError(f"--storage must be an SQLAlchemy URL (e.g. sqlite:///sweep.db or "
                             f"postgresql://user@host/db), not {storage!r}")
        return storage
    return f"sqlite:///{(Path(sweep_dir) / 'study.db').resolve()}"


def _redact(url):
    """The URL with its password hidden (it goes into messages and worker command lines)."""
    from sqlalchemy.engine import make_url
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def _storage(url, heartbeat):
    """Optuna's RDBStorage on ``url`` with heartbeats and retries of killed trials.

    SQLite with several processes: each connection waits up to two minutes for another's write
    lock (``timeout``) instead of failing at once with "database is locked"."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    _quiet_optuna()
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else \
        {"pool_pre_ping": True}
    try:
        return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                          grace_period=3 * heartbeat,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                              max_retry=MAX_RETRY))
    except (optuna.exceptions.StorageInternalError, ImportError, ValueError) as e:
        raise SweepError(f"cannot open the study's database {_redact(url)}: "
                         f"{_one_line(e)}") from None
    except Exception as e:     # sqlalchemy's errors: a bad URL, a server not reached
        if type(e).__module__.startswith("sqlalchemy"):
            raise SweepError(f"cannot open the study's database {_redact(url)}: "
                             f"{_one_line(e)}") from None
        raise


def _one_line(e):
    text = " ".join(str(getattr(e, "orig", None) or e).split())
    return text.split(" (Background on this error")[0][:300]


def _sampler(space, index):
    """The space's sampler; worker ``index`` draws from ``seed + index`` (two workers with one
    seed would propose the same designs)."""
    import optuna
    seed = space.seed + index
    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if space.sampler == "grid":
        from slimgen.sweep_space import _code
        return optuna.samplers.GridSampler({p.name: [_code(v) for v in p.grid()]
                                            for p in space.params}, seed=seed)
    return optuna.samplers.NSGAIISampler(population_size=space.population_size, seed=seed)


def open_study(url, name=None, *, space=None, index=0, heartbeat=HEARTBEAT):
    """``(study, space)``: the study ``name`` (``space.name``) in ``url``, made with ``space``
    when it does not exist yet. An existing study must have been made with the same space
    (only ``n_trials`` may change); without ``space`` (a worker joining) it must exist."""
    import optuna
    name = name or space.name
    storage = _storage(url, heartbeat)
    try:
        summaries = {s.study_name for s in optuna.get_all_study_summaries(storage, False)}
    except Exception as e:
        raise SweepError(f"cannot read the studies in {_redact(url)}: {_one_line(e)}") from None
    if name not in summaries:
        if space is None:
            raise SweepError(f"there is no study {name!r} in {_redact(url)}: start it with "
                             f"'slimgen sweep SPACE.yaml --storage URL' first (studies there: "
                             f"{', '.join(sorted(summaries)) or 'none'})")
        study = optuna.create_study(study_name=name, storage=storage,
                                    directions=space.directions,
                                    sampler=_sampler(space, index), load_if_exists=True)
        study.set_user_attr("space", space.to_dict())
        study.set_user_attr("heartbeat", heartbeat)
    stored = optuna.load_study(study_name=name, storage=storage).user_attrs
    if "space" not in stored:
        raise SweepError(f"the study {name!r} in {_redact(url)} was not made by slimgen sweep")
    have = space_from_dict(stored["space"], where=f"the study {name!r}")
    if space is not None:
        old, new = have.to_dict(), space.to_dict()
        changed = sorted(k for k in set(old) | set(new)
                         if k != "n_trials" and old.get(k) != new.get(k))
        if changed:
            raise SweepError(f"the study {name!r} was made with another space ({', '.join(changed)} "
                             f"differ): give the sweep another name, or delete the study "
                             f"(its folder's study.db) to start again")
        if new["n_trials"] != old["n_trials"]:
            optuna.load_study(study_name=name, storage=storage).set_user_attr(
                "space", new)
        have = space
    # every worker keeps the study's pace of heartbeats, whatever it was started with
    storage.heartbeat_interval = float(stored.get("heartbeat", heartbeat))
    storage.grace_period = 3 * storage.heartbeat_interval
    study = optuna.load_study(study_name=name, storage=storage, sampler=_sampler(have, index))
    return study, have


def progress(study, n_trials=None):
    """The study's trials by state: ``complete``, ``infeasible`` (pruned), ``running``,
    ``waiting``, ``failed``, and ``n_trials`` (the space's)."""
    from optuna.trial import TrialState
    counts = {"complete": 0, "infeasible": 0, "running": 0, "waiting": 0, "failed": 0}
    names = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "infeasible",
             TrialState.RUNNING: "running", TrialState.WAITING: "waiting",
             TrialState.FAIL: "failed"}
    for t in study.get_trials(deepcopy=False):
        if not t.user_attrs.get("surplus"):
            counts[names[t.state]] += 1
    counts["n_trials"] = n_trials or study.user_attrs["space"]["n_trials"]
    counts["done"] = counts["complete"] + counts["infeasible"]
    return counts


def _surplus(study, trial, n_trials):
    """Whether ``n_trials`` trials numbered before ``trial`` are complete, infeasible, running
    or queued: two workers that counted at the same moment both asked for a trial, and the
    later one yields (trial numbers come from the database, so every worker agrees)."""
    from optuna.trial import TrialState
    taken = study.get_trials(deepcopy=False, states=(
        TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING))
    return sum(t.number < trial.number and not t.user_attrs.get("surplus")
               for t in taken) >= n_trials


def format_progress(p):
    return (f"{p['done']}/{p['n_trials']} trials done ({p['complete']} complete, "
            f"{p['infeasible']} infeasible), {p['running']} running, {p['waiting']} queued, "
            f"{p['failed']} failed")


# ------------------------------------------------------------------ one design

# Refusals that the same settings would meet again: remembered with the stage's key, so later
# trials with those settings are refused without running the stage again.
def _lasting(e):
    from slimgen.boards.build import DesignDoesNotFit, TimingNotMet
    return isinstance(e, (FlowError, SettingError, DesignDoesNotFit, TimingNotMet))


def run_design(space, params, root, cache, *, log=None):
    """Run the flow of the design ``params`` in the run folder ``root`` up to the stages the
    objectives need, each stage from ``cache`` when its settings were seen before, and write
    the run's report (without the waveform: it takes a simulator run per trial and the sweep
    report does not show it). Returns the run's summary; raises :class:`Infeasible` with the
    reason when the flow refuses the design."""
    log = log or (lambda msg: None)
    try:
        config = space.config(params)
        check_data(config)
    except (SettingError, FlowError) as e:
        raise Infeasible(str(e)) from None
    run = Run(root, config, progress=False, log=log)
    keys = stage_keys(config)
    cache = Path(cache)
    for stage in space.stages:
        key = keys[stage]
        failed = cache / stage / f"{key}.failed"
        with stage_lock(cache, stage, key):
            if failed.exists():
                raise Infeasible(failed.read_text(encoding="utf-8"))
            entry = cache / stage / key
            if entry.is_dir():
                restore_one(run, stage, entry)
                log(f"== {stage} == reused from the sweep's cache ({key})")
                continue
            try:
                run_flow(run, (stage,))
            except Exception as e:
                reason = f"{stage}: {_reason(e)}"
                if _lasting(e):
                    _write_text(failed, reason)
                raise Infeasible(reason) from None
            store(run, stage, key, cache)
    _drop_sim_build(run.path("sim"))
    from slimgen.flow import _write_json
    from slimgen.report import write_report
    summary = run.summary()
    _write_json(run.path("summary.json"), summary)
    try:
        html, _ = write_report(run.root, record_waveform=False, log=log)
        summary["report_html"] = str(html)
    except Exception as e:          # the trial's figures stand without its page
        log(f"report: not written ({_reason(e)})")
    return summary


def _drop_sim_build(folder):
    """Remove the simulator's build products of a verified trial (about 140 MB for the CNN on
    Verilator: a 40-trial sweep would fill gigabytes), keeping its logs."""
    import shutil
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.suffix != ".log":
            path.unlink(missing_ok=True)


def _reason(e):
    text = " ".join(str(e).split())
    known = (FlowError, SettingError, ValueError, RuntimeError, OSError)
    return text if isinstance(e, known) else f"{type(e).__name__}: {text}"


def _write_text(path, text):
    from slimgen.sw.artifact import write_bytes_atomic
    write_bytes_atomic(path, text.encode("utf-8"))


def _figures(summary):
    """The numbers of a run's summary (what the study keeps of a trial)."""
    return {k: v for k, v in summary.items()
            if isinstance(v, (int, float, str, bool)) and not k.startswith("_")}


def _evaluate(space, params, root, cache, log):
    """``(figures, None)`` or ``(None, reason)`` for the design ``params``."""
    try:
        summary = run_design(space, params, root, cache, log=log)
    except Infeasible as e:
        return None, str(e)
    missing = [f for f in space.figures if not isinstance(summary.get(f), (int, float))]
    if missing:
        return None, f"the run has no figure {', '.join(missing)}"
    return _figures(summary), None


# ------------------------------------------------------------------ workers

def _say(msg):
    print(msg, flush=True)


def _params_text(params):
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _default_design(study, space, sweep_dir, log):
    """Run the default design (no parameter set) once, kept in the study's user attribute
    ``default``: ``{"figures", "run"}`` or ``{"infeasible", "run"}``."""
    root = Path(sweep_dir) / "runs" / "default"
    log(f"default design: {root}")
    figures, reason = _evaluate(space, {}, root, Path(sweep_dir) / "cache",
                                lambda m: _say(f"  default: {m}"))
    study.set_user_attr("default", {"figures": figures, "run": str(root)} if figures else
                        {"infeasible": reason, "run": str(root)})
    log(f"default design: {reason or _objective_text(space, figures)}")


def _objective_text(space, figures):
    return ", ".join(f"{f} {figures[f]:.4g}" for f in space.figures)


def work(url, name, *, sweep_dir=None, index=1, log=_say):
    """A worker: run trials of the study ``name`` in ``url`` until ``n_trials`` are complete or
    infeasible (worker 0 first runs the default design). Returns the number of trials it
    ran."""
    import optuna
    study, space = open_study(url, name, index=index)
    sweep_dir = Path(sweep_dir or Path("sweep") / name)
    cache = sweep_dir / "cache"
    host = f"{socket.gethostname()}:{os.getpid()}"
    if index == 0 and "default" not in study.user_attrs:
        _default_design(study, space, sweep_dir, log)

    def objective(trial):
        if _surplus(study, trial, space.n_trials):
            # pruned without figures, and counted nowhere (progress, report, the sampler)
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned("surplus: n_trials were already taken")
        params = {p.name: p.suggest(trial) for p in space.params}
        root = sweep_dir / "runs" / f"trial-{trial.number:04d}"
        trial.set_user_attr("run", str(root))
        trial.set_user_attr("worker", host)
        retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(trial)
        log(f"trial {trial.number}: {_params_text(params)}"
            + (f" (again: trial {retried}'s worker stopped)" if retried is not None else ""))
        t = time.monotonic()
        figures, reason = _evaluate(space, params, root, cache,
                                    lambda m: _say(f"  trial {trial.number}: {m}"))
        seconds = round(time.monotonic() - t, 1)
        trial.set_user_attr("seconds", seconds)
        if reason is not None:
            trial.set_user_attr("infeasible", reason)
            log(f"trial {trial.number}: infeasible ({seconds} s): {reason}")
            raise optuna.TrialPruned(reason)
        trial.set_user_attr("figures", figures)
        log(f"trial {trial.number}: {_objective_text(space, figures)} ({seconds} s)")
        return [figures[f] for f in space.figures]

    ran = 0
    while True:
        optuna.storages.fail_stale_trials(study)     # a killed worker's trial: failed, queued
        space = _current_space(study, space)
        p = progress(study, space.n_trials)
        if p["done"] >= space.n_trials:
            break
        if p["done"] + p["running"] >= space.n_trials and not p["waiting"]:
            # the last trials are running elsewhere: wait, in case their worker stops
            time.sleep(float(study.user_attrs.get("heartbeat", HEARTBEAT)))
            continue
        study.optimize(objective, n_trials=1, catch=())
        ran += 1
    return ran


def _current_space(study, space):
    """The space with the study's ``n_trials`` (a later ``slimgen sweep`` may raise it)."""
    n = study.user_attrs.get("space", {}).get("n_trials", space.n_trials)
    if n == space.n_trials:
        return space
    from dataclasses import replace
    return replace(space, n_trials=n)


# ------------------------------------------------------------------ the coordinator

def sweep(space_file, *, storage=None, workers=1, sweep_dir=None, heartbeat=HEARTBEAT,
          log=_say):
    """``slimgen sweep``: start (or continue) the study of ``space_file`` with ``workers``
    worker processes here, print its progress and keep ``<dir>/report.html`` up to date while
    they run. ``workers=0`` writes the report of the study as it is and returns. Returns the
    report's path."""
    space = load_space(space_file)        # every mistake in the file before anything exists
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise SweepError(f"--workers must be a non-negative integer, not {workers!r}")
    if not isinstance(heartbeat, (int, float)) or not 0.5 <= heartbeat <= 3600:
        raise SweepError(f"--heartbeat must be from 0.5 to 3600 seconds, not {heartbeat!r}")
    sweep_dir = Path(sweep_dir or Path("sweep") / space.name)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    url = storage_url(storage, sweep_dir)
    study, space = open_study(url, space=space, heartbeat=float(heartbeat))
    from slimgen.sweep_report import write_sweep_report
    log(f"sweep {space.name}: {_redact(url)}, {space.n_trials} trials, sampler {space.sampler}"
        f", {workers} worker{'s' if workers != 1 else ''}; report {sweep_dir / 'report.html'}")
    procs = [_start_worker(url, space.name, sweep_dir, i) for i in range(workers)]
    last = None
    try:
        while procs:
            time.sleep(POLL)
            running = [p for p in procs if p.poll() is None]
            p = progress(study, space.n_trials)
            if p != last:
                log(f"sweep {space.name}: {format_progress(p)}")
                write_sweep_report(study, sweep_dir, progress=p, finished=False)
                last = p
            for w in procs:
                if w not in running and w.returncode != 0:
                    log(f"sweep {space.name}: worker {w.index} stopped with exit code "
                        f"{w.returncode} (its log: {w.log_path})")
            procs = running
    except KeyboardInterrupt:
        for w in procs:
            if w.poll() is None:
                w.send_signal(signal.SIGINT)
        for w in procs:
            w.wait()
        raise
    p = progress(study, space.n_trials)
    report = write_sweep_report(study, sweep_dir, progress=p, finished=True)
    log(f"sweep {space.name}: {format_progress(p)}; report {report}")
    if workers and p["done"] < space.n_trials:
        raise SweepError(f"the workers stopped before the sweep was done ({format_progress(p)})"
                         f": see their logs in {sweep_dir}, then run 'slimgen sweep "
                         f"{space_file}' again to continue")
    return report


def _start_worker(url, name, sweep_dir, index):
    log_path = Path(sweep_dir) / f"worker-{index}.log"
    f = open(log_path, "ab")
    cmd = [sys.executable, "-m", "slimgen", "sweep", "worker", "--storage", url,
           "--study", name, "--dir", str(sweep_dir), "--index", str(index)]
    proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    f.close()
    proc.index, proc.log_path = index, log_path
    return proc


__all__ += ["Space", "SpaceError", "format_progress"]
