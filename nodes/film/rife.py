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
from pathlib import Path
from typing import Sequence

import numpy as np

from .rife_weights import (_PASS_PIXELS_CPU, _PASS_PIXELS_CUDA, _UNUSED_PREFIXES, IFNetLayout,
                           describe_layout, read_state_dict)
from .rife_weights import RifeModelError, find_rife_weights, list_rife_models  # noqa: F401  (public names)

log = logging.getLogger(__name__)


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
