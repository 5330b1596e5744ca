"""Write an image (or a base image customised on the fly) to a card, then read it back.

The read-back compares the SHA-256 of what is on the card with that of every byte sent, so a
fake-capacity card, a failing reader or a bad cable is caught at the bench, not in a cabinet.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

from factory_common.errors import FleetError
from provisioning.image.build import BuildResult, SinkFactory, build
from provisioning.image.customise import GatewayPayload
from provisioning.image.sink import ImageSink, Progress, VerifyError, hash_prefix


class FlashError(FleetError, RuntimeError):
    """Writing the card failed; the message says what to try."""


@dataclass(frozen=True)
class FlashResult:
    build: BuildResult
    verified_sha256: str


def flash(
    source: Path,
    target: Path,
    payload: GatewayPayload | None = None,
    progress: Progress | None = None,
    verify_progress: Progress | None = None,
    sink_factory: SinkFactory = ImageSink,
    flash_set: Path | None = None,
) -> FlashResult:
    """Write `source` to `target` (customised for `payload`, or with `flash_set` laid over its
    boot partition) and verify it."""
    try:
        result = build(source, target, payload, progress, sink_factory, flash_set)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise FlashError(f"{target} is full before the image ended: use a larger card") from exc
        raise FlashError(f"writing {target} failed: {exc.strerror}; re-seat the card") from exc
    readback = hash_prefix(target, result.length, verify_progress)
    if readback != result.sha256:
        raise VerifyError(
            f"what {target} returns differs from what was written (read back "
            f"{readback[:12]}…, sent {result.sha256[:12]}…): the card or the reader is faulty. "
            "Try another card; if that fails too, another reader"
        )
    return FlashResult(result, readback)
