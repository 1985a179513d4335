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
        ({"model": "stylegan"}, "--model: 'stylegan' is not one of mlp, dcgan, resnet"),
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


def test_a_preset_given_to_the_constructor_is_applied_beneath_the_options_given():
    from ganforge.presets import PRESETS

    defaults = Config()
    for name, values in PRESETS.items():
        preset = Config(preset=name)
        assert all(getattr(preset, k) == v for k, v in values.items()), name
        # The options given win, even when they equal the defaults.
        mine = Config(preset=name, **{k: getattr(defaults, k) for k in values})
        assert all(getattr(mine, k) == getattr(defaults, k) for k in values), name
        assert preset == Config.from_dict({"preset": name}) == Config.from_preset(name)
        assert Config.from_dict(preset.to_dict()) == preset  # config.yaml records the expanded values


def test_presets_list_only_what_they_change():
    from ganforge.presets import PRESETS

    defaults = Config()
    for name, values in PRESETS.items():
        assert values, name
        assert all(getattr(defaults, k) != v for k, v in values.items()), name  # no value that is a default


def test_config_file_then_preset_flag_then_flags(tmp_path):
    """``--config FILE --preset fast --lr-d X``: fast's values over the file's, the flags over both; what the
    file sets and the preset does not (mbstd) survives."""
    from ganforge.config import read_yaml

    Config(lr_g=5e-4, ngf=32, mbstd=4, steps=7).save(tmp_path / "full.yaml")  # every option, as a run writes it
    (tmp_path / "mine.yaml").write_text("model:\n  mbstd: 4\ntrain:\n  lr_g: 5.0e-4\n")
    for f in ("full.yaml", "mine.yaml"):
        c = Config.from_dict(read_yaml(tmp_path / f), {"preset": "fast", "lr_d": 1e-3})
        assert (c.preset, c.lr_g, c.lr_d, c.loss, c.mbstd) == ("fast", 2.4e-3, 1e-3, "hinge", 4), f
    # A preset named in the file lies beneath the file's own options.
    (tmp_path / "own.yaml").write_text("train:\n  preset: fast\n  lr_g: 5.0e-4\n")
    c = Config.load(tmp_path / "own.yaml")
    assert (c.lr_g, c.loss) == (5e-4, "hinge")


def test_config_file_and_preset_from_the_command_line(tmp_path, capsys):
    from ganforge.cli import main

    (tmp_path / "c.yaml").write_text("model:\n  mbstd: 4\n  ngf: 8\n  ndf: 8\ntrain:\n  lr_g: 5.0e-4\n")
    out = tmp_path / "run"
    code = main(["train", "--config", str(tmp_path / "c.yaml"), "--preset", "fast", "--ngf", "4", "--ndf", "4",
                 "--steps", "1", "--device", "cpu", "--out", str(out), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    c = Config.load(out / "config.yaml")
    assert (c.lr_g, c.loss, c.mbstd, c.ngf) == (2.4e-3, "hinge", 4, 4)


def test_option_roles_are_field_metadata():
    arch, resumable = set(Config.fields(architecture=True)), set(Config.fields(resumable=True))
    assert {"dataset", "classes", "model", "conditional", "label_assist", "z_dim", "ngf", "d_norm", "mbstd"} <= arch
    assert {"steps", "time_limit", "device", "amp", "log_every", "eval_every"} <= resumable
    assert not arch & resumable
    assert not {"lr_g", "loss", "seed", "batch_size", "data_dir"} & (arch | resumable)  # fixed, not shape-defining
