"""installation side."""
