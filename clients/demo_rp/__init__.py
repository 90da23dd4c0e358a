"""The demo relying party (issue 2 item 10): a small Flask app that signs in through the provider.

It uses only what any relying party has: the discovery URL, a client id and secret. Sign-in is
the authorization code flow with PKCE S256 through Authlib's Flask client; it shows the ID
token's claims and the userinfo answer, refreshes tokens, logs out through the provider's
``end_session_endpoint`` and accepts back-channel logout tokens. Run it with
``python -m clients.demo_rp`` (``make run`` does). It imports nothing from ``idp``.
"""

from clients.demo_rp.app import create_app

__all__ = ["create_app"]
