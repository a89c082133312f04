"""Picture nodes: a character's reference images steer the model through an IP-Adapter, refused when the file was
made for another model family or another CLIP vision model.

A thin shell over :mod:`.ipadapter`. The CLIP vision model comes from core's ``CLIPVisionLoader`` (Load CLIP
Vision); IP-Adapter files live in ``models/ipadapter`` (registered with ComfyUI here when core lacks it). The
module imports without ComfyUI or torch.
"""
from __future__ import annotations

from .. import boundary
from . import ipadapter

boundary.register_model_folder(ipadapter.IPADAPTER_FOLDER)  # so the folder is listed (model browser, extra paths) before the node is first used


class AnimStudioIPAdapter:
    DESCRIPTION = ("Makes generated pictures follow a character's reference images with an IP-Adapter: the images' "
                   "CLIP vision embedding (averaged over the batch) becomes a few image tokens that every "
                   "cross-attention layer attends to next to the prompt. Reads the standard (ip-adapter_sd15 / "
                   "_sdxl), plus and full-face layouts. An IP-Adapter made for another model family, or a CLIP vision "
                   "model of the wrong width, is refused with an error naming both. Weight 0 leaves the model "
                   "untouched. Chain one per character in the shot.")
    CATEGORY = "animstudio/picture"
    RETURN_TYPES = ("MODEL", "STRING")
    RETURN_NAMES = ("model", "report")
    OUTPUT_TOOLTIPS = ("The diffusion model with the IP-Adapter's cross-attention patches (unpatched at weight 0).",
                       "What was loaded: the file's layout, its image-token count, the reference images used and "
                       "the cross-attention layers patched.")
    FUNCTION = "apply"

    def __init__(self):
        self.loaded = None  # (path, modification time, state dict) of the last file

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The diffusion model the IP-Adapter is applied to."}),
            "clip_vision": ("CLIP_VISION", {
                "tooltip": "The CLIP vision model the IP-Adapter was trained with (Load CLIP Vision): ViT-H/14 for "
                           "most SD1.5 and SDXL adapters, ViT-bigG/14 for ip-adapter_sdxl."}),
            "image": ("IMAGE", {"tooltip": "The character's reference images; a batch of several is averaged into "
                                           "one embedding."}),
            "ipadapter_name": (ipadapter.ipadapter_names(), {
                "tooltip": "The IP-Adapter file in models/ipadapter (safetensors or the original .bin)."}),
            "weight": ("FLOAT", {"default": 0.8, "min": -1.0, "max": 5.0, "step": 0.01,
                                 "tooltip": "How strongly the reference images steer the picture (0: not at all, the "
                                            "model is passed through unchanged)."}),
            "start_at": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001,
                                   "tooltip": "Where in sampling the IP-Adapter starts to act (0: from the first "
                                              "step)."}),
            "end_at": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001,
                                 "tooltip": "Where in sampling the IP-Adapter stops acting (1: to the last step)."}),
            "character": ("STRING", {"default": "", "tooltip": "The character's name, used in messages only."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, ipadapter_name):
        return ipadapter.ipadapter_missing(ipadapter_name) or True

    def apply(self, model, clip_vision, image, ipadapter_name, weight, start_at, end_at, character=""):
        path = ipadapter.ipadapter_path(ipadapter_name)
        stamp = path.stat().st_mtime_ns
        if self.loaded is None or self.loaded[:2] != (path, stamp):
            self.loaded = None
            self.loaded = (path, stamp, ipadapter.load_ipadapter_file(ipadapter_name))
        new_model, report = ipadapter.apply_character_ipadapter(
            model, clip_vision, image, ipadapter_name, weight, start_at, end_at, character, ip_sd=self.loaded[2])
        return (new_model, report.text())


NODE_CLASS_MAPPINGS = {
    "AnimStudioIPAdapter": AnimStudioIPAdapter,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AnimStudioIPAdapter": "Character IP-Adapter (checked)",
}
