"""slimgen: neural networks from NumPy training to verified FPGA bitstreams."""
from slimgen.sw import determinism as _determinism

# Before anything loads NumPy: the same float kernels on every machine (same seed, same bits).
_determinism.PIN_RESULT = _determinism.pin()

__version__ = "0.1.0"
