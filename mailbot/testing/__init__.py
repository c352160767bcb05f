"""Real local servers for the tests and the demo: Dovecot (IMAP, LMTP) and an SMTP bridge.

Nothing here is used by the daemon in production.
"""
