"""Character LoRAs applied through ComfyUI's own LoRA code, with an account of every key that did not apply.

Core ``LoraLoader`` applies what it can and only logs the rest (``lora key not loaded: ...``), so a LoRA for
the wrong model family silently does nothing. Here the same steps as ``comfy.sd.load_lora_for_models`` run
(the key map from ``comfy.lora.model_lora_keys_unet`` / ``model_lora_keys_clip``, ``comfy.lora_convert``,
``comfy.lora.load_lora``, ``add_patches`` on clones), and on the way every LoRA key is accounted for:

* keys ``load_lora`` did not consume (core's own verdict: its ``lora key not loaded`` warnings are caught),
* keys whose patch targets a weight this MODEL / CLIP does not have (core's ``NOT LOADED``),
* keys whose low-rank factors do not fit the target weight's shape (core would log a shape mismatch at
  sampling time and leave the weight alone).

A file where (almost) nothing applies is refused with :class:`LoraFamilyError`, naming the family the file
looks like (from key names and tensor shapes) and the model's. ``comfy.*`` is imported inside the
functions: this module imports without ComfyUI or torch.
"""
from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import boundary

log = logging.getLogger(__name__)

LORA_FOLDER = "loras"
# refuse a file when fewer than this share of its keys apply (or none of its diffusion-model keys do)
MIN_APPLIED_SHARE = 0.1

# cross-attention context width (the text embedding the UNet attends to) -> family
_CONTEXT_FAMILIES = {768: "SD1.x", 1024: "SD2.x", 2048: "SDXL", 4096: "a T5-conditioned model"}
# text-encoder hidden width -> family (CLIP-L, OpenCLIP-H, OpenCLIP-bigG)
_TEXT_WIDTH_FAMILIES = {768: "SD1.x", 1024: "SD2.x", 1280: "SDXL"}
# ComfyUI model config class names -> the same family names
_CONFIG_FAMILIES = {"SD15": "SD1.x", "SD15_instructpix2pix": "SD1.x", "SD20": "SD2.x", "SD21UnclipL": "SD2.x",
                    "SD21UnclipH": "SD2.x", "SDXL": "SDXL", "SDXLRefiner": "SDXL", "SSD1B": "SDXL",
                    "Segmind_Vega": "SDXL", "KOALA_700M": "SDXL", "KOALA_1B": "SDXL", "SDXL_instructpix2pix": "SDXL",
                    "Flux": "Flux", "FluxSchnell": "Flux", "SD3": "SD3"}

_NOT_LOADED_MESSAGE = "lora key not loaded: "
_TEXT_KEY = re.compile(r"(^|[._])(lora_te\d?|lora_prior_te|text_encoders?(_\d)?|te\d?)[._]|text_model")
_CROSS_ATTN_IN = re.compile(r"attn2[._](to_[kv]|processor[._]to_[kv])[._]"
                            r"(lora_down|lora[._]down|lora_A|down)[._]weight$")
_TEXT_ATTN_IN = re.compile(r"(self_attn[._][qkv]_proj)[._](lora_down|lora[._]down|lora_A|down)[._]weight$")


class LoraError(ValueError):
    """A character LoRA that cannot be used; the message says why and what to do."""


class LoraNotFoundError(LoraError, FileNotFoundError):
    pass


class LoraFamilyError(LoraError):
    pass


@dataclass(frozen=True)
class LoraReport:
    """What became of a LoRA file's keys on one MODEL/CLIP pair."""
    lora: str
    character: str
    total_keys: int
    applied_keys: int
    not_loaded: tuple[str, ...]       # not consumed by comfy.lora.load_lora
    no_target: tuple[str, ...]        # consumed, but the weight they patch is not in this MODEL/CLIP
    shape_mismatch: tuple[str, ...]   # consumed, but the factors do not fit the weight's shape
    lora_family: str | None
    model_family: str

    @property
    def unused(self) -> tuple[str, ...]:
        return tuple(sorted({*self.not_loaded, *self.no_target, *self.shape_mismatch}))

    def text(self) -> str:
        """Empty when every key applied; otherwise one line per unused key, with the reason."""
        lines = [f"{k}: not loaded (no matching layer)" for k in sorted(self.not_loaded)]
        lines += [f"{k}: its target weight is not in this model/clip" for k in sorted(self.no_target)]
        lines += [f"{k}: shape does not fit the target weight" for k in sorted(self.shape_mismatch)]
        if not lines:
            return ""
        who = f" (character '{self.character}')" if self.character else ""
        return "\n".join([f"LoRA '{self.lora}'{who}: {len(self.unused)} of {self.total_keys} keys not applied"]
                         + lines)


# ------------------------------------------------------------------------------------------ families


def _shape(value: Any) -> tuple[int, ...]:
    shape = getattr(value, "shape", value)
    try:
        return tuple(int(n) for n in shape)
    except TypeError:
        return ()


def guess_lora_family(shapes: Mapping[str, Any]) -> str | None:
    """The model family a LoRA file was made for, from its key names and tensor shapes (``key -> tensor``
    or ``key -> shape``); None when nothing tells. E.g. ``"SDXL (cross-attention context 2048)"``."""
    keys = list(shapes)
    if any("double_blocks" in k or "single_blocks" in k or "single_transformer_blocks" in k for k in keys):
        return "Flux"
    if any("joint_blocks" in k for k in keys):
        return "SD3"
    for k in keys:
        if _CROSS_ATTN_IN.search(k):
            shape = _shape(shapes[k])
            if len(shape) >= 2 and shape[1] in _CONTEXT_FAMILIES:
                return f"{_CONTEXT_FAMILIES[shape[1]]} (cross-attention context {shape[1]})"
    if any(re.search(r"(^|[._])(lora_te2|text_encoder_2)[._]", k) for k in keys):
        return "SDXL (two text encoders)"
    for k in keys:
        if _TEXT_ATTN_IN.search(k):
            shape = _shape(shapes[k])
            if len(shape) >= 2 and shape[1] in _TEXT_WIDTH_FAMILIES:
                return f"{_TEXT_WIDTH_FAMILIES[shape[1]]} (text encoder width {shape[1]})"
    if any(re.search(r"(^|[._])input_blocks[._][4-8][._]1[._]transformer_blocks[._][2-9]", k) for k in keys):
        return "SDXL (deep transformer stacks)"
    return None


def model_family(model) -> str:
    """A ComfyUI MODEL's family in the same words as :func:`guess_lora_family`."""
    config = getattr(getattr(model, "model", None), "model_config", None)
    if config is None:
        return "unknown"
    name = type(config).__name__
    family = _CONFIG_FAMILIES.get(name, name)
    context = (getattr(config, "unet_config", None) or {}).get("context_dim")
    return f"{family} (cross-attention context {context})" if context else family


def is_text_encoder_key(key: str) -> bool:
    return bool(_TEXT_KEY.search(key))


# ------------------------------------------------------------------------------------------ the file


def lora_names() -> list[str]:
    """The files in ComfyUI's ``models/loras`` folders; empty outside ComfyUI."""
    return boundary.model_file_names(LORA_FOLDER)


def lora_missing(name: str) -> str | None:
    """Why *name* cannot be found (a sentence naming the file and ``models/loras``), or None."""
    return boundary.model_file_missing(LORA_FOLDER, name, "LoRA")


def lora_path(name: str) -> Path:
    return boundary.model_file_path(LORA_FOLDER, name, "LoRA", LoraNotFoundError)


def load_lora_file(name: str) -> dict:
    import comfy.utils

    return comfy.utils.load_torch_file(str(lora_path(name)), safe_load=True)


# ------------------------------------------------------------------------------------------ applying


class _NotLoadedCatcher(logging.Handler):
    """Collects the keys of ``comfy.lora.load_lora``'s ``lora key not loaded: KEY`` warnings (this thread only)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.keys: list[str] = []

    def emit(self, record):
        if record.thread != self.thread:
            return
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - someone else's malformed record
            return
        if message.startswith(_NOT_LOADED_MESSAGE):
            self.keys.append(message[len(_NOT_LOADED_MESSAGE):])


def load_patches(lora_sd: Mapping[str, Any], key_map: Mapping[str, Any]) -> tuple[dict, list[str]]:
    """``comfy.lora.load_lora(lora_sd, key_map)`` and the LoRA keys it did not consume, in file order.

    ``load_lora`` keeps its set of consumed keys to itself and logs each other key as
    ``lora key not loaded: KEY``; those records are caught. Where logging is switched off, the consumed
    set is rebuilt the way ``load_lora`` builds it (the adapters' ``loaded_keys`` and the per-key extras)."""
    import comfy.lora

    root = logging.getLogger()
    if logging.root.manager.disable < logging.WARNING:
        catcher = _NotLoadedCatcher()
        level = root.level
        root.addHandler(catcher)
        if root.getEffectiveLevel() > logging.WARNING:
            root.setLevel(logging.WARNING)
        try:
            patches = comfy.lora.load_lora(lora_sd, key_map)
        finally:
            root.removeHandler(catcher)
            root.setLevel(level)
        missing = set(catcher.keys)
        return patches, [k for k in lora_sd if k in missing]
    patches = comfy.lora.load_lora(lora_sd, key_map, log_missing=False)
    consumed: set[str] = set()
    for patch in patches.values():
        consumed.update(getattr(patch, "loaded_keys", ()) or ())
    for x in key_map:
        for extra in ("alpha", "dora_scale", "w_norm", "b_norm", "diff", "diff_b", "set_weight"):
            consumed.add(f"{x}.{extra}")
    return patches, [k for k in lora_sd if k not in consumed]


def _prefix_index(keys: Iterable[str]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for key in keys:
        for i, ch in enumerate(key):
            if ch == ".":
                index.setdefault(key[:i], []).append(key)
    return index


def _target_key(target) -> str:
    return target if isinstance(target, str) else target[0]


def _fits(patch, weight_shape: tuple[int, ...]) -> bool:
    """Whether a patch's factors can patch a weight of this shape (only the patch kinds that tell)."""
    if isinstance(patch, tuple) and len(patch) == 2 and patch[0] in ("diff", "set"):
        return _shape(patch[1][0]) == weight_shape or len(weight_shape) == 0
    weights = getattr(patch, "weights", None)
    if type(patch).__name__ == "LoRAAdapter" and weights and len(weights) >= 2:
        reshape = weights[5] if len(weights) > 5 else None
        if reshape is not None:
            return True
        up, down = _shape(weights[0]), _shape(weights[1])
        if len(up) < 1 or len(down) < 2 or len(weight_shape) < 2:
            return True
        # core multiplies the factors flattened past their first dimension and reshapes the product to the weight:
        # a conv's down factor may be (rank, in, k, k) (kohya) or (rank, in*k*k) (core's Train LoRA)
        return up[0] == weight_shape[0] and math.prod(down[1:]) == math.prod(weight_shape[1:])
    return True


def _weight_shapes(module) -> dict[str, tuple[int, ...]]:
    return {k: _shape(v) for k, v in module.state_dict().items()}


def apply_lora(model, clip, lora_sd: Mapping[str, Any], strength_model: float = 1.0, strength_clip: float = 1.0,
               lora_name: str = "", character: str = ""):
    """Apply a loaded LoRA state dict to MODEL and CLIP (either may be None) the way core's
    ``comfy.sd.load_lora_for_models`` does. Returns ``(model, clip, LoraReport)``; the inputs are not
    changed (clones are patched). A part whose strength is 0 is passed through unpatched.

    Raises :class:`LoraFamilyError` when (almost) none of the file's keys apply."""
    import comfy.lora
    import comfy.lora_convert

    key_map: dict = {}
    if model is not None:
        key_map = comfy.lora.model_lora_keys_unet(model.model, key_map)
    if clip is not None:
        key_map = comfy.lora.model_lora_keys_clip(clip.cond_stage_model, key_map)
    lora_sd = comfy.lora_convert.convert_lora(dict(lora_sd))
    patches, not_loaded = load_patches(lora_sd, key_map)

    # which file keys each patch came from
    by_prefix = _prefix_index(lora_sd)
    sources: dict[Any, set[str]] = {}
    for x, target in key_map.items():
        if target in patches:
            sources.setdefault(target, set()).update(by_prefix.get(x, ()))

    model_shapes = _weight_shapes(model.model) if model is not None else {}
    clip_shapes = _weight_shapes(clip.cond_stage_model) if clip is not None else {}
    no_target: set[str] = set()
    mismatch: set[str] = set()
    model_patches, clip_patches = {}, {}
    for target, patch in patches.items():
        key = _target_key(target)
        shapes = model_shapes if key in model_shapes else clip_shapes if key in clip_shapes else None
        if shapes is None:
            no_target.update(sources.get(target, ()))
        elif not _fits(patch, shapes[key]):
            mismatch.update(sources.get(target, ()))
        else:
            (model_patches if shapes is model_shapes else clip_patches)[target] = patch

    unused = set(not_loaded) | no_target | mismatch
    applied = len([k for k in lora_sd if k not in unused])
    diffusion_keys = [k for k in lora_sd if not is_text_encoder_key(k)]
    report = LoraReport(
        lora=lora_name, character=character, total_keys=len(lora_sd), applied_keys=applied,
        not_loaded=tuple(not_loaded), no_target=tuple(sorted(no_target - set(not_loaded))),
        shape_mismatch=tuple(sorted(mismatch - set(not_loaded) - no_target)),
        lora_family=guess_lora_family(lora_sd), model_family=model_family(model) if model is not None else "unknown")

    wrong_model = model is not None and diffusion_keys and not any(k not in unused for k in diffusion_keys)
    if lora_sd and (applied < MIN_APPLIED_SHARE * len(lora_sd) or wrong_model):
        raise LoraFamilyError(family_message(report, wrong_model=bool(wrong_model)))

    new_model, new_clip = model, clip
    if model is not None and strength_model != 0:
        new_model = model.clone()
        accepted = set(new_model.add_patches(model_patches, strength_model))
        _log_refused(model_patches, accepted)
    if clip is not None and strength_clip != 0:
        new_clip = clip.clone()
        accepted = set(new_clip.add_patches(clip_patches, strength_clip))
        _log_refused(clip_patches, accepted)
    if report.unused:
        log.warning("%s", report.text().splitlines()[0])
    return new_model, new_clip, report


def _log_refused(patches, accepted) -> None:
    for target in patches:
        if target not in accepted:  # cannot happen after the shape sort above; kept as core keeps it
            log.warning("LoRA patch NOT LOADED %s", target)


def family_message(report: LoraReport, wrong_model: bool = False) -> str:
    who = f" for character '{report.character}'" if report.character else ""
    looks = (f"the file looks made for {report.lora_family}" if report.lora_family
             else "its family could not be recognised from its keys")
    part = "none of its diffusion-model keys apply" if wrong_model else \
        f"only {report.applied_keys} of {report.total_keys} keys apply"
    return (f"LoRA '{report.lora}'{who} does not fit this model ({part}): {looks}, but the model is "
            f"{report.model_family}. Use a LoRA made for {report.model_family.split(' (')[0]} or pick a matching "
            f"checkpoint.")


def apply_character_lora(model, clip, lora_name: str, strength_model: float = 1.0, strength_clip: float = 1.0,
                         character: str = "", lora_sd: Mapping[str, Any] | None = None):
    """Load *lora_name* from ``models/loras`` (unless *lora_sd* is given) and :func:`apply_lora` it."""
    if lora_sd is None:
        lora_sd = load_lora_file(lora_name)
    return apply_lora(model, clip, lora_sd, strength_model, strength_clip, lora_name=lora_name, character=character)


__all__ = ["LoraError", "LoraNotFoundError", "LoraFamilyError", "LoraReport", "guess_lora_family", "model_family",
           "lora_names", "lora_missing", "lora_path", "load_lora_file", "load_patches", "apply_lora",
           "apply_character_lora", "family_message", "is_text_encoder_key"]

