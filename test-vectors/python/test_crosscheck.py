"""Cross-check the voucher format with an implementation that is not ours.

cbor2 decodes, this file rebuilds the COSE Sig_structure itself, and `cryptography` (OpenSSL)
verifies Ed25519. Every valid vector must verify here; every signature-stage refusal must be
refused here too. Then a voucher made entirely in Python must verify with the Rust `evoucher`
binary (path in EVOUCHER_BIN).
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
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VECTORS = pathlib.Path(__file__).resolve().parent.parent / "vouchers"
ALL = sorted(VECTORS.glob("*.json"))


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def decode_text(text: str):
    assert text[:4].upper() == "EV1:"
    body = base45.b45decode(text[4:])
    if body[0] in (0xD2, 0x84):
        cose = body
    else:
        d = zlib.decompressobj()
        cose = d.decompress(body)
        assert d.eof and not d.unused_data
    obj = cbor2.loads(cose)
    if isinstance(obj, cbor2.CBORTag):
        assert obj.tag == 18
        obj = obj.value
    assert isinstance(obj, (list, tuple)) and len(obj) == 4
    return obj


def python_verify(text: str, jwks: dict) -> dict:
    """Verify like the spec says, with nothing from the Rust side. Returns the claims map."""
    protected_bstr, unprotected, payload, signature = decode_text(text)
    protected = cbor2.loads(protected_bstr)
    assert protected[1] == -8, "alg must be EdDSA"
    kid = protected[4]
    assert 4 not in unprotected and 1 not in unprotected
    keys = {unb64u(k["kid"]): k for k in jwks["keys"]}
    pub = Ed25519PublicKey.from_public_bytes(unb64u(keys[kid]["x"]))
    sig_structure = cbor2.dumps(["Signature1", protected_bstr, b"", payload])
    pub.verify(signature, sig_structure)
    return cbor2.loads(payload)


def load(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("path", [p for p in ALL if load(p)["expected"]["valid"]], ids=lambda p: p.stem)
def test_valid_vectors_verify_independently(path):
    v = load(path)
    claims = python_verify(v["stages"]["text"], v["context"]["jwks"])
    expected = v["stages"]["claims"]
    assert claims[1] == expected["iss"]
    assert claims[7].hex() == expected["id"] == v["expected"]["voucher_id"]
    assert claims[4] == expected["exp"] and claims[6] == expected["iat"]
    voucher = claims[-65537]
    assert voucher[1] == 1
    assert voucher[2] == expected["program"]
    assert voucher[4][1] == expected["beneficiary"]["id"]
    if "value" in expected:
        assert voucher[5] == {1: expected["value"]["amount"], 2: expected["value"]["currency"]}
    assert [i[1] for i in voucher.get(6, [])] == [i["code"] for i in expected.get("items", [])]
    assert voucher.get(7, 0) == {"single": 0, "partial": 1}[expected["rule"]]
    # The payload bytes are the claims CBOR recorded in the vector.
    assert decode_text(v["stages"]["text"])[2] == bytes.fromhex(v["stages"]["claims_cbor_hex"])


@pytest.mark.parametrize(
    "path",
    [p for p in ALL if load(p)["expected"]["failed_stage"] == "signature"],
    ids=lambda p: p.stem,
)
def test_signature_refusals_are_refused_independently(path):
    v = load(path)
    with pytest.raises((InvalidSignature, ValueError)):
        python_verify(v["stages"]["text"], v["context"]["jwks"])


def test_vector_set_is_complete():
    assert len(ALL) >= 40
    assert sum(load(p)["expected"]["valid"] for p in ALL) >= 8


def make_voucher(key: Ed25519PrivateKey, amount: int) -> tuple[str, dict]:
    pub = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    h = hashes.Hash(hashes.SHA256())
    h.update(pub)
    kid = h.finalize()[:8]
    claims = {
        1: "https://python.example.org",
        4: 1_798_675_200,
        6: 1_767_225_600,
        7: bytes(range(16)),
        -65537: {
            1: 1,
            2: "py-program",
            4: {1: "PY-BEN-1", 2: "Grace H."},
            5: {1: amount, 2: "UGX"},
            6: [{1: "MAIZE", 2: 20, 3: "kg"}],
            7: 1,
            9: ["grocery"],
        },
    }
    payload = cbor2.dumps(claims)
    protected = cbor2.dumps({1: -8, 4: kid})
    sig = key.sign(cbor2.dumps(["Signature1", protected, b"", payload]))
    cose = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, payload, sig]))
    b45 = base45.b45encode(zlib.compress(cose, 9))
    text = "EV1:" + (b45.decode() if isinstance(b45, bytes) else b45)
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": b64u(pub), "kid": b64u(kid)}]}
    return text, jwks


def run_rust(args):
    exe = os.environ.get("EVOUCHER_BIN")
    if not exe:
        pytest.fail("EVOUCHER_BIN is not set: scripts/test.sh builds the binary and sets it")
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


def test_python_made_voucher_verifies_in_rust(tmp_path):
    key = Ed25519PrivateKey.generate()
    text, jwks = make_voucher(key, 150_000)
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps(jwks))
    r = run_rust(["verify", "--json", "--trust", str(trust), "--at", "2026-06-01T00:00:00Z", text])
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["valid"] is True
    v = out["voucher"]
    assert v["value"] == {"amount": 150000, "currency": "UGX"}
    assert v["items"] == [{"code": "MAIZE", "quantity": 20, "unit": "kg"}]
    assert v["rule"] == "partial" and v["categories"] == ["grocery"]
    assert v["id"] == bytes(range(16)).hex()

    # Same voucher, amount changed after signing: the Rust side refuses the signature.
    protected_bstr, unprotected, payload, sig = decode_text(text)
    claims = cbor2.loads(payload)
    claims[-65537][5][1] = 9_999_999
    forged = cbor2.dumps(cbor2.CBORTag(18, [protected_bstr, unprotected, cbor2.dumps(claims), sig]))
    b45 = base45.b45encode(zlib.compress(forged))
    forged_text = "EV1:" + (b45.decode() if isinstance(b45, bytes) else b45)
    r = run_rust(["verify", "--json", "--trust", str(trust), "--at", "2026-06-01T00:00:00Z", forged_text])
    assert r.returncode == 1
    assert json.loads(r.stdout)["stage"] == "signature"
