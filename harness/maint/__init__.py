"""Stage 6, maintenance: carrying a series to a new release (rebase and its worktree)."""
