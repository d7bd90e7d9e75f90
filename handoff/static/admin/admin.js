/* The content staff's workbench: review inbox (keyboard-first labelling) and analytics.
 * Everything from the server goes into the page with textContent only. */
(() => {
  "use strict";
  const INTENTS = ["greet", "goodbye", "thank", "affirm", "deny", "bot_challenge", "track_order",
    "start_return", "refund_status", "cancel_order", "change_shipping_address", "product_info",
    "human_handoff", "complain", "faq", "out_of_scope"];
  const TOKEN_KEY = "shopchat-admin-token";
  const $ = (id) => document.getElementById(id);
  let token = sessionStorage.getItem(TOKEN_KEY);
  let items = [];
  let current = 0;
  const selected = new Set();
  const charts = [];
  const view = location.pathname.startsWith("/admin/analytics") ? "analytics" : "inbox";

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  async function api(path, options = {}) {
    const response = await fetch(path, { ...options,
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token } });
    if (response.status === 401) { signOut(); throw new Error("signed out"); }
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || "request failed");
    return body;
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    $("app").hidden = true;
    $("signin").hidden = false;
    $("email").focus();
  }

  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("signin-error").textContent = "";
    const response = await fetch("/api/agents/login", { method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: $("email").value, password: $("password").value }) });
    const body = await response.json();
    if (!response.ok) { $("signin-error").textContent = body.error; return; }
    if (body.agent.role !== "staff" && body.agent.role !== "admin") {
      $("signin-error").textContent = "This needs a staff or admin account.";
      return;
    }
    token = body.token;
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(TOKEN_KEY + ":name", body.agent.name);
    start();
  });
  $("signout").addEventListener("click", signOut);
  $("days").addEventListener("change", () => load());

  function start() {
    $("signin").hidden = true;
    $("app").hidden = false;
    $("me").textContent = sessionStorage.getItem(TOKEN_KEY + ":name") || "";
    $(view).hidden = false;
    $("tab-" + view).setAttribute("aria-current", "page");
    INTENTS.forEach((intent) => $("verdict").append(el("option", intent)));
    load();
  }

  function load() { return view === "inbox" ? loadInbox() : loadAnalytics(); }

  // -- review inbox -----------------------------------------------------------

  async function loadInbox() {
    items = (await api("/api/admin/review?days=" + $("days").value)).items;
    current = 0;
    selected.clear();
    render();
  }

  function render() {
    const rows = $("rows");
    rows.replaceChildren();
    items.forEach((item, index) => {
      const row = el("tr");
      row.dataset.id = item.id;
      if (index === current) row.className = "current";
      if (item.verdict) row.classList.add("done");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = selected.has(item.id);
      box.setAttribute("aria-label", "Select: " + item.text);
      box.addEventListener("change", () => { toggle(item.id); });
      const cell = el("td");
      cell.append(box);
      const read = item.intent ? item.intent + (item.confidence != null
        ? " (" + item.confidence.toFixed(2) + ")" : "") : "";
      row.append(cell, el("td", item.kind.replace("_", " ")), el("td", item.text),
        el("td", read + (item.verdict ? " → " + item.verdict : "")),
        el("td", new Date(item.at * 1000).toLocaleString()));
      row.addEventListener("click", (event) => {
        if (event.target !== box) { current = index; render(); }
      });
      rows.append(row);
    });
    $("empty").hidden = items.length > 0;
  }

  function toggle(id) {
    if (selected.has(id)) selected.delete(id); else selected.add(id);
    render();
  }

  async function label(verdict) {
    const ids = selected.size ? [...selected] : (items[current] ? [items[current].id] : []);
    if (!ids.length) return;
    try {
      const result = await api("/api/admin/review/label", { method: "POST",
        body: JSON.stringify({ verdict, items: ids }) });
      items.forEach((item) => { if (ids.includes(item.id)) item.verdict = verdict; });
      selected.clear();
      current = Math.min(current + 1, Math.max(items.length - 1, 0));
      $("status").textContent = "Labelled " + result.labelled + " as " + verdict + "; "
        + result.training_file.examples + " examples in data/nlu/reviewed.yml.";
      render();
    } catch (error) {
      $("status").textContent = error.message;
    }
  }

  $("label").addEventListener("click", () => label($("verdict").value));

  document.addEventListener("keydown", (event) => {
    if (view !== "inbox" || $("app").hidden) return;
    if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = { j: () => { current = Math.min(current + 1, items.length - 1); render(); },
      k: () => { current = Math.max(current - 1, 0); render(); },
      x: () => { if (items[current]) toggle(items[current].id); },
      l: () => label($("verdict").value), f: () => label("new_faq"), i: () => label("ignore") };
    if (keys[event.key]) { event.preventDefault(); keys[event.key](); }
  });

  // -- analytics --------------------------------------------------------------

  function percent(value) { return value == null ? "n/a" : Math.round(value * 1000) / 10 + "%"; }
  function seconds(q) { return q.median == null ? "n/a" : q.median + " s (p90 " + q.p90 + " s)"; }

  async function loadAnalytics() {
    const report = await api("/api/admin/analytics?days=" + $("days").value);
    const t = report.totals;
    const figures = [["Conversations", t.conversations], ["Contained by the bot", percent(t.containment_rate)],
      ["Handed to a person", percent(t.handoff_rate)], ["Queue wait", seconds(t.queue_wait_seconds)],
      ["First response", seconds(t.first_response_seconds)],
      ["CSAT", t.csat.average == null ? "n/a" : t.csat.average + " (" + t.csat.responses + ")"],
      ["KB helpful", percent(t.kb.helpful_ratio)], ["Fallback rate", percent(t.fallback_rate)],
      ["Offline tickets", t.offline_tickets]];
    $("figures").replaceChildren(...figures.map(([name, value]) => {
      const box = el("div", undefined, "figure");
      box.append(el("span", name), el("strong", String(value)));
      return box;
    }));
    charts.splice(0).forEach((chart) => chart.destroy());
    const motion = !matchMedia("(prefers-reduced-motion: reduce)").matches;
    const counts = { beginAtZero: true, ticks: { precision: 0 } };
    const base = { animation: motion ? undefined : false, responsive: true, scales: { y: counts } };
    charts.push(new Chart($("chart-days"), { type: "bar", options: base, data: {
      labels: report.days.map((d) => d.day),
      datasets: [{ label: "Conversations", data: report.days.map((d) => d.conversations), backgroundColor: "#1f5f4a" },
        { label: "Handoffs", data: report.days.map((d) => d.handoffs), backgroundColor: "#c8553d" }] } }));
    charts.push(new Chart($("chart-reasons"), { type: "bar", options: { ...base, indexAxis: "y", scales: { x: counts } }, data: {
      labels: Object.keys(t.handoff_reasons),
      datasets: [{ label: "Handoffs", data: Object.values(t.handoff_reasons), backgroundColor: "#c8553d" }] } }));
    charts.push(new Chart($("chart-csat"), { type: "bar", options: base, data: {
      labels: ["1", "2", "3", "4", "5"],
      datasets: [{ label: "Ratings", data: ["1", "2", "3", "4", "5"].map((k) => t.csat.distribution[k]), backgroundColor: "#2d6a9f" }] } }));
    const rows = report.intents.map((i) => {
      const row = el("tr");
      row.append(el("td", i.intent), el("td", String(i.messages)), el("td", percent(i.share)),
        el("td", i.mean_confidence == null ? "n/a" : String(i.mean_confidence)),
        el("td", String(i.conversations_handed_off)));
      return row;
    });
    $("intents").replaceChildren(...rows);
    const columns = ["day", "conversations", "handoffs", "containment_rate", "fallback_rate", "shopper_messages", "csat_average"];
    const csv = [columns.join(",")].concat(report.days.map((d) => columns.map((c) => d[c] == null ? "" : d[c]).join(","))).join("\n");
    $("csv").href = URL.createObjectURL(new Blob([csv + "\n"], { type: "text/csv" }));
  }

  if (token) start(); else signOut();
})();
