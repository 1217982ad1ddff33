"""Stage 1, source: fetchmail's releases (version names, the git mirror, release tarballs)."""
