"""Checkpoint formats: older files keep loading through migrations, newer ones are refused."""

from pathlib import Path

import pytest
import torch

from sdpg_core import checkpoint
from sdpg_core.policy import Policy

OLD = Path(__file__).resolve().parent / "data" / "reacher_pixels.pt"  # format 1, committed


def test_a_format_1_checkpoint_loads_through_the_migrations():
    raw = torch.load(OLD, weights_only=True)
    assert raw["format"] == 1 and "log_interval" in raw["config"]["run"]
    data = checkpoint.load(OLD)
    assert data["format"] == checkpoint.FORMAT
    assert "log_interval" not in data["config"]["run"]
    assert "obs_mode" not in data["config"]["env"]
    assert data["config"]["action"] == {
        "mu_bound": 2.0,
        "log_sigma_min": -5.0,
        "log_sigma_max": 2.0,
    }
    assert "algo" not in data["config"] and "mu_bound" not in data["config"]["sdpg"]
    assert Policy.load(OLD).spec.task == "reacher"


def test_every_older_format_has_a_migration():
    assert sorted(checkpoint.MIGRATIONS) == list(range(1, checkpoint.FORMAT))


@pytest.mark.parametrize("version", [0, checkpoint.FORMAT + 1, "2", None])
def test_unknown_formats_are_refused(tmp_path, version):
    path = tmp_path / "x.pt"
    torch.save({"format": version, "actor": {}}, path)
    with pytest.raises(ValueError, match="not an sdpg checkpoint of a known format"):
        checkpoint.load(path)


def test_saved_checkpoints_carry_the_current_format(tmp_path):
    path = checkpoint.save({"actor": {}}, tmp_path / "c.pt")
    assert torch.load(path, weights_only=True)["format"] == checkpoint.FORMAT
