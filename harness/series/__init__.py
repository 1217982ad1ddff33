"""Stage 2, series: the patch series, the version -> series table, applying and comparing them."""
