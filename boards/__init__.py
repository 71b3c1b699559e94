"""Board tops (pins, UART, LEDs) and bitstream builds with the YoWASP tools."""

from .build import (BOARDS, BuildError, BuildResult, DesignDoesNotFit, TimingNotMet, ToolFailed,
                    ToolsNotFound, build_bitstream, get_board)

__all__ = ["BOARDS", "BuildError", "BuildResult", "DesignDoesNotFit", "TimingNotMet",
           "ToolFailed", "ToolsNotFound", "build_bitstream", "get_board"]
