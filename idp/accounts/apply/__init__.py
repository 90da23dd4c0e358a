"""申請帳號: apply for an education cloud account (R-C2, R-C6). ``views`` exposes ``bp`` (nested
under /account by ``idp.accounts.views``); ``services`` creates, links and places the account."""
