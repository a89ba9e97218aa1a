"""How flow is made from frames, as one resolved recipe (:class:`FlowRecipe`): the engine,
the size or scale, the step. Built once per run from a command's options, the model's
metadata and the defaults (:func:`resolve_recipe`); the video sources, the output record, a
model's metadata and stseg-prepare all take it. Pure Python: no OpenCV here (the engines
live in :mod:`stseg_deploy.flow.opticalflow`).
"""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("deepflow", "dis", "dis-fine", "farneback", "deepflow-dis")
#: The engine and scale stseg-prepare, stseg-flow and stseg-infer use unless told otherwise:
#: the mean of DeepFlow's and dis-fine's flows, the best J and F on the 27 shared DAVIS
#: sequences (both groups: the 6 development ones at 480p, the 21 training ones at 240p),
#: within the 2-core time budget (docs/inference.md, "Choosing the flow engine").
DEFAULT_METHOD = "deepflow-dis"
#: A model trained on one engine's flows is run, unless the user says otherwise, on flows
#: from its training recipe, with one exception: models trained on DeepFlow run on
#: ``deepflow-dis``, whose mean keeps DeepFlow's smooth fields and adds DIS's sharper motion
#: boundaries, and which scored better with them on both groups (``mix-small``: all 27
#: sequences J 0.666 → 0.685, F 0.614 → 0.637; docs/inference.md).
INFERENCE_METHOD = {"deepflow": "deepflow-dis"}
#: With ``scale="auto"`` flow is computed with frames shrunk to this height (never enlarged):
#: half of DAVIS's 480p, the grid the bundled models were trained on, and what keeps DeepFlow
#: near 0.1 s a frame whatever the video's resolution.
AUTO_FLOW_HEIGHT = 240


def check_method(method: str) -> str:
    key = str(method).lower()
    if key not in METHODS:
        raise ValueError(f"unknown optical-flow method {method!r}; expected one of {METHODS}")
    return key


def check_flow_scale(scale: float | str) -> float | str:
    """``"auto"`` or a number in (0, 4]; ValueError otherwise (other strings included: the
    command lines turn their text into a number first). The one rule for --flow-scale and
    :func:`flow_size_for`."""
    if scale == "auto":
        return scale
    if isinstance(scale, str) or not isinstance(scale, (int, float)) or not 0 < scale <= 4:
        raise ValueError(f"flow scale must be 'auto' or a factor in (0, 4], got {scale!r}")
    return float(scale)


def flow_size_for(
    frame_size: tuple[int, int], size: tuple[int, int] | None = None, scale: float | str = "auto"
) -> tuple[int, int] | None:
    """(H, W) to compute flow at for frames of ``frame_size``, or None for their own size.

    ``size`` wins when given; otherwise ``scale`` times the frames' size, where ``"auto"``
    shrinks them to :data:`AUTO_FLOW_HEIGHT` rows when taller (aspect kept) and leaves
    smaller frames alone. Flow is in pixels of that grid; outputs still follow the frames.
    """
    if size is not None:
        return check_flow_size(size)
    height, width = int(frame_size[0]), int(frame_size[1])
    scale = check_flow_scale(scale)
    if scale == "auto":
        scale = min(1.0, AUTO_FLOW_HEIGHT / height)
    if float(scale) == 1.0:
        return None
    return max(16, round(height * float(scale))), max(16, round(width * float(scale)))


@dataclass(frozen=True)
class FlowRecipe:
    """How flow is made from frames: the one description of it, resolved once per run and
    passed to the video sources, the output record, a model's metadata and stseg-prepare.

    ``method``: an OpenCV engine (:data:`METHODS`); flow at ``size`` (H, W) when given, else
    at ``scale`` of the frames' size (``"auto"``: see :func:`flow_size_for`); each flow from
    frame t to frame t + ``step``. Checked when made (ValueError naming the bad field).
    """

    method: str = DEFAULT_METHOD
    size: tuple[int, int] | None = None
    scale: float | str = "auto"
    step: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", check_method(self.method))
        object.__setattr__(self, "size", check_flow_size(self.size))
        object.__setattr__(self, "scale", check_flow_scale(self.scale))
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 1:
            raise ValueError(f"flow step must be a whole number >= 1, got {self.step!r}")

    def size_for(self, frame_size: tuple[int, int]) -> tuple[int, int] | None:
        """(H, W) to compute flow at for frames of ``frame_size``, None for their own size."""
        return flow_size_for(frame_size, self.size, self.scale)

    def record(self) -> dict:
        """``{"method", "size", "scale", "step"}`` as JSON values (a model's metadata)."""
        size = None if self.size is None else list(self.size)
        return {"method": self.method, "size": size, "scale": self.scale, "step": self.step}

    @classmethod
    def from_record(cls, record: dict | None) -> FlowRecipe | None:
        """The recipe of :meth:`record` or of stseg-prepare's marker (``scale`` None beside a
        size, no ``step``: 1), or None for None."""
        if record is None:
            return None
        size = record.get("size")
        scale = record.get("scale")
        return cls(
            record["method"], None if size is None else tuple(size), "auto" if scale is None else scale, int(record.get("step", 1))
        )


def resolve_recipe(
    trained: FlowRecipe | None = None,
    method: str | None = None,
    size: tuple[int, int] | None = None,
    scale: float | str | None = None,
    step: int = 1,
) -> FlowRecipe:
    """The flow recipe of a run: what the user gave, else what the model was trained on
    (``trained``, from its metadata; its engine through :data:`INFERENCE_METHOD`), else the
    package defaults.

    A size or a scale given replaces the model's resolution as a whole, so a user's size is
    never mixed with a scale nobody asked for; giving both is a ValueError."""
    if size and scale is not None:
        raise ValueError("give a flow size or a flow scale, not both")
    base = trained or FlowRecipe()
    if not size and scale is None:
        size, scale = base.size, base.scale
    method = method or INFERENCE_METHOD.get(base.method, base.method)
    return FlowRecipe(method, tuple(size) if size else None, "auto" if scale is None else scale, step)


def swapped_engine(trained: FlowRecipe | None, method: str | None, recipe: FlowRecipe) -> str | None:
    """The engine a model was trained on when the defaults computed another one for it
    (:data:`INFERENCE_METHOD`), so that a command can say so and name the way back; None when
    the user gave the engine (``method``), the model records none, or the engines agree."""
    if method is None and trained is not None and recipe.method != trained.method:
        return trained.method
    return None


def check_flow_size(size: tuple[int, int] | None) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"flow size must be (H, W), got {size!r}") from exc
    # DIS needs a few patches per side; below 16 px it has nothing to work with.
    if height < 16 or width < 16:
        raise ValueError(f"flow size must be at least 16x16 (H, W), got {size!r}")
    return height, width
