"""Analysis of run records on disk (docs/design.md): never imports tasks, never trains."""
