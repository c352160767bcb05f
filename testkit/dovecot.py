"""A private Dovecot instance (IMAP, IMAPS, LMTP) for the tests and the demo.

It runs from a generated configuration in its own folder on free loopback
ports, with passwd-file users and Maildir storage, and never touches the
system's Dovecot. Facts behind the choices (measured on this machine):

* the folder must sit directly under the system temp dir with mode 0755:
  Dovecot's auth process (user ``dovecot``) and mail processes (``nobody``)
  must traverse every parent, and pytest's ``tmp_path`` parents are 0700;
* ``auth_username_format = %Ln`` lets LMTP accept ``user@any.domain`` for the
  passwd-file's bare ``user`` names;
* IDLE pushes are delayed by a fixed 500 ms inside Dovecot.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from testkit.ports import free_port, wait_for_port
from testkit.tls import make_self_signed

#: Where Debian installs Dovecot's binaries when /usr/sbin is not on PATH.
_SBIN = ("/usr/sbin", "/usr/bin", "/usr/local/sbin")


class DovecotUnavailable(RuntimeError):
    """Dovecot is not installed or did not start."""


def find_binary(name: str) -> str | None:
    """Locate a Dovecot binary on PATH or in the usual sbin folders."""
    found = shutil.which(name)
    if found:
        return found
    for folder in _SBIN:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def dovecot_available() -> bool:
    """True when the ``dovecot`` and ``doveadm`` binaries are installed."""
    return find_binary("dovecot") is not None and find_binary("doveadm") is not None


@dataclass
class DovecotServer:
    """One running Dovecot. Create with :meth:`start`, stop with :meth:`stop`."""

    directory: Path
    users: dict[str, str]
    domain: str
    imap_port: int
    imaps_port: int
    lmtp_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    host: str = "127.0.0.1"

    @property
    def config_path(self) -> Path:
        """The generated dovecot.conf."""
        return self.directory / "dovecot.conf"

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate the IMAPS port presents (use it as the CA)."""
        return self.directory / "cert.pem"

    @property
    def log_path(self) -> Path:
        """Dovecot's own log."""
        return self.directory / "dovecot.log"

    def address(self, user: str) -> str:
        """The e-mail address of a local user."""
        return f"{user}@{self.domain}"

    @classmethod
    def start(
        cls,
        users: Mapping[str, str],
        domain: str = "example.test",
        folders: tuple[str, ...] = ("Processed", "Rejected", "Failed"),
        directory: Path | None = None,
    ) -> DovecotServer:
        """Generate a configuration and start Dovecot in the foreground as a child process.

        *users* maps user names to passwords. *folders* are created for every user
        at first login. *directory* defaults to a new 0755 folder under the temp dir.
        """
        dovecot = find_binary("dovecot")
        if dovecot is None:
            raise DovecotUnavailable("dovecot is not installed (scripts/install-system-deps.sh)")
        if os.geteuid() != 0:
            # Mail is stored as `nobody` and auth runs as `dovecot`: both need root to set up.
            raise DovecotUnavailable("the test Dovecot must be started as root")
        base = directory or Path(tempfile.mkdtemp(prefix="mailbot-dovecot-", dir=_temp_root()))
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)  # auth and mail processes run as other users
        server = cls(
            directory=base,
            users=dict(users),
            domain=domain,
            imap_port=free_port(),
            imaps_port=free_port(),
            lmtp_port=free_port(),
        )
        server._write_files(folders)
        server.process = subprocess.Popen(
            [dovecot, "-F", "-c", str(server.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            for port in (server.imap_port, server.imaps_port, server.lmtp_port):
                wait_for_port(server.host, port, timeout=15, process=server.process)
        except Exception as exc:
            stderr = b""
            if server.process.poll() is not None and server.process.stderr is not None:
                stderr = server.process.stderr.read()
            server.stop()
            log = (
                server.log_path.read_text(errors="replace")[-2000:]
                if server.log_path.exists()
                else ""
            )
            output = stderr.decode(errors="replace")
            raise DovecotUnavailable(
                f"dovecot did not start: {exc}; stderr: {output}; log: {log}"
            ) from exc
        return server

    def _write_files(self, folders: tuple[str, ...]) -> None:
        d = self.directory
        for sub in ("run", "state", "mail"):
            (d / sub).mkdir(exist_ok=True)
        shutil.chown(d / "mail", "nobody", _nogroup())
        make_self_signed(d / "cert.pem", d / "key.pem", common_name="localhost")
        lines = [f"{u}:{{PLAIN}}{pw}::::::" for u, pw in self.users.items()]
        (d / "users").write_text("\n".join(lines) + "\n")
        mailbox_blocks = "\n".join(
            f'  mailbox "{name}" {{\n    auto = subscribe\n  }}' for name in folders
        )
        self.config_path.write_text(
            f"""# generated by testkit.dovecot
instance_name = mailbot-test-{self.imap_port}
base_dir = {d}/run
state_dir = {d}/state
protocols = imap lmtp
listen = {self.host}
log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Ln
mail_fsync = never
mail_location = maildir:{d}/mail/%u/Maildir
mail_uid = nobody
mail_gid = {_nogroup()}
first_valid_uid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
  default_fields = home={d}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
{mailbox_blocks}
}}
service imap-login {{
  inet_listener imap {{
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {self.host}
    port = {self.lmtp_port}
  }}
}}
"""
        )

    def stop(self) -> None:
        """Stop the master process (SIGTERM, then SIGKILL after a grace period)."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process.stderr is not None:
            process.stderr.close()
        self.process = None

    def remove(self) -> None:
        """Stop and delete the instance's folder."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- helpers for tests -------------------------------------------------

    def deliver(self, user: str, raw: bytes, sender: str = "sender@example.org") -> None:
        """Deliver a letter to *user*'s INBOX over LMTP, as an MTA would."""
        with smtplib.LMTP(self.host, self.lmtp_port, timeout=30) as lmtp:
            lmtp.sendmail(sender, [self.address(user)], raw)

    def doveadm(self, *arguments: str, check: bool = True) -> str:
        """Run ``doveadm`` against this instance and return its output."""
        doveadm = find_binary("doveadm")
        if doveadm is None:  # pragma: no cover - checked at start
            raise DovecotUnavailable("doveadm is not installed")
        result = subprocess.run(
            [doveadm, "-c", str(self.config_path), *arguments],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(arguments)} failed: {result.stderr.strip()}")
        return result.stdout

    def message_count(self, user: str, mailbox: str = "INBOX") -> int:
        """How many letters *mailbox* of *user* holds."""
        out = self.doveadm("mailbox", "status", "-u", user, "messages", mailbox)
        return int(out.strip().split("=")[1])

    def kick(self, user: str) -> None:
        """Drop every connection of *user* (for reconnect tests)."""
        self.doveadm("kick", user, check=False)

    def expunge_all(self, user: str, mailbox: str = "INBOX") -> None:
        """Empty a mailbox of *user*."""
        self.doveadm("expunge", "-u", user, "mailbox", mailbox, "all")


def _temp_root() -> str:
    # Directly under the system temp dir, never under pytest's 0700 folders.
    return os.environ.get("MAILBOT_DOVECOT_TMP", tempfile.gettempdir())


def _nogroup() -> str:
    import grp

    for name in ("nogroup", "nobody"):
        try:
            grp.getgrnam(name)
        except KeyError:
            continue
        return name
    return "root"  # pragma: no cover - every Debian has nogroup


def wait_until(
    predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05
) -> bool:
    """Poll ``predicate()`` until it is true or *timeout* seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
