"""The payment files evoucher writes, checked by tools that are not ours.

A real `evoucher serve` (EVOUCHER_BIN) and real phones (the CLI on enrolled ledgers) make two
providers' claims, which people approve through the API; the pain.001 credit transfer file of
the payables must be valid against the official ISO 20022 pain.001.001.09 schema (as shipped by
sepaxml, checked by xmlschema), and say what was approved: one transaction per payable, the
amounts and their control sums, IBANs where they are IBANs, other account ids otherwise.
"""

import http.client
import json
import os
import pathlib
import signal
import subprocess
import xml.etree.ElementTree as ET

import sepaxml
import xmlschema

ADMIN = "payments-python-admin-token-0123456789"
NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"}


def call(addr, method, path, token=None, body=None, headers=None):
    c = http.client.HTTPConnection(addr, timeout=30)
    h = {"content-type": "application/json"}
    if token:
        h["authorization"] = f"Bearer {token}"
    h.update(headers or {})
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    try:
        return r.status, dict(r.getheaders()), json.loads(data)
    except ValueError:
        return r.status, dict(r.getheaders()), data


def person(addr, name, role):
    st, _, u = call(addr, "POST", "/api/v1/users", ADMIN, {"name": name, "role": role})
    assert st == 201, u
    otp = u["one_time_password"]
    st, h, s = call(addr, "POST", "/api/v1/session", None, {"name": name, "password": otp})
    assert st == 200, s
    cookie = h["set-cookie"].split(";")[0]
    auth = {"cookie": cookie, "x-csrf-token": s["csrf"], "origin": f"http://{addr}"}
    st, _, _ = call(addr, "POST", "/api/v1/me/password", None, {"current": otp, "new": name + "-password-123"}, auth)
    assert st == 204
    st, _, t = call(addr, "POST", "/api/v1/me/tokens", None, {"name": "t"}, auth)
    assert st == 201, t
    return t["token"]


def ev(*args, cwd=None, input=None):
    r = subprocess.run([os.environ["EVOUCHER_BIN"], *args], cwd=cwd, input=input, capture_output=True, text=True)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r.stdout


def test_pain_001_is_valid_iso_20022(tmp_path):
    env = dict(os.environ, EVOUCHER_ADMIN_TOKEN=ADMIN, EVOUCHER_MASTER_KEY="33" * 32)
    p = subprocess.Popen([os.environ["EVOUCHER_BIN"], "serve", "--listen", "127.0.0.1:0"], cwd=tmp_path, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        addr = p.stdout.readline().strip().removeprefix("listening on http://")
        st, _, v = call(addr, "POST", "/api/v1/programs", ADMIN, {
            "id": "food", "name": "Food & Co <2026>", "issuer": "https://food.example", "currency": "KES", "amount": 123456,
            "payer": {"name": "Food Program", "account": "KE89EQBL0000001234567890", "bic": "EQBLKENA"}})
        assert st == 201, v
        providers = [
            ("SP-1", {"kind": "bank", "holder": "Mama Mboga & Sons", "number": "DE89370400440532013000", "bank": "Commerzbank", "bic": "COBADEFFXXX"}),
            ("SP-2", {"kind": "bank", "holder": "Duka la Juma", "number": "0123 4567 8901", "bank": "Equity Bank"}),
        ]
        for n, (sp, payout) in enumerate(providers):
            st, _, v = call(addr, "POST", "/api/v1/providers", ADMIN, {"id": sp, "name": sp, "category": "grocery", "payout": payout})
            assert st == 201, v
            _, _, c = call(addr, "POST", f"/api/v1/providers/{sp}/enrolment-codes", ADMIN, {})
            ledger = str(tmp_path / f"{sp}.db")
            ev("enrol", "--server", f"http://{addr}", "--code", c["code"], "--ledger", ledger)
            ev("sync", "--ledger", ledger)
            _, _, issued = call(addr, "POST", "/api/v1/programs/food/vouchers", ADMIN, {"beneficiaries": [{"id": f"B-{n}-{i}"} for i in range(2)]})
            for v in issued["vouchers"]:
                ev("redeem", "--ledger", ledger, "-", input=v["text"])
            ev("sync", "--ledger", ledger)
            ev("claim", "submit", "--ledger", ledger, "--program", "food")
        acct, cash = person(addr, "acct", "accountant"), person(addr, "cash", "cash_manager")
        _, _, claims = call(addr, "GET", "/api/v1/claims", acct)
        assert claims["total"] == 2
        for c in claims["claims"]:
            for stage, token in ((1, acct), (2, cash)):
                st, _, v = call(addr, "POST", f"/api/v1/claims/{c['id']}/decision", token, {"stage": stage, "decision": "approve"})
                assert st == 200, v
        st, _, b = call(addr, "POST", "/api/v1/payments/batches", cash, {"format": "pain.001", "program": "food"})
        assert st == 201, b
        st, _, xml = call(addr, "GET", b["file"], cash)
        assert st == 200
        schema_file = pathlib.Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
        xmlschema.XMLSchema(str(schema_file)).validate(xml.decode())
        doc = ET.fromstring(xml)
        txs = doc.findall(".//p:CdtTrfTxInf", NS)
        assert len(txs) == 2
        assert doc.find(".//p:GrpHdr/p:NbOfTxs", NS).text == "2"
        assert doc.find(".//p:GrpHdr/p:CtrlSum", NS).text == "4938.24"
        assert sorted(t.find("p:PmtId/p:EndToEndId", NS).text for t in txs) == sorted(b["payables"])
        assert {t.find("p:Amt/p:InstdAmt", NS).text for t in txs} == {"2469.12"}
        accounts = {t.find("p:Cdtr/p:Nm", NS).text: t.find("p:CdtrAcct/p:Id", NS) for t in txs}
        assert accounts["Mama Mboga & Sons"].find("p:IBAN", NS).text == "DE89370400440532013000"
        assert accounts["Duka la Juma"].find("p:Othr/p:Id", NS).text == "012345678901"
        assert doc.find(".//p:DbtrAcct/p:Id/p:IBAN", NS).text == "KE89EQBL0000001234567890"
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=20)
