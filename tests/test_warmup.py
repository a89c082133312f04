"""Warming new endpoints (issue 20, item 2): a pool file's ``warm:`` list is loaded by one graph before the endpoint
takes jobs, so its first job finds the model in ComfyUI's cache: proven on a fresh real ComfyUI by the first
keyframe prompt's ``execution_cached`` message naming its checkpoint loader."""
from __future__ import annotations

import json
import logging
import urllib.request

import pytest

from animstudio.cloud.jobs import plan_batch
from animstudio.cloud.journal import Journal
from animstudio.cloud.pool import PoolError, endpoints_from, parse_pool
from animstudio.cloud.scheduler import Scheduler, Settings
from animstudio.cloud.warmup import WarmModel, warm_graph
from comfy_env import start_comfyui
from conftest import TINY_CHECKPOINT
from test_cloud_batch import film_storyboard

comfyui = pytest.mark.comfyui


def test_warm_lists_in_the_pool_file():
    spec = parse_pool({"endpoints": [{"name": "a", "url": "http://a.invalid", "warm": [
        "checkpoints/sd15.safetensors", "diffusion_models/wan.safetensors",
        {"node": "CLIPLoader", "clip_name": "t5.safetensors", "type": "ltxv"}]}],
        "providers": [{"name": "p", "kind": "mission", "warm": ["vae/wan_vae.safetensors"]}]})
    warm = spec.endpoints[0].warm
    assert warm[0] == WarmModel("CheckpointLoaderSimple", (("ckpt_name", "sd15.safetensors"),))
    assert warm[1] == WarmModel("UNETLoader", (("unet_name", "wan.safetensors"), ("weight_dtype", "default")))
    assert warm[2].files() == {"text_encoders/t5.safetensors"}
    assert "warm" not in spec.providers[0].settings  # the provider is not handed it
    assert spec.providers[0].warm[0].files() == {"vae/wan_vae.safetensors"}
    assert endpoints_from(spec)[0].warm == warm
    graph = warm_graph(warm[:1])
    assert graph == {"load-0": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd15.safetensors"}},
                     "hold-0": {"class_type": "PreviewAny", "inputs": {"source": ["load-0", 0]}}}


@pytest.mark.parametrize("warm, where, words", [
    ("sd15.safetensors", "$.endpoints[0].warm", "must be a list"),
    (["sd15.safetensors"], "$.endpoints[0].warm[0]", "folder/file"),
    (["models/sd15.safetensors"], "$.endpoints[0].warm[0]", "folder/file"),
    ([{"node": "KSampler", "seed": 1}], "$.endpoints[0].warm[0]", "names a model file"),
    ([3], "$.endpoints[0].warm[0]", "must be folder/file"),
])
def test_bad_warm_entries_name_their_place(warm, where, words):
    with pytest.raises(PoolError) as caught:
        parse_pool({"endpoints": [{"name": "a", "url": "http://a.invalid", "warm": warm}]})
    assert any(p.where == where and words in p.message for p in caught.value.problems), caught.value.problems


def _history(url: str) -> list[dict]:
    with urllib.request.urlopen(url + "/history", timeout=30) as answer:
        return sorted(json.load(answer).values(), key=lambda entry: entry["prompt"][0])


@comfyui
def test_a_warmed_endpoint_s_first_job_finds_its_checkpoint_loaded(comfyui_base, tmp_path, caplog):
    base = tmp_path / "comfy-warm"
    (base / "models" / "checkpoints").mkdir(parents=True)
    (base / "models" / "checkpoints" / TINY_CHECKPOINT).symlink_to(
        comfyui_base / "models" / "checkpoints" / TINY_CHECKPOINT)
    server = start_comfyui(base)  # fresh: nothing cached yet
    try:
        spec = parse_pool({"endpoints": [{"name": "a", "url": server.url, "warm": [
            f"checkpoints/{TINY_CHECKPOINT}", "checkpoints/not-there.safetensors"]}]})
        journal = Journal(tmp_path / "journal.sqlite")
        scheduler = Scheduler(journal, endpoints_from(spec), tmp_path / "out", Settings(backoff=0.2))
        scheduler.submit("w1", plan_batch([film_storyboard(tmp_path / "film", "Warm Film", shots=1)]))
        with caplog.at_level(logging.INFO, logger="animstudio.cloud"):
            summary = scheduler.run("w1")
        history = _history(server.url)
    finally:
        server.stop()
    assert summary.ok, summary.problems
    # the model the endpoint lacks is named with its folder, and left out
    assert any("not-there.safetensors (models/checkpoints)" in r.getMessage() for r in caplog.records)
    warm, first_job = history[0], history[1]
    assert {n["class_type"] for n in warm["prompt"][2].values()} == {"CheckpointLoaderSimple", "PreviewAny"}
    assert warm["status"]["status_str"] == "success"
    loader = next(i for i, n in first_job["prompt"][2].items() if n["class_type"] == "CheckpointLoaderSimple")
    cached = [data["nodes"] for kind, data in first_job["status"]["messages"] if kind == "execution_cached"]
    assert cached and loader in cached[0], first_job["status"]["messages"]
    used = summary.endpoints["a"]
    assert used["warm_seconds"] > 0 and used["model_loads"] == 1  # the warm-up's; the keyframe found it held
    assert used["jobs"] == summary.jobs["completed"] == 4        # keyframe, two shots, compose: one try each
