"""InferenceSettings: one object per stage, one record, one constructor from the flat options."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import pytest

from stseg_deploy.settings import InferenceSettings
from stseg_deploy.stages.carry import CarrySettings
from stseg_deploy.stages.foreground import ForegroundSettings
from stseg_deploy.stages.linker import LinkSettings
from stseg_deploy.stages.motionsplit import SPLIT_FORM, SplitSettings
from stseg_deploy.stages.refine import RefineSettings
from stseg_deploy.stages.tta import TtaSettings

# Every stage in a setting other than its default, parameters included.
CHANGED = InferenceSettings(
    tta=TtaSettings(mode="none"),
    split=SplitSettings(extra=2, min_area=0.02, min_gain=0.2, min_residual=0.3),
    link=LinkSettings(mode="naive", cut_size=None, link_span=1, link_vote=True, link_reclaim=True),
    carry=CarrySettings(mode="forward", weight=0.7),
    refine=RefineSettings(mode="guided", radius=32.0, eps=1e-3, subsample=2),
    foreground=ForegroundSettings(min_contrast=1.5, share=0.2, max_border=0.3),
)


@pytest.mark.parametrize("settings", [InferenceSettings(), CHANGED], ids=["defaults", "changed"])
def test_the_record_round_trips_for_every_stage(settings: InferenceSettings) -> None:
    assert InferenceSettings.from_record(settings.record()) == settings
    for stage in settings.stages():
        assert type(stage).from_record(stage.record()) == stage


def test_stages_that_do_not_run_record_only_their_mode() -> None:
    off = InferenceSettings.from_options(tta="none", refine="none", motion_split="none", carry="none", foreground="none")
    assert off.record() == {
        "tta": "none", "split": "none", "cut_size": 10, "link": "optimal", "link_span": 2, "link_vote": False, "link_reclaim": False, "carry": "none",
        "refine": "none", "foreground": "none",
    }
    # A stage that does not run keeps no parameters: a record cannot tell them apart.
    assert InferenceSettings.from_record(off.record()) == off


def test_the_record_keeps_the_format_outputs_have_always_had() -> None:
    record = CHANGED.record()
    assert record == {
        "tta": "none",
        "split": "motion", "motion_split": {"extra": 2, "min_area": 0.02, "min_gain": 0.2, "min_residual": 0.3, "form": SPLIT_FORM},
        "cut_size": None, "link": "naive", "link_span": 1, "link_vote": True, "link_reclaim": True,
        "carry": "forward", "temporal_carry": {"weight": 0.7},
        "refine": "guided", "guided": {"radius": 32.0, "eps": 1e-3, "subsample": 2},
        "foreground": "motion", "foreground_settings": {"min_contrast": 1.5, "share": 0.2, "max_border": 0.3},
    }


def test_from_options_takes_the_command_line_names() -> None:
    settings = InferenceSettings.from_options(
        tta="none", motion_split="none", motion_split_gain=0.3, motion_split_extra=1, link="naive", cut_size=4, link_span=1,
        carry="forward", carry_weight=0.5, refine="guided", guided_radius=20, guided_eps=0.01, guided_subsample=1, foreground="none",
    )
    assert settings == InferenceSettings(
        tta=TtaSettings(mode="none"), split=SplitSettings(mode="none", min_gain=0.3, extra=1), link=LinkSettings(mode="naive", cut_size=4, link_span=1),
        carry=CarrySettings(mode="forward", weight=0.5), refine=RefineSettings(mode="guided", radius=20, eps=0.01, subsample=1),
        foreground=ForegroundSettings(mode="none"),
    )
    assert InferenceSettings.from_options() == InferenceSettings()


def test_unknown_options_and_bad_values_are_named() -> None:
    with pytest.raises(TypeError, match=r"unknown option\(s\) guided_radious; the stages take tta, .*guided_radius"):
        InferenceSettings.from_options(guided_radious=3)
    with pytest.raises(ValueError, match="refine must be one of"):
        InferenceSettings.from_options(refine="crf")
    with pytest.raises(ValueError, match="carry weight must be in"):
        InferenceSettings.from_options(carry_weight=1.0)
    with pytest.raises(ValueError, match="cut_size must be an integer >= 1"):
        InferenceSettings.from_options(cut_size=0)
    with pytest.raises(ValueError, match=r"link_span must be one of \(1, 2\), got 3"):
        InferenceSettings.from_options(link_span=3)
    with pytest.raises(ValueError, match=r"link_span must be one of \(1, 2\), got 2.0"):
        InferenceSettings.from_options(link_span=2.0)  # a float would fail later, mid-run
    with pytest.raises(ValueError, match="link_vote must be true or false, got 'yes'"):
        InferenceSettings.from_options(link_vote="yes")
    with pytest.raises(ValueError, match="link_reclaim must be true or false, got 1"):
        InferenceSettings.from_options(link_reclaim=1)


def test_option_defaults_are_the_dataclass_defaults() -> None:
    defaults = InferenceSettings.option_defaults()
    assert defaults["tta"] == "flip" and defaults["refine"] == "auto" and defaults["guided_radius"] == 48.0
    assert defaults["motion_split"] == "motion" and defaults["foreground"] == "motion" and defaults["carry"] == "none"
    assert defaults["cut_size"] == 10 and defaults["link"] == "optimal" and defaults["link_span"] == 2
    assert InferenceSettings.from_options(**defaults) == InferenceSettings()


def test_every_option_has_one_click_option_with_the_same_default() -> None:
    """stseg-infer's help shows the settings' defaults: nothing else holds a copy."""
    from stseg_deploy.cli.infer import infer_main

    params = {p.name: p for p in infer_main.params}
    for name, default in InferenceSettings.option_defaults().items():
        assert name in params, name
        shown = params[name].default
        assert (str(default) if name == "cut_size" else default) == shown, name


def test_applied_resolves_the_refinement_for_one_sequence() -> None:
    settings = InferenceSettings()
    assert settings.refine.mode == "auto"
    assert settings.applied("guided").record()["refine"] == "guided"
    none = settings.applied("none").record()
    assert none["refine"] == "none" and "guided" not in none
    assert settings.applied("guided").refine == replace(settings.refine, mode="guided")


def test_describe_names_the_mask_changing_stages() -> None:
    text = CHANGED.describe()
    assert text == (
        "tta=none refine=guided(radius=32.0, eps=0.001, subsample=2) carry=forward(weight=0.7) "
        "foreground=motion(min_contrast=1.5, share=0.2, max_border=0.3)"
    ).replace("carry", "split=motion(extra=2, min_area=0.02, min_gain=0.2, min_residual=0.3, form=2) carry", 1)
    assert "foreground" not in CHANGED.describe(foreground=False)


def test_settings_are_frozen_and_keyword_only() -> None:
    with pytest.raises(TypeError):
        CarrySettings("forward", 0.5)  # a weight given where the mode goes would be silent otherwise
    settings = InferenceSettings()
    with pytest.raises(AttributeError):
        settings.tta.mode = "none"  # type: ignore[misc]
    assert [f.name for f in fields(InferenceSettings)] == ["tta", "split", "link", "carry", "refine", "foreground"]


@pytest.mark.parametrize("stage_cls", [TtaSettings, SplitSettings, LinkSettings, CarrySettings, RefineSettings, ForegroundSettings])
def test_a_parameter_added_to_any_stage_is_recorded_and_read_back(stage_cls) -> None:
    """What docs/inference-stages.md promises: a new field is the whole edit. No stage may
    write its record by hand and drop it (--skip-done and stseg-eval would then take two
    settings for one)."""
    from stseg_deploy.stages.base import option

    namespace = {"__annotations__": {"knob": int}, "knob": option("new_knob", 3)}
    grown = dataclass(frozen=True, kw_only=True)(type("Grown", (stage_cls,), namespace))
    running = next(mode for mode in stage_cls.MODES if mode not in ("none", "auto"))
    three, four = grown(mode=running, knob=3), grown(mode=running, knob=4)
    assert three.record() != four.record() and three.describe() != four.describe()
    assert grown.from_record(four.record()) == four
    assert grown.options()["new_knob"] == "knob" and grown.option_defaults()["new_knob"] == 3


def test_older_split_records_read_as_what_ran() -> None:
    # The first split recorded no form; before the residual floor, no min_residual (none ran).
    old = SplitSettings.from_record({"split": "motion", "motion_split": {"extra": 4, "min_area": 0.01, "min_gain": 0.1}})
    assert (old.form, old.min_residual) == (1, 0.0)


def test_older_link_records_read_as_span_one() -> None:
    # Linking scored each window against the previous one only until link_span existed.
    old = InferenceSettings.from_record({"link": "optimal", "cut_size": 10})
    assert old.link == LinkSettings(mode="optimal", cut_size=10, link_span=1, link_vote=False, link_reclaim=False)
    assert old.record()["link_span"] == 1 and old.record()["link_vote"] is False and old.record()["link_reclaim"] is False
    # A record that names no linking at all takes today's linking, as for every stage.
    assert InferenceSettings.from_record({}).link == LinkSettings()
