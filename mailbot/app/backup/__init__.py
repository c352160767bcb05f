"""``mailbot backup`` / ``mailbot restore``: one consistent snapshot of an installation.

A backup is a folder (see :mod:`mailbot.app.backup.layout`): a logical dump of
the database taken in one read transaction, then the files the dump's rows
name (certificate store, quarantine), the CRL cache's state, optionally the
archive of raw letters, a copy of the configuration file, and ``manifest.json``
with the SHA-256 of every file. The modules:

``layout``    folder names, the manifest, hashing and private copies of files
``dump``      the database as JSON lines, one file per table, in one snapshot
``load``      those files back into an empty database of either kind
``snapshot``  ``make_backup``: the order of the steps and what is copied
``restore``   ``restore_backup``: the checks, then the database, then the files
"""

from mailbot.app.backup.layout import BackupError
from mailbot.app.backup.restore import RestoreReport, restore_backup
from mailbot.app.backup.snapshot import BackupReport, make_backup

__all__ = ["BackupError", "BackupReport", "RestoreReport", "make_backup", "restore_backup"]
