"""The person's own pages under /account (R-C7, issue 10 item 8): home, backup contacts, password."""
