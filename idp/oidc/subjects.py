"""Subject identifiers (OIDC Core §8): pairwise per sector by default, public per client (R-O2).

A pairwise ``sub`` is HMAC-SHA256(subject_secret, sector ‖ account.public_id): two relying
parties in different sectors cannot correlate a pupil, and nothing about the account (not
even its row id) can be read back from it. The sector is the client's registered
``sector_identifier`` or, failing that, the host of its first redirect URI (§8.1). A public
``sub`` is the account's random ``public_id``, the same for every client that asks for it.

Apps written for the ministry's service keep ``sub`` in UUID columns (one parses it as a .NET
``Guid``), so a client may ask for the UUID format (R-O4): the same pairwise value, written as a
name-based UUID (RFC 9562 version 5) whose name is the keyed hash. It is as stable and as pairwise
as the opaque form, and just as impossible to compute without the subject secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any
from urllib.parse import urlsplit

from idp.extensions import settings

PAIRWISE = "pairwise"
PUBLIC = "public"
SUBJECT_TYPES_SUPPORTED = (PAIRWISE, PUBLIC)
OPAQUE = "opaque"
UUID_FORMAT = "uuid"
SUBJECT_FORMATS = (OPAQUE, UUID_FORMAT)
# The namespace of subject UUIDs: fixed, so a subject never changes across releases or nodes.
SUBJECT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:tw:edu:sso:subject")


def sector_of(client: Any) -> str:
    """The sector a pairwise subject is computed for."""
    if client.sector_identifier:
        return urlsplit(client.sector_identifier).hostname or client.sector_identifier
    uris = client.redirect_uris or []
    return (urlsplit(uris[0]).hostname or "") if uris else client.client_id


def subject_for(client: Any, account: Any) -> str:
    """The ``sub`` this client sees for this account."""
    if client.subject_type == PUBLIC:
        value = account.public_id
    else:
        msg = f"{sector_of(client)}|{account.public_id}".encode()
        digest = hmac.new(settings().subject_secret.encode(), msg, hashlib.sha256).digest()
        value = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    if getattr(client, "subject_format", None) == UUID_FORMAT:
        return as_uuid(value)
    return value


def as_uuid(value: str) -> str:
    """A subject written as a UUID (lower-case, dashed): a name-based UUID of the keyed value, so the
    mapping is one-way and two different subjects never share a UUID in practice."""
    return str(uuid.uuid5(SUBJECT_NAMESPACE, value))


def keyed(purpose: str, sector: str, value: str) -> str:
    """A pairwise identifier for another purpose than ``sub`` (e.g. ``guid``): the same secret,
    a different domain, so no two purposes ever yield the same string for the same input."""
    msg = f"{purpose}|{sector}|{value}".encode()
    digest = hmac.new(settings().subject_secret.encode(), msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
