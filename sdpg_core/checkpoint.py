"""Checkpoints: plain state dicts + metadata, written atomically and durably, loaded with
weights_only, every refusal one line that says what is wrong.

``read_header`` reads a checkpoint's plain data (config, spec, counters) without torch, for the
launch files and other processes that only need to know what a checkpoint was trained for;
torch itself is imported on first use."""

from __future__ import annotations

import collections
import os
import pickle
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    import torch

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
    import torch

    path = existing(path)
    try:
        data = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:  # nothing in the file ran: weights_only refused it
        if "GLOBAL" in str(err):
            raise refused(path) from err
        raise not_torch(path) from err
    except Exception as err:  # torch raises several types for corrupt files
        raise unreadable(path) from err
    return checked(data, path)


def existing(path: str | Path) -> Path:
    """``path`` as a Path; FileNotFoundError if it is not a file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path


def refused(path: Path) -> ValueError:
    """The error for a file naming Python objects a checkpoint never holds."""
    return ValueError(
        f"{path}: refused: it names Python objects beyond tensors and plain data (not written "
        "by sdpg; loading it could run code)"
    )


def not_torch(path: Path) -> ValueError:
    """The error for a file that is not a torch checkpoint at all."""
    return ValueError(f"{path}: not a readable checkpoint (not a torch file)")


def unreadable(path: Path) -> ValueError:
    """The error for an empty, corrupt or truncated file."""
    kind = "empty" if path.stat().st_size == 0 else "corrupt or truncated"
    return ValueError(f"{path}: not a readable checkpoint ({kind})")


def checked(data: Any, path: Path) -> dict[str, Any]:
    """Loaded ``data`` brought to FORMAT, unless it is not a dictionary of parts."""
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not an sdpg checkpoint (not a dictionary of parts)")
    return migrate(data, path)


def _tensor_stub(*_args: Any) -> None:
    """Stands in for torch's tensor rebuild functions: a tensor reads as None."""


class _Storage:
    """Stands in for a torch storage type (named in each tensor's persistent id)."""


ZIP_MAGIC = b"PK\x03\x04"


class _Refused(pickle.UnpicklingError):
    """The pickle names a global that a checkpoint never holds."""


STORAGE_TYPES = (
    "Float",
    "Double",
    "Half",
    "BFloat16",
    "Long",
    "Int",
    "Short",
    "Char",
    "Byte",
    "Bool",
)
HEADER_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _tensor_stub,
    ("torch._utils", "_rebuild_parameter"): _tensor_stub,
    **{("torch", f"{kind}Storage"): _Storage for kind in STORAGE_TYPES},
}


class _HeaderUnpickler(pickle.Unpickler):
    """Reads a torch checkpoint's ``data.pkl`` allowing only plain data, OrderedDict and the
    tensor rebuild globals (stubbed): nothing in the file can run code, no tensor is built."""

    def find_class(self, module: str, name: str) -> Any:
        """The allowed globals; anything else is refused."""
        try:
            return HEADER_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> None:
        """Tensor storages are not read."""


def read_header(path: str | Path) -> dict[str, Any]:
    """A checkpoint's plain data (config, spec, counters), migrated to FORMAT as ``load`` does,
    without torch: every tensor reads as None. The same one-line errors as ``load``."""
    path = existing(path)
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:  # a torch file is a zip: a damaged one starts like one
        with path.open("rb") as handle:
            damaged = handle.read(4) in (b"", ZIP_MAGIC)
        raise (unreadable(path) if damaged else not_torch(path)) from err
    with archive:
        pickles = [name for name in archive.namelist() if name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise not_torch(path)
        try:
            data = _HeaderUnpickler(archive.open(pickles[0])).load()
        except _Refused as err:
            raise refused(path) from err
        except Exception as err:  # a damaged archive or pickle raises several types
            raise unreadable(path) from err
    return checked(data, path)


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
