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
  let all = [];  // every item of the period; `items` are those of the kind shown
  let items = [];
  let current = 0;
  const selected = new Set();
  const undo = [];  // [{ ids, before: {id: verdict or null} }], newest last
  const charts = [];
  const view = ["analytics", "conversation", "gaps"].find(
    (name) => location.pathname.startsWith("/admin/" + name)) || "inbox";

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
    if (!response.ok) throw new Error(body.detail || "request failed");
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
    if (!response.ok) { $("signin-error").textContent = body.detail; return; }
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
    if (view !== "conversation") $("tab-" + view).setAttribute("aria-current", "page");
    INTENTS.forEach((intent) => $("verdict").append(el("option", intent)));
    load();
  }

  function load() {
    return { inbox: loadInbox, analytics: loadAnalytics, gaps: loadGaps,
      conversation: loadConversation }[view]();
  }

  // -- review inbox -----------------------------------------------------------

  async function loadInbox() {
    all = (await api("/api/admin/review?days=" + $("days").value)).items;
    current = 0;
    selected.clear();
    filter();
  }

  function filter() {
    const kind = $("kind").value;
    items = all.filter((item) => !kind || item.kind === kind);
    current = Math.min(current, Math.max(items.length - 1, 0));
    [...selected].forEach((id) => { if (!items.some((i) => i.id === id)) selected.delete(id); });
    render();
  }

  function transcriptLink(item) {
    const query = new URLSearchParams({ id: item.conversation_id, text: item.text });
    return "/admin/conversation?" + query;
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
      const link = el("a", "Transcript");
      link.href = transcriptLink(item);
      const where = el("td");
      where.append(link);
      row.append(cell, el("td", item.kind.replace("_", " ")), el("td", item.text),
        el("td", read + (item.verdict ? " → " + item.verdict : "")),
        el("td", new Date(item.at * 1000).toLocaleString()), where);
      row.addEventListener("click", (event) => {
        if (event.target !== box && event.target !== link) { current = index; render(); }
      });
      rows.append(row);
    });
    $("all").checked = items.length > 0 && items.every((item) => selected.has(item.id));
    $("empty").hidden = items.length > 0;
    $("undo").disabled = undo.length === 0;
  }

  function toggle(id) {
    if (selected.has(id)) selected.delete(id); else selected.add(id);
    render();
  }

  // Select every message shown of the current message's kind (or clear that selection).
  function selectKind() {
    const kind = items[current] && items[current].kind;
    const same = items.filter((item) => item.kind === kind);
    const on = !same.every((item) => selected.has(item.id));
    same.forEach((item) => { if (on) selected.add(item.id); else selected.delete(item.id); });
    render();
  }

  async function send(verdict, ids) {
    return api("/api/admin/review/label", { method: "POST",
      body: JSON.stringify({ verdict, items: ids }) });
  }

  async function label(verdict) {
    const ids = selected.size ? [...selected] : (items[current] ? [items[current].id] : []);
    if (!ids.length) return;
    try {
      const before = Object.fromEntries(all.filter((i) => ids.includes(i.id))
        .map((i) => [i.id, i.verdict || null]));
      const result = await send(verdict, ids);
      undo.push({ ids, before });
      all.forEach((item) => { if (ids.includes(item.id)) item.verdict = verdict; });
      selected.clear();
      current = Math.min(current + 1, Math.max(items.length - 1, 0));
      $("status").textContent = "Labelled " + result.labelled + " as " + verdict + "; "
        + result.training_file.examples + " examples in data/nlu/reviewed.yml.";
      render();
    } catch (error) {
      $("status").textContent = error.message;
    }
  }

  // Put the last labelling back as it was: verdicts restored, or taken back.
  async function undoLast() {
    const last = undo.pop();
    if (!last) return;
    try {
      const groups = new Map();
      last.ids.forEach((id) => {
        const verdict = last.before[id];
        groups.set(verdict, [...(groups.get(verdict) || []), id]);
      });
      let result = null;
      for (const [verdict, ids] of groups) result = await send(verdict, ids);
      all.forEach((item) => { if (last.ids.includes(item.id)) item.verdict = last.before[item.id]; });
      $("status").textContent = "Undone: " + last.ids.length + " back as they were; "
        + result.training_file.examples + " examples in data/nlu/reviewed.yml.";
      render();
    } catch (error) {
      undo.push(last);
      $("status").textContent = error.message;
    }
  }

  $("label").addEventListener("click", () => label($("verdict").value));
  $("undo").addEventListener("click", () => undoLast());
  $("kind").addEventListener("change", () => filter());
  $("all").addEventListener("change", () => {
    items.forEach((item) => { if ($("all").checked) selected.add(item.id); else selected.delete(item.id); });
    render();
  });

  document.addEventListener("keydown", (event) => {
    if (view !== "inbox" || $("app").hidden) return;
    if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = { j: () => { current = Math.min(current + 1, items.length - 1); render(); },
      k: () => { current = Math.max(current - 1, 0); render(); },
      x: () => { if (items[current]) toggle(items[current].id); },
      a: selectKind, u: undoLast,
      o: () => { if (items[current]) location.href = transcriptLink(items[current]); },
      l: () => label($("verdict").value), f: () => label("new_faq"), i: () => label("ignore") };
    if (keys[event.key]) { event.preventDefault(); keys[event.key](); }
  });

  // -- KB gaps ----------------------------------------------------------------

  function slug(text) {
    return text.toLowerCase().replace(/[^a-z0-9]+/g, " ").trim().split(" ")
      .filter((word) => word.length > 2).slice(0, 4).join("-") || "new-article";
  }

  async function loadGaps() {
    $("gaps-status").textContent = "Grouping questions…";
    const gaps = (await api("/api/admin/gaps?days=" + $("days").value)).gaps;
    $("gaps-status").textContent = "";
    $("gap-rows").replaceChildren(...gaps.map((gap) => {
      const line = el("tr");
      const others = el("td");
      const list = el("ul", undefined, "phrasings");
      gap.questions.filter((q) => q !== gap.label).slice(0, 5)
        .forEach((q) => list.append(el("li", q)));
      others.append(list);
      const nearest = gap.nearest ? gap.nearest.title + " (" + gap.nearest.score.toFixed(2) + ")" : "none";
      const form = el("form", undefined, "draft");
      const input = el("input");
      input.value = slug(gap.label);
      input.setAttribute("aria-label", "Article id for: " + gap.label);
      const button = el("button", "Draft");
      button.type = "submit";
      form.append(input, button);
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        try {
          const made = await api("/api/admin/gaps/draft", { method: "POST",
            body: JSON.stringify({ label: gap.label, article_id: input.value.trim() }) });
          $("gaps-status").textContent = "Wrote " + made.path + " with " + made.questions
            + " shopper questions: write the answer, move it to data/kb/ and rebuild.";
          button.disabled = true;
        } catch (error) {
          $("gaps-status").textContent = error.message;
        }
      });
      const action = el("td");
      action.append(form);
      line.append(el("td", String(gap.count)), el("td", gap.label), others, el("td", nearest), action);
      return line;
    }));
    $("no-gaps").hidden = gaps.length > 0;
  }

  // -- one conversation -------------------------------------------------------

  // Names are shown as typed (an agent's name is theirs); only the roles get a label.
  const AUTHORS = { shopper: "Shopper", bot: "Bot", agent: "Agent", system: "System" };
  // A handoff still in one of the first three states has not ended.
  const HANDOFF_STATES = { new: "open, being queued", queued: "open, waiting in the queue",
    assigned: "open, with an agent", unstaffed: "no agent was online, the bot kept the chat",
    left: "ended, the shopper left the queue", offline: "ended, the shopper left a message",
    returned: "ended, handed back to the bot", closed: "ended" };

  function handoffState(h) {
    const text = HANDOFF_STATES[h.state] || h.state;
    return h.resolution ? text + " (" + h.resolution.replace(/_/g, " ") + ")" : text;
  }

  const EVENTS = {
    handoff: (f) => "Handed to a person (" + f.trigger + "): " + f.reason,
    offline_received: () => "Shopper left an offline message",
    csat_received: (f) => "Shopper rated " + f.score + "/5",
  };

  async function loadConversation() {
    const query = new URLSearchParams(location.search);
    const id = query.get("id") || "";
    const reviewed = (query.get("text") || "").trim();
    $("conversation-title").textContent = "Conversation " + id;
    let record;
    try {
      record = await api("/api/admin/conversations/" + encodeURIComponent(id));
    } catch (error) {
      $("conversation-error").textContent = error.message;
      return;
    }
    const page = record.page || {};
    $("conversation-facts").textContent = [
      "started " + new Date(record.created_at * 1000).toLocaleString(),
      page.type ? "on a " + page.type + " page" + (page.sku ? " (" + page.sku + ")" : "") : "",
      record.customer_id ? "signed-in customer " + record.customer_id : "guest",
      record.handoffs.length ? (record.handoffs.length === 1 ? "1 handoff: " : record.handoffs.length
        + " handoffs: ") + record.handoffs.map(handoffState).join("; ") : "no handoff",
    ].filter(Boolean).join(" · ");
    const list = $("transcript");
    list.replaceChildren();
    let mark = null;
    record.transcript.forEach((frame) => {
      let line;
      if (frame.type === "message") {
        line = el("li", undefined, "line " + frame.author);
        const who = frame.agent ? frame.agent.name : AUTHORS[frame.author] || frame.author;
        line.append(el("span", who, "who"), el("span", frame.text || ""));
        if (frame.author === "shopper" && reviewed && (frame.text || "").trim() === reviewed) {
          line.classList.add("reviewed");
          line.setAttribute("aria-label", "The message under review: " + frame.text);
          mark = mark || line;
        }
      } else if (EVENTS[frame.type]) {
        line = el("li", EVENTS[frame.type](frame), "line event");
      } else {
        return;
      }
      list.append(line);
    });
    if (!record.transcript.length) list.append(el("li", "No messages are stored for this "
      + "conversation (the bot's own log may still hold the message under review).", "line event"));
    if (mark) mark.scrollIntoView({ block: "center" });
  }

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
      ["Offline tickets", t.offline_tickets],
      ["Order updates", t.order_updates.total + " (" + t.order_updates.by_channel.conversation +
        " in chats, " + t.order_updates.by_channel.email + " by mail)"]];
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
    $("intents").replaceChildren(...report.intents.map((i) => row([i.intent, i.messages,
      percent(i.share), i.mean_confidence == null ? "n/a" : i.mean_confidence, i.conversations,
      percent(i.containment_rate), i.handoffs, i.csat.average == null ? "n/a" : i.csat.average])));
    $("agents").replaceChildren(...report.agents.map((a) => row([a.agent, a.chats,
      seconds(a.first_response_seconds), seconds(a.handling_seconds),
      Object.entries(a.resolutions).map(([tag, n]) => tag + " " + n).join(", ") || "none",
      a.csat.average == null ? "n/a" : a.csat.average + " (" + a.csat.responses + ")"])));
    $("no-agents").hidden = report.agents.length > 0;
    $("languages").replaceChildren(...report.languages.map((l) => row([l.lang, l.conversations,
      percent(l.containment_rate), l.handoffs, percent(l.fallback_rate),
      l.csat.average == null ? "n/a" : l.csat.average])));
  }

  function row(cells) {
    const line = el("tr");
    cells.forEach((cell) => line.append(el("td", String(cell))));
    return line;
  }

  // CSV from the server (the same figures as `shopchat report --csv --by ...`).
  document.querySelectorAll(".downloads a").forEach((link) => {
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      const section = link.dataset.section;
      const response = await fetch("/api/admin/analytics.csv?section=" + section + "&days="
        + $("days").value, { headers: { Authorization: "Bearer " + token } });
      if (!response.ok) return;
      const save = el("a");
      save.href = URL.createObjectURL(await response.blob());
      save.download = "shopchat-" + section + ".csv";
      save.click();
      URL.revokeObjectURL(save.href);
    });
  });

  if (token) start(); else signOut();
})();
