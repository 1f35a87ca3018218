"""Checkpoints: plain state dicts + metadata, written atomically and durably, loaded with
weights_only, every refusal one line that says what is wrong."""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

FORMAT = 4  # bump with a migration below whenever saved keys are renamed or removed
TEMP_SUFFIX = ".tmp"


def _drop_unused_config_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Format 1 -> 2: ``run.log_interval`` and ``env.obs_mode`` were validated, never read."""
    config = data.get("config")
    if isinstance(config, dict):
        for section, key in (("run", "log_interval"), ("env", "obs_mode")):
            if isinstance(config.get(section), dict):
                config[section].pop(key, None)
    return data


def _action_section(data: dict[str, Any]) -> dict[str, Any]:
    """Format 2 -> 3: the action bounds moved from ``algo:`` (SDPG's) to the shared ``action:``."""
    config = data.get("config")
    if isinstance(config, dict) and isinstance(config.get("algo"), dict):
        moved = {k: config["algo"].pop(k) for k in ACTION_KEYS if k in config["algo"]}
        config["action"] = {**moved, **config.get("action", {})}
    return data


def _sdpg_section(data: dict[str, Any]) -> dict[str, Any]:
    """Format 3 -> 4: SDPG's section ``algo:`` is named ``sdpg:``."""
    config = data.get("config")
    if isinstance(config, dict) and "algo" in config:
        config["sdpg"] = config.pop("algo")
    return data


ACTION_KEYS = ("mu_bound", "log_sigma_min", "log_sigma_max")
# MIGRATIONS[k] turns a format-k checkpoint into format k + 1; load() applies them in turn.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _drop_unused_config_keys,
    2: _action_section,
    3: _sdpg_section,
}


def migrate(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Bring an older checkpoint to FORMAT; a newer or unknown format is refused."""
    version = data.get("format")
    if not isinstance(version, int) or not 1 <= version <= FORMAT:
        raise ValueError(
            f"{path}: not an sdpg checkpoint of a known format (got {version!r}, this version "
            f"reads 1 to {FORMAT})"
        )
    for step in range(version, FORMAT):
        data = MIGRATIONS[step](data)
    return {**data, "format": FORMAT}


def save(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` to ``path`` atomically and durably: a temp file in the same directory,
    fsynced, renamed over ``path``, then the directory fsynced (a power loss keeps the old or
    the new file, never a truncated one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({"format": FORMAT, **payload}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_directory(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def fsync_directory(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temp files a killed ``save`` left in ``folder``; returns them."""
    stray = sorted(Path(folder).glob(f"*{TEMP_SUFFIX}"))
    for path in stray:
        path.unlink()
    return stray


def load(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a one-line error if it is not ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:  # nothing in the file ran: weights_only refused it
        if "GLOBAL" in str(err):
            raise ValueError(
                f"{path}: refused: it names Python objects beyond tensors and plain data (not "
                "written by sdpg; loading it could run code)"
            ) from err
        raise ValueError(f"{path}: not a readable checkpoint (not a torch file)") from err
    except Exception as err:  # torch raises several types for corrupt files
        kind = "empty" if path.stat().st_size == 0 else "corrupt or truncated"
        raise ValueError(f"{path}: not a readable checkpoint ({kind})") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an sdpg checkpoint (not a dictionary of parts)")
    return migrate(data, path)


POLICY_KEYS = ("config", "spec", "actor", "normalizer", "iteration", "env_steps")
TRAINING_KEYS = ("config", "spec", "actor", "normalizer", "iteration", "env", "episodes")


def require_keys(data: dict[str, Any], keys: tuple[str, ...], path: str | Path, what: str) -> None:
    """ValueError naming the missing keys unless ``data`` has all of ``keys``."""
    missing = [key for key in keys if key not in data]
    if missing:
        raise ValueError(f"{path}: not {what}: missing {', '.join(missing)}")


def load_training(path: str | Path, device: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint that can resume training (a deploy-only export cannot)."""
    data = load(path, device)
    if "env" not in data and "actor" in data:
        raise ValueError(
            f"{path}: a deploy-only policy file (sdpg export) cannot resume training; resume "
            "from the run directory, whose checkpoints/latest.pt holds the whole state"
        )
    require_keys(data, TRAINING_KEYS, path, "a training checkpoint")
    return data


def export_policy(src: str | Path, dst: str | Path) -> Path:
    """Write the deployable part of a training checkpoint (weights, normaliser, metadata)."""
    from sdpg_core.policy import Policy

    src, dst = Path(src), Path(dst)
    if dst.is_dir():
        raise ValueError(f"--out {dst} is a directory; name the policy file, e.g. {dst}/policy.pt")
    if dst.exists() and dst.resolve() == src.resolve():
        raise ValueError(f"--out {dst} is the checkpoint itself; choose another file")
    data = load(src)
    Policy.from_checkpoint(data, src)  # validates spec, shapes and weights before writing
    return save({k: data[k] for k in POLICY_KEYS if k in data}, dst)
