"""The ``aebench`` console script: a fast preflight of the command line, then the Hydra app.

The preflight composes the config for every value of every sweep before torch is even imported,
so a typo or a bad value fails within a second with one line, and no job starts.
"""

from __future__ import annotations

import sys


def main() -> None:
    from aebench.preflight import preflight
    from aebench.validation import ConfigError

    try:
        preflight(sys.argv[1:])
    except ConfigError as err:
        print(f"aebench: error: {err}", file=sys.stderr)
        sys.exit(2)
    from aebench.app import hydra_entry

    hydra_entry()
