"""Row identity and versions for a local-first store: UUIDv7 ids, a hybrid logical clock, device ids.

* Ids are UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. They sort by creation
  time, so PK-ordered exports and B-trees stay append-friendly, and two devices never collide.
* Every write stamps ``row_version = "<13-digit ms>-<5-digit counter>-<32-hex device id>"``: a hybrid
  logical clock (Kulkarni et al. 2014) whose text sorts in clock order, ties broken by device id.
  Sync merges rows by taking the greatest version, which is commutative, associative and idempotent.
* The device id lives in the user's config directory, never in the database file: a copied or
  restored database must not clone the identity of the device that wrote it.
"""

from __future__ import annotations

import os
import random
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import ConfigurationError

DEVICE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_COUNTER = 99_999


def uuid7(ms: int | None = None, rng: random.Random | None = None) -> str:
    """A UUIDv7 string. ``ms`` and ``rng`` make it deterministic (the demo generator uses both)."""
    if ms is None:
        ms = time.time_ns() // 1_000_000
    rand = rng.getrandbits(74) if rng is not None else int.from_bytes(secrets.token_bytes(10), "big") >> 6
    rand_a = (rand >> 62) & 0xFFF
    rand_b = rand & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= rand_a << 64
    value |= 0b10 << 62
    value |= rand_b
    return str(uuid.UUID(int=value))


@dataclass(frozen=True, order=True)
class Version:
    """A parsed row version; ordering is the merge order."""

    ms: int
    counter: int
    device: str

    def __str__(self) -> str:
        return f"{self.ms:013d}-{self.counter:05d}-{self.device}"

    @classmethod
    def parse(cls, text: str) -> "Version":
        ms, counter, device = text.split("-")
        return cls(int(ms), int(counter), device)


class HybridLogicalClock:
    """A thread-safe hybrid logical clock for one device.

    ``now()`` gives a version strictly greater than every version this clock has produced or
    observed; ``observe()`` raises the clock to a remote version so later local edits win
    causally over what was merged in.
    """

    def __init__(self, device_id: str, wall: Callable[[], int] | None = None,
                 start: str | None = None) -> None:
        if not DEVICE_ID_RE.match(device_id):
            raise ConfigurationError(f"device id must be 32 lowercase hex characters, got {device_id!r}")
        self.device_id = device_id
        self._wall = wall or (lambda: time.time_ns() // 1_000_000)
        self._ms = 0
        self._counter = 0
        self._lock = threading.Lock()
        if start:
            self.observe(start)

    def now(self) -> str:
        with self._lock:
            wall = self._wall()
            if wall > self._ms:
                self._ms, self._counter = wall, 0
            else:
                self._counter += 1
                if self._counter > MAX_COUNTER:
                    # Counter overflow: borrow the next millisecond rather than wrap around.
                    self._ms, self._counter = self._ms + 1, 0
            return str(Version(self._ms, self._counter, self.device_id))

    def observe(self, version: str) -> None:
        other = Version.parse(version)
        with self._lock:
            if (other.ms, other.counter) > (self._ms, self._counter):
                self._ms, self._counter = other.ms, other.counter

    @property
    def high_water(self) -> str:
        with self._lock:
            return str(Version(self._ms, self._counter, self.device_id))


def load_device_id(config_dir: Path) -> str:
    """Read the device id from ``config_dir/device_id``, creating it on first use."""
    path = Path(config_dir) / "device_id"
    if path.exists():
        text = path.read_text(encoding="ascii").strip()
        if not DEVICE_ID_RE.match(text):
            raise ConfigurationError(f"{path}: not a device id (32 hex characters): {text[:40]!r}")
        return text
    path.parent.mkdir(parents=True, exist_ok=True)
    device_id = secrets.token_hex(16)
    tmp = path.with_name(f".device_id.{os.getpid()}.tmp")
    tmp.write_text(device_id + "\n", encoding="ascii")
    os.replace(tmp, path)
    return device_id
