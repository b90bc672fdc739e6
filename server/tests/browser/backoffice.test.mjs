// The back office in a real browser: Debian's chromium driven by playwright-core, against
// `evoucher serve` on embedded defaults (a fresh SQLite database in a scratch directory).
// Walks the whole flow as each role, checks the refusals, cross-site request forgery, sign-out
// and the right-to-left page, and saves a screenshot of every page it sees under
// target/browser-screenshots/ for a person to look at.
//
//   EVOUCHER_BIN=target/debug/evoucher node --test server/tests/browser/backoffice.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

const here = path.dirname(new URL(import.meta.url).pathname);
const repo = path.resolve(here, "../../..");
const bin = path.resolve(process.env.EVOUCHER_BIN || path.join(repo, "target/debug/evoucher"));
const shots = path.join(repo, "target/browser-screenshots");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

fs.rmSync(shots, { recursive: true, force: true });
fs.mkdirSync(shots, { recursive: true });

/** `evoucher serve` in `dir`; resolves to { url, proc } once it listens. */
function serve(dir) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.EVOUCHER_ADMIN_TOKEN;
    delete env.EVOUCHER_MASTER_KEY;
    const proc = spawn(bin, ["serve", "--listen", "127.0.0.1:0"], {
      cwd: dir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    proc.stderr.on("data", (d) => (err += d));
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) resolve({ url: m[1], proc, stderr: () => err });
    });
    proc.on("exit", (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

function evoucher(args, cwd) {
  return execFileSync(bin, args, { cwd, encoding: "utf8" });
}

let shotNo = 0;
async function shot(page, name) {
  shotNo += 1;
  const file = path.join(shots, `${String(shotNo).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  // Every form control a person can use has a label (keyboard and screen-reader use).
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
      .filter((e) => e.labels.length === 0 && !e.getAttribute("aria-label"))
      .map((e) => e.name || e.id),
  );
  assert.deepEqual(unlabelled, [], `unlabelled controls on ${name}`);
}

async function signIn(page, url, name, password) {
  await page.goto(`${url}/sign-in`);
  await page.fill("#name", name);
  await page.fill("#password", password);
  await page.click("button[type=submit]");
}

/** Sign in with a one-time password and choose `password`. */
async function firstSignIn(page, url, name, otp, password, label) {
  await signIn(page, url, name, otp);
  await page.waitForURL(/\/password$/);
  if (label) await shot(page, label);
  await page.fill("#current", otp);
  await page.fill("#new", password);
  await page.fill("#confirm", password);
  await page.click("main button[type=submit]");
  await page.waitForURL((u) => !u.pathname.endsWith("/password"));
}

async function signOut(page) {
  await page.click("header form[action='/sign-out'] button");
  await page.waitForURL(/\/sign-in/);
}

/** The one-time password shown once in the page's flash message. */
async function shownOnce(page) {
  const text = await page.textContent(".flash");
  const m = text.match(/:\s*(\S+)\s*$/);
  assert.ok(m, text);
  return m[1];
}

test("the back office, as each role, in a real browser", { timeout: 240_000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "evoucher-browser-"));
  const server = await serve(dir);
  const url = server.url;
  const browser = await chromium.launch({
    executablePath: browserPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB" });
  const page = await context.newPage();
  let evil;
  try {
    // ---- admin: the first account, made at first start with a one-time password ----
    assert.match(server.stderr(), /made the first account, `admin`/);
    const otp = fs.readFileSync(path.join(dir, "evoucher-admin.password"), "utf8").trim();
    assert.equal(fs.statSync(path.join(dir, "evoucher-admin.password")).mode & 0o777, 0o600);
    await page.goto(url);
    await page.waitForURL(/\/sign-in/);
    await shot(page, "sign-in");
    await signIn(page, url, "admin", "not the password");
    assert.match(await page.textContent(".error"), /Wrong account name or password/);
    await firstSignIn(page, url, "admin", otp, "admin-chosen-password-1", "change-password");
    await page.goto(`${url}/users`);
    const accounts = {};
    for (const [name, role, extra] of [
      ["pm", "program_manager", null],
      ["acct", "accountant", null],
      ["auditor", "auditor", null],
    ]) {
      await page.fill("#name", name);
      await page.selectOption("#role", role);
      await page.click("form[action='/users'] button[type=submit]");
      accounts[name] = await shownOnce(page);
    }
    await shot(page, "accounts");
    // Sign-out ends the session on the server: the same cookie is refused afterwards.
    const before = (await context.cookies()).find((c) => c.name === "evoucher_session").value;
    await signOut(page);
    const reused = await context.request.get(`${url}/api/v1/me`, {
      headers: { cookie: `evoucher_session=${before}` },
    });
    assert.equal(reused.status(), 401);

    // ---- program manager: program, beneficiaries, issuance, letters, provider, enrolment ----
    await firstSignIn(page, url, "pm", accounts.pm, "pm-chosen-password-1");
    await page.goto(`${url}/programs`);
    await page.fill("#id", "food-2026");
    await page.fill("#name", "Food 2026");
    await page.fill("#issuer", "https://food.example.org");
    await page.fill("#currency", "KES");
    await page.fill("#amount", "250000");
    await page.fill("#validity_days", "60");
    await page.fill("#categories", "grocery");
    await page.click("form[action='/programs'] button[type=submit]");
    await page.waitForURL(/\/programs\/food-2026/);
    assert.match(await page.textContent(".flash"), /Program created/);
    // Edit the settings before issuing: a longer validity.
    await page.click("details.card > summary");
    await page.fill("details #validity_days", "90");
    await page.click("form[action='/programs/food-2026/edit'] button[type=submit]");
    await page.waitForURL(/updated=1/);
    assert.match(await page.textContent(".facts"), /90/);
    await shot(page, "program");
    await page.goto(`${url}/programs/food-2026/beneficiaries`);
    const csv = path.join(dir, "beneficiaries.csv");
    fs.writeFileSync(csv, "beneficiary_id,name,amount\nBEN-1001,Esther N.,\nBEN-1002,Juma K.,300000\nBEN-1003,Amina K.,\nBEN-1004,\"Otieno, Peter\",\n");
    await page.setInputFiles("#file", csv);
    await page.click("form[enctype] button[type=submit]");
    await page.waitForSelector(".flash");
    assert.match(await page.textContent(".flash"), /4 added/);
    await shot(page, "beneficiaries");
    // A file with a bad row: refused whole, with the line.
    fs.writeFileSync(csv, "beneficiary_id,amount\nBEN-2001,12x\n");
    await page.setInputFiles("#file", csv);
    await page.click("form[enctype] button[type=submit]");
    await page.waitForSelector(".error");
    assert.match(await page.textContent(".error"), /line 2/);
    await page.goto(`${url}/programs/food-2026/issue`);
    await page.click("#issue-imported button");
    await page.waitForSelector("text=every imported beneficiary holds a live voucher", { timeout: 30_000 });
    await shot(page, "issue");
    // The letters download (a PDF, with the session).
    const letters = await context.request.get(`${url}/api/v1/programs/food-2026/letters.pdf`);
    assert.equal(letters.status(), 200);
    assert.equal((await letters.body()).subarray(0, 5).toString(), "%PDF-");
    await page.goto(`${url}/providers`);
    await page.fill("#id", "SP-0042");
    await page.fill("#name", "Mama Mboga Grocers");
    await page.fill("#category", "grocery");
    await page.fill("#holder", "Mama Mboga Ltd");
    await page.fill("#number", "KE12 3456 7890 1234");
    await page.fill("#bank", "Equity Bank");
    await page.fill("#bic", "EQBLKENA");
    await page.click("form[action='/providers'] button[type=submit]");
    await page.waitForURL(/\/providers\/SP-0042/);
    await page.click("form[action='/providers/SP-0042/code'] button");
    await page.waitForSelector(".code svg");
    const code = (await page.textContent(".code figcaption code")).trim();
    await shot(page, "enrolment-code");

    // ---- the phone: enrol with the code, sync, redeem offline, sync ----
    const phone = path.join(dir, "phone.db");
    assert.match(evoucher(["enrol", "--server", url, "--code", code, "--ledger", phone], dir), /enrolled device dev-/);
    evoucher(["sync", "--ledger", phone], dir);
    // The beneficiary's voucher: its QR code, read by the phone.
    const list = await context.request.get(`${url}/api/v1/programs/food-2026/vouchers`);
    const vouchers = (await list.json()).vouchers;
    const esther = vouchers.find((v) => v.beneficiary_id === "BEN-1001");
    const png = await context.request.get(`${url}/api/v1/vouchers/${esther.id}/qr.png`);
    fs.writeFileSync(path.join(dir, "esther.png"), await png.body());
    const scanned = JSON.parse(evoucher(["scan", "--json", path.join(dir, "esther.png")], dir));
    fs.writeFileSync(path.join(dir, "voucher.txt"), scanned.codes[0].text);
    execFileSync(bin, ["redeem", "--ledger", phone, "-"], { cwd: dir, input: scanned.codes[0].text });
    assert.match(evoucher(["sync", "--ledger", phone], dir), /1 accepted/);
    // The redemption on the voucher's timeline, found by the beneficiary's id.
    await page.goto(`${url}/vouchers`);
    await page.fill("#q", "BEN-1001");
    await page.click("form[action='/vouchers'] button");
    await page.click(`a[href='/vouchers/${esther.id}']`);
    await page.waitForURL(new RegExp(`/vouchers/${esther.id}`));
    const timeline = await page.textContent(".timeline");
    assert.match(timeline, /accepted/);
    assert.match(timeline, /SP-0042/);
    await shot(page, "voucher-timeline");
    await page.goto(`${url}/dashboard`);
    assert.match(await page.textContent(".cards"), /1\s*Redeemed/);
    await shot(page, "dashboard");
    await page.goto(`${url}/providers/SP-0042`);
    assert.match(await page.textContent("table"), /dev-/);
    await shot(page, "provider-devices");
    await page.goto(`${url}/redemptions?status=accepted`);
    await shot(page, "redemptions");

    // ---- cross-site request forgery: a form on another site posting to the back office ----
    const port = new URL(url).port;
    evil = http.createServer((req, res) => {
      res.setHeader("content-type", "text/html");
      res.end(`<!doctype html><form method="post" action="${url}/programs"><input name="id" value="evil"><input name="name" value="Evil"><input name="issuer" value="https://evil.example"><input name="currency" value="KES"><input name="amount" value="1"><input name="csrf" value="guess"></form><script>document.forms[0].submit()</script>`);
    });
    await new Promise((r) => evil.listen(0, "127.0.0.1", r));
    // Same host, another port: the same "site", so the browser even sends the cookie. The
    // server refuses it (Origin and CSRF token).
    await page.goto(`http://127.0.0.1:${evil.address().port}/`);
    await page.waitForLoadState("load");
    await page.waitForTimeout(500);
    assert.match(await page.content(), /cross-site request refused|sign-in/i);
    await shot(page, "csrf-refused");
    const evilProgram = await context.request.get(`${url}/api/v1/programs/evil`);
    assert.equal(evilProgram.status(), 404, "the forged form created nothing");
    assert.notEqual(port, String(evil.address().port));
    await signOut(page);

    // ---- accountant: reads, is refused what the role does not allow ----
    await firstSignIn(page, url, "acct", accounts.acct, "acct-chosen-password-1");
    await page.goto(`${url}/programs`);
    assert.equal(await page.$("form[action='/programs']"), null, "no create form for an accountant");
    const refused = await page.goto(`${url}/users`);
    assert.equal(refused.status(), 403);
    assert.match(await page.textContent(".error"), /does not allow/);
    await shot(page, "accountant-refused");
    const voucherPage = await page.goto(`${url}/vouchers/${esther.id}`);
    assert.equal(voucherPage.status(), 200);
    assert.equal(await page.$("form[action$='/cancel']"), null, "no cancel for an accountant");
    await signOut(page);

    // ---- auditor: the audit log, filtered and exported ----
    await firstSignIn(page, url, "auditor", accounts.auditor, "auditor-chosen-password-1");
    await page.goto(`${url}/audit`);
    const log = await page.textContent("main");
    for (const action of ["program.create", "program.update", "beneficiaries.import", "vouchers.issue", "provider.create", "provider.enrolment_code", "device.enrol", "sign_in"]) {
      assert.ok(log.includes(action), `${action} in the audit log`);
    }
    assert.match(await page.textContent(".flash"), /hash chain is intact/);
    assert.ok(!log.includes("Esther"), "no beneficiary names in the audit log");
    await shot(page, "audit-log");
    await page.fill("#action", "vouchers.issue");
    await page.click("form[action='/audit'] button");
    assert.equal(await page.locator("tbody tr").count(), 1);
    const exported = await context.request.get(`${url}/audit/export.csv?action=vouchers.issue`);
    assert.equal(exported.status(), 200);
    assert.match(await exported.text(), /vouchers\.issue/);
    const cancel = await context.request.post(`${url}/vouchers/${esther.id}/cancel`, {
      form: { csrf: "whatever" },
      headers: { origin: url },
    });
    assert.equal(cancel.status(), 403, "an auditor changes nothing");

    // ---- languages: French, and Arabic laid out right to left ----
    await page.goto(`${url}/lang/fr?next=/audit`);
    assert.equal(await page.getAttribute("html", "lang"), "fr");
    assert.match(await page.textContent("h1"), /Journal d'audit/);
    await shot(page, "audit-fr");
    await page.goto(`${url}/lang/ar?next=/dashboard`);
    assert.equal(await page.getAttribute("html", "dir"), "rtl");
    assert.equal(await page.evaluate(() => getComputedStyle(document.body).direction), "rtl");
    const brand = await page.locator(".brand").boundingBox();
    assert.ok(brand.x > 640, `the brand sits on the right in Arabic (x = ${brand.x})`);
    await shot(page, "dashboard-ar");
    // The tablet width: nothing overflows the page sideways.
    await page.setViewportSize({ width: 800, height: 1000 });
    await page.goto(`${url}/lang/en?next=/dashboard`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal overflow at 800 px (${overflow})`);
    await shot(page, "dashboard-tablet");
  } catch (e) {
    await page.screenshot({ path: path.join(shots, "failure.png"), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    if (evil) evil.close();
    await browser.close();
    server.proc.kill("SIGTERM");
  }
});
