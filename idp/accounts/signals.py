"""What the accounts package announces to the packages that depend on it (R-C4, R-C5, R-N3).

The accounts package must not import ``idp.login`` or ``idp.oidc`` (they depend on it, not the
other way round), yet a password reset has to end every SSO session of the account and revoke its
tokens: whoever reset it may be the owner taking the account back from someone who guessed the
old password. So the accounts package announces it, like ``login.sessions.session_ended``, and the
login package (its sessions) and the oidc package (its tokens) subscribe in their ``init_app``.

- ``password_reset``: sender is the account id; ``reason`` says how ("reset" by personal data or by
  a code, "activation"). Sent inside the caller's transaction, before it commits: the tokens are
  revoked in the same transaction, the sessions (in the store) end at once.
- ``account_disabled``: sender is the account id; sent when an operator disables an account, so
  that its sessions do not come back to life if it is enabled again later.

Subscribers let errors through: a reset whose sessions could not be ended must not report success.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

password_reset = _signals.signal("password_reset")
account_disabled = _signals.signal("account_disabled")
