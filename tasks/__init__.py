"""Tasks: one module each, reached through ``_target_`` in ``conf/task/<name>.yaml``."""
