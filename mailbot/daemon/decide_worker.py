"""The daemon's decision process: ``python -P -m mailbot.daemon.decide_worker PARENT_PID``.

With ``[daemon] decide_in = "process"`` the daemon decides letters here, on a
core of their own, while its event loop fetches, sends and files
(:class:`mailbot.daemon.decider.ProcessDecider` starts and feeds this process).
The daemon's CPU is mostly deciding letters and the interpreter lock is one,
so a thread cannot give it the second core.

The daemon writes frames (:mod:`mailbot.daemon.decider_frames`) to our
standard input, we answer on our standard output.

The process dies with the daemon (``PR_SET_PDEATHSIG``, and a check that the
daemon is still its parent), ignores the signals a terminal or systemd sends
the whole group (the daemon finishes the letter in hand, then closes our
input), and exits when its input closes. Its logs go to the daemon's standard
error, in the daemon's format.
"""

from __future__ import annotations

import ctypes
import gc
import os
import resource
import signal
import sys
from typing import IO

from mailbot.daemon.decider_frames import Refused, Start, Started, first_line, frame, read_frame

#: prctl(2): the signal this process gets when the thread that started it exits.
_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """Be killed when the daemon dies; exit now if it is gone already."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # The daemon may have died before prctl: then we were adopted by another process.
    if os.getppid() != parent:
        os._exit(1)


def _private_streams() -> tuple[IO[bytes], IO[bytes]]:
    """The frame pipes on descriptors of their own; 0 reads /dev/null, 1 writes to stderr.

    Whatever else runs here (a library's print, a subprocess inheriting the
    descriptors) can then neither read the daemon's frames nor write into ours.
    """
    frames_in = os.fdopen(os.dup(0), "rb")
    frames_out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return frames_in, frames_out


def main() -> int:
    """Worker entry point: see the module's description."""
    _die_with(int(sys.argv[1]))
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    frames_in, frames_out = _private_streams()
    start = read_frame(frames_in)
    if not isinstance(start, Start):
        return 0  # the daemon went away before it said what to do

    # Imported once the daemon's death would kill us: the imports are most of the start.
    from sqlalchemy.exc import SQLAlchemyError

    from mailbot.app.assembly import make_processor
    from mailbot.app.letter_turns import LetterTurns
    from mailbot.directory.engine import engine_from_config
    from mailbot.directory.session import session_factory
    from mailbot.files import restrict_umask
    from mailbot.log import configure_logging, get_logger

    restrict_umask()
    config = start.config
    configure_logging(config.logging.format, config.logging.level)
    log = get_logger(__name__)
    try:
        engine = engine_from_config(config)
        processor = make_processor(config, session_factory(engine), start.routes, start.templates)
    except Exception as exc:  # a password that cannot be read, a folder that cannot be made
        log.exception("decider.start_failed")
        frames_out.write(frame(Refused(False, first_line(exc))))
        frames_out.flush()
        return 1
    turns = LetterTurns(config, processor)
    # What the start built stays for the process's life: the collector need not walk it
    # again and again (measured: 0.29 ms of collections a letter, 0.11 ms frozen).
    gc.freeze()
    frames_out.write(frame(Started(os.getpid())))
    frames_out.flush()
    try:
        while (turn := read_frame(frames_in)) is not None:
            try:
                answer: object = turns.take(turn)
            except SQLAlchemyError as exc:
                answer = Refused(True, first_line(exc))
            frames_out.write(frame(answer))
            frames_out.flush()
    finally:
        engine.dispose()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    log.info(
        "decider.stopped",
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 2),
        peak_rss_mib=round(usage.ru_maxrss / 1024, 1),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
