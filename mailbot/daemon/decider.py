"""Where the daemon decides letters: a thread of its own, or a worker process.

``[daemon] decide_in`` chooses. Both run :class:`~mailbot.app.letter_turns.LetterTurns`
(claim, the finished and poison checks, the decision); they differ in where:

* ``thread`` (:class:`ThreadDecider`): in a thread of the daemon, one letter at a
  time. Deciding is CPU work under the interpreter lock the event loop needs too.
* ``process`` (:class:`ProcessDecider`, the default): in one long-lived worker
  process (:mod:`mailbot.daemon.decide_worker`) with its own database engine,
  on the second core. The daemon gives it the next letter before the result of
  the one in hand is back (:attr:`Decider.depth` 2), so the worker never waits
  for the daemon's turnaround. A worker that dies (killed, out of memory, a
  letter that kills its process) costs the letters in flight one attempt each
  (as their claims say: they count as crashed), and the next letter starts a
  fresh worker; a letter that kills it every time ends, after
  ``daemon.max_attempts``, in the failed folder while the daemon stays up.
"""

from __future__ import annotations

import asyncio
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from mailbot.app.letter_turns import LetterTurns, Turn, TurnResult, Verdict
from mailbot.app.letters import LetterProcessor, LetterSource
from mailbot.config import Config
from mailbot.daemon import decide_worker
from mailbot.daemon.decider_frames import HEADER, Refused, Start, Started, frame, unframe
from mailbot.log import bind_letter, get_logger
from mailbot.notices.templates import Templates
from mailbot.regulation.routes import RouteTable
from mailbot.workers import worker_command, worker_environment

log = get_logger(__name__)

#: How long a closing worker may take to finish the letters it was given.
CLOSE_TIMEOUT_SECONDS = 60.0
#: Only the daemon talks to systemd (NotifyAccess=main).
_NOT_INHERITED = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class DecisionsUnavailable(Exception):
    """The decision process did not start; the daemon retries with backoff."""


class DecisionDatabaseError(SQLAlchemyError):
    """The database failed while the decision process decided a letter (it stays claimed)."""


class Decider(ABC):
    """Decides a pass's new letters in order; the daemon files and answers them."""

    #: Letters that may be in flight: the daemon submits the next one before the
    #: result of the oldest is back only when this is above 1.
    depth = 1

    async def start(self) -> None:  # noqa: B027  (nothing to start in a thread)
        """Get ready for letters (started with the daemon's work, before its first pass)."""

    @abstractmethod
    async def submit(self, turn: Turn) -> asyncio.Future[TurnResult]:
        """Give *turn* to decide; its result comes in the future (in submission order).

        The future raises SQLAlchemyError when the database failed (the letter
        stays claimed); :class:`DecisionsUnavailable` is raised here.
        """

    def reload(self, routes: RouteTable, templates: Templates) -> None:  # noqa: B027
        """SIGHUP: decide with these rules and templates from the next pass on."""

    async def close(self) -> None:  # noqa: B027
        """Stop deciding (after the letters given so far)."""


class ThreadDecider(Decider):
    """Today's way: the daemon's processor in a thread, one letter at a time."""

    def __init__(self, turns: LetterTurns) -> None:
        self._turns = turns

    async def submit(self, turn: Turn) -> asyncio.Future[TurnResult]:
        """Decide *turn* in a thread (the daemon's processor: a reload changes it in place)."""
        return asyncio.ensure_future(asyncio.to_thread(self._turns.take, turn))


class ProcessDecider(Decider):
    """A worker process decides; it is restarted when it died or the rules were reloaded."""

    depth = 2

    def __init__(self, config: Config, routes: RouteTable, templates: Templates) -> None:
        self._start = Start(config, routes, templates)
        self._worker: _Worker | None = None
        #: The rules changed: the next worker takes over once this one is idle.
        self._stale = False
        self._closing: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int | None:
        """The worker's process id (None before it was started)."""
        return self._worker.process.pid if self._worker is not None else None

    async def start(self) -> None:
        """Start the worker now, so that a pass never waits for its start (it is not awaited)."""
        if self._worker is None:
            self._worker = await _Worker.spawn(self._start)

    async def submit(self, turn: Turn) -> asyncio.Future[TurnResult]:
        """Give *turn* to the worker, starting a fresh one first if need be."""
        worker = self._worker
        if worker is None or worker.dead or (self._stale and worker.idle):
            if worker is not None:
                self._retire(worker)
            self._stale = False
            worker = self._worker = await _Worker.spawn(self._start)
        # Shielded: a cancelled pass must not cancel the start other passes wait for.
        await asyncio.shield(worker.ready)
        return await worker.decide(turn)

    def reload(self, routes: RouteTable, templates: Templates) -> None:
        """The next worker decides with *routes* and *templates*; this one stops when idle."""
        self._start = Start(self._start.config, routes, templates)
        self._stale = True

    async def close(self) -> None:
        """Close the worker's input and wait for it to exit (killed after a deadline)."""
        if self._worker is not None:
            self._retire(self._worker)
            self._worker = None
        closing, self._closing = self._closing, []
        await asyncio.gather(*closing)

    def _retire(self, worker: _Worker) -> None:
        self._closing = [task for task in self._closing if not task.done()]
        self._closing.append(asyncio.create_task(worker.close(CLOSE_TIMEOUT_SECONDS)))


class _Worker:
    """One decision process and the letters it was given, answered in order."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._spawned = time.monotonic()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Retrieved here: a start failure is raised to every pass that submits.
        self.ready.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._waiting: deque[tuple[LetterSource, asyncio.Future[TurnResult]]] = deque()
        #: Its output ended: it exited or was killed.
        self.dead = False
        self._closing = False
        self._reader = asyncio.create_task(self._read(), name=f"decider-{process.pid}")

    @classmethod
    async def spawn(cls, start: Start) -> _Worker:
        """Start a worker and send it *start* (its readiness comes in :attr:`ready`)."""
        process = await asyncio.create_subprocess_exec(
            *worker_command(decide_worker.__name__, str(os.getpid())),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=worker_environment(drop=_NOT_INHERITED),
        )
        worker = cls(process)
        await worker._send(start)
        return worker

    @property
    def idle(self) -> bool:
        """No letter is in flight."""
        return not self._waiting

    async def decide(self, turn: Turn) -> asyncio.Future[TurnResult]:
        """Send *turn*; its result (or a crash, if the worker dies first) comes in the future."""
        future: asyncio.Future[TurnResult] = asyncio.get_running_loop().create_future()
        if self.dead:
            future.set_result(TurnResult(Verdict.CRASHED))
            return future
        self._waiting.append((turn.source, future))
        await self._send(turn)
        return future

    async def close(self, timeout: float) -> None:
        """End its input; it exits after the letters it was given (or is killed at *timeout*)."""
        self._closing = True
        stdin = self.process.stdin
        if stdin is not None:
            stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            log.error("decider.kill", pid=self.process.pid, detail=f"not done after {timeout:g} s")
            self.process.kill()
        await self._reader

    async def _send(self, message: object) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(frame(message))
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died: the reader reports the letters in flight as crashed

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            answer = await _read_frame(stdout)
            if not isinstance(answer, Started):
                text = answer.text if isinstance(answer, Refused) else "it exited while starting"
                self.ready.set_exception(DecisionsUnavailable(f"decision process: {text}"))
                return
            log.info(
                "decider.started",
                pid=answer.pid,
                seconds=round(time.monotonic() - self._spawned, 2),
            )
            self.ready.set_result(None)
            while (answer := await _read_frame(stdout)) is not None:
                _source, future = self._waiting.popleft()
                if isinstance(answer, Refused):
                    future.set_exception(DecisionDatabaseError(answer.text))
                else:
                    future.set_result(answer)
        finally:
            self.dead = True
            if not self.ready.done():
                self.ready.set_exception(DecisionsUnavailable("decision process: no answer"))
            lost, self._waiting = self._waiting, deque()
            for source, future in lost:
                with bind_letter(uid=source.uid, uidvalidity=source.uidvalidity):
                    log.error("letter.crashed", detail="the decision process died")
                if not future.done():  # (a cancelled pass stopped waiting for it)
                    future.set_result(TurnResult(Verdict.CRASHED))
            code = await self.process.wait()
            if lost or not self._closing:
                log.error("decider.died", pid=self.process.pid, exit_code=code, letters=len(lost))


async def _read_frame(stream: asyncio.StreamReader) -> Any:
    """The next frame's message; None at the end of the stream."""
    try:
        (size,) = HEADER.unpack(await stream.readexactly(HEADER.size))
        return unframe(await stream.readexactly(size))
    except asyncio.IncompleteReadError:
        return None


def make_decider(config: Config, processor: LetterProcessor) -> Decider:
    """The decider ``[daemon] decide_in`` asks for; the thread one shares *processor*."""
    if config.daemon.decide_in == "thread":
        return ThreadDecider(LetterTurns(config, processor))
    return ProcessDecider(config, processor.routes, processor.templates)
