"""Picture stage: what shapes a generated keyframe before sampling, starting with per-character LoRAs
applied through ComfyUI's own LoRA code, with a report of every LoRA key that did not apply."""
