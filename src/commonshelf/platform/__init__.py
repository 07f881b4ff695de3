"""platform side."""
