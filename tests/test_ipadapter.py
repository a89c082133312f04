"""IP-Adapter: layout detection, family guess and fit check (plain Python over ``key -> shape``, no ComfyUI or
torch needed), and ``AnimStudioIPAdapter`` on a real ComfyUI (marker ``comfyui``) with tiny random-weight
IP-Adapters built for the tiny SD1.5 checkpoint and the random CLIP vision ViT-L/14."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from animstudio.nodes.picture import ipadapter as ip
from animstudio.nodes.picture.ipadapter_nodes import AnimStudioIPAdapter
from animstudio.translator.client import ComfyClient
from animstudio.common.errors import GraphValidationError, ServerError
from comfy_env import comfyui_paths
from conftest import TINY_CHECKPOINT, write_panel
from test_picture_integration import run_graph, txt2img_nodes

STANDARD = "mara-ip-tiny-sd15.safetensors"
PLUS = "mara-ip-plus-tiny-sd15.bin"          # the legacy nested torch pickle
SDXL_LIKE = "mara-ip-sdxl-like.safetensors"
VIT_H = "mara-ip-vit-h-sd15.safetensors"     # takes 1024-wide image_embeds: not the ViT-L/14 in the tests
comfyui = pytest.mark.comfyui


# ------------------------------------------------------------------------------ no ComfyUI needed


def _ip_layers(dims):
    shapes = {}
    for i, (out_d, in_d) in enumerate(dims):
        shapes[f"ip_adapter.{2 * i + 1}.to_k_ip.weight"] = (out_d, in_d)
        shapes[f"ip_adapter.{2 * i + 1}.to_v_ip.weight"] = (out_d, in_d)
    return shapes


SD15_LAYERS = [(320, 768)] * 5 + [(640, 768)] * 4 + [(1280, 768)] * 7   # 16, as in ip-adapter_sd15
SDXL_LAYERS = [(640, 2048)] * 4 + [(1280, 2048)] * 20 + [(1280, 2048)] * 30 + [(640, 2048)] * 6 + [(1280, 2048)] * 10


def _standard(tokens=4, ctx=768, embed=1024, layers=SD15_LAYERS):
    return {"image_proj.proj.weight": (tokens * ctx, embed), "image_proj.proj.bias": (tokens * ctx,),
            "image_proj.norm.weight": (ctx,), "image_proj.norm.bias": (ctx,), **_ip_layers(layers)}


def _plus(queries=16, dim=768, embed=1280, ctx=768, depth=4, layers=SD15_LAYERS):
    shapes = {"image_proj.latents": (1, queries, dim), "image_proj.proj_in.weight": (dim, embed),
              "image_proj.proj_in.bias": (dim,), "image_proj.proj_out.weight": (ctx, dim),
              "image_proj.proj_out.bias": (ctx,), "image_proj.norm_out.weight": (ctx,),
              "image_proj.norm_out.bias": (ctx,), **_ip_layers(layers)}
    for i in range(depth):
        for part in ("norm1", "norm2"):
            shapes[f"image_proj.layers.{i}.0.{part}.weight"] = (dim,)
            shapes[f"image_proj.layers.{i}.0.{part}.bias"] = (dim,)
        shapes[f"image_proj.layers.{i}.0.to_q.weight"] = (dim, dim)
        shapes[f"image_proj.layers.{i}.0.to_kv.weight"] = (2 * dim, dim)
        shapes[f"image_proj.layers.{i}.0.to_out.weight"] = (dim, dim)
        shapes[f"image_proj.layers.{i}.1.0.weight"] = (dim,)
        shapes[f"image_proj.layers.{i}.1.1.weight"] = (4 * dim, dim)
        shapes[f"image_proj.layers.{i}.1.3.weight"] = (dim, 4 * dim)
    return shapes


def test_standard_layout_and_family_from_shapes():
    layout = ip.detect_layout(_standard())
    assert (layout.kind, layout.tokens, layout.context_dim, layout.embed_dim, layout.embed_input) == \
        ("standard", 4, 768, 1024, "image_embeds")
    assert len(layout.layers) == 16 and layout.layers[0] == (1, 320, 768) and layout.layers[-1][0] == 31
    assert layout.family == "SD1.x (cross-attention context 768)"
    sdxl = ip.detect_layout(_standard(ctx=2048, embed=1280, layers=SDXL_LAYERS))
    assert (sdxl.tokens, len(sdxl.layers)) == (4, 70) and sdxl.family == "SDXL (cross-attention context 2048)"
    assert ip.guess_ipadapter_family(_standard(ctx=2048, embed=1280, layers=SDXL_LAYERS)).startswith("SDXL")
    assert "4 image tokens of width 768; 16 cross-attention layers" in layout.describe()


def test_plus_and_full_layouts():
    plus = ip.detect_layout(_plus())
    assert (plus.kind, plus.tokens, plus.context_dim, plus.embed_dim, plus.embed_input) == \
        ("plus", 16, 768, 1280, "penultimate_hidden_states")
    assert (plus.resampler_depth, plus.resampler_heads) == (4, 12)  # 768 / 64-wide heads
    full = {"image_proj.proj.0.weight": (1024, 1024), "image_proj.proj.0.bias": (1024,),
            "image_proj.proj.2.weight": (768, 1024), "image_proj.proj.2.bias": (768,),
            "image_proj.proj.3.weight": (768,), "image_proj.proj.3.bias": (768,), **_ip_layers(SD15_LAYERS)}
    layout = ip.detect_layout(full)
    assert (layout.kind, layout.context_dim, layout.embed_dim) == ("full", 768, 1024)
    assert layout.family.startswith("SD1.x")


def test_legacy_nested_bin_layout_is_flattened():
    flat = _standard()
    nested = {"image_proj": {k[len("image_proj."):]: v for k, v in flat.items() if k.startswith("image_proj.")},
              "ip_adapter": {k[len("ip_adapter."):]: v for k, v in flat.items() if k.startswith("ip_adapter.")}}
    assert ip.flatten_state_dict(nested) == flat
    assert ip.detect_layout(nested) == ip.detect_layout(flat)
    assert ip.guess_ipadapter_family(nested) == "SD1.x (cross-attention context 768)"


def test_family_from_layer_count_when_the_context_tells_nothing():
    assert ip.guess_ipadapter_family(_ip_layers([(320, 1536)] * 16)) == "SD1.x (16 cross-attention layers)"
    assert ip.guess_ipadapter_family(_ip_layers([(640, 1536)] * 70)) == "SDXL (70 cross-attention layers)"
    assert ip.guess_ipadapter_family(_ip_layers([(320, 1536)] * 3)) is None
    assert ip.guess_ipadapter_family({}) is None


def test_files_that_are_not_readable_ip_adapters():
    with pytest.raises(ip.IPAdapterLayoutError, match="x.safetensors.*no ip_adapter"):
        ip.detect_layout({"lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": (4, 320)}, "x.safetensors")
    faceid = {"image_proj.perceiver_resampler.proj_in.weight": (768, 512), **_ip_layers(SD15_LAYERS)}
    with pytest.raises(ip.IPAdapterLayoutError, match="FaceID"):
        ip.detect_layout(faceid)
    mixed = _standard()
    mixed["ip_adapter.1.to_v_ip.weight"] = (320, 1024)
    with pytest.raises(ip.IPAdapterLayoutError, match="ip_adapter.1"):
        ip.detect_layout(mixed)
    with pytest.raises(ip.IPAdapterLayoutError, match="2048"):
        ip.detect_layout({**_standard(), **_ip_layers([(320, 2048)] * 16)})
    assert issubclass(ip.IPAdapterFamilyError, ValueError) and issubclass(ip.IPAdapterLayoutError, ValueError)


TINY_SLOTS = [ip.CrossAttentionSlot(b, n, 0, 320, 768) for b, n in (("input", 1), ("output", 0), ("output", 1),
                                                                  ("middle", 0))]
TINY_MODEL = "SD1.x (cross-attention context 768)"


def test_fit_check_accepts_the_matching_file_and_names_both_families_otherwise():
    ip.check_fit(ip.detect_layout(_standard(embed=768, layers=[(320, 768)] * 4)), TINY_SLOTS, "a", "mara", TINY_MODEL)
    sdxl = ip.detect_layout(_standard(ctx=2048, embed=1280, layers=[(640, 2048)] * 4))
    with pytest.raises(ip.IPAdapterFamilyError) as caught:
        ip.check_fit(sdxl, TINY_SLOTS, "big.safetensors", "mara", TINY_MODEL)
    message = str(caught.value)
    assert "'big.safetensors'" in message and "'mara'" in message
    assert "SDXL (cross-attention context 2048)" in message and TINY_MODEL in message
    assert "2048" in message and "768" in message
    with pytest.raises(ip.IPAdapterFamilyError, match="16 cross-attention layers, the model 4"):
        ip.check_fit(ip.detect_layout(_standard()), TINY_SLOTS, "sd15.bin", "", TINY_MODEL)
    with pytest.raises(ip.IPAdapterFamilyError, match="640 features.*input 1.0 to 320"):
        ip.check_fit(ip.detect_layout(_standard(layers=[(640, 768)] * 4)), TINY_SLOTS, "x", "", TINY_MODEL)
    with pytest.raises(ip.IPAdapterFamilyError, match="no UNet cross-attention layers.*Flux"):
        ip.check_fit(ip.detect_layout(_standard()), [], "x", "", "Flux")


def test_clip_vision_width_message_names_both_widths():
    layout = ip.detect_layout(_standard(embed=1024))
    message = ip.clip_vision_message("h.safetensors", "mara", layout, 768)
    assert "'h.safetensors'" in message and "'mara'" in message
    assert "1024-wide CLIP vision image_embeds (ViT-H/14)" in message and "gives 768 (ViT-L/14)" in message
    plus = ip.detect_layout(_plus(embed=1280))
    assert "gives 1024 (ViT-L/14)" in ip.clip_vision_message("p.bin", "", plus, 1024)


def test_node_definition_and_validation_without_comfyui():
    inputs = AnimStudioIPAdapter.INPUT_TYPES()["required"]
    assert list(inputs) == ["model", "clip_vision", "image", "ipadapter_name", "weight", "start_at", "end_at",
                            "character"]
    assert all("tooltip" in spec[1] for spec in inputs.values())
    assert [inputs[n][0] for n in ("model", "clip_vision", "image", "weight", "character")] == \
        ["MODEL", "CLIP_VISION", "IMAGE", "FLOAT", "STRING"]
    assert isinstance(inputs["ipadapter_name"][0], list)
    assert (inputs["weight"][1]["default"], inputs["weight"][1]["min"], inputs["weight"][1]["max"]) == (0.8, -1.0, 5.0)
    assert (inputs["start_at"][1]["default"], inputs["end_at"][1]["default"]) == (0.0, 1.0)
    assert AnimStudioIPAdapter.RETURN_TYPES == ("MODEL", "STRING")
    assert len(AnimStudioIPAdapter.OUTPUT_TOOLTIPS) == 2 and AnimStudioIPAdapter.DESCRIPTION
    assert AnimStudioIPAdapter.CATEGORY == "animstudio/picture"
    problem = AnimStudioIPAdapter.VALIDATE_INPUTS("nope.safetensors")
    assert isinstance(problem, str) and "nope.safetensors" in problem and "models/ipadapter" in problem
    assert "models/ipadapter" in AnimStudioIPAdapter.VALIDATE_INPUTS("")
    with pytest.raises(ip.IPAdapterNotFoundError, match="nope.safetensors"):
        ip.ipadapter_path("nope.safetensors")


def test_tokens_follow_the_cond_uncond_chunks_and_the_resampler_is_plain_attention():
    """With torch (not ComfyUI): each chunk of the batched q gets its own tokens, and the resampler's perceiver
    attention is scaled dot-product attention over the image features and the latents together."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    cond, uncond = torch.ones(1, 3, 8), torch.zeros(1, 3, 8)
    q = torch.empty(4, 5, 8, dtype=torch.float16)
    tokens = ip.IPAdapterAttention._batched(cond, uncond, q, [1, 0])
    assert tokens.shape == (4, 3, 8) and tokens.dtype == torch.float16
    assert tokens[:2].eq(0).all() and tokens[2:].eq(1).all()
    assert ip.IPAdapterAttention._batched(cond, uncond, q, None).eq(1).all()

    gen = torch.Generator().manual_seed(0)
    dim, heads = 128, 2
    sd = {f"a.{n}.weight": torch.randn(dim, generator=gen) for n in ("norm1", "norm2")}
    sd.update({f"a.{n}.bias": torch.randn(dim, generator=gen) for n in ("norm1", "norm2")})
    sd.update({"a.to_q.weight": torch.randn(dim, dim, generator=gen) / 10,
               "a.to_kv.weight": torch.randn(2 * dim, dim, generator=gen) / 10,
               "a.to_out.weight": torch.randn(dim, dim, generator=gen) / 10})
    x, latents = torch.randn(2, 7, dim, generator=gen), torch.randn(2, 4, dim, generator=gen)
    got = ip._perceiver_attention(x, latents, sd, "a", heads)
    xn = F.layer_norm(x, (dim,), sd["a.norm1.weight"], sd["a.norm1.bias"])
    ln = F.layer_norm(latents, (dim,), sd["a.norm2.weight"], sd["a.norm2.bias"])
    k, v = (torch.cat([xn, ln], 1) @ sd["a.to_kv.weight"].T).chunk(2, -1)
    split = lambda t: t.reshape(2, -1, heads, dim // heads).transpose(1, 2)  # noqa: E731
    want = F.scaled_dot_product_attention(split(ln @ sd["a.to_q.weight"].T), split(k), split(v))
    want = want.transpose(1, 2).reshape(2, 4, dim) @ sd["a.to_out.weight"].T
    assert torch.allclose(got, want, atol=1e-4)


# ------------------------------------------------------------------------------ on a real ComfyUI


@pytest.fixture(scope="session")
def ipadapter_files(comfyui_base):
    """The tiny IP-Adapters in the server's models/ipadapter (ComfyUI lists files when asked, so building them
    after the server started is fine)."""
    _comfy_dir, comfy_python = comfyui_paths()
    script = str(Path(__file__).parent / "fixtures" / "ipadapter_models.py")
    checkpoint = str(comfyui_base / "models" / "checkpoints" / TINY_CHECKPOINT)
    folder = comfyui_base / "models" / "ipadapter"
    for args in (["standard", str(folder / STANDARD), checkpoint],
                 ["plus", str(folder / PLUS), checkpoint, "--bin"],
                 ["sdxl-like", str(folder / SDXL_LIKE)],
                 ["standard", str(folder / VIT_H), checkpoint, "--embed-dim", "1024"]):
        subprocess.run([comfy_python, script, *args], check=True, timeout=300)
    return folder


@pytest.fixture(scope="session")
def references(comfy_server, tmp_path_factory):
    """Two different reference pictures uploaded to the server's input folder."""
    client = ComfyClient(comfy_server.url)
    folder = tmp_path_factory.mktemp("ip-refs")
    return [client.upload(write_panel(folder / "ip-ref-warm.png", (230, 60, 20), (96, 96))),
            client.upload(write_panel(folder / "ip-ref-cold.png", (10, 40, 240), (80, 120)))]


def ip_graph(ipadapter_name: str | None, refs=(), weight: float = 0.8, start_at: float = 0.0, end_at: float = 1.0,
             prefix: str = "ip-test", clip_vision: str | None = None) -> dict:
    """Checkpoint -> (CLIP vision + reference images -> IP-Adapter) -> 1-step KSampler at cfg 2 (so the cond and
    uncond halves are batched) -> decode -> SaveImage (+ the report)."""
    graph = {"ckpt": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": TINY_CHECKPOINT}}}
    model = ["ckpt", 0]
    if ipadapter_name is not None:
        graph["clipvision"] = {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": clip_vision}}
        for i, ref in enumerate(refs):
            graph[f"ref{i}"] = {"class_type": "LoadImage", "inputs": {"image": ref}}
        image = ["ref0", 0]
        for i in range(1, len(refs)):
            graph[f"batch{i}"] = {"class_type": "ImageBatch", "inputs": {"image1": image, "image2": [f"ref{i}", 0]}}
            image = [f"batch{i}", 0]
        graph["ip"] = {"class_type": "AnimStudioIPAdapter", "inputs": {
            "model": model, "clip_vision": ["clipvision", 0], "image": image, "ipadapter_name": ipadapter_name,
            "weight": weight, "start_at": start_at, "end_at": end_at, "character": "mara"}}
        graph["report"] = {"class_type": "PreviewAny", "inputs": {"source": ["ip", 1]}}
        model = ["ip", 0]
    graph.update(txt2img_nodes(model, ["ckpt", 1], prefix, cfg=2.0))  # cfg 2: cond and uncond halves both run
    return graph


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


@pytest.fixture(scope="session")
def without_adapter(comfy_server, tmp_path_factory):
    picture, _ = run_graph(ComfyClient(comfy_server.url), ip_graph(None, prefix="ip-none"),
                           tmp_path_factory.mktemp("ip-none"))
    assert picture.shape == (64, 64, 3)
    return picture


@comfyui
def test_standard_ipadapter_changes_the_picture_and_weight_zero_is_no_adapter(
        comfy_server, ipadapter_files, clip_vision_name, references, without_adapter, tmp_path):
    client = ComfyClient(comfy_server.url)
    assert STANDARD in client.object_info()["AnimStudioIPAdapter"]["input"]["required"]["ipadapter_name"][0]
    on, report = run_graph(client, ip_graph(STANDARD, references[:1], 0.8, prefix="ip-on",
                                            clip_vision=clip_vision_name), tmp_path / "on")
    assert "standard layout" in report and "4 image tokens of width 768" in report
    assert "4 cross-attention layers patched: input 1.0, output 0.0, output 1.0, middle 0.0" in report
    assert "1 reference image;" in report and "'mara'" in report
    zero, report_zero = run_graph(client, ip_graph(STANDARD, references[:1], 0.0, prefix="ip-zero",
                                                   clip_vision=clip_vision_name), tmp_path / "zero")
    assert "not applied" in report_zero
    assert np.array_equal(zero, without_adapter)            # weight 0 is no IP-Adapter, bit for bit
    assert _diff(on, without_adapter) > 0.5                 # the reference image steers the picture
    # an empty window keeps the patches in place but never activates them: the patched layers' own attention
    # is exactly the unpatched one
    empty, report_empty = run_graph(client, ip_graph(STANDARD, references[:1], 0.8, 1.0, 1.0, prefix="ip-empty",
                                                     clip_vision=clip_vision_name), tmp_path / "empty")
    assert "never active" in report_empty and "4 cross-attention layers patched" in report_empty
    assert np.array_equal(empty, without_adapter)


@comfyui
def test_plus_ipadapter_from_a_legacy_bin_changes_the_picture(
        comfy_server, ipadapter_files, clip_vision_name, references, without_adapter, tmp_path):
    client = ComfyClient(comfy_server.url)
    plus, report = run_graph(client, ip_graph(PLUS, references[:1], 0.8, prefix="ip-plus",
                                              clip_vision=clip_vision_name), tmp_path / "plus")
    assert "plus layout (perceiver resampler, 2 layers x 4 heads" in report and "16 image tokens" in report
    assert _diff(plus, without_adapter) > 0.5


@comfyui
def test_several_reference_images_are_averaged(comfy_server, ipadapter_files, clip_vision_name, references,
                                               without_adapter, tmp_path):
    client = ComfyClient(comfy_server.url)
    one, _ = run_graph(client, ip_graph(STANDARD, references[:1], 1.5, prefix="ip-one",
                                        clip_vision=clip_vision_name), tmp_path / "one")
    two, report = run_graph(client, ip_graph(STANDARD, references, 1.5, prefix="ip-two",
                                             clip_vision=clip_vision_name), tmp_path / "two")
    assert "2 reference images averaged" in report
    assert _diff(two, one) > 0.5 and _diff(two, without_adapter) > 0.5


def _chained(second_weight: float, clip_vision: str, refs, prefix: str) -> dict:
    """Two characters: the standard adapter, then the plus one on its output (each layer's patch wraps the
    previous one)."""
    graph = ip_graph(STANDARD, refs, 0.8, prefix=prefix, clip_vision=clip_vision)
    graph["ip2"] = {"class_type": "AnimStudioIPAdapter", "inputs": {
        **graph["ip"]["inputs"], "model": ["ip", 0], "ipadapter_name": PLUS, "weight": second_weight,
        "character": "tom"}}
    graph["sampler"]["inputs"]["model"] = ["ip2", 0]
    return graph


@comfyui
def test_adapters_chain_one_per_character(comfy_server, ipadapter_files, clip_vision_name, references, tmp_path):
    client = ComfyClient(comfy_server.url)
    first, _ = run_graph(client, ip_graph(STANDARD, references[:1], 0.8, prefix="ip-first",
                                          clip_vision=clip_vision_name), tmp_path / "first")
    both, _ = run_graph(client, _chained(0.8, clip_vision_name, references[:1], "ip-both"), tmp_path / "both")
    second_off, _ = run_graph(client, _chained(0.0, clip_vision_name, references[:1], "ip-second-off"),
                              tmp_path / "off")
    assert _diff(both, first) > 0.5            # the second adapter adds to the first
    assert np.array_equal(second_off, first)   # at weight 0 the second leaves the first's patches as they were


@comfyui
def test_wrong_family_ipadapter_is_refused_naming_both_families(comfy_server, ipadapter_files, clip_vision_name,
                                                                references):
    client = ComfyClient(comfy_server.url)
    with pytest.raises(ServerError) as caught:
        client.run(ip_graph(SDXL_LIKE, references[:1], prefix="ip-sdxl", clip_vision=clip_vision_name),
                   {"ip": "gen"})
    problems = [p for p in caught.value.problems if p.where.startswith("node 'ip' (AnimStudioIPAdapter")]
    assert problems, caught.value.problems
    message = problems[0].message
    assert "IPAdapterFamilyError" in message and SDXL_LIKE in message and "mara" in message
    assert "SDXL (cross-attention context 2048)" in message and "SD1.x (cross-attention context 768)" in message


@comfyui
def test_clip_vision_of_another_width_is_refused(comfy_server, ipadapter_files, clip_vision_name, references):
    client = ComfyClient(comfy_server.url)
    with pytest.raises(ServerError) as caught:
        client.run(ip_graph(VIT_H, references[:1], prefix="ip-vith", clip_vision=clip_vision_name), {"ip": "gen"})
    problems = [p for p in caught.value.problems if p.where.startswith("node 'ip' (AnimStudioIPAdapter")]
    assert problems, caught.value.problems
    message = problems[0].message
    assert "IPAdapterClipVisionError" in message and VIT_H in message and "mara" in message
    assert "1024-wide" in message and "gives 768 (ViT-L/14)" in message


@comfyui
def test_missing_ipadapter_file_is_refused_at_validation(comfy_server, ipadapter_files, clip_vision_name, references):
    client = ComfyClient(comfy_server.url)
    with pytest.raises(GraphValidationError) as caught:
        client.queue(ip_graph("not-there.safetensors", references[:1], clip_vision=clip_vision_name), {"ip": "gen"})
    problems = [p for p in caught.value.problems if p.where.startswith("node 'ip' (AnimStudioIPAdapter")]
    assert problems, caught.value.problems
    assert "not-there.safetensors" in problems[0].message and "models/ipadapter" in problems[0].message
