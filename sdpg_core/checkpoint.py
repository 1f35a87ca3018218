"""Checkpoints: plain state dicts + metadata, written atomically, loadable with weights_only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = 1


def save(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` to ``path`` atomically (temp file in the same dir, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save({"format": FORMAT, **payload}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a clear error if it is not ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        raise ValueError(f"{path}: not a readable checkpoint ({err})") from err
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not an sdpg checkpoint (format {FORMAT} expected)")
    return data


POLICY_KEYS = ("config", "spec", "actor", "normalizer", "iteration", "env_steps")


def export_policy(src: str | Path, dst: str | Path) -> Path:
    """Write the deployable part of a training checkpoint (weights, normaliser, metadata)."""
    data = load(src)
    return save({k: data[k] for k in POLICY_KEYS if k in data}, dst)
