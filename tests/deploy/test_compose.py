"""The production files, checked without Docker: docker-compose.yml, Dockerfile, .env.example.

There is no Docker engine here, so these tests hold the files to what Docker would: the
Compose Specification's own JSON schema (a vendored copy, see compose_spec/README.md),
pinned images, named volumes, no secrets in the file, and agreement with the code and docs
(every setting documented, every service the docs name present, the image's entry points
the ones the README shows, and the image's files enough to import both of them).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from models.search_attributes import cli_flags
from settings import Settings

PROJECT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).with_name("compose_spec") / "compose-spec.json"
# Settings only the local runner (`make dev`) reads; containers never need them.
DEV_ONLY = {"temporal_dev_port", "temporal_ui_port", "temporal_db_file", "standin_port", "standin_data_file"}
# A version tag (at least major.minor) or a digest; never `latest` or a bare major version.
PINNED = re.compile(
    r"^[a-z0-9./_-]+(:[A-Za-z0-9_.-]*\d+\.\d+[A-Za-z0-9_.-]*(@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$"
)
SECRET_NAME = re.compile(r"(PASSWORD|PWD|TOKEN|SECRET|API_KEY)$")
INTERPOLATION = re.compile(r"^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$")


@cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROJECT / "docker-compose.yml").read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def readme() -> str:
    return (PROJECT / "README.md").read_text()


def deployment_doc() -> str:
    return (PROJECT / "docs" / "deployment.md").read_text()


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined and comments dropped."""
    text = (PROJECT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(compose())]
    assert errors == []


def test_the_schema_catches_a_broken_compose_file() -> None:
    """The check above can fail: a misspelt key and a wrong type are reported."""
    broken = json.loads(json.dumps(compose()))
    broken["services"]["worker"]["restrat"] = "always"
    broken["services"]["api"]["ports"] = "8000"
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    paths = {"/".join(map(str, e.absolute_path)) for e in validator.iter_errors(broken)}
    assert {"services/worker", "services/api/ports"} <= paths


def test_every_image_is_pinned_to_a_version() -> None:
    images = {name: service["image"] for name, service in services().items() if "build" not in service}
    assert images, "no prebuilt images found"
    unpinned = {name: image for name, image in images.items() if not PINNED.match(image) or ":latest" in image}
    assert unpinned == {}
    bases = [args.split()[0] for instruction, args in dockerfile() if instruction == "FROM"]
    # The Python base to the patch release: a rebuild gets the same interpreter.
    assert bases
    assert all(re.match(r"^python:\d+\.\d+\.\d+-slim", base) for base in bases), bases


@pytest.mark.parametrize(
    "image", ["postgres", "postgres:16", "postgres:latest", "temporalio/server:latest", "python:slim", "ui:2"]
)
def test_the_pin_rule_refuses_floating_tags(image: str) -> None:
    assert not PINNED.match(image)


@pytest.mark.parametrize("image", ["postgres:16.9-bookworm", "temporalio/ui:2.34.0", f"x/y@sha256:{'a' * 64}"])
def test_the_pin_rule_accepts_versions_and_digests(image: str) -> None:
    assert PINNED.match(image)


def test_the_stack_is_the_one_the_issue_asks_for() -> None:
    running = services()
    images = {name: service.get("image", "") for name, service in running.items()}
    assert images["temporal"].startswith("temporalio/server:")
    assert images["temporal-schema"].startswith("temporalio/admin-tools:")
    assert "temporal-sql-tool" in (PROJECT / "deploy" / "temporal" / "setup-schema.sh").read_text()
    assert images["temporal-ui"].startswith("temporalio/ui:")
    assert images["temporal-namespace"].startswith("temporalio/admin-tools:")
    assert images["mattermost"].startswith("mattermost/mattermost-team-edition:")
    assert images["temporal-db"].startswith("postgres:")
    assert images["mattermost-db"].startswith("postgres:")
    # The admin tools match the server they set up.
    version = images["temporal"].split(":")[1]
    assert images["temporal-schema"].split(":")[1] == images["temporal-namespace"].split(":")[1] == version
    # One-shot jobs run to completion before what needs them starts.
    assert running["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    for app in ("api", "worker"):
        assert running[app]["build"] == "."
        assert running[app]["depends_on"]["temporal-namespace"]["condition"] == "service_completed_successfully"
        assert "container_name" not in running[app], "a fixed container name prevents --scale"
    assert running["mattermost"]["environment"]["MM_SERVICESETTINGS_ALLOWEDUNTRUSTEDINTERNALCONNECTIONS"]


def test_the_setup_job_registers_exactly_the_search_attributes_of_the_code() -> None:
    declared = services()["temporal-namespace"]["environment"]["SEARCH_ATTRIBUTES"].split()
    assert declared == [flag.removeprefix("--search-attribute=") for flag in cli_flags()]
    assert "TEMPORAL_RETENTION" in services()["temporal-namespace"]["environment"]


def test_every_database_keeps_its_data_in_a_named_volume() -> None:
    named = set(compose()["volumes"])
    databases = {name: s for name, s in services().items() if s.get("image", "").startswith("postgres:")}
    assert set(databases) == {"temporal-db", "mattermost-db"}
    for name, service in databases.items():
        mounts = [str(v).split(":") for v in service.get("volumes", [])]
        assert any(m[0] in named and m[1] == "/var/lib/postgresql/data" for m in mounts), name
    mattermost_mounts = {str(v).split(":")[0] for v in services()["mattermost"]["volumes"]}
    assert {"mattermost-data", "mattermost-config"} <= mattermost_mounts <= named


def _environment_values() -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    for name, service in services().items():
        environment = service.get("environment", {})
        items = environment.items() if isinstance(environment, dict) else (e.split("=", 1) for e in environment)
        found.extend((name, key, str(value)) for key, value in items)
    return found


def test_no_secret_is_written_in_the_compose_file() -> None:
    literal = [
        (service, key, value)
        for service, key, value in _environment_values()
        if SECRET_NAME.search(key) and not INTERPOLATION.match(value)
    ]
    assert literal == []
    # Credentials inside URLs come from .env too.
    for service, key, value in _environment_values():
        for credentials in re.findall(r"://([^@/]*)@", value):
            user_then_password = r"(\$\{[^}]*\}|[^:$]*):(\$\{[A-Z0-9_]+(:?[-?][^}]*)?\})"
            assert re.fullmatch(user_then_password, credentials), (service, key)
    # .env holds the secrets and must never be committed or baked into the image.
    assert ".env" in (PROJECT / ".gitignore").read_text().split()
    assert ".env" in (PROJECT / ".dockerignore").read_text().split()


def _env_example_names() -> set[str]:
    text = (PROJECT / ".env.example").read_text()
    return set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


def _readme_settings() -> set[str]:
    section = readme().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", cell)}


def test_every_setting_the_code_reads_is_in_env_example_and_the_readme_table() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - _env_example_names() == set()
    assert settings - _readme_settings() == set()
    # And nothing is documented that the code does not read.
    assert _readme_settings() - settings == set()


def test_the_app_containers_get_every_production_setting_and_no_unknown_one() -> None:
    production = {name.upper() for name in Settings.model_fields if name not in DEV_ONLY}
    for app in ("api", "worker"):
        environment = set(services()[app]["environment"])
        assert environment == production, app
    # Every variable the compose file interpolates is explained in .env.example.
    # (`$${NAME}` is a literal `${NAME}` for the container's shell, not an interpolation.)
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", (PROJECT / "docker-compose.yml").read_text()))
    assert interpolated - _env_example_names() == set()


def _compose_commands(text: str) -> list[list[str]]:
    """`docker compose ...` command lines: in code blocks, in inline code, in comments."""
    text = text.replace("\\\n", " ")
    candidates = re.findall(r"`(docker compose [^`]+)`", text)
    candidates += [line for line in text.splitlines() if "docker compose" in line and "`" not in line]
    commands = []
    for line in candidates:
        line = line[line.index("docker compose") :].split("#", 1)[0]
        commands.append(shlex.split(line)[2:])
    return commands


def _services_named(args: list[str]) -> set[str]:
    """The services a `docker compose ...` command line names."""
    global_with_value = {"-f", "--file", "--env-file", "--profile", "-p", "--project-name"}
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in global_with_value else 1
    if i >= len(args):
        return set()
    subcommand, rest = args[i], args[i + 1 :]
    with_value = {"--scale", "-u", "--user", "-w", "--workdir", "-e", "--env", "-t", "--timeout", "-v", "--volume"}
    with_value |= {"--entrypoint", "--name", "-p", "--publish"}
    names: set[str] = set()
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg in with_value:
            if arg == "--scale":
                names.add(rest[i + 1].split("=")[0])
            i += 2
            continue
        if arg.startswith("--scale="):
            names.add(arg.split("=", 1)[1].split("=")[0])
        elif not arg.startswith(("-", "<", "$", ">", "|")):
            names.add(arg)
            if subcommand in ("exec", "run"):
                break  # the rest is the command run in the container
        i += 1
    return names


def test_every_service_the_docs_name_exists() -> None:
    named: set[str] = set()
    for text in (readme(), deployment_doc(), (PROJECT / "docker-compose.yml").read_text()):
        for args in _compose_commands(text):
            named |= _services_named(args)
    assert {"worker", "api", "mattermost"} <= named, named
    assert named - set(services()) == set()
    for text in (readme(), deployment_doc()):
        assert "docker compose up -d --scale worker=3" in text


def test_the_service_name_reader_finds_names_and_skips_commands() -> None:
    assert _services_named(["up", "-d", "--scale", "worker=3", "api"]) == {"worker", "api"}
    assert _services_named(["exec", "temporal-db", "pg_dump", "-U", "temporal"]) == {"temporal-db"}
    assert _services_named(["logs", "-f", "worker"]) == {"worker"}
    assert _services_named(["-f", "other.yml", "up", "-d", "--no-deps", "api"]) == {"api"}


def test_the_image_is_multi_stage_slim_non_root_and_checks_its_health() -> None:
    instructions = dockerfile()
    bases = [args.split()[0] for instruction, args in instructions if instruction == "FROM"]
    assert len(bases) >= 2
    assert all("slim" in base for base in bases)
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    [healthcheck] = [args for instruction, args in instructions if instruction == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    api_check = " ".join(services()["api"]["healthcheck"]["test"])
    assert "/readyz" in api_check
    assert services()["worker"]["healthcheck"]["test"] == ["CMD", "python", "worker.py", "--check"]


def test_the_image_entry_points_are_the_ones_the_readme_documents() -> None:
    [cmd] = [json.loads(args) for instruction, args in dockerfile() if instruction == "CMD"]
    entry_points = {"image default": " ".join(cmd)}
    entry_points |= {name: " ".join(services()[name]["command"]) for name in ("api", "worker")}
    entry_points["worker health"] = " ".join(services()["worker"]["healthcheck"]["test"][1:])
    assert entry_points == {
        "image default": "python -m api",
        "api": "python -m api",
        "worker": "python worker.py",
        "worker health": "python worker.py --check",
    }
    running = readme().split("## Running it for real", 1)[1].split("\n## ", 1)[0]
    for command in entry_points.values():
        assert command in running, command


def test_the_files_the_image_copies_are_enough_to_start_both_entry_points(tmp_path: Path) -> None:
    """Import both entry points from only what the Dockerfile copies (no editable install)."""
    copies = [args.split() for instruction, args in dockerfile() if instruction == "COPY" and "--from" not in args]
    copied = [source for parts in copies for source in parts[:-1] if not source.startswith("--")]
    copied.remove("requirements.lock")  # the build stage's, the locked dependencies
    for source in copied:
        origin = PROJECT / source
        target = tmp_path / source
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.write_bytes(origin.read_bytes())
    site_packages = sysconfig.get_paths()["purelib"]
    result = subprocess.run(
        [sys.executable, "-S", "-c", "import api.__main__, worker, api.app; print(worker.__file__)"],
        cwd=tmp_path,
        env={"PYTHONPATH": f"{tmp_path}:{site_packages}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str(tmp_path / "worker.py")
