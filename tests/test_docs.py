"""Docs: every command has help text and appears in the README; the README keeps its promises."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from ships.cli import app

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _leaves(cmd, path: tuple[str, ...] = ()):
    if hasattr(cmd, "commands"):  # a group
        for name, sub in cmd.commands.items():
            yield from _leaves(sub, path + (name,))
    else:
        yield path, cmd


COMMANDS = list(_leaves(typer.main.get_command(app)))


def test_every_command_has_help_and_is_in_the_readme():
    assert len(COMMANDS) >= 5
    for path, cmd in COMMANDS:
        name = "ships " + " ".join(path)
        assert (cmd.help or "").strip(), f"{name} has no help text"
        assert f"`{name}" in README, f"{name} is missing from the README's CLI reference"
        for param in cmd.params:
            if param.param_type_name == "option" and param.name != "help":
                assert (param.help or "").strip(), f"{name} {param.opts[0]} has no help text"


def test_readme_has_the_two_commands_and_ci_runs_the_test_one():
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    commands = [l for l in blocks[0].splitlines() if l and not l.startswith("#")]
    assert len(commands) == 2
    main, tests = commands
    assert "pip install" in main and "ships demo" in main
    assert tests == "bash .ci/run"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pytest" in ci and "apt-get install" in ci and "chromium" in ci


def test_changelog_and_licences_exist():
    assert (ROOT / "CHANGELOG.md").read_text().startswith("# Changelog")
    assert "CC BY-SA 4.0" in (ROOT / "competition" / "data" / "LICENSE-DATA.md").read_text()
    assert "MIT" in (ROOT / "LICENSE").read_text()
