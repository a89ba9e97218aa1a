"""An exported model quantised to int8 for onnxruntime's CPU provider, calibrated on flows.

Static quantisation (QDQ, per-channel int8 weights, uint8 activations) of the convolutions
only: the transposed convolutions, the normalisations and the softmax stay in float32. The
activation ranges come from windows of real flows (a DataSplit's, resized to the model's input
as stseg-infer resizes them), never from the flows it will be measured on. The metadata of the
float model is kept, so stseg-infer reads the quantised file as it reads the float one, plus
``quantisation`` naming how it was made.

Offered, not the default: see docs/benchmarks.md for what it gains and what it costs.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from stseg_deploy.errors import StsegInputError
from stseg_deploy.io.atomic import atomic_write
from stseg_deploy.io.flowio import read_flow
from stseg_deploy.preprocess import WINDOW, resize_flow
from stseg_deploy.runtime import OnnxModel
from stseg_deploy.sources import sequences_from_datasplit

log = logging.getLogger(__name__)

QUANTISATION_KEY = "quantisation"


def calibration_windows(model: OnnxModel, data_file: str | Path, split: str, base_dir: str | Path | None, windows: int) -> list[np.ndarray]:
    """Up to ``windows`` flow windows (1, 2, 3, h, w) float32 at the model's input size, spread
    evenly over the DataSplit's sequences and over each sequence's frames."""
    sequences = [s for s in sequences_from_datasplit(data_file, split, base_dir) if len(s.flows) >= WINDOW]
    if not sequences:
        raise StsegInputError(f"{data_file}_{split}.csv: no sequence of {WINDOW} flows or more to calibrate on")
    per = max(1, -(-windows // len(sequences)))
    size = model.info.image_size
    out: list[np.ndarray] = []
    for sequence in sequences:
        starts = np.unique(np.linspace(0, len(sequence.flows) - WINDOW, per).round().astype(int))
        for start in starts:
            flows = [resize_flow(read_flow(p), size, model.info.resize) for p in sequence.flows[start : start + WINDOW]]
            out.append(np.stack(flows, axis=1)[None].astype(np.float32))
            if len(out) == windows:
                return out
    return out


def quantize_model(model_file: str | Path, out: str | Path, data_file: str | Path, split: str = "train",
                   base_dir: str | Path | None = None, windows: int = 64) -> int:
    """Write ``out``: ``model_file`` with its convolutions in int8, calibrated on ``windows``
    windows of the DataSplit's flows. Returns the number of windows used.

    ``out`` appears only complete (written beside it, then renamed); a failure leaves it as it
    was. Raises StsegInputError when the DataSplit has nothing to calibrate on, ValueError when
    ``model_file`` is not an stseg ONNX model.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = OnnxModel(model_file, provider="cpu")
    inputs = calibration_windows(model, data_file, split, base_dir, windows)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter({"flow": window} for window in inputs)

        def get_next(self):
            return next(self.items, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared, quantised = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(model_file), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared), str(quantised), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, per_channel=True,
            # Grouped transposed convolutions do not quantise per channel; the rest is cheap.
            op_types_to_quantize=["Conv"],
        )
        proto = onnx.load(str(quantised))
    meta = {p.key: p.value for p in onnx.load(str(model_file), load_external_data=False).metadata_props}
    meta[QUANTISATION_KEY] = f"int8 QDQ convolutions, calibrated on {len(inputs)} windows of {data_file}_{split}.csv"
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    with atomic_write(out) as handle:
        handle.write(proto.SerializeToString())
    log.info("wrote %s (%d calibration windows)", out, len(inputs))
    return len(inputs)
