"""Fixtures for driving the ``chatver`` client commands against a live test server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from app.cli.main import app

Run = Callable[..., Result]

SUPPORT_YAML = """\
name: support-bot
description: Customer support agent
model: openai/gpt-4o-mini
semver: 1.0.0
message: Initial support prompt
variables:
  company:
    default: Acme
  tone:
    required: true
    description: e.g. friendly
params:
  temperature: 0.2
  max_tokens: 512
"""
SUPPORT_PROMPT = "You are {{ company }}'s support agent.\nAnswer in a {{ tone }} tone.\n"


def secret(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def run(server_url: str, keys: dict[str, dict[str, str]]) -> Run:
    """``run("bundles", "--json", role="editor")``: the CLI's result, with CHATVER_URL/API_KEY set."""
    runner = CliRunner()

    def invoke(*args: str, role: str = "editor") -> Result:
        env = {"CHATVER_URL": server_url, "CHATVER_API_KEY": secret(keys[role]), "COLUMNS": "200"}
        result = runner.invoke(app, list(args), env=env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result

    return invoke


def write_bundle(
    root: Path, name: str = "support-bot", yaml_text: str = SUPPORT_YAML, prompt: str = SUPPORT_PROMPT
) -> Path:
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bundle.yaml").write_text(yaml_text.replace("support-bot", name), encoding="utf-8")
    (directory / "system.j2").write_text(prompt, encoding="utf-8")
    return directory
