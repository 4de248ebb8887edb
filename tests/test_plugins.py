"""Plugin discovery: installed, broken and incompatible plugins, and the conformance kit."""
from __future__ import annotations

from pathlib import Path

import pytest

from gancli import plugins
from gancli.errors import GancliError

FAKE_MODULE = '''
from gancli.plugins import Family

FAMILY = Family(
    name="fake",
    summary="a third-party family reusing DCGAN's networks",
    config="gancli_plugin_dcgan.config:DCGANConfig",
    build="gancli_plugin_dcgan.model:build",
    check_settings={"ngf": 4, "ndf": 4, "z_dim": 8},
    check_resolution=16,
)
OLD = Family(name="old", summary="built for API 0", config="x:y", build="x:z", api_version="0.9")
NOT_A_FAMILY = object()
'''


def install_fake_distribution(root: Path, name: str, version: str, entry_points: dict[str, str]) -> None:
    """A dist-info folder on sys.path is all importlib.metadata needs to see an installed plugin."""
    dist = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[gancli.plugins]\n{lines}\n")


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    (tmp_path / "fake_gancli_plugin.py").write_text(FAKE_MODULE)
    install_fake_distribution(
        tmp_path,
        "gancli-plugin-fake",
        "0.3.0",
        {
            "fake": "fake_gancli_plugin:FAMILY",
            "broken": "no_such_module_for_gancli:FAMILY",
            "old": "fake_gancli_plugin:OLD",
            "weird": "fake_gancli_plugin:NOT_A_FAMILY",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.refresh()
    yield
    plugins.refresh()


def test_builtin_dcgan_is_discovered():
    record = plugins.discover()["dcgan"]
    assert record.ok and record.distribution == "gancli-plugin-dcgan" and record.builtin


def test_fake_broken_and_incompatible_plugins(fake_plugins):
    records = plugins.discover()
    assert records["fake"].ok and records["fake"].distribution == "gancli-plugin-fake"
    assert records["fake"].version == "0.3.0" and not records["fake"].builtin
    assert "import failed" in records["broken"].error
    assert "incompatible" in records["old"].error
    assert "not a gancli.plugins.Family" in records["weird"].error
    with pytest.raises(GancliError, match="cannot be used"):
        plugins.get_family("broken")


def test_broken_plugin_is_a_warning_row_not_a_crash(fake_plugins, cli):
    result = cli("plugins", "list")
    assert result.exit_code == 0
    assert "fake" in result.output and "warning" in result.output
    assert cli("plugins", "info", "dcgan").exit_code == 0
    assert cli("plugins", "list", "--json").exit_code == 0


def test_third_party_family_trains_through_the_kit(fake_plugins):
    from gancli.testing import check_family

    report = check_family("fake", steps=2)
    assert any("checkpoint reload" in p for p in report.passed)


def test_environment_limits_plugins(fake_plugins, monkeypatch):
    monkeypatch.setenv("GANCLI_PLUGINS", "dcgan")
    plugins.refresh()
    assert set(plugins.discover()) == {"dcgan"}
    monkeypatch.delenv("GANCLI_PLUGINS")
    monkeypatch.setenv("GANCLI_DISABLE_PLUGINS", "1")
    plugins.refresh()
    assert "fake" not in plugins.discover() and "dcgan" in plugins.discover()


def test_plugins_check_command(cli):
    result = cli("plugins", "check", "dcgan")
    assert result.exit_code == 0, result.output
    assert "checks passed" in result.stdout


@pytest.mark.parametrize("columns", [80, 60])
def test_plugins_list_is_one_line_per_family_within_the_terminal(cli, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    result = cli("plugins", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    families = plugins.discover()
    assert len(lines) == 1 + len(families)  # a header and one line each
    assert all(len(line) <= columns for line in lines), max(lines, key=len)
    assert [line.split()[0] for line in lines[1:]] == list(families)
    dcgan = next(line for line in lines if line.startswith("dcgan "))
    assert "Deep convolutional GAN" in dcgan if columns >= 80 else dcgan.endswith("…")
