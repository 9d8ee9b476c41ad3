"""Prompts as code both ways: push, --dry-run, --check, pull, and bad bundle files."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import SUPPORT_YAML, Run, write_bundle
from tests.conftest import Api


class TestPush:
    def test_push_creates_the_bundle_and_publishes_then_is_unchanged(self, run: Run, tmp_path: Path) -> None:
        write_bundle(tmp_path)
        first = run("push", str(tmp_path))
        assert first.exit_code == 0, first.output
        assert "published support-bot@1" in first.stdout
        again = run("push", str(tmp_path))
        assert again.exit_code == 0
        assert "unchanged support-bot@1" in again.stdout

    def test_dry_run_exits_0_when_unchanged_and_3_with_the_diff_after_an_edit(
        self, run: Run, tmp_path: Path, api: Api
    ) -> None:
        directory = write_bundle(tmp_path)
        assert run("push", str(tmp_path)).exit_code == 0
        unchanged = run("push", "--dry-run", str(tmp_path))
        assert unchanged.exit_code == 0, unchanged.output
        assert "unchanged support-bot@1" in unchanged.stdout

        prompt = directory / "system.j2"
        prompt.write_text(prompt.read_text().replace("support agent", "helpful support agent"))
        pending = run("push", "--dry-run", str(tmp_path))
        assert pending.exit_code == 3, pending.output
        assert "-You are {{ company }}'s support agent." in pending.stdout
        assert "+You are {{ company }}'s helpful support agent." in pending.stdout
        assert api.versions_count() == 1  # a dry run writes nothing

    def test_a_params_edit_shows_in_the_dry_run(self, run: Run, tmp_path: Path) -> None:
        directory = write_bundle(tmp_path)
        assert run("push", str(tmp_path)).exit_code == 0
        (directory / "bundle.yaml").write_text(SUPPORT_YAML.replace("temperature: 0.2", "temperature: 0.7"))
        pending = run("push", "--dry-run", str(directory))
        assert pending.exit_code == 3
        assert "params:" in pending.stdout and "0.7" in pending.stdout

    def test_check_reports_files_not_published(self, run: Run, tmp_path: Path) -> None:
        write_bundle(tmp_path)
        result = run("push", "--check", str(tmp_path))
        assert result.exit_code == 3
        assert "support-bot: files are not published" in result.stdout

    def test_check_reports_server_versions_the_files_do_not_hold(
        self, run: Run, tmp_path: Path, api: Api
    ) -> None:
        write_bundle(tmp_path)
        assert run("push", str(tmp_path)).exit_code == 0
        assert run("push", "--check", str(tmp_path)).exit_code == 0
        api.publish(system_prompt="Published from the console, {{ tone }}.", variables={"tone": {}})
        result = run("push", "--check", str(tmp_path))
        assert result.exit_code == 3, result.output
        assert "the server has support-bot@2 that the files do not hold" in result.stdout

    def test_push_records_the_git_commit_and_dirty_flag(self, run: Run, tmp_path: Path, api: Api) -> None:
        if shutil.which("git") is None:
            pytest.skip("git is not installed")
        write_bundle(tmp_path)
        git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
        subprocess.run([*git, "-C", str(tmp_path), "add", "."], check=True)
        subprocess.run([*git, "-C", str(tmp_path), "commit", "-qm", "bundles"], check=True)
        head = subprocess.run(
            ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        assert run("push", str(tmp_path)).exit_code == 0
        lineage = api.client.get("/api/bundles/support-bot/versions/1", headers=api.keys["runtime"]).json()[
            "lineage"
        ]
        assert lineage["code_commit"] == head
        assert lineage["dirty"] is False


class TestBadFiles:
    def test_a_batch_with_one_invalid_bundle_writes_nothing(self, run: Run, tmp_path: Path, api: Api) -> None:
        write_bundle(tmp_path, "good-bot")
        write_bundle(tmp_path, "bad-bot", yaml_text=SUPPORT_YAML.replace("max_tokens: 512", "max_tokens: 0"))
        result = run("push", str(tmp_path))
        assert result.exit_code == 1
        assert "bad-bot/bundle.yaml:14: field params.max_tokens" in result.stderr
        assert "nothing was published" in result.stderr
        listed = api.client.get("/api/bundles", headers=api.keys["runtime"]).json()
        assert listed == []

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            (("model: openai/gpt-4o-mini", "model: nosuchprov/x"), "model"),
            (("max_tokens: 512", "max_tokens: 512\n  api_base: http://10.0.0.1/v1"), "params.api_base"),
        ],
    )
    def test_a_bundle_only_the_server_refuses_still_publishes_nothing(
        self, run: Run, tmp_path: Path, api: Api, change: tuple[str, str], field: str
    ) -> None:
        write_bundle(tmp_path, "a-bot")
        write_bundle(tmp_path, "b-bot", yaml_text=SUPPORT_YAML.replace(*change))
        result = run("push", str(tmp_path))
        assert result.exit_code == 1, result.output
        assert "b-bot: refused (422" in result.stderr and field in result.stderr
        assert "refused by the server; nothing was published" in result.stderr
        assert api.client.get("/api/bundles", headers=api.keys["runtime"]).json() == []

    def test_malformed_yaml_names_the_file_line_and_field(self, run: Run, tmp_path: Path) -> None:
        broken = SUPPORT_YAML.replace("  temperature: 0.2\n", "  temperature: [0.2\n")
        write_bundle(tmp_path, yaml_text=broken)
        result = run("push", str(tmp_path))
        assert result.exit_code == 1
        line = next(x for x in result.stderr.splitlines() if "bundle.yaml" in x)
        assert "support-bot/bundle.yaml:" in line
        assert "bundle.yaml:14: field params.temperature: invalid YAML" in line

    def test_an_unknown_field_is_refused_with_its_line(self, run: Run, tmp_path: Path) -> None:
        write_bundle(tmp_path, yaml_text=SUPPORT_YAML + "temprature: 0.3\n")
        result = run("push", str(tmp_path))
        assert result.exit_code == 1
        assert "support-bot/bundle.yaml:15: field temprature: unknown field" in result.stderr

    def test_a_field_given_twice_is_refused_not_last_one_wins(self, run: Run, tmp_path: Path) -> None:
        twice = SUPPORT_YAML.replace("  max_tokens: 512\n", "  max_tokens: 512\n  temperature: 0.9\n")
        write_bundle(tmp_path, yaml_text=twice)
        result = run("push", str(tmp_path))
        assert result.exit_code == 1
        assert re.search(
            r"support-bot/bundle.yaml:1[56]: field params.temperature: given twice", result.stderr
        )

    def test_an_unknown_param_is_refused_with_its_line(self, run: Run, tmp_path: Path) -> None:
        write_bundle(tmp_path, yaml_text=SUPPORT_YAML.replace("max_tokens: 512", "max_tokenz: 512"))
        result = run("push", str(tmp_path))
        assert result.exit_code == 1
        assert "support-bot/bundle.yaml:14: field params.max_tokenz" in result.stderr

    def test_an_undeclared_template_variable_is_refused_before_sending(
        self, run: Run, tmp_path: Path
    ) -> None:
        write_bundle(tmp_path, prompt="Hello {{ customer }}")
        result = run("push", str(tmp_path))
        assert result.exit_code == 1
        assert "system.j2" in result.stderr and "customer" in result.stderr

    def test_no_bundles_is_a_usage_error(self, run: Run, tmp_path: Path) -> None:
        assert run("push", str(tmp_path)).exit_code == 2


class TestPull:
    def test_pull_then_push_is_unchanged_and_byte_stable(self, run: Run, tmp_path: Path, api: Api) -> None:
        api.create_bundle()
        api.publish(system_prompt="Line one for {{ company }}\r\nline two, {{ tone }}  \n\n", message="crlf")
        pulled = run("pull", "support-bot", str(tmp_path / "a"))
        assert pulled.exit_code == 0, pulled.output
        prompt = (tmp_path / "a" / "support-bot" / "system.j2").read_bytes()
        assert prompt == b"Line one for {{ company }}\r\nline two, {{ tone }}  \n\n"
        pushed = run("push", "--dry-run", str(tmp_path / "a"))
        assert pushed.exit_code == 0, pushed.output
        pushed = run("push", str(tmp_path / "a"))
        assert "unchanged support-bot@1" in pushed.stdout
        assert run("pull", "support-bot", str(tmp_path / "b")).exit_code == 0
        for name in ("bundle.yaml", "system.j2"):
            assert (tmp_path / "a" / "support-bot" / name).read_bytes() == (
                tmp_path / "b" / "support-bot" / name
            ).read_bytes()

    def test_pull_takes_production_before_the_newest(self, run: Run, tmp_path: Path, api: Api) -> None:
        api.create_bundle()
        api.publish()
        api.to_production(1)
        api.publish(system_prompt="Newer, {{ tone }}", variables={"tone": {}})
        assert run("pull", "support-bot", str(tmp_path)).exit_code == 0
        assert (tmp_path / "support-bot" / "system.j2").read_text().startswith("You are")
        assert run("pull", "--version", "2", "support-bot", str(tmp_path)).exit_code == 0
        assert (tmp_path / "support-bot" / "system.j2").read_text() == "Newer, {{ tone }}"

    def test_pull_of_an_unknown_bundle_is_one_line_and_exit_1(self, run: Run, tmp_path: Path) -> None:
        result = run("pull", "nope", str(tmp_path))
        assert result.exit_code == 1
        assert len(result.stderr.strip().splitlines()) == 1
        assert "404" in result.stderr


class TestRepositoryPrompts:
    def test_the_prompts_folder_publishes_and_the_local_digest_matches_the_server(
        self, run: Run, api: Api
    ) -> None:
        from app.cli.files import bundle_directories, load_bundle

        prompts = Path(__file__).resolve().parents[2] / "prompts"
        result = run("push", str(prompts))
        assert result.exit_code == 0, result.output
        for directory in bundle_directories([prompts]):
            local = load_bundle(directory)
            served = api.client.get(f"/api/bundles/{local.name}/versions/1", headers=api.keys["runtime"])
            assert served.json()["digest"] == local.digest
        assert run("push", "--check", str(prompts)).exit_code == 0
