// The customer page in headless chromium (run by customer_page.sh, which
// sets the environment): sign in with a bad key (a clear error), then with
// customer A's key: the cost so far and the per-model and per-project
// tables equal what GET /v1/usage answers for the same key, the chart has drawn pixels, the
// invoices are A's only and the PDF downloads; then customer B, whose
// name is markup: shown as text, nothing runs. A screenshot of each view
// goes to TALLY_OUT.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error("customer_page.mjs: " + name + " is not set (run customer_page.sh)");
  return v;
};
const base = env("TALLY_BASE");
const keyA = env("TALLY_KEY_A");
const keyB = env("TALLY_KEY_B");
const period = env("TALLY_PERIOD");
const bInvoice = env("TALLY_B_INVOICE");
const bNumber = env("TALLY_B_NUMBER");
const out = env("TALLY_OUT");
const XSS_NAME = "<img src=x onerror=alert(1)>";

// Exact sum of decimal strings, written again here (not the page's).
function sum(values) {
  let scale = 0;
  for (const v of values) scale = Math.max(scale, (v.split(".")[1] || "").length);
  let total = 0n;
  for (const v of values) {
    const [i, f = ""] = v.replace(/^-/, "").split(".");
    const n = BigInt(i + f.padEnd(scale, "0"));
    total += v.startsWith("-") ? -n : n;
  }
  const neg = total < 0n;
  const d = (neg ? -total : total).toString().padStart(scale + 1, "0");
  return (neg ? "-" : "") + d.slice(0, d.length - scale) + (scale ? "." + d.slice(d.length - scale) : "");
}

async function apiJson(key, path) {
  const res = await fetch(base + path, { headers: { Authorization: "Bearer " + key } });
  assert.equal(res.status, 200, path);
  return res.json();
}

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
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  const dialogs = [], consoleErrors = [], pageErrors = [], urls = [];
  page.on("dialog", async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("request", (r) => urls.push(r.url()));
  // Expected: the browser logs each 401 and 404 answer it fetched.
  const unexpectedConsole = () =>
    consoleErrors.filter((t) => !/^Failed to load resource: the server responded with a status of 40[14]/.test(t));

  await check("the page loads with the security headers and shows the sign-in form", async () => {
    const res = await page.goto(base + "/");
    assert.equal(res.status(), 200);
    const h = res.headers();
    assert.match(h["content-security-policy"], /script-src 'self'/);
    assert.equal(h["x-content-type-options"], "nosniff");
    assert.match(h["content-type"], /^text\/html/);
    await page.locator("#signin-form").waitFor({ state: "visible" });
    await page.screenshot({ path: out + "/1-signin.png", fullPage: true });
  });

  await check("a bad key shows a clear sign-in error and is not kept", async () => {
    await page.fill("#key", "tly_not_a_real_key_0000");
    await page.click("#signin-form button[type=submit]");
    const error = page.locator("#signin-error");
    await error.waitFor({ state: "visible" });
    const text = await error.textContent();
    assert.match(text, /not accepted/);
    assert.match(text, /not valid/);
    assert.equal(await page.isVisible("#customer-view"), false);
    assert.equal(await page.evaluate(() => sessionStorage.length + localStorage.length), 0);
    await page.screenshot({ path: out + "/2-signin-bad-key.png", fullPage: true });
  });

  const signIn = async (key) => {
    await page.fill("#key", key);
    await page.click("#signin-form button[type=submit]");
    await page.locator("#customer-view").waitFor({ state: "visible" });
    await page.fill("#period", period);
    await page.click("#period-form button[type=submit]");
    await page.waitForFunction(() => document.body.dataset.state === "ready" && document.querySelector("#chart canvas"));
  };

  await check("customer A signs in; the key is in sessionStorage only", async () => {
    await signIn(keyA);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("tally.key")), keyA);
    assert.equal(await page.inputValue("#key"), "");
  });

  const days = await apiJson(keyA, "/v1/usage?period=" + period + "&group_by=day");
  const models = await apiJson(keyA, "/v1/usage?period=" + period + "&group_by=model");
  const projects = await apiJson(keyA, "/v1/usage?period=" + period + "&group_by=project");

  await check("cost so far equals the sum of GET /v1/usage's rows (and its totals), with the currency", async () => {
    assert.ok(days.rows.length > 0, "customer A has usage in " + period);
    const currencies = [...new Set(days.rows.map((r) => r.currency))];
    const want = currencies.map((c) => ({ c, cost: sum(days.rows.filter((r) => r.currency === c).map((r) => r.cost)) }));
    const got = await page.$$eval("#cost-so-far .amount", (els) => els.map((e) => ({ c: e.dataset.currency, cost: e.textContent })));
    assert.deepEqual(got, want);
    assert.deepEqual(got.map((g) => ({ currency: g.c, cost: g.cost })), days.totals);
    const shown = await page.textContent("#cost-so-far");
    for (const w of want) assert.ok(shown.includes(w.cost + " " + w.c), shown);
    console.log("     cost so far: " + shown);
  });

  await check("the per-model table equals GET /v1/usage?group_by=model", async () => {
    const rows = await page.$$eval("#models tbody tr:not(.total)", (trs) =>
      trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
    assert.deepEqual(rows, models.rows.map((r) => [r.group, r.kind, r.cost, r.currency]));
    const totals = await page.$$eval("#models tbody tr.total", (trs) => trs.map((tr) => [tr.cells[2].textContent, tr.cells[3].textContent]));
    assert.deepEqual(totals, models.totals.map((t) => [t.cost, t.currency]));
  });

  await check("the per-project table equals GET /v1/usage?group_by=project, and adds up to the cost so far", async () => {
    assert.ok(projects.rows.some((r) => r.kind === "usage" && r.group !== ""), "customer A names a project");
    const rows = await page.$$eval("#projects tbody tr:not(.total)", (trs) =>
      trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
    assert.deepEqual(rows, projects.rows.map((r) => [
      r.kind === "usage" && r.group === "" ? "(none)" : r.group, r.kind, r.kind === "usage" ? String(r.calls) : "",
      r.cost, r.currency]));
    const totals = await page.$$eval("#projects tbody tr.total", (trs) => trs.map((tr) => [tr.cells[3].textContent, tr.cells[4].textContent]));
    assert.deepEqual(totals, projects.totals.map((t) => [t.cost, t.currency]));
    // Allocated to the fen: the projects' rows add up to the period's cost, as the days' do.
    assert.deepEqual(projects.totals, days.totals);
    for (const c of [...new Set(projects.rows.map((r) => r.currency))]) {
      assert.equal(sum(projects.rows.filter((r) => r.currency === c).map((r) => r.cost)),
        sum(days.rows.filter((r) => r.currency === c).map((r) => r.cost)));
    }
    console.log("     projects: " + rows.map((r) => r[0] + " " + r[3]).join(", "));
  });

  await check("the chart is drawn: a canvas with the bars' pixels", async () => {
    const painted = await page.$eval("#chart canvas", (c) => {
      const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let bars = 0;
      for (let i = 0; i < data.length; i += 4) {
        const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
        if (a > 0 && b > 150 && r < 170 && b - r > 60) bars++;  // the blue of the bars
      }
      return { bars, width: c.width, height: c.height };
    });
    assert.ok(painted.width > 100 && painted.height > 100, JSON.stringify(painted));
    assert.ok(painted.bars > 200, "bar pixels: " + JSON.stringify(painted));
    const usageDays = days.rows.filter((r) => r.kind === "usage").length;
    console.log("     chart: " + painted.bars + " bar pixels, " + usageDays + " days");
  });

  await page.screenshot({ path: out + "/3-customer-a.png", fullPage: true });

  await check("customer A sees its own invoices only, and cannot fetch B's", async () => {
    const listed = await apiJson(keyA, "/v1/invoices");
    const numbers = await page.$$eval("#invoices tbody tr", (trs) => trs.map((tr) => tr.cells[0].textContent));
    assert.deepEqual(numbers, listed.invoices.map((i) => i.number));
    assert.ok(numbers.length > 0);
    assert.ok(!numbers.includes(bNumber));
    assert.ok(!(await page.textContent("body")).includes(bNumber));
    const statuses = await page.evaluate(async ([id, number, key]) => {
      const h = { headers: { Authorization: "Bearer " + key } };
      const paths = ["/v1/invoices/" + id + ".pdf", "/v1/invoices/" + number + ".csv", "/v1/invoices/" + id];
      return Promise.all(paths.map((p) => fetch(p, h).then((r) => r.status)));
    }, [bInvoice, bNumber, keyA]);
    assert.deepEqual(statuses, [404, 404, 404]);
  });

  await check("the invoice PDF and CSV download through the page (Blob, key in the header)", async () => {
    const row = page.locator("#invoices tbody tr").first();
    const number = await row.locator("td").first().textContent();
    const [pdf] = await Promise.all([page.waitForEvent("download"), row.locator("button[data-download=pdf]").click()]);
    assert.equal(pdf.suggestedFilename(), number + ".pdf");
    const bytes = await readFile(await pdf.path());
    assert.equal(bytes.subarray(0, 5).toString("latin1"), "%PDF-");
    const [csv] = await Promise.all([page.waitForEvent("download"), row.locator("button[data-download=csv]").click()]);
    assert.equal(csv.suggestedFilename(), number + ".csv");
    const text = (await readFile(await csv.path())).toString("utf8");
    assert.ok(text.length > 20 && text.includes(","), text.slice(0, 80));
    console.log("     downloaded " + number + ".pdf (" + bytes.length + " bytes) and .csv");
  });

  await check("customer B's name is markup, shown as text; nothing runs", async () => {
    await page.click("#sign-out");
    await page.locator("#signin-form").waitFor({ state: "visible" });
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await signIn(keyB);
    const names = await page.$$eval("#invoices tbody tr", (trs) => trs.map((tr) => tr.cells[2].textContent));
    assert.ok(names.length > 0 && names.every((n) => n === XSS_NAME), JSON.stringify(names));
    assert.ok((await page.textContent("#who")).includes(XSS_NAME));
    assert.equal(await page.$$eval("img", (imgs) => imgs.length), 0);
    await page.waitForTimeout(500);
    await page.screenshot({ path: out + "/4-customer-b.png", fullPage: true });
    assert.deepEqual(dialogs, []);
  });

  await check("no key in any URL, no page error, no console error (CSP violations are errors)", async () => {
    for (const u of urls) assert.ok(!u.includes(keyA) && !u.includes(keyB), u);
    assert.ok(urls.some((u) => u.endsWith("/static/vendor/uPlot.iife.min.js")));
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(unexpectedConsole(), []);
    assert.deepEqual(dialogs, []);
  });
} catch (e) {
  failed = true;
  console.error(e);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
