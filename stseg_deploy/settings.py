"""What the pipeline is asked to do around the model: one settings object per stage,
composed in :class:`InferenceSettings`.

The same object is built from stseg-infer's flags, from ``segment(**options)`` and from a
Ray job; :meth:`InferenceSettings.record` is what sequence.json stores, ``--skip-done``
compares and stseg-eval refuses to pool across; :meth:`InferenceSettings.from_record` reads
it back. Each stage's settings live in its module (:mod:`stseg_deploy.stages`), so a new
parameter is a field there and a click option (docs/inference-stages.md, "Adding a stage
option").
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from .stages.base import StageSettings
from .stages.carry import CarrySettings
from .stages.foreground import ForegroundSettings
from .stages.linker import LinkSettings
from .stages.motionsplit import SplitSettings
from .stages.refine import RefineSettings
from .stages.tta import TtaSettings


@dataclass(frozen=True)
class InferenceSettings:
    """The stages of one run, in the order the pipeline applies them: the test-time flip
    (around the model call), the motion split, linking, the temporal carry, the refinement
    and the foreground decision. Each defaults to the package's default."""

    tta: TtaSettings = field(default_factory=TtaSettings)
    split: SplitSettings = field(default_factory=SplitSettings)
    link: LinkSettings = field(default_factory=LinkSettings)
    carry: CarrySettings = field(default_factory=CarrySettings)
    refine: RefineSettings = field(default_factory=RefineSettings)
    foreground: ForegroundSettings = field(default_factory=ForegroundSettings)

    def stages(self) -> list[StageSettings]:
        return [getattr(self, f.name) for f in fields(self)]

    @classmethod
    def from_options(cls, **options: Any) -> InferenceSettings:
        """From the flat option names stseg-infer and ``segment()`` take (``tta``,
        ``refine``, ``guided_radius``, ``motion_split``, ``cut_size``, ...: see
        :meth:`option_defaults`); options not given keep their defaults. Raises TypeError
        for a name no stage has, ValueError for a value out of range."""
        unknown = set(options) - set(cls.option_defaults())
        if unknown:
            raise TypeError(
                f"unknown option(s) {', '.join(sorted(unknown))}; the stages take {', '.join(cls.option_defaults())}"
            )
        parts = {}
        for f in fields(cls):
            stage_cls = f.default_factory
            given = {name: options[flat] for flat, name in stage_cls.options().items() if flat in options}
            parts[f.name] = stage_cls(**given)
        return cls(**parts)

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """{flat option name: default} of every stage: the one source of the defaults that
        stseg-infer's help, ``segment()`` and Ray jobs show and use."""
        out: dict[str, Any] = {}
        for f in fields(cls):
            out.update(f.default_factory.option_defaults())
        return out

    def record(self) -> dict[str, Any]:
        """sequence.json's settings of the stages: ``cut_size``, ``link``, ``link_span``, ``link_vote``, ``link_reclaim``, ``tta``,
        ``refine`` (+ ``guided``), ``split`` (+ ``motion_split``), ``carry`` (+
        ``temporal_carry``), ``foreground`` (+ ``foreground_settings``)."""
        out: dict[str, Any] = {}
        for stage in self.stages():
            out.update(stage.record())
        return out

    @classmethod
    def from_record(cls, settings: dict[str, Any]) -> InferenceSettings:
        """The settings a sequence.json ``settings`` dict records. A stage an older output
        does not name did not run then ("none"). Raises ValueError for values out of range."""
        return cls(**{f.name: f.default_factory.from_record(settings) for f in fields(cls)})

    def applied(self, refine: str) -> InferenceSettings:
        """These settings with the refinement one sequence got ("guided" or "none"; "auto"
        resolves per sequence): what its output records."""
        return replace(self, refine=replace(self.refine, mode=refine))

    def describe(self, foreground: bool = True) -> str:
        """The stages that change masks beyond the model and linking, in a few words, for
        messages and for telling outputs apart: ``tta=flip refine=guided(radius=48.0, ...)
        split=motion(...) carry=none foreground=motion(...)``."""
        parts = [self.tta, self.refine, self.split, self.carry] + ([self.foreground] if foreground else [])
        return " ".join(f"{stage.MODE_KEY}={stage.describe()}" for stage in parts)
