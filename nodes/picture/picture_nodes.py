"""Picture nodes: a character's LoRA on the model and CLIP, refused when it was made for another model family; a
LoRA trained in the graph saved where loaders find it.

Thin shells over :mod:`.lora` and :mod:`.lora_training`. ComfyUI (and torch) are needed only when the node runs; the module imports
without them, so the pack still loads in the embedded engine.
"""
from __future__ import annotations

from . import lora, lora_training


class AnimStudioCharacterLoRA:
    DESCRIPTION = ("Applies one character's LoRA to the model and CLIP through ComfyUI's own LoRA code, like Load "
                   "LoRA, but never silently: every LoRA key that did not apply is listed in the report, and a LoRA "
                   "made for another model family (say an SDXL LoRA on an SD1.5 checkpoint) is refused with an "
                   "error naming both families. Chain one per character in the shot.")
    CATEGORY = "animstudio/picture"
    RETURN_TYPES = ("MODEL", "CLIP", "STRING")
    RETURN_NAMES = ("model", "clip", "report")
    OUTPUT_TOOLTIPS = ("The diffusion model with the character's LoRA applied.",
                       "The CLIP text encoder with the character's LoRA applied.",
                       "The LoRA keys that were not applied, one per line with the reason; empty when all applied.")
    FUNCTION = "apply"

    def __init__(self):
        self.loaded = None  # (path, state dict) of the last file, as core's LoraLoader keeps it

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "The diffusion model the character's LoRA is applied to."}),
            "clip": ("CLIP", {"tooltip": "The CLIP text encoder the character's LoRA is applied to."}),
            "lora_name": (lora.lora_names(), {
                "tooltip": "The character's LoRA file in models/loras."}),
            "strength_model": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01,
                                         "tooltip": "How strongly the LoRA changes the diffusion model (0: not at "
                                                    "all; may be negative)."}),
            "strength_clip": ("FLOAT", {"default": 1.0, "min": -100.0, "max": 100.0, "step": 0.01,
                                        "tooltip": "How strongly the LoRA changes the CLIP text encoder (0: not at "
                                                   "all; may be negative)."}),
            "character": ("STRING", {"default": "", "tooltip": "The character's name, used in messages only."}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, lora_name):
        return lora.lora_missing(lora_name) or True

    def apply(self, model, clip, lora_name, strength_model, strength_clip, character=""):
        path = lora.lora_path(lora_name)
        if self.loaded is None or self.loaded[0] != path:
            self.loaded = None
            self.loaded = (path, lora.load_lora_file(lora_name))
        new_model, new_clip, report = lora.apply_character_lora(
            model, clip, lora_name, strength_model, strength_clip, character, lora_sd=self.loaded[1])
        return (new_model, new_clip, report.text())


class AnimStudioSaveCharacterLoRA:
    DESCRIPTION = ("Saves a LoRA trained by core's Train LoRA as models/loras/animstudio/<name>.safetensors, so the "
                   "Character LoRA node (and core's Load LoRA) can pick it at once, and keeps a copy in the output "
                   "folder that the run reports, so a headless client can download it. Training again under the "
                   "same name replaces the file.")
    CATEGORY = "animstudio/picture"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("lora_name",)
    OUTPUT_TOOLTIPS = ("The saved file's name as LoRA loaders take it (animstudio/<name>.safetensors).",)
    FUNCTION = "save"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "lora": ("LORA_MODEL", {"tooltip": "The trained LoRA: Train LoRA's 'lora' output (not the model with "
                                               "the LoRA applied)."}),
            "name": ("STRING", {"default": "character", "tooltip": "The file name (without extension) under "
                                                                   "models/loras/animstudio; unsafe characters "
                                                                   "become _."}),
        }, "optional": {
            "steps": ("INT", {"forceInput": True, "tooltip": "Train LoRA's 'steps' output, kept in the file's "
                                                             "metadata."}),
        }}

    def save(self, lora, name, steps=None):
        lora_name, _path, (subfolder, filename) = lora_training.save_character_lora(lora, name, steps)
        return {"ui": {"loras": [{"filename": filename, "subfolder": subfolder, "type": "output",
                                  "lora_name": lora_name}]}, "result": (lora_name,)}


NODE_CLASS_MAPPINGS = {
    "AnimStudioCharacterLoRA": AnimStudioCharacterLoRA,
    "AnimStudioSaveCharacterLoRA": AnimStudioSaveCharacterLoRA,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AnimStudioCharacterLoRA": "Character LoRA (checked)",
    "AnimStudioSaveCharacterLoRA": "Save Character LoRA",
}
