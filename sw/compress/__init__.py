"""Compression and training methods (DESIGN.md, "The seven methods"): one module per method."""
