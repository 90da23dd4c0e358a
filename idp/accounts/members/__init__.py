"""一般會員註冊 at ``/account/join`` (R-A1): a member account proved by an e-mail code."""
