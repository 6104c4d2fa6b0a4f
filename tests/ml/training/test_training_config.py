import dataclasses
import hashlib
import json

import pytest

from ml.training import PRESETS, ConfigError, TrainingConfig, config_from_dict, config_from_preset, config_hash


def test_seed_preset_is_the_seed_projects_recipe():
    seed = PRESETS["seed"]

    assert seed.backbone == "B5"
    assert (seed.image_size, seed.batch_size) == (224, 32)
    assert (seed.stage1_epochs, seed.stage2_epochs) == (40, 50)
    assert (seed.stage1_learning_rate, seed.stage2_learning_rate) == (1e-3, 1e-4)
    assert seed.unfreeze_layers == 30
    assert (seed.early_stopping_patience, seed.reduce_lr_patience) == (8, 5)
    assert seed.reduce_lr_factor == 0.2
    assert seed.min_learning_rate == 1e-7
    assert (seed.rotation_factor, seed.horizontal_flip) == (0.3, True)
    assert (seed.dense_units, seed.dropout) == (64, 0.45)
    assert seed.class_weights is True


def test_b5_preset_is_the_seed_recipe_at_b5s_native_resolution():
    assert PRESETS["b5"] == dataclasses.replace(PRESETS["seed"], image_size=456)


def test_tiny_preset_is_small_but_takes_the_same_two_stage_path():
    tiny = PRESETS["tiny"]

    assert tiny.backbone == "B0"
    assert tiny.image_size <= 64
    assert tiny.batch_size <= 32
    assert 1 <= tiny.stage2_epochs <= tiny.stage1_epochs <= 40
    assert 0 < tiny.unfreeze_layers < PRESETS["seed"].unfreeze_layers


def test_tiny_preset_augments_mildly_so_that_a_network_from_scratch_learns():
    """The seed's ±108° rotation made a from-scratch network collapse to one class (test accuracy 0.10 on digits);
    tests/ml/training/test_training_digits.py proves that this recipe learns."""
    tiny = PRESETS["tiny"]

    assert 0 < tiny.rotation_factor <= 0.05  # at most ±18°
    assert tiny.horizontal_flip is True
    # From scratch on the demo's few hundred images, 8 + 2 epochs stayed at chance (bench/demo_train.py).
    assert tiny.stage1_epochs + tiny.stage2_epochs >= 30
    assert tiny.early_stopping_patience > tiny.reduce_lr_patience  # the rate drops before the run gives up


def test_overrides_replace_preset_values():
    config = config_from_preset("b5", {"batch_size": 16, "stage1_learning_rate": 1, "mixed_precision": "off"})

    assert config.batch_size == 16
    assert config.stage1_learning_rate == 1.0
    assert isinstance(config.stage1_learning_rate, float)
    assert config.mixed_precision == "off"
    assert config.image_size == 456


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"learning_rate": 0.1}, ["learning_rate", "stage1_learning_rate"]),
        ({"batch_size": "32"}, ["batch_size", "int", "'32'"]),
        ({"batch_size": True}, ["batch_size", "bool"]),
        ({"horizontal_flip": 1}, ["horizontal_flip", "bool"]),
        ({"backbone": "B9"}, ["backbone", "'B9'", "B0", "B7"]),
        ({"stage1_epochs": -1}, ["stage1_epochs", "-1", ">= 0"]),
        ({"dropout": 1.0}, ["dropout", "[0, 1)"]),
        ({"xla": "maybe"}, ["xla", "auto, on, off"]),
        ({"stage1_epochs": 0, "stage2_epochs": 0}, ["stage1_epochs + stage2_epochs"]),
    ],
)
def test_bad_overrides_raise_config_error_naming_the_problem(overrides, named):
    with pytest.raises(ConfigError) as error:
        config_from_preset("seed", overrides)

    for text in named:
        assert text in str(error.value)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match=r"'huge'.*b5, seed, tiny"):
        config_from_preset("huge")


def test_a_config_constructed_directly_is_validated_too():
    with pytest.raises(ConfigError, match="image_size"):
        TrainingConfig(image_size=16)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["seed"].batch_size = 8


def test_config_hash_is_the_sha256_of_the_canonical_json():
    config = PRESETS["tiny"]
    canonical = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))

    assert config_hash(config) == hashlib.sha256(canonical.encode()).hexdigest()


def test_config_hash_ignores_key_order_and_filled_in_defaults():
    forward = config_from_preset("seed", {"batch_size": 8, "seed": 1})
    backward = config_from_preset("seed", {"seed": 1, "batch_size": 8})
    as_reversed_dict = dict(reversed(list(forward.to_dict().items())))

    assert config_hash(forward) == config_hash(backward) == config_hash(as_reversed_dict)
    assert config_hash({"batch_size": 8, "seed": 1}) == config_hash(forward)
    assert config_hash({"batch_size": 8, "seed": 2}) != config_hash(forward)
    assert config_hash({"stage1_learning_rate": 1}) == config_hash({"stage1_learning_rate": 1.0})


def test_stored_config_round_trips_through_json():
    config = config_from_preset("tiny", {"label_smoothing": 0.1})

    assert config_from_dict(json.loads(json.dumps(config.to_dict()))) == config
