"""The server's OpenAPI document, checked by tools that are not ours, against the real server.

Starts `evoucher serve` (EVOUCHER_BIN) on a loopback port with a SQLite file, then:
- validates /openapi.json as OpenAPI 3.1 (openapi-spec-validator);
- walks a real admin flow and validates every JSON answer against the document's schema for
  that operation and status (jsonschema, draft 2020-12);
- throws malformed input at every operation the document names (no token, wrong token, broken
  JSON, wrong types, oversized and odd path values): never a 5xx, never a status the document
  does not list, and every error is application/problem+json with a matching status.
"""

import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import urllib.error
import urllib.request

import jsonschema
import pytest
from openapi_spec_validator import validate

ADMIN = "openapi-python-admin-token-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d = tmp_path_factory.mktemp("server")
    env = dict(os.environ, EVOUCHER_ADMIN_TOKEN=ADMIN, EVOUCHER_MASTER_KEY="22" * 32)
    p = subprocess.Popen(
        [os.environ["EVOUCHER_BIN"], "serve", "--listen", "127.0.0.1:0",
         "--database", f"sqlite://{d / 'server.db'}"],
        cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline().strip()
    assert line.startswith("listening on http://"), line
    yield line.removeprefix("listening on ")
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0


def call(base, method, path, token=None, body=None, ctype="application/json"):
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", ctype)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


@pytest.fixture(scope="module")
def doc(server):
    st, h, body = call(server, "GET", "/openapi.json")
    assert st == 200
    d = json.loads(body)
    validate(d)
    return d


def check_answer(doc, path, method, st, headers, body):
    op = doc["paths"][path][method]
    assert st < 500, f"{method} {path}: {st} {body[:200]!r}"
    assert str(st) in op["responses"], f"{method} {path}: {st} is not documented"
    ctype = headers.get("content-type", "")
    if st >= 400:
        assert ctype == "application/problem+json", f"{method} {path}: {st} {ctype}"
        p = json.loads(body)
        assert p["status"] == st and p["title"] and "detail" in p
    resp = op["responses"][str(st)]
    if "$ref" in resp:
        resp = doc["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
    schema = resp.get("content", {}).get(ctype.split(";")[0], {}).get("schema")
    if schema is not None and ctype.startswith("application/") and "json" in ctype:
        root = dict(doc)
        root.update(schema)
        jsonschema.Draft202012Validator(root).validate(json.loads(body))


def test_the_document_is_valid_openapi(doc):
    assert doc["openapi"] == "3.1.0"
    assert len(doc["paths"]) >= 19


def test_real_answers_match_the_documented_schemas(server, doc):
    steps = [
        ("post", "/api/v1/programs", {"id": "p1", "name": "P1", "issuer": "https://p1.example", "currency": "KES", "amount": 500}),
        ("post", "/api/v1/programs/{id}/beneficiaries", b"beneficiary_id,name\nB-1,Amina\nB-2,Peter\n"),
        ("post", "/api/v1/programs/{id}/vouchers", {"imported": True}),
        ("post", "/api/v1/programs/{id}/keys/rotate", None),
        ("post", "/api/v1/providers", {"id": "SP-1", "name": "Shop"}),
        ("post", "/api/v1/providers/{id}/enrolment-codes", None),
        ("get", "/api/v1/trust", None),
        ("get", "/api/v1/revocations", None),
        ("get", "/healthz", None),
        ("get", "/readyz", None),
        ("get", "/api/v1/programs", None),
        ("get", "/api/v1/programs/{id}", None),
        ("get", "/api/v1/programs/{id}/beneficiaries", None),
        ("get", "/api/v1/programs/{id}/vouchers", None),
        ("get", "/api/v1/providers", None),
        ("get", "/api/v1/providers/{id}", None),
        ("get", "/api/v1/devices", None),
        ("get", "/api/v1/redemptions", None),
    ]
    voucher = None
    for method, path, body in steps:
        real = path.replace("{id}", "SP-1" if "providers" in path else "p1")
        ctype = "text/csv" if isinstance(body, bytes) else "application/json"
        st, h, out = call(server, method.upper(), real, ADMIN, body, ctype)
        assert st < 300, (path, st, out)
        check_answer(doc, path, method, st, h, out)
        if path.endswith("/vouchers"):
            voucher = json.loads(out)["vouchers"][0]["id"]
    for path in ["/api/v1/vouchers/{id}", "/api/v1/vouchers/{id}/qr.png", "/api/v1/vouchers/{id}/letter.pdf",
                 "/api/v1/vouchers/{id}/cancel"]:
        method = "post" if path.endswith("cancel") else "get"
        st, h, out = call(server, method.upper(), path.replace("{id}", voucher), ADMIN)
        assert st == 200, (path, st)
        check_answer(doc, path, method, st, h, out)
    st, h, out = call(server, "GET", "/api/v1/programs/p1/letters.pdf", ADMIN)
    assert st == 200 and out.startswith(b"%PDF-1.4") and h["x-total-count"] == "1"


BAD_BODIES = [
    None,
    b"{",
    b"[]",
    b"null",
    b'{"id": 5, "name": [], "issuer": {}}',
    b'{"entries": "x"}',
    b'{"beneficiaries": [{"id": 1}]}',
    b'{"code": "' + b"A" * 5000 + b'", "public_key": "!!"}',
    "{\"id\": \"\u00e9\\u0000\"}".encode(),
    b"\xff\xfe\x00garbage",
]
BAD_IDS = ["x", "..%2F..%2Fetc", "%00", "a" * 300, "p1'--", "%F0%9F%92%A3"]


def test_malformed_input_to_every_operation_is_a_documented_problem(server, doc):
    seen = 0
    for path, ops in doc["paths"].items():
        for method in ops:
            for ident in BAD_IDS if "{id}" in path else [None]:
                real = path.replace("{id}", ident) if ident else path
                for token in [None, "wrong-token", ADMIN]:
                    for body in BAD_BODIES if method == "post" else [None]:
                        ctype = "text/csv" if path.endswith("/beneficiaries") and body else "application/json"
                        st, h, out = call(server, method.upper(), real, token, body, ctype)
                        check_answer(doc, path, method, st, h, out)
                        seen += 1
    assert seen > 500
    # The oversized body: 413 problem+json, for JSON and for CSV; without valid credentials 401
    # first. The server answers as soon as it has the headers and closes without reading the
    # body, so a client still sending gets a broken pipe (CI saw it); send the headers only,
    # then read the answer.
    for path, token, ctype, limit, want in [
        ("/api/v1/sync/redemptions", "x", "application/json", 4 * 1024 * 1024, 401),
        ("/api/v1/programs/p1/beneficiaries", "x", "text/csv", 16 * 1024 * 1024, 401),
        ("/api/v1/programs/p1/beneficiaries", ADMIN, "text/csv", 16 * 1024 * 1024, 413),
        ("/api/v1/programs", ADMIN, "application/json", 1024 * 1024, 413),
        ("/api/v1/devices/enrol", None, "application/json", 1024 * 1024, 413),
    ]:
        st, h, out = declared_oversize(server, path, token, ctype, limit + 1)
        assert st == want and h["content-type"] == "application/problem+json", (path, st, h)
        assert json.loads(out)["status"] == want


def declared_oversize(base, path, token, ctype, length):
    """POST with a Content-Length over the limit and no body yet; return the server's answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
                   f"{auth}Content-Length: {length}\r\n\r\n").encode())
        r = http.client.HTTPResponse(s)
        r.begin()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def test_nothing_was_stored_by_the_malformed_requests(server):
    # Only what the real flow made exists: one program with its two beneficiaries, one provider.
    st, _, out = call(server, "POST", "/api/v1/programs/p1/vouchers", ADMIN, {"imported": True})
    assert st == 201 and json.loads(out)["remaining"] == 0
    st, _, _ = call(server, "POST", "/api/v1/programs", ADMIN,
                    {"id": "x", "name": "X", "issuer": "https://x.example", "currency": "KES", "amount": 1})
    assert st == 201, "no program 'x' was made by the malformed requests"
