"""Intent nodes: plan a storyboard from a request with a language model, and get one shot's image prompts.

Thin shells over the translator's planning (``translator/planning``: planning produces storyboards, so it lives on
the translator's side); like the embedded runner that loads ``nodes/`` only when it runs, these shells import it
only when ComfyUI asks for their inputs or runs them, so no module of ``nodes/`` imports the translator.
Storyboards travel as JSON strings, so a planned storyboard can be shown, edited, saved, or fed to the prompt node.
"""
from __future__ import annotations

import json


def _planning():
    from ...translator.planning import backends, planner
    return backends, planner


class AnimStudioPlanStoryboard:
    DESCRIPTION = ("Turns a request in plain words into an Animation Studio storyboard (JSON) with a language model: "
                   "a local .gguf through llama.cpp, constrained by a grammar so the answer always fits, or an "
                   "OpenAI-compatible server. The result is repaired and validated; dialogue keeps the request's language.")
    CATEGORY = "animstudio/llm"
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("storyboard",)
    OUTPUT_TOOLTIPS = ("The storyboard as JSON (format v1), valid and ready to save or render.",)
    FUNCTION = "plan"

    @classmethod
    def INPUT_TYPES(cls):
        backends, planner = _planning()
        return {"required": {
            "request": ("STRING", {"multiline": True, "default": "A fox and a crow argue over a piece of cheese.",
                                   "tooltip": "What the film is about, in any language; dialogue is written in it."}),
            "backend": (list(backends.BACKENDS), {"default": "llama_cpp",
                                         "tooltip": "llama_cpp: a .gguf model run in this process. openai: an "
                                                    "OpenAI-compatible server (key from $OPENAI_API_KEY)."}),
            "model": ("STRING", {"default": "",
                                 "tooltip": "llama_cpp: a .gguf file in models/LLM (or an absolute path). "
                                            "openai: the server's model name."}),
            "base_url": ("STRING", {"default": "http://127.0.0.1:8080",
                                    "tooltip": "The OpenAI-compatible server (openai backend only)."}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFF,
                             "tooltip": "Sampling seed; the same seed and request give the same storyboard."}),
        }, "optional": {
            "max_shots": ("INT", {"default": planner.MAX_SHOTS, "min": 1, "max": 32,
                                  "tooltip": "At most this many shots."}),
            "checkpoint": ("STRING", {"default": planner.DEFAULT_CHECKPOINT,
                                      "tooltip": "Checkpoint in models/checkpoints the shots are generated with."}),
        }}

    def plan(self, request, backend, model, base_url, seed, max_shots=None, checkpoint=None):
        backends, planner = _planning()
        board = planner.plan_storyboard(request, backends.make_backend(backend, model, base_url), seed=seed,
                                        shots_hint=max_shots or planner.MAX_SHOTS,
                                        checkpoint=checkpoint or planner.DEFAULT_CHECKPOINT)
        return (json.dumps(board, ensure_ascii=False, indent=2),)


class AnimStudioShotPrompts:
    DESCRIPTION = ("One shot's image prompts from a storyboard: style, framing, action, characters (trigger words "
                   "first) and place, plus the mood of its lines; the negative prompt adds common defects to avoid.")
    CATEGORY = "animstudio/llm"
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("positive", "negative")
    OUTPUT_TOOLTIPS = ("Positive prompt for the shot's keyframe.", "Negative prompt for the shot's keyframe.")
    FUNCTION = "prompts"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "storyboard": ("STRING", {"multiline": True, "default": "",
                                      "tooltip": "A storyboard as JSON, e.g. from Plan Storyboard."}),
            "shot_id": ("STRING", {"default": "", "tooltip": "The id of the shot to prompt for."}),
        }}

    def prompts(self, storyboard, shot_id):
        return _planning()[1].shot_prompts(storyboard, shot_id.strip())


NODE_CLASS_MAPPINGS = {
    "AnimStudioPlanStoryboard": AnimStudioPlanStoryboard,
    "AnimStudioShotPrompts": AnimStudioShotPrompts,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "AnimStudioPlanStoryboard": "Plan Storyboard (LLM)",
    "AnimStudioShotPrompts": "Shot Prompts from Storyboard",
}
