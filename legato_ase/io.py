"""Model files: one torch.save'd dictionary of plain data, loadable with weights_only=True.

Layout (format_version 1)::

    {"format": "legato-ase model", "format_version": 1, "config": {...}, "species": [...],
     "r_max": float, "dtype": "float32", "metadata": {...}, "state_dict": {...},
     "checksum": "sha256:..."}

The checksum covers everything else in the file and is verified on load, so a flipped bit is
reported instead of giving absurd energies; files written before it existed load without it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig, resolve_config
from .files import atomic_output
from .model import LegatoPotential

FORMAT = "legato-ase model"
FORMAT_VERSION = 1
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
BUNDLED_DIR = Path(__file__).parent / "models"


def build_model(
    preset_or_config: str | ModelConfig | Mapping[str, Any] = "default",
    species: list[str] | tuple[str, ...] = ("H", "N"),
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> LegatoPotential:
    """An untrained Allegro potential.

    Args:
        preset_or_config: ``"default"``, ``"legato-paper"``, a mapping of settings (may name
            a ``preset`` to start from) or a :class:`ModelConfig`.
        species: chemical symbols, in the order the model indexes them.
        seed: seed of the weight initialisation (the same for float32 and float64).
        dtype: torch.float32 or torch.float64 for the network.
        device: where the model lives.
    """
    if dtype not in _DTYPES.values():
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    cfg = resolve_config(preset_or_config)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LegatoPotential(cfg, list(species))
    finally:
        torch.random.set_rng_state(generator_state)
    return model.to(device=device, dtype=dtype)


def save_model(
    model: LegatoPotential, path: str | os.PathLike, metadata: Mapping | None = None
) -> None:
    """Write a model file atomically (a crash never leaves a half-written file)."""
    dtype_name = {v: k for k, v in _DTYPES.items()}[model.dtype]
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_dict(),
        "species": list(model.species),
        "r_max": model.r_max,
        "dtype": dtype_name,
        "metadata": _plain(dict(metadata or {})),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    payload["checksum"] = content_checksum(payload)
    atomic_torch_save(payload, path)


_CHECKED_KEYS = ("format", "format_version", "config", "species", "r_max", "dtype", "metadata")


def content_checksum(payload: Mapping[str, Any]) -> str:
    """SHA-256 of a model file's contents: its plain-data fields and every weight's bytes."""
    digest = hashlib.sha256()
    header = {key: payload.get(key) for key in _CHECKED_KEYS}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name, tensor in sorted(payload["state_dict"].items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"\n{name} {tensor.dtype} {list(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def _verify_checksum(payload: Mapping[str, Any], path: Path) -> None:
    expected = payload.get("checksum")
    if expected is None:  # written before checksums existed
        return
    state = payload.get("state_dict")
    readable = isinstance(state, Mapping) and all(
        isinstance(v, torch.Tensor) for v in state.values()
    )
    if not readable or content_checksum(payload) != expected:
        raise ValueError(
            f"{path} is damaged: its contents do not match the checksum written with them (a "
            "bit changed on disk or in transfer, or the file was edited). Use a fresh copy of "
            "the file; if you changed it on purpose, write it again with legato_ase.save_model."
        )


def atomic_torch_save(payload: Any, path: str | os.PathLike) -> None:
    """torch.save to a temporary file in the same folder, then rename over the target."""
    with atomic_output(path) as handle:
        torch.save(payload, handle)


def _plain(value: Any) -> Any:
    """Metadata restricted to types that weights_only loading accepts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def resolve_model_path(model: str | os.PathLike) -> Path:
    """A path as given, or the file of a bundled model by name (e.g. ``"nh3-legato"``)."""
    path = Path(model)
    if path.exists():
        return path
    bundled = BUNDLED_DIR / f"{model}.pt"
    if isinstance(model, str) and bundled.exists():
        return bundled
    names = sorted(p.stem for p in BUNDLED_DIR.glob("*.pt"))
    raise FileNotFoundError(
        f"no model file '{model}' and no bundled model of that name; bundled models: {names}"
    )


def read_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check the dictionary of a model file, with clear errors for bad files."""
    path = resolve_model_path(path)
    if is_torchscript_file(path):
        raise ValueError(
            f"{path} is a TorchScript (deployed nequip/allegro) model, not a legato-ase model "
            "file. TorchScript files run code when loaded: pass allow_torchscript=True to "
            "LegatoCalculator if you trust the file."
        )
    payload = _torch_load_plain(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a legato-ase model file (no '{FORMAT}' header).")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path} has model format version {version}, newer than this legato-ase reads "
            f"({FORMAT_VERSION}); upgrade legato-ase (pip install -U legato-ase)."
        )
    _verify_checksum(payload, path)
    return payload


def _torch_load_plain(path: Path) -> Any:
    """torch.load(weights_only=True) with our own errors for files that are not model files."""
    unreadable = f"{path} is not a readable legato-ase model file"
    if path.stat().st_size == 0:
        raise ValueError(f"{unreadable}: it is empty (0 bytes; an interrupted copy?).")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{unreadable}: it is not a torch.save archive (truncated, corrupt or another format)."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for bad bytes; all mean "unreadable"
        if isinstance(err, (MemoryError, KeyboardInterrupt)):
            raise
        # torch's own message suggests weights_only=False, which would run code from the file.
        raise ValueError(
            f"{unreadable}: the archive is corrupt, truncated, or holds more than plain data "
            f"({type(err).__name__}). Use a fresh copy of the file."
        ) from None


def is_torchscript_file(path: str | os.PathLike) -> bool:
    """True for a TorchScript archive (a deployed nequip/allegro model)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(
            name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist()
        )


def load_model(
    path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> LegatoPotential:
    """Load a model file (or a bundled model by name) without running any code from it."""
    payload = read_model_file(path)
    cfg = ModelConfig.from_dict(payload["config"])
    model = LegatoPotential(cfg, payload["species"])
    model = model.to(dtype=_DTYPES[payload["dtype"]])
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as err:
        raise ValueError(
            f"the weights in {path} do not fit the network its config describes (a file from "
            "an incompatible development version of legato-ase, or edited by hand): "
            f"{str(err).splitlines()[0]}"
        ) from None
    model.metadata = payload.get("metadata", {})
    if dtype is not None:
        model = model.to(dtype=dtype)
    return model.to(device).eval()


def load_potential(
    model: Any,
    device: str | torch.device = "cpu",
    allow_torchscript: bool = False,
    dtype: str | torch.dtype | None = None,
) -> Any:
    """A ready model from a file, a bundled model name or a model object, on ``device``.

    Args:
        model: a model file path, a bundled model name (``"nh3-legato"``) or a model object
            (anything with ``evaluate``, e.g. from :func:`build_model`/:func:`load_model`).
        device: where the model runs.
        allow_torchscript: also accept deployed nequip-0.5 TorchScript files (these run code
            when loaded, so only for files you trust).
        dtype: ``"float32"``/``"float64"`` (or the torch dtype) to run the network in
            instead of the model's own precision; None keeps it.
    """
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got '{dtype}'")
        dtype = _DTYPES[dtype]
    if isinstance(model, torch.nn.Module) and hasattr(model, "evaluate"):
        if dtype is not None and dtype != getattr(model, "dtype", dtype):
            model = copy.deepcopy(model)  # the caller's model keeps its own precision
        return model.to(device=device, dtype=dtype) if dtype else model.to(device)
    if isinstance(model, (str, os.PathLike)):
        path = resolve_model_path(model)
        if not is_torchscript_file(path):
            return load_model(path, device=device, dtype=dtype)
        if not allow_torchscript:
            raise ValueError(
                f"{path} is a TorchScript (deployed nequip/allegro) model: loading it runs "
                "code from the file. Pass allow_torchscript=True if you trust it."
            )
        if dtype is not None:
            raise ValueError("dtype cannot be changed for a TorchScript model")
        from .compat import TorchScriptPotential

        return TorchScriptPotential(path, device=str(device))
    raise TypeError(
        "model must be a path to a model file, the name of a bundled model, or a model "
        f"from legato_ase.build_model/load_model; got {type(model).__name__}"
    )
