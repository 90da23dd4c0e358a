"""帳號管理: forgot account, reset a password (personal data or a code), activate a disabled account
(R-C1, R-C4, R-C5, R-C6). ``views.bp`` is nested under ``/account`` as ``/account/recover``."""
