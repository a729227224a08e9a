"""aebench: a Hydra-configured benchmark suite for the theory of Adaptive Evolution."""

__version__ = "0.1.0"
