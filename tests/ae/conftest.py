"""pytest setup for the AE tests."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def rng_state():
    """The global CPU RNG state, to check that nothing consumed it."""
    return torch.get_rng_state().clone()
