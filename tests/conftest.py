import slimgen  # noqa: F401  (first: pins the float kernels before NumPy loads, sw/determinism)
import sys
from pathlib import Path

# Test helpers (hw_sim.py) import as plain modules.
sys.path.insert(0, str(Path(__file__).parent))
