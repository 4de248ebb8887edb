"""Run configuration: recipes, --set overrides, precedence and errors."""
from __future__ import annotations

import pytest

from gancli import config as cfg
from gancli.errors import GancliError


def test_defaults_come_from_the_family():
    run, family_config = cfg.resolve("dcgan", flags={"data": {"source": "x"}})
    assert family_config.lr == 2e-4 and family_config.beta1 == 0.5 and family_config.z_dim == 100
    assert run.train.batch_size == 128  # the family's train default (the paper's batch)
    assert run.data.resolution == 64  # the family's data default (the paper's resolution)
    assert run.model["loss"] == "nonsaturating"


def test_precedence_recipe_then_flags_then_set():
    run, fc = cfg.resolve(
        "dcgan", recipe="dcgan-fashion-mnist", flags={"train": {"steps": 11}}, overrides=["train.steps=12", "ngf=8"]
    )
    assert run.train.steps == 12  # --set wins over flags
    assert fc.ngf == 8 and run.model["ngf"] == 8
    assert run.data.source == "fashion-mnist" and run.data.resolution == 32  # from the recipe


def test_bare_names_reach_model_train_and_data_fields():
    run, fc = cfg.resolve("dcgan", overrides=["lr=1e-4", "loss=minimax", "steps=5", "split=test"])
    assert fc.lr == 1e-4 and fc.loss == "minimax"
    assert run.train.steps == 5 and run.data.split == "test"


def test_values_are_json_then_string_then_validated():
    key, value = cfg.parse_override("betas=[0, 0.9]")
    assert value == [0, 0.9]
    assert cfg.parse_override("loss=hinge") == ("loss", "hinge")
    assert cfg.parse_override("x=1e-3")[1] == 1e-3


@pytest.mark.parametrize(
    "override, message",
    [
        ("nope=1", "unknown setting"),
        ("model.nope=1", "unknown setting 'model.nope'"),
        ("train.nope=1", "unknown setting 'train.nope'"),
        ("lr=fast", "model.lr"),
        ("loss=sideways", "model.loss"),
        ("steps=-3", "train.steps"),
        ("bogus.x=1", "unknown section"),
        ("novalue", "key=value"),
        ("family=gan", "not allowed"),
    ],
)
def test_bad_overrides_are_clear_errors(override, message):
    with pytest.raises(GancliError, match=message):
        cfg.resolve("dcgan", overrides=[override])


def test_recipe_family_mismatch_and_unknown_recipe(tmp_path):
    with pytest.raises(GancliError, match="unknown recipe"):
        cfg.resolve("dcgan", recipe="no-such-recipe")
    bad = tmp_path / "bad.toml"
    bad.write_text('family = "dcgan"\n[train]\nsteps = "many"\n')
    with pytest.raises(GancliError, match="train.steps"):
        cfg.resolve(None, recipe=str(bad))
    broken = tmp_path / "broken.toml"
    broken.write_text("family = \n")
    with pytest.raises(GancliError, match="not valid TOML"):
        cfg.resolve(None, recipe=str(broken))


def test_resolved_config_round_trips_through_toml(tmp_path):
    run, _ = cfg.resolve("dcgan", recipe="dcgan-fashion-mnist", overrides=["real_label=0.9"])
    path = tmp_path / "config.toml"
    path.write_text(cfg.to_toml(run))
    again, _ = cfg.resolve(None, recipe=str(path))
    assert again == run


def test_every_shipped_recipe_validates_and_names_its_own_family():
    from gancli.plugins import discover

    records = discover()
    recipes = cfg.list_recipes()
    assert {"dcgan-fashion-mnist", "gan-ring8", "wgan-gp-grid25"} <= set(recipes)
    for name, entry in recipes.items():
        tree = cfg.read_recipe(str(entry.path))
        # a recipe travels with the plugin that trains it
        assert records[tree["family"]].distribution == entry.distribution, name
        cfg.resolve(None, recipe=name)


def test_the_top_level_recipes_folder_links_every_builtin_recipe():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "recipes"
    linked = {p.stem: p.resolve() for p in root.glob("*.toml")}
    shipped = {n: e.path.resolve() for n, e in cfg.list_recipes().items() if e.distribution.startswith("gancli-plugin-")}
    assert linked == shipped


def test_two_distributions_shipping_one_recipe_name_is_a_warning_not_a_crash(tmp_path, monkeypatch, capsys):
    from gancli import plugins

    package = tmp_path / "gancli_plugin_copycat"
    (package / "recipes").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from gancli.plugins import Family\n"
        "FAMILY = Family(name='copycat', summary='ships a recipe name dcgan already ships',\n"
        "                config='gancli_plugin_dcgan.config:DCGANConfig', build='gancli_plugin_dcgan.model:build',\n"
        "                recipes='gancli_plugin_copycat:recipes')\n"
    )
    (package / "recipes" / "dcgan-fashion-mnist.toml").write_text('family = "copycat"\n[data]\nsource = "x"\n')
    (package / "recipes" / "copycat-only.toml").write_text('family = "copycat"\n[data]\nsource = "x"\n')
    dist = tmp_path / "gancli_plugin_copycat-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gancli-plugin-copycat\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[gancli.plugins]\ncopycat = gancli_plugin_copycat:FAMILY\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cfg, "_warned_duplicates", set())
    plugins.refresh()
    recipes = cfg.list_recipes()
    assert recipes["dcgan-fashion-mnist"].distribution == "gancli-plugin-dcgan"  # the built-in one wins
    assert recipes["copycat-only"].distribution == "gancli-plugin-copycat"
    err = capsys.readouterr().err
    assert err.count("warning: recipe 'dcgan-fashion-mnist' is shipped by both") == 1
    cfg.list_recipes()
    assert "warning" not in capsys.readouterr().err  # said once
