"""Adapter for nnsight's ``LanguageModel`` / ``TransformersModel`` (nnsight 0.5 and later):
the Hugging Face module it wraps runs as it is.

Locally, :meth:`NNsightAdapter.run` calls that module with torch hooks on the modules a trace
would read (the same numbers as ``with model.trace(ids):``, without nnsight's tracing around
every call: a dataset runs at the model's own speed) and hands back the destination rows of
the requested hooks, like the TransformerLens adapters; the splits of
:mod:`symtrans.trace.splits` evaluate them. Remotely (``remote=True``: NDIF, or
``remote="local"``: nnsight's serverless dry run of the same request), the weights are on the
server, not here, so :meth:`NNsightAdapter.readout` computes the read-out projections inside
the trace (the same contractions as
:class:`symtrans.trace.splits.Reading`, written in plain torch because the block runs where
symtrans is not installed): only ``[batch, terms]``-sized numbers come back.

Nothing here imports ``nnsight`` at module level: models are recognised by class name, so
symtrans imports cleanly without the ``symtrans[nnsight]`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import InvalidArgumentError, TokenizationError, UnsupportedModelError
from ..norm import FinalNorm, NormKind
from .common import per_query_head, refuse_nonlinear_logits
from .host import HOST, parameter
from .protocol import Hook, HookKey, ModelSpec, Patch, Readout, RunResult

NNSIGHT_CLASSES = ("LanguageModel", "TransformersModel", "HuggingFaceModel")
INSTALL = "pip install 'symtrans[nnsight]'"


@dataclass(frozen=True)
class Family:
    """Where a Hugging Face architecture keeps what the identity reads (module paths).

    ``v``: the module whose output holds the values (``v_layout`` says how: ``"split"`` a
    projection of its own, ``"gpt2"`` the last third of a fused q/k/v, ``"neox"`` the last
    third of each head's fused q/k/v, ``"qkv"`` the key-value heads after the query heads of a
    fused projection (Phi-3)); ``z``: the output projection, whose *input* is the
    heads' concatenated outputs; ``mlp_post``: the MLP's down projection, whose input is the
    neurons' activations. ``conv1d``: weights stored ``[in, out]`` (GPT-2's ``Conv1D``).
    """

    name: str
    embed: str
    pos_embed: str | None
    blocks: str
    attn: str
    v: str
    v_layout: str
    z: str
    mlp: str
    mlp_post: str
    final_norm: str
    unembed: str
    conv1d: bool = False


# Each family's block adds exactly attention output + MLP output to the residual (checked
# against Hugging Face's forward for every one of them in tests/test_nnsight.py).
FAMILIES = {
    "GPT2LMHeadModel": Family(
        name="gpt2",
        embed="transformer.wte",
        pos_embed="transformer.wpe",
        blocks="transformer.h",
        attn="attn",
        v="attn.c_attn",
        v_layout="gpt2",
        z="attn.c_proj",
        mlp="mlp",
        mlp_post="mlp.c_proj",
        final_norm="transformer.ln_f",
        unembed="lm_head",
        conv1d=True,
    ),
    "GPTNeoXForCausalLM": Family(
        name="gpt_neox",
        embed="gpt_neox.embed_in",
        pos_embed=None,
        blocks="gpt_neox.layers",
        attn="attention",
        v="attention.query_key_value",
        v_layout="neox",
        z="attention.dense",
        mlp="mlp",
        mlp_post="mlp.dense_4h_to_h",
        final_norm="gpt_neox.final_layer_norm",
        unembed="lm_head",
    ),
    "LlamaForCausalLM": Family(
        name="llama",
        embed="model.embed_tokens",
        pos_embed=None,
        blocks="model.layers",
        attn="self_attn",
        v="self_attn.v_proj",
        v_layout="split",
        z="self_attn.o_proj",
        mlp="mlp",
        mlp_post="mlp.down_proj",
        final_norm="model.norm",
        unembed="lm_head",
    ),
    **{
        arch: Family(
            name=name,
            embed="model.embed_tokens",
            pos_embed=None,
            blocks="model.layers",
            attn="self_attn",
            v="self_attn.qkv_proj" if name == "phi3" else "self_attn.v_proj",
            v_layout="qkv" if name == "phi3" else "split",
            z="self_attn.o_proj",
            mlp="mlp",
            mlp_post="mlp.down_proj",
            final_norm="model.norm",
            unembed="lm_head",
        )
        for arch, name in (
            ("MistralForCausalLM", "mistral"),
            ("Qwen2ForCausalLM", "qwen2"),
            ("Qwen3ForCausalLM", "qwen3"),
            ("Phi3ForCausalLM", "phi3"),
            ("StableLmForCausalLM", "stablelm"),
        )
    },
    "GPTNeoForCausalLM": Family(
        name="gpt_neo",
        embed="transformer.wte",
        pos_embed="transformer.wpe",
        blocks="transformer.h",
        attn="attn",
        v="attn.attention.v_proj",
        v_layout="split",
        z="attn.attention.out_proj",
        mlp="mlp",
        mlp_post="mlp.c_proj",
        final_norm="transformer.ln_f",
        unembed="lm_head",
    ),
    "GPTJForCausalLM": Family(
        name="gptj",
        embed="transformer.wte",
        pos_embed=None,
        blocks="transformer.h",
        attn="attn",
        v="attn.v_proj",
        v_layout="split",
        z="attn.out_proj",
        mlp="mlp",
        mlp_post="mlp.fc_out",
        final_norm="transformer.ln_f",
        unembed="lm_head",
    ),
}

# The order in which a block computes what each hook reads (nnsight refuses reads out of order).
_STAGE = {
    Hook.EMBED: 0,
    Hook.POS_EMBED: 1,
    Hook.RESID_PRE: 2,
    Hook.V: 3,
    Hook.Z: 4,
    Hook.ATTN_OUT: 5,
    Hook.PATTERN: 5,
    Hook.MLP_POST: 6,
    Hook.MLP_OUT: 7,
    Hook.RESID_POST: 8,
    Hook.RESID_FINAL: 9,
}
SUPPORTED_HOOKS = frozenset(_STAGE)


def is_nnsight(model: Any) -> bool:
    """An nnsight ``LanguageModel`` (or its successor ``TransformersModel``), by class name."""
    return any(c.__name__ in NNSIGHT_CLASSES for c in type(model).__mro__)


def require_nnsight() -> Any:
    """``import nnsight``, or an error naming the extra that installs it."""
    try:
        import nnsight
    except ImportError:
        raise InvalidArgumentError(
            f"this needs nnsight, which is not installed; install the extra: {INSTALL}"
        ) from None
    return nnsight


def _order(key: HookKey, n_layers: int) -> tuple[int, int]:
    layer = n_layers if key.hook is Hook.RESID_FINAL else key.layer
    return (layer, _STAGE[key.hook])


def _first(value: Any) -> Tensor:
    """A module's output (or input) tensor: the first element of a tuple."""
    return value[0] if isinstance(value, tuple) else value


class NNsightAdapter:
    """A :class:`~symtrans.adapter.protocol.ModelAdapter` over an nnsight ``LanguageModel``.

    ``remote``: ``False`` runs the trace here; ``True`` sends it to NDIF (an API key set with
    ``nnsight.CONFIG.set_default_api_key``); ``"local"`` runs nnsight's local simulation of
    the remote path (serialized, symtrans's own modules hidden, deserialized, run here).
    """

    def __init__(self, lm: Any, remote: bool | str = False) -> None:
        if remote not in (False, True, "local"):
            raise InvalidArgumentError(
                f"remote must be False, True (NDIF) or 'local' (nnsight's local simulation of "
                f"a remote run), got {remote!r}"
            )
        self._lm = lm
        self.remote = remote
        self._hf = lm._module
        arch = type(self._hf).__name__
        config = self._hf.config
        refuse_nonlinear_logits(
            arch,
            softcap=getattr(config, "final_logit_softcapping", None),
            logit_scale=getattr(config, "logit_scale", None)
            or getattr(config, "logits_scaling", None),
            has_final_norm=True,
        )
        family = FAMILIES.get(arch)
        if family is None:
            raise UnsupportedModelError(
                f"nnsight model of architecture {arch!r} is not supported: its block layout has "
                "not been checked against the exact identity; supported: "
                f"{', '.join(sorted(FAMILIES))}. Load it as a TransformerBridge "
                "(st.load_model(path)) if TransformerLens supports it"
            )
        self._family = family
        self._spec = self._read_spec(config)
        self._w_out: dict[int, Tensor] = {}

    # -- the model's shape ----------------------------------------------------------------
    def _module(self, path: str) -> Any:
        return self._hf.get_submodule(path)

    def _block(self, layer: int, path: str) -> Any:
        return self._module(f"{self._family.blocks}.{layer}.{path}")

    def _envoy(self, path: str) -> Any:
        envoy = self._lm
        for part in path.split("."):
            envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
        return envoy

    def _read_spec(self, config: Any) -> ModelSpec:
        f = self._family
        n_layers = len(self._module(f.blocks))
        n_heads = int(getattr(config, "num_attention_heads", None) or config.n_head)
        d_model = int(getattr(config, "hidden_size", None) or config.n_embd)
        d_head = int(getattr(config, "head_dim", None) or d_model // n_heads)
        post = self._block(0, f.mlp_post)
        d_mlp = int(post.weight.shape[0] if f.conv1d else post.weight.shape[1])
        n_ctx = getattr(config, "max_position_embeddings", None) or config.n_positions
        parallel = bool(getattr(config, "use_parallel_residual", f.name == "gptj"))
        return ModelSpec(
            architecture=f.name,
            n_layers=n_layers,
            n_heads=n_heads,
            d_model=d_model,
            d_head=d_head,
            d_mlp=d_mlp,
            n_ctx=int(n_ctx),
            has_pos_embed=f.pos_embed is not None,
            parallel=parallel,
            norm=self._final_norm(d_model),
            dtype=self._module(f.unembed).weight.dtype,
        )

    def _final_norm(self, d_model: int) -> FinalNorm:
        module = self._module(self._family.final_norm)
        kind = type(module).__name__
        if isinstance(module, torch.nn.LayerNorm):
            norm = NormKind.LAYER
            eps = module.eps
        elif kind.endswith("RMSNorm") and hasattr(module, "variance_epsilon"):
            norm = NormKind.RMS
            eps = module.variance_epsilon
        else:
            raise UnsupportedModelError(
                f"final norm {kind} is not supported (expected torch LayerNorm or a Llama-style "
                "RMSNorm that scales by its weight)"
            )
        if self.remote is True:  # the weights are on the server: here only their shapes
            gamma, beta = module.weight, getattr(module, "bias", None)
            beta = beta if norm is NormKind.LAYER else None
        else:
            gamma = parameter(module, "weight")
            beta = parameter(module, "bias") if norm is NormKind.LAYER else None
        return FinalNorm(kind=norm, eps=float(eps), d_model=d_model, gamma=gamma, beta=beta)

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    @property
    def model(self) -> Any:
        return self._lm

    @property
    def cfg(self) -> Any:
        """What :func:`~symtrans.adapter.model_info` reads the model's name from."""

        class _Cfg:
            model_name = str(getattr(self._hf.config, "_name_or_path", "") or self._family.name)

        return _Cfg()

    @property
    def d_vocab(self) -> int:
        return int(self._module(self._family.unembed).weight.shape[0])

    # -- tokens ---------------------------------------------------------------------------
    @property
    def _tokenizer(self) -> Any:
        tokenizer = getattr(self._lm, "tokenizer", None)
        if tokenizer is None:
            raise InvalidArgumentError(
                "the nnsight model has no tokenizer; pass one: LanguageModel(model, "
                "tokenizer=AutoTokenizer.from_pretrained(path))"
            )
        return tokenizer

    def tokenize(self, prompt: str) -> list[int]:
        """The ids nnsight's own ``model.trace(prompt)`` feeds the model (the tokenizer's
        special tokens included, as Hugging Face adds them)."""
        if not isinstance(prompt, str):
            raise InvalidArgumentError(
                f"a prompt must be a str, got {type(prompt).__name__}: {prompt!r}"
            )
        if prompt == "":
            raise TokenizationError(
                "the prompt is empty; give the text the model should read, "
                "e.g. 'Dublin is the capital city of'"
            )
        ids = [int(i) for i in self._tokenizer(prompt)["input_ids"]]
        if len(ids) > self._spec.n_ctx:
            raise TokenizationError(
                f"the prompt is {len(ids)} tokens long but the model's context holds "
                f"{self._spec.n_ctx}; shorten the prompt"
            )
        return ids

    def single_token(self, text: str, role: str) -> int:
        if not isinstance(text, str) or text == "":
            raise TokenizationError(f"{role} must be a non-empty string, got {text!r}")
        ids = self._tokenizer.encode(text, add_special_tokens=False)
        if len(ids) == 1:
            return int(ids[0])
        pieces = [self._tokenizer.decode([i]) for i in ids]
        raise TokenizationError(
            f"{role} {text!r} is not a single token: it becomes {len(ids)} tokens {pieces}; "
            f"pass one token, e.g. {pieces[0]!r}"
        )

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        return [self._tokenizer.decode([int(i)]) for i in ids]

    # -- weights (on the CPU, whatever device or offload holds them) ----------------------
    def _weight(self, path: str) -> Tensor:
        """A linear map's weight as ``[in, out]``."""
        weight = parameter(self._module(path), "weight")
        assert weight is not None
        weight = weight.to(HOST)
        return weight if self._family.conv1d else weight.T

    def _bias(self, path: str) -> Tensor:
        bias = parameter(self._module(path), "bias")
        if bias is None:  # Llama's o_proj / down_proj, GPT-J's out_proj: no bias
            return torch.zeros(self._spec.d_model, dtype=self._spec.dtype)
        return bias.to(HOST)

    def unembed(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        self._local_only("the unembedding")
        head = self._module(self._family.unembed)
        weight = parameter(head, "weight")
        assert weight is not None
        rows = weight.to(HOST)[ids.to(HOST)]
        bias = parameter(head, "bias")
        b = torch.zeros(len(ids), dtype=rows.dtype) if bias is None else bias.to(HOST)[ids]
        return rows, b

    def W_O(self, layer: int) -> Tensor:  # [n_heads, d_head, d_model]
        self._local_only("W_O")
        s = self._spec
        path = f"{self._family.blocks}.{layer}.{self._family.z}"
        return self._weight(path).reshape(s.n_heads, s.d_head, s.d_model)

    def b_O(self, layer: int) -> Tensor:
        return self._bias(f"{self._family.blocks}.{layer}.{self._family.z}")

    def W_out(self, layer: int) -> Tensor:  # [d_mlp, d_model]
        self._local_only("W_out")
        return self._weight(f"{self._family.blocks}.{layer}.{self._family.mlp_post}")

    def b_out(self, layer: int) -> Tensor:
        return self._bias(f"{self._family.blocks}.{layer}.{self._family.mlp_post}")

    def _local_only(self, what: str) -> None:
        if self.remote is True:
            raise UnsupportedModelError(
                f"{what} is on the NDIF server, not here: a remote nnsight model gives only "
                "the read-out projections (st.decompose and st.decompose_dataset with "
                "remote=True); run the other analyses on a local model"
            )

    # -- the forward pass -----------------------------------------------------------------
    def _on_input_device(self, tokens: Tensor) -> Tensor:
        """The token ids where the embedding runs (a remote run sends them as they are)."""
        if self.remote is True:
            return tokens
        embed = self._module(self._family.embed)
        device = getattr(getattr(embed, "_hf_hook", None), "execution_device", None)
        if device is None:
            device = embed.weight.device
        return tokens if torch.device(device).type == "meta" else tokens.to(device)

    def _check_hooks(self, keys: frozenset[HookKey] | Mapping[HookKey, Any]) -> None:
        missing = sorted({k.hook.value for k in keys if k.hook not in SUPPORTED_HOOKS})
        if missing:
            raise UnsupportedModelError(
                f"the nnsight adapter does not read {missing} (path and attention-score "
                "decompositions need them); load the model as a TransformerBridge "
                "(st.load_model(path)) for those analyses"
            )
        if self._attention_weights_absent() and any(k.hook is Hook.PATTERN for k in keys):
            raise UnsupportedModelError(
                f"the attention pattern is not returned by {self._attn_impl()!r} attention "
                "(split='positions', head-source ablations and projections need it); load the "
                "model with attn_implementation='eager': LanguageModel(path, "
                "attn_implementation='eager', ...)"
            )

    def _attn_impl(self) -> str:
        return str(getattr(self._hf.config, "_attn_implementation", "eager"))

    def _attention_weights_absent(self) -> bool:
        return self._attn_impl() != "eager"

    def _values(self, out: Tensor) -> Tensor:
        """``[batch, pos, n_heads, d_head]`` values, one per query head, from the output of
        the family's value module."""
        s, layout = self._spec, self._family.v_layout
        b, p = out.shape[:2]
        if layout == "gpt2":  # [q | k | v], each d_model wide
            v = out[..., 2 * s.d_model :].reshape(b, p, s.n_heads, s.d_head)
        elif layout == "neox":  # per head [q | k | v]
            v = out.reshape(b, p, s.n_heads, 3 * s.d_head)[..., 2 * s.d_head :]
        elif layout == "qkv":  # [q | k | v]: n_heads query heads, then n_kv key and value heads
            n_kv = (out.shape[-1] // s.d_head - s.n_heads) // 2
            v = out[..., (s.n_heads + n_kv) * s.d_head :].reshape(b, p, n_kv, s.d_head)
        else:
            v = out.reshape(b, p, -1, s.d_head)
        return per_query_head(v, s.n_heads, dim=2)

    def _point(self, key: HookKey) -> tuple[Any, str]:
        """The envoy of ``key`` and whether to read its ``input`` or ``output``."""
        f = self._family
        block = f"{f.blocks}.{key.layer}"
        return {
            Hook.EMBED: (f.embed, "output"),
            Hook.POS_EMBED: (f.pos_embed or "", "output"),
            Hook.RESID_PRE: (block, "input"),
            Hook.V: (f"{block}.{f.v}", "output"),
            Hook.Z: (f"{block}.{f.z}", "input"),
            Hook.ATTN_OUT: (f"{block}.{f.attn}", "output"),
            Hook.PATTERN: (f"{block}.{f.attn}", "output"),
            Hook.MLP_POST: (f"{block}.{f.mlp_post}", "input"),
            Hook.MLP_OUT: (f"{block}.{f.mlp}", "output"),
            Hook.RESID_POST: (block, "output"),
            Hook.RESID_FINAL: (f.final_norm, "input"),
        }[key.hook]

    def run(
        self,
        tokens: Tensor,
        positions: Tensor,
        keys: frozenset[HookKey],
        patches: Mapping[HookKey, Patch] | None = None,
    ) -> RunResult:
        """One forward pass of the Hugging Face module nnsight wraps, every hook read where a
        trace would read it, only its destination rows kept (every position for ``V`` and
        ``all_positions`` keys); ``patches`` replace a module's output (or the tensor in front
        of its tuple) before the keys read it."""
        self._local_only("the activations")
        patches = dict(patches or {})
        self._check_hooks(keys)
        self._check_hooks(patches)
        for key in patches:
            if key.hook in (Hook.Z, Hook.MLP_POST, Hook.RESID_PRE, Hook.RESID_FINAL, Hook.V):
                raise UnsupportedModelError(
                    f"the nnsight adapter patches module outputs only, not {key.hook.value}"
                )
        return self._run_hooked(tokens, positions, keys, patches)

    def _kept(self, key: HookKey, raw: Any, value: Tensor, positions: Tensor) -> Tensor:
        """What ``run`` hands back of ``key``'s tensor: the destination rows (every position
        for ``V`` and ``all_positions`` keys), per head for ``Z``."""
        rows = torch.arange(positions.shape[0])
        if key.hook is Hook.PATTERN:  # [batch, head, q, k]
            pattern = raw[1]
            return pattern if key.all_positions else pattern[rows, :, positions, :]
        if key.hook is Hook.V:
            return self._values(value)
        if key.hook is Hook.Z:
            z = value.reshape(*value.shape[:2], self._spec.n_heads, -1)
            return z if key.all_positions else z[rows, positions]
        value = value.expand(len(rows), *value.shape[1:])  # GPT-2's position embedding: batch 1
        return value if key.all_positions else value[rows, positions]

    def _run_hooked(
        self,
        tokens: Tensor,
        positions: Tensor,
        keys: frozenset[HookKey],
        patches: Mapping[HookKey, Patch],
    ) -> RunResult:
        """A local run: the Hugging Face module nnsight wraps, called directly with torch hooks
        on the same modules and sides a trace reads (the same numbers as ``model.trace``,
        without nnsight's tracing around every call: a dataset's throughput is the model's)."""
        acts: dict[HookKey, Tensor] = {}
        handles = []

        def output_hook(key: HookKey) -> Any:
            def hook(module: Any, args: Any, out: Any) -> Any:
                value = _first(out)
                replaced = None
                if key in patches:
                    value = patches[key](value)
                    replaced = (value, *out[1:]) if isinstance(out, tuple) else value
                if key in keys:
                    acts[key] = self._kept(key, out, value, positions).detach().to(HOST)
                return replaced

            return hook

        def input_hook(key: HookKey) -> Any:
            def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
                value = args[0] if args else kwargs["hidden_states"]
                acts[key] = self._kept(key, args, value, positions).detach().to(HOST)

            return hook

        try:
            for key in {*keys, *patches}:
                path, side = self._point(key)
                module = self._module(path)
                if side == "output":
                    handles.append(module.register_forward_hook(output_hook(key)))
                else:
                    handles.append(
                        module.register_forward_pre_hook(input_hook(key), with_kwargs=True)
                    )
            with torch.no_grad():
                logits = self._hf(self._on_input_device(tokens)).logits
        finally:
            for handle in handles:
                handle.remove()
        rows = torch.arange(tokens.shape[0])
        return RunResult(logits=logits[rows, positions].detach().to(HOST), activations=acts)

    def readout(
        self,
        tokens: Tensor,
        positions: Tensor,
        keys: frozenset[HookKey],
        answer: Tensor,
        vs: Tensor | None,
    ) -> Readout:
        """Every hook of ``keys`` contracted with the read-out vector ``w = c(γ⊙u)``
        inside the trace, where the model (and its weights) are: ``EMBED``, ``POS_EMBED``,
        ``ATTN_OUT``, ``MLP_OUT`` -> ``[batch, 1]``; ``Z`` -> ``[batch, n_heads]``;
        ``MLP_POST`` -> ``[batch, d_mlp]``; ``V`` -> ``[batch, pos, n_heads]``;
        ``PATTERN`` as it is. The arithmetic is :class:`symtrans.trace.splits.Reading`'s,
        written out in torch (the block runs where symtrans is not installed)."""
        self._check_hooks(keys)
        s, f = self._spec, self._family
        lm = self._lm
        rows = torch.arange(tokens.shape[0])
        n_heads, d_head, d_model = s.n_heads, s.d_head, s.d_model
        layer_norm = s.norm.kind is NormKind.LAYER
        eps = s.norm.eps
        conv1d = f.conv1d
        points = sorted(keys, key=lambda k: _order(k, s.n_layers))
        plan = [(k.hook.value, k.layer, *self._point(k)) for k in points]
        v_layout = f.v_layout
        blocks, z_name, post_name = f.blocks, f.z, f.mlp_post
        final_name, unembed_name = f.final_norm, f.unembed
        has_vs = vs is not None
        vs_ids = vs if vs is not None else answer
        nnsight = require_nnsight()
        out: dict[str, Tensor] = {}
        tokens = self._on_input_device(tokens)
        with torch.no_grad(), lm.trace(tokens, remote=self.remote):
            # Everything below runs where the model is (on NDIF for remote=True): plain torch,
            # and one saved dict of [batch]-, [batch, heads]- or [batch, d_mlp]-sized numbers.
            out = nnsight.save({})

            def envoy_at(path):
                e = lm
                for part in path.split("."):
                    e = e[int(part)] if part.isdigit() else getattr(e, part)
                return e

            head = envoy_at(unembed_name)
            u = head.weight[answer].to(torch.float64)
            b_u = head.bias[answer].to(torch.float64) if head.bias is not None else 0.0 * u[:, 0]
            if has_vs:
                u = u - head.weight[vs_ids].to(torch.float64)
                if head.bias is not None:
                    b_u = b_u - head.bias[vs_ids].to(torch.float64)
            final = envoy_at(final_name)
            w = u * final.weight.to(u.device, torch.float64)
            beta = 0.0 * b_u
            if layer_norm:
                w = w - w.mean(dim=-1, keepdim=True)
                if final.bias is not None:
                    beta = u @ final.bias.to(u.device, torch.float64)
            for hook, layer, path, side in plan:
                envoy = envoy_at(path)
                value = envoy.output if side == "output" else envoy.input
                value = value[0] if isinstance(value, tuple) and hook != "pattern" else value
                name = hook if layer < 0 else f"{hook}.{layer}"
                if hook == "pattern":
                    out[name] = value[1][rows, :, positions, :].to(torch.float64)
                    continue
                # A sharded model's blocks live on several devices: w goes to each block's.
                wd = w.to(value.device)
                if hook in ("z", "v"):
                    o_proj = envoy_at(f"{blocks}.{layer}.{z_name}")
                    W_O = o_proj.weight.to(value.device, torch.float64)
                    W_O = W_O if conv1d else W_O.T  # [n_heads * d_head, d_model]
                    Ow = (W_O.reshape(n_heads, d_head, d_model) @ wd.T).permute(2, 0, 1)
                    bias = o_proj.bias
                    out[f"bias.{layer}.attn"] = (
                        (wd @ bias.to(value.device, torch.float64))
                        if bias is not None
                        else 0.0 * b_u
                    )
                if hook == "z":  # z · (W_O w) per head
                    z = value[rows, positions].reshape(len(rows), n_heads, d_head)
                    out[name] = (z.to(torch.float64) * Ow).sum(-1)
                elif hook == "v":  # v_s · (W_O w) per source and query head
                    b, p = value.shape[:2]
                    if v_layout == "gpt2":
                        v = value[..., 2 * d_model :].reshape(b, p, -1, d_head)
                    elif v_layout == "neox":
                        v = value.reshape(b, p, -1, 3 * d_head)[..., 2 * d_head :]
                    elif v_layout == "qkv":
                        n_kv = (value.shape[-1] // d_head - n_heads) // 2
                        v = value[..., (n_heads + n_kv) * d_head :].reshape(b, p, -1, d_head)
                    else:
                        v = value.reshape(b, p, -1, d_head)
                    v = v.repeat_interleave(n_heads // v.shape[2], dim=2)
                    out[name] = (v.to(torch.float64) * Ow[:, None]).sum(-1)
                elif hook == "mlp_post":  # a_n (W_out w)[n]
                    down = envoy_at(f"{blocks}.{layer}.{post_name}")
                    W_out = down.weight.to(value.device, torch.float64)
                    W_out = W_out if conv1d else W_out.T  # [d_mlp, d_model]
                    out[name] = value[rows, positions].to(torch.float64) * (wd @ W_out.T)
                    bias = down.bias
                    out[f"bias.{layer}.mlp"] = (
                        (wd @ bias.to(value.device, torch.float64))
                        if bias is not None
                        else 0.0 * b_u
                    )
                elif hook == "resid_final":  # σ of the final norm
                    x = value[rows, positions].to(torch.float64)
                    c = x - x.mean(dim=-1, keepdim=True) if layer_norm else x
                    out["scale"] = torch.sqrt(c.pow(2).sum(-1) / d_model + eps)
                else:  # a d_model-wide output: <w, x>
                    value = value.expand(len(rows), *value.shape[1:])
                    x = value[rows, positions].to(torch.float64)
                    out[name] = (x * wd).sum(-1, keepdim=True)
            logits = head.output[rows, positions].to(torch.float64)
            picked = logits[rows, answer]
            if has_vs:
                picked = picked - logits[rows, vs_ids]
            out["logit"] = picked
            out["beta"] = beta
            out["unembed_bias"] = b_u
        return _readout(dict(out), keys)


def _readout(saved: Mapping[str, Tensor], keys: frozenset[HookKey]) -> Readout:
    projections: dict[HookKey, Tensor] = {}
    biases: dict[HookKey, Tensor] = {}
    for key in keys:
        if key.hook is Hook.RESID_FINAL:
            continue
        name = key.hook.value if key.layer < 0 else f"{key.hook.value}.{key.layer}"
        projections[key] = saved[name].to(HOST)
        if key.hook in (Hook.Z, Hook.V):
            biases[HookKey(Hook.ATTN_OUT, key.layer)] = saved[f"bias.{key.layer}.attn"].to(HOST)
        if key.hook is Hook.MLP_POST:
            biases[HookKey(Hook.MLP_OUT, key.layer)] = saved[f"bias.{key.layer}.mlp"].to(HOST)
    return Readout(
        projections=projections,
        biases=biases,
        scale=saved["scale"].to(HOST),
        model_logits=saved["logit"].to(HOST),
        beta_term=saved["beta"].to(HOST),
        unembed_bias=saved["unembed_bias"].to(HOST),
    )
