"""The OUT folder."""
