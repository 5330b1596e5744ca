"""A local stand-in for balenaCloud's API, answering exactly the calls balena-sdk 17.x makes.

Derived from the installed SDK's source: `PineClient` builds `<api_endpoint>v7/<resource>`
(the endpoint comes from `balena.cfg` in the SDK's data directory), reads `{"d": [...]}`,
and sends OData `$filter` strings compiled from its filter objects: `a eq 'x'`, `a in (1, 2)`,
`(..) and (..)`, `(..) or (..)`; `$select`, `$expand=nav($select=...)`, `$top`, `$orderby`.
`pin_to_release` resolves the devices (`$select=id,uuid,belongs_to__application`), the
release (`commit eq ... and status eq 'success' and belongs_to__application eq N`), then
PATCHes `device?$filter=id in (...)` with `{"is_pinned_on__release": id}`. A navigation
property reads as `{"__id": n}` unless expanded, when it is a one-element list.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

Row = dict[str, Any]
NAV = {
    "belongs_to__application": "application",
    "is_running__release": "release",
    "is_pinned_on__release": "release",
    "should_be_running__release": "release",
    "device": "device",
}
_TOKEN = re.compile(r"\s*(?:(\()|(\))|(,)|'((?:[^']|'')*)'|(-?\d+)|([A-Za-z_][\w/]*))")


def _tokens(text: str) -> list[tuple[str, Any]]:
    out, pos = [], 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot parse $filter at {text[pos:]!r}")
        pos = m.end()
        lp, rp, comma, string, number, word = m.groups()
        if lp or rp or comma:
            out.append(("p", lp or rp or comma))
        elif string is not None:
            out.append(("v", string.replace("''", "'")))
        elif number is not None:
            out.append(("v", int(number)))
        else:
            out.append(("v", None) if word == "null" else ("w", word))
    return out


class _Filter:
    """Recursive descent over the OData subset pine-client emits; evaluates against a row."""

    def __init__(self, text: str, resolve: Callable[[Row, str], Any]) -> None:
        self.tokens, self.i, self.resolve = _tokens(text), 0, resolve

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self) -> tuple[str, Any]:
        self.i += 1
        return self.tokens[self.i - 1]

    def parse(self) -> Callable[[Row], bool]:
        return self._or()

    def _or(self) -> Callable[[Row], bool]:
        parts = [self._and()]
        while self._peek() == ("w", "or"):
            self._take()
            parts.append(self._and())
        return lambda row: any(p(row) for p in parts)

    def _and(self) -> Callable[[Row], bool]:
        parts = [self._not()]
        while self._peek() == ("w", "and"):
            self._take()
            parts.append(self._not())
        return lambda row: all(p(row) for p in parts)

    def _not(self) -> Callable[[Row], bool]:
        if self._peek() == ("w", "not"):
            self._take()
            inner = self._not()
            return lambda row: not inner(row)
        if self._peek() == ("p", "("):
            self._take()
            inner = self._or()
            self._take()  # ")"
            return inner
        return self._compare()

    def _compare(self) -> Callable[[Row], bool]:
        _, path = self._take()
        _, op = self._take()
        if op == "in":
            self._take()  # "("
            values = []
            while self._peek() != ("p", ")"):
                kind, value = self._take()
                if kind == "v":
                    values.append(value)
            self._take()
            return lambda row: self.resolve(row, path) in values
        _, value = self._take()
        if op == "eq":
            return lambda row: self.resolve(row, path) == value
        if op == "ne":
            return lambda row: self.resolve(row, path) != value
        raise ValueError(f"operator {op!r} is not one pine-client emits here")


class BalenaStandIn:
    """Tables of applications, releases and devices, served over HTTP on loopback."""

    def __init__(self) -> None:
        self.tables: dict[str, list[Row]] = {
            "application": [],
            "release": [],
            "device": [],
            "device_environment_variable": [],
            "device_tag": [],
        }
        self.patches: list[tuple[str, list[int], Row]] = []  # (resource, ids, body), in order
        self.on_patch: Callable[[str, list[Row], Row], None] = lambda *_: None
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def start(self) -> BalenaStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, table: str, **row: Any) -> Row:
        with self.lock:
            row.setdefault("id", len(self.tables[table]) + 1)
            self.tables[table].append(row)
            return row

    def device(self, uuid: str) -> Row:
        return next(d for d in self.tables["device"] if d["uuid"] == uuid)

    def write_settings(self, data_directory: Path) -> None:
        """The balena.cfg an operator's SDK reads: every key the SDK insists on, our endpoint."""
        data_directory.mkdir(parents=True, exist_ok=True)
        host = "balena-standin.invalid"
        values = {
            "balena_host": host,
            "api_version": "v7",
            "api_endpoint": self.url,
            "pine_endpoint": f"{self.url}v7/",
            "builder_url": f"https://builder.{host}/",
            "data_directory": str(data_directory),
            "cache_directory": str(data_directory / "cache"),
            "image_cache_time": "604800000",
            "token_refresh_interval": "3600000",
            "timeout": "30000",
            "device_actions_endpoint_version": "v1",
            "request_limit_interval": "60",
            "retry_rate_limited_request": "false",
        }
        lines = "".join(f"{k} = {v}\n" for k, v in values.items())
        (data_directory / "balena.cfg").write_text(f"[Settings]\n{lines}")

    # ------------------------------------------------------------ OData

    def _resolve(self, row: Row, path: str) -> Any:
        head, _, rest = path.partition("/")
        value = row.get(head)
        if isinstance(value, dict) and "__id" in value:
            if not rest:
                return value["__id"]
            target = next(r for r in self.tables[NAV[head]] if r["id"] == value["__id"])
            return self._resolve(target, rest)
        return value

    def _shape(self, table: str, row: Row, select: str | None, expand: str | None) -> Row:
        fields = select.split(",") if select else list(row)
        out = {f: row.get(f) for f in fields}
        for item in re.findall(r"(\w+)(?:\(\$select=([\w,]+)\))?", expand or ""):
            nav, nav_select = item
            ref = row.get(nav)
            target = [r for r in self.tables[NAV[nav]] if ref and r["id"] == ref["__id"]]
            out[nav] = [self._shape(NAV[nav], t, nav_select or None, None) for t in target]
        return out

    def query(self, table: str, key: str | None, params: dict[str, str]) -> list[Row]:
        rows = self.tables[table]
        if key is not None:
            name, _, value = key.partition("=")
            wanted = value.strip("'") if value else int(name)
            field = name if value else "id"
            rows = [r for r in rows if r.get(field) == wanted]
        if "$filter" in params:
            test = _Filter(params["$filter"], self._resolve).parse()
            rows = [r for r in rows if test(r)]
        if "$top" in params:
            rows = rows[: int(params["$top"])]
        return rows

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _parse(self) -> tuple[str, str | None, dict[str, str]]:
                parts = urlsplit(self.path)
                m = re.fullmatch(r"/v7/(\w+)(?:\((.*)\))?", unquote(parts.path))
                if not m or m.group(1) not in standin.tables:
                    raise KeyError(parts.path)
                return m.group(1), m.group(2), dict(parse_qsl(parts.query))

            def _reply(self, status: int, data: Any) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                table, key, params = self._parse()
                with standin.lock:
                    rows = standin.query(table, key, params)
                    shaped = [
                        standin._shape(table, r, params.get("$select"), params.get("$expand"))
                        for r in rows
                    ]
                self._reply(200, {"d": shaped})

            def do_PATCH(self) -> None:
                table, key, params = self._parse()
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with standin.lock:
                    rows = standin.query(table, key, params)
                    for row in rows:
                        for field, value in body.items():
                            row[field] = {"__id": value} if field in NAV else value
                    standin.patches.append((table, [r["id"] for r in rows], body))
                standin.on_patch(table, rows, body)
                self._reply(200, "OK")

            def do_POST(self) -> None:
                table, _, _ = self._parse()
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                row = standin.add(
                    table, **{k: {"__id": v} if k in NAV else v for k, v in body.items()}
                )
                self._reply(201, row)

            def log_message(self, *_args: object) -> None:
                pass

        return Handler
