"""Hostile HTTP input against a real `edge-node` process: no parameter of any route gives a 500.

The routes and their parameters come from the edge's own OpenAPI description, so a route added
later is fuzzed too. Values are drawn from what breaks parsers and stores: times at and past
the ends of what the store holds, numbers beyond 64 bits, numbers in exponent form, ISO dates
of year 1 and 9999, empty, huge and non-ASCII strings, wrong JSON types in bodies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_node.api_time import MAX_MS
from tests.support.broker import Mosquitto
from tests.support.edge_process import EdgeProcess, start_edge
from tests.support.requirements import require_binary

RULES = """rules:
  - id: hot
    trigger: {reading: {series: "gw1/bath1/temp"}}
    when: "value > 28"
    actions: [{alarm: {rule: hot, message: "hot", severity: high}}]
"""
# Ends a session or waits on things outside the edge: not what this test is about.
SKIPPED = {("post", "/api/logout"), ("get", "/api/alarms/stream")}

# The sweep tries each of these in every parameter: ends of the time range, beyond 64 bits,
# exponents, a number too long for int(), impossible dates, separators, NUL, long strings.
SWEEP = [
    "-1",
    "1e20",
    "-1e15",
    "nan",
    str(MAX_MS),
    str(MAX_MS + 1),
    str(2**63),
    str(-(2**63) - 1),
    "9" * 5000,
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "",
    "a/b/c/d",
    "\u0000",
    "x" * 2_000,
]
# The fuzz draws from these and from generated text: the sweep's values and more of the kind.
HOSTILE = [
    *SWEEP,
    "0", "1e308", "inf", "-0", "0x10", "1_000", "2262-04-11T23:47:17Z", "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z", "2026-13-45T99:99:99Z", " ", "gw1/bath1/temp", "gw1/bath1",
    "../../etc/passwd", "%00", "é" * 300, "true", "null", "[]", "{}",
]  # fmt: skip
hostile_text = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=30),
    st.integers().map(str),
    st.floats().map(str),
)  # fmt: skip
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeProcess]:
    binary = require_binary("mosquitto", "run `sudo apt-get install mosquitto` (or `make deps`)")
    root = tmp_path_factory.mktemp("hostile-http")
    broker = Mosquitto(binary, root / "mosquitto")
    broker.start()
    (root / "edge").mkdir()
    (root / "edge" / "rules.yaml").write_text(RULES)
    extra = (
        "monitoring: {limits: {gw1/bath1/temp: {mean: 20, sigma: 1, usl: 24}}}\n"
        "rules: {path: rules.yaml, reload_interval: 0.1}\n"
    )
    process = None
    try:
        process = start_edge(root, broker.port, "edge-http-fuzz", extra)
        yield process
    finally:
        if process is not None:
            process.child.stop()
        broker.stop()


@pytest.fixture(scope="module")
def api(edge: EdgeProcess) -> Iterator[httpx.Client]:
    client = edge.api()
    yield client
    client.close()


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if (method, path) not in SKIPPED:
                found.append((method, path, operation))
    return found


def _body_fields(schema: dict[str, Any], operation: dict[str, Any]) -> list[str] | None:
    """The JSON body's declared fields; None when the route takes no JSON body."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    name = content["schema"].get("$ref", "").rsplit("/", 1)[-1]
    return list(schema["components"]["schemas"].get(name, {}).get("properties", {}))


def _body_strategy(schema: dict[str, Any], operation: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The body's declared fields with hostile values (or none), or any JSON at all."""
    names = _body_fields(schema, operation)
    if names is None:
        return st.none()
    fields = {name: json_values for name in names}
    if "timeout_s" in fields:  # a valid command waits up to its timeout for a gateway's ack
        fields["timeout_s"] = st.sampled_from([0, -1, 1e308, "x", None, 0.05])
    return st.one_of(st.fixed_dictionaries({}, optional=fields), json_values)


@st.composite
def requests(draw: st.DrawFn, schema: dict[str, Any]) -> tuple[str, str, list[Any], Any]:
    method, path, operation = draw(st.sampled_from(_operations(schema)))
    query: list[tuple[str, str]] = []
    for parameter in operation.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] == "path":
            path = path.replace("{" + name + "}", quote(draw(hostile_text), safe="") or "x")
        elif parameter["in"] == "query":
            for value in draw(st.lists(hostile_text, max_size=2)):
                query.append((name, value))
    return method, path, query, draw(_body_strategy(schema, operation))


def test_every_route_is_in_the_fuzz(api: httpx.Client) -> None:
    """The fuzz draws from the OpenAPI: make sure it lists the routes that took bad times."""
    paths = {path for _, path, _ in _operations(api.get("/openapi.json").json())}
    assert {"/api/history", "/api/alarms", "/api/defects", "/api/commands"} <= paths


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_parameter_of_any_route_gives_a_500(api: httpx.Client, data: st.DataObject) -> None:
    schema = _SCHEMA.setdefault("schema", api.get("/openapi.json").raise_for_status().json())
    method, path, query, body = data.draw(requests(schema))
    content = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if content is not None else {}
    what = f"{method.upper()} {path} {str(query)[:300]} {str(body)[:300]}"
    try:
        response = api.request(method, path, params=query, content=content, headers=headers)
    except httpx.TransportError as exc:
        pytest.fail(f"{what}: no response ({exc!r})")
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"


_SCHEMA: dict[str, Any] = {}


def _sweep_cases(schema: dict[str, Any]) -> Iterator[tuple[str, str, list[Any], Any]]:
    """Every hostile value in every parameter and body field of every route, one at a time."""
    for method, path, operation in _operations(schema):
        parameters = operation.get("parameters", [])
        props = _body_fields(schema, operation)
        empty = None if props is None else {}
        for value in SWEEP:
            filled = path
            for p in parameters:
                if p["in"] == "path":
                    filled = filled.replace("{" + p["name"] + "}", quote(value, safe="") or "x")
            if filled != path or not (parameters or props):
                yield method, filled, [], empty
            for p in parameters:
                if p["in"] == "query":
                    yield method, filled, [(p["name"], value)], empty
            for name in props or []:
                yield method, filled, [], {name: value}


def test_every_hostile_value_in_every_parameter_gives_no_500(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").raise_for_status().json()
    failures = []
    # A new connection per request: the server closing an idle keep-alive connection just as
    # the next request goes out is a client matter, not what this test is about.
    close = {"Connection": "close"}
    for method, path, query, body in _sweep_cases(schema):
        content = None if body is None else json.dumps(body).encode()
        headers = close | ({"Content-Type": "application/json"} if content is not None else {})
        what = f"{method.upper()} {path[:80]} {str(query)[:80]} {str(body)[:80]}"
        try:
            response = api.request(method, path, params=query, content=content, headers=headers)
        except httpx.TransportError as exc:
            failures.append(f"{what}: {exc!r}")
            continue
        if response.status_code >= 500:
            failures.append(f"{what}: {response.status_code}")
    assert not failures, f"{len(failures)} requests gave a 500:\n" + "\n".join(failures[:20])


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/history", {"tag": "gw1/bath1/temp", "start": "0001-01-01T00:00:00Z"}),
        ("/api/history", {"tag": "gw1/bath1/temp", "end": "9999-12-31T23:59:59Z"}),
        ("/api/history", {"tag": "gw1/bath1/temp", "end": "1e20"}),
        ("/api/history", {"tag": "gw1/bath1/temp", "start": "-1000000000000000"}),
        ("/api/alarms", {"since": str(10**20)}),
        ("/api/alarms", {"since": str(-(10**20))}),
        ("/api/defects", {"since": str(10**20)}),
    ],
)
def test_out_of_range_times_are_a_422_naming_the_range(
    api: httpx.Client, path: str, params: dict[str, str]
) -> None:
    response = api.get(path, params=params)
    assert response.status_code == 422, response.text
    assert str(MAX_MS) in response.text


@pytest.mark.parametrize(
    "path", ["/./index.html", "//index.html", "/index.html/", "/a/../index.html"]
)
def test_odd_spellings_of_the_dashboard_still_need_a_login(edge: EdgeProcess, path: str) -> None:
    with httpx.Client(base_url=edge.url, timeout=30) as anonymous:
        response = anonymous.get(path)
    assert response.status_code == 303 and response.headers["location"] == "/login", (
        f"{path}: {response.status_code}"
    )


def test_forwarded_for_from_an_untrusted_peer_does_not_evade_the_login_throttle(
    edge: EdgeProcess,
) -> None:
    """Failures from one address (an address may fail 4 x auth.max_failures times), each
    claiming another via X-Forwarded-For, with a new user name each time: still throttled."""
    with httpx.Client(base_url=edge.url, timeout=30) as client:
        codes = []
        for i in range(22):
            body = {"username": f"ghost-{i}", "password": "wrong-password", "client": "api"}
            forged = {"X-Forwarded-For": f"10.9.8.{i}"}
            codes.append(client.post("/api/login", json=body, headers=forged).status_code)
    assert codes[-1] == 429, codes
