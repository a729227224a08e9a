"""Where the Hydra config tree lives: ``aebench/conf/`` inside the package, so an installed wheel
carries it (in a checkout it is a link to ``conf/`` at the repository root), or ``$AEBENCH_CONF``
when set (e.g. for a copy of the configs outside the clone)."""

from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    env = os.environ.get("AEBENCH_CONF")
    return Path(env).resolve() if env else (Path(__file__).resolve().parent / "conf").resolve()
