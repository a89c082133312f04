"""The "rife" interpolation engine: Practical-RIFE's IFNet v4.x, run with torch (on CUDA when there is one).

Why it is written out here rather than imported: RIFE ships as a weights file plus research code
that is not a package; the network is small, so it is defined below from its published description
(Huang et al., "Real-Time Intermediate Flow Estimation for Video Frame Interpolation", ECCV 2022,
and the Practical-RIFE v4 releases) as plain functional torch over the checkpoint's tensors. Its
shape is read from the checkpoint, so one loader serves the family from v4.5 to v4.2x:

* **IFBlock** ``blockN`` (4 or 5 of them, coarse to fine at scales 16/8/4/2/1 of the image):
  ``conv0`` = two stride-2 3×3 convolutions (LeakyReLU 0.2) down to ``c`` channels; ``convblock`` =
  residual 3×3 convolutions, each ``LeakyReLU(conv(x)·beta + x)``; ``lastconv`` = a 4×4 stride-2
  transposed convolution and a ×2 pixel shuffle back to full size. Its output is a flow pair
  (t→0 and t→1, 4 channels), a blend-mask logit, and from v4.22 on, 8 feature channels handed to
  the next block.
* **Encoder** ``encode`` (v4.7 on): a small convolution stack giving each frame ``F`` feature
  channels, warped along with the frames.
* Each block after the first sees both frames warped by the flow so far (and their warped
  features), the time ``t``, the mask, and the flow itself, and adds a correction. The result
  blends the two warped frames by ``sigmoid(mask)``.

Weights: ``flownet.pkl`` (Practical-RIFE's ``train_log``), ``rife4x.pth`` or ``.safetensors``, in
ComfyUI's ``models/rife`` folder (found through ``folder_paths`` inside ComfyUI) or at the path in
``$ANIMSTUDIO_RIFE_MODEL``. Nothing is ever downloaded. torch is imported only when a model loads.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

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

def _folder_paths():
    try:
        import folder_paths  # ComfyUI's; present only inside a ComfyUI process
    except ImportError:
        return None
    return folder_paths


def rife_folders() -> list[Path]:
    """ComfyUI's folders for RIFE weights (``models/rife``, or what extra_model_paths registers); [] outside ComfyUI."""
    fp = _folder_paths()
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


class IFNet:
    """RIFE's IFNet as functional torch over a checkpoint's tensors (see the module docstring)."""

    def __init__(self, state: dict, layout: IFNetLayout, device):
        import torch

        self.layout = layout
        self.device = torch.device(device)
        used = {k: v for k, v in state.items() if k.startswith(("block", "encode."))}
        self.w = {k: v.detach().to(self.device, torch.float32).contiguous() for k, v in used.items()}

    # layers
    def _conv(self, x, name, stride=1, act=True):
        import torch.nn.functional as F

        y = F.conv2d(x, self.w[name + ".weight"], self.w[name + ".bias"], stride=stride, padding=1)
        return F.leaky_relu(y, 0.2) if act else y

    def _deconv(self, x, name):
        import torch.nn.functional as F

        return F.conv_transpose2d(x, self.w[name + ".weight"], self.w[name + ".bias"], stride=2, padding=1)

    def _encode(self, image):
        import torch.nn.functional as F

        names = self.layout.encoder
        numbered = names[0].isdigit()
        x = image
        for i, name in enumerate(names):
            key = f"encode.{name}"
            x = self._deconv(x, key) if self.w[key + ".weight"].shape[2] == 4 else \
                self._conv(x, key, stride=2 if i == 0 else 1, act=False)
            last = i == len(names) - 1
            # Head encoders activate between layers; in a Sequential, an index left free held the activation
            if not last and (not numbered or int(names[i + 1]) > int(name) + 1):
                x = F.leaky_relu(x, 0.2)
        return x

    def _block(self, index, x, flow, scale):
        import torch
        import torch.nn.functional as F

        p = f"block{index}."
        if scale != 1:
            x = F.interpolate(x, scale_factor=1.0 / scale, mode="bilinear", align_corners=False)
        if flow is not None:
            if scale != 1:
                flow = F.interpolate(flow, scale_factor=1.0 / scale, mode="bilinear", align_corners=False) / scale
            x = torch.cat((x, flow), 1)
        feat = self._conv(self._conv(x, p + "conv0.0.0", stride=2), p + "conv0.1.0", stride=2)
        for r in range(self.layout.blocks[index].residuals):
            q = f"{p}convblock.{r}."
            feat = F.leaky_relu(self._conv(feat, q + "conv", act=False) * self.w[q + "beta"] + feat, 0.2)
        out = F.pixel_shuffle(self._deconv(feat, p + "lastconv.0"), 2)
        if scale != 1:
            out = F.interpolate(out, scale_factor=scale, mode="bilinear", align_corners=False)
        return out[:, :4] * scale, out[:, 4:5], out[:, 5:]

    @staticmethod
    def _warp(image, flow):
        """Sample ``image`` at each pixel plus ``flow`` (pixels), bilinear, edges repeated."""
        import torch
        import torch.nn.functional as F

        n, _, h, w = image.shape
        ys = torch.linspace(-1.0, 1.0, h, device=image.device).view(1, h, 1).expand(n, h, w)
        xs = torch.linspace(-1.0, 1.0, w, device=image.device).view(1, 1, w).expand(n, h, w)
        grid = torch.stack((xs + flow[:, 0] * (2.0 / max(w - 1, 1)), ys + flow[:, 1] * (2.0 / max(h - 1, 1))), -1)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)

    def __call__(self, img0, img1, timestep):
        """``img0``, ``img1``: ``[N, 3, H, W]`` in 0..1 (H, W multiples of 64); ``timestep``: ``[N, 1, H, W]``."""
        import torch

        layout = self.layout
        features = (self._encode(img0), self._encode(img1)) if layout.features else None
        flow = mask = passed = None
        warped0, warped1 = img0, img1
        for i, scale in enumerate(layout.scales):
            if flow is None:
                parts = [img0, img1] + (list(features) if features else []) + [timestep]
                flow, mask, passed = self._block(i, torch.cat(parts, 1), None, scale)
            else:
                parts = [warped0, warped1]
                if features:
                    parts += [self._warp(features[0], flow[:, :2]), self._warp(features[1], flow[:, 2:4])]
                parts += [timestep, mask]
                if layout.passed:
                    parts.append(passed)
                delta, new_mask, passed = self._block(i, torch.cat(parts, 1), flow, scale)
                flow = flow + delta
                # v4.5/4.6 refine the mask logit; encoder versions replace it
                mask = new_mask if layout.features else mask + new_mask
            warped0 = self._warp(img0, flow[:, :2])
            warped1 = self._warp(img1, flow[:, 2:4])
        weight = torch.sigmoid(mask)
        return warped0 * weight + warped1 * (1 - weight)


# --- running it ------------------------------------------------------------------------------------------

class RifeInterpolator:
    """A loaded RIFE model that makes in-between frames for batches of frame pairs."""

    def __init__(self, path: str | Path, device: str | None = None):
        import torch

        self.path = Path(path)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        state = read_state_dict(self.path)
        unused = sorted({k.split(".")[0] for k in state if k.startswith(_UNUSED_PREFIXES)})
        if unused:
            log.debug("%s: ignoring training-only parts %s", self.path.name, unused)
        self.layout = describe_layout(state, self.path.name)
        self.net = IFNet(state, self.layout, self.device)
        log.info("RIFE %s loaded on %s: %d blocks, %s", self.path.name, self.device, len(self.layout.blocks),
                 self.layout.version_hint)

    def between(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]], times: Sequence[float]) -> list[list[np.ndarray]]:
        """For each ``(a, b)`` pair (``uint8 [H, W, 3]``, one size), the in-betweens at ``times``.

        Pairs and times are batched into as few forward passes as fit :data:`_PASS_PIXELS_CUDA` (or _CPU).
        """
        import torch
        import torch.nn.functional as F

        if not pairs or not times:
            return [[] for _ in pairs]
        h, w = pairs[0][0].shape[:2]
        ph, pw = -(-h // 64) * 64, -(-w // 64) * 64
        jobs = [(i, float(t)) for i in range(len(pairs)) for t in times]
        budget = _PASS_PIXELS_CUDA if str(self.device).startswith("cuda") else _PASS_PIXELS_CPU
        per_pass = max(1, budget // (ph * pw))
        results: list[list[np.ndarray]] = [[] for _ in pairs]

        def tensor(frames):
            array = np.stack(frames).astype(np.float32) / 255.0
            batch = torch.from_numpy(array).permute(0, 3, 1, 2).to(self.device)
            return F.pad(batch, (0, pw - w, 0, ph - h))

        with torch.inference_mode():
            for start in range(0, len(jobs), per_pass):
                part = jobs[start:start + per_pass]
                img0 = tensor([pairs[i][0][..., :3] for i, _ in part])
                img1 = tensor([pairs[i][1][..., :3] for i, _ in part])
                steps = torch.tensor([t for _, t in part], dtype=torch.float32, device=self.device)
                timestep = steps.view(-1, 1, 1, 1).expand(-1, 1, ph, pw)
                out = self.net(img0, img1, timestep)[:, :, :h, :w]
                frames = (out.clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                for (i, _), frame in zip(part, frames):
                    results[i].append(np.ascontiguousarray(frame))
        return results


_loaded: dict[tuple, RifeInterpolator] = {}


def load_rife(name: str = "", device: str | None = None) -> RifeInterpolator:
    """The RIFE model (see :func:`find_rife_weights`), loaded once and kept while it is the one in use."""
    if importlib.util.find_spec("torch") is None:
        raise RuntimeError("the 'rife' engine needs torch (inside ComfyUI it is there; elsewhere install "
                           "animstudio[torch]); the 'flow' engine needs no torch")
    path = find_rife_weights(name)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, device)
    if key not in _loaded:
        _loaded.clear()  # one model at a time: switching models frees the last one
        _loaded[key] = RifeInterpolator(path, device)
    return _loaded[key]
