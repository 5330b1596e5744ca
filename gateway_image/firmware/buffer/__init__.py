"""The durable store-and-forward buffer: the SQLite store, its row format and its repair."""

from gateway_image.firmware.buffer.store import (
    BufferClosed,
    BufferStats,
    DropCause,
    DurableBuffer,
    Policy,
)

__all__ = ["BufferClosed", "BufferStats", "DropCause", "DurableBuffer", "Policy"]
