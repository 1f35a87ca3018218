"""One lookup for data files: $SDPG_CONFIG_DIR, the source tree, then the installed share."""

import sys

import pytest

from sdpg_core import share


def test_source_tree_first_then_the_installed_share(monkeypatch, tmp_path):
    monkeypatch.delenv("SDPG_CONFIG_DIR", raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert share.share_dirs("urdf") == [
        share.SOURCE_ROOT / "urdf",
        tmp_path / "share" / "sdpg_ros" / "urdf",
    ]
    assert (
        share.find_share_file("urdf", "reacher.urdf") == share.SOURCE_ROOT / "urdf" / "reacher.urdf"
    )


def test_an_installed_package_finds_its_files(monkeypatch, tmp_path):
    installed = tmp_path / "share" / "sdpg_ros" / "urdf"
    installed.mkdir(parents=True)
    (installed / "arm.urdf").write_text("<robot/>")
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    monkeypatch.setattr(share, "SOURCE_ROOT", tmp_path / "no_checkout")
    assert share.find_share_file("urdf", "arm.urdf") == installed / "arm.urdf"
    assert share.find_share_file("urdf", "missing.urdf") is None


def test_config_dir_override_comes_first(monkeypatch, tmp_path):
    monkeypatch.setenv("SDPG_CONFIG_DIR", str(tmp_path))
    assert share.share_dirs("config")[0] == tmp_path
    assert tmp_path not in share.share_dirs("urdf")


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown share kind"):
        share.share_dirs("models")
