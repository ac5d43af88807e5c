"""The project's own promises: the README's commands, CI and the two dependency lists agree."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    return {r.replace(" ", "") for r in reqs}


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {r.replace(" ", "") for r in pip if not r.startswith("-e")} == _pyproject_requirements()
    assert "python=3.11" in env["dependencies"]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", setup, re.S)


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    main_job, tests = commands
    assert "rouser" in main_job and "pytest" in tests
    assert tests in (ROOT / ".ci" / "run").read_text()


def test_no_torchvision_and_numpy_pinned_below_2_4():
    reqs = _pyproject_requirements()
    assert not any(r.startswith("torchvision") for r in reqs)
    assert any(r.startswith("numpy") and "<2.4" in r for r in reqs)
