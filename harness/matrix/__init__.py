"""Stage 5, matrix: many cells (selection, the runner and its cache, progress, reports)."""
