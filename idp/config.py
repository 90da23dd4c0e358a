"""Typed settings: ``config/default.toml`` ← environment file ← ``IDP_*`` variables.

Every key is documented once, in ``config/default.toml``; this module gives each a type and
refuses, at start-up, a configuration that would run unsafely in production. Settings are
read once and frozen: a running process never changes them.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import json
import os
import tomllib
import typing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
INSECURE_MARKER = "insecure-default"


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says which key and why."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """The service's settings; see ``config/default.toml`` for what each key means."""

    env: str
    issuer: str
    secret_key: str
    subject_secret: str
    database_url: str
    redis_url: str
    trusted_proxies: int
    store_prefix: str
    keys_dir: str
    access_token_lifetime: int
    refresh_token_lifetime: int
    code_lifetime: int
    id_token_lifetime: int
    sso_session_lifetime: int
    sso_cookie_name: str
    argon2_memory_cost: int
    argon2_time_cost: int
    argon2_parallelism: int
    default_locale: str
    locales: list[str]
    time_zone: str
    login_free_failures: int
    login_failures_per_account: int
    login_failures_per_ip: int
    login_failure_window: int
    login_max_delay: int
    device_cookie_lifetime: int
    client_auth_failures_per_address: int
    account_inactivity_days: int
    recover_failures_per_ip: int
    recover_failures_per_id: int
    nationalid_lookups_per_operator: int
    rate_limit_when_store_down: str
    captcha_lifetime: int
    captcha_failures_per_address: int
    captcha_failure_window: int
    backchannel_logout_timeout: float
    max_request_body: int
    request_header_timeout: float
    request_body_timeout: float
    demo_data: bool
    log_level: str
    support_phone: str
    support_email: str
    support_hours: str
    support_reports_per_address: int
    identity_index_key: str
    identity_encryption_keys: str
    identity_current_key_id: str
    sources_file: str
    sync_workers: int
    federation_file: str
    federation_timeout: float
    federation_metadata_ttl: int
    mail_sender: str
    sms_sender: str
    mail_from: str
    smtp_host: str
    smtp_port: int
    smtp_starttls: bool
    smtp_username: str
    smtp_password_env: str
    smtp_timeout: float
    otp_lifetime: int
    otp_max_tries: int
    otp_sends_per_target: int
    otp_send_window: int
    otp_sends_per_target_per_day: int
    otp_sends_per_address: int

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    # Asked on every request that sets a cookie, and fixed for the settings' life: worked out once.
    @functools.cached_property
    def issuer_is_loopback(self) -> bool:
        return is_loopback_url(self.issuer)

    @functools.cached_property
    def secure_cookies(self) -> bool:
        """Cookies are Secure everywhere except a plain-http loopback issuer (a developer's machine)."""
        return not (self.issuer_is_loopback and self.issuer.startswith("http://"))

    def cookie_name(self, name: str) -> str:
        """A cookie's name as sent: with the ``__Host-`` prefix whenever cookies are Secure, so that
        browsers refuse the same cookie set by a sibling site (``evil.edu.tw`` planting one for
        ``sso.edu.tw``): host-only, ``Path=/``, https only."""
        return f"__Host-{name}" if self.secure_cookies else name

    @functools.cached_property
    def sso_cookie(self) -> str:
        return self.cookie_name(self.sso_cookie_name)

    def public(self) -> dict[str, Any]:
        """The settings with secrets masked, for ``flask config show`` and diagnostics."""
        out = dataclasses.asdict(self)
        for key in ("secret_key", "subject_secret", "identity_index_key", "identity_encryption_keys"):
            out[key] = "***"
        for key in ("database_url", "redis_url"):
            out[key] = _mask_url_password(out[key])
        return out


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _coerce(name: str, kind: Any, value: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or say precisely why not."""
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(value)
        if kind is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind is float:
            return float(value)
        if kind is str:
            if not isinstance(value, str | int | float):
                raise ValueError(value)
            return str(value)
        if origin is list:
            if isinstance(value, str):
                value = json.loads(value) if value.strip().startswith("[") else value.split(",")
            return [str(v).strip() for v in value]
    except (TypeError, ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"setting {name!r}: cannot read {value!r} as {kind}") from exc
    raise ConfigError(f"setting {name!r}: unsupported type {kind}")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc


def _environment_file(name: str) -> Path:
    if name.endswith(".toml") or os.sep in name:
        return Path(name)
    return CONFIG_DIR / f"{name}.toml"


def load_settings(
    overrides: dict[str, Any] | None = None, environ: typing.Mapping[str, str] | None = None
) -> Settings:
    """Read the layers, coerce, validate; raise ``ConfigError`` naming the first bad key."""
    environ = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    hints = typing.get_type_hints(Settings)
    raw: dict[str, Any] = _read_toml(CONFIG_DIR / "default.toml")
    env_file = environ.get("IDP_CONFIG", "development")
    if overrides and "IDP_CONFIG" in overrides:
        env_file = overrides["IDP_CONFIG"]
    layered = _read_toml(_environment_file(env_file))
    for layer in (layered,):
        unknown = set(layer) - set(fields)
        if unknown:
            raise ConfigError(f"unknown setting(s) in {env_file}: {', '.join(sorted(unknown))}")
        raw.update(layer)
    for name in fields:
        env_name = f"IDP_{name.upper()}"
        if env_name in environ:
            raw[name] = environ[env_name]
    for key, value in (overrides or {}).items():
        if key == "IDP_CONFIG":
            continue
        if key not in fields:
            raise ConfigError(f"unknown setting: {key}")
        raw[key] = value
    missing = set(fields) - set(raw)
    if missing:
        raise ConfigError(f"missing setting(s): {', '.join(sorted(missing))}")
    values = {name: _coerce(name, hints[name], raw[name]) for name in fields}
    settings = Settings(**values)
    validate(settings)
    return settings


def validate(s: Settings) -> None:
    """Refuse configurations that are wrong anywhere, and those unsafe in production."""
    if s.env not in {"development", "testing", "production"}:
        raise ConfigError("setting 'env' must be development, testing or production")
    parts = urlsplit(s.issuer)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError("setting 'issuer' must be an http(s) URL without query or fragment")
    if s.issuer.endswith("/"):
        raise ConfigError("setting 'issuer' must not end with '/'")
    for name in (
        "access_token_lifetime",
        "refresh_token_lifetime",
        "code_lifetime",
        "id_token_lifetime",
        "sso_session_lifetime",
        "login_failure_window",
        "login_max_delay",
        "device_cookie_lifetime",
        "request_header_timeout",
        "request_body_timeout",
        "captcha_lifetime",
        "captcha_failure_window",
        "federation_timeout",
        "federation_metadata_ttl",
    ):
        if getattr(s, name) <= 0:
            raise ConfigError(f"setting {name!r} must be a positive number of seconds")
    if s.account_inactivity_days < 0:
        raise ConfigError("setting 'account_inactivity_days' must be 0 (off) or a number of days")
    for name in ("recover_failures_per_ip", "recover_failures_per_id", "login_free_failures",
                 "login_failures_per_account", "login_failures_per_ip",
                 "client_auth_failures_per_address", "max_request_body", "captcha_failures_per_address",
                 "support_reports_per_address"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"setting {name!r} must be a positive number")
    if s.rate_limit_when_store_down not in {"open", "closed"}:
        raise ConfigError("setting 'rate_limit_when_store_down' must be 'open' or 'closed'")
    if s.default_locale not in s.locales:
        raise ConfigError("setting 'default_locale' must be one of 'locales'")
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(s.time_zone)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ConfigError(f"setting 'time_zone' is not a known time zone: {s.time_zone!r}") from None
    if s.argon2_memory_cost < 1024 or s.argon2_time_cost < 1 or s.argon2_parallelism < 1:
        raise ConfigError("argon2 settings too small")
    _validate_identity_keys(s)
    _validate_notify(s)
    if s.is_production:
        if INSECURE_MARKER in s.secret_key or len(s.secret_key) < 32:
            raise ConfigError("production needs IDP_SECRET_KEY: at least 32 random characters, not the default")
        if INSECURE_MARKER in s.subject_secret or len(s.subject_secret) < 32:
            raise ConfigError(
                "production needs IDP_SUBJECT_SECRET: at least 32 random characters, not the default"
            )
        if parts.scheme != "https" and not s.issuer_is_loopback:
            raise ConfigError("production needs an https issuer (loopback excepted)")
        if not s.redis_url:
            raise ConfigError("production needs IDP_REDIS_URL: several processes must share one store")
        if s.database_url.startswith("sqlite"):
            raise ConfigError("production needs IDP_DATABASE_URL pointing at PostgreSQL, not SQLite")
        if INSECURE_MARKER in s.identity_index_key or len(s.identity_index_key) < 32:
            raise ConfigError("production needs IDP_IDENTITY_INDEX_KEY: base64 of 32 random bytes, not the default")
        if INSECURE_MARKER in s.identity_encryption_keys:
            raise ConfigError("production needs IDP_IDENTITY_ENCRYPTION_KEYS (kid:base64 of 32 random bytes, ...)")


def _validate_notify(s: Settings) -> None:
    """Mail and SMS senders (idp.notify) and one-time codes (idp.security.otp)."""
    if s.mail_sender not in {"smtp", "outbox", "log"}:
        raise ConfigError("setting 'mail_sender' must be 'smtp', 'outbox' or 'log'")
    if s.sms_sender not in {"outbox", "log"}:
        raise ConfigError("setting 'sms_sender' must be 'outbox' or 'log'")
    if s.mail_sender == "smtp" and not s.smtp_host:
        raise ConfigError("setting 'smtp_host' is needed when mail_sender is 'smtp'")
    if not 0 < s.smtp_port < 65536:
        raise ConfigError("setting 'smtp_port' must be a TCP port (1-65535)")
    if "@" not in s.mail_from:
        raise ConfigError("setting 'mail_from' must be an e-mail address (optionally 'Name <address>')")
    for name in ("smtp_timeout", "otp_lifetime", "otp_send_window"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"setting {name!r} must be a positive number of seconds")
    for name in ("otp_max_tries", "otp_sends_per_target", "otp_sends_per_target_per_day", "otp_sends_per_address"):
        if getattr(s, name) <= 0:
            raise ConfigError(f"setting {name!r} must be a positive number")


def _validate_identity_keys(s: Settings) -> None:
    """Encryption keys: ``kid:base64`` pairs of 32 bytes, the current key id among them."""
    import base64
    import binascii

    kids = set()
    for part in filter(None, (p.strip() for p in s.identity_encryption_keys.split(","))):
        kid, sep, b64 = part.partition(":")
        try:
            ok = bool(sep) and len(base64.b64decode(b64.strip(), validate=True)) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise ConfigError(
                "setting 'identity_encryption_keys' must be 'kid:base64(32 bytes)' pairs, comma-separated")
        kids.add(kid.strip())
    if s.identity_current_key_id not in kids:
        raise ConfigError("setting 'identity_current_key_id' must name one of 'identity_encryption_keys'")
