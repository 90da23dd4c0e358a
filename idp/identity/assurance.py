"""How sure the service is of who signed in (OIDC Core §2 ``acr``/``amr``; R-A2, R-A3): one place.

A sign-in reaches ``ACR_CLOUD`` only with a cloud account that is linked to a person a trusted
source knows (``identity.services.link_account``): the account kind alone vouches for nothing, so
an unlinked "cloud" account is a member as far as relying parties can tell. The level is decided
when the SSO session starts and kept in it; the ID token and the real-name gate read it from there.
"""

from __future__ import annotations

from typing import Any

# A relying party that needs a real-name education cloud account asks for ACR_CLOUD in
# ``acr_values`` or is registered with ``require_real_name``; members (R-A1) sign in with ACR_MEMBER.
ACR_CLOUD = "urn:tw:edu:sso:acr:cloud"
ACR_MEMBER = "urn:tw:edu:sso:acr:member"
ACR_VALUES_SUPPORTED = (ACR_CLOUD, ACR_MEMBER)

# Authentication methods (RFC 8176 names) a session may carry.
AMR_PASSWORD = "pwd"
# A sign-in at a county's own identity provider (R-L2, idp.federation): a linked person reaches ACR_CLOUD
# with this method, so a relying party that cares can tell a county sign-in from a password.
AMR_FEDERATED = "fed"


def acr_for(account: Any) -> str:
    """The level a sign-in of this account reaches now: cloud only with a linked, known person."""
    from idp.identity import services

    if getattr(account, "kind", None) != "cloud":
        return ACR_MEMBER
    known = getattr(account, "identity_known", None)  # read with the account by a password sign-in
    if known is None:
        known = services.has_identity(account.id)
    return ACR_CLOUD if known else ACR_MEMBER


def is_real_name(acr: str | None) -> bool:
    return acr == ACR_CLOUD
