"""RunPod pods: a whole ComfyUI machine per instance (serverless, one job per graph, is in
:mod:`.runpod_serverless`).

**Pods** (:class:`RunPodPodProvider`, pool ``kind: runpod_pod``) go through RunPod's REST API
(``https://rest.runpod.io/v1``): ``POST /pods`` creates one from an image or a template with a GPU type,
``GET /pods/{id}`` is polled until the pod runs and its ComfyUI answers through RunPod's HTTP proxy
(``https://{pod_id}-8188.proxy.runpod.net``), ``DELETE /pods/{id}`` terminates it. As with every provider,
a start that fails part-way terminates every pod it created::

    runpod:
      kind: runpod_pod
      api_key_env: RUNPOD_API_KEY
      image: ghcr.io/you/comfyui-animstudio:latest     # or template_id: abc123
      gpu_types: [NVIDIA GeForce RTX 4090]              # tried in this order
      gpu_count: 1
      cloud_type: SECURE                                # or COMMUNITY
      port: 8188
      container_disk_gb: 50
      volume_gb: 0
      network_volume_id: ""                             # the models, shared by every pod
      env: {COMFYUI_ARGS: --highvram}                   # plain values
      env_from_env: {HF_TOKEN: HF_TOKEN}                # container variable → local variable (secrets)
      cost_per_gpu_second: 0.00019                      # else learned from the pod's costPerHr
      poll_interval: 5
      start_timeout: 900
"""
from __future__ import annotations

import logging
import threading
import time
import urllib.parse
import uuid
from typing import Any, Callable, Mapping, Sequence

from ...common.errors import Problem
from ...common.urls import redact
from .base import Instance, ProviderError, secret_from_env
from .http import ApiClient, comfy_answers, scrub
from .lifecycle import check_cancelled, close_after_failure, wait_until_ready

log = logging.getLogger(__name__)

REST_API = "https://rest.runpod.io/v1"
PROXY_URL = "https://{pod_id}-{port}.proxy.runpod.net"


# ====================================================================== pods
POD_PHASES = {"RUNNING": "running", "CREATED": "pending", "PROVISIONING": "pending", "STARTING": "pending",
              "RESTARTING": "pending", "EXITED": "failed", "TERMINATED": "failed", "DEAD": "failed"}


def pod_phase(pod: Mapping[str, Any]) -> str:
    """``running``, ``pending``, ``failed`` or ``unknown``, from a pod's ``desiredStatus`` (else ``status``)."""
    return POD_PHASES.get(str(pod.get("desiredStatus") or pod.get("status") or "").upper(), "unknown")


def pod_cost_per_second(pod: Mapping[str, Any], gpu_count: int) -> float:
    """The per-GPU-second price a created pod reports (``adjustedCostPerHr`` or ``costPerHr``); 0 if none."""
    for key in ("adjustedCostPerHr", "costPerHr"):
        try:
            value = float(pod.get(key))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if value > 0:
            return value / 3600.0 / max(1, gpu_count)
    return 0.0


class RunPodPodProvider:
    kind = "runpod_pod"

    def __init__(self, name: str, api_key: str, *, image: str = "", template_id: str = "",
                 gpu_types: Sequence[str] = ("NVIDIA GeForce RTX 4090",), gpu_count: int = 1,
                 cloud_type: str = "SECURE", port: int = 8188, container_disk_gb: int = 50, volume_gb: int = 0,
                 network_volume_id: str = "", env: Mapping[str, str] | None = None,
                 cost_per_gpu_second: float = 0.0, poll_interval: float = 5.0, start_timeout: float = 900.0,
                 request_timeout: float = 30.0, api_base: str = REST_API, url_template: str = PROXY_URL,
                 body: Mapping[str, Any] | None = None):
        if not (image or template_id):
            raise ProviderError(f"provider {name!r}: give an image or a template_id for its pods")
        if isinstance(gpu_types, str):
            gpu_types = [gpu_types]
        self.name = name
        self.image = image
        self.template_id = template_id
        self.gpu_types = list(gpu_types)
        self.gpu_count = int(gpu_count)
        self.cloud_type = cloud_type
        self.port = int(port)
        self.container_disk_gb = int(container_disk_gb)
        self.volume_gb = int(volume_gb)
        self.network_volume_id = network_volume_id
        self.env = dict(env or {})
        self.cost_per_gpu_second = float(cost_per_gpu_second or 0.0)
        self.poll_interval = float(poll_interval)
        self.start_timeout = float(start_timeout)
        self.request_timeout = float(request_timeout)
        self.url_template = url_template
        self.body = dict(body or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.api = ApiClient(name, api_base, headers, timeout=request_timeout,
                             secrets=[api_key, *self.env.values()])
        self._opened: dict[str, Instance] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_entry(cls, name: str, entry: Mapping[str, Any]) -> "RunPodPodProvider":
        api_key = secret_from_env(entry.get("api_key_env", "RUNPOD_API_KEY"), name)
        env = {str(k): str(v) for k, v in (entry.get("env") or {}).items()}
        for variable, source in (entry.get("env_from_env") or {}).items():
            env[str(variable)] = secret_from_env(source, name, f"{variable} value")
        return cls(name, api_key, image=entry.get("image", ""), template_id=entry.get("template_id", ""),
                   gpu_types=entry.get("gpu_types") or entry.get("gpu_type") or ("NVIDIA GeForce RTX 4090",),
                   gpu_count=int(entry.get("gpu_count", 1)), cloud_type=entry.get("cloud_type", "SECURE"),
                   port=int(entry.get("port", 8188)), container_disk_gb=int(entry.get("container_disk_gb", 50)),
                   volume_gb=int(entry.get("volume_gb", 0)), network_volume_id=entry.get("network_volume_id", ""),
                   env=env, cost_per_gpu_second=float(entry.get("cost_per_gpu_second", 0.0)),
                   poll_interval=float(entry.get("poll_interval", 5.0)),
                   start_timeout=float(entry.get("start_timeout", 900.0)),
                   request_timeout=float(entry.get("request_timeout", 30.0)),
                   api_base=entry.get("api_base", REST_API), url_template=entry.get("url_template", PROXY_URL),
                   body=entry.get("body"))

    def __repr__(self) -> str:
        return f"RunPodPodProvider({self.name!r}, {self.image or self.template_id!r}, {self.gpu_types!r})"

    def pod_url(self, pod_id: str) -> str:
        return self.url_template.format(pod_id=pod_id, port=self.port).rstrip("/")

    def create_body(self, index: int, token: str) -> dict:
        body: dict[str, Any] = {"name": f"animstudio-{self.name}-{token}-{index}"[:60], "computeType": "GPU",
                                "gpuTypeIds": self.gpu_types, "gpuCount": self.gpu_count,
                                "cloudType": self.cloud_type, "ports": [f"{self.port}/http"],
                                "containerDiskInGb": self.container_disk_gb, "volumeInGb": self.volume_gb}
        if self.image:
            body["imageName"] = self.image
        if self.template_id:
            body["templateId"] = self.template_id
        if self.network_volume_id:
            body["networkVolumeId"] = self.network_volume_id
        if self.env:
            body["env"] = dict(self.env)
        body.update(self.body)
        return body

    def start(self, count: int, timeout: float | None = None, cancel: threading.Event | None = None,
              on_created: Callable[[list[str]], None] | None = None) -> list[Instance]:
        """Create ``count`` pods (one call each) and wait until each one's ComfyUI answers through the proxy.
        On any failure (a create refused, a pod exiting, the time running out, ``cancel`` set, Ctrl-C) every pod
        created here is terminated, then the error is raised."""
        if count < 1:
            return []
        timeout = self.start_timeout if timeout is None else float(timeout)
        deadline = time.monotonic() + timeout
        token = uuid.uuid4().hex[:8]
        ids: list[str] = []
        try:
            for index in range(count):
                check_cancelled(cancel, self.name)
                pod = self.api.call("POST", "/pods", self.create_body(index, token), what="create a pod",
                                    idempotent=False)
                pod_id = str((pod or {}).get("id") or "")
                if not pod_id:
                    raise self.api.error("the create call answered no pod id", "POST /pods", str(pod)[:200])
                ids.append(pod_id)
                if not self.cost_per_gpu_second:
                    self.cost_per_gpu_second = pod_cost_per_second(pod, self.gpu_count)
                log.info("provider %r: created pod %s", self.name, pod_id)
                if on_created is not None:
                    on_created([pod_id])
            instances = self._wait_ready(ids, deadline, timeout, cancel)
        except BaseException as exc:
            close_after_failure(self.name, ids, self._close_many, exc, "pod")
            raise
        with self._lock:
            self._opened.update((i.instance_id, i) for i in instances)
        return instances

    def _wait_ready(self, ids: list[str], deadline: float, timeout: float,
                    cancel: threading.Event | None) -> list[Instance]:
        def check(pod_id: str) -> Instance | str:
            pod = self.api.call("GET", f"/pods/{urllib.parse.quote(pod_id, safe='')}", what=f"read pod {pod_id}",
                                missing_ok=True)
            if pod is None:
                raise self.api.error(f"pod {pod_id} disappeared while starting; the pods this start created "
                                     "were terminated", f"pod {pod_id}", "GET answered 404")
            phase = pod_phase(pod)
            status = pod.get("desiredStatus") or pod.get("status")
            if phase == "failed":
                raise self.api.error(f"pod {pod_id} went {status!r} while starting; the pods this start "
                                     "created were terminated", f"pod {pod_id}",
                                     str(pod.get("lastStatusChange") or status))
            if phase != "running":
                return f"status {status!r}"
            url = self.pod_url(pod_id)
            why = comfy_answers(url, timeout=max(1.0, min(self.request_timeout, deadline - time.monotonic())))
            if why is not None:
                return f"ComfyUI at {redact(url)}: {why}"
            log.info("provider %r: pod %s ready at %s", self.name, pod_id, redact(url))
            gpu = pod.get("gpu") if isinstance(pod.get("gpu"), dict) else {}
            return Instance(self.name, pod_id, url, time.time(),
                            gpu=str(gpu.get("displayName") or gpu.get("id") or self.gpu_types[0]),
                            meta={"cost_per_hr": pod.get("adjustedCostPerHr") or pod.get("costPerHr"),
                                  "gpu_count": self.gpu_count})

        return wait_until_ready(self.name, ids, check, deadline, timeout, cancel, self.poll_interval, "pod",
                                "terminated", lambda text: scrub(text, self.api.secrets))

    def _close_many(self, ids: list[str]) -> list[Problem]:
        problems = []
        for pod_id in ids:
            try:
                self.api.call("DELETE", f"/pods/{urllib.parse.quote(pod_id, safe='')}", what=f"terminate pod {pod_id}",
                              missing_ok=True)
            except ProviderError as exc:
                problems.append(Problem(f"pod {pod_id}", f"could not be terminated ({exc.summary}); terminate it "
                                                         "in RunPod's console"))
                continue
            with self._lock:
                self._opened.pop(pod_id, None)
            log.info("provider %r: terminated pod %s", self.name, pod_id)
        return problems

    def close(self, instance_id: str) -> None:
        """Terminate one pod; one already gone is not an error."""
        problems = self._close_many([instance_id])
        if problems:
            raise ProviderError(f"provider {self.name!r}: could not terminate pod {instance_id}", problems)

    def opened(self) -> list[Instance]:
        with self._lock:
            return list(self._opened.values())


# ====================================================================== serverless
