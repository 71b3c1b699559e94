"""slimgen: neural networks from NumPy training to verified FPGA bitstreams."""
__version__ = "0.1.0"
