"""Tests for the flow recipe (stseg_deploy.flow.recipe): sizes, checks, the record, resolution."""

from __future__ import annotations

import pytest

from stseg_deploy.flow.recipe import FlowRecipe, flow_size_for, resolve_recipe, swapped_engine


def test_flow_size_for_auto_scale_and_explicit_size() -> None:
    assert flow_size_for((480, 854)) == (240, 427)  # DAVIS 480p -> half, as the models were trained
    assert flow_size_for((1080, 1920)) == (240, 427)
    assert flow_size_for((240, 427)) is None and flow_size_for((100, 150)) is None  # never enlarged
    assert flow_size_for((480, 854), scale=0.25) == (120, 214)
    assert flow_size_for((480, 854), scale=1) is None
    assert flow_size_for((480, 854), size=(100, 200), scale=0.5) == (100, 200)  # a size wins
    with pytest.raises(ValueError, match="flow scale"):
        flow_size_for((480, 854), scale=0)


def test_recipe_sizes() -> None:
    assert FlowRecipe(size=(16, 24)).size_for((480, 854)) == (16, 24)
    assert FlowRecipe(scale=0.5).size_for((480, 854)) == (240, 427)
    assert FlowRecipe().size_for((480, 854)) == (240, 427)  # auto: 240 rows
    assert FlowRecipe().size_for((32, 48)) is None  # small frames as they are


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "raft"}, "unknown optical-flow method 'raft'"),
        ({"size": (8, 24)}, "at least 16x16"),
        ({"scale": 5.0}, "flow scale must be 'auto' or a factor in"),
        ({"step": 0}, "flow step must be a whole number >= 1, got 0"),
        ({"step": 1.5}, "flow step must be a whole number"),
    ],
)
def test_bad_recipes_are_refused_when_made(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FlowRecipe(**fields)


def test_record_round_trip() -> None:
    recipe = FlowRecipe("dis-fine", (120, 214), "auto", 2)
    assert recipe.record() == {"method": "dis-fine", "size": [120, 214], "scale": "auto", "step": 2}
    assert FlowRecipe.from_record(recipe.record()) == recipe
    assert FlowRecipe.from_record(None) is None
    # stseg-prepare's marker: scale None beside a size, no step.
    assert FlowRecipe.from_record({"method": "dis", "size": [64, 112], "scale": None}) == FlowRecipe("dis", (64, 112))


def test_what_the_user_gives_wins_over_the_model_and_the_defaults() -> None:
    trained = FlowRecipe("dis", (120, 214), "auto")
    assert resolve_recipe() == FlowRecipe()
    assert resolve_recipe(trained) == trained
    assert resolve_recipe(trained, method="farneback") == FlowRecipe("farneback", (120, 214))
    # A scale replaces the model's size as a whole (never a size and a scale mixed).
    assert resolve_recipe(trained, scale=0.5, step=3) == FlowRecipe("dis", None, 0.5, 3)
    assert resolve_recipe(FlowRecipe(scale=0.25), size=(32, 48)) == FlowRecipe(size=(32, 48))
    with pytest.raises(ValueError, match="not both"):
        resolve_recipe(size=(32, 48), scale=0.5)


def test_models_trained_on_deepflow_run_on_deepflow_dis_unless_told() -> None:
    assert FlowRecipe().method == "deepflow-dis"
    deep = FlowRecipe("deepflow", None, "auto")
    assert resolve_recipe(deep) == FlowRecipe("deepflow-dis", None, "auto")
    assert resolve_recipe(deep, scale=0.5).method == "deepflow-dis"
    # The user's engine is used as given, DeepFlow alone included.
    assert resolve_recipe(deep, method="deepflow").method == "deepflow"
    # Other engines run as trained.
    assert resolve_recipe(FlowRecipe("dis-fine")).method == "dis-fine"
    assert resolve_recipe(FlowRecipe("deepflow-dis")).method == "deepflow-dis"

    # The swap is named (for the commands' note) only when the defaults made it.
    assert swapped_engine(deep, None, resolve_recipe(deep)) == "deepflow"
    assert swapped_engine(deep, "deepflow-dis", resolve_recipe(deep, method="deepflow-dis")) is None
    assert swapped_engine(deep, "deepflow", resolve_recipe(deep, method="deepflow")) is None
    assert swapped_engine(None, None, resolve_recipe()) is None
    assert swapped_engine(FlowRecipe("dis"), None, resolve_recipe(FlowRecipe("dis"))) is None
