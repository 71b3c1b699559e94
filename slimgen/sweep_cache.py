"""Stage reuse across the trials of a sweep: a stage's outputs are computed once for the
settings it depends on and linked into every trial's run folder that has those settings.

The key of a stage is the SHA-256 of the settings of that stage and of every stage before it
(:data:`slimgen.flow.STAGE_SETTINGS`, the same table by which a run folder decides what a
changed setting makes stale), the data file's and network description's contents, and
slimgen's version::

    key(train)    = H(model, net, source, data, sizes, hidden, seed, epochs, batch_size, lr, ...)
    key(compress) = H(key(train) settings + method, sparsity, bits, layout, ... [+ lanes])
    ...
    key(build)    = H(every setting up to build)

An entry ``cache/<stage>/<key>/`` holds the stage's output files and its record, written
whole (a temporary folder, then a rename: a killed worker leaves no entry). A trial's run
folder gets the longest run of cached stages from ``train`` on (hard links, a copy across
file systems); :func:`slimgen.flow.run_flow` then keeps them as done with these settings and
runs the rest. While one worker computes a stage, another that needs the same key waits for
it (an ``flock`` on the key), so two workers never train the same model twice.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from slimgen.flow import STAGE_OUTPUTS, STAGE_SETTINGS, data_sha256

__all__ = ["CACHED_STAGES", "stage_keys", "restore", "store", "stage_lock"]

# The stages whose outputs a trial reuses (the report is written per trial).
CACHED_STAGES = ("train", "compress", "quantize", "generate", "verify", "build")
# Each stage's extra outputs beyond STAGE_OUTPUTS: folders the flow reads or links to.
_FOLDERS = {"build": ("build",)}
# Written into cached records in place of the run folder's path (build.json names its
# bitstream), and replaced by the trial's run folder when restored.
_ROOT = "@RUN@"


def _file_sha(path):
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def stage_keys(config):
    """``{stage: key}`` (24 hex digits) for every cached stage of the run ``config``."""
    from slimgen import __version__
    d = config.to_dict()
    names, keys = set(), {}
    for stage in CACHED_STAGES:
        own = set(STAGE_SETTINGS[stage])
        if stage == "compress":
            if config.method == "none":
                own = {"method"}      # nothing compressed: its settings change nothing
            elif config.method == "balanced":
                own.add("lanes")      # one group per lane
        names |= own
        payload = {"stage": stage, "settings": {k: d[k] for k in sorted(names)},
                   "data": data_sha256(config), "net": _file_sha(config.net),
                   "source": _file_sha(config.source), "version": __version__}
        keys[stage] = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()) \
            .hexdigest()[:24]
    return keys


def _entry(cache, stage, key):
    return Path(cache) / stage / key


def _files(stage):
    return STAGE_OUTPUTS[stage] + (f"{stage}.json",) + _FOLDERS.get(stage, ())


def _link(src, dst):
    """``dst`` as a hard link of ``src`` (a copy across file systems), replacing it whole."""
    tmp = dst.with_name(f".{dst.name}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def _copy_tree(src, dst, link):
    for path in sorted(Path(src).rglob("*")):
        target = Path(dst) / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            link(path, target)


def _put_record(src, dst, old, new):
    """Copy the stage record ``src`` to ``dst`` with the run folder ``old`` written ``new``."""
    text = Path(src).read_text(encoding="utf-8")
    tmp = Path(dst).with_name(f".{Path(dst).name}.tmp")
    tmp.write_text(text.replace(json.dumps(str(old))[1:-1], json.dumps(str(new))[1:-1]),
                   encoding="utf-8")
    os.replace(tmp, dst)


def cached(cache, stage, key):
    return _entry(cache, stage, key).is_dir()


def restore(run, keys, cache, stages):
    """Link the cached outputs of the leading ``stages`` (in order, stopping at the first
    not cached) into ``run``'s folder; returns the stages restored."""
    done = []
    for stage in stages:
        if stage not in CACHED_STAGES or stage not in keys:
            break
        entry = _entry(cache, stage, keys[stage])
        if not entry.is_dir():
            break
        restore_one(run, stage, entry)
        done.append(stage)
    return done


def restore_one(run, stage, entry):
    root = run.root
    for name in _files(stage):
        src = entry / name
        if src.is_dir():
            shutil.rmtree(root / name, ignore_errors=True)
            _copy_tree(src, root / name, _link)
        elif name.endswith(".json") and src.exists():
            _put_record(src, root / name, _ROOT, root)
        elif src.exists():
            _link(src, root / name)


def store(run, stage, key, cache):
    """Put ``stage``'s outputs in ``run``'s folder into the cache under ``key`` (nothing if
    already there, or if the stage has no record or a failed one)."""
    from slimgen.flow import _read_json
    record = _read_json(run.path(f"{stage}.json"))
    final = _entry(cache, stage, key)
    if record is None or record.get("_failed") or final.is_dir():
        return False
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{key}."))
    try:
        for name in _files(stage):
            src = run.path(name)
            if src.is_dir():
                _copy_tree(src, tmp / name, _link)
            elif name.endswith(".json") and src.exists():
                _put_record(src, tmp / name, run.root, _ROOT)
            elif src.exists():
                _link(src, tmp / name)
        os.rename(tmp, final)          # whole, or not at all
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not final.is_dir():
            raise
        return False                   # another worker stored the same key first
    return True


@contextlib.contextmanager
def stage_lock(cache, stage, key):
    """Hold the lock of ``stage``'s ``key`` (released when the process ends, however)."""
    path = Path(cache) / stage / f".{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
