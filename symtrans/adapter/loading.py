"""``load_model``: an embedded name, a local Hugging Face directory, or a hub name."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidArgumentError, ModelNotFoundError, UnsafeCheckpointError
from ..models import EMBEDDED_MODELS

_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def dtype_name(dtype: torch.dtype) -> str:
    """``"float64"`` for ``torch.float64``, and so on (``str(dtype)`` for others)."""
    for name, known in _DTYPES.items():
        if known == dtype:
            return name
    return str(dtype)


def parse_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in _DTYPES:
        return _DTYPES[dtype]
    raise InvalidArgumentError(
        f"dtype must be one of {', '.join(_DTYPES)} or a torch.dtype, got {dtype!r}"
    )


def _boot(source: str, dtype: torch.dtype, device: str) -> Any:
    # Imported here: TransformerLens is heavy and only loading needs its entry point.
    from transformer_lens.model_bridge import TransformerBridge

    return TransformerBridge.boot_transformers(source, dtype=dtype, device=device)


def _require_safetensors(path: Path, allow_pickle: bool) -> None:
    """A folder whose weights are only pickle files (``*.bin``, ``*.pt``) is refused unless
    the user trusts it: unpickling can run arbitrary code."""
    if allow_pickle or any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
    if pickles:
        raise UnsafeCheckpointError(
            f"{str(path)!r} holds only pickle checkpoints ({', '.join(pickles)}), which can run "
            "code when loaded; convert them to safetensors (model.save_pretrained(dir)) or pass "
            "allow_pickle=True (--allow-pickle) if you trust the source"
        )


def check_device(device: object) -> str:
    """``device`` as torch names it, or :class:`InvalidArgumentError` if torch does not know
    it or this machine does not have it."""
    try:
        parsed = torch.device(device)  # type: ignore[call-overload]
    except (RuntimeError, TypeError):
        raise InvalidArgumentError(
            f"device {device!r} is not a device torch knows; use 'cpu', 'cuda', 'cuda:1' or 'mps'"
        ) from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }.get(parsed.type, True)
    if not available:
        raise InvalidArgumentError(
            f"device {device!r}: {parsed.type} is not available on this machine (torch "
            f"{torch.__version__}); use 'cpu'"
        )
    return str(parsed)


def _quiet(load: Callable[..., Any]) -> Callable[..., Any]:
    """Load without Hugging Face's "Loading weights" progress bar, which a notebook shows as a
    red block on stderr (with a TqdmWarning where ipywidgets is missing)."""

    @functools.wraps(load)
    def quietly(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            # transformers imports tqdm.autonotebook, which warns without ipywidgets
            warnings.filterwarnings("ignore", message="IProgress not found")
            from transformers.utils import logging as hf_logging

            shown = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()
            try:
                return load(*args, **kwargs)
            finally:
                if shown:
                    hf_logging.enable_progress_bar()

    return quietly


@_quiet
def load_model(
    name_or_path: str | os.PathLike[str],
    dtype: torch.dtype | str = torch.float64,
    device: str = "cpu",
    allow_pickle: bool = False,
) -> Any:
    """Load a model as a TransformerLens ``TransformerBridge``.

    ``name_or_path`` is an embedded model name (``symtrans models`` lists them), a local
    directory written by ``save_pretrained`` (model + tokenizer), or a hub name where a hub
    is reachable. Weights load from safetensors. ``dtype`` defaults to float64, in which the
    identity holds to about 1e-13. ``device``: where the forward pass runs (``"cuda"``); symtrans
    evaluates the terms on the CPU in float64 either way.
    """
    torch_dtype = parse_dtype(dtype)
    device = check_device(device)
    text = os.fspath(name_or_path)
    if text in EMBEDDED_MODELS:
        source = str(EMBEDDED_MODELS[text].path)
        if not Path(source, "model.safetensors").is_file():
            raise ModelNotFoundError(
                f"the embedded model {text!r} is missing its weights at {source}; "
                "reinstall symtrans or run `python scripts/train_tiny_models.py`"
            )
        model = _boot(source, torch_dtype, device)
        model.cfg.model_name = text  # reports name the embedded model, not its folder
        return model
    path = Path(text).expanduser()
    for name, embedded in EMBEDDED_MODELS.items():  # an embedded model given by its folder
        if path.is_dir() and path.resolve() == embedded.path.resolve():
            return load_model(name, dtype=torch_dtype, device=device)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{text!r} is a directory but holds no config.json; give a directory written "
                "by Hugging Face's save_pretrained (model and tokenizer)"
            )
        _require_safetensors(path, allow_pickle)
        return _boot(str(path), torch_dtype, device)
    if path.exists() or text.startswith((".", "/", "~")):
        raise ModelNotFoundError(
            f"{text!r} is not a model directory; give an embedded name "
            f"({', '.join(EMBEDDED_MODELS)}) or a directory written by save_pretrained"
        )
    try:
        return _boot(text, torch_dtype, device)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"could not load {text!r}: it is not an embedded model "
            f"({', '.join(EMBEDDED_MODELS)}), not a local directory, and the hub did not "
            f"provide it ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
