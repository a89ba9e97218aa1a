"""What every stage's settings share: a frozen dataclass whose first field is the stage's
mode, whose other fields are its parameters, and whose fields name the flat option they come
from (``stseg-infer --guided-radius``, ``segment(guided_radius=...)``).

A stage's settings are recorded in sequence.json as ``{MODE_KEY: mode}`` plus, when the stage
runs and has parameters, ``{PARAMS_KEY: {parameter: value}}`` (linking's parameters, the cut
size, the span and the vote, sit beside its mode instead: ``FLAT_PARAMS``): the format outputs have had since the
stages existed, so older outputs read the same. Every field is recorded, so a new parameter
cannot be left out of what ``--skip-done`` and stseg-eval compare. Adding a parameter to a stage is one field here in its
settings class (with ``option(...)`` naming its flag) and one click option.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar

OFF = "none"


def option(name: str | None, default: Any) -> Any:
    """A settings field with ``default``, set by the flat option ``name`` (None: settable
    from Python only, e.g. a parameter no command line exposes)."""
    return field(default=default, metadata={"option": name})


@dataclass(frozen=True)
class StageSettings:
    """Base of a stage's settings. Subclasses declare ``mode`` first, then the parameters,
    each with :func:`option`, and set the class constants below."""

    MODE_KEY: ClassVar[str]  # sequence.json's key of the mode, e.g. "tta"
    PARAMS_KEY: ClassVar[str]  # its key of the parameters while the stage runs
    FLAT_PARAMS: ClassVar[bool] = False  # parameters beside the mode, recorded whatever the mode
    MODES: ClassVar[tuple[str, ...]]

    mode: str  # each stage redeclares it, with its default and flag

    def __post_init__(self) -> None:
        if self.mode not in self.MODES:
            raise ValueError(f"{self.MODE_KEY} must be one of {self.MODES}, got {self.mode!r}")
        self.check()

    def check(self) -> None:
        """Refuse parameters out of range (ValueError naming the parameter)."""

    @property
    def on(self) -> bool:
        return self.mode != OFF

    def params(self) -> dict[str, Any]:
        """The parameters as JSON values, typed like their defaults (a radius given as 32 is
        recorded as 32.0, so records compare equal)."""
        out = {}
        for f in fields(self):
            if f.name == "mode":
                continue
            value = getattr(self, f.name)
            if value is None:
                pass
            elif isinstance(f.default, float) and not isinstance(value, bool):
                value = float(value)
            elif isinstance(f.default, int) and not isinstance(f.default, bool):
                value = int(value)
            out[f.name] = value
        return out

    def record(self) -> dict[str, Any]:
        """This stage's part of sequence.json's settings."""
        out: dict[str, Any] = {self.MODE_KEY: self.mode}
        params = self.params()
        if self.FLAT_PARAMS:
            out.update(params)
        elif self.on and params:
            out[self.PARAMS_KEY] = params
        return out

    @classmethod
    def from_record(cls, settings: dict[str, Any]) -> StageSettings:
        """The settings a sequence.json ``settings`` dict records; a stage it does not name
        (an output written before the stage existed) did not run. Parameters it does not
        name take today's defaults. Raises ValueError for values out of range."""
        mode = settings.get(cls.MODE_KEY, OFF if OFF in cls.MODES else cls._default_mode())
        if cls.FLAT_PARAMS:
            params = settings
        else:
            params = (settings.get(cls.PARAMS_KEY) or {}) if mode != OFF else {}
        if not isinstance(params, dict):
            raise ValueError(f"settings.{cls.PARAMS_KEY} must be an object, got {params!r}")
        names = {f.name for f in fields(cls)} - {"mode"}
        return cls(mode=mode, **{k: v for k, v in params.items() if k in names})

    @classmethod
    def _default_mode(cls) -> str:
        return next(f.default for f in fields(cls) if f.name == "mode")

    @classmethod
    def options(cls) -> dict[str, str]:
        """{flat option name: field name} of the fields a flat option sets."""
        return {f.metadata["option"]: f.name for f in fields(cls) if f.metadata.get("option")}

    @classmethod
    def option_defaults(cls) -> dict[str, Any]:
        """{flat option name: default}: the one source of the command lines' defaults."""
        out = {}
        for f in fields(cls):
            name = f.metadata.get("option")
            if name:
                out[name] = f.default if f.default is not MISSING else f.default_factory()
        return out

    def describe(self) -> str:
        """The mode and, while the stage runs, its parameters, in a few words:
        ``guided(radius=48.0, eps=3e-05, subsample=4)``."""
        if not (self.on or self.FLAT_PARAMS) or not self.params():
            return self.mode
        return self.mode + "(" + ", ".join(f"{k}={v}" for k, v in self.params().items()) + ")"
