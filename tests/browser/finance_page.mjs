// The finance page in headless chromium (run by finance_page.sh, which sets
// the environment; the ledger has the period's usage and no invoices yet):
// a customer key and a sales key are told they are not finance keys and see
// no data; a finance key runs the period, finalizes one draft and then the
// rest, voids one invoice with a reason; the invoice list, the margin table
// (a negative row flagged) and the dead letters equal what the API answers
// for the same key; an invoice PDF and a dead letter's raw bytes download;
// customer B's name is markup, shown as text, and nothing runs. A
// screenshot of each state goes to TALLY_OUT.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error("finance_page.mjs: " + name + " is not set (run finance_page.sh)");
  return v;
};
const base = env("TALLY_BASE");
const keyFinance = env("TALLY_KEY_FINANCE");
const keyCustomer = env("TALLY_KEY_CUSTOMER");
const keySales = env("TALLY_KEY_SALES");
const period = env("TALLY_PERIOD");
const voidReason = env("TALLY_VOID_REASON");
const out = env("TALLY_OUT");
const XSS_NAME = "<img src=x onerror=alert(1)>";
const started = Date.now();

async function api(key, path, body) {
  const init = { headers: { Authorization: "Bearer " + key } };
  if (body) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(base + path, init);
}
async function apiJson(path) {
  const res = await api(keyFinance, path);
  assert.equal(res.status, 200, path + ": " + (await res.clone().text()));
  return res.json();
}

// A decimal string rounded half-even to `places`, written again here (not the page's).
function roundHalfEven(v, places) {
  const neg = v.startsWith("-");
  const [i, f = ""] = v.replace(/^-/, "").split(".");
  if (f.length <= places) return (neg ? "-" : "") + i + (places ? "." + f.padEnd(places, "0") : "");
  let kept = BigInt(i + f.slice(0, places));
  const rest = f.slice(places), half = "5".padEnd(rest.length, "0");
  if (rest > half || (rest === half && kept % 2n === 1n)) kept += 1n;
  const d = kept.toString().padStart(places + 1, "0");
  const s = d.slice(0, d.length - places) + (places ? "." + d.slice(d.length - places) : "");
  return (neg && kept !== 0n ? "-" : "") + s;
}
const shown = (v) => (v === null ? "unknown" : roundHalfEven(v, 2));  // CNY and USD: 2 places

function check(name, fn) {
  return fn().then(() => console.log("ok   " + name), (e) => {
    console.log("FAIL " + name);
    throw e;
  });
}

const browser = await chromium.launch({
  executablePath: env("TALLY_CHROMIUM"),
  headless: true,
  args: ["--no-sandbox", "--disable-gpu"],
});
let failed = false;
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const dialogs = [], consoleErrors = [], pageErrors = [], urls = [];
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("request", (r) => urls.push(r.url()));
  // Expected: the browser logs each 401 and 403 answer it fetched.
  const unexpectedConsole = () =>
    consoleErrors.filter((t) => !/^Failed to load resource: the server responded with a status of 40[13]/.test(t));
  const shot = async (name) => {
    await page.screenshot({ path: out + "/" + name + ".png", fullPage: true });
    console.log("     screenshot " + out + "/" + name + ".png");
  };
  const ready = () => page.waitForFunction(() => document.body.dataset.state === "ready");
  const invoiceRows = () => page.$$eval("#invoices tbody tr", (trs) => trs.map((tr) => ({
    id: tr.dataset.invoiceId,
    number: tr.cells[0].textContent,
    name: tr.cells[1].querySelector(".name").textContent,
    customer: tr.cells[1].querySelector(".id").textContent,
    plan: tr.cells[2].textContent,
    status: tr.cells[3].textContent,
    subtotal: tr.cells[4].dataset.exact,
    tax: tr.cells[5].dataset.exact,
    total: tr.cells[6].dataset.exact,
    totalShown: tr.cells[6].textContent,
    currency: tr.cells[7].textContent,
  })));
  const apiInvoices = async () => (await apiJson("/v1/invoices?period=" + period)).invoices.map((i) => ({
    id: String(i.invoice_id), number: i.number || "draft " + i.invoice_id, name: i.customer_name,
    customer: i.customer, plan: i.plan, status: i.status, subtotal: i.subtotal, tax: i.tax, total: i.total,
    totalShown: shown(i.total), currency: i.currency,
  }));

  await check("/finance loads with the security headers and shows the sign-in form", async () => {
    const res = await page.goto(base + "/finance");
    assert.equal(res.status(), 200);
    const h = res.headers();
    assert.match(h["content-security-policy"], /script-src 'self'/);
    assert.equal(h["x-content-type-options"], "nosniff");
    await page.locator("#signin-form").waitFor({ state: "visible" });
    assert.equal(await page.isVisible("#finance-view"), false);
    await shot("1-signin");
  });

  const signIn = async (key) => {
    await page.fill("#key", key);
    await page.click("#signin-form button[type=submit]");
  };
  const noData = async () => {
    assert.equal(await page.isVisible("#finance-view"), false);
    for (const t of ["invoices", "margin", "dead-reasons", "dead-letters"]) {
      assert.equal(await page.$$eval("#" + t + " tbody tr", (trs) => trs.length), 0, t);
    }
    assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
  };

  for (const [who, key, shotName] of [["customer", keyCustomer, "2-customer-key-refused"], ["sales", keySales, "3-sales-key-refused"]]) {
    await check("a " + who + " key is told it is not a finance key, and sees no data", async () => {
      await signIn(key);
      await page.waitForFunction(() => document.body.dataset.state === "refused");
      const text = await page.textContent("#signin-error");
      assert.match(text, /not a finance key/);
      assert.match(text, new RegExp("a " + who + " key may not use this route"));
      assert.ok(await page.isVisible("#signin-error"));
      await noData();
      assert.equal(await page.inputValue("#key"), "");
      await shot(shotName);
    });
  }

  await check("a bad key is not accepted", async () => {
    await signIn("tly_not_a_real_key_0000");
    await page.waitForFunction(() => /not accepted/.test(document.querySelector("#signin-error").textContent));
    await noData();
  });

  await check("the finance key signs in; the period has no invoices yet", async () => {
    await signIn(keyFinance);
    await page.locator("#finance-view").waitFor({ state: "visible" });
    assert.equal(await page.evaluate(() => sessionStorage.getItem("tally.finance.key")), keyFinance);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    await page.fill("#period", period);
    await page.click("#period-form button[type=submit]");
    await ready();
    assert.equal(await page.$$eval("#invoices tbody tr", (trs) => trs.length), 0);
    assert.ok(await page.isVisible("#invoices-empty"));
    await shot("4-no-invoices");
  });

  await check("Run invoices makes the drafts; the list equals GET /v1/invoices?period=", async () => {
    await page.click("#run");
    await page.waitForFunction(() => document.body.dataset.state === "ready" &&
      document.querySelectorAll("#invoices tbody tr").length > 0);
    const rows = await invoiceRows();
    assert.deepEqual(rows, await apiInvoices());
    assert.ok(rows.length >= 4 && rows.every((r) => r.status === "draft"), JSON.stringify(rows));
    assert.match(await page.textContent("#action-result"), new RegExp("^Invoice run \\d+ of " + period + ": " + rows.length + " drafts for "));
    assert.match(await page.textContent("#invoice-counts"), new RegExp(rows.length + " draft"));
    await shot("5-drafts");
  });

  await check("finalizing one draft gives it a number", async () => {
    const row = page.locator("#invoices tbody tr", { hasText: "cust_g" });
    await row.locator("button", { hasText: "Finalize" }).click();
    await page.locator("#confirm-dialog").waitFor({ state: "visible" });
    assert.match(await page.textContent("#confirm-text"), /cust_g/);
    await page.click("#confirm-ok");
    await page.waitForFunction(() => document.body.dataset.state === "ready" &&
      document.querySelector("#invoices tbody tr[data-status=finalized]"));
    const rows = await invoiceRows();
    assert.deepEqual(rows, await apiInvoices());
    const g = rows.find((r) => r.customer === "cust_g");
    assert.equal(g.status, "finalized");
    assert.match(g.number, /^INV-/);
    assert.equal(rows.filter((r) => r.status === "finalized").length, 1);
  });

  await check("Finalize drafts finalizes the rest; numbers and totals equal the API's", async () => {
    await page.click("#finalize-all");
    await page.locator("#confirm-dialog").waitFor({ state: "visible" });
    await shot("6-finalize-confirm");
    await page.click("#confirm-ok");
    await page.waitForFunction(() => document.body.dataset.state === "ready" &&
      !document.querySelector("#invoices tbody tr[data-status=draft]"));
    const rows = await invoiceRows();
    const want = await apiInvoices();
    assert.deepEqual(rows, want);
    assert.ok(rows.every((r) => r.status === "finalized" && /^INV-/.test(r.number)), JSON.stringify(rows));
    assert.equal(new Set(rows.map((r) => r.number)).size, rows.length);
    assert.equal(await page.isDisabled("#finalize-all"), true);
    console.log("     finalized: " + rows.map((r) => r.number + " " + r.totalShown + " " + r.currency).join(", "));
    await shot("7-finalized");
  });

  await check("customer B's name is markup, shown as text; nothing runs", async () => {
    const names = (await invoiceRows()).filter((r) => r.customer === "cust_volc_b").map((r) => r.name);
    assert.deepEqual(names, [XSS_NAME]);
    assert.equal(await page.$$eval("img", (imgs) => imgs.length), 0);
    assert.deepEqual(dialogs, []);
  });

  let voided;
  await check("voiding an invoice asks for a reason, then its status is void", async () => {
    const row = page.locator("#invoices tbody tr", { hasText: "cust_volc_a" });
    voided = await row.locator("td").first().textContent();
    await row.locator("button", { hasText: "Void" }).click();
    await page.locator("#void-dialog").waitFor({ state: "visible" });
    assert.equal(await page.textContent("#void-number"), voided);
    await page.click("#void-confirm");  // no reason yet: refused in the page
    assert.ok(await page.isVisible("#void-dialog"));
    await page.fill("#void-reason", voidReason);
    await shot("8-void-dialog");
    await page.click("#void-confirm");
    await page.waitForFunction((n) => document.body.dataset.state === "ready" &&
      [...document.querySelectorAll("#invoices tbody tr")].some((tr) => tr.cells[0].textContent === n &&
        tr.dataset.status === "void"), voided);
    const rows = await invoiceRows();
    assert.deepEqual(rows, await apiInvoices());
    assert.equal(rows.find((r) => r.number === voided).status, "void");
    assert.match(await page.textContent("#action-result"), new RegExp("Voided " + voided));
    const doc = await apiJson("/v1/invoices/" + voided);
    assert.equal(doc.status, "void");
    await shot("9-voided");
  });

  const marginRows = () => page.$$eval("#margin tbody tr:not(.total)", (trs) => trs.map((tr) => ({
    key: tr.cells[0].textContent,
    currency: tr.cells[1].textContent,
    calls: tr.cells[2].textContent,
    revenue: tr.cells[3].dataset.exact || null,
    cost: tr.cells[4].dataset.exact || null,
    margin: tr.cells[5].dataset.exact || null,
    marginShown: tr.cells[5].textContent,
    percent: tr.cells[6].textContent,
    negative: tr.classList.contains("negative"),
    flag: tr.cells[7].textContent,
  })));
  const apiMargin = async (by) => {
    const m = await apiJson("/v1/margin?period=" + period + "&by=" + by);
    return m.rows.map((r) => ({
      key: String(r[by]), currency: r.currency, calls: String(r.calls), revenue: r.revenue,
      cost: r.error ? null : r.cost, margin: r.error ? null : r.margin,
      marginShown: r.error ? "unknown" : shown(r.margin), percent: r.error ? "-" : r.margin_percent,
      negative: r.negative, flag: (r.negative ? "▼ negative" : "") + (r.error ? "error: " + r.error :
        r.cost_unknown ? "cost unknown: " + r.cost_unknown : ""),
    }));
  };

  await check("the margin table by customer equals GET /v1/margin?by=customer, totals too", async () => {
    const want = await apiMargin("customer");
    assert.ok(want.length > 0);
    assert.deepEqual(await marginRows(), want);
    const m = await apiJson("/v1/margin?period=" + period + "&by=customer");
    const totals = await page.$$eval("#margin tbody tr.total", (trs) =>
      trs.map((tr) => [1, 3, 4, 5].map((i) => tr.cells[i].dataset.exact || tr.cells[i].textContent)));
    assert.deepEqual(totals, m.totals.map((t) => [t.currency, t.revenue, t.cost ?? "unknown", t.margin ?? "unknown"]));
    assert.ok(totals.length > 0);
  });

  await check("a negative margin row is flagged: a class and a visible marker", async () => {
    let by = null;
    for (const b of ["customer", "model", "served_model", "plan", "day"]) {
      if ((await apiMargin(b)).some((r) => r.negative)) { by = b; break; }
    }
    assert.ok(by, "the example data has a negative margin row under some grouping");
    await page.selectOption("#margin-by", by);
    await page.waitForFunction((b) => document.querySelector("#margin").dataset.by === b, by);
    const rows = await marginRows();
    const want = await apiMargin(by);
    assert.deepEqual(rows, want);
    const negative = rows.filter((r) => r.negative);
    assert.ok(negative.length > 0);
    for (const r of negative) {
      assert.match(r.flag, /negative/);
      assert.ok(r.margin.startsWith("-"), r.margin);
    }
    for (const r of rows.filter((x) => !x.negative)) assert.doesNotMatch(r.flag, /negative/);
    const visible = await page.locator("#margin tr.negative .badge-negative").first().isVisible();
    assert.ok(visible);
    console.log("     margin by " + by + ": " + negative.length + " negative of " + rows.length + " rows: " +
      negative.map((r) => r.key + " " + r.marginShown + " " + r.currency).join(", "));
    await page.locator("#margin").scrollIntoViewIfNeeded();
    await shot("10-margin-negative");
  });

  await check("dead letter counts by reason equal GET /v1/dead-letters; a raw one downloads", async () => {
    const all = await apiJson("/v1/dead-letters?limit=20");
    const counts = await page.$$eval("#dead-reasons tbody tr:not(.total)", (trs) =>
      trs.map((tr) => ({ reason: tr.dataset.reason, count: Number(tr.cells[1].textContent) })));
    assert.deepEqual(counts, all.counts.filter((c) => c.count > 0).map((c) => ({ reason: c.reason, count: c.count })));
    assert.ok(counts.length >= 3, JSON.stringify(counts));
    assert.equal(await page.textContent("#dead-reasons tr.total th.num"), String(all.total));
    const options = await page.$$eval("#dead-reason option", (os) => os.map((o) => o.value));
    assert.deepEqual(options, [""].concat(all.counts.map((c) => c.reason)));
    const listed = await page.$$eval("#dead-letters tbody tr", (trs) => trs.map((tr) => tr.dataset.deadLetterId));
    assert.deepEqual(listed, all.dead_letters.map((d) => String(d.id)));
    // One reason only.
    const reason = counts.find((c) => c.reason === "unknown_customer") ? "unknown_customer" : counts[0].reason;
    await page.selectOption("#dead-reason", reason);
    await page.waitForFunction((r) => document.querySelector("#dead-letters").dataset.reason === r, reason);
    const some = await apiJson("/v1/dead-letters?limit=20&reason=" + reason);
    const shownRows = await page.$$eval("#dead-letters tbody tr", (trs) =>
      trs.map((tr) => ({ id: tr.dataset.deadLetterId, reason: tr.cells[2].textContent })));
    assert.deepEqual(shownRows, some.dead_letters.map((d) => ({ id: String(d.id), reason: reason })));
    assert.equal(shownRows.length, counts.find((c) => c.reason === reason).count);
    const first = page.locator("#dead-letters tbody tr").first();
    const id = await first.getAttribute("data-dead-letter-id");
    const [raw] = await Promise.all([page.waitForEvent("download"), first.locator("button[data-download=raw]").click()]);
    const bytes = await readFile(await raw.path());
    const res = await api(keyFinance, "/v1/dead-letters/" + id + ".raw");
    assert.equal(res.status, 200);
    assert.deepEqual(bytes, Buffer.from(await res.arrayBuffer()));
    assert.ok(bytes.length > 0);
    console.log("     dead letter " + id + " (" + reason + "): " + bytes.length + " bytes as " + raw.suggestedFilename());
    await page.locator("#dead-reasons").scrollIntoViewIfNeeded();
    await shot("11-dead-letters");
  });

  await check("an invoice PDF downloads through the page (Blob, key in the header)", async () => {
    const row = page.locator("#invoices tbody tr[data-status=finalized]").first();
    const number = await row.locator("td").first().textContent();
    const [pdf] = await Promise.all([page.waitForEvent("download"), row.locator("button[data-download=pdf]").click()]);
    assert.equal(pdf.suggestedFilename(), number + ".pdf");
    const bytes = await readFile(await pdf.path());
    assert.equal(bytes.subarray(0, 5).toString("latin1"), "%PDF-");
    console.log("     downloaded " + number + ".pdf (" + bytes.length + " bytes)");
  });

  await check("signing out forgets the key and the data", async () => {
    await page.click("#sign-out");
    await page.locator("#signin-form").waitFor({ state: "visible" });
    await noData();
  });

  await check("the customer page offers no finance features", async () => {
    const before = urls.length;
    await page.goto(base + "/");
    await page.locator("#signin-form").waitFor({ state: "visible" });
    await page.fill("#key", keyCustomer);
    await page.click("#signin-form button[type=submit]");
    await page.waitForFunction(() => document.body.dataset.state === "ready");
    const buttons = await page.$$eval("button", (bs) => bs.map((b) => b.textContent));
    for (const b of buttons) assert.doesNotMatch(b, /run|finalize|void/i, b);
    const text = await page.textContent("body");
    assert.doesNotMatch(text, /dead letter|margin/i);
    const asked = urls.slice(before).filter((u) => u.startsWith(base + "/v1/"));
    assert.ok(asked.length > 0);
    for (const u of asked) assert.doesNotMatch(u, /invoice-runs|margin|dead-letters|finalize|void/, u);
    assert.ok(!urls.slice(before).some((u) => u.includes("finance")), "the customer page loads nothing of finance");
  });

  await check("no key in any URL, no page error, no console error (CSP violations are errors)", async () => {
    for (const u of urls) assert.ok(![keyFinance, keyCustomer, keySales].some((k) => u.includes(k)), u);
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(unexpectedConsole(), []);
    assert.deepEqual(dialogs, []);
  });
  console.log("     " + ((Date.now() - started) / 1000).toFixed(1) + " s in the browser");
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
