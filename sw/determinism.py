"""Same seed, same bits on every machine: the float kernels pinned before NumPy loads.

Training turns a difference in the last bit of one sum into different weights a few hundred
steps later, so a run is reproducible across machines only if every float operation rounds the
same way everywhere. Three choices made per machine, each when NumPy loads, decide that:

- **OpenBLAS's kernel family.** NumPy's bundled OpenBLAS is built with ``DYNAMIC_ARCH`` and
  picks its kernels for the CPU (SkylakeX on AVX-512 Intel, Haswell or Zen on AVX2 machines);
  the kernels sum the products of a matrix product in different orders.
- **OpenBLAS's threads.** A large product is split over the threads, and the split changes
  the rounding with some kernels.
- **NumPy's SIMD dispatch.** ``exp``, ``log`` and ``tanh`` have AVX-512 versions that differ
  from the AVX2 ones in the last bit.

Measured on an AVX-512 Xeon (issue 21): hashes of the trained weights of the digits MLP, CNN
and LSTM and of a balanced compression of the CNN, in fresh processes under
``OPENBLAS_CORETYPE`` ∈ {native (SkylakeX), Haswell, Zen} × ``OPENBLAS_NUM_THREADS`` ∈ {1, 2} ×
NumPy's AVX-512 on/off, came out in six different sets: the kernel family and the NumPy dispatch
changed every model, the threads changed the compression under the Haswell kernels.

:func:`pin` sets, before NumPy loads::

    OPENBLAS_CORETYPE=Haswell          AVX2 + FMA kernels, on every machine
    OPENBLAS_NUM_THREADS=1             one thread: no split (the products here are small)
    NPY_DISABLE_CPU_FEATURES=...       NumPy's AVX-512 paths off: its AVX2 ones everywhere

so every x86-64 machine with AVX2 and FMA (Intel since Haswell, AMD since Zen) runs the same
instructions in the same order, and the hashes above are equal under all twelve settings. The
values set override the user's own: a run's bits must not depend on the shell it starts in.
``SLIMGEN_NUMERICS=native`` leaves the environment alone (the machine's fastest kernels, and
results that depend on the machine). Pinning is skipped, leaving the environment alone, when
NumPy is already loaded (too late: ``import slimgen`` before NumPy to get it), on a CPU
without AVX2 and FMA (Haswell kernels would not run there) and where the CPU's features cannot
be read (anything but Linux on x86-64). :func:`status` tells, once NumPy is loaded, what is in
force.

``slimgen/__init__.py`` calls :func:`pin`, so the ``slimgen`` command and every program that
imports slimgen before NumPy are pinned. The bits still belong to one NumPy and one OpenBLAS
version: another release may round differently.
"""

import os
import platform
import sys

__all__ = ["PIN_VARIABLE", "pinned_environment", "pin", "status"]

PIN_VARIABLE = "SLIMGEN_NUMERICS"
"""Set to ``native`` to keep the machine's own kernels (no pinning)."""

# NumPy's AVX-512 dispatch targets: grouped as X86_V4 since NumPy 2.4, one per feature before.
# A name NumPy does not dispatch gives an ImportWarning (ignored by default), never an error.
_NUMPY_AVX512 = {
    "new": "X86_V4 AVX512_ICL AVX512_SPR",
    "old": "AVX512F AVX512CD AVX512_KNL AVX512_KNM AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL "
           "AVX512_SPR",
}


def _numpy_version():
    """NumPy's version as (major, minor) from its metadata, without importing it; None if
    unknown."""
    from importlib import metadata
    try:
        major, minor = metadata.version("numpy").split(".")[:2]
        return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def pinned_environment(numpy_version=None):
    """The environment variables :func:`pin` sets, as a dict (NumPy's feature names for
    ``numpy_version``, (major, minor); the installed one when None)."""
    v = _numpy_version() if numpy_version is None else numpy_version
    names = _NUMPY_AVX512["new" if v is None or v >= (2, 4) else "old"]
    return {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "1",
            "NPY_DISABLE_CPU_FEATURES": names}


def _cpu_flags(cpuinfo=None):
    """The CPU's feature flags from /proc/cpuinfo (or the text ``cpuinfo``); None if unreadable."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return None


def pin(environ=None, *, modules=None, machine=None, cpuinfo=None):
    """Pin OpenBLAS's kernels and threads and NumPy's SIMD dispatch (see the module docstring)
    by setting environment variables, if NumPy is not loaded yet.

    ``environ``, ``modules``, ``machine`` and ``cpuinfo`` stand for ``os.environ``,
    ``sys.modules``, ``platform.machine()`` and the text of /proc/cpuinfo (for tests). Returns
    what it did: ``"pinned"``, or why not: ``"native"`` (asked for), ``"numpy already loaded"``,
    ``"not x86-64"``, ``"cpu features unknown"``, ``"no avx2 and fma"``.
    """
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if environ.get(PIN_VARIABLE, "").strip().lower() == "native":
        return "native"
    if "numpy" in modules:
        return "numpy already loaded"
    if (platform.machine() if machine is None else machine).lower() not in ("x86_64", "amd64"):
        return "not x86-64"
    flags = _cpu_flags(cpuinfo)
    if flags is None:
        return "cpu features unknown"
    if not {"avx2", "fma"} <= flags:
        return "no avx2 and fma"
    environ.update(pinned_environment())
    return "pinned"


PIN_RESULT = None
"""What :func:`pin` did when slimgen was imported (set by ``slimgen/__init__.py``)."""


def status():
    """What is in force, once NumPy is loaded: ``{"pin": what pin() did at import, "numpy":
    version, "numpy_exp": the SIMD target of float64 exp, "blas": [{"library", "version",
    "architecture", "threads"}, ...]}``; whether the pinned kernels are the ones loaded."""
    import numpy as np
    from threadpoolctl import threadpool_info

    try:
        from numpy.lib.introspect import opt_func_info   # NumPy ≥ 2.0
        exp = opt_func_info(func_name="^exp$", signature="float64.*")["exp"]["dd"]["current"]
    except (ImportError, KeyError):
        exp = None
    blas = [{"library": i.get("internal_api"), "version": i.get("version"),
             "architecture": i.get("architecture"), "threads": i.get("num_threads")}
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return {"pin": PIN_RESULT, "numpy": np.__version__, "numpy_exp": exp, "blas": blas}
