"""threatbot's one settings model: every knob, where it comes from, and what a bad value is told.

Sources, strongest first: arguments (the CLI's flags), the environment, a ``.env`` file in the working
directory, the ``[settings]`` table of the TOML config file (``--config``, ``THREATBOT_CONFIG`` or
``<data dir>/threatbot.toml``; its other tables are the poller's, see :mod:`bot.daemon`), then defaults.
Names are ``THREATBOT_*``, except the platforms' own (``SLACK_BOT_TOKEN``, ``DISCORD_BOT_TOKEN``, …); in
the TOML table a setting is its lowercase name without the prefix (``llm_timeout = 8``).

A value that cannot work raises :class:`~bot.errors.ConfigError` naming the variable (or file key) and the
form it wants, never a pydantic traceback. Secrets are :class:`~pydantic.SecretStr`: ``repr``, logs and
errors show ``**********``.
"""

from __future__ import annotations

import contextvars
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_data_dir
from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.errors import ConfigError

__all__ = ["ConfigError", "Settings", "config_file", "default_data_dir", "env_value"]

ENV_FILE = ".env"
TOML_TABLE = "settings"
#: The config file :meth:`Settings.load` reads its ``[settings]`` table from (set per load).
_CONFIG_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("threatbot_config_file", default=None)


def default_data_dir() -> Path:
    """Per-user data folder (``~/.local/share/threatbot`` on Linux) unless the settings say otherwise."""
    configured = env_value("THREATBOT_DATA_DIR")
    return Path(configured).expanduser() if configured else Path(user_data_dir("threatbot", appauthor=False))


def _dotenv() -> dict[str, str]:
    path = Path(ENV_FILE)
    if not path.is_file():
        return {}
    from dotenv import dotenv_values  # pydantic-settings' own dependency

    return {k.upper(): v for k, v in dotenv_values(path).items() if v is not None}


def env_value(name: str) -> str:
    """One variable from the environment, else from ``.env`` (for names the config file chooses itself)."""
    value = os.environ.get(name)
    if value is None:
        value = _dotenv().get(name.upper())
    return (value or "").strip()


def config_file(explicit: str | Path | None = None, data_dir: Path | None = None) -> Path | None:
    """The TOML config file: ``explicit``, else ``THREATBOT_CONFIG``, else ``<data_dir>/threatbot.toml`` if present."""
    if explicit:
        return Path(explicit).expanduser()
    named = env_value("THREATBOT_CONFIG")
    if named:
        return Path(named).expanduser()
    if data_dir is not None and (data_dir / "threatbot.toml").is_file():
        return data_dir / "threatbot.toml"
    return None


def read_toml(path: Path) -> dict[str, Any]:
    """The whole config file; a missing or malformed one is a :class:`ConfigError` naming file and line."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist (set by --config or THREATBOT_CONFIG)") from None
    except OSError as error:
        raise ConfigError(f"config file {path} cannot be read: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from None


class _TomlSettingsTable(PydanticBaseSettingsSource):
    """The ``[settings]`` table of the config file, as a settings source below the environment."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        path = _CONFIG_FILE.get()
        table = read_toml(path).get(TOML_TABLE, {}) if path is not None and path.is_file() else {}
        if not isinstance(table, dict):
            raise ConfigError(f"config file {path}: [{TOML_TABLE}] must be a table of name = value")
        unknown = sorted(set(table) - set(settings_cls.model_fields))
        if unknown:
            raise ConfigError(
                f"config file {path}: unknown setting(s) {', '.join(unknown)} in [{TOML_TABLE}] "
                f"(names are lowercase, without THREATBOT_, e.g. llm_timeout)"
            )
        self.table: dict[str, Any] = table

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.table.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.table)


def _env(name: str, form: str, **kwargs: Any) -> Any:
    """A field read from ``name`` (besides its own name in the TOML table), with the form a value must have."""
    return Field(
        validation_alias=AliasChoices(name),
        json_schema_extra={"env": name, "form": form},
        **kwargs,
    )


class Settings(BaseSettings):
    """Everything configurable, resolved and checked. Build it with :meth:`load` (or :meth:`from_env`)."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        case_sensitive=False,
    )

    # -- storage and retrieval
    data_dir: Path = _env("THREATBOT_DATA_DIR", "a folder path", default_factory=default_data_dir)
    #: ``http://host:port`` of a Chroma server; empty means the embedded PersistentClient.
    chroma_url: str = _env("THREATBOT_CHROMA_URL", "an http(s) URL such as http://chroma:8000", default="")
    #: Folder holding the all-MiniLM-L6-v2 ONNX export; empty means Chroma's cache and download.
    embedding_model_dir: str = _env("THREATBOT_EMBEDDING_MODEL_DIR", "a folder path", default="")
    #: The model.onnx SHA-256 of an export the operator built and trusts (the known exports need none).
    embedding_model_sha256: str = _env(
        "THREATBOT_EMBEDDING_MODEL_SHA256",
        "a SHA-256 hex digest (64 characters)",
        default="",
        pattern=r"^([0-9a-fA-F]{64})?$",
    )
    #: Let user-supplied URLs reach loopback/private addresses. Only tests switch this on.
    allow_private_urls: bool = _env("THREATBOT_ALLOW_PRIVATE_URLS", "true or false", default=False)
    config: Path | None = _env("THREATBOT_CONFIG", "a TOML file path", default=None)

    # -- answers
    #: ``provider:model`` or an OpenAI-compatible base URL; empty means no LLM.
    llm: str = _env("THREATBOT_LLM", "provider:model (e.g. openai:gpt-4o-mini) or an http(s) base URL", default="")
    llm_model: str = _env("THREATBOT_LLM_MODEL", "the model name the THREATBOT_LLM server serves", default="")
    llm_api_key: SecretStr = _env("THREATBOT_LLM_API_KEY", "an API key", default=SecretStr(""))
    #: Seconds a chat answer may wait for an LLM before the extractive answer is sent.
    llm_timeout: float = _env("THREATBOT_LLM_TIMEOUT", "a number of seconds above 0, e.g. 8 or 2.5", default=8.0, gt=0)
    llm_max_retries: int = _env("THREATBOT_LLM_MAX_RETRIES", "a whole number, 0 or more", default=1, ge=0)
    thread_ttl_hours: float = _env(
        "THREATBOT_THREAD_TTL_HOURS", "a number of hours above 0, e.g. 72 or 0.5", default=72.0, gt=0
    )

    # -- serve
    webhook_url: str = _env("THREATBOT_WEBHOOK_URL", "an https URL", default="")
    webhook_secret: SecretStr = _env("THREATBOT_WEBHOOK_SECRET", "the webhook's HMAC key", default=SecretStr(""))
    digest_threshold: int | None = _env("THREATBOT_DIGEST_THRESHOLD", "a whole number above 0", default=None, ge=1)
    log_format: Literal["text", "json"] = _env("THREATBOT_LOG_FORMAT", "text or json", default="text")
    metrics_host: str = _env("THREATBOT_METRICS_HOST", "a host or address to listen on", default="127.0.0.1")
    metrics_port: int = _env(
        "THREATBOT_METRICS_PORT", "a port number (0 turns /healthz and /metrics off)", default=9464, ge=0, le=65535
    )

    # -- Slack (see adapters/slack/config.py)
    slack_bot_token: SecretStr = _env("SLACK_BOT_TOKEN", "a bot token, xoxb-…", default=SecretStr(""))
    slack_app_token: SecretStr = _env("SLACK_APP_TOKEN", "an app-level token, xapp-…", default=SecretStr(""))
    slack_signing_secret: SecretStr = _env("SLACK_SIGNING_SECRET", "the app's signing secret", default=SecretStr(""))
    slack_http_port: int | None = _env("THREATBOT_SLACK_HTTP_PORT", "a port number", default=None, ge=0, le=65535)
    slack_http_host: str = _env("THREATBOT_SLACK_HTTP_HOST", "a host or address to listen on", default="")
    slack_managers: str = _env("THREATBOT_SLACK_MANAGERS", "admins, everyone, or user ids", default="")
    slack_workers: int = _env("THREATBOT_SLACK_WORKERS", "a whole number above 0", default=8, ge=1)
    slack_api_url: str = _env("THREATBOT_SLACK_API_URL", "an http(s) URL", default="")

    # -- Discord (see adapters/discord/config.py)
    discord_bot_token: SecretStr = _env("DISCORD_BOT_TOKEN", "the bot's token", default=SecretStr(""))
    discord_application_id: str = _env("DISCORD_APPLICATION_ID", "a numeric Discord id", default="")
    discord_guild_id: str = _env("THREATBOT_DISCORD_GUILD_ID", "a numeric Discord id", default="")
    discord_managers: str = _env("THREATBOT_DISCORD_MANAGERS", "permission names, comma-separated", default="")
    discord_message_content: bool = _env("THREATBOT_DISCORD_MESSAGE_CONTENT", "true or false", default=False)
    discord_tz: str = _env("THREATBOT_DISCORD_TZ", "an IANA time zone, e.g. Europe/Berlin", default="")
    discord_webhook_url: SecretStr = _env("THREATBOT_DISCORD_WEBHOOK_URL", "a webhook URL", default=SecretStr(""))
    discord_webhooks: SecretStr = _env("THREATBOT_DISCORD_WEBHOOKS", "name=URL pairs", default=SecretStr(""))
    discord_api_url: str = _env("THREATBOT_DISCORD_API_URL", "an https URL", default="")
    discord_gateway_url: str = _env("THREATBOT_DISCORD_GATEWAY_URL", "a wss URL", default="")

    @model_validator(mode="before")
    @classmethod
    def _blank_means_unset(cls, data: Any) -> Any:
        """``VAR=`` (as docker compose passes ``${VAR:-}``) means the default, not an empty number."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    @field_validator("data_dir", "config", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @field_validator("chroma_url", mode="after")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("not an http(s) URL")
        return value

    # -- building -------------------------------------------------------------------------------------

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, dotenv_settings, _TomlSettingsTable(settings_cls)

    @classmethod
    def load(cls, data_dir: str | Path | None = None, *, config: str | Path | None = None, **values: Any) -> Settings:
        """Resolve every source; raises :class:`ConfigError` naming the variable and the form it wants."""
        if data_dir:
            values["data_dir"] = Path(data_dir).expanduser()
        folder = values.get("data_dir") or default_data_dir()
        path = config_file(config, Path(folder))
        token = _CONFIG_FILE.set(path)
        try:
            return cls(**values)
        except ValidationError as error:
            raise ConfigError(_explain(error, path)) from None
        finally:
            _CONFIG_FILE.reset(token)

    @classmethod
    def from_env(cls, data_dir: str | Path | None = None) -> Settings:
        """The settings with ``--data-dir`` (when given) over everything else."""
        return cls.load(data_dir)

    # -- derived ----------------------------------------------------------------------------------------

    @property
    def database_path(self) -> Path:
        return self.data_dir / "threatbot.sqlite3"

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    def environment(self) -> dict[str, str]:
        """The resolved values under their variable names, secrets revealed: what the adapters' ``from_env`` read.

        The adapters keep their own ``from_env(env)`` (tests hand them a mapping); given none, they read this,
        so ``.env`` and the config file reach them exactly as they reach the core.
        """
        out: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            extra = info.json_schema_extra
            env = extra.get("env") if isinstance(extra, dict) else None
            value = getattr(self, name)
            if not isinstance(env, str) or value is None:
                continue
            text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            if text and value is not False:
                out[env] = text
        return out


def _explain(error: ValidationError, path: Path | None) -> str:
    """One line per bad value: which variable (or config-file key) and the form it wants."""
    lines = []
    fields = Settings.model_fields
    for problem in error.errors():
        loc = str(problem["loc"][0]) if problem["loc"] else ""
        name = next(
            (n for n, info in fields.items() if loc.lower() in {n, str(_env_name(info)).lower()}),
            None,
        )
        if name is None:
            lines.append(f"setting {loc}: {problem['msg']}")
            continue
        info = fields[name]
        env = _env_name(info) or name.upper()
        form = (info.json_schema_extra or {}).get("form", "") if isinstance(info.json_schema_extra, dict) else ""
        where = _where(env, name, path)
        secret = info.annotation is SecretStr
        shown = "" if secret else f"={problem.get('input')!r}" if "input" in problem else ""
        lines.append(f"{where}{shown} is not valid: expected {form}")
    return "; ".join(lines)


def _env_name(info: FieldInfo) -> str | None:
    extra = info.json_schema_extra
    env = extra.get("env") if isinstance(extra, dict) else None
    return env if isinstance(env, str) else None


def _where(env: str, name: str, path: Path | None) -> str:
    if any(key.upper() == env for key in os.environ):
        return env
    if env in _dotenv():
        return f"{env} (in {ENV_FILE})"
    if path is not None and path.is_file() and name in read_toml(path).get(TOML_TABLE, {}):
        return f"{name} in [{TOML_TABLE}] of {path}"
    return env
