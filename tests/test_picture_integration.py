"""Character LoRAs: the family guess and report (no ComfyUI needed), and ``AnimStudioCharacterLoRA`` on a real
ComfyUI (marker ``comfyui``) with tiny kohya-format LoRAs built for the tiny SD1.5 checkpoint."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from animstudio.nodes.picture import lora as lora_stage
from animstudio.nodes.picture.picture_nodes import AnimStudioCharacterLoRA
from animstudio.translator.client import ComfyClient
from animstudio.common.errors import GraphValidationError, ServerError
from comfy_env import comfyui_paths
from conftest import TINY_CHECKPOINT

CHARACTER_LORA = "mara-tiny-sd15.safetensors"
SDXL_LORA = "mara-sdxl-like.safetensors"
comfyui = pytest.mark.comfyui


# ------------------------------------------------------------------------------ no ComfyUI needed


def _kohya(names_and_shapes, rank=4):
    keys = {}
    for name, (out_d, in_d) in names_and_shapes.items():
        keys[f"{name}.lora_down.weight"] = (rank, in_d)
        keys[f"{name}.lora_up.weight"] = (out_d, rank)
        keys[f"{name}.alpha"] = ()
    return keys


@pytest.mark.parametrize("layers, family", [
    ({"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k": (320, 768)}, "SD1.x"),
    ({"lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k": (640, 2048)}, "SDXL"),
    ({"lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_v": (640, 1024)}, "SD2.x"),
    ({"lora_te1_text_model_encoder_layers_0_self_attn_q_proj": (768, 768),
      "lora_te2_text_model_encoder_layers_0_self_attn_q_proj": (1280, 1280)}, "SDXL"),
    ({"lora_te_text_model_encoder_layers_0_self_attn_q_proj": (768, 768)}, "SD1.x"),
    ({"lora_unet_double_blocks_0_img_attn_qkv": (9216, 3072)}, "Flux"),
])
def test_family_guess_from_kohya_keys(layers, family):
    guess = lora_stage.guess_lora_family(_kohya(layers))
    assert guess is not None and guess.split(" (")[0] == family


def test_family_guess_from_diffusers_keys_and_unknown():
    diffusers = {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k.lora.down.weight": (4, 2048),
                 "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.processor.to_k.lora.up.weight": (640, 4)}
    assert lora_stage.guess_lora_family(diffusers) == "SDXL (cross-attention context 2048)"
    peft = {"unet.mid_block.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": (8, 768)}
    assert lora_stage.guess_lora_family(peft).startswith("SD1.x")
    assert lora_stage.guess_lora_family({"something.weight": (3, 3)}) is None
    assert lora_stage.guess_lora_family({}) is None


def test_text_encoder_keys_are_told_apart():
    assert lora_stage.is_text_encoder_key("lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha")
    assert lora_stage.is_text_encoder_key("lora_te2_text_model_encoder_layers_3_mlp_fc1.lora_up.weight")
    assert lora_stage.is_text_encoder_key("text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight")
    assert not lora_stage.is_text_encoder_key("lora_unet_mid_block_attentions_0_proj_in.lora_down.weight")
    assert not lora_stage.is_text_encoder_key("unet.up_blocks.1.attentions.0.proj_out.lora.up.weight")


def test_report_text_and_refusal_message():
    report = lora_stage.LoraReport("x.safetensors", "mara", 6, 3, ("a.alpha",), (), ("b.lora_up.weight",),
                                   "SDXL (cross-attention context 2048)", "SD1.x (cross-attention context 768)")
    text = report.text()
    assert text.splitlines()[0] == "LoRA 'x.safetensors' (character 'mara'): 2 of 6 keys not applied"
    assert "a.alpha: not loaded" in text and "b.lora_up.weight: shape does not fit" in text
    message = lora_stage.family_message(report, wrong_model=True)
    assert "SDXL" in message and "SD1.x" in message and "mara" in message and "x.safetensors" in message
    clean = lora_stage.LoraReport("y", "", 4, 4, (), (), (), None, "SD1.x")
    assert clean.text() == "" and clean.unused == ()


def test_node_imports_and_validates_without_comfyui(tmp_path):
    inputs = AnimStudioCharacterLoRA.INPUT_TYPES()["required"]
    assert inputs["lora_name"][0] == [] or isinstance(inputs["lora_name"][0], list)
    assert all("tooltip" in spec[1] for spec in inputs.values())
    assert len(AnimStudioCharacterLoRA.OUTPUT_TOOLTIPS) == len(AnimStudioCharacterLoRA.RETURN_TYPES) == 3
    assert AnimStudioCharacterLoRA.CATEGORY == "animstudio/picture"
    problem = AnimStudioCharacterLoRA.VALIDATE_INPUTS("nope.safetensors")
    assert isinstance(problem, str) and "nope.safetensors" in problem
    assert "models/loras" in AnimStudioCharacterLoRA.VALIDATE_INPUTS("")
    with pytest.raises(lora_stage.LoraNotFoundError, match="nope.safetensors"):
        lora_stage.lora_path("nope.safetensors")


# ------------------------------------------------------------------------------ on a real ComfyUI


@pytest.fixture(scope="session")
def character_loras(comfyui_base):
    """The tiny SD1.5 character LoRA and an SDXL-like one in the server's models/loras (ComfyUI lists
    LoRA files when asked, so building them after the server started is fine)."""
    _comfy_dir, comfy_python = comfyui_paths()
    script = str(Path(__file__).parent / "fixtures" / "tiny_models.py")
    checkpoint = str(comfyui_base / "models" / "checkpoints" / TINY_CHECKPOINT)
    folder = comfyui_base / "models" / "loras"
    subprocess.run([comfy_python, script, "lora", str(folder / CHARACTER_LORA), checkpoint], check=True, timeout=300)
    subprocess.run([comfy_python, script, "lora", str(folder / SDXL_LORA), checkpoint, "--sdxl-like"],
                   check=True, timeout=300)
    return folder


def lora_graph(lora_name: str | None, strength: float = 1.0, prefix: str = "lora-test") -> dict:
    """Checkpoint -> (character LoRA) -> text encode -> 1-step KSampler -> decode -> SaveImage (+ the report)."""
    graph = {"ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": TINY_CHECKPOINT}}}
    model, clip = ["ckpt", 0], ["ckpt", 1]
    if lora_name is not None:
        graph["lora"] = {"class_type": "AnimStudioCharacterLoRA", "inputs": {
            "model": model, "clip": clip, "lora_name": lora_name, "strength_model": strength,
            "strength_clip": strength, "character": "mara"}}
        graph["report"] = {"class_type": "PreviewAny", "inputs": {"source": ["lora", 2]}}
        model, clip = ["lora", 0], ["lora", 1]
    graph.update(txt2img_nodes(model, clip, prefix))
    return graph


def txt2img_nodes(model: list, clip: list, prefix: str, cfg: float = 1.0) -> dict:
    """Prompts → a 1-step 64x64 KSampler on *model* → decode with the tiny checkpoint's VAE → SaveImage "save"."""
    return {
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"text": "mara, a girl with a red scarf", "clip": clip}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": clip}},
        "latent": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "sampler": {"class_type": "KSampler", "inputs": {
            "model": model, "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": ["latent", 0],
            "seed": 7, "steps": 1, "cfg": cfg, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}},
        "decode": {"class_type": "VAEDecode", "inputs": {"samples": ["sampler", 0], "vae": ["ckpt", 2]}},
        "save": {"class_type": "SaveImage", "inputs": {"images": ["decode", 0], "filename_prefix": prefix}},
    }


def run_graph(client: ComfyClient, graph: dict, dest: Path) -> tuple[np.ndarray, str | None]:
    outputs = client.run(graph)
    images = [f for f in client.output_files(outputs) if f.node_id == "save"]
    assert len(images) == 1
    picture = np.asarray(Image.open(client.download(images[0], dest)).convert("RGB"))
    report = outputs.get("report", {}).get("text")
    return picture, (report[0] if report else None)


@comfyui
def test_character_lora_applies_every_key_and_changes_the_picture(comfy_server, character_loras, tmp_path):
    client = ComfyClient(comfy_server.url)
    assert CHARACTER_LORA in client.object_info()["AnimStudioCharacterLoRA"]["input"]["required"]["lora_name"][0]
    with_lora, report = run_graph(client, lora_graph(CHARACTER_LORA, 1.0, "lora-on"), tmp_path / "on")
    assert report == ""  # every key of the file applied
    at_zero, report_zero = run_graph(client, lora_graph(CHARACTER_LORA, 0.0, "lora-zero"), tmp_path / "zero")
    assert report_zero == ""
    without, _ = run_graph(client, lora_graph(None, prefix="lora-none"), tmp_path / "none")
    assert with_lora.shape == at_zero.shape == (64, 64, 3)
    assert np.array_equal(at_zero, without)            # strength 0 is no LoRA
    assert not np.array_equal(with_lora, at_zero)     # the LoRA changes what is sampled
    assert np.abs(with_lora.astype(int) - at_zero.astype(int)).mean() > 0.5


@comfyui
def test_wrong_family_lora_is_refused_naming_both_families(comfy_server, character_loras, tmp_path):
    client = ComfyClient(comfy_server.url)
    with pytest.raises(ServerError) as caught:
        client.run(lora_graph(SDXL_LORA, 1.0, "lora-sdxl"), {"lora": "gen"})
    problems = [p for p in caught.value.problems if p.where.startswith("node 'lora' (AnimStudioCharacterLoRA")]
    assert problems, caught.value.problems
    message = problems[0].message
    assert "LoraFamilyError" in message and SDXL_LORA in message and "mara" in message
    assert "SDXL (cross-attention context 2048)" in message and "SD1.x (cross-attention context 768)" in message


@comfyui
def test_missing_lora_file_is_refused_at_validation(comfy_server, character_loras):
    client = ComfyClient(comfy_server.url)
    with pytest.raises(GraphValidationError) as caught:
        client.queue(lora_graph("not-there.safetensors"), {"lora": "gen"})
    problems = [p for p in caught.value.problems if p.where.startswith("node 'lora' (AnimStudioCharacterLoRA")]
    assert problems, caught.value.problems
    assert "not-there.safetensors" in problems[0].message and "models/loras" in problems[0].message


@comfyui
def test_storyboard_character_lora_compiles_to_the_checked_loader_and_renders(comfy_server, character_loras, tmp_path):
    """A storyboard character with a LoRA: the translator emits the checked loader, ComfyUI runs it."""
    from animstudio.translator.render import ServerEngine, render
    from animstudio.translator.storyboard import load_storyboard
    from conftest import TINY_CHECKPOINT, write_storyboard

    name = CHARACTER_LORA
    path = write_storyboard(tmp_path / "story", {
        "version": 1, "project": {"title": "Lora", "width": 64, "height": 64, "fps": 8, "checkpoint": TINY_CHECKPOINT,
                                  "steps": 1, "cfg": 1.0},
        "characters": {"mara": {"description": "a girl", "lora": {"file": name, "weight": 0.8, "trigger_words": ["mrx"]}}},
        "shots": [{"id": "s1", "description": "mara waves", "characters": ["mara"], "duration": 1.0}]})
    board = load_storyboard(path)
    report = render(board, tmp_path / "out", ServerEngine(ComfyClient(comfy_server.url)), "film")
    assert report.film and any("/keyframes/" in p for p in report.outputs)
    from animstudio.translator.compile import compile_storyboard

    graph = compile_storyboard(board).graphs[0].graph
    assert graph["s1:lora-mara:lora"]["class_type"] == "AnimStudioCharacterLoRA"
