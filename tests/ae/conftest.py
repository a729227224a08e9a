"""pytest setup for the AE tests: make ``aebench`` and ``ae_helpers`` importable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

_HERE = Path(__file__).resolve().parent
for _p in (_HERE.parents[1], _HERE):  # the package may not be installed in the test environment
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


@pytest.fixture
def rng_state():
    """The global CPU RNG state, to check that nothing consumed it."""
    return torch.get_rng_state().clone()
