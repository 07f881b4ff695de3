"""ci side."""
