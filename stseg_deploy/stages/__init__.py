"""The stages after the model."""
