"""recipes side."""
