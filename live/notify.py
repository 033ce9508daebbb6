"""systemd's sd_notify protocol over $NOTIFY_SOCKET (READY, STATUS, WATCHDOG, STOPPING); a no-op
when the service does not run under systemd with Type=notify."""

import os
import socket


class Notifier:
    def __init__(self, address: str | None = None):
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address = None
        if address:
            # an '@' names a socket in the abstract namespace (a leading NUL byte)
            self.address = "\0" + address[1:] if address.startswith("@") else address

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send 'KEY=value' lines in one datagram; False when not under systemd or it failed."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                # never block: a reader that does not keep up must not stall the service
                sock.setblocking(False)
                sock.connect(self.address)
                sock.sendall("\n".join(fields).encode())
            return True
        except OSError:  # systemd gone, its queue full, the socket not ours: never crash on it
            return False

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")


def watchdog_interval_s(default: float = 10.0) -> float:
    """Half of systemd's WatchdogSec (from $WATCHDOG_USEC) when it is for this process."""
    usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return default
    try:
        return max(0.5, int(usec) / 2e6)
    except ValueError:
        return default
