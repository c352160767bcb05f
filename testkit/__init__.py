"""The test harness: real local servers (Dovecot, SMTP, CRL), a test PKI and letter generators.

Used by the tests, the benchmarks and the demo from the checkout; not part of
the installed package.
"""
