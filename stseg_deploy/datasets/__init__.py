"""Datasets for stseg-prepare: the DAVIS layout, and the engine that turns one into a DataSplit with flows."""
