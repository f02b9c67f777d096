"""The Docker deployment hangs together: compose.yaml, .env.example, Dockerfile, submit.sh.

Nothing here needs Docker: the files are parsed and cross-checked (service names, volumes,
ports, URLs, variables), so a renamed service or a forgotten variable fails here instead of
at ``docker compose up`` on a GPU host.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.support.outcomes import record

ROOT = Path(__file__).resolve().parents[3]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERFILE = DOCKER / "Dockerfile"
FLOWER_DOCKERFILE = DOCKER / "flower.Dockerfile"
SUBMIT = DOCKER / "submit.sh"
DOCKERIGNORE = ROOT / ".dockerignore"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $VAR; $$ is a literal $.
VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def interpolated_vars(text: str) -> dict[str, str]:
    """Variables compose interpolates in ``text``, each with its modifier (``:-x``, ``:?x``)."""
    found: dict[str, str] = {}
    for m in VAR_RE.finditer(text.replace("$$", "")):
        name = m.group(1) or m.group(3)
        found.setdefault(name, m.group(2) or "")
    return found


def resolve(text: str, env: dict[str, str]) -> str:
    """``text`` as compose interpolates it with the variables ``env``."""

    def sub(m: re.Match[str]) -> str:
        name, mod = m.group(1) or m.group(3), m.group(2) or ""
        value = env.get(name)
        if mod.startswith(":-"):
            return value or mod[2:]
        if mod.startswith("-"):
            return mod[1:] if value is None else value
        if mod.startswith(("?", ":?")) and not value:
            raise KeyError(f"{name} is required: {mod}")
        return value or ""

    return VAR_RE.sub(sub, text.replace("$$", "\0")).replace("\0", "$")


def strings_in(node: Any) -> list[str]:
    """Every string in a parsed YAML document, keys included (what compose interpolates)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in strings_in(k) + strings_in(v)]
    if isinstance(node, list):
        return [s for item in node for s in strings_in(item)]
    return []


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose_text(compose: dict[str, Any]) -> str:
    """All interpolated text of compose.yaml (comments are not interpolated)."""
    return "\n".join(strings_in(compose))


@pytest.fixture(scope="module")
def sample_env() -> dict[str, str]:
    """The values .env.example sets."""
    env: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line.strip())
        if m:
            env[m.group(1)] = m.group(2)
    return env


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def depends_of(service: dict[str, Any]) -> dict[str, str]:
    dep = service.get("depends_on") or {}
    if isinstance(dep, list):
        return {name: "service_started" for name in dep}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in dep.items()}


def published_ports(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host_ip, host_port, container_port) of each published port."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            out.append(
                (str(port.get("host_ip", "")), str(port.get("published", "")), str(port["target"]))
            )
            continue
        spec = str(port).split("/")[0]
        parts = spec.rsplit(":", 2)
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2]))
        elif len(parts) == 2:
            out.append(("", parts[0], parts[1]))
        else:
            out.append(("", "", parts[0]))
    return out


def volume_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry."""
    out = []
    for vol in service.get("volumes") or []:
        if isinstance(vol, dict):
            out.append((str(vol.get("source", "")), str(vol["target"])))
        else:
            parts = str(vol).split(":")
            out.append((parts[0], parts[1]) if len(parts) > 1 else ("", parts[0]))
    return out


def container_ports(service: dict[str, Any]) -> set[str]:
    ports = {c for _, _, c in published_ports(service)}
    ports |= {str(p).split("/")[0] for p in service.get("expose") or []}
    return ports


def env_example_vars() -> tuple[set[str], set[str]]:
    """(active, commented-out) variable names in .env.example."""
    active: set[str] = set()
    commented: set[str] = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        m = re.match(r"^\s*(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=", line)
        if m:
            (commented if m.group(1) else active).add(m.group(2))
    return active, commented


# --- compose: the graph --------------------------------------------------------------


def test_expected_services(services: dict[str, Any]) -> None:
    assert {"redis", "s3", "create-bucket", "worker", "flower", "models"} <= set(services)


def test_every_dependency_is_a_defined_service(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for dep in depends_of(svc):
            assert dep in services, f"{name} depends on undefined service {dep!r}"
            assert dep != name


def test_health_and_completion_conditions_are_satisfiable(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        for dep, condition in depends_of(svc).items():
            target = services[dep]
            if condition == "service_healthy":
                check = target.get("healthcheck") or {}
                assert check.get("test") and not check.get("disable"), (
                    f"{name} waits for {dep} to be healthy but {dep} has no healthcheck"
                )
            if condition == "service_completed_successfully":
                assert str(target.get("restart", "no")) == "no", f"{dep} must be one-shot"


def test_worker_waits_for_broker_store_and_bucket(services: dict[str, Any]) -> None:
    assert depends_of(services["worker"]) == {
        "redis": "service_healthy",
        "s3": "service_healthy",
        "create-bucket": "service_completed_successfully",
    }
    assert depends_of(services["create-bucket"]) == {"s3": "service_healthy"}
    assert services["create-bucket"]["restart"] == "no"


def test_every_named_volume_is_declared(compose: dict[str, Any], services: dict) -> None:
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, svc in services.items():
        for source, _ in volume_mounts(svc):
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name} mounts undeclared volume {source!r}"
                used.add(source)
    assert declared == {"redis-data", "s3-data", "models"}
    assert used == declared, f"declared but unused volumes: {declared - used}"


def test_data_volumes_are_mounted_where_the_servers_keep_data(services: dict) -> None:
    assert ("redis-data", "/data") in volume_mounts(services["redis"])
    assert ("s3-data", "/data") in volume_mounts(services["s3"])


# --- compose: redis ------------------------------------------------------------------


def config_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Config name -> where the service mounts it."""
    return {c["source"]: c["target"] for c in service.get("configs") or []}


def valkey_conf(compose: dict[str, Any]) -> dict[str, str]:
    """The broker's valkey.conf (a compose config), directive -> value."""
    lines = compose["configs"]["valkey-conf"]["content"].splitlines()
    return dict(line.split(" ", 1) for line in lines if line.strip())


def test_the_broker_is_valkey_durable_refusing_eviction_with_a_password(
        compose: dict, services: dict) -> None:
    """Valkey (BSD-3-Clause) rather than Redis 7.4+, which is not open-source licensed."""
    redis = services["redis"]
    assert re.fullmatch(r"valkey/valkey:\d+\.\d+(\.\d+)?-alpine", redis["image"]), redis["image"]
    conf_path = config_mounts(redis)["valkey-conf"]
    assert command_of(redis) == ["valkey-server", conf_path]
    conf = valkey_conf(compose)
    assert conf["appendonly"] == "yes" and conf["maxmemory-policy"] == "noeviction"
    password = interpolated_vars(conf["requirepass"])
    assert set(password) == {"REDIS_PASSWORD"}
    assert password["REDIS_PASSWORD"].startswith(":?"), "REDIS_PASSWORD must be required"
    health = " ".join(redis["healthcheck"]["test"])
    assert conf_path in health and "REDISCLI_AUTH" in health


SECRET_VARIABLES = ("REDIS_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY", "FLOWER_PASSWORD")
"""The variables of docker/.env that hold a password or a key."""


def test_no_secret_is_on_a_command_line_or_in_an_environment(services: dict) -> None:
    """``docker inspect`` (and ``ps``) show every container's command, environment and
    health check: passwords and keys are only in the mounted config files. Flower's
    ``--basic_auth=USER:PASSWORD`` and the S3 keys in environments failed this."""
    for name, service in services.items():
        shown = [*command_of(service), *env_of(service).values(),
                 *(service.get("healthcheck") or {}).get("test", []),
                 *(service.get("entrypoint") or [])]
        for variable in SECRET_VARIABLES:
            assert not [s for s in shown if variable in s], (name, variable)
    record("security", "passwords and keys in docker/compose.yaml",
           f"{', '.join(SECRET_VARIABLES)} only in mounted config files (valkey.conf, "
           "prodseg_broker_url, s3.json, an AWS credentials file, flowerconfig.py): no "
           "service's command, environment or health check holds one, so neither ps nor "
           "docker inspect shows it")


def test_broker_url_points_at_the_redis_service_with_its_password(
    compose: dict, services: dict, sample_env: dict[str, str]
) -> None:
    password = resolve(valkey_conf(compose)["requirepass"], sample_env).strip('"')
    assert password == sample_env["REDIS_PASSWORD"]
    broker_url = resolve(compose["configs"]["prodseg-broker-url"]["content"], sample_env)
    for name in ("worker", "flower"):
        # prodseg reads setting broker_url from the file prodseg_broker_url there.
        secrets = env_of(services[name])["PRODSEG_SECRETS_DIR"]
        assert config_mounts(services[name])["prodseg-broker-url"] == (
            f"{secrets}/prodseg_broker_url"), name
        url = urlsplit(broker_url)
        assert url.scheme == "redis"
        assert url.hostname == "redis" and "redis" in services
        assert url.port == 6379
        assert url.path == "/0"
        assert url.username == "" and url.password == password, name


# --- compose: s3 ---------------------------------------------------------------------


def s3_identities(compose: dict[str, Any], env: dict[str, str]) -> list[dict[str, Any]]:
    """SeaweedFS's identities (the s3-identities config) as compose writes them."""
    doc = json.loads(resolve(compose["configs"]["s3-identities"]["content"], env))
    identities = doc["identities"]
    assert isinstance(identities, list)
    return identities


def aws_credentials(compose: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """The [default] profile of the s3-credentials config, key -> value."""
    text = resolve(compose["configs"]["s3-credentials"]["content"], env)
    lines = text.splitlines()
    assert lines[0].strip() == "[default]"
    return {k.strip(): v.strip() for k, v in (line.split("=", 1) for line in lines[1:]
                                              if line.strip())}


def test_s3_store_is_pinned_with_credentials_from_required_vars(
        compose: dict, services: dict) -> None:
    s3 = services["s3"]
    image = s3["image"]
    assert ":" in image and not image.endswith(":latest"), image
    assert not [k for k in env_of(s3) if k.startswith("AWS_")]
    content = compose["configs"]["s3-identities"]["content"]
    found = interpolated_vars(content)
    assert set(found) == {"S3_ACCESS_KEY", "S3_SECRET_KEY"}
    assert all(mod.startswith(":?") for mod in found.values())
    assert "-s3" in command_of(s3)
    assert f"-s3.config={config_mounts(s3)['s3-identities']}" in command_of(s3)


def test_worker_s3_endpoint_is_the_s3_service_and_its_port(services: dict) -> None:
    s3 = services["s3"]
    url = urlsplit(env_of(services["worker"])["PRODSEG_S3_ENDPOINT_URL"])
    assert url.scheme == "http"
    assert url.hostname == "s3"
    assert str(url.port) in container_ports(s3)
    flags = [c for c in command_of(s3) if c.startswith("-s3.port=")]
    assert flags == [f"-s3.port={url.port}"]
    health = " ".join(s3["healthcheck"]["test"])
    assert f":{url.port}/" in health


def test_worker_uses_the_same_s3_credentials_as_the_store(
        compose: dict, services: dict, sample_env: dict[str, str]) -> None:
    """The store's one identity has the keys of the credentials file that the worker and
    create-bucket read (boto3 and the AWS CLI: AWS_SHARED_CREDENTIALS_FILE)."""
    [identity] = s3_identities(compose, sample_env)
    assert "Admin" in identity["actions"]
    [keys] = identity["credentials"]
    profile = aws_credentials(compose, sample_env)
    assert profile == {"aws_access_key_id": keys["accessKey"],
                       "aws_secret_access_key": keys["secretKey"]}
    assert keys["accessKey"] == sample_env["S3_ACCESS_KEY"]
    assert keys["secretKey"] == sample_env["S3_SECRET_KEY"]
    for name in ("worker", "create-bucket"):
        env = env_of(services[name])
        assert env["AWS_SHARED_CREDENTIALS_FILE"] == config_mounts(services[name])[
            "s3-credentials"], name


def test_create_bucket_targets_the_configured_bucket(services: dict) -> None:
    cb = services["create-bucket"]
    env = env_of(cb)
    assert "PRODSEG_S3_BUCKET" in interpolated_vars(env["BUCKET"])
    assert env_of(services["worker"])["PRODSEG_S3_BUCKET"] == env["BUCKET"]
    worker_endpoint = env_of(services["worker"])["PRODSEG_S3_ENDPOINT_URL"]
    assert urlsplit(env["S3_ENDPOINT"]).netloc == urlsplit(worker_endpoint).netloc
    script = " ".join(command_of(cb))
    assert "create-bucket" in script and "head-bucket" in script
    image = cb["image"]
    assert re.fullmatch(r"amazon/aws-cli:\d+\.\d+\.\d+", image), image


# --- compose: worker, flower, models -------------------------------------------------


def test_worker_reserves_nvidia_gpus(services: dict) -> None:
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d.get("driver") == "nvidia"
        and "gpu" in d.get("capabilities", [])
        and (d.get("count") == "all" or d.get("device_ids"))
        for d in devices
    ), devices


def test_worker_mounts_models_where_its_cache_dir_points(services: dict) -> None:
    worker = services["worker"]
    cache_dir = env_of(worker)["PRODSEG_MODEL_CACHE_DIR"]
    assert ("models", cache_dir) in volume_mounts(worker)
    models = services["models"]
    assert env_of(models)["PRODSEG_MODEL_CACHE_DIR"] == cache_dir
    assert ("models", cache_dir) in volume_mounts(models)


def test_models_download_is_a_setup_one_shot_for_the_same_models(services: dict) -> None:
    models = services["models"]
    assert models.get("profiles") == ["setup"]
    assert command_of(models) == ["prodseg", "models", "download"]
    assert models["restart"] == "no"
    for key in ("PRODSEG_SAM2_CHECKPOINT", "PRODSEG_DINOV2_MODEL"):
        assert env_of(models)[key] == env_of(services["worker"])[key], key
    for name, svc in services.items():
        if name != "models":
            assert not svc.get("profiles"), f"{name} would not start with a plain `up`"


SHUTDOWN_MARGIN_S = 60
"""Time a worker needs after its task's hard time limit to end the task and exit."""


def test_worker_runs_prodseg_worker_and_has_time_to_finish_a_task(
        services: dict, sample_env: dict) -> None:
    """A stop or restart (SIGTERM, warm shutdown) waits out the longest task the worker
    allows before Docker's SIGKILL: a task killed there would come back only after the
    broker's visibility timeout."""
    from prodseg.settings import Settings

    worker = services["worker"]
    assert command_of(worker)[:2] == ["prodseg", "worker"]
    m = re.fullmatch(r"(\d+)(s|m|h)", str(worker["stop_grace_period"]))
    assert m, worker["stop_grace_period"]
    grace = int(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    fields = Settings.model_fields
    env = env_of(worker)
    limit = int(resolve(env.get("PRODSEG_TASK_TIME_LIMIT_S", ""), sample_env)
                or fields["task_time_limit_s"].default)
    visibility = int(resolve(env.get("PRODSEG_BROKER_VISIBILITY_TIMEOUT_S", ""), sample_env)
                     or fields["broker_visibility_timeout_s"].default)
    assert grace >= limit + SHUTDOWN_MARGIN_S, (
        f"stop_grace_period {grace} s would SIGKILL a task still within its "
        f"task_time_limit_s ({limit} s)")
    assert f"`stop_grace_period: {worker['stop_grace_period']}`" in (
        DOCKER / "README.md").read_text()  # what docker/README.md says a restart costs
    record("fault", "worker container stopped or restarted mid-task (docker compose)",
           f"stop_grace_period {grace} s >= task_time_limit_s {limit} s + "
           f"{SHUTDOWN_MARGIN_S} s: the warm shutdown ends the task in hand (done, or "
           f"stopped at its time limit) before Docker's SIGKILL, so none waits "
           f"{visibility} s for its visibility timeout; a restart waits at most {grace} s")


def test_worker_and_models_share_one_image_and_flower_has_its_own(services: dict) -> None:
    worker = services["worker"]
    assert worker["build"] == {"context": "..", "dockerfile": "docker/Dockerfile"}
    context = COMPOSE_FILE.parent / worker["build"]["context"]
    assert context.resolve() == ROOT
    assert (context / worker["build"]["dockerfile"]).resolve() == DOCKERFILE.resolve()
    assert services["models"]["image"] == worker["image"]
    assert services["models"].get("build") == worker["build"]
    flower = services["flower"]
    assert flower["build"] == {"context": "..", "dockerfile": "docker/flower.Dockerfile"}
    assert flower["image"] != worker["image"]
    assert "deploy" not in flower  # no GPU


def test_the_flower_image_is_the_client_and_flower_without_torch() -> None:
    instr = dockerfile_instructions(FLOWER_DOCKERFILE)
    runs = " ".join(rest for word, rest in instr if word == "RUN")
    assert "['optional-dependencies']['monitor']" in runs
    assert "worker" not in runs and "torch" not in runs
    assert json.loads([r for w, r in instr if w == "CMD"][-1])[:4] == [
        "celery", "-A", "prodseg.tasks.app", "flower"]
    users = [rest for word, rest in instr if word == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_flower_has_basic_auth_from_required_vars_in_its_config_file(
        compose: dict, services: dict, sample_env: dict[str, str]) -> None:
    """Flower reads ``basic_auth`` from the file ``--conf`` names (tornado executes it as
    Python): the login is in no command line."""
    flower = services["flower"]
    cmd = command_of(flower)
    assert cmd[:4] == ["celery", "-A", "prodseg.tasks.app", "flower"]
    assert not [c for c in cmd if re.match(r"--basic[_-]auth", c)], cmd
    assert f"--conf={config_mounts(flower)['flower-conf']}" in cmd
    content = compose["configs"]["flower-conf"]["content"]
    found = interpolated_vars(content)
    assert set(found) == {"FLOWER_USER", "FLOWER_PASSWORD"}
    assert all(mod.startswith(":?") for mod in found.values())
    options: dict[str, Any] = {}
    exec(resolve(content, sample_env), {}, options)  # as tornado's parse_config_file does
    assert options == {
        "basic_auth": [f"{sample_env['FLOWER_USER']}:{sample_env['FLOWER_PASSWORD']}"]}
    assert "--port=5555" in cmd
    record("security", "Flower in docker/compose.yaml",
           "basic auth from required variables, in a mounted flowerconfig.py (--conf); "
           "compose will not start without them")


def test_only_redis_s3_and_flower_are_published_and_only_on_loopback(services: dict) -> None:
    published = {name: published_ports(svc) for name, svc in services.items()}
    assert {name for name, ports in published.items() if ports} == {"redis", "s3", "flower"}
    for name, ports in published.items():
        for host_ip, _, _ in ports:
            assert host_ip == "127.0.0.1", f"{name} publishes on {host_ip or 'all interfaces'}"
    assert ("127.0.0.1", "6379", "6379") in published["redis"]
    assert ("127.0.0.1", "5555", "5555") in published["flower"]
    shown = "; ".join(f"{n}: " + ", ".join(f"{h}:{p}" for h, p, _ in ports)
                      for n, ports in sorted(published.items()) if ports)
    record("security", "ports the compose file publishes",
           f"only {shown}; the workers publish nothing")


def test_long_running_services_restart_and_are_health_checked(services: dict) -> None:
    for name in ("redis", "s3", "flower"):
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    assert services["worker"]["restart"] == "unless-stopped"
    # the worker's healthcheck is the image's HEALTHCHECK
    assert "healthcheck" not in services["worker"]


# --- variables -------------------------------------------------------------------------


def test_every_compose_variable_is_in_env_example(compose_text: str) -> None:
    used = interpolated_vars(compose_text)
    active, commented = env_example_vars()
    missing = set(used) - active - commented
    assert not missing, f"add to docker/.env.example: {sorted(missing)}"
    required = {name for name, mod in used.items() if mod.startswith((":?", "?"))}
    assert required == {
        "REDIS_PASSWORD",
        "S3_ACCESS_KEY",
        "S3_SECRET_KEY",
        "FLOWER_USER",
        "FLOWER_PASSWORD",
    }
    assert required <= active, "required variables must be set, not commented out"
    # a secret without :? would silently become an empty password
    for name in required:
        for m in re.finditer(r"\$\{" + name + r"([^}]*)\}", compose_text.replace("$$", "")):
            assert m.group(1).startswith(":?"), f"${{{name}{m.group(1)}}} is not required"


def test_env_example_has_no_unused_variables(compose_text: str) -> None:
    active, _ = env_example_vars()
    assert active <= set(interpolated_vars(compose_text)), active - set(
        interpolated_vars(compose_text)
    )


def test_escaped_dollars_are_not_mistaken_for_variables() -> None:
    text = "$$HOME ${A:?x} $$((i + 1)) $B ${C:-d}"
    assert interpolated_vars(text) == {"A": ":?x", "B": "", "C": ":-d"}
    assert resolve(text, {"A": "a", "B": "b"}) == "$HOME a $((i + 1)) b d"
    with pytest.raises(KeyError):
        resolve(text, {"B": "b"})


def test_compose_resolves_with_the_example_env(compose_text: str, sample_env: dict) -> None:
    resolved = resolve(compose_text, sample_env)
    assert "change-me-redis-password" in resolved
    assert "${" not in resolved


# --- Dockerfile ------------------------------------------------------------------------


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    text = path.read_text()
    text = re.sub(r"\\\n", " ", text)  # join continuation lines
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_runs_prodseg_worker_by_default() -> None:
    cmds = [rest for word, rest in dockerfile_instructions() if word == "CMD"]
    assert cmds, "no CMD"
    assert json.loads(cmds[-1]) == ["prodseg", "worker"]
    assert not [rest for word, rest in dockerfile_instructions() if word == "ENTRYPOINT"]


def test_dockerfile_keeps_weights_in_the_models_volume(services: dict) -> None:
    instr = dockerfile_instructions()
    volumes = [rest for word, rest in instr if word == "VOLUME"]
    envs = " ".join(rest for word, rest in instr if word == "ENV")
    cache_dir = env_of(services["worker"])["PRODSEG_MODEL_CACHE_DIR"]
    assert any(cache_dir in v for v in volumes)
    assert f"PRODSEG_MODEL_CACHE_DIR={cache_dir}" in envs
    copied = " ".join(rest for word, rest in instr if word in ("COPY", "ADD"))
    assert not re.search(r"\.(pt|pth|safetensors)\b", copied), "weights must not be baked in"


BLACKWELL_TORCH = (2, 7)  # the first torch release with kernels for compute capability 12.0


def test_the_worker_image_ships_the_tested_torch_which_covers_ampere_to_blackwell() -> None:
    """The image installs torch from PyPI at the constraints.txt pin (what the tests ran
    with), not a base image's older build; torch >= 2.7 has Blackwell kernels."""
    instr = dockerfile_instructions()
    assert [rest for word, rest in instr if word == "FROM"] == ["${PYTHON_IMAGE}"]
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in instr
    runs = " ".join(rest for word, rest in instr if word == "RUN")
    assert "['optional-dependencies']['worker']" in runs
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert tuple(int(v) for v in pins["torch"].split(".")[:2]) >= BLACKWELL_TORCH
    text = DOCKERFILE.read_text()
    for gpu in ("Ampere", "Hopper", "Blackwell", "RTX 50xx", "B200"):
        assert gpu in text, gpu


def test_the_dependency_layer_comes_before_the_readme_and_the_code() -> None:
    """A README or code edit does not rebuild the multi-GB dependency layer."""
    for path in (DOCKERFILE, FLOWER_DOCKERFILE):
        instr = dockerfile_instructions(path)
        copies = [i for i, (w, _) in enumerate(instr) if w == "COPY"]
        first = instr[copies[0]][1]
        assert "pyproject.toml" in first and "constraints.txt" in first, path.name
        assert "README.md" not in first, path.name
        install = next(i for i, (w, r) in enumerate(instr) if w == "RUN" and "pip install" in r)
        assert copies[0] < install < copies[1], path.name
        readme = next(i for i, (w, r) in enumerate(instr) if w == "COPY" and "README.md" in r)
        assert readme > install, path.name


def test_dockerfile_user_is_not_root() -> None:
    instr = dockerfile_instructions()
    users = [rest for word, rest in instr if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert [word for word, _ in instr if word == "HEALTHCHECK"]


def test_dockerfile_health_checks_every_worker_process_and_the_broker() -> None:
    """The image's HEALTHCHECK is prodseg.tasks.health, with the health file that
    ``prodseg worker`` keeps set in the image's environment (a Redis PING alone would
    call a worker with a dead GPU process healthy)."""
    from prodseg.tasks.health import HEALTH_FILE_ENV

    instr = dockerfile_instructions()
    checks = [rest for word, rest in instr if word == "HEALTHCHECK"]
    assert len(checks) == 1
    assert json.loads(checks[0].split("CMD", 1)[1]) == ["python", "-m", "prodseg.tasks.health"]
    envs = " ".join(rest for word, rest in instr if word == "ENV")
    m = re.search(HEALTH_FILE_ENV + r"=(\S+)", envs)
    assert m and m.group(1).startswith("/tmp/"), envs  # writable by the non-root user


def test_dockerfile_copies_what_pyproject_packages() -> None:
    copied = [rest.split()[0].rstrip("/") for w, rest in dockerfile_instructions() if w == "COPY"]
    for needed in ("prodseg", "workers", "tasks", "producer", "storage"):
        assert needed in copied, needed
    assert "README.md" in copied  # pyproject's readme, needed to build the package


@pytest.mark.parametrize("path", [DOCKERFILE, FLOWER_DOCKERFILE], ids=lambda p: p.name)
def test_an_import_check_runs_outside_the_copied_sources(path: Path) -> None:
    """``python -c "import prodseg..."`` puts the working directory first on sys.path: in
    the folder the sources were copied to, their ``prodseg/`` (the shared vocabulary)
    shadows the installed package and the check fails the build (flower.Dockerfile did)."""
    workdir = "/"
    for word, rest in dockerfile_instructions(path):
        if word == "WORKDIR":
            workdir = rest
        if word == "RUN" and re.search(r"python3? -c [\"']import prodseg", rest):
            before = re.split(r"python3? -c [\"']import prodseg", rest)[0]
            moved = re.findall(r"\bcd (\S+)", before)
            where = moved[-1] if moved else workdir
            assert where != "/opt/prodseg", (path.name, rest)


def test_dockerignore_keeps_environments_and_secrets_out_of_the_context() -> None:
    patterns = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip()}
    for needed in (".git", ".venv", "**/__pycache__", "outputs", ".env", "**/.env"):
        assert needed in patterns, needed
    for kept in ("pyproject.toml", "README.md", "prodseg", "workers", "tasks", "docker"):
        assert kept not in patterns, kept


# --- submit.sh -------------------------------------------------------------------------


def test_submit_script_targets_the_published_ports(services: dict) -> None:
    assert os.access(SUBMIT, os.X_OK), "docker/submit.sh must be executable"
    text = SUBMIT.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    redis_host_port = next(p for ip, p, c in published_ports(services["redis"]) if c == "6379")
    s3_port = str(urlsplit(env_of(services["worker"])["PRODSEG_S3_ENDPOINT_URL"]).port)
    s3_host_port = next(p for ip, p, c in published_ports(services["s3"]) if c == s3_port)
    assert f"@127.0.0.1:{redis_host_port}/0" in text
    assert f"http://127.0.0.1:{s3_host_port}" in text
    assert 'exec prodseg submit "$@"' in text
    for var in ("REDIS_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY"):
        assert var in text
