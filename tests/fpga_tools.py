"""The YoWASP tools for the ``fpga`` tests: skipped without them, but a failure under CI, which
installs them."""

import os

import pytest

from slimgen.boards.build import missing_tools

__all__ = ["require_tools"]


def require_tools(board):
    missing = missing_tools(board)
    if missing:
        reason = (f"YoWASP tools for {board} are not installed ({', '.join(missing)} not "
                  f"importable); pip install 'slimgen[fpga]'")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
