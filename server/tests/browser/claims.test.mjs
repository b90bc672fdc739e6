// The reimbursement screens in a real browser (Debian's chromium, playwright-core), against
// `evoucher serve` on embedded defaults: a provider's account makes a claim with a photo after
// its phone (the CLI) redeemed and synced; the accountant lowers a line and approves; the cash
// manager approves, is refused a second stage, downloads the payable PDF, makes the pain.001
// file and records the switch's pain.002; the provider sees the claim paid. Screenshots under
// target/browser-screenshots/claims-*.png.
//
//   EVOUCHER_BIN=target/debug/evoucher node --test server/tests/browser/claims.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const here = path.dirname(new URL(import.meta.url).pathname);
const repo = path.resolve(here, "../../..");
const bin = path.resolve(process.env.EVOUCHER_BIN || path.join(repo, "target/debug/evoucher"));
const shots = path.join(repo, "target/browser-screenshots");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
fs.mkdirSync(shots, { recursive: true });

function serve(dir) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.EVOUCHER_ADMIN_TOKEN;
    delete env.EVOUCHER_MASTER_KEY;
    const proc = spawn(bin, ["serve", "--listen", "127.0.0.1:0"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) resolve({ url: m[1], proc });
    });
    proc.on("exit", (code) => reject(new Error(`serve exited ${code}`)));
  });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `claims-${name}.png`), fullPage: true });
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
      .filter((e) => e.labels.length === 0 && !e.getAttribute("aria-label"))
      .map((e) => e.name || e.id),
  );
  assert.deepEqual(unlabelled, [], `unlabelled controls on ${name}`);
}

test("claims, approvals and payment in a real browser", { timeout: 240_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "evoucher-claims-browser-"));
  const server = await serve(dir);
  const url = server.url;
  const admin = fs.readFileSync(path.join(dir, "evoucher-admin.token"), "utf8").trim();
  const api = async (method, p, body, token = admin, ctype = "application/json") => {
    const r = await fetch(url + p, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": ctype },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await r.text();
    let json;
    try { json = JSON.parse(text); } catch { json = text; }
    return { status: r.status, json };
  };
  // The world, through the API: a program with its paying account, a provider paid by bank,
  // and the people.
  assert.equal((await api("POST", "/api/v1/programs", { id: "food", name: "Food", issuer: "https://food.example", currency: "KES", amount: 1500, payer: { name: "Food Program", account: "KE00PROGRAM0001" } })).status, 201);
  assert.equal((await api("POST", "/api/v1/providers", { id: "SP-1", name: "Mama Mboga Grocers", category: "grocery", payout: { kind: "bank", holder: "Mama Mboga Ltd", number: "0123456789012", bank: "Equity Bank", bic: "EQBLKENA" } })).status, 201);
  const otp = {};
  for (const [name, role, extra] of [["shop", "provider", { provider: "SP-1" }], ["acct", "accountant", {}], ["cash", "cash_manager", {}]]) {
    const r = await api("POST", "/api/v1/users", { name, role, ...extra });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    otp[name] = r.json.one_time_password;
  }
  // The phone: enrol, redeem two vouchers, sync.
  const code = (await api("POST", "/api/v1/providers/SP-1/enrolment-codes", {})).json.code;
  const phone = path.join(dir, "phone.db");
  execFileSync(bin, ["enrol", "--server", url, "--code", code, "--ledger", phone]);
  execFileSync(bin, ["sync", "--ledger", phone]);
  const issued = (await api("POST", "/api/v1/programs/food/vouchers", { beneficiaries: [{ id: "BEN-1" }, { id: "BEN-2" }] })).json.vouchers;
  for (const v of issued) execFileSync(bin, ["redeem", "--ledger", phone, "-"], { input: v.text });
  execFileSync(bin, ["sync", "--ledger", phone]);
  // A photo of the receipt (a real PNG: the voucher's QR image will do).
  const png = await fetch(`${url}/api/v1/vouchers/${issued[0].id}/qr.png`, { headers: { authorization: `Bearer ${admin}` } });
  const photo = path.join(dir, "receipt.png");
  fs.writeFileSync(photo, Buffer.from(await png.arrayBuffer()));

  const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB" });
  const page = await context.newPage();
  const signIn = async (name) => {
    await context.clearCookies();
    await page.goto(`${url}/sign-in`);
    await page.fill("#name", name);
    await page.fill("#password", otp[name]);
    await page.click("button[type=submit]");
    await page.waitForURL((u) => !u.pathname.startsWith("/sign-in"));
    if (!page.url().endsWith("/password")) return;
    await page.fill("#current", otp[name]);
    await page.fill("#new", `${name}-chosen-password-1`);
    await page.fill("#confirm", `${name}-chosen-password-1`);
    await page.click("main button[type=submit]");
    await page.waitForURL((u) => !u.pathname.endsWith("/password"));
    otp[name] = `${name}-chosen-password-1`;
  };
  try {
    // The provider makes the claim with the photo.
    await signIn("shop");
    await page.goto(`${url}/claims`);
    await page.click("a[href='/claims/new']");
    await page.waitForURL(/\/claims\/new$/);
    assert.match(await page.textContent("#program"), /food \(unclaimed redemptions: 2\)/);
    await page.setInputFiles("#files", photo);
    await page.fill("#note", "November deliveries");
    await shot(page, "new");
    await page.click("form[action='/claims/new'] button[type=submit]");
    await page.waitForURL(/\/claims\/CLM-/);
    const claimUrl = page.url().split("?")[0];
    const id = claimUrl.split("/").pop();
    assert.match(await page.textContent(".flash"), /submitted/);
    assert.match(await page.textContent(".facts"), /waiting for the accountant \(stage 1 of 2\)/i);
    assert.equal(await page.locator(".docs img").count(), 1);
    await shot(page, "submitted");

    // The accountant: the queue, the document, one line lowered, approved.
    await signIn("acct");
    await page.goto(`${url}/claims`);
    assert.match(await page.textContent("tbody"), new RegExp(id));
    await page.click(`a[href='/claims/${id}']`);
    await page.waitForURL(new RegExp(id));
    const img = await page.locator(".docs img").evaluate((e) => e.complete && e.naturalWidth > 0);
    assert.ok(img, "the photo is shown");
    const first = await page.locator("td.lower input").first().getAttribute("name");
    await page.fill(`[name='${first}']`, "10.00");
    await page.fill(`[name='why.${first.slice(6)}']`, "receipt shows 10.00");
    await shot(page, "review");
    await page.click("button[name=decision][value=approve]");
    await page.waitForURL(/done=submitted/);
    assert.match(await page.textContent(".facts"), /waiting for the cash manager \(stage 2 of 2\)/i);
    assert.match(await page.textContent(".facts"), /25\.00 KES/);
    assert.equal(await page.$("#decide"), null, "no second decision for the accountant");

    // The cash manager approves; the same person cannot approve a stage twice (forged form).
    await signIn("cash");
    await page.goto(`${url}/claims/${id}`);
    await page.click("button[name=decision][value=approve]");
    await page.waitForURL(/done=payable/);
    assert.match(await page.textContent("main"), /PAY-/);
    await shot(page, "approved");
    const csrf = await page.getAttribute("input[name=csrf]", "value").catch(() => null);
    const again = await context.request.post(`${url}/claims/${id}/decision`, {
      form: { csrf: csrf || "x", stage: "2", decision: "approve" },
      headers: { origin: url },
      maxRedirects: 0,
    });
    assert.equal(again.status(), 303);
    assert.match(again.headers()["location"], /error=.*changed/, "a second decision on a decided claim is refused");
    const pdfLink = await page.getAttribute("a[href$='/pdf']", "href");
    const pdf = await context.request.get(url + pdfLink);
    assert.equal(pdf.headers()["content-type"], "application/pdf");
    fs.writeFileSync(path.join(dir, "payable.pdf"), await pdf.body());
    fs.writeFileSync(path.join(dir, "payables.jwks"), JSON.stringify((await api("GET", "/api/v1/payables/trust")).json));
    const verified = execFileSync(bin, ["payable", "verify", path.join(dir, "payable.pdf"), "--trust", path.join(dir, "payables.jwks")], { encoding: "utf8" });
    assert.match(verified, /^VALID: PAY-.* pay 25\.00 KES to Mama Mboga Grocers/);

    // The payment file, and the switch's answer.
    await page.goto(`${url}/payables`);
    await shot(page, "payables");
    await page.selectOption("#format", "pain.001");
    await page.click("form[action='/payables/batch'] button[type=submit]");
    await page.waitForURL(/flash=/);
    assert.match(await page.textContent(".flash"), /Payment file BAT-\S+ made with 1 payables/);
    const batch = (await page.textContent(".flash")).match(/BAT-\S+/)[0];
    const xml = await context.request.get(`${url}/api/v1/payments/batches/${batch}/file`);
    assert.match(await xml.text(), /<InstdAmt Ccy="KES">25\.00<\/InstdAmt>/);
    const payable = (await page.textContent("tbody")).match(/PAY-[0-9a-f]+/)[0];
    const report = path.join(dir, "status.xml");
    fs.writeFileSync(report, `<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt><GrpHdr><MsgId>S</MsgId><CreDtTm>2026-11-26T12:00:00Z</CreDtTm></GrpHdr><OrgnlGrpInfAndSts><OrgnlMsgId>${batch}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId></OrgnlGrpInfAndSts><OrgnlPmtInfAndSts><OrgnlPmtInfId>${batch}</OrgnlPmtInfId><TxInfAndSts><OrgnlEndToEndId>${payable}</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts></OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>`);
    await page.setInputFiles("#rfile", report);
    await page.click("form[action='/payables/results'] button[type=submit]");
    await page.waitForURL(/flash=/);
    assert.match(await page.textContent(".flash"), /1 paid, 0 failed/);
    await shot(page, "paid");

    // The provider sees it paid, and so does the phone.
    await signIn("shop");
    await page.goto(`${url}/claims`);
    assert.match(await page.textContent("tbody"), /paid/);
    await shot(page, "provider-paid");
    assert.match(execFileSync(bin, ["sync", "--ledger", phone], { encoding: "utf8" }), /PAID 25\.00 KES/);
    // French, for the reviewer's queue.
    await page.goto(`${url}/lang/fr?next=/claims/${id}`);
    assert.match(await page.textContent("h1"), /Demande/);
  } catch (e) {
    await page.screenshot({ path: path.join(shots, "claims-failure.png"), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
    server.proc.kill("SIGTERM");
  }
});
