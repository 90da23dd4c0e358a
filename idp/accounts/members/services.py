"""Member sign-up (R-A1): anyone with an e-mail address they can read gets a general member account.

The address is proved before anything is stored: a code goes to it (``otp.send_code`` with the
purpose ``member.signup``, so a code sent for anything else does not count), and the address the
account keeps is the one ``otp.verify`` returns, never what a later page sends. The account is then
an ordinary ``create_account(kind="member")`` (name and password rules, the name never reissued,
audited), with the address marked verified. Whether an address already belongs to an account is
never said: the answer would tell a stranger who has an account here.
"""

from __future__ import annotations

from idp.accounts import services as accounts
from idp.accounts.models import Account
from idp.security import otp

PURPOSE = "member.signup"


def send_code(email: str, *, locale: str | None = None) -> otp.Challenge:
    """Send a sign-up code to ``email`` (``InvalidField("email")`` for an address that cannot be one;
    ``RateLimited`` past the ``otp.send`` limits). Nothing about an account changes."""
    return otp.send_code(PURPOSE, email, "email", locale=locale)


def prove_email(challenge_id: str, code: str) -> str:
    """The address the code was sent to, once the person typed the code back (otp's refusals else)."""
    return otp.verify(challenge_id, code, purpose=PURPOSE)


def create_member(email: str, username: str, password: str, name: str = "") -> Account:
    """The member account, with its proved address (caller commits)."""
    return accounts.create_account(username, password, name=(name or "").strip(), email=email,
                                   email_verified=True, kind="member")
