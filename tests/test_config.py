import pytest

from ganforge import Config, ConfigError
from ganforge.config import DEFAULT_STEPS


def test_defaults_follow_the_articles():
    c = Config()
    assert (c.dataset, c.model, c.loss) == ("digits", "dcgan", "bce")
    assert (c.lr_g, c.lr_d, c.beta1, c.beta2, c.batch_size, c.z_dim) == (2e-4, 2e-4, 0.5, 0.999, 64, 100)
    assert c.budget_steps() == DEFAULT_STEPS
    assert Config(time_limit=10).budget_steps() is None


def test_yaml_round_trip_is_sectioned(tmp_path):
    c = Config(dataset="mnist", classes=[3, 5], conditional=True, steps=10, label_smoothing=0.1)
    c.save(tmp_path / "c.yaml")
    text = (tmp_path / "c.yaml").read_text()
    assert text.index("data:") < text.index("model:") < text.index("loss:") < text.index("train:")
    assert Config.load(tmp_path / "c.yaml") == c


def test_flat_mapping_and_string_lists():
    c = Config.from_dict({"classes": "3,5", "steps": 7, "model": {"ngf": 16}})
    assert c.classes == [3, 5] and c.steps == 7 and c.ngf == 16


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "resnet"}, "--model: 'resnet' is not one of mlp, dcgan"),
        ({"batch_size": 0}, "--batch-size must be at least 2"),
        ({"batch_size": 1}, "--batch-size must be at least 2"),
        ({"lr_g": -1.0}, "--lr-g must be positive"),
        ({"label_smoothing": 0.7}, r"--label-smoothing must be in \[0, 0.5\)"),
        ({"classes": [3, 3]}, "--classes must list distinct"),
        ({"steps": 0}, "--steps must be positive"),
        ({"ema_decay": 1.0}, r"--ema-decay must be in \[0, 1\)"),
    ],
)
def test_validation_names_the_flag(options, message):
    with pytest.raises(ConfigError, match=message):
        Config(**options)


def test_unknown_and_mistyped_keys_name_the_source(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  stpes: 5\n")
    with pytest.raises(ConfigError, match=r"c.yaml: unknown option\(s\) stpes"):
        Config.load(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="steps must be a int, got 'many'"):
        Config.from_dict({"steps": "many"})
    with pytest.raises(ConfigError, match="no such config file"):
        Config.load(tmp_path / "missing.yaml")
