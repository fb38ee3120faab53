// Tally's customer page. The API key lives in sessionStorage (this tab
// only) and leaves the page only as the Authorization header of fetch():
// never in a URL, never in localStorage. Everything from the API is put
// into the page as text (textContent), never as HTML. Money stays a
// decimal string: sums are exact (BigInt); only the chart's bar heights
// are plain numbers, for pixels.
"use strict";

(function () {
  const KEY = "tally.key";
  const $ = (id) => document.getElementById(id);
  let chart = null;
  let generation = 0;  // of load(): an older load's answers are dropped

  function key() { return sessionStorage.getItem(KEY); }

  // GET path with the key; resolves to the Response, throws ApiError for a
  // non-2xx answer (with the API's own message).
  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function api(path, k) {
    let res;
    try {
      res = await fetch(path, { headers: { Authorization: "Bearer " + (k || key()) }, cache: "no-store" });
    } catch (e) {
      throw new ApiError(0, "cannot reach the Tally server (" + e.message + ")");
    }
    if (res.ok) return res;
    let message = res.status + " " + res.statusText;
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) message = body.error.message;
    } catch (e) { /* not JSON: keep the status */ }
    throw new ApiError(res.status, message);
  }

  // Exact sum of decimal strings ("12.34", "-0.5"): a decimal string.
  function addDecimals(values) {
    const parts = values.map((v) => {
      const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(v));
      if (!m) throw new Error("not a decimal amount: " + v);
      return { neg: m[1] === "-", int: m[2], frac: m[3] || "" };
    });
    const scale = parts.reduce((s, p) => Math.max(s, p.frac.length), 0);
    let sum = 0n;
    for (const p of parts) {
      const n = BigInt(p.int + p.frac.padEnd(scale, "0"));
      sum += p.neg ? -n : n;
    }
    const neg = sum < 0n;
    const digits = (neg ? -sum : sum).toString().padStart(scale + 1, "0");
    const int = digits.slice(0, digits.length - scale);
    return (neg ? "-" : "") + int + (scale > 0 ? "." + digits.slice(digits.length - scale) : "");
  }

  // {currency: exact sum} of rows with .cost and .currency, in first-seen order.
  function sumByCurrency(rows) {
    const by = new Map();
    for (const r of rows) {
      if (!by.has(r.currency)) by.set(r.currency, []);
      by.get(r.currency).push(r.cost);
    }
    return Array.from(by, ([currency, costs]) => ({ currency, cost: addDecimals(costs) }));
  }

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  function show(id, on) { $(id).hidden = !on; }

  function showError(id, message) {
    $(id).textContent = message;
    show(id, Boolean(message));
  }

  function currentMonth() {
    const d = new Date();
    return d.getUTCFullYear() + "-" + String(d.getUTCMonth() + 1).padStart(2, "0");
  }

  // --- sign in / out ------------------------------------------------------

  function showSignIn(message) {
    show("customer-view", false);
    show("sign-out", false);
    $("who").textContent = "";
    show("signin-view", true);
    showError("signin-error", message || "");
    $("key").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const k = $("key").value.trim();
    if (!k) return showError("signin-error", "Paste an API key to sign in.");
    try {
      await api("/v1/invoices", k);
    } catch (e) {
      const why = e.status === 401 ? "This key was not accepted: " + e.message + "." : "Cannot sign in: " + e.message;
      return showError("signin-error", why);
    }
    sessionStorage.setItem(KEY, k);
    $("key").value = "";
    showCustomer();
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    if (chart) { chart.destroy(); chart = null; }
    showSignIn("");
  }

  // --- the customer view --------------------------------------------------

  function showCustomer() {
    show("signin-view", false);
    show("customer-view", true);
    show("sign-out", true);
    if (!$("period").value) $("period").value = currentMonth();
    load();
  }

  async function load() {
    const period = $("period").value;
    const mine = ++generation;
    showError("load-error", "");
    document.body.dataset.state = "loading";
    try {
      const q = "period=" + encodeURIComponent(period);
      // One request at a time: the server answers at most 2 requests of
      // one key at once (429 beyond), and these are quick.
      const days = await api("/v1/usage?" + q + "&group_by=day").then((r) => r.json());
      const models = await api("/v1/usage?" + q + "&group_by=model").then((r) => r.json());
      const projects = await api("/v1/usage?" + q + "&group_by=project").then((r) => r.json());
      const invoices = await api("/v1/invoices").then((r) => r.json());
      if (mine !== generation) return;
      renderWho(days, invoices.invoices);
      renderCost(days);
      renderChart(days);
      renderModels(models);
      renderProjects(projects);
      renderInvoices(invoices.invoices);
      document.body.dataset.state = "ready";
    } catch (e) {
      if (mine !== generation) return;
      document.body.dataset.state = "error";
      if (e.status === 401) {
        sessionStorage.removeItem(KEY);
        return showSignIn("Your key is no longer accepted: " + e.message + ". Sign in again.");
      }
      showError("load-error", "Cannot load " + period + ": " + e.message);
    }
  }

  function renderWho(usage, invoices) {
    const named = invoices.find((i) => i.customer === usage.customer && i.customer_name);
    $("who").textContent = named ? named.customer_name + " (" + usage.customer + ")" : usage.customer;
  }

  function renderCost(usage) {
    const sums = sumByCurrency(usage.rows);
    const out = $("cost-so-far");
    out.textContent = "";
    if (sums.length === 0) {
      out.textContent = "0.00";
    }
    sums.forEach((s, i) => {
      if (i > 0) out.appendChild(document.createTextNode(" + "));
      const amount = el("span", s.cost, "amount");
      amount.dataset.currency = s.currency;
      out.appendChild(amount);
      out.appendChild(document.createTextNode(" "));
      out.appendChild(el("span", s.currency, "currency"));
    });
    const calls = usage.rows.reduce((n, r) => n + r.calls, 0);
    let note = calls + (calls === 1 ? " call" : " calls") + " in " + usage.period + ".";
    const adjustments = usage.rows.filter((r) => r.kind !== "usage").length;
    if (adjustments > 0) note += " Includes " + adjustments + " invoice-level line(s) (discounts, commitments, rounding).";
    if (usage.unresolved_records > 0) note += " " + usage.unresolved_records + " record(s) could not be priced.";
    $("cost-note").textContent = note;
  }

  function renderChart(usage) {
    const days = usage.rows.filter((r) => r.kind === "usage" && /^\d{4}-\d{2}-\d{2}$/.test(r.group));
    const box = $("chart");
    if (chart) { chart.destroy(); chart = null; }
    box.textContent = "";
    show("chart-empty", days.length === 0);
    box.hidden = days.length === 0;
    if (days.length === 0) return;
    const xs = days.map((r) => Date.UTC(+r.group.slice(0, 4), +r.group.slice(5, 7) - 1, +r.group.slice(8, 10)) / 1000);
    const ys = days.map((r) => Number(r.cost));  // bar heights only; the legend shows the exact string
    const currency = days[0].currency;
    const width = Math.max(320, box.clientWidth - 16);
    chart = new uPlot({
      width: width,
      height: 260,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      // Half a day either side, so that the first and last bars are whole.
      scales: {
        x: { time: true, range: () => [xs[0] - 43200, xs[xs.length - 1] + 43200] },
        y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { incrs: [86400, 2 * 86400, 7 * 86400, 14 * 86400], values: (u, ticks) => ticks.map(dayLabel) },
        { label: currency, size: 70 },
      ],
      series: [
        { label: "Day", value: (u, v, si, i) => (i == null ? "" : days[i].group) },
        {
          label: "Cost",
          stroke: "#2f6fde",
          fill: "rgba(47,111,222,0.35)",
          paths: uPlot.paths.bars({ size: [0.6, 40] }),
          points: { show: false },
          value: (u, v, si, i) => (i == null ? "" : days[i].cost + " " + days[i].currency + " (" + days[i].calls + " calls)"),
        },
      ],
    }, [xs, ys], box);
  }

  // "Nov 3" for a UTC-midnight timestamp in seconds.
  function dayLabel(ts) {
    const d = new Date(ts * 1000);
    return ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][d.getUTCMonth()] + " " +
      d.getUTCDate();
  }

  function renderModels(usage) {
    const body = $("models").tBodies[0];
    body.textContent = "";
    for (const r of usage.rows) {
      const tr = el("tr");
      tr.appendChild(el("td", r.group));
      tr.appendChild(el("td", r.kind));
      tr.appendChild(el("td", r.cost, "num"));
      tr.appendChild(el("td", r.currency));
      body.appendChild(tr);
    }
    for (const s of sumByCurrency(usage.rows)) {
      const tr = el("tr", null, "total");
      tr.appendChild(el("th", "Total"));
      tr.appendChild(el("th", ""));
      tr.appendChild(el("th", s.cost, "num"));
      tr.appendChild(el("th", s.currency));
      body.appendChild(tr);
    }
  }

  // Names are set as text only (el uses textContent): a project is whatever
  // a client sent.
  function renderProjects(usage) {
    const body = $("projects").tBodies[0];
    body.textContent = "";
    for (const r of usage.rows) {
      const tr = el("tr");
      tr.dataset.project = r.group;
      tr.dataset.kind = r.kind;
      tr.appendChild(el("td", r.kind === "usage" && r.group === "" ? "(none)" : r.group));
      tr.appendChild(el("td", r.kind));
      tr.appendChild(el("td", r.kind === "usage" ? String(r.calls) : "", "num"));
      tr.appendChild(el("td", r.cost, "num"));
      tr.appendChild(el("td", r.currency));
      body.appendChild(tr);
    }
    for (const s of sumByCurrency(usage.rows)) {
      const tr = el("tr", null, "total");
      tr.appendChild(el("th", "Total"));
      tr.appendChild(el("th", ""));
      tr.appendChild(el("th", ""));
      tr.appendChild(el("th", s.cost, "num"));
      tr.appendChild(el("th", s.currency));
      body.appendChild(tr);
    }
  }

  function renderInvoices(invoices) {
    const body = $("invoices").tBodies[0];
    body.textContent = "";
    show("invoices-empty", invoices.length === 0);
    for (const inv of invoices) {
      const tr = el("tr");
      tr.dataset.invoiceId = String(inv.invoice_id);
      for (const [v, c] of [[inv.number, "nowrap"], [inv.period, "nowrap"], [inv.customer_name], [inv.plan], [inv.status],
                            [inv.total, "num"], [inv.currency]]) {
        tr.appendChild(el("td", v, c));
      }
      const actions = el("td", null, "actions");
      for (const ext of ["pdf", "csv"]) {
        const b = el("button", ext.toUpperCase(), "link");
        b.type = "button";
        b.dataset.download = ext;
        b.addEventListener("click", () => download(inv, ext, b));
        actions.appendChild(b);
      }
      tr.appendChild(actions);
      body.appendChild(tr);
    }
  }

  // A plain link cannot carry the key: fetch with the header, then save the
  // Blob under the server's file name.
  async function download(inv, ext, button) {
    button.disabled = true;
    try {
      const res = await api("/v1/invoices/" + encodeURIComponent(String(inv.invoice_id)) + "." + ext);
      const blob = await res.blob();
      const m = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "");
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = m ? m[1] : (inv.number || "invoice-" + inv.invoice_id) + "." + ext;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) {
      showError("load-error", "Cannot download " + (inv.number || inv.invoice_id) + "." + ext + ": " + e.message);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("period-form").addEventListener("submit", (e) => { e.preventDefault(); load(); });
    if (key()) showCustomer(); else showSignIn("");
  });
})();
