"""Analysis of run records on disk (DESIGN.md): never imports tasks, never trains."""
