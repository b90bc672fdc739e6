// Signing in through an identity provider, in a real browser: Debian's chromium, `evoucher serve`
// on embedded defaults, and a real OpenID Connect provider (panva's oidc-provider, a certified
// implementation) started here on another site (localhost, while evoucher is 127.0.0.1), with
// RS256 keys made for the run and the roles in a Keycloak-style `realm_access.roles` claim.
//
//   EVOUCHER_BIN=target/debug/evoucher node --test server/tests/browser/oidc.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import Provider from "oidc-provider";

const here = path.dirname(new URL(import.meta.url).pathname);
const repo = path.resolve(here, "../../..");
const bin = path.resolve(process.env.EVOUCHER_BIN || path.join(repo, "target/debug/evoucher"));
const shots = path.join(repo, "target/browser-screenshots");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
fs.mkdirSync(shots, { recursive: true });

const SECRET = "oidc-test-client-secret-0123456789";

/** The people the identity provider knows, and the roles it gives them. */
const people = {
  olga: ["voucher-managers", "offline_access"],
  "two.roles": ["voucher-managers", "voucher-accountants"],
  nobody: ["offline_access"],
};

function serve(dir, issuer) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, EVOUCHER_OIDC_CLIENT_SECRET: SECRET };
    delete env.EVOUCHER_ADMIN_TOKEN;
    delete env.EVOUCHER_MASTER_KEY;
    const proc = spawn(bin, [
      "serve", "--listen", "127.0.0.1:0",
      "--oidc-issuer", issuer, "--oidc-client-id", "evoucher",
      "--oidc-role-claim", "realm_access.roles",
      "--oidc-role", "voucher-managers=program_manager",
      "--oidc-role", "voucher-accountants=accountant",
      "--oidc-role", "voucher-auditors=auditor",
      "--oidc-label", "Keycloak (test)",
    ], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
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

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `oidc-${name}.png`), fullPage: true });
}

test("signing in through an OpenID Connect provider", { timeout: 180_000 }, async () => {
  // The identity provider: its port first (evoucher needs its address), then its setup
  // (it needs evoucher's).
  const idpServer = http.createServer((req, res) => handler(req, res));
  let handler = (_req, res) => res.end();
  await new Promise((r) => idpServer.listen(0, "127.0.0.1", r));
  const issuer = `http://localhost:${idpServer.address().port}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "evoucher-oidc-"));
  const server = await serve(dir, issuer);
  const url = server.url;
  const { privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: "test-key-1", alg: "RS256", use: "sig" };
  const provider = new Provider(issuer, {
    clients: [{
      client_id: "evoucher",
      client_secret: SECRET,
      redirect_uris: [`${url}/sign-in/oidc/callback`],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    }],
    jwks: { keys: [jwk] },
    pkce: { required: () => true },
    claims: { openid: ["sub"], profile: ["preferred_username", "realm_access"] },
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: true } },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: `kc-${id}`, preferred_username: id, realm_access: { roles: people[id] || [] } };
        },
      };
    },
  });
  provider.on("server_error", (_ctx, e) => console.error("idp:", e));
  handler = provider.callback();

  const browser = await chromium.launch({
    executablePath: browserPath,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-GB" });
  const page = await context.newPage();

  /** Through the provider's pages as `login` (its sign-in and consent pages, when it shows
   *  them); returns on the page evoucher ends on. */
  async function viaProvider(login) {
    const idpHost = new URL(issuer).host;
    await page.goto(`${url}/sign-in`);
    await Promise.all([page.waitForNavigation(), page.click("a.button[href^='/sign-in/oidc']")]);
    for (let i = 0; i < 4 && new URL(page.url()).host === idpHost; i++) {
      if (await page.$("input[name=login]")) {
        await page.fill("input[name=login]", login);
        await page.fill("input[name=password]", "anything");
      }
      await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    }
    // Back at evoucher: the callback's page moves on by itself unless it shows an error.
    await page
      .waitForURL((u) => u.pathname !== "/sign-in/oidc/callback", { timeout: 3000 })
      .catch(() => {});
    await page.waitForLoadState("load");
  }

  try {
    await page.goto(`${url}/sign-in`);
    assert.match(await page.textContent("a.button"), /Sign in with Keycloak \(test\)/);
    await shot(page, "sign-in");

    // A program manager at the provider: signed in, the account made, the role mapped. The
    // provider is another site (localhost vs 127.0.0.1): the session cookie must survive that.
    let callback;
    page.on("request", (r) => { if (r.url().includes("/sign-in/oidc/callback")) callback = r.url(); });
    await viaProvider("olga");
    await page.waitForURL(/\/dashboard|\/$/);
    assert.match(await page.textContent("header"), /olga · program manager/);
    await shot(page, "signed-in");
    assert.ok(callback, "the provider sent the browser back to the callback");

    // The callback cannot be used twice (state and code are single-use).
    await page.goto(callback);
    assert.match(await page.textContent(".error"), /unknown, used or expired/);

    // The account: external, no password to sign in with.
    const list = JSON.parse(execFileSync(bin, ["user", "list", "--json"], { cwd: dir, encoding: "utf8" }));
    const olga = list.users.find((u) => u.name === "olga");
    assert.equal(olga.role, "program_manager");
    assert.equal(olga.external, true);
    const pw = await context.request.post(`${url}/api/v1/session`, { data: { name: "olga", password: "anything-at-all" } });
    assert.equal(pw.status(), 401);
    await page.goto(`${url}/dashboard`);
    await page.click("header form[action='/sign-out'] button");

    // The provider changes her role: it follows at the next sign-in, audited.
    people.olga = ["voucher-auditors"];
    await viaProvider("olga");
    assert.match(await page.textContent("header"), /olga · auditor/);
    await page.goto(`${url}/audit?action=account.update`);
    const log = await page.textContent("main");
    assert.match(log, /role: program_manager → auditor/);
    assert.match(log, /Keycloak \(test\)/);
    await shot(page, "role-followed");
    await page.click("header form[action='/sign-out'] button");

    // Several evoucher roles, or none: refused, nothing made.
    for (const [login, says] of [["two.roles", /several evoucher roles \(accountant, program_manager\)/], ["nobody", /no evoucher role/]]) {
      await page.context().clearCookies();
      await viaProvider(login);
      assert.match(await page.textContent(".error"), says);
    }
    await shot(page, "no-role");
    const after = JSON.parse(execFileSync(bin, ["user", "list", "--json"], { cwd: dir, encoding: "utf8" }));
    assert.deepEqual(after.users.map((u) => u.name).sort(), ["admin", "olga"]);

    // Disabled in evoucher: the provider's word is not enough.
    execFileSync(bin, ["user", "disable", "olga"], { cwd: dir });
    await page.context().clearCookies();
    await viaProvider("olga");
    assert.match(await page.textContent(".error"), /disabled/);

    // The failures are in the audit log, without tokens.
    const audit = execFileSync(bin, ["audit", "verify", "--json"], { cwd: dir, encoding: "utf8" });
    assert.equal(JSON.parse(audit).intact, true);
  } catch (e) {
    await page.screenshot({ path: path.join(shots, "oidc-failure.png"), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
    server.proc.kill("SIGTERM");
    idpServer.close();
  }
});
