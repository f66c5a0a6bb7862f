"""The container recipe: Dockerfile, .dockerignore, docker-compose.yml, .env.example and the wheel the image installs.

No Docker engine is needed: the files are parsed and checked for the properties the scale-out deployment relies on,
and the wheel is built the way the image's builder stage builds it (non-editable)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from classifier.artifact import _PINNED
from service.settings import DEMO_SECRET, Settings, UnsafeSettingsError

ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = str(Settings.model_config.get("env_prefix", ""))
# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
# variables compose interpolates that are not Hotline settings (they configure the postgres image)
NON_HOTLINE_VARIABLES = {"POSTGRES_PASSWORD"}
# the required secrets: compose must refuse to start without them
REQUIRED_SECRETS = {"HOTLINE_WEBHOOK_SECRET", "POSTGRES_PASSWORD"}
SECRET_KEY = re.compile(r"SECRET|PASSWORD|TOKEN|WEBHOOKS|KEY", re.IGNORECASE)
STRONG_SECRET = "test-packaging-secret-0123456789abcdef"


# ---------------------------------------------------------------- Dockerfile


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for instruction in self.all("ENV"):
            # ENV KEY=value KEY2=value2 (the project's style; the legacy "ENV KEY value" form is not used)
            for pair in instruction.args.split():
                key, sep, value = pair.partition("=")
                assert sep, f"ENV 请用 KEY=value 形式: {instruction.args}"
                found[key] = value
        return found

    def copies(self) -> list[tuple[dict[str, str], list[str], str]]:
        """(flags, sources, destination) of every COPY."""
        result = []
        for instruction in self.all("COPY"):
            words = instruction.args.split()
            flags = {w[2:].partition("=")[0]: w.partition("=")[2] for w in words if w.startswith("--")}
            paths = [w for w in words if not w.startswith("--")]
            result.append((flags, paths[:-1], paths[-1]))
        return result


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions grouped by stage; continuation lines joined and comment lines dropped, as Docker does."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile 以续行符结尾"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name, instructions=[]))
        else:
            assert stages, f"FROM 之前出现指令: {line}"
            stages[-1].instructions.append(Instruction(keyword, args))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def _exec_form(instruction: Instruction) -> list[str]:
    args = instruction.args
    if instruction.keyword == "HEALTHCHECK":
        args = args[args.index("CMD ") + len("CMD ") :]
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), instruction
    return value


def test_parser_sees_continuations_and_stages() -> None:
    # the checks below are only as good as the parser: make sure it can tell a wrong Dockerfile from a right one
    parsed = parse_dockerfile("FROM a AS b\n# c\nRUN x \\\n    y\nFROM a\nUSER root\n")
    assert [(s.base, s.name) for s in parsed] == [("a", "b"), ("a", None)]
    assert parsed[0].instructions == [Instruction("RUN", "x  y")]
    assert parsed[1].all("USER") == [Instruction("USER", "root")]


def test_multi_stage_on_the_same_slim_base(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    # the venv is copied between stages: its interpreter symlinks only hold if both stages share the base image
    assert {s.base for s in stages} == {"python:3.11-slim-bookworm"}
    assert stages[0].name == "builder"


def test_builder_installs_the_project_non_editable_without_dev_extras(stages: list[Stage], final: Stage) -> None:
    builder = stages[0]
    installs = [i.args for i in builder.all("RUN") if "pip install" in i.args]
    assert installs, "builder 阶段没有 pip install"
    for command in installs:
        assert not re.search(r"(^|\s)(-e|--editable)(\s|$)", command), command
        assert "[dev" not in command, command
    assert any(re.search(r"pip install\b.*\s\.(\s|$)", command) for command in installs)
    venv_copies = [(flags, src, dst) for flags, src, dst in final.copies() if flags.get("from") == "builder"]
    assert venv_copies, "final 阶段没有从 builder 复制 venv"
    venv = venv_copies[0][2]
    assert final.env()["PATH"].startswith(f"{venv}/bin:"), "hotline 命令须在 PATH 上"


def test_model_libraries_pinned_from_the_model_card(stages: list[Stage]) -> None:
    # the shipped model refuses another minor version of these libraries: the image must install the card's versions
    runs = " ".join(i.args for i in stages[0].all("RUN"))
    match = re.search(r"for name in (\([^)]*\))", runs)
    assert match, "builder 阶段须按模型卡固定库版本"
    assert tuple(ast.literal_eval(match.group(1))) == tuple(_PINNED)
    assert "--constraint" in runs
    card = json.loads((ROOT / "models" / "street" / "card.json").read_text(encoding="utf-8"))
    assert all(name in card["libraries"] for name in _PINNED)


def test_final_stage_runs_as_non_root(final: Stage) -> None:
    users = final.all("USER")
    assert users, "final 阶段没有 USER"
    user = users[-1].args.split(":")[0]
    assert user not in ("root", "0", "")
    # the USER must come after every RUN/COPY that needs root, i.e. it is in force when the CMD runs
    last_user = max(n for n, i in enumerate(final.instructions) if i.keyword == "USER")
    assert all(i.keyword != "RUN" for i in final.instructions[last_user:])


def test_rules_and_model_baked_in_and_found_by_absolute_paths(final: Stage) -> None:
    env = final.env()
    rules, model = env.get(f"{ENV_PREFIX}RULES", ""), env.get(f"{ENV_PREFIX}MODEL", "")
    # relative paths resolve against the working directory, which `docker run -w` or a k8s pod spec may change
    assert PurePosixPath(rules).is_absolute() and PurePosixPath(model).is_absolute()
    copied = {(tuple(src), dst.rstrip("/")) for flags, src, dst in final.copies() if "from" not in flags}
    assert (("rules.yaml",), rules) in copied
    assert (("models/street/",), model) in copied or (("models/street",), model) in copied
    assert (ROOT / "rules.yaml").is_file() and (ROOT / "models" / "street" / "model.skops").is_file()


def test_every_image_setting_is_a_real_setting(final: Stage) -> None:
    for key in final.env():
        if key.startswith(ENV_PREFIX):
            assert key[len(ENV_PREFIX) :].lower() in Settings.model_fields, f"{key} 不是 Settings 字段"


def test_api_defaults_healthcheck_port_and_command(final: Stage) -> None:
    assert final.env()[f"{ENV_PREFIX}SCHEDULER"] == "0"
    assert [i.args for i in final.all("EXPOSE")] == ["8000"]
    checks = final.all("HEALTHCHECK")
    assert len(checks) == 1
    probe = _exec_form(checks[0])
    assert probe[0] == "python" and "curl" not in " ".join(probe)  # no curl in the slim image
    assert "http://127.0.0.1:8000/healthz" in " ".join(probe)
    command = _exec_form(final.all("CMD")[-1])
    assert command[:2] == ["hotline", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0" and command[command.index("--port") + 1] == "8000"
    # migrations are the prestart step's job, never each API container's
    assert "--no-migrate" in command


# ---------------------------------------------------------------- .dockerignore


def _dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_dockerignore_is_an_allowlist_covering_every_copy(stages: list[Stage]) -> None:
    patterns = _dockerignore()
    # everything excluded first: .env, var/ (SQLite, demo tokens) and future directories never reach the daemon
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert not {".env", "var", ".git", ".venv", "tests", "bench"} & allowed
    for stage in stages:
        for flags, sources, _ in stage.copies():
            if "from" in flags:
                continue
            for source in sources:
                parts = PurePosixPath(source.rstrip("/")).parts
                assert any("/".join(parts[:n]) in allowed for n in range(1, len(parts) + 1)), (
                    f"COPY {source} 被 .dockerignore 排除"
                )
                assert (ROOT / source).exists(), source


# ---------------------------------------------------------------- docker-compose.yml


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))  # resolves the << merge keys
    assert isinstance(data, dict)
    return data


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = compose["services"]
    assert isinstance(services, dict)
    return services


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the "- KEY=value" form
        env = {item.partition("=")[0]: item.partition("=")[2] for item in env}
    return {str(k): str(v) for k, v in env.items()}


def _hotline_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _services(compose).items() if _command(s)[:1] == ["hotline"]}


def _api_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _hotline_services(compose).items() if _command(s)[1:2] == ["serve"]}


def test_topology_two_apis_one_scheduler_one_migrate(compose: dict[str, Any]) -> None:
    hotline = _hotline_services(compose)
    apis = _api_services(compose)
    assert sorted(apis) == ["api1", "api2"]
    schedulers = [name for name, s in hotline.items() if _command(s) == ["hotline", "scheduler"]]
    assert schedulers == ["scheduler"]
    migrations = [name for name, s in hotline.items() if _command(s) == ["hotline", "db", "upgrade"]]
    assert migrations == ["migrate"]
    assert set(hotline) == {*apis, *schedulers, *migrations}, "未知的 Hotline 服务"
    # all of them run the one image built from this repository
    assert len({(s.get("build"), s.get("image")) for s in hotline.values()}) == 1


def test_apis_never_run_jobs_or_migrations(compose: dict[str, Any]) -> None:
    published = []
    for name, api in _api_services(compose).items():
        assert _environment(api).get(f"{ENV_PREFIX}SCHEDULER") == "0", name
        assert "--no-migrate" in _command(api), name
        ports = [str(p) for p in api.get("ports", [])]
        assert len(ports) == 1, name
        published.append(ports[0].split(":")[-2])
    assert sorted(published) == ["8001", "8002"]


def test_migrate_is_a_prestart_step_everyone_waits_for(compose: dict[str, Any]) -> None:
    services = _services(compose)
    migrate = services["migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    for name in [*_api_services(compose), "scheduler"]:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_http_less_containers_disable_the_image_healthcheck(compose: dict[str, Any]) -> None:
    # otherwise the image's /healthz probe marks the scheduler unhealthy for ever
    services = _services(compose)
    for name in ("scheduler", "migrate"):
        assert services[name].get("healthcheck", {}).get("disable") is True, name
    for name, api in _api_services(compose).items():
        assert not api.get("healthcheck", {}).get("disable", False), name


def test_postgres_service(compose: dict[str, Any]) -> None:
    postgres = _services(compose)["postgres"]
    assert str(postgres["image"]).split(":")[0] == "postgres" and str(postgres["image"]).startswith("postgres:15")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in (compose.get("volumes") or {}), "数据须在命名卷中"
    assert "ports" not in postgres, "数据库不应暴露到宿主机"


def test_secrets_are_only_references(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for literal in (DEMO_SECRET, *_env_example().values()):
        if len(literal) >= 8:  # placeholders and the demo secret must never be written into the compose file
            assert literal not in text, literal
    for name, service in _services(compose).items():
        for key, value in _environment(service).items():
            if SECRET_KEY.search(key):
                assert INTERPOLATION.fullmatch(value), f"{name}.{key} 须引用环境变量，不能写值"
            if key.endswith("DATABASE_URL") and not INTERPOLATION.fullmatch(value):
                password = value.split("://", 1)[1].rsplit("@", 1)[0].partition(":")[2]
                assert INTERPOLATION.fullmatch(password), f"{name}.{key} 的密码须引用环境变量"
    referenced = {m["name"]: m["op"] for m in INTERPOLATION.finditer(text)}
    for secret in REQUIRED_SECRETS:
        # ":?" makes compose refuse to start while the secret is unset or empty
        assert referenced.get(secret) == ":?", f"{secret} 须用 ${{{secret}:?…}}"


def test_every_referenced_variable_is_a_setting_and_documented(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    example = _env_example()
    for match in INTERPOLATION.finditer(text):
        name = match["name"]
        assert name in example, f"{name} 未写入 .env.example"
        if name not in NON_HOTLINE_VARIABLES:
            assert name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].lower() in Settings.model_fields, name
    for service_name, service in _hotline_services(compose).items():
        for key in _environment(service):
            assert key.startswith(ENV_PREFIX), f"{service_name}.{key}"
            assert key[len(ENV_PREFIX) :].lower() in Settings.model_fields, f"{service_name}.{key} 不是 Settings 字段"


# ---------------------------------------------------------------- what the containers actually get


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, line
            values[key.strip()] = value.strip()
    return values


class MissingVariable(Exception):
    pass


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's interpolation for the forms the project uses (no nesting)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        current = variables.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and current == "")):
            raise MissingVariable(f"{name}: {arg}")
        if op == ":-" and not current:
            return arg
        if op == "-" and current is None:
            return arg
        return current or ""

    return INTERPOLATION.sub(one, value)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    # the developer's own HOTLINE_* variables must not leak into what a container would see
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    yield monkeypatch


def _container_settings(
    service: dict[str, Any], image_env: dict[str, str], variables: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    env = {k: v for k, v in image_env.items() if k.startswith(ENV_PREFIX)}
    env.update({k: interpolate(v, variables) for k, v in _environment(service).items()})
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


def test_compose_refuses_to_start_without_the_secrets(compose: dict[str, Any]) -> None:
    variables = _env_example()
    for secret in REQUIRED_SECRETS:
        for missing in ({k: v for k, v in variables.items() if k != secret}, {**variables, secret: ""}):
            with pytest.raises(MissingVariable):
                for service in _services(compose).values():
                    for value in _environment(service).values():
                        interpolate(value, missing)


def test_containers_start_with_real_secrets_and_refuse_the_placeholders(
    compose: dict[str, Any], final: Stage, clean_env: pytest.MonkeyPatch
) -> None:
    variables = {**_env_example(), "HOTLINE_WEBHOOK_SECRET": STRONG_SECRET, "POSTGRES_PASSWORD": "a1b2c3d4e5f6"}
    for name, service in _hotline_services(compose).items():
        # optional settings arrive as empty strings: they must mean "not set", not a parse error
        settings = _container_settings(service, final.env(), variables, clean_env)
        settings.check_safe()
        assert settings.database_url == "postgresql://hotline:a1b2c3d4e5f6@postgres:5432/hotline", name
        assert settings.notify_webhooks == {} and not settings.callback_url, name
        assert str(settings.rules) == final.env()[f"{ENV_PREFIX}RULES"], name
        if name in _api_services(compose):  # `hotline scheduler` and `db upgrade` do not read the flag
            assert settings.scheduler is False, name
    # the committed example values are placeholders: a stack started from them unchanged must not come up
    service = _api_services(compose)["api1"]
    with pytest.raises(UnsafeSettingsError):
        _container_settings(service, final.env(), _env_example(), clean_env).check_safe()


# ---------------------------------------------------------------- the wheel the image installs


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """Build the wheel from exactly what .dockerignore lets into the build context (not the working tree)."""
    context = tmp_path_factory.mktemp("context")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, context / name)
    for package in ("classifier", "service"):
        shutil.copytree(ROOT / package, context / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--quiet", "--disable-pip-version-check", "-w", out],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = out.glob("hotline-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_contains_migrations_templates_and_static_files(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "service/migrations/env.py" in names
    assert "service/migrations/script.py.mako" in names
    for folder in ("service/migrations/versions", "service/web/templates", "service/web/static"):
        expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).iterdir() if p.is_file()}
        expected = {n for n in expected if not n.endswith(".pyc")}
        assert expected, folder
        assert expected <= names, f"{folder}: 缺少 {sorted(expected - names)}"


def test_wheel_contains_every_source_file(wheel: zipfile.ZipFile) -> None:
    # any data file added later (a template, a migration, a static asset) must reach the image too
    names = set(wheel.namelist())
    for package in ("classifier", "service"):
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert path.relative_to(ROOT).as_posix() in names, f"wheel 缺少 {path.relative_to(ROOT)}"
    assert not any(n.startswith(("tests/", "bench/", "models/")) for n in names)


def test_wheel_declares_the_console_command(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(entry_points).decode()
    assert re.search(r"^hotline\s*=\s*service\.cli:main$", text, re.MULTILINE), text
