"""Inference timing tables: engines × input sizes × mask counts × batch sizes, plus the
kernels and the whole pipeline, measured in one process so ratios are meaningful.

Rows of the table (``bench.csv``): engine, provider, precision, height, width, masks, batch,
windows_per_s, ms_per_frame, peak_mem_mb. One window yields one output frame in a long
video, so ms_per_frame = 1000 / windows_per_s. peak_mem_mb is the peak resident memory
above the level before the engine ran (CPU), or the peak device memory (CUDA).

Modules: :mod:`~stseg_train.bench.measure` (rows, memory, timing, the table),
:mod:`~stseg_train.bench.engines` (the model on each engine), :mod:`~stseg_train.bench.kernels`,
:mod:`~stseg_train.bench.pipeline` (the whole pipeline and its stages), and the command line
:mod:`~stseg_train.bench.cli` (``stseg-bench``). The training-side benchmarks sit beside it: :mod:`stseg_train.bench.solvers` (θ solvers)
and :mod:`stseg_train.bench.train_step` (one training step); the kernels' own benchmark is
:mod:`stseg_kernels.bench`, whose timing the kernel rows here reuse.
"""
