"""Relying-party programs that use the identity provider (the demo app; later the card agent)."""
