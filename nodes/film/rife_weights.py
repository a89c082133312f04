"""Finding and reading RIFE weights: ComfyUI's ``models/rife`` or ``$ANIMSTUDIO_RIFE_MODEL``, any of the
checkpoint formats Practical-RIFE and its ports publish, and the network's layout read from the tensors
(so one loader serves v4.5 to v4.2x). Nothing is ever downloaded; torch is imported only to read a file.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .. import boundary

log = logging.getLogger(__name__)

ENV_VAR = "ANIMSTUDIO_RIFE_MODEL"
WEIGHT_SUFFIXES = (".pkl", ".pth", ".pt", ".safetensors")
#: Names looked for first when no model is named (Practical-RIFE's own file name first).
DEFAULT_NAMES = ("flownet.pkl", "flownet.pth", "flownet.safetensors")
#: Checkpoint entries that are training-only parts of some releases, not used for inference.
_UNUSED_PREFIXES = ("teacher.", "caltime.", "contextnet.", "unet.")
#: Pixels processed per forward pass (frames × width × height): bounds memory on big frames.
_PASS_PIXELS_CUDA = 8_000_000
_PASS_PIXELS_CPU = 2_000_000


class RifeModelError(ValueError):
    """The weights file is not a RIFE IFNet this loader understands; the message says what is wrong."""


# --- finding the weights ---------------------------------------------------------------------------------

def rife_folders() -> list[Path]:
    """ComfyUI's folders for RIFE weights (``models/rife``, or what extra_model_paths registers); [] outside ComfyUI."""
    fp = boundary.comfy_folder_paths()
    if fp is None:
        return []
    if "rife" in getattr(fp, "folder_names_and_paths", {}):
        return [Path(p) for p in fp.get_folder_paths("rife")]
    return [Path(fp.models_dir) / "rife"]


def list_rife_models() -> list[str]:
    """Weight files in the RIFE folders, by name (what the node offers)."""
    names = set()
    for folder in rife_folders():
        if folder.is_dir():
            names.update(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES)
    return sorted(names)


def _where_it_belongs() -> str:
    folders = rife_folders()
    return str(folders[0]) if folders else "ComfyUI/models/rife"


def find_rife_weights(name: str = "") -> Path:
    """The weights file to load: ``name`` (a file in the RIFE folders, or a path), else ``$ANIMSTUDIO_RIFE_MODEL``,
    else ``flownet.pkl`` or the only weights file in the RIFE folders.

    Raises FileNotFoundError naming the file and the folder it belongs in.
    """
    folders = rife_folders()
    wanted = (name or "").strip()
    if wanted:
        direct = Path(wanted).expanduser()
        if direct.is_absolute() and direct.is_file():
            return direct
        for folder in folders:
            if (folder / wanted).is_file():
                return folder / wanted
        raise FileNotFoundError(f"RIFE weights {wanted!r} not found: put the file in {_where_it_belongs()} "
                                f"(Animation Studio never downloads weights)")
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        path = Path(env).expanduser()
        if path.is_file():
            return path
        raise FileNotFoundError(f"${ENV_VAR} is {env!r}, which is not a file: point it at the RIFE weights "
                                f"(e.g. flownet.pkl from Practical-RIFE's train_log folder)")
    for default in DEFAULT_NAMES:
        for folder in folders:
            if (folder / default).is_file():
                return folder / default
    found = list_rife_models()
    if found:
        if len(found) > 1:
            log.info("several RIFE weight files (%s): using %s (the last by name); name one to choose",
                     ", ".join(found), found[-1])
        return find_rife_weights(found[-1])
    raise FileNotFoundError(
        f"no RIFE weights: put flownet.pkl (Practical-RIFE v4.x, from its train_log folder; rife4x.pth or "
        f".safetensors files also work) in {_where_it_belongs()}, or set ${ENV_VAR} to the file's path. "
        f"Animation Studio never downloads weights; the 'flow' engine needs none.")


def read_state_dict(path: str | Path) -> dict:
    """The checkpoint's tensors by name, on the CPU (``module.`` prefixes from multi-GPU training removed)."""
    import torch

    path = Path(path)
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated download, a pickle of something else, ...
        raise RifeModelError(f"cannot read RIFE weights {path}: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
        raise RifeModelError(f"{path} does not hold a state dict of tensors")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


# --- the architecture, read from the checkpoint ----------------------------------------------------------

@dataclass(frozen=True)
class BlockShape:
    in_planes: int
    channels: int
    residuals: int
    out_planes: int   # channels after the pixel shuffle: 4 flow + 1 mask (+ unused or passed-on features)


@dataclass(frozen=True)
class IFNetLayout:
    blocks: tuple[BlockShape, ...]
    encoder: tuple[str, ...]   # the encoder's layer names in order ("" when there is none)
    features: int              # encoder channels per frame (0: none, v4.5/4.6)
    passed: int                # feature channels a block hands to the next (v4.22 on; else 0)

    @property
    def scales(self) -> list[int]:
        return [2 ** i for i in reversed(range(len(self.blocks)))]

    @property
    def version_hint(self) -> str:
        if not self.features:
            return "v4.5/v4.6 style (no encoder)"
        return "v4.22+ style (encoder, features passed on)" if self.passed else "v4.7–v4.21 style (encoder)"


def _shape(state: dict, key: str, source: str) -> tuple[int, ...]:
    if key not in state:
        raise RifeModelError(f"{source} is not a complete RIFE v4.x IFNet: it has no {key!r}")
    return tuple(state[key].shape)


def _expect(state: dict, key: str, shape: tuple[int, ...], source: str) -> None:
    found = _shape(state, key, source)
    if found != shape:
        raise RifeModelError(f"{source}: {key!r} has shape {list(found)}, a RIFE IFNet needs {list(shape)} here")


def describe_layout(state: dict, source: str = "the checkpoint") -> IFNetLayout:
    """Read the network's shape from its weights, checking every tensor the forward pass will use."""
    block_ids = sorted({int(m.group(1)) for k in state if (m := re.match(r"block(\d+)\.", k))})
    if not block_ids:
        raise RifeModelError(f"{source} has no IFNet blocks ('block0.…'): not RIFE weights")
    if block_ids != list(range(len(block_ids))):
        raise RifeModelError(f"{source}: IFNet blocks {block_ids} are not numbered 0..{len(block_ids) - 1}")
    if "block0.convblock.0.conv.weight" not in state and "block0.convblock.0.0.weight" in state:
        raise RifeModelError(f"{source} looks like RIFE v4.0–v4.4 (plain convolution blocks): only v4.5 and later "
                             f"(residual blocks, e.g. flownet.pkl of v4.6 or newer) are supported")
    features, encoder = 0, ()
    if any(k.startswith("encode.") for k in state):
        if "encode.cnn0.weight" in state:   # the "Head" encoder of later releases
            encoder = ("cnn0", "cnn1", "cnn2", "cnn3")
        else:                               # an nn.Sequential of convolutions
            encoder = tuple(sorted({k.split(".")[1] for k in state if k.startswith("encode.")}, key=int))
        last = _shape(state, f"encode.{encoder[-1]}.weight", source)
        if len(last) != 4 or last[2] != 4:
            raise RifeModelError(f"{source}: the encoder should end in a 4×4 transposed convolution, "
                                 f"'encode.{encoder[-1]}.weight' has shape {list(last)}")
        features = last[1]
        previous = 3
        for name in encoder:
            weight = _shape(state, f"encode.{name}.weight", source)
            _shape(state, f"encode.{name}.bias", source)
            takes = weight[0] if weight[2] == 4 else weight[1]
            if takes != previous:
                raise RifeModelError(f"{source}: 'encode.{name}.weight' takes {takes} channels, "
                                     f"the layer before gives {previous}")
            previous = weight[1] if weight[2] == 4 else weight[0]
    blocks = []
    for i in block_ids:
        p = f"block{i}."
        first = _shape(state, p + "conv0.0.0.weight", source)
        half, in_planes = first[0], first[1]
        channels = _shape(state, p + "conv0.1.0.weight", source)[0]
        _expect(state, p + "conv0.0.0.weight", (half, in_planes, 3, 3), source)
        _expect(state, p + "conv0.0.0.bias", (half,), source)
        _expect(state, p + "conv0.1.0.weight", (channels, half, 3, 3), source)
        _expect(state, p + "conv0.1.0.bias", (channels,), source)
        residuals = len({k.split(".")[2] for k in state if k.startswith(p + "convblock.")})
        if residuals == 0:
            raise RifeModelError(f"{source}: block{i} has no residual blocks ('{p}convblock.0.conv.weight')")
        for r in range(residuals):
            _expect(state, f"{p}convblock.{r}.conv.weight", (channels, channels, 3, 3), source)
            _expect(state, f"{p}convblock.{r}.conv.bias", (channels,), source)
            _expect(state, f"{p}convblock.{r}.beta", (1, channels, 1, 1), source)
        last = _shape(state, p + "lastconv.0.weight", source)
        if len(last) != 4 or last[0] != channels or last[1] % 4 or last[2:] != (4, 4):
            raise RifeModelError(f"{source}: '{p}lastconv.0.weight' has shape {list(last)}, a RIFE IFNet needs "
                                 f"[{channels}, 4·k, 4, 4]")
        _expect(state, p + "lastconv.0.bias", (last[1],), source)
        out_planes = last[1] // 4
        if out_planes < 5:
            raise RifeModelError(f"{source}: block{i} gives {out_planes} channels, fewer than flow (4) and mask (1)")
        blocks.append(BlockShape(in_planes, channels, residuals, out_planes))
    passed = blocks[0].out_planes - 5 if blocks[0].out_planes > 6 else 0
    for i, block in enumerate(blocks):
        need = 7 + 2 * features if i == 0 else 12 + 2 * features + passed
        if block.in_planes != need:
            raise RifeModelError(
                f"{source}: block{i} takes {block.in_planes} input channels; with {features} encoder features "
                f"per frame{f' and {passed} passed on' if passed else ''} a RIFE IFNet block takes {need}. "
                f"The file is truncated, mixed, or a RIFE layout this loader does not know")
    return IFNetLayout(tuple(blocks), encoder, features, passed)
