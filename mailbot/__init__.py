"""mailbot: e-mail driven registration of GOST signature certificates.

The package is laid out along the data flow of one letter:

``mail``       intake (IMAP), parsing, attachments, reply building, SMTP outbox
``pipeline``   the regulation's checks, each a small pure function, and handlers
``pki``        certificates, GOST/RSA/ECDSA signatures, CRLs, revocation index
``directory``  the database: subscribers, CAs, certificates, journal, outbox
``daemon``     the long-running process that ties intake, pipeline and outbox
``cli``        the administrator's command line
``config``     the TOML configuration and its validation
``testing``    real local servers (Dovecot, SMTP) for the tests and the demo
"""

__version__ = "0.1.0"
