import slimgen  # noqa: F401  (first: pins the float kernels before NumPy loads, sw/determinism)
import sys
import warnings
from pathlib import Path

from amaranth.hdl import UnusedElaboratable

# Many tests build a design for its figures only (summaries, cycles, plans) and never elaborate
# it; Amaranth's "created but never used" then comes at garbage collection, inside whichever
# test runs (pyproject.toml's filterwarnings, which pytest applies there) or between tests (this
# filter), and with ``-p no:warnings`` into that test's captured stderr.
warnings.filterwarnings("ignore", category=UnusedElaboratable)

# Test helpers (hw_sim.py) import as plain modules.
sys.path.insert(0, str(Path(__file__).parent))
