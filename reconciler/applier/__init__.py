"""applier."""
