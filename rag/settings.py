"""One settings object, read once from ``RAG_*`` environment variables (or a ``.env`` file) and passed down.

``Settings`` nests one group per component (``rag.configs``, where every setting is declared once), so
``settings.llm`` is what the LLM client takes. The variables stay flat (``RAG_TOP_K``, ``RAG_LLM_BASE_URL``): a
group's prefix plus the field's name. In Python the overrides are nested the same way::

    load_settings(llm={"base_url": "http://127.0.0.1:8080/v1", "model": "m"}, retrieval={"top_k": 3})

``python -m rag.settings --markdown`` prints the table of every variable (``docs/configuration.md``).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import typing
from dataclasses import dataclass
from types import UnionType
from pathlib import Path
from typing import Any, Literal, Mapping

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (BaseSettings, DotEnvSettingsSource, EnvSettingsSource, PydanticBaseSettingsSource,
                               SettingsConfigDict, SettingsError)

from rag.configs import (DraftConfig, EmbeddingConfig, EvaluationConfig, Group, IngestConfig, LLMConfig,
                         RetrievalConfig, ServiceConfig, StoreConfig, default_path)
from rag.errors import ConfigError
from rag.paths import checkout_root, default_paths

# The source checkout, or None for an installed wheel; every default path comes from ``rag.paths``.
PROJECT_ROOT = checkout_root()


class Settings(BaseSettings):
    """Every component's settings; the groups are filled from the environment by ``_GroupedVariables``."""

    model_config = SettingsConfigDict(env_file=".env", extra="forbid", frozen=True)

    home: Path = default_path("home", "`.rag/` in a checkout, else the user data folder "
                                      "(`~/.local/share/qiniu-support-rag`)",
                              "user state: the store, caches and feedback live under it unless set one by one")
    store: StoreConfig
    ingest: IngestConfig
    embedding: EmbeddingConfig
    retrieval: RetrievalConfig
    draft: DraftConfig
    llm: LLMConfig
    service: ServiceConfig
    evaluation: EvaluationConfig

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Overrides first, then the environment, then ``.env``; each source's nested dicts are merged field by field."""
        flat = _flat_model()
        env_file = getattr(dotenv_settings, "env_file", cls.model_config.get("env_file"))
        return (init_settings, _GroupedVariables(settings_cls, EnvSettingsSource(flat)),
                _GroupedVariables(settings_cls, DotEnvSettingsSource(flat, env_file=env_file)))

    @model_validator(mode="before")
    @classmethod
    def _default_paths(cls, data: Any) -> Any:
        """Paths not given come from one place, ``rag.paths`` (checkout, wheel, or RAG_HOME, given or read)."""
        if not isinstance(data, dict):
            return data
        paths = default_paths(data.get("home") or None)
        filled = {**data, "home": data.get("home") or paths.home}
        for name, group in _groups().items():
            given = data.get(name, {})
            if isinstance(given, dict):  # a group passed whole is used as it is
                filled[name] = {**given, **{field: getattr(paths, resolved) for field, resolved in _path_fields(group)
                                            if given.get(field) in (None, "")}}
        return filled

    def updated(self, **changes: Any) -> "Settings":
        """A validated copy with some settings changed; a group's changes merge into it:
        ``settings.updated(llm={"model": "m"})`` keeps the rest of ``settings.llm``."""
        return load_settings(**_merged(self.model_dump(), changes))


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once; overrides win (the CLI's flags, a test's tmp paths), nested by group:
    ``load_settings(home=path, retrieval={"top_k": 3})``."""
    try:
        return Settings(**overrides)
    except ConfigError:
        raise
    except SettingsError as exc:  # a list variable that is not JSON: pydantic-settings names our flat field
        raise ConfigError(f"invalid settings: {_upper_names(str(exc))} (a list is JSON: [\"a\", \"b\"])") from None
    except ValidationError as exc:  # name the variable and the problem, not a traceback
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None


def from_variables(values: Mapping[str, object]) -> dict[str, Any]:
    """Variables by name (``{"RAG_LLM_SEED": "0"}``, what ``scripts/local-llm.sh start`` prints) as the nested
    overrides ``load_settings`` and ``Settings.updated`` take; an unknown name is an error naming it."""
    by_name = {v.name: v.path for v in variables()}
    nested: dict[str, Any] = {}
    for name, value in values.items():
        if name not in by_name:
            raise ConfigError(f"{name}: no such setting (docs/configuration.md lists them)")
        *parents, last = by_name[name]
        node = nested
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return nested


# --- where each variable goes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """One setting: its environment variable, where it sits in ``Settings``, and its declaration."""

    name: str
    path: tuple[str, ...]
    field: FieldInfo


def _group_class(annotation: Any) -> type[Group] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, Group) else None


@functools.cache
def _groups() -> dict[str, type[Group]]:
    return {name: group for name, f in Settings.model_fields.items() if (group := _group_class(f.annotation))}


def _path_fields(group: type[Group]) -> list[tuple[str, str]]:
    """The group's paths that ``rag.paths`` resolves when unset: (field, ``DefaultPaths`` attribute)."""
    return [(name, str(extra["default_path"])) for name, f in group.model_fields.items()
            if isinstance(extra := f.json_schema_extra, dict) and "default_path" in extra]


def _walk(model: type[BaseModel], prefix: str, path: tuple[str, ...]) -> list[Variable]:
    found = []
    for name, f in model.model_fields.items():
        if (part := _group_class(f.annotation)) is not None:  # a part of a group (RetryConfig): its prefix
            found += _walk(part, prefix, (*path, name))
        elif not (isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("variable") is False):
            found.append(Variable(prefix + name.upper(), (*path, name), f))
    return found


@functools.cache
def variables() -> tuple[Variable, ...]:
    """Every variable, in the order of ``Settings`` and its groups."""
    found: list[Variable] = []
    for name, f in Settings.model_fields.items():
        group = _group_class(f.annotation)
        found += _walk(group, group.env_prefix, (name,)) if group else [Variable(f"RAG_{name.upper()}", (name,), f)]
    names = [v.name for v in found]
    assert len(names) == len(set(names)), f"two settings share a variable: {sorted(n for n in names if names.count(n) > 1)}"
    return tuple(found)


@functools.cache
def _flat_model() -> type[BaseSettings]:
    """The variables as one flat model, used only as the schema pydantic-settings' own env and .env sources read
    (case-insensitive names, JSON for lists); ``Settings`` never validates through it."""
    fields: dict[str, Any] = {v.name.lower(): (v.field.annotation, None) for v in variables()}
    return create_model("RagVariables", __base__=_FlatBase, **fields)


class _FlatBase(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")


class _GroupedVariables(PydanticBaseSettingsSource):
    """A flat source of ``RAG_*`` variables, each value placed where its setting sits in the groups."""

    def __init__(self, settings_cls: type[BaseSettings], flat: EnvSettingsSource) -> None:
        super().__init__(settings_cls)
        self._flat = flat

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: ``__call__`` reads the flat source whole

    def __call__(self) -> dict[str, Any]:
        values = self._flat()  # keyed by the variables' names, lower-cased
        return from_variables({v.name: values[v.name.lower()] for v in variables() if v.name.lower() in values})


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _problem(loc: tuple[int | str, ...], msg: str) -> str:
    """``RAG_TOP_K (retrieval.top_k): msg``; an override that is no setting (a misspelt key) names its path only."""
    by_path = {v.path: v.name for v in variables()}
    where = ".".join(str(p) for p in loc) or "settings"
    for n in range(len(loc), 0, -1):  # a list item's error sits under its variable
        if (name := by_path.get(tuple(str(p) for p in loc[:n]))) is not None:
            return f"{name} ({where}): {msg}"
    return f"{where}: {msg}"


def _upper_names(message: str) -> str:
    for v in variables():
        message = message.replace(f'"{v.name.lower()}"', v.name)
    return message


# --- the configuration table -------------------------------------------------------------------------------

_INTRO = """\
# Configuration

<!-- Generated by `python -m rag.settings --markdown > docs/configuration.md` from the declarations in
rag/configs.py (tests/test_configs.py fails when this file differs): edit those, then regenerate. -->

Every setting is an environment variable, read once when `rag` starts; a `.env` file in the working folder
may set them too (the environment wins). A value that cannot work stops `rag` with one line naming the
variable. Lists are JSON: `RAG_ALLOWED_HOSTS='["127.0.0.1", "rag.internal"]'`.

In Python the settings are nested, one group per component, and each component takes its group:
`load_settings(llm={"base_url": "http://127.0.0.1:8080/v1", "model": "m"}, retrieval={"top_k": 3})`,
then `settings.llm`, `settings.retrieval.top_k`. A variable is its group's prefix and the field's name.

Paths left unset are resolved in one place, `rag/paths.py`: read-only resources (corpus, prompts, baseline,
labels) are the checkout's when `rag` runs from one, else the copies shipped in the wheel; user state goes
under `RAG_HOME`.
"""


def _type(f: FieldInfo) -> str:
    annotation = f.annotation
    optional = False
    if typing.get_origin(annotation) in (typing.Union, UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional, annotation = len(args) < len(typing.get_args(annotation)), args[0]
    if typing.get_origin(annotation) is Literal:
        text = " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    elif typing.get_origin(annotation) is tuple:
        text = "JSON list"
    else:
        names: dict[Any, str] = {Path: "path", SecretStr: "secret"}
        text = names.get(annotation) or getattr(annotation, "__name__", None) or str(annotation)
    bounds = []
    for m in f.metadata:
        for kind, sign in ((annotated_types.Ge, "≥"), (annotated_types.Gt, ">"), (annotated_types.Le, "≤"),
                           (annotated_types.Lt, "<")):
            if isinstance(m, kind):
                bounds.append(f"{sign} {getattr(m, kind.__name__.lower())}")
    return ", ".join([text, *bounds] + (["optional"] if optional else []))


def _default(f: FieldInfo) -> str:
    extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
    if "shown" in extra:
        return str(extra["shown"])
    value = f.default
    if value is None or (isinstance(value, SecretStr) and not value.get_secret_value()):
        return "unset"
    if isinstance(value, tuple):
        return f"`{json.dumps(list(value))}`" if value else "`[]`"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown() -> str:
    """The table of every variable, grouped by component (``docs/configuration.md``)."""
    rows: dict[str, list[str]] = {}
    for v in variables():
        cells = (f"`{v.name}`", _type(v.field), _cell(_default(v.field)), _cell(v.field.description or ""))
        rows.setdefault(v.path[0], []).append("| " + " | ".join(cells) + " |")
    out = [_INTRO]
    for section, lines in rows.items():
        group = _groups().get(section)
        doc = " ".join((group.__doc__ or "").split("\n\n")[0].split()).replace("``", "`") if group else \
            "Where user state lives."
        title = f"`{section}` ({group.__name__})" if group else f"`{section}`"
        out += [f"## {title}", "", doc, "", "| variable | type | default | description |", "|---|---|---|---|",
                *lines, ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.settings", description="the settings' variables")
    parser.add_argument("--markdown", action="store_true", help="print the table of every variable (docs/configuration.md)")
    args = parser.parse_args(argv)
    if not args.markdown:
        parser.print_help()
        return 2
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
