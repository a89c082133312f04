"""The endpoint pool: ComfyUI instances from a pool file, their health, what models they hold.

    endpoints:
      - {name: a, url: "http://127.0.0.1:8301", capacity: 1, tags: [gpu-24g]}
      - {name: b, url: "https://comfy.example.com", headers_env: {Authorization: COMFY_B_TOKEN},
         cost_per_gpu_second: 0.0004}
    providers:
      - {name: cephalon, kind: mission, base_url_env: CEPHALON_BASE_URL, api_key_env: CEPHALON_API_KEY,
         gpu_version: "RTX 4090", scaling: {policy: on_demand, max: 2, idle_timeout: 300}}

Credentials never live in the file: a header value or key is always the *name* of an environment variable,
and a literal secret (``api_key:``, ``token:``, a password in a URL) is refused with the place named.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..translator.client import ComfyClient
from ..common.errors import AnimStudioError, Problem, ServerError
from ..common.urls import redact, split_credentials
from ..translator.graph_check import combo_options
from .jobs import Job
from .warmup import parse_warm

SECRET_KEYS = ("api_key", "apikey", "key", "token", "password", "secret", "authorization", "headers")
POLICIES = ("on_demand", "fixed", "warm")


class PoolError(AnimStudioError):
    """A pool file that cannot be used; each problem names its place (``endpoints[1].url``)."""
    exit_code = 2


@dataclass(frozen=True)
class Scaling:
    policy: str = "on_demand"   # on_demand: start as jobs wait; fixed: `min` for the whole batch; warm: `min` kept
    min: int = 0                # warm, growing with the queue up to `max`
    max: int = 1
    idle_timeout: float = 300.0  # seconds an instance may sit idle before it is closed (on_demand, warm)


@dataclass(frozen=True)
class EndpointSpec:
    name: str
    url: str
    capacity: int = 1
    tags: tuple[str, ...] = ()
    headers_env: tuple[tuple[str, str], ...] = ()  # (header, environment variable)
    cost_per_gpu_second: float = 0.0
    warm: tuple = ()                # models loaded before it takes jobs (.warmup.WarmModel)


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    kind: str
    settings: Mapping[str, Any]
    scaling: Scaling = Scaling()
    warm: tuple = ()                # models each instance loads before it takes jobs (.warmup.WarmModel)


@dataclass(frozen=True)
class PoolSpec:
    endpoints: tuple[EndpointSpec, ...]
    providers: tuple[ProviderSpec, ...]
    source: str = "<pool>"


def _secret_problems(value: Any, where: str) -> list[Problem]:
    problems = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            place = f"{where}.{key}"
            if str(key).lower().endswith("_env"):
                continue  # names of environment variables, not values
            if str(key).lower() in SECRET_KEYS:
                problems.append(Problem(place, "credentials may not be written in the pool file: name an "
                                               f"environment variable instead ({key}_env: MY_VARIABLE)"))
            else:
                problems += _secret_problems(item, place)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problems += _secret_problems(item, f"{where}[{i}]")
    return problems


def parse_pool(data: Any, source: str = "<pool>") -> PoolSpec:
    """Check a pool file's contents; every problem is reported at once, each at its place."""
    problems: list[Problem] = []
    if not isinstance(data, Mapping):
        raise PoolError(f"{source}: the pool file must be a mapping with endpoints: and/or providers:",
                        [Problem("$", f"got {type(data).__name__}")])
    problems += _secret_problems({k: v for k, v in data.items()}, "$")
    unknown = set(data) - {"endpoints", "providers"}
    problems += [Problem(f"$.{k}", "unknown key (expected endpoints, providers)") for k in sorted(unknown)]
    endpoints, providers, names = [], [], set()
    for i, raw in enumerate(data.get("endpoints") or []):
        where = f"$.endpoints[{i}]"
        if not isinstance(raw, Mapping):
            problems.append(Problem(where, "must be a mapping with name and url"))
            continue
        name, url = raw.get("name"), raw.get("url")
        if not isinstance(name, str) or not name:
            problems.append(Problem(f"{where}.name", "required (a short name for reports)"))
        elif name in names:
            problems.append(Problem(f"{where}.name", f"{name!r} is used twice"))
        names.add(name)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            problems.append(Problem(f"{where}.url", "required: the ComfyUI base URL (http:// or https://)"))
        elif split_credentials(url)[1]:
            problems.append(Problem(f"{where}.url", f"{redact(url)}: a password in the URL is a credential in "
                                                    "the file; use headers_env: {Authorization: VARIABLE}"))
        capacity = raw.get("capacity", 1)
        if not isinstance(capacity, int) or capacity < 1:
            problems.append(Problem(f"{where}.capacity", "must be a whole number >= 1 (jobs at once)"))
        headers = raw.get("headers_env") or {}
        if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
            problems.append(Problem(f"{where}.headers_env", "must map header names to environment variable names"))
            headers = {}
        warm, warm_problems = parse_warm(raw.get("warm"), f"{where}.warm")
        problems += warm_problems
        if isinstance(name, str) and isinstance(url, str) and isinstance(capacity, int):
            endpoints.append(EndpointSpec(name, url.rstrip("/"), capacity, tuple(raw.get("tags") or ()),
                                          tuple(sorted(headers.items())), float(raw.get("cost_per_gpu_second", 0)),
                                          warm))
    for i, raw in enumerate(data.get("providers") or []):
        where = f"$.providers[{i}]"
        if not isinstance(raw, Mapping) or not raw.get("name") or not raw.get("kind"):
            problems.append(Problem(where, "needs name and kind (static, mission, runpod_pod)"))
            continue
        if raw["name"] in names:
            problems.append(Problem(f"{where}.name", f"{raw['name']!r} is used twice"))
        names.add(raw["name"])
        scaling_raw = raw.get("scaling") or {}
        try:
            scaling = Scaling(**scaling_raw)
        except TypeError as exc:
            problems.append(Problem(f"{where}.scaling", str(exc).replace("__init__() ", "")))
            continue
        if scaling.policy not in POLICIES:
            problems.append(Problem(f"{where}.scaling.policy", f"{scaling.policy!r}: use one of {', '.join(POLICIES)}"))
        if not 0 <= scaling.min <= scaling.max or scaling.max < 1:
            problems.append(Problem(f"{where}.scaling", "needs 0 <= min <= max and max >= 1"))
        warm, warm_problems = parse_warm(raw.get("warm"), f"{where}.warm")
        problems += warm_problems
        settings = {k: v for k, v in raw.items() if k not in ("name", "kind", "scaling", "warm")}
        providers.append(ProviderSpec(raw["name"], raw["kind"], settings, scaling, warm))
    if not endpoints and not providers and not problems:
        problems.append(Problem("$", "no endpoints and no providers: nothing to render on"))
    if problems:
        raise PoolError(f"{source}: {len(problems)} problem(s) in the pool file", problems)
    return PoolSpec(tuple(endpoints), tuple(providers), source)


def load_pool(path: str | Path) -> PoolSpec:
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PoolError(f"cannot read the pool file {path}", [Problem(str(path), exc.strerror or str(exc))]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise PoolError(f"{path}: not valid YAML", [Problem(where, getattr(exc, "problem", None) or str(exc))]) from None
    return parse_pool(data, str(path))


def env_headers(pairs: tuple[tuple[str, str], ...], owner: str) -> dict[str, str]:
    headers = {}
    for header, variable in pairs:
        value = os.environ.get(variable)
        if not value:
            raise PoolError(f"endpoint {owner!r}: header {header} is read from ${variable}, which is not set")
        headers[header] = value
    return headers


@dataclass
class Endpoint:
    """A ComfyUI the scheduler may send jobs to, and what it learned of it."""
    name: str
    url: str
    capacity: int = 1
    tags: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    cost_per_gpu_second: float = 0.0
    provider: str | None = None
    instance_id: str | None = None
    healthy: bool = True
    down_since: float | None = None
    last_used: float = field(default_factory=time.time)
    busy: int = 0
    warm: tuple = ()                  # models to load before it takes jobs (see .warmup)
    warmed: bool = False
    loaded: frozenset = frozenset()   # model files (folder/file) of the last graph sent here (see .routing)
    model_loads: int = 0              # how often those changed in this run
    jobs: int = 0                     # attempts this endpoint ran in this run
    gpu_seconds: float = 0.0          # and their seconds (warm-up included)
    warm_seconds: float = 0.0         # the warm-up's seconds
    _object_info: dict | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    warm_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self, **kw) -> ComfyClient:
        return ComfyClient(self.url, headers=self.headers, **kw)

    def probe(self, timeout: float = 5.0) -> bool:
        """Whether ComfyUI answers ``/system_stats`` and ``/queue`` now (one try, short timeout)."""
        client = self.client(timeout=timeout, retries=0)
        try:
            client.system_stats()
            client.get_json("/queue")
            return True
        except (ServerError, OSError):
            return False

    def object_info(self) -> dict:
        with self._lock:
            if self._object_info is None:
                self._object_info = self.client(timeout=60).object_info()
            return self._object_info

    def refresh(self) -> None:
        with self._lock:
            self._object_info = None

    def lacks(self, job: Job) -> list[str]:
        """What this endpoint lacks to run *job*: node types, and model files (from its /object_info lists)."""
        info = self.object_info()
        missing = [f"node type {t}" for t in job.node_types if t not in info]
        for need in job.models:
            spec = info.get(need.class_type, {}).get("input", {})
            declared = {**(spec.get("required") or {}), **(spec.get("optional") or {})}.get(need.input_name)
            if declared is None:
                continue
            options = combo_options(declared[0], declared[1] if len(declared) > 1 and isinstance(declared[1], dict)
                                    else {}) or []
            if need.file not in options:
                missing.append(f"model {need.file} (models/{need.folder})")
        return missing


def endpoints_from(spec: PoolSpec) -> list[Endpoint]:
    return [Endpoint(e.name, e.url, e.capacity, e.tags, env_headers(e.headers_env, e.name), e.cost_per_gpu_second,
                     warm=e.warm) for e in spec.endpoints]
