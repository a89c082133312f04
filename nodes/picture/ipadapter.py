"""IP-Adapter: a character's reference images steer the picture through decoupled cross-attention.

An IP-Adapter file holds two things: an *image projection* that turns a CLIP vision embedding of the reference
images into a few "image tokens" as wide as the text context, and, for every cross-attention layer of the UNet,
its own key and value projections (``to_k_ip`` / ``to_v_ip``) for those tokens. While sampling, each
cross-attention layer attends to the text as usual *and* to the image tokens; the second result, times the
weight, is added to the first. Nothing in the UNet's weights changes: the layers are swapped through ComfyUI's
``attn2`` replace patches on a clone of the MODEL.

The file layouts read here (flattened safetensors keys, or the legacy nested ``.bin`` pickle with
``{"image_proj": {...}, "ip_adapter": {...}}``):

* ``standard`` (``ip-adapter_sd15``, ``ip-adapter_sdxl``): one linear layer plus a LayerNorm over CLIP vision's
  pooled ``image_embeds``, reshaped into a few tokens;
* ``plus`` (``ip-adapter-plus*``): a perceiver resampler — learned query latents that cross-attend to CLIP
  vision's penultimate hidden states (all patch tokens) through a few attention + feed-forward layers;
* ``full`` (``ip-adapter-full-face``): a two-layer MLP applied to every penultimate hidden state.

``ip_adapter.N`` keys with odd ``N`` are the cross-attention layers in diffusers' processor order: down blocks,
then up blocks, then the mid block. A file made for another model family (an SDXL adapter on an SD1.5 model)
would not even run — the shapes differ — so the fit is checked first and refused with
:class:`IPAdapterFamilyError`, naming both families.

With weight 0 the MODEL is passed through without patches, so sampling is bit-identical to no IP-Adapter;
outside the start/end window the patched layers compute exactly what the unpatched layers compute.

``comfy.*`` and torch are imported inside the functions: this module imports without ComfyUI or torch (the
layout detection and the fit check are plain Python over ``key -> shape``).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import boundary
from .lora import _CONTEXT_FAMILIES, _shape, model_family

log = logging.getLogger(__name__)

IPADAPTER_FOLDER = "ipadapter"
DIM_HEAD = 64  # the perceiver resampler's head width in every published IP-Adapter "plus" model
LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's default, which the published projections use

# number of UNet cross-attention layers -> family (SD1.x/SD2.x UNets have 16, SDXL's has 70)
_LAYER_COUNT_FAMILIES = {16: "SD1.x", 70: "SDXL"}
# CLIP vision widths -> the encoder that gives them
_IMAGE_EMBEDS_ENCODERS = {512: "ViT-B", 768: "ViT-L/14", 1024: "ViT-H/14", 1280: "ViT-bigG/14"}
_PENULTIMATE_ENCODERS = {768: "ViT-B", 1024: "ViT-L/14", 1280: "ViT-H/14", 1664: "ViT-bigG/14"}

_IP_LAYER_KEY = re.compile(r"^ip_adapter\.(\d+)\.to_([kv])_ip\.weight$")
_RESAMPLER_LAYER_KEY = re.compile(r"^image_proj\.layers\.(\d+)\.0\.to_q\.weight$")


class IPAdapterError(ValueError):
    """An IP-Adapter that cannot be used; the message says why and what to do."""


class IPAdapterNotFoundError(IPAdapterError, FileNotFoundError):
    pass


class IPAdapterLayoutError(IPAdapterError):
    """The file is not an IP-Adapter layout this node reads."""


class IPAdapterFamilyError(IPAdapterError):
    """The file was made for another model family than the MODEL it is applied to."""


class IPAdapterClipVisionError(IPAdapterError):
    """The CLIP vision model gives embeddings of another width than the file's image projection takes."""


@dataclass(frozen=True)
class IPAdapterLayout:
    """What an IP-Adapter file holds, from its key names and tensor shapes alone."""
    kind: str                      # "standard" | "plus" | "full"
    tokens: int                    # image tokens per reference (the "full" layout: one per CLIP vision token)
    context_dim: int               # width of the image tokens (must be the UNet's cross-attention context)
    embed_dim: int                 # width of the CLIP vision output the projection takes
    embed_input: str               # "image_embeds" | "penultimate_hidden_states"
    layers: tuple[tuple[int, int, int], ...]  # (N of ip_adapter.N, to_k_ip out features, to_k_ip in features)
    resampler_depth: int = 0
    resampler_heads: int = 0

    @property
    def family(self) -> str | None:
        return _family_from(self.context_dim, len(self.layers))

    def describe(self) -> str:
        how = {"standard": "standard layout (linear projection of CLIP vision image_embeds)",
               "plus": (f"plus layout (perceiver resampler, {self.resampler_depth} layers x {self.resampler_heads} "
                        f"heads, over CLIP vision penultimate hidden states)"),
               "full": "full layout (MLP over every CLIP vision penultimate hidden state)"}[self.kind]
        tokens = f"{self.tokens} image tokens" if self.kind != "full" else "one image token per CLIP vision token"
        return f"{how}; {tokens} of width {self.context_dim}; {len(self.layers)} cross-attention layers"


@dataclass(frozen=True)
class CrossAttentionSlot:
    """One cross-attention layer of the UNet, named the way ComfyUI's attn2 replace patches name it."""
    block: str            # "input" | "output" | "middle"
    number: int           # index in input_blocks / output_blocks (0 for the middle block)
    transformer_index: int
    out_features: int     # attn2.to_k out features (heads * dim_head)
    context_dim: int      # attn2.to_k in features

    def label(self) -> str:
        return f"{self.block} {self.number}.{self.transformer_index}"


# ------------------------------------------------------------------------------------------ layouts


def flatten_state_dict(sd: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The legacy ``.bin`` nests ``{"image_proj": {...}, "ip_adapter": {...}}``; safetensors files are flat
    with the same names joined by dots. Both become the flat form."""
    flat: dict[str, Any] = {}
    for key, value in sd.items():
        if isinstance(value, Mapping):
            flat.update(flatten_state_dict(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _family_from(context_dim: int | None, layer_count: int) -> str | None:
    if context_dim in _CONTEXT_FAMILIES:
        return f"{_CONTEXT_FAMILIES[context_dim]} (cross-attention context {context_dim})"
    if layer_count in _LAYER_COUNT_FAMILIES:
        return f"{_LAYER_COUNT_FAMILIES[layer_count]} ({layer_count} cross-attention layers)"
    return None


def _ip_layers(shapes: Mapping[str, tuple[int, ...]]) -> tuple[tuple[int, int, int], ...]:
    found: dict[int, dict[str, tuple[int, ...]]] = {}
    for key, shape in shapes.items():
        m = _IP_LAYER_KEY.match(key)
        if m:
            found.setdefault(int(m.group(1)), {})[m.group(2)] = shape
    layers = []
    for n in sorted(found):
        k, v = found[n].get("k"), found[n].get("v")
        if k is None or v is None or len(k) != 2 or k != v:
            raise IPAdapterLayoutError(f"ip_adapter.{n} needs to_k_ip and to_v_ip weights of one 2-D shape, "
                                       f"found {k} and {v}")
        layers.append((n, k[0], k[1]))
    return tuple(layers)


def guess_ipadapter_family(shapes: Mapping[str, Any]) -> str | None:
    """The model family an IP-Adapter file was made for, from its keys and shapes (``key -> tensor`` or
    ``key -> shape``, flat or nested); None when nothing tells. E.g. ``"SDXL (cross-attention context 2048)"``."""
    shapes = {k: _shape(v) for k, v in flatten_state_dict(shapes).items()}
    try:
        layers = _ip_layers(shapes)
    except IPAdapterLayoutError:
        layers = ()
    contexts = {layer[2] for layer in layers}
    context = contexts.pop() if len(contexts) == 1 else None
    if context is None:
        norm = shapes.get("image_proj.norm.weight") or shapes.get("image_proj.norm_out.weight") \
            or shapes.get("image_proj.proj.3.weight")
        context = norm[0] if norm else None
    return _family_from(context, len(layers))


def detect_layout(shapes: Mapping[str, Any], name: str = "") -> IPAdapterLayout:
    """Read an IP-Adapter file's layout from ``key -> shape`` (or tensors; flat or nested).

    Raises :class:`IPAdapterLayoutError` for anything that is not a standard, plus or full IP-Adapter."""
    shapes = {k: _shape(v) for k, v in flatten_state_dict(shapes).items()}
    what = f"'{name}'" if name else "the file"
    layers = _ip_layers(shapes)
    if not layers:
        raise IPAdapterLayoutError(f"{what} is not an IP-Adapter: it has no ip_adapter.N.to_k_ip/to_v_ip weights")

    def need(key: str, dims: int) -> tuple[int, ...]:
        shape = shapes.get(key)
        if shape is None or len(shape) != dims:
            raise IPAdapterLayoutError(f"{what}: {key} is missing or not {dims}-D (found {shape})")
        return shape

    if "image_proj.latents" in shapes:
        latents = need("image_proj.latents", 3)
        proj_in = need("image_proj.proj_in.weight", 2)
        proj_out = need("image_proj.proj_out.weight", 2)
        need("image_proj.norm_out.weight", 1)
        depth = len([k for k in shapes if _RESAMPLER_LAYER_KEY.match(k)])
        if depth == 0:
            raise IPAdapterLayoutError(f"{what}: a resampler (image_proj.latents) without layers")
        inner = need("image_proj.layers.0.0.to_q.weight", 2)[0]
        if inner % DIM_HEAD:
            raise IPAdapterLayoutError(f"{what}: resampler attention width {inner} is not a multiple of {DIM_HEAD}")
        for i in range(depth):
            for part in ("0.norm1.weight", "0.norm2.weight", "0.to_q.weight", "0.to_kv.weight", "0.to_out.weight",
                         "1.0.weight", "1.1.weight", "1.3.weight"):
                if f"image_proj.layers.{i}.{part}" not in shapes:
                    raise IPAdapterLayoutError(f"{what}: resampler layer {i} lacks image_proj.layers.{i}.{part}")
        layout = IPAdapterLayout("plus", latents[1], proj_out[0], proj_in[1], "penultimate_hidden_states", layers,
                                 depth, inner // DIM_HEAD)
    elif "image_proj.proj.0.weight" in shapes:
        first = need("image_proj.proj.0.weight", 2)
        second = need("image_proj.proj.2.weight", 2)
        need("image_proj.proj.3.weight", 1)
        layout = IPAdapterLayout("full", 0, second[0], first[1], "penultimate_hidden_states", layers)
    elif "image_proj.proj.weight" in shapes:
        proj = need("image_proj.proj.weight", 2)
        context = need("image_proj.norm.weight", 1)[0]
        if proj[0] % context:
            raise IPAdapterLayoutError(f"{what}: projection width {proj[0]} is not a whole number of "
                                       f"{context}-wide tokens")
        layout = IPAdapterLayout("standard", proj[0] // context, context, proj[1], "image_embeds", layers)
    else:
        kinds = sorted({k.split(".")[1] for k in shapes if k.startswith("image_proj.") and k.count(".") > 1})
        raise IPAdapterLayoutError(
            f"{what}: unknown image projection (image_proj.{{{', '.join(kinds)}}}); this node reads the standard "
            f"(ip-adapter_sd15/_sdxl), plus and full-face layouts, not FaceID or other variants")
    even = [n for n, _out, _in in layers if n % 2 == 0]
    if even:
        raise IPAdapterLayoutError(f"{what}: ip_adapter.{even[0]} is an even (self-attention) index; IP-Adapter "
                                   f"layers are the odd, cross-attention ones")
    widths = sorted({in_dim for _n, _out, in_dim in layers})
    if widths != [layout.context_dim]:
        raise IPAdapterLayoutError(f"{what}: its image tokens are {layout.context_dim} wide but its to_k_ip layers "
                                   f"take {', '.join(map(str, widths))}")
    return layout


# ------------------------------------------------------------------------------------------ the fit


def check_fit(layout: IPAdapterLayout, slots: Sequence[CrossAttentionSlot], name: str = "", character: str = "",
              family_of_model: str = "unknown") -> None:
    """Raise :class:`IPAdapterFamilyError` unless the file's layers map one to one onto *slots* (the model's
    cross-attention layers in diffusers order) with matching widths."""
    reason = None
    contexts = sorted({s.context_dim for s in slots})
    if not slots:
        reason = "the model has no UNet cross-attention layers"
    elif len(layout.layers) != len(slots):
        reason = (f"the file has {len(layout.layers)} cross-attention layers, the model "
                  f"{len(slots)}")
    elif contexts != [layout.context_dim]:
        reason = (f"the file's image tokens are {layout.context_dim} wide, the model's cross-attention context "
                  f"is {', '.join(map(str, contexts))}")
    else:
        for (n, out_dim, _in), slot in zip(layout.layers, slots):
            if out_dim != slot.out_features:
                reason = (f"ip_adapter.{n} projects to {out_dim} features, the model's cross-attention layer "
                          f"{slot.label()} to {slot.out_features}")
                break
    if reason is None:
        return
    raise IPAdapterFamilyError(family_message(name, character, layout.family, family_of_model, reason))


def family_message(name: str, character: str, file_family: str | None, family_of_model: str, reason: str) -> str:
    who = f" for character '{character}'" if character else ""
    looks = (f"the file looks made for {file_family}" if file_family
             else "its family could not be recognised from its shapes")
    return (f"IP-Adapter '{name}'{who} does not fit this model ({reason}): {looks}, but the model is "
            f"{family_of_model}. Use an IP-Adapter made for {family_of_model.split(' (')[0]} or pick a matching "
            f"checkpoint.")


def clip_vision_message(name: str, character: str, layout: IPAdapterLayout, width: int) -> str:
    encoders = _IMAGE_EMBEDS_ENCODERS if layout.embed_input == "image_embeds" else _PENULTIMATE_ENCODERS
    wanted = encoders.get(layout.embed_dim)
    have = encoders.get(width)
    who = f" for character '{character}'" if character else ""
    return (f"IP-Adapter '{name}'{who} takes {layout.embed_dim}-wide CLIP vision {layout.embed_input}"
            f"{f' ({wanted})' if wanted else ''}, but the CLIP vision model gives {width}"
            f"{f' ({have})' if have else ''}. Load the CLIP vision model the IP-Adapter was trained with.")


def cross_attention_slots(model) -> list[CrossAttentionSlot]:
    """The MODEL's cross-attention layers in diffusers processor order: input blocks, then output blocks, then
    the middle block; within a block each SpatialTransformer's transformer blocks in order."""
    unet = model.get_model_object("diffusion_model") if hasattr(model, "get_model_object") else model
    slots: list[CrossAttentionSlot] = []

    def walk(block_name: str, number: int, block) -> None:
        if block is None:
            return
        modules = block if hasattr(block, "__iter__") else [block]
        for module in modules:
            for t, tb in enumerate(getattr(module, "transformer_blocks", None) or ()):
                attn2 = getattr(tb, "attn2", None)
                to_k = getattr(attn2, "to_k", None)
                if to_k is None:
                    continue
                out_f, in_f = (int(n) for n in to_k.weight.shape)
                slots.append(CrossAttentionSlot(block_name, number, t, out_f, in_f))

    for i, block in enumerate(getattr(unet, "input_blocks", None) or ()):
        walk("input", i, block)
    for i, block in enumerate(getattr(unet, "output_blocks", None) or ()):
        walk("output", i, block)
    walk("middle", 0, getattr(unet, "middle_block", None))
    return slots


# ------------------------------------------------------------------------------------------ the file


def ipadapter_names() -> list[str]:
    """The files in ``models/ipadapter`` (core ComfyUI has no such folder; the pack adds the path other packs use)."""
    return boundary.model_file_names(IPADAPTER_FOLDER)


def ipadapter_missing(name: str) -> str | None:
    """Why *name* cannot be found (a sentence naming the file and ``models/ipadapter``), or None."""
    return boundary.model_file_missing(IPADAPTER_FOLDER, name, "IP-Adapter")


def ipadapter_path(name: str) -> Path:
    return boundary.model_file_path(IPADAPTER_FOLDER, name, "IP-Adapter", IPAdapterNotFoundError)


def load_ipadapter_file(name: str) -> dict:
    """The file's tensors under flat names (a legacy nested ``.bin`` is flattened)."""
    import comfy.utils

    return flatten_state_dict(comfy.utils.load_torch_file(str(ipadapter_path(name)), safe_load=True))


# ------------------------------------------------------------------------------------------ projections


def _linear(x, sd, prefix):
    import torch.nn.functional as F

    return F.linear(x, sd[f"{prefix}.weight"], sd.get(f"{prefix}.bias"))


def _layer_norm(x, sd, prefix):
    import torch.nn.functional as F

    weight = sd[f"{prefix}.weight"]
    return F.layer_norm(x, (weight.shape[0],), weight, sd.get(f"{prefix}.bias"), LAYER_NORM_EPS)


def _perceiver_attention(x, latents, sd, prefix, heads):
    """The latents (queries) attend to the image features and to themselves (keys/values from both, concatenated),
    as in Flamingo's perceiver resampler; both inputs are layer-normed first."""
    import torch

    x = _layer_norm(x, sd, f"{prefix}.norm1")
    latents = _layer_norm(latents, sd, f"{prefix}.norm2")
    q = _linear(latents, sd, f"{prefix}.to_q")
    k, v = _linear(torch.cat([x, latents], dim=-2), sd, f"{prefix}.to_kv").chunk(2, dim=-1)
    b, n, inner = q.shape
    head = inner // heads

    def split(t):
        return t.reshape(b, t.shape[1], heads, head).transpose(1, 2)

    q, k, v = split(q), split(k), split(v)
    scores = (q @ k.transpose(-2, -1)) * head ** -0.5
    out = torch.softmax(scores.float(), dim=-1).to(v.dtype) @ v
    return _linear(out.transpose(1, 2).reshape(b, n, inner), sd, f"{prefix}.to_out")


def resample(sd, hidden, layout: IPAdapterLayout):
    """The perceiver resampler of the plus layout: learned latents refined by cross-attention to the CLIP vision
    hidden states and a feed-forward (LayerNorm, Linear, GELU, Linear) per layer, residual around each; then a
    projection to the context width and a LayerNorm."""
    import torch.nn.functional as F

    latents = sd["image_proj.latents"].expand(hidden.shape[0], -1, -1)
    x = _linear(hidden, sd, "image_proj.proj_in")
    for i in range(layout.resampler_depth):
        latents = _perceiver_attention(x, latents, sd, f"image_proj.layers.{i}.0", layout.resampler_heads) + latents
        ff = f"image_proj.layers.{i}.1"
        latents = _linear(F.gelu(_linear(_layer_norm(latents, sd, f"{ff}.0"), sd, f"{ff}.1")), sd, f"{ff}.3") + latents
    return _layer_norm(_linear(latents, sd, "image_proj.proj_out"), sd, "image_proj.norm_out")


def project(sd, embeds, layout: IPAdapterLayout):
    """CLIP vision output -> image tokens ``[batch, tokens, context_dim]``."""
    import torch.nn.functional as F

    if layout.kind == "standard":
        tokens = _linear(embeds, sd, "image_proj.proj").reshape(embeds.shape[0], layout.tokens, layout.context_dim)
        return _layer_norm(tokens, sd, "image_proj.norm")
    if layout.kind == "full":
        hidden = F.gelu(_linear(embeds, sd, "image_proj.proj.0"))
        return _layer_norm(_linear(hidden, sd, "image_proj.proj.2"), sd, "image_proj.proj.3")
    return resample(sd, embeds, layout)


# ------------------------------------------------------------------------------------------ the patch


class IPAdapterAttention:
    """An ``attn2`` replace patch: the layer's own attention (or the patch it replaced, so adapters chain) plus,
    while the current sigma is inside the window, ``weight`` times attention to this adapter's image tokens.

    ``k``/``v`` tensors are ``[1, tokens, inner]`` for the conditional and the unconditional pass. Deep copies
    (ComfyUI deep-copies model_options on every clone) share them: the patch is never changed in place."""

    def __init__(self, weight: float, sigma_start: float, sigma_end: float, k_cond, v_cond, k_uncond, v_uncond,
                 base=None):
        self.weight = float(weight)
        self.sigma_start = float(sigma_start)
        self.sigma_end = float(sigma_end)
        self.k_cond, self.v_cond, self.k_uncond, self.v_uncond = k_cond, v_cond, k_uncond, v_uncond
        self.base = base

    def __deepcopy__(self, memo):
        return self

    def to(self, device):
        base = self.base.to(device) if hasattr(self.base, "to") else self.base
        return IPAdapterAttention(self.weight, self.sigma_start, self.sigma_end, self.k_cond.to(device),
                                  self.v_cond.to(device), self.k_uncond.to(device), self.v_uncond.to(device), base)

    def active(self, extra_options) -> bool:
        sigmas = extra_options.get("sigmas")
        if sigmas is None:
            return True
        sigma = float(sigmas.detach().flatten()[0])
        return self.sigma_end <= sigma <= self.sigma_start

    @staticmethod
    def _batched(cond, uncond, q, cond_or_uncond):
        import torch

        batch = q.shape[0]
        chunks = list(cond_or_uncond or ())
        if chunks and batch % len(chunks) == 0:
            per = batch // len(chunks)
            tokens = torch.cat([(uncond if c == 1 else cond).expand(per, -1, -1) for c in chunks], dim=0)
        else:
            tokens = cond.expand(batch, -1, -1)
        return tokens.to(device=q.device, dtype=q.dtype)

    def __call__(self, q, k, v, extra_options):
        from comfy.ldm.modules.attention import optimized_attention

        heads = extra_options["n_heads"]
        precision = extra_options.get("attn_precision")
        if self.base is not None:
            out = self.base(q, k, v, extra_options)
        else:  # exactly what CrossAttention.forward computes without a mask
            out = optimized_attention(q, k, v, heads, attn_precision=precision, transformer_options=extra_options)
        if not self.active(extra_options):
            return out
        chunks = extra_options.get("cond_or_uncond")
        k_ip = self._batched(self.k_cond, self.k_uncond, q, chunks)
        v_ip = self._batched(self.v_cond, self.v_uncond, q, chunks)
        ip = optimized_attention(q, k_ip, v_ip, heads, attn_precision=precision, transformer_options=extra_options)
        return out + ip * self.weight


# ------------------------------------------------------------------------------------------ applying


@dataclass(frozen=True)
class IPAdapterReport:
    ipadapter: str
    character: str
    layout: IPAdapterLayout
    references: int
    weight: float
    start_at: float
    end_at: float
    patched: tuple[str, ...]

    def text(self) -> str:
        who = f" (character '{self.character}')" if self.character else ""
        head = f"IP-Adapter '{self.ipadapter}'{who}: {self.layout.describe()}"
        if not self.patched:
            return f"{head}\nweight {self.weight:g}: not applied, the model passes through unpatched"
        window = (f"from {self.start_at:.0%} to {self.end_at:.0%} of sampling" if self.start_at < self.end_at
                  else f"empty window ({self.start_at:.0%} to {self.end_at:.0%}): never active")
        refs = f"{self.references} reference image{'s' if self.references != 1 else ''}" + \
            (" averaged" if self.references > 1 else "")
        return "\n".join([head, f"{refs}; weight {self.weight:g} {window}",
                          f"{len(self.patched)} cross-attention layers patched: {', '.join(self.patched)}"])


def _existing_attn2_patch(model, slot: CrossAttentionSlot):
    replace = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})
    return replace.get((slot.block, slot.number, slot.transformer_index)) or replace.get((slot.block, slot.number))


def encode_references(clip_vision, image, layout: IPAdapterLayout):
    """CLIP vision output of the reference batch, averaged over the batch, and of the unconditional input
    (zeros for the standard layout; a black image's hidden states otherwise), as ``[1, ...]`` float32."""
    import torch

    embeds = clip_vision.encode_image(image, crop=True)[layout.embed_input].float()
    cond = embeds.mean(dim=0, keepdim=True)
    if layout.embed_input == "image_embeds":
        uncond = torch.zeros_like(cond)
    else:
        black = torch.zeros((1, 224, 224, 3), dtype=image.dtype, device=image.device)
        uncond = clip_vision.encode_image(black, crop=True)[layout.embed_input].float()
    return cond, uncond


def apply_ipadapter(model, clip_vision, image, ip_sd: Mapping[str, Any], weight: float = 0.8, start_at: float = 0.0,
                    end_at: float = 1.0, ipadapter_name: str = "", character: str = ""):
    """Patch a clone of *model* with the IP-Adapter in *ip_sd* for the reference *image* batch.

    Returns ``(model, IPAdapterReport)``. Weight 0 gives an unpatched clone (after the file and the model were
    checked to fit). Raises :class:`IPAdapterFamilyError`, :class:`IPAdapterLayoutError` or
    :class:`IPAdapterClipVisionError` with a message naming the file and the character."""
    import torch
    import torch.nn.functional as F

    ip_sd = flatten_state_dict(ip_sd)
    layout = detect_layout(ip_sd, ipadapter_name)
    slots = cross_attention_slots(model)
    check_fit(layout, slots, ipadapter_name, character, model_family(model))
    new_model = model.clone()
    if weight == 0:
        log.info("IP-Adapter %s: weight 0, model passed through unpatched", ipadapter_name)
        return new_model, IPAdapterReport(ipadapter_name, character, layout, int(image.shape[0]), weight, start_at,
                                          end_at, ())

    cond, uncond = encode_references(clip_vision, image, layout)
    if cond.shape[-1] != layout.embed_dim:
        raise IPAdapterClipVisionError(clip_vision_message(ipadapter_name, character, layout, int(cond.shape[-1])))

    device = model.load_device
    proj_sd = {k: v.to(device=device, dtype=torch.float32) for k, v in ip_sd.items() if k.startswith("image_proj.")}
    with torch.no_grad():
        tokens = project(proj_sd, torch.cat([cond, uncond]).to(device), layout)
        tokens_cond, tokens_uncond = tokens[:1], tokens[1:]
        sampling = model.get_model_object("model_sampling")
        sigma_start = float(sampling.percent_to_sigma(start_at))
        sigma_end = float(sampling.percent_to_sigma(end_at))
        patched = []
        for (n, _out, _in), slot in zip(layout.layers, slots):
            to_k = ip_sd[f"ip_adapter.{n}.to_k_ip.weight"].to(device=device, dtype=torch.float32)
            to_v = ip_sd[f"ip_adapter.{n}.to_v_ip.weight"].to(device=device, dtype=torch.float32)
            patch = IPAdapterAttention(weight, sigma_start, sigma_end,
                                       F.linear(tokens_cond, to_k), F.linear(tokens_cond, to_v),
                                       F.linear(tokens_uncond, to_k), F.linear(tokens_uncond, to_v),
                                       base=_existing_attn2_patch(new_model, slot))
            new_model.set_model_attn2_replace(patch, slot.block, slot.number, slot.transformer_index)
            patched.append(slot.label())
    report = IPAdapterReport(ipadapter_name, character, layout, int(image.shape[0]), weight, start_at, end_at,
                             tuple(patched))
    log.info("IP-Adapter %s%s: %s; %d layers patched", ipadapter_name,
             f" ({character})" if character else "", layout.describe(), len(patched))
    return new_model, report


def apply_character_ipadapter(model, clip_vision, image, ipadapter_name: str, weight: float = 0.8,
                              start_at: float = 0.0, end_at: float = 1.0, character: str = "",
                              ip_sd: Mapping[str, Any] | None = None):
    """Load *ipadapter_name* from ``models/ipadapter`` (unless *ip_sd* is given) and :func:`apply_ipadapter` it."""
    if ip_sd is None:
        ip_sd = load_ipadapter_file(ipadapter_name)
    return apply_ipadapter(model, clip_vision, image, ip_sd, weight, start_at, end_at, ipadapter_name, character)


__all__ = ["IPADAPTER_FOLDER", "IPAdapterError", "IPAdapterNotFoundError", "IPAdapterLayoutError",
           "IPAdapterFamilyError", "IPAdapterClipVisionError", "IPAdapterLayout", "CrossAttentionSlot",
           "IPAdapterReport", "IPAdapterAttention", "flatten_state_dict", "guess_ipadapter_family", "detect_layout",
           "check_fit", "family_message", "clip_vision_message", "cross_attention_slots",
           "ipadapter_names", "ipadapter_missing", "ipadapter_path", "load_ipadapter_file", "project", "resample",
           "encode_references", "apply_ipadapter", "apply_character_ipadapter"]
