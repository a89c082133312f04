"""Video-model nodes: a thin shell over :mod:`.model_family`."""
from __future__ import annotations

from .model_family import CHECKED, FAMILY_NAMES, check_family


class AnimStudioCheckModelFamily:
    DESCRIPTION = ("Passes a diffusion model on unchanged when it is of the family the graph needs (Wan2.2-S2V, "
                   "HuMo, Wan image-to-video), read from what ComfyUI built from the file; otherwise stops the run "
                   "with an error naming the file, where it was named and what it is, before anything samples "
                   "with it. Put it right after Load Diffusion Model.")
    CATEGORY = "animstudio/video"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    OUTPUT_TOOLTIPS = ("The same model, checked.",)
    FUNCTION = "check"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The model from Load Diffusion Model (UNETLoader)."}),
            "family": (list(CHECKED), {"tooltip": "The family the graph needs: "
                                                  + ", ".join(f"{k} ({FAMILY_NAMES[k]})" for k in CHECKED) + "."}),
        }, "optional": {
            "file": ("STRING", {"default": "", "tooltip": "The model's file name, for the message only."}),
            "where": ("STRING", {"default": "", "tooltip": "Where the file was named (a storyboard JSON path), "
                                                           "for the message only."}),
        }}

    def check(self, model, family, file="", where=""):
        return (check_family(model, family, file, where),)


NODE_CLASS_MAPPINGS = {"AnimStudioCheckModelFamily": AnimStudioCheckModelFamily}
NODE_DISPLAY_NAME_MAPPINGS = {"AnimStudioCheckModelFamily": "Check Model Family (AnimStudio)"}
