"""Picture nodes: how much generated frames look like a character's reference images, as a score and a verdict.

A thin shell over :mod:`.consistency`. The CLIP vision model comes from core's ``CLIPVisionLoader`` (Load CLIP
Vision). The node is an output node so that the score reaches ComfyUI's ``/history``: the renderer reads
``outputs[node_id]["consistency"][0]``, a dict with exactly the keys of
:meth:`~.consistency.ConsistencyResult.to_json`. The module imports without ComfyUI or torch.
"""
from __future__ import annotations

from . import consistency


class AnimStudioConsistencyScore:
    DESCRIPTION = ("Scores how much a character in generated frames looks like the character's reference images: "
                   "the CLIP vision similarity of each frame to the mean of the references, averaged over the "
                   "frames (1.0: the same image), and, where faces are found on both, a face identity score (1 - "
                   "the distance of dlib's face embeddings) that then decides. Passes when the deciding score is "
                   "at least its threshold; the scores also go to the run's history, so a render can flag or redo "
                   "shots where the character drifted. Load the model with Load CLIP Vision.")
    CATEGORY = "animstudio/picture"
    RETURN_TYPES = ("FLOAT", "BOOLEAN", "STRING")
    RETURN_NAMES = ("score", "passed", "report")
    OUTPUT_TOOLTIPS = ("The deciding score: the face identity score where faces were compared (1 - face distance), "
                       "else the mean over the frames of each frame's CLIP cosine similarity to the references' mean "
                       "(about -1 to 1; 1.0 means the same image).",
                       "True when the score is at least the threshold.",
                       "The score, the verdict, and per-frame scores with the lowest frame, as text.")
    FUNCTION = "score"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "clip_vision": ("CLIP_VISION", {
                "tooltip": "The CLIP vision model that encodes both the frames and the references (from Load CLIP "
                           "Vision). Scores are comparable only between runs with the same model."}),
            "images": ("IMAGE", {
                "tooltip": "The generated frames or keyframe to check; a batch is scored frame by frame and "
                           "averaged."}),
            "reference_images": ("IMAGE", {
                "tooltip": "The character's reference images, as a batch; they are averaged into one reference, "
                           "so several views of the character make a steadier score than one."}),
            "threshold": ("FLOAT", {
                "default": consistency.DEFAULT_THRESHOLD, "min": 0.0, "max": 1.0, "step": 0.01,
                "tooltip": "The lowest score that passes. 0.60-0.65 suits a real CLIP vision model; raise it to "
                           "be stricter."}),
            "character": ("STRING", {
                "default": "",
                "tooltip": "The character's name, carried into the report and the history output."}),
        }, "optional": {
            "method": (list(consistency.METHODS), {
                "default": "auto",
                "tooltip": "What decides: auto (the face identity score wherever faces are found on the references "
                           "and the frames, CLIP similarity elsewhere, with a note), clip, or face (needs the "
                           "faces extra: pip install 'animstudio[faces]')."}),
            "face_threshold": ("FLOAT", {
                "default": consistency.DEFAULT_FACE_THRESHOLD, "min": 0.0, "max": 1.0, "step": 0.01,
                "tooltip": "The lowest face identity score that passes (1 - face distance: dlib's model puts two "
                           "pictures of one person within 0.6, so 0.4)."}),
        }}

    def score(self, clip_vision, images, reference_images, threshold, character="", method="auto",
              face_threshold=consistency.DEFAULT_FACE_THRESHOLD):
        result = consistency.score_character(clip_vision, images, reference_images, threshold, character, method,
                                             face_threshold)
        return {"ui": {"consistency": [result.to_json()]},
                "result": (result.score, result.passed, result.text())}


NODE_CLASS_MAPPINGS = {
    "AnimStudioConsistencyScore": AnimStudioConsistencyScore,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AnimStudioConsistencyScore": "Character Consistency Score",
}
