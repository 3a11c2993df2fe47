"""Device choice for parallel runs: one GPU per rank, picked from the rank within the node."""

from __future__ import annotations

import warnings

import torch


def select_device(device: str, local_rank: int, n_gpus: int | None = None) -> str:
    """The torch device for this rank.

    Args:
        device: ``"cpu"``, ``"cuda"`` (GPU ``local_rank mod n_gpus``, CPU when none is
            visible), ``"auto"`` (the same, silently) or an explicit ``"cuda:N"``.
        local_rank: rank of this process within its node.
        n_gpus: visible GPUs (default: ``torch.cuda.device_count()``).

    Ranks on a node share its GPUs round-robin; with CUDA_VISIBLE_DEVICES set per rank
    by the launcher, every rank sees one GPU and picks it.
    """
    if device not in ("auto", "cuda"):
        return str(torch.device(device))
    if n_gpus is None:
        n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n_gpus > 0:
        return f"cuda:{local_rank % n_gpus}"
    if device == "cuda":
        warnings.warn("device='cuda' but no GPU is visible: running on the CPU", stacklevel=2)
    return "cpu"


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, with a plain error when it is unknown or not available."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device '{device}'; use 'cpu', 'cuda' or 'cuda:N'.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "a CPU-only build" if torch.version.cuda is None else "not seeing a GPU"
            raise ValueError(
                f"device '{device}' asked for, but CUDA is not available: this torch "
                f"({torch.__version__}) is {why}. Use device 'cpu', or install a CUDA build of "
                "torch on a machine with a GPU."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device '{device}': only {torch.cuda.device_count()} GPU(s) are visible."
            )
    return dev
