"""A minimal Modbus TCP responder for the gateway benches: a PLC's speed, not a simulator's.

    python bench/fast_modbus.py PORT REGISTERS

Answers read holding/input registers (function codes 3 and 4) on any unit id from one fixed
register image (Modbus Application Protocol v1.1b3, 6.3-6.4; MBAP header, Modbus TCP v1.0b,
3.1.3) and anything else with exception 01 (illegal function). The pymodbus simulator spends
about a millisecond of Python per request, so one connector polling it measures the
simulator; a PLC answers in well under that. Standing in for the device only: the gateway
side is the real product.
"""

from __future__ import annotations

import asyncio
import random
import struct
import sys

HEADER = struct.Struct(">HHHB")  # transaction id, protocol id, length, unit id


class Responder(asyncio.Protocol):
    def __init__(self, image: bytes) -> None:
        self.image = image
        self.pending = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.pending += data
        out = []
        while len(self.pending) >= HEADER.size:
            tid, _proto, length, unit = HEADER.unpack_from(self.pending)
            end = 6 + length
            if len(self.pending) < end:
                break
            pdu, self.pending = self.pending[HEADER.size : end], self.pending[end:]
            out.append(self.answer(tid, unit, pdu))
        if out and self.transport is not None:
            self.transport.write(b"".join(out))

    def answer(self, tid: int, unit: int, pdu: bytes) -> bytes:
        function = pdu[0]
        if function in (3, 4) and len(pdu) >= 5:
            address, count = struct.unpack_from(">HH", pdu, 1)
            data = self.image[2 * address : 2 * (address + count)]
            if len(data) == 2 * count:
                body = bytes([function, len(data)]) + data
                return HEADER.pack(tid, 0, len(body) + 1, unit) + body
            body = bytes([function | 0x80, 2])  # illegal data address
        else:
            body = bytes([function | 0x80, 1])  # illegal function
        return HEADER.pack(tid, 0, len(body) + 1, unit) + body


async def serve(port: int, registers: int) -> None:
    rng = random.Random(port)
    image = struct.pack(f">{registers}H", *(rng.randrange(65536) for _ in range(registers)))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Responder(image), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
