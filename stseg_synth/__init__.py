"""stseg synth: synthetic videos with known motion segments, numpy only (no torch).

- :mod:`stseg_synth.flows`: layered parametric-motion *flow* videos with object masks;
- :mod:`stseg_synth.datasplit`: those videos written as a DataSplit (``stseg-synth``):
  training data and test fixtures.
- :mod:`stseg_synth.video`: rendered *RGB* videos with known moving objects, for the
  video → optical flow → segmentation path and its tests.

Layering: ``stseg_synth`` → ``stseg_deploy`` (file formats) → ``stseg_kernels``; the training
package uses it only in its tests and the demo.
"""

from __future__ import annotations

from .datasplit import write_synth_split
from .video import RenderedVideo, render_video

__all__ = ["RenderedVideo", "render_video", "write_synth_split"]
