"""Cross-check the signed payable format (docs/payable-format.md) with code that is not ours.

cbor2 decodes, this file rebuilds the COSE Sig_structure, `cryptography` (OpenSSL) verifies
Ed25519; the payload must hold exactly the payable of the vector. Then a payable made here in
Python must be accepted by the Rust `evoucher payable verify` (EVOUCHER_BIN), and the same with
one field changed after signing must be refused.
"""

import base64
import json
import os
import pathlib
import subprocess
import zlib

import base45
import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VECTOR = pathlib.Path(__file__).resolve().parent.parent / "payables" / "payable-ok.json"
CONTENT_TYPE = "application/evoucher-payable+cbor"


def unb64u(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def python_verify(text: str, jwk: dict) -> dict:
    assert text[:4].upper() == "EP1:"
    d = zlib.decompressobj()
    cose = d.decompress(base45.b45decode(text[4:]))
    assert d.eof and not d.unused_data
    obj = cbor2.loads(cose)
    assert isinstance(obj, cbor2.CBORTag) and obj.tag == 18
    protected_bstr, unprotected, payload, signature = obj.value
    protected = cbor2.loads(protected_bstr)
    assert protected == {1: -8, 3: CONTENT_TYPE, 4: unb64u(jwk["kid"])}
    assert unprotected == {}
    assert jwk["evoucher_use"] == "payable"
    tbs = cbor2.dumps(["Signature1", protected_bstr, b"", payload])
    Ed25519PublicKey.from_public_bytes(unb64u(jwk["x"])).verify(signature, tbs)
    return cbor2.loads(payload)


def test_the_vector_verifies_and_holds_the_payable():
    v = json.loads(VECTOR.read_text())
    p = python_verify(v["text"], v["key"])
    want = v["payable"]
    assert list(p) == ["id", "claim", "program", "payee", "payee_name", "account", "amount",
                       "currency", "redemptions", "from", "to", "approvals", "documents", "iat"]
    for k in ("id", "claim", "program", "payee", "payee_name", "amount", "currency",
              "redemptions", "from", "to", "documents"):
        assert p[k] == want[k], k
    assert p["iat"] == want["issued_at"]
    assert p["account"] == want["account"]
    assert p["approvals"] == [[a["stage"], a["role"], a["by"], a["at"]] for a in want["approvals"]]
    # Every stage of the vector is the one before it, encoded.
    cose = bytes.fromhex(v["cose_sign1_hex"])
    assert zlib.decompress(bytes.fromhex(v["zlib_hex"])) == cose
    assert v["text"] == "EP1:" + base45.b45encode(bytes.fromhex(v["zlib_hex"])).decode()
    assert cbor2.loads(cose).value[2] == bytes.fromhex(v["payload_cbor_hex"])


def python_payable(key: Ed25519PrivateKey, kid: bytes, amount: int) -> str:
    payload = {
        "id": "PAY-python0000000000000001", "claim": "CLM-python0000000000000001",
        "program": "food-2026", "payee": "SP-7", "payee_name": "Duka la Python",
        "account": {"kind": "mobile", "holder": "Asha P.", "msisdn": "+254700000007", "operator": "M-Pesa"},
        "amount": amount, "currency": "KES", "redemptions": 2, "from": 1795000000, "to": 1795000100,
        "approvals": [[1, "accountant", "a", 1795000200], [2, "cash_manager", "c", 1795000300]],
        "documents": "00" * 32, "iat": 1795000400,
    }
    protected = cbor2.dumps({1: -8, 3: CONTENT_TYPE, 4: kid})
    body = cbor2.dumps(payload)
    sig = key.sign(cbor2.dumps(["Signature1", protected, b"", body]))
    cose = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, body, sig]))
    return "EP1:" + base45.b45encode(zlib.compress(cose, 9)).decode()


def test_a_payable_made_in_python_is_checked_by_evoucher(tmp_path):
    exe = os.environ.get("EVOUCHER_BIN")
    if not exe:
        pytest.skip("EVOUCHER_BIN not set")
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    x = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    import hashlib
    kid = hashlib.sha256(x).digest()[:8]
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64u(x), "kid": b64u(kid), "alg": "EdDSA", "evoucher_use": "payable"}]}
    (tmp_path / "payables.jwks").write_text(json.dumps(jwks))
    good = tmp_path / "good.txt"
    good.write_text(python_payable(key, kid, 123456))
    r = subprocess.run([exe, "payable", "verify", str(good), "--trust", str(tmp_path / "payables.jwks"), "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout
    out = json.loads(r.stdout)
    assert out["valid"] is True and out["payable"]["amount"] == 123456
    # The same payable signed by a key the switch does not trust: exit 1.
    other = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
    bad = tmp_path / "bad.txt"
    bad.write_text(python_payable(other, kid, 123456))
    r = subprocess.run([exe, "payable", "verify", str(bad), "--trust", str(tmp_path / "payables.jwks")],
                       capture_output=True, text=True)
    assert r.returncode == 1, r.stdout + r.stderr
