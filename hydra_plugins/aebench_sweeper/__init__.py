"""aebench's Hydra plug-ins (Hydra finds them under the ``hydra_plugins`` namespace package)."""
