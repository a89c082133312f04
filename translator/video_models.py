"""The video models a project names: the image-to-video families (``project.motion_models``) and the talking
families (``project.talk_models``), their settings as frozen dataclasses, and the frame windows the talking
families render a shot in (Wan's 4k+1 grid)."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class WanModels:
    unet: str
    text_encoder: str
    vae: str
    clip_vision: str | None = None
    steps: int = 20
    cfg: float = 6.0
    shift: float = 8.0
    fps: int = 16
    max_frames: int = 81


@dataclass(frozen=True)
class LtxModels:
    checkpoint: str
    text_encoder: str
    steps: int = 30
    cfg: float = 3.0
    fps: int = 24
    max_frames: int = 121


@dataclass(frozen=True)
class AnimateDiffModels:
    motion_model: str
    beta_schedule: str = "autoselect"
    fps: int = 8
    max_frames: int = 32


def family_settings(kinds: dict[str, type], raw: dict) -> dict:
    """Each model family's settings (``{family: {field: value}}`` from the storyboard) as its dataclass in ``kinds``,
    its integer fields as int: JSON Schema counts 16.0 as an integer, and the graph should carry 16."""
    out = {}
    for name, value in raw.items():
        integers = {f.name for f in fields(kinds[name]) if f.type in ("int", int)}
        out[name] = kinds[name](**{k: int(v) if k in integers else v for k, v in value.items()})
    return out


@dataclass(frozen=True)
class PhantomModels:
    """Wan Phantom (a Wan 2.1 text-to-video DiT that takes subject pictures): frames at 16 fps on the 4k+1 grid."""
    unet: str
    text_encoder: str
    vae: str
    steps: int = 20
    cfg: float = 5.0
    shift: float = 5.0
    fps: int = 16
    max_frames: int = 81


MOTION_FAMILIES = ("wan", "ltx", "animatediff", "phantom")
AUTO_MOTION_FAMILIES = ("wan", "ltx", "animatediff")  # image-to-video: what `auto` picks from; phantom is named


@dataclass(frozen=True)
class MotionModels:
    """The video model files per motion family (``project.motion_models``); a family left out is not used."""
    wan: WanModels | None = None
    ltx: LtxModels | None = None
    animatediff: AnimateDiffModels | None = None
    phantom: PhantomModels | None = None

    @classmethod
    def from_json(cls, raw: dict) -> "MotionModels":
        return cls(**family_settings({"wan": WanModels, "ltx": LtxModels, "animatediff": AnimateDiffModels,
                                      "phantom": PhantomModels}, raw))

    @property
    def configured(self) -> tuple[str, ...]:
        return tuple(name for name in MOTION_FAMILIES if getattr(self, name) is not None)


TALK_FAMILIES = ("s2v", "humo")


@dataclass(frozen=True)
class S2VModels:
    """Wan2.2-S2V: frames at 16 fps in windows of ``window_frames`` (4k+1), chained up to ``max_windows``."""
    unet: str
    text_encoder: str
    vae: str
    audio_encoder: str
    steps: int = 20
    cfg: float = 6.0
    shift: float = 8.0
    fps: int = 16
    window_frames: int = 77
    max_windows: int = 12
    sampler: str = "uni_pc"
    scheduler: str = "simple"


@dataclass(frozen=True)
class HuMoModels:
    """HuMo: one window of at most ``max_frames`` (4k+1) at 25 fps."""
    unet: str
    text_encoder: str
    vae: str
    audio_encoder: str
    steps: int = 30
    cfg: float = 5.0
    shift: float = 8.0
    fps: int = 25
    max_frames: int = 97
    sampler: str = "euler"
    scheduler: str = "simple"


@dataclass(frozen=True)
class TalkModels:
    """The audio-driven video model files per talking family (``project.talk_models``)."""
    s2v: S2VModels | None = None
    humo: HuMoModels | None = None

    @classmethod
    def from_json(cls, raw: dict) -> "TalkModels":
        return cls(**family_settings({"s2v": S2VModels, "humo": HuMoModels}, raw))

    @property
    def configured(self) -> tuple[str, ...]:
        return tuple(name for name in TALK_FAMILIES if getattr(self, name) is not None)


def _grid(frames: int) -> int:
    """The least frame count on Wan's 4k+1 grid that holds ``frames``."""
    return 4 * math.ceil((max(1, frames) - 1) / 4) + 1


def s2v_windows(settings: S2VModels, seconds: float) -> tuple[int, ...]:
    """S2V window lengths (each 4k+1 frames) covering ``seconds``: the latent frames shared evenly over the fewest
    windows of at most ``window_frames``; the chain decodes to ``4 * (latents - 1) + 1`` frames."""
    latents = (_grid(round(seconds * settings.fps)) - 1) // 4 + 1
    per_window = (settings.window_frames - 1) // 4 + 1
    count = math.ceil(latents / per_window)
    base, extra = divmod(latents, count)
    return tuple(4 * (base + (k < extra) - 1) + 1 for k in range(count))


def humo_length(settings: HuMoModels, seconds: float) -> int:
    """HuMo frames (4k+1) for ``seconds`` at its 25 fps."""
    return _grid(round(seconds * settings.fps))
