"""``load_model``: an embedded name, a local Hugging Face directory, or a hub name."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import (
    InvalidArgumentError,
    ModelNotFoundError,
    UnsafeCheckpointError,
    UnsupportedModelError,
)
from ..models import EMBEDDED_MODELS
from .common import DTYPES


def parse_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in DTYPES:
        return DTYPES[dtype]
    raise InvalidArgumentError(
        f"dtype must be one of {', '.join(DTYPES)} or a torch.dtype, got {dtype!r}"
    )


def _config(source: str) -> Any:
    """The Hugging Face configuration of ``source`` (OSError/ValueError if there is none)."""
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(source)


LIBRARIES = ("transformer_lens", "nnsight")


def _boot(
    source: str,
    dtype: torch.dtype,
    device: str,
    config: Any | None = None,
    library: str = "transformer_lens",
    device_map: str | dict[str, Any] | None = None,
    offload_folder: str | None = None,
) -> Any:
    """A ``TransformerBridge`` (or an nnsight ``LanguageModel``) of ``source``; with
    ``device_map`` accelerate places (shards, offloads) the weights, not ``device``.

    For the bridge, the Hugging Face module is loaded first and run on a short probe; the
    bridge then wraps that same module (``hf_model=``: no second copy of the weights) and
    must reproduce its logits (:mod:`.fidelity`). Configurations the bridge is known to
    compute differently are refused before any weight is loaded (:mod:`.families`). nnsight
    runs the Hugging Face module itself: there is nothing to probe."""
    config = _config(source) if config is None else config
    architecture = str((getattr(config, "architectures", None) or [type(config).__name__])[0])
    from .families import family_of, refuse_configuration

    refuse_configuration(architecture, config)
    placement: dict[str, Any] = (
        {"device": device}
        if device_map is None
        else {"device_map": device_map, "offload_folder": offload_folder}
    )
    if library == "nnsight":
        from .nnsight import require_nnsight

        nnsight = require_nnsight()
        if device_map is None:
            placement = {"device_map": device}
        return nnsight.LanguageModel(source, dispatch=True, dtype=dtype, **placement)
    from transformers import AutoModelForCausalLM

    from .fidelity import RECORDS, measure, probe_tokens, reference_logits, refuse_unfaithful

    family = family_of(architecture)
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": "eager"}
    if family is not None and family.moe:
        kwargs["experts_implementation"] = "eager"  # the default kernel refuses float64
    if device_map is not None:  # accelerate places the module; the bridge wraps it there
        kwargs.update(device_map=device_map, offload_folder=offload_folder)
    hf = AutoModelForCausalLM.from_pretrained(source, **kwargs).eval()
    if device_map is None and device != "cpu":
        hf = hf.to(device)
    ids = probe_tokens(int(config.vocab_size), getattr(config, "bos_token_id", None))
    references = reference_logits(hf, ids)
    try:
        # Imported here: TransformerLens is heavy and only loading needs its entry point.
        from transformer_lens.model_bridge import TransformerBridge

        where = {} if device_map is not None else {"device": device}
        bridge = TransformerBridge.boot_transformers(source, hf_model=hf, dtype=dtype, **where)
        with torch.no_grad():
            wrapped = bridge(ids.to(_input_device(hf, device)))[0].detach()
    except Exception as exc:  # TransformerLens's own errors, some without a message
        message = str(exc).splitlines()[0][:300] if str(exc) else "no message"
        raise UnsupportedModelError(
            f"{architecture}: TransformerLens could not wrap this model ({type(exc).__name__}: "
            f"{message}); symtrans needs TransformerLens's TransformerBridge to run it"
        ) from None
    fidelity = measure(
        architecture, dtype, wrapped.cpu(), {k: v.cpu() for k, v in references.items()}
    )
    refuse_unfaithful(fidelity, config)
    RECORDS[bridge] = fidelity
    return bridge


def _input_device(hf: Any, device: str) -> Any:
    """Where the model's input ids go (its embedding's device under a device map)."""
    try:
        return hf.get_input_embeddings().weight.device
    except AttributeError:
        return device


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
    library: str = "transformer_lens",
    device_map: str | dict[str, Any] | None = None,
    offload_folder: str | os.PathLike[str] | None = None,
) -> Any:
    """Load a model as a TransformerLens ``TransformerBridge``, checked against the model's
    own Hugging Face forward pass on a short probe (:mod:`symtrans.adapter.fidelity`).

    ``name_or_path`` is an embedded model name (``symtrans models`` lists them), a local
    directory written by ``save_pretrained`` (model + tokenizer), or a hub name where a hub
    is reachable. Weights load from safetensors. ``dtype`` defaults to float64, in which the
    identity holds to about 1e-13. ``device``: where the forward pass runs (``"cuda"``); symtrans
    evaluates the terms on the CPU in float64 either way. A configuration TransformerLens
    computes differently from Hugging Face raises :class:`UnsupportedModelError`.
    ``library="nnsight"`` loads an nnsight ``LanguageModel`` instead (the ``symtrans[nnsight]``
    extra). ``device_map`` (``"auto"``, or a dict of module -> device, ``"cpu"`` or ``"disk"``)
    shards or offloads the weights with accelerate (``offload_folder`` for ``"disk"``);
    symtrans gathers each term's numbers to the CPU.
    """
    torch_dtype = parse_dtype(dtype)
    device = check_device(device)
    if library not in LIBRARIES:
        raise InvalidArgumentError(
            f"library must be one of {', '.join(LIBRARIES)}, got {library!r}"
        )
    placement: dict[str, Any] = {
        "library": library,
        "device_map": device_map,
        "offload_folder": None if offload_folder is None else os.fspath(offload_folder),
    }
    text = os.fspath(name_or_path)
    if text in EMBEDDED_MODELS:
        source = str(EMBEDDED_MODELS[text].path)
        if not Path(source, "model.safetensors").is_file():
            raise ModelNotFoundError(
                f"the embedded model {text!r} is missing its weights at {source}; "
                "reinstall symtrans or run `python scripts/train_tiny_models.py`"
            )
        model = _boot(source, torch_dtype, device, **placement)
        if library == "transformer_lens":
            model.cfg.model_name = text  # reports name the embedded model, not its folder
        return model
    path = Path(text).expanduser()
    for name, embedded in EMBEDDED_MODELS.items():  # an embedded model given by its folder
        if path.is_dir() and path.resolve() == embedded.path.resolve():
            return load_model(name, dtype=torch_dtype, device=device, **placement)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{text!r} is a directory but holds no config.json; give a directory written "
                "by Hugging Face's save_pretrained (model and tokenizer)"
            )
        _require_safetensors(path, allow_pickle)
        return _boot(str(path), torch_dtype, device, **placement)
    if path.exists() or text.startswith((".", "/", "~")):
        raise ModelNotFoundError(
            f"{text!r} is not a model directory; give an embedded name "
            f"({', '.join(EMBEDDED_MODELS)}) or a directory written by save_pretrained"
        )
    try:
        config = _config(text)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(
            f"could not load {text!r}: it is not an embedded model "
            f"({', '.join(EMBEDDED_MODELS)}), not a local directory, and the hub did not "
            f"provide it ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    return _boot(text, torch_dtype, device, config, **placement)
