"""Where the Hydra config tree lives: ``conf/`` at the repository root (DESIGN.md layout), or
``$AEBENCH_CONF`` when set (e.g. for a copy of the configs outside the clone)."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    env = os.environ.get("AEBENCH_CONF")
    return Path(env).resolve() if env else Path(__file__).resolve().parent.parent / "conf"
