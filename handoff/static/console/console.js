/* shopchat agent console: plain JS, no build step. Speaks the agent side of
 * docs/protocol.md over /ws/agent. Everything from the network is rendered with
 * textContent / createElement, never as HTML. */
(() => {
  "use strict";
  // The languages the widget speaks, as an agent reads them in the context.
  const LANGUAGE_NAMES = { en: "English", de: "German", fr: "French", es: "Spanish" };
  const $ = (id) => document.getElementById(id);
  const TOKEN = "shopchat-agent-token";

  const state = {
    token: sessionStorage.getItem(TOKEN),
    me: null,
    ws: null,
    backoff: 1000,
    queue: [],
    chats: [],
    tickets: [],
    mail: [],
    agents: [],
    views: new Map(),      // conversation_id -> {lastSeq, context, handoff, mode}
    current: null,         // conversation id shown
    pending: new Map(),    // client_id -> frame (agent messages/notes not yet acked)
    knownQueue: new Set(),
    typingTimer: null,
    typingOn: false,
  };

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (key === "className") node.className = value;
        else if (key === "text") node.textContent = value;
        else node.setAttribute(key, value);
      }
    }
    for (const child of children) node.append(child);
    return node;
  }

  function announce(text) { $("announcer").textContent = text; }

  function toast(text, isError) {
    const t = el("div", { className: "toast" + (isError ? " error" : ""), text });
    $("toasts").append(t);
    setTimeout(() => t.remove(), isError ? 8000 : 4000);
  }

  function newId() {
    const raw = crypto.randomUUID ? crypto.randomUUID() : Date.now() + "-" + Math.random();
    return String(raw).replace(/[^A-Za-z0-9_.:-]/g, "");
  }

  function ago(seconds) {
    if (seconds < 60) return Math.round(seconds) + " s";
    return Math.floor(seconds / 60) + " min " + Math.round(seconds % 60) + " s";
  }

  function safeLink(url) {
    try {
      const parsed = new URL(url);
      if (parsed.protocol === "http:" || parsed.protocol === "https:") {
        return el("a", { href: parsed.href, target: "_blank", rel: "noopener noreferrer", text: url });
      }
    } catch (_) { /* not a URL */ }
    return document.createTextNode(String(url));
  }

  // -- sign in / out -------------------------------------------------------------------

  function showSignin(message) {
    $("app").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("email").focus();
  }

  $("signin-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("signin-error").textContent = "";
    let response;
    try {
      response = await fetch("/api/agents/login", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ email: $("email").value, password: $("password").value }),
      });
    } catch (_) {
      $("signin-error").textContent = "The gateway is not reachable. Try again in a moment.";
      return;
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      $("signin-error").textContent = body.detail || "Sign-in failed.";
      return;
    }
    state.token = body.token;
    sessionStorage.setItem(TOKEN, body.token);
    $("password").value = "";
    start();
  });

  $("signout").addEventListener("click", async () => {
    const token = state.token;
    state.token = null;
    sessionStorage.removeItem(TOKEN);
    if (state.ws) state.ws.close();
    await fetch("/api/agents/logout", { method: "POST", headers: { Authorization: "Bearer " + token } })
      .catch(() => {});
    showSignin("You signed out.");
  });

  $("notify").addEventListener("click", async () => {
    if (!("Notification" in window)) { toast("This browser has no desktop notifications."); return; }
    const permission = await Notification.requestPermission();
    $("notify").hidden = permission === "granted";
    if (permission !== "granted") toast("Notifications are blocked; the console will still beep.");
  });

  // -- the socket --------------------------------------------------------------------------

  function start() {
    $("signin").hidden = true;
    $("app").hidden = false;
    $("notify").hidden = !("Notification" in window) || Notification.permission === "granted";
    connect();
  }

  function send(frame) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  function connect() {
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/agent");
    state.ws = ws;
    let refused = false;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: state.token }));
    ws.onmessage = (e) => {
      const frame = JSON.parse(e.data);
      if (frame.type === "error" && frame.code === "unauthorized") refused = true;
      receive(frame);
    };
    ws.onclose = (e) => {
      if (state.ws !== ws) return;
      if (refused || e.code === 4401) {
        sessionStorage.removeItem(TOKEN);
        state.token = null;
        showSignin("Your session ended. Please sign in again.");
        return;
      }
      if (!state.token) return;
      setConnection("Reconnecting…", true);
      setTimeout(connect, state.backoff);
      state.backoff = Math.min(state.backoff * 2, 30000);
    };
  }

  function setConnection(text, down) {
    $("connection").textContent = text;
    $("connection").classList.toggle("down", Boolean(down));
  }

  function receive(frame) {
    switch (frame.type) {
      case "welcome": return welcome(frame);
      case "state": return applyState(frame);
      case "alert": return alert(frame);
      case "assigned": return assigned(frame);
      case "unassigned": return unassigned(frame);
      case "opened": return opened(frame);
      case "event": return event(frame.conversation_id, frame.event);
      case "note": return note(frame.conversation_id, frame.note);
      case "typing":
        if (frame.conversation_id === state.current) {
          $("shopper-typing").textContent = frame.on ? "The shopper is typing…" : "";
        }
        return undefined;
      case "ack": return ack(frame);
      case "error":
        if (frame.client_id) state.pending.delete(frame.client_id);
        return toast(frame.reason, true);
      default: return undefined;
    }
  }

  function welcome(frame) {
    state.me = frame.agent;
    state.backoff = 1000;
    setConnection("");
    $("me").textContent = frame.agent.name;
    $("presence").value = frame.presence === "away" ? "away" : "online";
    const resolution = $("resolution");
    resolution.replaceChildren(...frame.resolutions.map((r) => el("option", { value: r, text: r.replace("_", " ") })));
    const canned = $("canned");
    canned.replaceChildren(el("option", { value: "", text: "Canned responses…" }),
      ...frame.canned.map((c, i) => el("option", { value: String(i), text: c.title })));
    state.canned = frame.canned;
    // After a reconnect: follow the open chats again from the last event we have,
    // and resend what the server never acknowledged.
    for (const [id, view] of state.views) send({ type: "open", conversation_id: id, last_seq: view.lastSeq });
    for (const frame of state.pending.values()) send(frame);
  }

  // -- queue, chats, tickets, agents -----------------------------------------------------------

  function applyState(frame) {
    state.queue = frame.queue;
    state.chats = frame.chats;
    state.tickets = frame.tickets;
    state.mail = frame.mail || [];
    state.agents = frame.agents;
    $("presence").value = frame.presence === "away" ? "away" : "online";
    state.queueTotal = frame.queue_total;
    renderQueue();
    renderChats();
    renderTickets();
    renderMail();
    renderAgents();
    renderActions();
  }

  function renderQueue() {
    $("queue-count").textContent = String(state.queueTotal || 0);
    const now = Date.now() / 1000;
    $("queue").replaceChildren(...state.queue.map((item) => {
      const claim = el("button", { type: "button", className: "primary", text: "Claim" });
      claim.addEventListener("click", () => send({ type: "claim", conversation_id: item.conversation_id }));
      const view = el("button", { type: "button", text: "View" });
      view.addEventListener("click", () => openConversation(item.conversation_id));
      const li = el("li", { "data-conversation": item.conversation_id },
        el("div", { className: "row" }, el("strong", { text: `#${item.position} ${item.shopper || "Shopper"}` }),
          el("span", { className: "meta", text: ago(now - item.queued_at) })),
        el("div", { className: "meta", text: item.reason || "" }),
        el("div", { className: "meta", text: `${item.page_type || "page ?"} · priority ${item.priority} · ${item.trigger}${item.lang && item.lang !== "en" ? ` · ${LANGUAGE_NAMES[item.lang] || item.lang}` : ""}` }),
        el("div", { className: "row" }, view, claim));
      if (item.alerted) li.classList.add("alerted");
      if (!state.knownQueue.has(item.conversation_id)) li.classList.add("new");
      if (item.conversation_id === state.current) li.classList.add("active");
      return li;
    }));
    state.knownQueue = new Set(state.queue.map((q) => q.conversation_id));
  }

  function renderChats() {
    $("chats-count").textContent = String(state.chats.length);
    $("chats").replaceChildren(...state.chats.map((chat) => {
      const open = el("button", { type: "button", text: "Open" });
      open.addEventListener("click", () => openConversation(chat.conversation_id));
      const li = el("li", {}, el("div", { className: "row" }, el("strong", { text: chat.shopper || "Shopper" }), open),
        el("div", { className: "meta", text: chat.reason || "" }));
      if (chat.conversation_id === state.current) li.classList.add("active");
      return li;
    }));
  }

  function renderTickets() {
    $("tickets-count").textContent = String(state.tickets.length);
    $("tickets").replaceChildren(...state.tickets.map((t) => {
      const done = el("button", { type: "button", text: "Done" });
      done.addEventListener("click", () => send({ type: "ticket_done", ticket_id: t.id }));
      const open = el("button", { type: "button", text: "Answer" });
      open.addEventListener("click", () => openConversation(t.conversation_id));
      const li = el("li", { "data-ticket": String(t.id) },
        el("div", { className: "row" }, el("strong", { text: t.email }), el("span", { className: "buttons" }, open, done)),
        el("div", { text: t.message }),
        el("div", { className: "meta", text: new Date(t.created_at * 1000).toLocaleString() }));
      if (t.conversation_id === state.current) li.classList.add("active");
      return li;
    }));
  }

  function renderMail() {
    $("mail-count").textContent = String(state.mail.length);
    $("mail-none").hidden = state.mail.length > 0;
    $("mail").replaceChildren(...state.mail.map((m) => {
      const status = m.status === "failed" ? "failed" : `pending · ${m.attempts} ${m.attempts === 1 ? "try" : "tries"}`;
      const li = el("li", { "data-mail": String(m.id) },
        el("div", { className: "row" }, el("strong", { text: m.to }), el("span", { className: "meta", text: status })),
        el("div", { className: "meta", text: m.subject }));
      if (m.error) li.append(el("div", { className: "meta", text: m.error }));
      if (m.status === "failed") li.classList.add("failed");
      return li;
    }));
  }

  function ticketOf(conversationId) {
    return state.tickets.find((t) => t.conversation_id === conversationId) || null;
  }

  function renderAgents() {
    $("agents").replaceChildren(...state.agents.map((a) => el("li", {},
      el("span", {}, el("span", { className: "dot " + a.presence }), a.name + (state.me && a.id === state.me.id ? " (you)" : "")),
      el("span", { className: "meta", text: ` ${a.presence} · ${a.load}/${a.capacity}` }))));
    const transfer = $("transfer-to");
    const others = state.agents.filter((a) => a.presence !== "offline" && (!state.me || a.id !== state.me.id));
    transfer.replaceChildren(el("option", { value: "", text: "Transfer to…" }),
      ...others.map((a) => el("option", { value: a.id, text: `${a.name} (${a.load}/${a.capacity})` })));
  }

  $("presence").addEventListener("change", () => send({ type: "presence", status: $("presence").value }));

  // -- alerts: sound, notification, highlight ---------------------------------------------------

  let audio = null;
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.15, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.4);
    } catch (_) { /* no audio: the visual alert remains */ }
  }

  function alert(frame) {
    beep();
    announce(frame.text);
    toast(frame.text);
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      const n = new Notification("shopchat", { body: frame.text, tag: "shopchat-" + frame.handoff_id });
      n.onclick = () => { window.focus(); if (frame.conversation_id) openConversation(frame.conversation_id); };
    }
  }

  // -- a conversation ---------------------------------------------------------------------------

  function openConversation(conversationId) {
    if (state.current && state.current !== conversationId) {
      const previous = state.views.get(state.current);
      if (previous && !isMine(state.current)) {
        send({ type: "unwatch", conversation_id: state.current });
        state.views.delete(state.current);
      }
    }
    state.current = conversationId;
    const view = state.views.get(conversationId);
    $("empty").hidden = true;
    $("view").hidden = false;
    $("shopper-typing").textContent = "";
    if (view) {
      renderConversation(conversationId);
    } else {
      state.views.set(conversationId, { lastSeq: 0, events: [], notes: [], context: null, handoff: null });
      $("transcript").replaceChildren();
      $("notes").replaceChildren();
      send({ type: "open", conversation_id: conversationId, last_seq: 0 });
    }
    renderQueue();
    renderChats();
    renderTickets();
    renderActions();
  }

  function isMine(conversationId) {
    return state.chats.some((c) => c.conversation_id === conversationId);
  }

  function opened(frame) {
    const view = state.views.get(frame.conversation_id) ||
      { lastSeq: 0, events: [], notes: [], context: null, handoff: null };
    view.context = frame.context;
    view.handoff = frame.handoff;
    view.mode = frame.mode;
    view.notes = frame.notes;
    state.views.set(frame.conversation_id, view);
    if (frame.conversation_id === state.current) renderConversation(frame.conversation_id);
  }

  function assigned(frame) {
    const view = state.views.get(frame.conversation_id);
    if (view) { view.context = frame.context; view.handoff = frame.handoff; }
    announce("A chat was assigned to you.");
    toast("New chat assigned: " + ((frame.context && frame.context.shopper && frame.context.shopper.name) || "shopper"));
    beep();
    openConversation(frame.conversation_id);
  }

  function unassigned(frame) {
    const reasons = { taken: "Another agent took this chat.", transferred: "Chat transferred.",
      closed: "Chat closed.", returned: "Chat handed back to the bot." };
    toast(reasons[frame.reason] || "Chat is no longer yours.");
    if (frame.reason === "taken" || frame.reason === "transferred") {
      state.views.delete(frame.conversation_id);
      if (state.current === frame.conversation_id) {
        state.current = null;
        $("view").hidden = true;
        $("empty").hidden = false;
      }
    }
    renderActions();
  }

  function event(conversationId, ev) {
    const view = state.views.get(conversationId);
    if (!view || ev.seq <= view.lastSeq) return;  // each event once, in order
    view.lastSeq = ev.seq;
    view.events.push(ev);
    if (ev.type === "mode") view.mode = ev.mode;
    if (conversationId === state.current) {
      appendEvent(ev);
      renderActions();
    }
    if (ev.type === "message" && ev.author === "shopper" && conversationId !== state.current && isMine(conversationId)) {
      toast("New message from a shopper in another chat.");
    }
  }

  function note(conversationId, n) {
    const view = state.views.get(conversationId);
    if (!view || view.notes.some((x) => x.id === n.id)) return;
    view.notes.push(n);
    if (conversationId === state.current) renderNotes(view);
  }

  function ack(frame) {
    state.pending.delete(frame.client_id);
    const line = document.querySelector(`[data-client-id="${CSS.escape(frame.client_id)}"]`);
    if (line) line.remove();  // the stored event (or note) replaces the pending copy
  }

  function renderConversation(conversationId) {
    const view = state.views.get(conversationId);
    $("transcript").replaceChildren();
    view.events.forEach(appendEvent);
    renderContext(view);
    renderNotes(view);
    const shopper = view.context && view.context.shopper ? view.context.shopper.name : "Shopper";
    $("view-title").textContent = shopper;
  }

  function appendEvent(ev) {
    const list = $("transcript");
    if (ev.type === "message") {
      const who = ev.author === "agent" ? (ev.agent && ev.agent.name) || "Agent"
        : ev.author === "bot" ? "Bot" : ev.author === "shopper" ? "Shopper" : "";
      const li = el("li", { className: ev.author });
      if (who) li.append(el("span", { className: "who", text: who }));
      if (ev.via === "email") li.append(el("span", { className: "via", text: ev.author === "shopper" ? "by email" : "sent by email" }));
      li.append(document.createTextNode(ev.text));
      const reading = understood(ev.seq);
      if (reading) {
        const low = reading.confidence < 0.6;
        li.append(el("span", { className: "badge" + (low ? " low" : ""),
          text: `${reading.intent} ${Math.round(reading.confidence * 100)}%` }));
      }
      list.append(li);
    } else {
      const text = describe(ev);
      if (text) list.append(el("li", { className: "event", text }));
    }
    list.scrollTop = list.scrollHeight;
  }

  function understood(seq) {
    const view = state.views.get(state.current);
    const turns = view && view.context ? view.context.transcript : [];
    const turn = turns.find((t) => t.seq === seq && t.intent);
    return turn ? { intent: turn.intent, confidence: turn.confidence } : null;
  }

  function describe(ev) {
    switch (ev.type) {
      case "handoff": return `Handoff requested (${ev.trigger}): ${ev.reason}`;
      case "offline_form": return "Shopper offered to leave a message";
      case "offline_received": return "Shopper left an offline message";
      case "csat_request": return "Rating requested";
      case "csat_received": return `Shopper rated ${ev.score}/5`;
      default: return null;
    }
  }

  function renderContext(view) {
    const ctx = view.context || {};
    const dl = $("context");
    dl.replaceChildren();
    const add = (label, value) => {
      if (value === undefined || value === null || value === "") return;
      dl.append(el("dt", { text: label }), el("dd", {}, value instanceof Node ? value : String(value)));
    };
    add("Reason", ctx.reason);
    add("Trigger", ctx.trigger);
    if (ctx.shopper) {
      add("Shopper", ctx.shopper.name);
      add("Verified", ctx.shopper.verified ? `yes (customer ${ctx.shopper.customer_id})` : "no");
      add("Email", ctx.shopper.email);
    }
    add("Order", ctx.order_id);
    add("Language", ctx.lang && LANGUAGE_NAMES[ctx.lang] ? `${LANGUAGE_NAMES[ctx.lang]} (${ctx.lang})` : ctx.lang);
    if (ctx.page) {
      add("Page", ctx.page.url ? safeLink(ctx.page.url) : null);
      add("Page type", ctx.page.type);
      add("Page title", ctx.page.title);
    }
    add("Product", ctx.sku);
    if (ctx.cart && ctx.cart.items) {
      const items = ctx.cart.items.map((i) => `${i.qty} × ${i.sku}${i.price != null ? ` (${i.price})` : ""}`).join(", ");
      add("Cart", `${items || "empty"}${ctx.cart.total != null ? ` · total ${ctx.cart.total} ${ctx.cart.currency || ""}` : ""}`);
    }
    for (const [name, value] of Object.entries(ctx.slots || {})) {
      if (["order_id", "email"].includes(name)) continue;
      add(name, typeof value === "object" ? JSON.stringify(value) : value);
    }
    if (ctx.intents_available === false) add("Intents", "Rasa was unreachable when the chat was queued");
  }

  function renderNotes(view) {
    $("notes").replaceChildren(...view.notes.map((n) => el("li", {},
      el("strong", { text: n.agent.name + ": " }), document.createTextNode(n.text))));
  }

  function renderActions() {
    const id = state.current;
    const mine = id && isMine(id);
    const queued = id && state.queue.some((q) => q.conversation_id === id);
    $("claim").hidden = !queued;
    for (const b of ["transfer", "transfer-to", "handback", "close", "resolution"]) $(b).disabled = !mine;
    const ticket = id && !mine && !queued ? ticketOf(id) : null;
    $("reply").disabled = !mine && !queued && !ticket;
    $("reply").placeholder = mine ? "Reply to the shopper (Enter sends, Shift+Enter for a new line)"
      : queued ? "Claim the chat to reply; you can add internal notes now"
      : ticket ? `Answer by email to ${ticket.email} (Enter sends, Shift+Enter for a new line)`
      : "This chat is not yours.";
  }

  // -- acting on the chat -----------------------------------------------------------------------

  $("claim").addEventListener("click", () => send({ type: "claim", conversation_id: state.current }));
  $("transfer").addEventListener("click", () => {
    const to = $("transfer-to").value;
    if (to) send({ type: "transfer", conversation_id: state.current, agent_id: to });
  });
  $("handback").addEventListener("click", () => send({ type: "handback", conversation_id: state.current }));
  $("close").addEventListener("click", () => send({ type: "close", conversation_id: state.current, resolution: $("resolution").value }));

  $("canned").addEventListener("change", () => {
    const item = state.canned[Number($("canned").value)];
    if (item) {
      const reply = $("reply");
      reply.value = reply.value ? reply.value + " " + item.text : item.text;
      reply.focus();
    }
    $("canned").value = "";
  });

  $("as-note").addEventListener("change", () => {
    $("composer").classList.toggle("note", $("as-note").checked);
  });

  function sendTyping(on) {
    if (state.typingOn === on || !state.current || !isMine(state.current)) return;
    state.typingOn = on;
    send({ type: "typing", conversation_id: state.current, on });
  }

  $("reply").addEventListener("input", () => {
    sendTyping(Boolean($("reply").value));
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(() => sendTyping(false), 4000);
  });

  $("reply").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("composer").requestSubmit();
    }
  });

  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("reply").value.trim();
    if (!text || !state.current) return;
    const asNote = $("as-note").checked;
    const ticket = !asNote && !isMine(state.current) ? ticketOf(state.current) : null;
    const frame = ticket ? { type: "ticket_reply", ticket_id: ticket.id, client_id: newId(), text }
      : { type: asNote ? "note" : "message", conversation_id: state.current, client_id: newId(), text };
    state.pending.set(frame.client_id, frame);
    const line = el("li", { className: (asNote ? "event" : "agent") + " pending", "data-client-id": frame.client_id },
      el("span", { className: "who", text: asNote ? "Note (sending…)" : ticket ? "You, by email (sending…)" : "You (sending…)" }), text);
    if (!asNote) $("transcript").append(line); else $("notes").append(line);
    send(frame);
    $("reply").value = "";
    sendTyping(false);
  });

  // Waiting times tick even when nothing else changes.
  setInterval(() => { if (state.me) renderQueue(); }, 5000);

  if (state.token) start(); else showSignin();
})();
