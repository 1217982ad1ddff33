"""Stage 4, cell: one end-to-end run (its identifier, rc file, world, checks and result)."""
