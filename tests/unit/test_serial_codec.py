"""Serial line framing and parsing: round-trips over arbitrary chunking, every garbled kind."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_image.firmware.connectors.serial_line.codec import (
    FieldSpec,
    Framer,
    Garbled,
    LineError,
    LineSpec,
    parse_line,
)

printable = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=40
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(
    lines=st.lists(printable, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
    terminator=st.sampled_from([b"\n", b"\r\n", b"\r", b"\x03"]),
)
def test_terminated_lines_survive_any_chunking(
    lines: list[str], cuts: list[int], terminator: bytes
) -> None:
    lines = [ln for ln in lines if terminator.decode() not in ln and "\r" not in ln]
    stream = b"".join(ln.encode() + terminator for ln in lines)
    framer = Framer(terminator=terminator, max_length=64)
    frames: list[bytes | LineError] = []
    for chunk in chunked(stream, cuts):
        frames += framer.feed(chunk)
    assert frames == [ln.encode() for ln in lines]


@given(
    payload=st.binary(max_size=200),
    length=st.integers(min_value=1, max_value=16),
    cuts=st.lists(st.integers(min_value=0, max_value=1000), max_size=20),
)
def test_fixed_length_frames_concatenate_back(payload: bytes, length: int, cuts: list[int]) -> None:
    framer = Framer(length=length)
    frames: list[bytes | LineError] = []
    for chunk in chunked(payload, cuts):
        frames += framer.feed(chunk)
    whole = len(payload) // length * length
    assert all(isinstance(f, bytes) and len(f) == length for f in frames)
    assert b"".join(f for f in frames if isinstance(f, bytes)) == payload[:whole]


@given(
    noise=st.binary(min_size=0, max_size=300).filter(lambda b: b"\n" not in b),
    good=printable.filter(lambda line: len(line) <= 32),  # the good line fits max_length
)
def test_overlong_run_is_reported_once_and_the_next_line_survives(noise: bytes, good: str) -> None:
    framer = Framer(terminator=b"\n", max_length=32)
    out = framer.feed(noise) + framer.feed(noise) + framer.feed(b"\n" + good.encode() + b"\n")
    errors = [f for f in out if isinstance(f, LineError)]
    if 2 * len(noise) > 32:
        assert [e.kind for e in errors] == [Garbled.OVERLONG]
        assert out[-1] == good.encode()
    else:
        assert errors == []
        assert out == [noise + noise, good.encode()]


SCALE = LineSpec(
    pattern=re.compile(r"(?P<state>ST|US),GS,\s*(?P<weight>[-+]?\d+(\.\d+)?)\s*kg"),
    fields=(
        FieldSpec(tag="weight", group="weight", type="float", scale=1000.0),
        FieldSpec(tag="stable", group="state"),
        FieldSpec(tag="state", group="state", type="str"),
    ),
)


@given(grams=st.integers(min_value=-99_999_999, max_value=99_999_999))
def test_scale_line_round_trip(grams: int) -> None:
    kilos = f"{grams / 1000:.3f}"
    parsed = dict(parse_line(f"ST,GS, {kilos} kg\r".encode(), SCALE))
    assert parsed["weight"] == pytest.approx(float(kilos) * 1000)
    assert parsed["state"] == "ST"
    # "ST" is not a float: that one tag is bad, the others are still delivered.
    assert isinstance(parsed["stable"], LineError)
    assert parsed["stable"].kind is Garbled.BAD_VALUE


def test_int_scaling_stays_int_when_whole() -> None:
    spec = LineSpec(
        pattern=re.compile(r"C=(?P<count>\d+)"),
        fields=(FieldSpec(tag="count", group="count", type="int", scale=10),),
    )
    assert parse_line(b"C=42", spec) == [("count", 420)]
    assert isinstance(parse_line(b"C=42", spec)[0][1], int)


def test_optional_group_that_did_not_match_yields_nothing() -> None:
    spec = LineSpec(
        pattern=re.compile(r"(?P<code>[0-9]{13})|ERR (?P<error>\w+)"),
        fields=(
            FieldSpec(tag="barcode", group="code", type="str"),
            FieldSpec(tag="error", group="error", type="str"),
        ),
    )
    assert parse_line(b"4006381333931", spec) == [("barcode", "4006381333931")]
    assert parse_line(b"ERR JAM", spec) == [("error", "JAM")]


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (b"ST,GS, 1.5 lb", Garbled.NO_MATCH),
        (b"\xff\xfeST,GS, 1.5 kg", Garbled.NOT_ASCII),
        (b"ST,GS,\x00 1.5 kg", Garbled.NOT_ASCII),
        (b"", Garbled.NO_MATCH),
    ],
)
def test_garbled_lines_raise_their_kind(frame: bytes, kind: Garbled) -> None:
    with pytest.raises(LineError) as info:
        parse_line(frame, SCALE)
    assert info.value.kind is kind


@given(frame=st.binary(max_size=80))
def test_parse_never_raises_anything_but_line_error(frame: bytes) -> None:
    try:
        parse_line(frame, SCALE)
    except LineError as exc:
        assert exc.kind in set(Garbled)


def test_framer_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="terminator or a fixed length"):
        Framer(terminator=b"")
    with pytest.raises(ValueError, match="at least 1"):
        Framer(length=0)
