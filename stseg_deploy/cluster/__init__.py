"""Ray cluster."""
