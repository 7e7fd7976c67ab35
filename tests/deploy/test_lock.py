"""The locked dependencies agree with pyproject.toml, and every install reads them.

`make lock` (uv's `pip compile`) writes two locks from pyproject.toml: requirements-dev.lock
(runtime and the dev extra), which `make install` installs and so `make test` and `.ci/run`,
and requirements.lock (runtime alone, pinned to the dev lock's versions), which the Docker
image installs. Both with `--require-hashes`, so a fresh machine gets the files that were
tested or nothing. These checks read files only (and ask `make` what it would run): no
server, no network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.deploy.test_compose import dockerfile

PROJECT = Path(__file__).resolve().parents[2]
DEV_LOCK = "requirements-dev.lock"
RUNTIME_LOCK = "requirements.lock"


class LockError(ValueError):
    """A lock entry that pip could not install with `--require-hashes` as the exact release."""


@dataclass(frozen=True)
class Pin:
    version: Version
    marker: str
    hashes: frozenset[str]


def read_lock(text: str) -> dict[NormalizedName, Pin]:
    """Each entry of a pip requirements lock by its normalized name; every one must be `==` with hashes."""
    pins: dict[NormalizedName, Pin] = {}
    for line in text.replace("\\\n", " ").splitlines():
        entry = line.split(" #", 1)[0].strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith("-"):
            # An option (an index, an editable or nested file) would install something the hashes do not name.
            raise LockError(f"an option, not a pinned requirement: {entry}")
        requirement, *hashes = (part.strip() for part in entry.split("--hash="))
        parsed = Requirement(requirement)
        specifiers = list(parsed.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==" or "*" in specifiers[0].version:
            raise LockError(f"not pinned to one release with ==: {requirement}")
        if not hashes:
            raise LockError(f"no --hash: {requirement}")
        name = canonicalize_name(parsed.name)
        if name in pins:
            raise LockError(f"pinned twice: {name}")
        pins[name] = Pin(Version(specifiers[0].version), str(parsed.marker or ""), frozenset(hashes))
    return pins


def disagreements(declared: list[Requirement], pins: dict[NormalizedName, Pin]) -> list[str]:
    """What pyproject.toml asks for that the lock does not pin, or pins outside the range asked for."""
    found = []
    for requirement in declared:
        pin = pins.get(canonicalize_name(requirement.name))
        if pin is None:
            found.append(f"{requirement}: missing from the lock")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            found.append(f"{requirement}: the lock pins {pin.version}")
    return found


def pyproject_dependencies() -> tuple[list[Requirement], list[Requirement]]:
    """(runtime, dev extra) as pyproject.toml declares them."""
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(spec) for spec in project["dependencies"]]
    dev = [Requirement(spec) for spec in project["optional-dependencies"]["dev"]]
    return runtime, dev


def lock(name: str) -> dict[NormalizedName, Pin]:
    return read_lock((PROJECT / name).read_text())


def make(*arguments: str) -> str:
    """What `make` prints for these arguments in the project (dry runs only)."""
    # Run under `make test`, the parent's flags (jobserver descriptors, -s) are not this make's.
    env = {key: value for key, value in os.environ.items() if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    executable = shutil.which("make")
    assert executable, "make is not installed"
    result = subprocess.run(
        [executable, "--no-print-directory", *arguments],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_the_dev_lock_pins_every_dependency_pyproject_names() -> None:
    runtime, dev = pyproject_dependencies()
    assert disagreements(runtime + dev, lock(DEV_LOCK)) == []


def test_the_runtime_lock_pins_every_runtime_dependency() -> None:
    runtime, _ = pyproject_dependencies()
    assert disagreements(runtime, lock(RUNTIME_LOCK)) == []


def test_the_image_gets_the_releases_the_tests_ran_with() -> None:
    """The runtime lock is the dev lock's runtime part: same versions, markers and files."""
    dev = lock(DEV_LOCK)
    differing = {name: pin for name, pin in lock(RUNTIME_LOCK).items() if dev.get(name) != pin}
    assert differing == {}


def test_the_checks_catch_a_lock_that_disagrees_with_pyproject() -> None:
    pins = read_lock(
        "# a comment\n"
        "fastapi==0.115.0 \\\n    --hash=sha256:aa \\\n    --hash=sha256:bb\n    # via example (pyproject.toml)\n"
        "colorama==0.4.6 ; sys_platform == 'win32' \\\n    --hash=sha256:cc\n"
    )
    assert pins[canonicalize_name("fastapi")] == Pin(Version("0.115.0"), "", frozenset({"sha256:aa", "sha256:bb"}))
    assert pins[canonicalize_name("colorama")].marker == 'sys_platform == "win32"'
    assert disagreements([Requirement("FastAPI>=0.115"), Requirement("colorama")], pins) == []
    assert disagreements([Requirement("fastapi>=0.116"), Requirement("py_spy>=0.4")], pins) == [
        "fastapi>=0.116: the lock pins 0.115.0",
        "py_spy>=0.4: missing from the lock",
    ]
    # An entry dropped from the real lock is reported.
    dropped = {name: pin for name, pin in lock(RUNTIME_LOCK).items() if name != "temporalio"}
    assert disagreements([Requirement("temporalio>=1.35")], dropped) == ["temporalio>=1.35: missing from the lock"]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("fastapi>=0.115 --hash=sha256:aa", "not pinned"),
        ("fastapi==0.115.* --hash=sha256:aa", "not pinned"),
        ("fastapi==0.115.0", "no --hash"),
        ("--index-url https://example.invalid/simple", "an option"),
        ("-e .", "an option"),
        ("fastapi==0.115.0 --hash=sha256:aa\nFastAPI==0.115.0 --hash=sha256:aa", "pinned twice"),
    ],
)
def test_an_entry_pip_could_not_install_as_locked_is_refused(entry: str, reason: str) -> None:
    with pytest.raises(LockError, match=reason):
        read_lock(entry + "\n")


def test_make_test_and_so_ci_install_from_the_dev_lock_with_hashes() -> None:
    ci = [line.strip() for line in (PROJECT / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in ci if line and not line.startswith("#")]
    assert "make test" in commands
    assert not any("pip install" in command for command in commands), "CI installs only through make"
    # -B: as on a fresh machine, every target out of date; -n: print the commands, run none.
    installs = [line.split() for line in make("-Bn", "test").splitlines() if "pip install" in line]
    assert installs, "make test installs nothing"
    for words in installs:
        # The locked dependencies checked against their hashes, or the project alone without dependencies.
        assert "--no-deps" in words or ("--require-hashes" in words and words[words.index("-r") + 1] == DEV_LOCK), words
    assert any(DEV_LOCK in words for words in installs)


def test_make_install_reinstalls_when_pyproject_or_the_lock_changes_and_only_then() -> None:
    """The stamp's prerequisites: a change to either reinstalls, and nothing else makes it run again."""
    database = make("-pn", "install").splitlines()
    [rule] = [line for line in database if line.startswith(".venv/.installed:")]
    prerequisites, _, order_only = rule.split(":", 1)[1].partition("|")
    assert sorted(prerequisites.split()) == sorted(["pyproject.toml", DEV_LOCK])
    assert order_only.split() == [".venv/bin/python"]


def test_the_image_installs_the_runtime_lock_with_hashes() -> None:
    instructions = dockerfile()
    build = instructions[: next(i for i, (op, args) in enumerate(instructions[1:], 1) if op == "FROM")]
    copied = [args.split()[:-1] for op, args in build if op == "COPY"]
    assert [RUNTIME_LOCK] in copied
    installs = [args.split() for op, args in instructions if op == "RUN" and "pip install" in args]
    assert installs
    for words in installs:
        assert "--require-hashes" in words
        assert words[words.index("-r") + 1] == RUNTIME_LOCK
