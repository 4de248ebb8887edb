"""Which plugins load (GANCLI_PLUGINS, GANCLI_DISABLE_PLUGINS), and plugin failures reported as the plugin's fault."""
from __future__ import annotations

from pathlib import Path

import pytest

from _reliability_support import FAKE_DISTRIBUTION, install_fake_plugin, one_torch_thread


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def fake_site(tmp_path_factory) -> Path:
    return install_fake_plugin(tmp_path_factory.mktemp("site"))


@pytest.fixture
def with_fake_plugin(fake_site, monkeypatch):
    from gancli import plugins

    monkeypatch.syspath_prepend(str(fake_site))
    monkeypatch.delenv("GANCLI_PLUGINS", raising=False)
    monkeypatch.delenv("GANCLI_DISABLE_PLUGINS", raising=False)
    plugins.refresh()
    yield fake_site
    plugins.refresh()


def _names(monkeypatch, **env: str) -> set[str]:
    from gancli import plugins

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    plugins.refresh()
    return set(plugins.discover())


def test_all_installed_plugins_load_by_default(with_fake_plugin, monkeypatch):
    names = _names(monkeypatch)
    assert {"dcgan", "faulty", "faulty2"} <= names


def test_gancli_plugins_limits_which_load(with_fake_plugin, monkeypatch):
    assert _names(monkeypatch, GANCLI_PLUGINS="dcgan") == {"dcgan"}
    assert _names(monkeypatch, GANCLI_PLUGINS=" faulty , dcgan ") == {"faulty", "dcgan"}
    # a distribution name selects every family it provides
    assert _names(monkeypatch, GANCLI_PLUGINS=FAKE_DISTRIBUTION) == {"faulty", "faulty2"}


def test_disable_plugins_keeps_only_builtins(with_fake_plugin, monkeypatch):
    from gancli import plugins

    names = _names(monkeypatch, GANCLI_DISABLE_PLUGINS="1")
    assert "dcgan" in names and "faulty" not in names and "faulty2" not in names
    assert all(record.builtin for record in plugins.discover().values())
    assert "faulty" in _names(monkeypatch, GANCLI_DISABLE_PLUGINS="0")


def test_excluded_family_is_a_one_line_error_naming_the_variable(with_fake_plugin, monkeypatch, cli):
    monkeypatch.setenv("GANCLI_DISABLE_PLUGINS", "1")
    result = cli("train", "faulty", "--data", "ring8", "--steps", "1")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "unknown GAN family 'faulty'" in result.stderr and "GANCLI_DISABLE_PLUGINS" in result.stderr


def _train_faulty(out: Path, *settings: str, steps: int = 3, resume: bool = False):
    from gancli import config as cfg
    from gancli.train.loop import train

    run, family_config = cfg.resolve(
        "faulty",
        flags={"data": {"source": "ring8"},
               "train": {"steps": steps, "batch_size": 16, "checkpoint_every": 1, "sample_every": 0,
                         "log_every": 1, "sample_grid": 16}},
        overrides=list(settings),
    )
    return train(run, family_config, out=out, resume=resume, show_progress=False)


@pytest.mark.parametrize(
    "call_site, action",
    [
        ("build", "building the model"),
        ("optimizers", "making the optimizers"),
        ("begin_step", "training step 1"),
        ("d_loss", "training step 1"),
        ("g_loss", "training step 1"),
        ("after_d_step", "training step 1"),
        ("after_g_step", "training step 1"),
        ("state_tensors", "saving its state"),
    ],
)
def test_exception_in_plugin_training_code_names_the_plugin(with_fake_plugin, tmp_path, call_site, action):
    from gancli.errors import PluginError

    with pytest.raises(PluginError) as caught:
        _train_faulty(tmp_path / "run", f"fail_in={call_site}")
    message = str(caught.value)
    assert f"{FAKE_DISTRIBUTION} 1.2.3" in message and "'faulty'" in message
    assert action in message and f"deliberate failure in {call_site}" in message


def test_exception_in_objective_state_restore_names_the_plugin(with_fake_plugin, tmp_path):
    from gancli.errors import PluginError

    run = tmp_path / "run"
    _train_faulty(run, steps=2)
    with pytest.raises(PluginError, match=r"gancli-plugin-faulty 1\.2\.3.*restoring its objective state"):
        _train_faulty(run, "fail_in=load_state_tensors", steps=4, resume=True)


def test_plugin_fault_in_cli_training_and_sampling_is_exit_2_with_name_and_version(with_fake_plugin, tmp_path, cli):
    run = tmp_path / "run"
    result = cli("train", "faulty", "--data", "ring8", "--steps", "3", "--batch", "16", "--set", "fail_in=g_loss",
                 "--set", "train.sample_grid=16", "--checkpoint-every", "1", "--out", run)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "plugin gancli-plugin-faulty 1.2.3 (family 'faulty') failed while training step 1" in result.stderr
    # the step before the failure was saved and is usable
    last = run / "checkpoints" / "last.safetensors"
    from gancli import checkpoint as ckpt_io

    assert ckpt_io.read(last).step == 1

    # sampling: this run's generator raises for a batch of 5 (fail_batch), inside the plugin's forward
    sampled = tmp_path / "sampled"
    assert cli("train", "faulty", "--data", "ring8", "--steps", "2", "--batch", "16", "--set", "fail_in=sample",
               "--set", "train.sample_grid=16", "--out", sampled).exit_code == 0
    last = sampled / "checkpoints" / "last.safetensors"
    result = cli("sample", last, "-n", "5", "--out", tmp_path / "points.csv")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "plugin gancli-plugin-faulty 1.2.3 (family 'faulty') failed while generating samples" in result.stderr
    assert not (tmp_path / "points.csv").exists()
    assert cli("sample", last, "-n", "4", "--out", tmp_path / "points.csv").exit_code == 0


def test_debug_flag_shows_the_plugins_traceback(with_fake_plugin, tmp_path, cli):
    result = cli("--debug", "train", "faulty", "--data", "ring8", "--steps", "2", "--batch", "16",
                 "--set", "fail_in=build", "--out", tmp_path / "run")
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "deliberate failure in build" in repr(result.exception.__cause__)
