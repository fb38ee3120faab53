// Tally's finance page (/finance): invoices of a period with their status,
// the invoice run, finalize and void, the margin table with negative rows
// flagged, and dead letters by reason. Signs in with a finance or admin
// key; any other key is told so and sees no data. The key lives in
// sessionStorage (this tab only, under its own name: the customer page's
// key is never read here) and leaves the page only as the Authorization
// header of fetch(): never in a URL. Everything from the API is put into
// the page as text (textContent), never as HTML. Money stays a decimal
// string: sums are exact (BigInt), and a rounded figure shown keeps the
// exact one in its title.
"use strict";

(function () {
  const KEY = "tally.finance.key";
  const $ = (id) => document.getElementById(id);
  const DEAD_LETTER_PAGE = 20;
  let nextBefore = null;  // the dead letters' cursor: the next page's before=
  let generation = 0;  // of load(): an older load's answers are dropped
  let busy = false;     // an action (run, finalize, void) is under way

  function key() { return sessionStorage.getItem(KEY); }

  // A non-2xx answer, with the API's own code and message.
  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  // One request with the key: resolves to the Response, throws ApiError.
  // `body` (an object) is sent as JSON with POST.
  async function api(path, options) {
    const o = options || {};
    const headers = { Authorization: "Bearer " + (o.key || key()) };
    const init = { method: o.body ? "POST" : "GET", headers: headers, cache: "no-store" };
    if (o.body) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(o.body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "unreachable", "cannot reach the Tally server (" + e.message + ")");
    }
    if (res.ok) return res;
    let code = "", message = res.status + " " + res.statusText;
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) {
        message = body.error.message;
        code = body.error.code || "";
      }
    } catch (e) { /* not JSON: keep the status */ }
    throw new ApiError(res.status, code, message);
  }
  const getJson = (path) => api(path).then((r) => r.json());
  const postJson = (path, body) => api(path, { body: body }).then((r) => r.json());

  // --- exact decimals -----------------------------------------------------

  function parseDecimal(v) {
    const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(v));
    if (!m) throw new Error("not a decimal amount: " + v);
    return { neg: m[1] === "-", int: m[2], frac: m[3] || "" };
  }

  function formatScaled(n, scale) {
    const neg = n < 0n;
    const digits = (neg ? -n : n).toString().padStart(scale + 1, "0");
    const int = digits.slice(0, digits.length - scale);
    return (neg ? "-" : "") + int + (scale > 0 ? "." + digits.slice(digits.length - scale) : "");
  }

  // Exact sum of decimal strings: a decimal string.
  function addDecimals(values) {
    const parts = values.map(parseDecimal);
    const scale = parts.reduce((s, p) => Math.max(s, p.frac.length), 0);
    let sum = 0n;
    for (const p of parts) {
      const n = BigInt(p.int + p.frac.padEnd(scale, "0"));
      sum += p.neg ? -n : n;
    }
    return formatScaled(sum, scale);
  }

  // Minor digits of a currency (pricing/currency.cc).
  function minorDigits(currency) {
    if (currency === "JPY" || currency === "KRW") return 0;
    if (currency === "BHD" || currency === "KWD") return 3;
    return 2;
  }

  // A decimal string rounded half-even to `places`, as tally's tables do.
  function roundHalfEven(v, places) {
    const p = parseDecimal(v);
    if (p.frac.length <= places) return formatScaled((p.neg ? -1n : 1n) * BigInt(p.int + p.frac.padEnd(places, "0")), places);
    const kept = BigInt(p.int + p.frac.slice(0, places));
    const rest = p.frac.slice(places);
    const half = "5".padEnd(rest.length, "0");
    let up = rest > half;
    if (rest === half) up = kept % 2n === 1n;
    const magnitude = up ? kept + 1n : kept;
    return formatScaled(p.neg && magnitude !== 0n ? -magnitude : magnitude, places);
  }

  // --- small DOM helpers --------------------------------------------------

  function el(tag, text, className) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (className) e.className = className;
    return e;
  }

  // A table cell with an amount rounded to the currency's minor unit; the
  // exact figure is its title and data-exact. null: "unknown".
  function amountCell(value, currency, tag) {
    if (value === null || value === undefined) return el(tag || "td", "unknown", "num unknown");
    const td = el(tag || "td", roundHalfEven(value, minorDigits(currency)), "num");
    td.dataset.exact = String(value);
    td.title = String(value) + " " + currency;
    return td;
  }

  function button(text, className, onClick) {
    const b = el("button", text, className);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  function show(id, on) { $(id).hidden = !on; }

  function showError(id, message) {
    $(id).textContent = message;
    show(id, Boolean(message));
  }

  function lastMonth() {
    const d = new Date();
    const m = d.getUTCMonth();  // 0-based: the month before this one
    const y = m === 0 ? d.getUTCFullYear() - 1 : d.getUTCFullYear();
    return y + "-" + String(m === 0 ? 12 : m).padStart(2, "0");
  }

  // --- sign in / out ------------------------------------------------------

  // What to say about a key the finance routes refuse.
  function refusal(e) {
    if (e.status === 401) return "This key was not accepted: " + e.message + ".";
    if (e.status === 403) {
      return "This key is not a finance key (" + e.message + "). The finance page needs a finance or admin key; " +
        "customers use the customer page.";
    }
    return "Cannot sign in: " + e.message;
  }

  function showSignIn(message) {
    generation++;
    show("finance-view", false);
    show("sign-out", false);
    $("who").textContent = "";
    clearData();
    show("signin-view", true);
    showError("signin-error", message || "");
    $("signin-error").classList.toggle("not-finance", /not a finance key/.test(message || ""));
    document.body.dataset.state = message ? "refused" : "signin";
    $("key").focus();
  }

  // A finance-only route tells whether the key may use this page: a
  // customer or sales key gets a 403 there and is not kept.
  async function signIn(event) {
    event.preventDefault();
    const k = $("key").value.trim();
    if (!k) return showError("signin-error", "Paste an API key to sign in.");
    document.body.dataset.state = "signing-in";
    try {
      await api("/v1/dead-letters?limit=1", { key: k });
    } catch (e) {
      $("key").value = "";
      return showSignIn(refusal(e));
    }
    sessionStorage.setItem(KEY, k);
    $("key").value = "";
    showFinance();
  }

  function signOut() {
    sessionStorage.removeItem(KEY);
    showSignIn("");
  }

  // Nothing of an earlier key's data stays in the page.
  function clearData() {
    for (const id of ["invoices", "margin", "dead-reasons", "dead-letters"]) $(id).tBodies[0].textContent = "";
    for (const id of ["invoice-counts", "margin-report"]) $(id).textContent = "";
    for (const id of ["load-error", "action-result", "margin-error"]) showError(id, "");
  }

  // --- the finance view ---------------------------------------------------

  function showFinance() {
    show("signin-view", false);
    show("finance-view", true);
    show("sign-out", true);
    $("who").textContent = "";
    if (!$("period").value) $("period").value = lastMonth();
    load();
  }

  // A refused key on a later request: back to sign-in, nothing kept.
  function refused(e) {
    if (e.status !== 401 && e.status !== 403) return false;
    sessionStorage.removeItem(KEY);
    showSignIn(e.status === 401 ? "Your key is no longer accepted: " + e.message + ". Sign in again." : refusal(e));
    return true;
  }

  // Loads the three sections one request after another: the server takes
  // at most 2 requests of one key at once.
  async function load() {
    const period = $("period").value;
    const mine = ++generation;
    showError("load-error", "");
    document.body.dataset.state = "loading";
    try {
      const invoices = await getJson("/v1/invoices?period=" + encodeURIComponent(period));
      if (mine !== generation) return;
      renderInvoices(invoices.invoices);
      await loadMargin(mine);
      await loadDeadLetters(mine);
      if (mine !== generation) return;
      document.body.dataset.state = "ready";
    } catch (e) {
      if (mine !== generation) return;
      if (refused(e)) return;
      document.body.dataset.state = "error";
      showError("load-error", "Cannot load " + period + ": " + e.message);
    }
  }

  function renderInvoices(invoices) {
    const body = $("invoices").tBodies[0];
    body.textContent = "";
    show("invoices-empty", invoices.length === 0);
    const counts = new Map();
    for (const inv of invoices) counts.set(inv.status, (counts.get(inv.status) || 0) + 1);
    $("invoice-counts").textContent = Array.from(counts, ([s, n]) => n + " " + s).join(", ");
    $("finalize-all").disabled = !counts.get("draft");
    for (const inv of invoices) {
      const tr = el("tr");
      tr.dataset.invoiceId = String(inv.invoice_id);
      tr.dataset.status = inv.status;
      tr.appendChild(el("td", inv.number || "draft " + inv.invoice_id, "nowrap" + (inv.number ? "" : " muted")));
      const who = el("td");
      who.appendChild(el("span", inv.customer_name, "name"));
      who.appendChild(el("span", inv.customer, "id"));
      tr.appendChild(who);
      tr.appendChild(el("td", inv.plan, "nowrap"));
      tr.appendChild(el("td", inv.status, "status status-" + inv.status));
      tr.appendChild(amountCell(inv.subtotal, inv.currency));
      tr.appendChild(amountCell(inv.tax, inv.currency));
      tr.appendChild(amountCell(inv.total, inv.currency));
      tr.appendChild(el("td", inv.currency));
      const actions = el("td", null, "actions");
      if (inv.status === "draft") {
        actions.appendChild(button("Finalize…", "small", () => finalizeOne(inv)));
      } else if (inv.status === "finalized") {
        actions.appendChild(button("Void…", "small danger", () => openVoid(inv)));
      }
      for (const ext of ["pdf", "csv"]) {
        const b = button(ext.toUpperCase(), "link", () => download(
          "/v1/invoices/" + encodeURIComponent(String(inv.invoice_id)) + "." + ext,
          (inv.number || "draft-" + inv.invoice_id) + "." + ext, b));
        b.dataset.download = ext;
        actions.appendChild(b);
      }
      tr.appendChild(actions);
      body.appendChild(tr);
    }
  }

  // --- margin -------------------------------------------------------------

  async function loadMargin(mine) {
    const period = $("period").value;
    const by = $("margin-by").value;
    showError("margin-error", "");
    let margin;
    try {
      margin = await getJson("/v1/margin?period=" + encodeURIComponent(period) + "&by=" + encodeURIComponent(by));
    } catch (e) {
      if (e.status === 401 || e.status === 403) throw e;
      if (mine !== generation) return;
      $("margin").tBodies[0].textContent = "";
      $("margin-report").textContent = "";
      show("margin-empty", false);
      return showError("margin-error", "Cannot load the margin of " + period + ": " + e.message);
    }
    if (mine !== generation) return;
    renderMargin(margin, by);
  }

  function renderMargin(margin, by) {
    const label = $("margin-by").selectedOptions[0].textContent;
    $("margin-key").textContent = label.charAt(0).toUpperCase() + label.slice(1);
    const notes = [];
    if (margin.no_plans) notes.push("No plans are published.");
    if (margin.no_cost_cards) notes.push("No cost card is published: every cost is unknown (tally cost publish).");
    if (margin.unresolved_rollups > 0) {
      notes.push(plural(margin.unresolved_rollups, "usage row names", "usage rows name") +
        " a plan, model or unit no longer published and " + (margin.unresolved_rollups === 1 ? "is" : "are") + " left out.");
    }
    $("margin-report").textContent = notes.join(" ");
    const body = $("margin").tBodies[0];
    body.textContent = "";
    $("margin").dataset.by = by;
    show("margin-empty", margin.rows.length === 0);
    for (const r of margin.rows) body.appendChild(marginRow(el("td", r[by]), r));
    for (const t of margin.totals) {
      const tr = marginRow(el("th", "Total"), t, "th");
      tr.classList.add("total");
      body.appendChild(tr);
    }
  }

  // A margin row (or total) after its first cell: currency, calls,
  // revenue, cost, margin, margin %, flag. A negative margin has the class
  // "negative" and a visible marker, not a colour only.
  function marginRow(first, r, tag) {
    const negative = r.negative === true;
    const tr = el("tr", null, negative ? "negative" : r.error ? "error" : "");
    tr.appendChild(first);
    tr.appendChild(el(tag || "td", r.currency));
    tr.appendChild(el(tag || "td", r.calls, "num"));
    tr.appendChild(amountCell(r.revenue, r.currency, tag));
    tr.appendChild(amountCell(r.error ? null : r.cost, r.currency, tag));
    tr.appendChild(amountCell(r.error ? null : r.margin, r.currency, tag));
    tr.appendChild(el(tag || "td", r.error ? "-" : r.margin_percent, "num"));
    const flag = el(tag || "td", null, "flag");
    if (negative) flag.appendChild(el("span", "▼ negative", "badge badge-negative"));
    if (r.error) flag.appendChild(el("span", "error: " + r.error, "badge badge-error"));
    else if (r.cost_unknown) flag.appendChild(el("span", "cost unknown: " + r.cost_unknown, "badge badge-unknown"));
    tr.appendChild(flag);
    return tr;
  }

  // --- dead letters -------------------------------------------------------

  // The first page of the chosen reason (or every reason), newest first.
  async function loadDeadLetters(mine) {
    const reason = $("dead-reason").value;
    const q = "limit=" + DEAD_LETTER_PAGE + (reason ? "&reason=" + encodeURIComponent(reason) : "");
    const dead = await getJson("/v1/dead-letters?" + q);
    if (mine !== generation) return;
    renderDeadCounts(dead, reason);
    $("dead-letters").tBodies[0].textContent = "";
    $("dead-letters").dataset.reason = reason;
    appendDeadLetters(dead);
  }

  // Every reason with a count: a row each (a button that shows its
  // letters) for those that have any, and an option each in the select.
  function renderDeadCounts(dead, reason) {
    const body = $("dead-reasons").tBodies[0];
    body.textContent = "";
    const select = $("dead-reason");
    while (select.options.length > 1) select.remove(1);
    for (const c of dead.counts) {
      const option = el("option", c.reason + " (" + c.count + ")");
      option.value = c.reason;
      select.appendChild(option);
      if (c.count === 0) continue;
      const tr = el("tr", null, c.reason === reason ? "selected" : "");
      tr.dataset.reason = c.reason;
      const name = el("td");
      name.appendChild(button(c.reason, "link plain", () => { select.value = c.reason; load(); }));
      tr.appendChild(name);
      tr.appendChild(el("td", c.count, "num"));
      body.appendChild(tr);
    }
    const tr = el("tr", null, "total");
    tr.appendChild(el("th", "Total"));
    tr.appendChild(el("th", dead.total, "num"));
    body.appendChild(tr);
    select.value = reason;
  }

  // One page of dead letters after those shown; "Older" asks for the next.
  function appendDeadLetters(dead) {
    const list = $("dead-letters").tBodies[0];
    for (const d of dead.dead_letters) {
      const row = el("tr");
      row.dataset.deadLetterId = String(d.id);
      row.appendChild(el("td", d.id, "num"));
      row.appendChild(el("td", d.received_at, "nowrap"));
      row.appendChild(el("td", d.reason_code, "nowrap"));
      row.appendChild(el("td", d.reason, "detail"));
      row.appendChild(el("td", d.topic + " " + d.partition + ":" + d.offset, "nowrap muted"));
      const actions = el("td", null, "actions");
      const b = button("Raw (" + plural(d.size, "byte", "bytes") + ")", "link", () => download(
        "/v1/dead-letters/" + encodeURIComponent(String(d.id)) + ".raw", "dead-letter-" + d.id + ".raw", b));
      b.dataset.download = "raw";
      actions.appendChild(b);
      row.appendChild(actions);
      list.appendChild(row);
    }
    show("dead-empty", list.rows.length === 0);
    nextBefore = dead.next_before;
    show("dead-older", nextBefore !== null && nextBefore !== undefined);
  }

  async function olderDeadLetters() {
    const mine = generation;
    const reason = $("dead-reason").value;
    const q = "limit=" + DEAD_LETTER_PAGE + "&before=" + encodeURIComponent(String(nextBefore)) +
      (reason ? "&reason=" + encodeURIComponent(reason) : "");
    try {
      const dead = await getJson("/v1/dead-letters?" + q);
      if (mine === generation) appendDeadLetters(dead);
    } catch (e) {
      if (!refused(e)) showError("load-error", "Cannot load older dead letters: " + e.message);
    }
  }

  // --- actions ------------------------------------------------------------

  // Runs `work` (a request) with the action buttons disabled; says what it
  // did (or why not) in the status line, then reloads the period.
  async function act(what, work) {
    if (busy) return;
    busy = true;
    const buttons = Array.from(document.querySelectorAll("#finance-view button"));
    for (const b of buttons) b.disabled = true;
    showError("action-result", "");
    $("action-result").classList.remove("failed");
    document.body.dataset.state = "acting";
    let said;
    try {
      said = await work();
    } catch (e) {
      if (refused(e)) return;
      said = what + " failed: " + e.message;
      $("action-result").classList.add("failed");
    } finally {
      busy = false;
      for (const b of buttons) b.disabled = false;
    }
    showError("action-result", said);
    await load();
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function runPeriod() {
    const period = $("period").value;
    act("The invoice run of " + period, async () => {
      const r = await postJson("/v1/invoice-runs", { period: period });
      let said = "Invoice run " + r.run_id + " of " + r.period + ": " + plural(r.drafts, "draft", "drafts") + " for " +
        plural(r.customers, "customer", "customers");
      if (r.not_priced > 0) said += ", " + r.not_priced + " not priced";
      if (r.adjustments > 0) said += ", " + plural(r.adjustments, "adjustment", "adjustments");
      if (r.left_finalized > 0) said += ", " + r.left_finalized + " already finalized (left as they are)";
      said += ".";
      if (r.problems && r.problems.length) said += " Problems: " + r.problems.join("; ");
      return said;
    });
  }

  // "Finalized 3: INV-…, INV-…. 1 draft could not be priced: …".
  function finalized(r) {
    let said = r.finalized.length === 0 ? "Nothing was finalized."
      : "Finalized " + r.finalized.length + ": " + r.finalized.map((i) => i.number).join(", ") + ".";
    const left = r.not_priced || [];
    if (left.length) said += " " + plural(left.length, "draft", "drafts") + " could not be priced: " + left.join("; ");
    return said;
  }

  // Asks before an action that cannot be undone: `then` runs on OK.
  let confirmed = null;
  function confirmFirst(title, text, ok, then) {
    confirmed = then;
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = ok;
    $("confirm-dialog").showModal();
    $("confirm-ok").focus();
  }

  function finalizePeriod() {
    const period = $("period").value;
    const drafts = document.querySelectorAll("#invoices tbody tr[data-status=draft]").length;
    confirmFirst("Finalize " + period + "?", "Finalizes " + plural(drafts, "draft", "drafts") + " of " + period +
      ": each gets its number and can no longer change (only be voided with a credit note).",
    "Finalize " + plural(drafts, "draft", "drafts"), () => act("Finalizing " + period, async () =>
      finalized(await postJson("/v1/invoices:finalize", { period: period }))));
  }

  function finalizeOne(inv) {
    confirmFirst("Finalize the draft of " + inv.customer + "?", "The draft " + inv.invoice_id + " of " +
      inv.customer_name + " (" + inv.customer + "), " + inv.total + " " + inv.currency +
      ", gets its number and can no longer change (only be voided with a credit note).", "Finalize",
    () => act("Finalizing draft " + inv.invoice_id, async () =>
      finalized(await postJson("/v1/invoices/" + encodeURIComponent(String(inv.invoice_id)) + "/finalize", {}))));
  }

  let voiding = null;

  function openVoid(inv) {
    voiding = inv;
    $("void-number").textContent = inv.number;
    $("void-what").textContent = inv.customer_name + " (" + inv.customer + "), " + inv.period + ", " + inv.total + " " +
      inv.currency + ".";
    $("void-reason").value = "";
    showError("void-error", "");
    $("void-dialog").showModal();
    $("void-reason").focus();
  }

  function confirmVoid(event) {
    event.preventDefault();
    const reason = $("void-reason").value.trim();
    if (!reason) return showError("void-error", "Say why the invoice is voided.");
    const inv = voiding;
    $("void-dialog").close();
    act("Voiding " + inv.number, async () => {
      const r = await postJson("/v1/invoices/" + encodeURIComponent(String(inv.invoice_id)) + "/void", { reason: reason });
      return "Voided " + inv.number + (r.number ? " with credit note " + r.number : "") + ".";
    });
  }

  // A plain link cannot carry the key: fetch with the header, then save the
  // Blob under the server's file name.
  async function download(path, fallback, b) {
    b.disabled = true;
    try {
      const res = await api(path);
      const blob = await res.blob();
      const m = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "");
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = m ? m[1] : fallback;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) {
      if (!refused(e)) showError("load-error", "Cannot download " + fallback + ": " + e.message);
    } finally {
      b.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("signin-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("period-form").addEventListener("submit", (e) => { e.preventDefault(); load(); });
    $("run").addEventListener("click", runPeriod);
    $("finalize-all").addEventListener("click", finalizePeriod);
    $("margin-by").addEventListener("change", load);
    $("dead-reason").addEventListener("change", load);
    $("dead-older").addEventListener("click", olderDeadLetters);
    $("void-form").addEventListener("submit", confirmVoid);
    $("void-cancel").addEventListener("click", () => $("void-dialog").close());
    $("confirm-form").addEventListener("submit", (e) => {
      e.preventDefault();
      $("confirm-dialog").close();
      const then = confirmed;
      confirmed = null;
      if (then) then();
    });
    $("confirm-cancel").addEventListener("click", () => { confirmed = null; $("confirm-dialog").close(); });
    if (key()) showFinance(); else showSignIn("");
  });
})();
