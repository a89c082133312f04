"""The keyframe model families a project may draw its generated keyframes with (``project.keyframe_model``) and the
files of the reference-edit ones (``project.keyframe_models``): ``checkpoint`` (an SD checkpoint with each
character's LoRA and IP-Adapter), ``qwen_edit`` (Qwen-Image-Edit-Plus, up to three reference pictures) and
``kontext`` (Flux Kontext, a ``ReferenceLatent`` chain). The reference families edit every keyframe from the
character sheets of the characters in the shot."""
from __future__ import annotations

from dataclasses import dataclass

from .video_models import family_settings

KEYFRAME_FAMILIES = ("checkpoint", "qwen_edit", "kontext")
REFERENCE_FAMILIES = ("qwen_edit", "kontext")
QWEN_EDIT_MAX_REFERENCES = 3  # TextEncodeQwenImageEditPlus takes image1..image3


@dataclass(frozen=True)
class QwenEditModels:
    """Qwen-Image-Edit-Plus (2509): its DiT, Qwen2.5-VL 7B as text and picture encoder, the Qwen-Image VAE."""
    unet: str
    text_encoder: str
    vae: str
    steps: int = 20
    cfg: float = 2.5
    shift: float = 3.0
    sampler: str = "euler"
    scheduler: str = "simple"
    reference_megapixels: float = 1.0


@dataclass(frozen=True)
class KontextModels:
    """Flux Kontext dev: its DiT, the CLIP-L and T5-XXL text encoders, the Flux autoencoder."""
    unet: str
    clip_l: str
    t5xxl: str
    vae: str
    steps: int = 20
    guidance: float = 2.5
    sampler: str = "euler"
    scheduler: str = "simple"
    reference_megapixels: float = 1.0


@dataclass(frozen=True)
class KeyframeModels:
    """The reference-edit model files per family (``project.keyframe_models``); a family left out is not used."""
    qwen_edit: QwenEditModels | None = None
    kontext: KontextModels | None = None

    @classmethod
    def from_json(cls, raw: dict) -> "KeyframeModels":
        return cls(**family_settings({"qwen_edit": QwenEditModels, "kontext": KontextModels}, raw))
