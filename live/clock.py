"""Time for the live service, passed in: the wall clock live, a simulated one in replay."""

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...

    def sleep(self, seconds: float) -> None: ...

    @property
    def stopping(self) -> bool: ...


class WallClock:
    """Real time. sleep() wakes early when stop() is called, so a retry loop ends on SIGTERM."""

    def __init__(self):
        self._stop = threading.Event()

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def sleep(self, seconds: float) -> None:
        self._stop.wait(max(0.0, seconds))

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()


class SimulatedClock:
    """Time that moves only when told: set(), advance(), or a sleep (which returns at once)."""

    def __init__(self, now_ms: int = 0):
        self._now = int(now_ms)
        self.slept = 0.0

    def now_ms(self) -> int:
        return self._now

    def set(self, now_ms: int) -> None:
        self._now = int(now_ms)

    def advance(self, seconds: float) -> None:
        self._now += int(round(seconds * 1000))

    def sleep(self, seconds: float) -> None:
        self.slept += max(0.0, seconds)
        self.advance(max(0.0, seconds))

    @property
    def stopping(self) -> bool:
        return False
