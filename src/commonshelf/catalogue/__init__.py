"""catalogue side."""
