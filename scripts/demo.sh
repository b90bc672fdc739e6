#!/usr/bin/env bash
# The main job on embedded defaults, end to end, with nothing to install beyond Rust:
# an issuer key, a voucher issued as text and QR code, verified offline, a forged copy and an
# expired check refused, redemptions recorded in a local ledger (a second redemption of a
# single-use voucher refused), the ledger checked, every layer inspected; then the program
# server on SQLite: CSV import, issuance, letters, an enrolled phone's sync, cancellations,
# accounts and the audit log. Output: ./demo-out/.
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
admin() {  # admin METHOD PATH BODY [CONTENT-TYPE [OUTPUT-FILE]]
  python3 - "$base" "$(cat evoucher-admin.token)" "$@" <<'PY'
import sys, urllib.request
base, token, method, path, body = sys.argv[1:6]
ctype = sys.argv[6] if len(sys.argv) > 6 else "application/json"
req = urllib.request.Request(base + path, method=method, data=body.encode() if body else None,
    headers={"authorization": "Bearer " + token, "content-type": ctype})
data = urllib.request.urlopen(req).read()
if len(sys.argv) > 7:
    open(sys.argv[7], "wb").write(data)
else:
    print(data.decode())
PY
}
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
kill $server_pid; wait $server_pid 2>/dev/null || true
trap - EXIT

echo
echo "==> 12. people: accounts with roles, and the audit log of every change"
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
