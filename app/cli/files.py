"""Bundles as files: DIR/<name>/bundle.yaml + system.j2, read strictly and written back byte-stably."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.bundles.digest import config_digest, normalized_config
from app.bundles.schemas import BUNDLE_NAME, VersionCreate
from app.bundles.templating import check_template
from app.errors import ChatverError

BUNDLE_FILE, PROMPT_FILE = "bundle.yaml", "system.j2"
BUNDLE_FIELDS = ("name", "description", "system_prompt_file")
VERSION_FIELDS = ("model", "semver", "message", "parent", "variables", "checkpoint", "params")
METADATA_FIELDS = ("lineage", "metrics")
KNOWN_FIELDS = (*BUNDLE_FIELDS, *VERSION_FIELDS, *METADATA_FIELDS)
GIT_LINEAGE = ("code_commit", "dirty")  # recorded by push from git, so never written back by pull
_KEY_LINE = re.compile(r"^\s*([A-Za-z_][\w-]*)\s*:")


class BundleFileError(Exception):
    """A bundle directory that cannot be published: file, line and field in the message."""


@dataclass
class LocalBundle:
    directory: Path
    name: str
    description: str
    body: dict[str, Any]  # the POST /versions body
    config: dict[str, Any]  # normalized like the server's, the digest's input
    digest: str


def bundle_directories(roots: list[Path]) -> list[Path]:
    """Each root is a bundle directory itself, or holds bundle directories one level down."""
    found: list[Path] = []
    for root in roots:
        if (root / BUNDLE_FILE).is_file():
            found.append(root)
        else:
            found.extend(sorted(p.parent for p in root.glob(f"*/{BUNDLE_FILE}")))
    return list(dict.fromkeys(found))


def _key_lines(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    """Field path → line; a key given twice in one mapping is an error (YAML would keep the last)."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            child = f"{path}.{key.value}" if path else str(key.value)
            if child in seen:
                raise DuplicateKey(child, key.start_mark.line + 1)
            seen.add(child)
            lines[child] = key.start_mark.line + 1
            _key_lines(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{path}.{index}"
            lines[child] = item.start_mark.line + 1
            _key_lines(item, child, lines)


class DuplicateKey(Exception):
    def __init__(self, field: str, line: int) -> None:
        super().__init__(field)
        self.field, self.line = field, line


def _line_of(field: str, lines: dict[str, int]) -> int:
    parts = field.split(".")
    while parts:
        if ".".join(parts) in lines:
            return lines[".".join(parts)]
        parts.pop()
    return 1


def _field_at(text: str, line: int) -> str:
    """The dotted key path that a (1-based) line of block YAML belongs to, found by indentation."""
    path: list[str] = []
    indent = None
    for candidate in reversed(text.splitlines()[:line]):
        match = _KEY_LINE.match(candidate)
        if not match:
            continue
        depth = len(candidate) - len(candidate.lstrip())
        if indent is None or depth < indent:
            path.insert(0, match.group(1))
            indent = depth
        if depth == 0:
            break
    return ".".join(path) or "?"


def _syntax_error(path: Path, text: str, exc: yaml.YAMLError) -> BundleFileError:
    problem_mark = getattr(exc, "problem_mark", None)
    line = problem_mark.line + 1 if problem_mark is not None else 1
    # a construct left open (``[0.2`` without ``]``) is the field to fix, not where the parser gave up
    context_mark = getattr(exc, "context_mark", None)
    field_line = context_mark.line + 1 if context_mark is not None else line
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    where = f" ({context} at line {field_line})" if context and field_line != line else ""
    return BundleFileError(
        f"{path}:{line}: field {_field_at(text, field_line)}: invalid YAML: {problem}{where}"
    )


def _read_spec(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleFileError(f"{path}: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _syntax_error(path, text, exc) from None
    lines: dict[str, int] = {}
    if node is not None:
        try:
            _key_lines(node, "", lines)
        except DuplicateKey as dup:
            raise BundleFileError(f"{path}:{dup.line}: field {dup.field}: given twice") from None
    if spec is None:
        spec = {}
    if not isinstance(spec, dict):
        raise BundleFileError(f"{path}:1: expected a mapping of fields (model, params, …)")
    for key in spec:
        if key not in KNOWN_FIELDS:
            raise BundleFileError(
                f"{path}:{_line_of(str(key), lines)}: field {key}: unknown field "
                f"(known: {', '.join(KNOWN_FIELDS)})"
            )
    return spec, lines


def _field_of(loc: tuple[Any, ...]) -> str:
    # pydantic adds union/type tags to loc ("str", "list[...]", "function-after[...]"); drop them
    parts = [str(p) for p in loc if not (isinstance(p, str) and ("[" in p or p in {"str", "int", "float"}))]
    return ".".join(parts) or "body"


def load_bundle(directory: Path) -> LocalBundle:
    """Read and validate one bundle directory; BundleFileError names the file, the line and the field."""
    yaml_path = directory / BUNDLE_FILE
    spec, lines = _read_spec(yaml_path)
    name = spec.get("name", directory.name)
    if not isinstance(name, str) or not re.match(BUNDLE_NAME, name):
        raise BundleFileError(
            f"{yaml_path}:{_line_of('name', lines)}: field name: {name!r} is not a bundle name "
            "(lower-case letters, digits and dashes)"
        )
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise BundleFileError(f"{yaml_path}:{_line_of('description', lines)}: field description: not text")
    prompt_name = spec.get("system_prompt_file", PROMPT_FILE)
    prompt_path = directory / str(prompt_name)
    try:
        # bytes, not read_text: universal newlines would turn \r\n into \n and change the digest
        prompt = prompt_path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleFileError(
            f"{yaml_path}:{_line_of('system_prompt_file', lines)}: field system_prompt_file: "
            f"cannot read {prompt_path}: {exc}"
        ) from None
    body = {k: spec[k] for k in (*VERSION_FIELDS, *METADATA_FIELDS) if spec.get(k) is not None}
    body["system_prompt"] = prompt
    try:
        version = VersionCreate.model_validate(body)
        config = normalized_config(version)
        check_template(source=prompt, declared=config["variables"].keys())
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_of(first["loc"])
        where = prompt_path if field == "system_prompt" else yaml_path
        line = 1 if field == "system_prompt" else _line_of(field, lines)
        raise BundleFileError(f"{where}:{line}: field {field}: {first['msg']}") from None
    except ChatverError as exc:
        field = exc.errors[0].field if exc.errors else "system_prompt"
        message = exc.errors[0].message if exc.errors else exc.detail
        if field.startswith("system_prompt"):
            raise BundleFileError(f"{prompt_path}: field system_prompt: {message}") from None
        raise BundleFileError(f"{yaml_path}:{_line_of(field, lines)}: field {field}: {message}") from None
    return LocalBundle(directory, name, description, body, config, config_digest(config))


def bundle_yaml(bundle: dict[str, Any], version: dict[str, Any]) -> str:
    """bundle.yaml for a server version: fixed field order, so pulling twice gives the same bytes."""
    spec: dict[str, Any] = {"name": bundle["name"], "description": bundle.get("description", "")}
    spec["model"] = version["model"]
    for field in ("semver", "message"):
        if version.get(field):
            spec[field] = version[field]
    for field in ("variables", "checkpoint", "params"):
        if version.get(field):
            spec[field] = version[field]
    lineage = {k: v for k, v in (version.get("lineage") or {}).items() if k not in GIT_LINEAGE}
    if lineage:
        spec["lineage"] = lineage
    if version.get("metrics"):
        spec["metrics"] = version["metrics"]
    header = f"# pulled from {version['version_id']} ({version['digest'][:19]}…)\n"
    return header + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)


def write_bundle(root: Path, bundle: dict[str, Any], version: dict[str, Any]) -> Path:
    """Write root/<name>/bundle.yaml + system.j2; returns the bundle directory."""
    directory = root / str(bundle["name"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / BUNDLE_FILE).write_bytes(bundle_yaml(bundle, version).encode("utf-8"))
    (directory / PROMPT_FILE).write_bytes(version["system_prompt"].encode("utf-8"))
    return directory


def _git(directory: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_lineage(directory: Path) -> dict[str, Any]:
    """{code_commit, dirty} of the repository holding ``directory``; {} outside a repository."""
    commit = _git(directory, "rev-parse", "HEAD")
    if not commit:
        return {}
    status = _git(directory, "status", "--porcelain", "--", ".")
    return {"code_commit": commit, "dirty": bool(status)}
