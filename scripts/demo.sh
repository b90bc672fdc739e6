#!/usr/bin/env bash
# The main job on embedded defaults, end to end, with nothing to install beyond Rust:
# an issuer key, a voucher issued as text and QR code, verified offline, a forged copy and an
# expired check refused, redemptions recorded in a local ledger (a second redemption of a
# single-use voucher refused), the ledger checked, every layer inspected; then the program
# server on SQLite: CSV import, issuance, letters, an enrolled phone's sync, cancellations; a
# reimbursement claim with a receipt photo approved in two stages, its signed payable PDF checked
# (and an edited copy refused), the pain.001 payment file, the switch's pain.002; accounts and
# the audit log. Output: ./demo-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "Rust (cargo) is required: see README" >&2; exit 2; }
echo "==> building evoucher (release)"
if [ ! -x target/release/evoucher ]; then
  echo "    the first build compiles about 330 crates: around 9 minutes on 2 cores (later runs: seconds)"
fi
# Cargo's own lines, but one progress line per 25 crates instead of one per crate.
t0=$SECONDS
cargo build --release -p evoucher 2>&1 | {
  n=0
  while IFS= read -r line; do
    case "$line" in
      *" Compiling "*)
        n=$((n + 1))
        if [ $((n % 25)) -eq 0 ]; then echo "    $n crates compiled, $((SECONDS - t0)) s so far"; fi ;;
      *" Fresh "* | *" Downloaded "* | *" Downloading "* | *" Locking "* | *" Adding "* | *" Updating "* | *" Blocking "*) ;;
      *) echo "$line" ;;
    esac
  done
}
[ -x target/release/evoucher ] || { echo "the build failed (above)" >&2; exit 1; }
ev="$PWD/target/release/evoucher"
out="$PWD/demo-out"
rm -rf "$out" && mkdir -p "$out"
cd "$out"

echo
echo "==> 1. the program makes an issuer key (private key stays with the program, mode 0600)"
"$ev" keygen --out issuer.jwk --iss https://food.example.org > trust.json
ls -l issuer.jwk
echo "public trust store for the phones (trust.json):"
cat trust.json

echo
echo "==> 2. the program issues a voucher for a beneficiary (QR code in voucher.png)"
text=$("$ev" issue --key issuer.jwk --iss https://food.example.org --program food-2026 \
  --beneficiary BEN-0001 --name "Amina K." --amount 250000 --currency KES \
  --item RICE:10:kg --item OIL:2:l --partial --category grocery --valid-days 90 \
  --png voucher.png --svg voucher.svg)
echo "$text" > voucher.txt
echo "$text"
echo "(${#text} characters, QR alphanumeric mode)"

echo
echo "==> 3. a shop's phone verifies it offline against the trust store"
"$ev" verify --trust trust.json "$text"

echo
echo "==> 4. a forged copy (one character changed) is refused"
mid=$(( ${#text} / 2 ))
c=${text:$mid:1}; [ "$c" = "A" ] && r=B || r=A
forged="${text:0:$mid}$r${text:$((mid+1))}"
if "$ev" verify --trust trust.json "$forged"; then echo "forged voucher accepted!" >&2; exit 1; fi

echo
echo "==> 5. the same voucher a year from now is refused as expired"
later=$(date -u -d '+365 days' +%Y-%m-%dT%H:%M:%SZ)
if "$ev" verify --trust trust.json --at "$later" "$text"; then echo "expired voucher accepted!" >&2; exit 1; fi

echo
echo "==> 6. the shop redeems it into its local ledger (offline, durable, signed by the phone)"
"$ev" redeem --ledger shop.db --trust trust.json --provider SP-0042 --category grocery --amount 100000 "$text"
"$ev" redeem --ledger shop.db --trust trust.json --provider SP-0042 --category grocery --item RICE:4 "$text"

echo
echo "==> 7. a second voucher, single use: redeemed once, then refused the second time"
single=$("$ev" issue --key issuer.jwk --iss https://food.example.org --program food-2026 \
  --beneficiary BEN-0005 --name "Daudi M." --amount 50000 --currency KES --valid-days 30)
"$ev" redeem --ledger shop.db --trust trust.json --provider SP-0042 "$single"
if "$ev" redeem --ledger shop.db --trust trust.json --provider SP-0042 "$single"; then
  echo "second redemption accepted!" >&2; exit 1
fi

echo
echo "==> 8. the ledger: entries, and its hash chain and signatures checked"
"$ev" ledger list --ledger shop.db
"$ev" ledger verify --ledger shop.db

echo
echo "==> 9. every layer, for debugging (JSON)"
"$ev" inspect --json "$text" | python3 -m json.tool > inspect.json
head -40 inspect.json
echo "... (all of it in $out/inspect.json)"

echo
echo "==> 10. a batch of three vouchers from a CSV"
printf 'beneficiary_id,name,amount\nBEN-0002,Baraka O.,\nBEN-0003,,120000\nBEN-0004,Chebet W.,\n' > beneficiaries.csv
"$ev" issue --key issuer.jwk --iss https://food.example.org --program food-2026 \
  --amount 250000 --currency KES --csv beneficiaries.csv --out-dir batch
ls batch

echo
echo "==> 11. the whole loop with the program server (SQLite, in the background)"
mkdir -p server && cd server
"$ev" serve --listen 127.0.0.1:0 > serve.out 2> serve.log &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "listening on" serve.out 2>/dev/null && break; sleep 0.2; done
base=$(sed -n 's/^listening on //p' serve.out)
echo "server at $base (admin token in server/evoucher-admin.token, issuer keys sealed at rest)"
api() {  # api TOKEN METHOD PATH BODY [CONTENT-TYPE [OUTPUT-FILE]]; a refusal: its detail, exit 1
  python3 - "$base" "$@" <<'PY'
import json, sys, urllib.error, urllib.request
base, token, method, path, body = sys.argv[1:6]
ctype = sys.argv[6] if len(sys.argv) > 6 else "application/json"
req = urllib.request.Request(base + path, method=method, data=body.encode() if body else None,
    headers={"authorization": "Bearer " + token, "content-type": ctype})
try:
    data = urllib.request.urlopen(req).read()
except urllib.error.HTTPError as e:
    print(f"refused ({e.code}): {json.loads(e.read()).get('detail')}")
    sys.exit(1)
if len(sys.argv) > 7:
    open(sys.argv[7], "wb").write(data)
else:
    print(data.decode())
PY
}
admin() { api "$(cat evoucher-admin.token)" "$@"; }
admin POST /api/v1/programs '{"id":"food-2026","name":"Food 2026","issuer":"https://food.example.org","currency":"KES","amount":250000,"validity_days":60}' > /dev/null
printf 'beneficiary_id,name,amount\nBEN-1001,Esther N.,\nBEN-1002,Juma K.,300000\nBEN-1003,,\n' > beneficiaries.csv
admin POST /api/v1/programs/food-2026/beneficiaries "$(cat beneficiaries.csv)" text/csv
admin POST /api/v1/programs/food-2026/vouchers '{"imported":true}' > issued.json
python3 -c "import json; [print(v['text']) for v in json.load(open('issued.json'))['vouchers']]" > issued.txt
python3 -c "import json; [print(v['id']) for v in json.load(open('issued.json'))['vouchers']]" > issued.ids
echo "imported 3 beneficiaries from CSV and issued $(wc -l < issued.txt) vouchers on the server"
admin GET "/api/v1/vouchers/$(sed -n 1p issued.ids)/letter.pdf" "" application/json esther-letter.pdf
admin GET "/api/v1/vouchers/$(sed -n 1p issued.ids)/qr.png" "" application/json esther.png
admin GET /api/v1/programs/food-2026/letters.pdf "" application/json all-letters.pdf
echo "printable letters: server/esther-letter.pdf, server/all-letters.pdf (one page each); QR: server/esther.png"
admin POST /api/v1/providers '{"id":"SP-0042","name":"Mama Mboga Grocers","category":"grocery"}' > /dev/null
code=$(admin POST /api/v1/providers/SP-0042/enrolment-codes '{}' | python3 -c "import json,sys; print(json.load(sys.stdin)['code'])")
"$ev" enrol --server "$base" --code "$code" --ledger phone.db
echo "-- the enrolled phone knows its server, provider and device; the first sync fetches the trust list --"
"$ev" sync --ledger phone.db
echo "-- offline: the beneficiary shows her voucher's QR code (the server's PNG); the phone scans it and redeems --"
first=$("$ev" scan --json esther.png | python3 -c "import json,sys; print(json.load(sys.stdin)['codes'][0]['text'])")
"$ev" redeem --ledger phone.db "$first"
"$ev" redeem --ledger phone.db "$(sed -n 2p issued.txt)"
echo "-- a mistyped provider is refused offline (the phone is enrolled for SP-0042), nothing recorded --"
if "$ev" redeem --ledger phone.db --provider SP-9 "$(sed -n 2p issued.txt)"; then
  echo "another provider was accepted on an enrolled phone: wrong" >&2; exit 1
fi
echo "-- meanwhile the program cancels the third voucher --"
admin POST "/api/v1/vouchers/$(sed -n 3p issued.ids)/cancel" "" > /dev/null
echo "-- back online --"
"$ev" sync --json --ledger phone.db > sync.json
python3 - <<'PY'
import json
r = json.load(open("sync.json"))
print(f"synced: pushed {r['pushed']}, accepted {r['accepted']}, revocations received {r['revocations_added']}, left to sync {r['remaining']}")
PY
if "$ev" redeem --ledger phone.db "$(sed -n 3p issued.txt)"; then
  echo "the cancelled voucher was accepted: wrong" >&2; exit 1
fi
echo "the cancelled voucher is refused on the phone after sync"
"$ev" ledger list --ledger phone.db
"$ev" ledger verify --ledger phone.db
echo "-- the server's record, read back: the redemptions as judged, and the program --"
admin GET /api/v1/redemptions "" > redemptions.json
python3 - <<'PY'
import json
for r in json.load(open("redemptions.json"))["redemptions"]:
    print(f"  {r['status']:<8} {r['kind']:<6} voucher {r['voucher_id']} by {r['provider_id']} ({r['device_id']}) {r['amount']} {r['currency']}")
PY
admin GET /api/v1/programs/food-2026 "" | python3 -c "import json,sys; p=json.load(sys.stdin); print('  program', p['id'], p['counts'])"

echo
echo "==> 12. reimbursement: the shop claims, two people approve, the payment switch checks and pays"
admin PATCH /api/v1/programs/food-2026 '{"payer":{"name":"Food 2026 Program","account":"KE89EQBL0000001234567890","bic":"EQBLKENA"}}' > /dev/null
admin PATCH /api/v1/providers/SP-0042 '{"payout":{"kind":"bank","holder":"Mama Mboga Ltd","number":"0123456789012","bank":"Equity Bank","bic":"EQBLKENA"}}' > /dev/null
echo "the program's paying account and the shop's bank account are recorded"
# A photo of the receipt (a small PNG made here).
python3 - <<'PY'
import struct, zlib
w, h = 240, 160
rows = b"".join(b"\x00" + bytes((255 if (y // 12) % 2 else 200) - (x % 40) for x in range(w)) for y in range(h))
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
open("receipt.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
echo "-- the shop's phone claims its accepted redemptions, with a photo of the receipt --"
"$ev" claim submit --ledger phone.db --program food-2026 --doc receipt.png --note "November deliveries"
claim=$("$ev" claim list --ledger phone.db --json | python3 -c "import json,sys; print(json.load(sys.stdin)['claims'][0]['id'])")
# Two people, each with their own account (one-time password changed, an API token made).
person() {  # person NAME ROLE -> API token
  python3 - "$base" "$(cat evoucher-admin.token)" "$1" "$2" <<'PY'
import http.client, json, sys, urllib.parse
base, admin, name, role = sys.argv[1:5]
host = urllib.parse.urlparse(base).netloc
def call(method, path, body, headers):
    c = http.client.HTTPConnection(host); c.request(method, path, json.dumps(body), {"content-type": "application/json", **headers})
    r = c.getresponse(); return r, json.loads(r.read() or "null")
_, u = call("POST", "/api/v1/users", {"name": name, "role": role}, {"authorization": "Bearer " + admin})
r, s = call("POST", "/api/v1/session", {"name": name, "password": u["one_time_password"]}, {})
h = {"cookie": r.getheader("set-cookie").split(";")[0], "x-csrf-token": s["csrf"], "origin": base}
call("POST", "/api/v1/me/password", {"current": u["one_time_password"], "new": name + "-demo-password"}, h)
print(call("POST", "/api/v1/me/tokens", {"name": "demo"}, h)[1]["token"])
PY
}
acct=$(person accountant-demo accountant)
cash=$(person cash-demo cash_manager)
line=$(api "$acct" GET "/api/v1/claims/$claim" "" | python3 -c "import json,sys; l=json.load(sys.stdin)['lines'][0]; print(l['redemption'], l['value'] - 50000)")
echo "-- the accountant lowers one line by 500.00 KES (the receipt shows less) and approves stage 1 --"
api "$acct" POST "/api/v1/claims/$claim/decision" "{\"stage\":1,\"decision\":\"approve\",\"lines\":[{\"redemption\":\"${line% *}\",\"approved\":${line#* },\"reason\":\"receipt shows 500.00 less\"}]}" \
  | python3 -c "import json,sys; c=json.load(sys.stdin); print(f\"  {c['id']}: approved {c['approved']/100:.2f} KES at stage 1, now waiting for the {c['waiting_for'].replace('_', ' ')}\")"
echo "-- the accountant who approved stage 1 tries to approve stage 2 as well: refused (one person, one stage) --"
if api "$acct" POST "/api/v1/claims/$claim/decision" '{"stage":2,"decision":"approve"}'; then
  echo "one person approved two stages: wrong" >&2; exit 1
fi
echo "-- the cash manager approves stage 2: the payable is made and signed --"
payable=$(api "$cash" POST "/api/v1/claims/$claim/decision" '{"stage":2,"decision":"approve"}' | python3 -c "import json,sys; print(json.load(sys.stdin)['payable']['id'])")
api "$cash" GET "/api/v1/payables/$payable/pdf" "" application/json payable.pdf
api "$cash" GET /api/v1/payables/trust "" application/json payables.jwks
echo "account-payable PDF: server/payable.pdf; the payment switch checks it before paying:"
"$ev" payable verify payable.pdf --trust payables.jwks
# A copy with the account number changed, as a forger would edit it.
python3 - <<'PY'
import re, zlib
data = open("payable.pdf", "rb").read()
objs = list(re.finditer(rb"(\d+) 0 obj\n(.*?)\nendobj\n", data, re.S))
out, offsets = bytearray(data[:objs[0].start()]), {}
for m in objs:
    num, body = int(m.group(1)), m.group(2)
    s = re.match(rb"<< /Length (\d+) /Filter /FlateDecode(.*?) >>\nstream\n", body, re.S)
    if s:
        raw = body[s.end():s.end() + int(s.group(1))]
        try:
            plain = zlib.decompress(raw)
        except zlib.error:
            plain = b""
        if b"0123456789012" in plain:
            raw = zlib.compress(plain.replace(b"0123456789012", b"0999999999012"))
            body = b"<< /Length %d /Filter /FlateDecode%s >>\nstream\n" % (len(raw), s.group(2)) + raw + b"\nendstream"
    offsets[num] = len(out)
    out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
xref, size = len(out), max(offsets) + 1
out += b"xref\n0 %d\n0000000000 65535 f \n" % size + b"".join(b"%010d 00000 n \n" % offsets[i] for i in range(1, size))
out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
open("payable-edited.pdf", "wb").write(bytes(out))
PY
echo "-- and a copy whose account number was edited (server/payable-edited.pdf) --"
if "$ev" payable verify payable-edited.pdf --trust payables.jwks; then
  echo "an edited payable was accepted: wrong" >&2; exit 1
fi
echo "-- the cash manager sends the payment file to the switch (ISO 20022 pain.001) --"
batch=$(api "$cash" POST /api/v1/payments/batches '{"format":"pain.001","program":"food-2026"}' | python3 -c "import json,sys; print(json.load(sys.stdin)['id'])")
api "$cash" GET "/api/v1/payments/batches/$batch/file" "" application/json pain.001.xml
echo "payment file: server/pain.001.xml"
if [ ! -x "$out/.venv-xsd/bin/python" ]; then
  python3 -m venv "$out/.venv-xsd" >/dev/null 2>&1 && "$out/.venv-xsd/bin/pip" install -q --disable-pip-version-check xmlschema==4.3.2 sepaxml==2.7.0 >/dev/null 2>&1 || true
fi
if "$out/.venv-xsd/bin/python" -c "import xmlschema, sepaxml" 2>/dev/null; then
  "$out/.venv-xsd/bin/python" - <<'PY'
import pathlib, sepaxml, xmlschema
xsd = pathlib.Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.09.xsd"
xmlschema.XMLSchema(str(xsd)).validate("pain.001.xml")
print("  valid against the ISO 20022 pain.001.001.09 schema (xmlschema, the schema from sepaxml)")
PY
else
  echo "  (the schema check needs xmlschema and sepaxml from PyPI, which could not be installed here: skipped)"
fi
echo "-- the switch pays and answers with a pain.002 status report --"
python3 - "$batch" "$payable" <<'PY'
import sys
batch, payable = sys.argv[1:3]
open("pain.002.xml", "w").write(f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>
<GrpHdr><MsgId>SWITCH-1</MsgId><CreDtTm>2026-11-26T12:00:00Z</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>{batch}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts>
<OrgnlPmtInfAndSts><OrgnlPmtInfId>{batch}</OrgnlPmtInfId>
<TxInfAndSts><OrgnlEndToEndId>{payable}</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts>
</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>
""")
PY
api "$cash" POST /api/v1/payments/results "$(cat pain.002.xml)" application/xml \
  | python3 -c "import json,sys; r=json.load(sys.stdin); print(f\"  recorded: {r['paid']} paid, {r['failed']} failed\")"
echo "-- the shop's phone syncs and sees its claim paid --"
"$ev" sync --ledger phone.db | grep "claim "
kill $server_pid; wait $server_pid 2>/dev/null || true
trap - EXIT

echo
echo "==> 13. people: accounts with roles, and the audit log of every change"
echo "the first start made the account admin, with a one-time password in server/evoucher-admin.password (0600)"
"$ev" user add accountant1 --role accountant > /dev/null
"$ev" user add auditor1 --role auditor > /dev/null
"$ev" user list
"$ev" audit verify
cd ..

echo
echo "demo complete: files in $out"
echo
echo "the back office (the web pages program staff work in):"
echo "  start the demo's server:  (cd demo-out/server && $ev serve)"
echo "  open:                     http://127.0.0.1:8080/"
echo "  sign in as:               admin"
echo "  one-time password:        $(cat "$out/server/evoucher-admin.password")   (demo data; you choose a new one at first sign-in)"
