"""slimgen: neural networks from NumPy training to verified FPGA bitstreams.

The Python API (:mod:`slimgen.api`) is loaded on first use, so ``import slimgen`` stays light::

    p = slimgen.project(run="runs/tiny", network="mlp", epochs=3)
    p.flow(to="quantize")
    p.predict(x)
"""
from slimgen.sw import determinism as _determinism

# Before anything loads NumPy: the same float kernels on every machine (same seed, same bits).
_determinism.PIN_RESULT = _determinism.pin()

__version__ = "0.1.0"

# name: the module that defines it, imported when the name is first used
_LAZY = {name: "slimgen.api" for name in (
    "Project", "project", "open", "from_onnx", "Summary", "Trace", "TraceEntry", "TrainResult",
    "CompressResult", "QuantizeResult", "GenerateResult", "VerifyResult", "BuildResult",
    "ReportResult")}
_LAZY["FlowError"] = "slimgen.flow"


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'slimgen' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})
