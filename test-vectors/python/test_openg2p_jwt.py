"""OpenG2P JWT vouchers, cross-checked with PyJWT + cryptography (not our code).

PyJWT makes vouchers in OpenG2P's exact shape, signed RS256, PS256 and ES256 with fresh keys;
the Rust `evoucher verify` must accept them, and refuse forged, unsigned and HMAC ones. The
other way round, PyJWT must accept the valid vectors in test-vectors/jwt/ and refuse the
signature-stage ones.
"""

import json
import os
import pathlib
import subprocess

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

JWT_VECTORS = sorted((pathlib.Path(__file__).resolve().parent.parent / "jwt").glob("*.json"))
NOW = "2023-07-01T00:00:00Z"
CLAIMS = {
    "iss": "https://uat-g2p.example.gov/api/v1/payments",
    "sub": "77",
    "aud": "34",
    "exp": 1695168000,
    "iat": 1687392000,
    "amount": "1250.50",
    "type": "voucher",
    "code": "9-aaaa-bbbb",
    "bName": "Dela Cruz, Maria",
    "bAddress": "Quezon City",
    "spName": "Trent Hospital",
    "docs": [],
}


def evoucher(args):
    exe = os.environ.get("EVOUCHER_BIN")
    if not exe:
        pytest.fail("EVOUCHER_BIN is not set: scripts/test.sh builds the binary and sets it")
    r = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    rsa_jwk.update(kid="rsa-kid-1", currency="PHP")
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    ec_jwk.update(kid="ec-kid-1", currency="PHP")
    path = tmp_path_factory.mktemp("trust") / "jwks.json"
    path.write_text(json.dumps({"keys": [rsa_jwk, ec_jwk]}))
    return {"rsa": rsa_key, "ec": ec_key, "trust": str(path)}


def verify(keys, token):
    return evoucher(["verify", "--json", "--trust", keys["trust"], "--at", NOW, token])


@pytest.mark.parametrize("alg,key,kid", [("RS256", "rsa", "rsa-kid-1"), ("PS256", "rsa", "rsa-kid-1"), ("ES256", "ec", "ec-kid-1")])
def test_pyjwt_vouchers_verify_in_rust(keys, alg, key, kid):
    token = jwt.encode(CLAIMS, keys[key], algorithm=alg, headers={"kid": kid, "typ": "JWT"})
    code, out = verify(keys, token)
    assert code == 0, out
    v = out["voucher"]
    assert out["format"] == "openg2p_jwt" and out["kid"] == kid
    assert v["value"] == {"amount": 125050, "currency": "PHP"}
    assert v["aud"] == "34" and v["beneficiary"] == {"id": "77", "name": "Dela Cruz, Maria"}
    assert v["rule"] == "single"

    # Amount changed after signing.
    h, p, s = token.split(".")
    forged_claims = dict(CLAIMS, amount="99999.00")
    forged = jwt.utils.base64url_encode(json.dumps(forged_claims, separators=(",", ":")).encode()).decode()
    code, out = verify(keys, f"{h}.{forged}.{s}")
    assert (code, out["stage"]) == (1, "signature")


def test_hmac_with_the_public_key_as_secret_is_refused(keys):
    # The classic key-confusion attack: HS256 keyed with the RSA public key's PEM.
    pem = keys["rsa"].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    import hashlib
    import hmac

    h = jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "kid": "rsa-kid-1", "typ": "JWT"}).encode()).decode()
    p = jwt.utils.base64url_encode(json.dumps(CLAIMS).encode()).decode()
    sig = hmac.new(pem, f"{h}.{p}".encode(), hashlib.sha256).digest()
    code, out = verify(keys, f"{h}.{p}.{jwt.utils.base64url_encode(sig).decode()}")
    assert (code, out["stage"]) == (1, "alg")


def test_unsigned_token_is_refused(keys):
    token = jwt.encode(CLAIMS, None, algorithm="none", headers={"kid": "rsa-kid-1"})
    code, out = verify(keys, token)
    assert (code, out["stage"]) == (1, "alg")


def test_unknown_kid_and_expiry(keys):
    token = jwt.encode(CLAIMS, keys["rsa"], algorithm="RS256", headers={"kid": "someone-else"})
    assert verify(keys, token)[1]["stage"] == "kid"
    token = jwt.encode(CLAIMS, keys["rsa"], algorithm="RS256", headers={"kid": "rsa-kid-1"})
    code, out = evoucher(["verify", "--json", "--trust", keys["trust"], "--at", "2024-01-01T00:00:00Z", token])
    assert (code, out["stage"]) == (1, "expired")


def _pyjwt_key(jwks, kid):
    k = next(k for k in jwks["keys"] if k["kid"] == kid)
    algo = jwt.algorithms.RSAAlgorithm if k["kty"] == "RSA" else jwt.algorithms.ECAlgorithm
    return algo.from_jwk(json.dumps(k))


@pytest.mark.parametrize("path", [p for p in JWT_VECTORS if json.loads(p.read_text())["expected"]["valid"]], ids=lambda p: p.stem)
def test_valid_rust_vectors_verify_in_pyjwt(path):
    v = json.loads(path.read_text())
    header = json.loads(v["stages"]["header"])
    key = _pyjwt_key(v["context"]["jwks"], header["kid"])
    claims = jwt.decode(v["stages"]["text"], key, algorithms=[header["alg"]], audience="34", options={"verify_exp": False})
    assert claims["amount"] == "5000.0" and claims["type"] == "voucher"


@pytest.mark.parametrize("path", [p for p in JWT_VECTORS if json.loads(p.read_text())["expected"]["failed_stage"] == "signature"], ids=lambda p: p.stem)
def test_signature_refusals_are_refused_by_pyjwt(path):
    v = json.loads(path.read_text())
    header = json.loads(v["stages"]["header"])
    key = _pyjwt_key(v["context"]["jwks"], header["kid"])
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(v["stages"]["text"], key, algorithms=[header["alg"]], audience="34", options={"verify_exp": False})


def test_vector_set_present():
    assert len(JWT_VECTORS) >= 20


def test_openg2p_voucher_redeems_once_in_the_ledger(keys, tmp_path):
    token = jwt.encode(dict(CLAIMS, code="redeem-me"), keys["rsa"], algorithm="RS256", headers={"kid": "rsa-kid-1"})
    ledger = str(tmp_path / "shop.db")
    base = ["redeem", "--json", "--ledger", ledger, "--trust", keys["trust"], "--at", NOW]
    code, out = evoucher(base + ["--provider", "35", token])
    assert (code, out["stage"]) == (1, "wrong_provider"), "aud names provider 34 only"
    code, out = evoucher(base + ["--provider", "34", token])
    assert code == 0, out
    assert out["entry"]["amount"] == 125050 and out["entry"]["currency"] == "PHP"
    assert bytes.fromhex(out["entry"]["issuer_kid"]) == b"rsa-kid-1"
    code, out = evoucher(base + ["--provider", "34", token])
    assert (code, out["stage"]) == (1, "already_redeemed")
    code, out = evoucher(["ledger", "verify", "--json", "--ledger", ledger])
    assert code == 0 and out["intact"] is True and out["entries"] == 1
