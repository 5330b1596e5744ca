"""Instruments that must be asked: command, reply, checksum, over a real socat pty pair."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from factory_common.wire import Quality
from gateway_image.firmware.connectors.base import ConnectorError, PollingConnector
from gateway_image.firmware.connectors.serial_line.config import SerialLineConfig
from gateway_image.firmware.connectors.serial_line.connector import build
from gateway_image.firmware.connectors.serial_line.requesting import RequestingSerialConnector
from tests.support.instrument import AskedInstrument, nmea
from tests.support.ptypair import PtyPair


def scale(port: Path, **extra: object) -> SerialLineConfig:
    return SerialLineConfig.model_validate(
        {
            "type": "serial_line",
            "name": "scale-1",
            "device": "scale1",
            "port": str(port),
            "framing": {"terminator": "\r\n", "max_length": 64},
            "pattern": r"\$?(?P<state>ST|US),GS,(?P<weight>[-+]\d+\.\d+),kg(\*[0-9A-F]{2})?",
            "tags": [{"name": "weight_kg", "group": "weight"}, {"name": "state", "type": "str"}],
            "request": {"command": "SI\\r\\n", "interval": 1.0, "reply_timeout": 0.5},
            **extra,
        }
    )


def requesting(config: SerialLineConfig) -> RequestingSerialConnector:
    connector = build(config)
    assert isinstance(connector, RequestingSerialConnector)
    return connector


async def test_each_poll_asks_once_and_parses_the_reply(pty: PtyPair) -> None:
    weights = iter(["+0001.250", "+0001.500"])
    instrument = AskedInstrument(
        pty.b, {b"SI\r\n": lambda: f"\r\nST,GS,{next(weights)},kg\r\n".encode()}
    ).start()
    connector = build(scale(pty.a))
    assert isinstance(connector, PollingConnector)
    await connector.open()
    try:
        first = await connector.poll()
        second = await connector.poll()
    finally:
        await connector.close()
        instrument.stop()
    assert [(r.tag, r.value) for r in first] == [("weight_kg", 1.25), ("state", "ST")]
    assert second[0].value == 1.5
    assert instrument.received == [b"SI\r\n", b"SI\r\n"]
    assert connector.counters["no_match"] == 0  # the blank line before each reply is ignored


async def test_checksummed_replies_are_checked(pty: PtyPair) -> None:
    replies = iter([nmea("ST,GS,+0002.000,kg"), b"$ST,GS,+0002.000,kg*00"])
    instrument = AskedInstrument(pty.b, {b"SI\r\n": lambda: next(replies) + b"\r\n"}).start()
    checksum = {"algorithm": "xor8", "data": [1, -3], "field": [-2, None], "encoding": "hex"}
    connector = requesting(scale(pty.a, checksum=checksum))
    await connector.open()
    try:
        good = await connector.poll()
        with pytest.raises(ConnectorError, match=r"rejected.*checksum"):
            await connector.poll()
    finally:
        await connector.close()
        instrument.stop()
    assert good[0].value == 2.0 and good[0].quality is Quality.GOOD
    assert connector.counters["bad_checksum"] == 1


async def test_no_reply_names_what_to_check(pty: PtyPair) -> None:
    instrument = AskedInstrument(pty.b, {}).start()  # a meter in local mode: silent
    connector = requesting(scale(pty.a))
    await connector.open()
    try:
        with pytest.raises(ConnectorError, match=r"no reply to b'SI\\r\\n'.*within 0.5 s.*baud"):
            await connector.poll()
    finally:
        await connector.close()
        instrument.stop()
    assert connector.counters["no_reply"] == 1


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"command": "SI", "command_hex": "53 49"}, "exactly one of `command`"),
        ({"command": "SI", "interval": 1, "reply_timeout": 2}, "must be shorter than interval"),
        ({"command": "S\\qI"}, r"unknown escape \\q"),
        ({"command_hex": "5G"}, "command"),
    ],
)
def test_request_config_errors(request_: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        scale(Path("/dev/null"), request=request_)
