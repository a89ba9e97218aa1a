"""File formats and writing them safely: flow files, masks, DataSplits, videos, streamed .npy, atomic writes, output units."""
