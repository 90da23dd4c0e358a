"""The county providers, read from ``federation_file`` and checked at start-up (R-L2, issue 12 item 1).

The file is TOML with one ``[[county]]`` table per county that lets its people sign in here::

    [[county]]
    name = "ntpc"                              # a slug: our redirect URI is {issuer}/login/county/ntpc/callback
    county = "01"                              # the school directory's county code (新北市)
    issuer = "https://sso.ntpc.edu.tw"         # the county's OpenID provider (discovery under it)
    client_id = "edu-sso"                      # our registration at the county
    client_secret_env = "IDP_COUNTY_NTPC_SECRET"   # the environment variable holding its secret
    scopes = "openid profile"                  # default "openid"
    match_claim = "preferred_username"         # the claim compared with 縣市帳號, default "sub"

Every mistake stops the start with a message naming the file, the entry and the key; nothing here
talks to a county, so a county whose provider is down never stops the service from starting. The
secret is read from the environment once and never printed (``repr`` leaves it out).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from idp.config import CONFIG_DIR, ConfigError, is_loopback_url

KEYS = ("name", "county", "issuer", "client_id", "client_secret_env", "scopes", "match_claim")
REQUIRED = ("name", "county", "issuer", "client_id", "client_secret_env")
NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,28}[a-z0-9])?")
COUNTY_RE = re.compile(r"[0-9A-Z]{2}")
ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
CLAIM_RE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


@dataclass(frozen=True)
class CountyProvider:
    """One county's OpenID provider as configured (the contract of issue 12 item 1)."""

    name: str
    county: str
    issuer: str
    client_id: str
    client_secret_env: str
    scopes: str = "openid"
    match_claim: str = "sub"
    client_secret: str = field(default="", repr=False, compare=False)

    def redirect_uri(self, our_issuer: str) -> str:
        """Where the county sends the browser back: ``{issuer}/login/county/{name}/callback``."""
        return f"{our_issuer}/login/county/{self.name}/callback"

    def post_logout_redirect_uri(self, our_issuer: str) -> str:
        """Where the county's end-session endpoint sends the browser back after a logout."""
        return f"{our_issuer}/login/county/{self.name}/logged-out"

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def resolve_path(path: str) -> Path:
    """``federation_file`` as a path: absolute, or relative to ``config/`` (like ``sources_file``)."""
    return Path(path) if Path(path).is_absolute() else CONFIG_DIR / path


def load_file(path: str, *, environ: Any = None, production: bool = False) -> list[CountyProvider]:
    """The counties of ``federation_file``; ``ConfigError`` naming the first mistake. Empty path: none."""
    if not path:
        return []
    full = resolve_path(path)
    try:
        with full.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"federation_file {full}: not found") from None
    except OSError as exc:
        raise ConfigError(f"federation_file {full}: cannot be read ({type(exc).__name__})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"federation_file {full}: not valid TOML ({exc})") from None
    return parse(data, str(full), environ=environ, production=production)


def parse(data: dict[str, Any], where: str = "federation_file", *, environ: Any = None,
          production: bool = False) -> list[CountyProvider]:
    """Check a parsed file and build its providers (``where`` names the file in messages)."""
    environ = os.environ if environ is None else environ
    unknown = sorted(set(data) - {"county"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; counties are [[county]] entries")
    entries = data.get("county", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(f"{where}: 'county' must be a list of [[county]] tables")
    providers: list[CountyProvider] = []
    for position, entry in enumerate(entries, start=1):
        provider = _entry(entry, f"{where}: county entry {position}", environ, production)
        for other in providers:
            if other.name == provider.name:
                raise ConfigError(f"{where}: two county entries are named {provider.name!r}")
            if other.county == provider.county:
                raise ConfigError(f"{where}: county {provider.county} has two entries "
                                  f"({other.name!r} and {provider.name!r}); one provider per county")
        providers.append(provider)
    return providers


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry[key]
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key!r} must be a non-empty string")
    return value.strip()


def _entry(entry: dict[str, Any], where: str, environ: Any, production: bool) -> CountyProvider:
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(repr(k) for k in missing)}")
    name = _text(entry, "name", where)
    where = f"{where} ({name!r})"
    if not NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}: 'name' must be a slug of lower-case letters, digits and '-' (at most 30), "
                          f"it becomes part of the redirect URI")
    county = _text(entry, "county", where)
    if not COUNTY_RE.fullmatch(county):
        raise ConfigError(f"{where}: 'county' must be the school directory's two-character county code, "
                          f"e.g. \"01\" for 新北市")
    issuer = _text(entry, "issuer", where)
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"{where}: 'issuer' must be an https URL without query or fragment")
    if parts.scheme == "http" and not is_loopback_url(issuer):
        raise ConfigError(f"{where}: 'issuer' must use https (plain http only on a loopback address)")
    if production and parts.scheme == "http":
        raise ConfigError(f"{where}: 'issuer' must use https in production")
    client_id = _text(entry, "client_id", where)
    secret_env = _text(entry, "client_secret_env", where)
    if not ENV_RE.fullmatch(secret_env):
        raise ConfigError(f"{where}: 'client_secret_env' must be the NAME of an environment variable "
                          f"(letters, digits, '_'), never the secret itself")
    secret = environ.get(secret_env, "")
    if not secret:
        raise ConfigError(f"{where}: the environment variable {secret_env} (client_secret_env) is not set; "
                          f"it must hold the client secret the county gave")
    scopes = _text(entry, "scopes", where) if "scopes" in entry else "openid"
    if "openid" not in scopes.split():
        raise ConfigError(f"{where}: 'scopes' must include openid (it is an OpenID Connect sign-in)")
    match_claim = _text(entry, "match_claim", where) if "match_claim" in entry else "sub"
    if not CLAIM_RE.fullmatch(match_claim):
        raise ConfigError(f"{where}: 'match_claim' must be a claim name such as sub or preferred_username")
    return CountyProvider(name=name, county=county, issuer=issuer, client_id=client_id,
                          client_secret_env=secret_env, scopes=" ".join(scopes.split()), match_claim=match_claim,
                          client_secret=secret)
