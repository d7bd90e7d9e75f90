/* shopchat widget: one custom element, Shadow DOM, no dependencies.
 * Embed: <script src="https://HOST/widget.js" async></script>
 * Options (data- attributes on the script tag): data-shopchat-url (gateway base URL,
 * default: where the script came from), data-page-type, data-sku, data-title.
 * Text is only ever inserted with textContent. */
(() => {
  "use strict";
  if (customElements.get("shop-chat")) return;
  const script = document.currentScript;
  const base = (script && script.dataset.shopchatUrl) ||
    (script ? new URL(script.src).origin : location.origin);
  const STORE = "shopchat:" + base;

  const css = `
    :host { all: initial; position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
            font: 16px/1.4 system-ui, sans-serif; color: #1b1b1b; }
    button { font: inherit; cursor: pointer; }
    .launcher { border: 0; border-radius: 28px; padding: 12px 20px; background: #1f5f4a; color: #fff; }
    .panel { display: none; flex-direction: column; width: 360px; max-width: calc(100vw - 40px);
             height: 520px; max-height: calc(100vh - 100px); background: #fff; border-radius: 12px;
             box-shadow: 0 8px 30px rgba(0,0,0,.25); overflow: hidden; margin-bottom: 12px; }
    :host([open]) .panel { display: flex; }
    header { background: #1f5f4a; color: #fff; padding: 12px 16px; display: flex;
             justify-content: space-between; align-items: center; }
    header button { background: none; border: 0; color: #fff; font-size: 20px; }
    .status { font-size: 13px; padding: 4px 16px; background: #fff4d6; display: none; }
    .status.on { display: block; }
    .log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px; }
    .msg { max-width: 80%; padding: 8px 12px; border-radius: 12px; white-space: pre-wrap;
           word-wrap: break-word; }
    .bot, .agent { background: #eef2f0; align-self: flex-start; }
    .system { background: #fff4d6; align-self: center; font-size: 14px; }
    .shopper { background: #1f5f4a; color: #fff; align-self: flex-end; }
    .pending { opacity: .6; }
    .buttons { display: flex; flex-wrap: wrap; gap: 6px; }
    .buttons button { border: 1px solid #1f5f4a; background: #fff; color: #1f5f4a;
                      border-radius: 16px; padding: 4px 12px; }
    .typing { font-size: 13px; color: #555; padding: 0 16px 4px; min-height: 18px; }
    .who { display: block; font-size: 12px; color: #555; margin-bottom: 2px; }
    .card { align-self: stretch; border: 1px solid #ccd; border-radius: 10px; padding: 10px;
            display: flex; flex-direction: column; gap: 6px; font-size: 14px; }
    .card input, .card textarea { border: 1px solid #bbb; border-radius: 6px; padding: 6px;
            font: inherit; font-size: 16px; }
    .card button { border: 0; border-radius: 6px; background: #1f5f4a; color: #fff; padding: 6px; }
    .stars { display: flex; gap: 4px; }
    .stars button { flex: 1; }
    .status button { margin-left: 8px; border: 1px solid #8a6d1f; background: #fff;
                     border-radius: 12px; padding: 0 8px; font-size: 13px; }
    form { display: flex; border-top: 1px solid #ddd; }
    input { flex: 1; border: 0; padding: 12px; font-size: 16px; }
    form button { border: 0; background: #1f5f4a; color: #fff; padding: 0 16px; }
    :focus-visible { outline: 3px solid #e8a33d; outline-offset: 2px; }
  `;

  class ShopChat extends HTMLElement {
    connectedCallback() {
      if (this.shadowRoot) return;
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `<style>${css}</style>
        <div class="panel" role="dialog" aria-label="Chat with the shop">
          <header><span>Chat with us</span><button class="close" aria-label="Close chat">×</button></header>
          <div class="status" role="status"></div>
          <div class="log" role="log" aria-live="polite"></div>
          <div class="typing" aria-live="polite"></div>
          <form><input name="text" autocomplete="off" aria-label="Your message" maxlength="4000"
                 placeholder="Type your message…"><button type="submit">Send</button></form>
        </div>
        <button class="launcher" aria-label="Open chat">Chat</button>`;
      this.log = root.querySelector(".log");
      this.statusEl = root.querySelector(".status");
      this.typingEl = root.querySelector(".typing");
      this.input = root.querySelector("input");
      root.querySelector(".launcher").addEventListener("click", () => this.toggle(true));
      root.querySelector(".close").addEventListener("click", () => this.toggle(false));
      root.querySelector("form").addEventListener("submit", (e) => {
        e.preventDefault();
        const text = this.input.value.trim();
        if (text) { this.send(text); this.input.value = ""; }
      });
      this.state = JSON.parse(localStorage.getItem(STORE) || "{}");
      this.outbox = this.state.outbox || [];
      // Highest seq shown in this page: a fresh page replays the whole transcript.
      this.rendered = 0;
      this.cards = {};
      this.backoff = 500;
      if (this.state.open) this.toggle(true);
      this.connect();
    }

    save() {
      this.state.outbox = this.outbox;
      localStorage.setItem(STORE, JSON.stringify(this.state));
    }

    toggle(open) {
      this.toggleAttribute("open", open);
      this.state.open = open;
      this.save();
      if (open) this.input.focus();
    }

    connect() {
      const ws = new WebSocket(base.replace(/^http/, "ws") + "/ws/chat");
      this.ws = ws;
      ws.onopen = () => {
        const page = { url: location.href, title: document.title.slice(0, 200) };
        const d = script ? script.dataset : {};
        if (d.pageType) page.type = d.pageType;
        if (d.sku) page.sku = d.sku;
        const hello = { type: "hello", page };
        if (this.state.conversation_id) {
          Object.assign(hello, { conversation_id: this.state.conversation_id,
            resume_token: this.state.resume_token, last_seq: this.rendered });
        }
        ws.send(JSON.stringify(hello));
      };
      ws.onmessage = (e) => this.receive(JSON.parse(e.data));
      ws.onclose = () => {
        this.joined = false;
        this.setStatus("Reconnecting…");
        setTimeout(() => this.connect(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, 15000);
      };
    }

    receive(frame) {
      if (frame.type === "welcome") {
        this.joined = true;
        this.backoff = 500;
        this.setStatus("");
        if (frame.resume_token) {
          this.state = { ...this.state, conversation_id: frame.conversation_id,
                         resume_token: frame.resume_token, last_seq: 0 };
          this.log.textContent = "";
          this.save();
        }
        this.outbox.forEach((m) => this.ws.send(JSON.stringify(m)));
      } else if (frame.type === "error" && frame.code === "resume_rejected") {
        this.state = { open: this.state.open };
        this.save();
        this.ws.close();
      } else if (frame.type === "error") {
        // A refused frame would be refused again: drop it from the outbox, say why.
        if (frame.client_id && frame.code !== "bot_unavailable") {
          this.outbox = this.outbox.filter((m) => m.client_id !== frame.client_id);
          this.save();
        }
        this.addLine("system", frame.reason);
      } else if (frame.type === "ack") {
        this.outbox = this.outbox.filter((m) => m.client_id !== frame.client_id);
        this.save();
      } else if (frame.type === "typing") {
        const who = frame.author === "agent" ? (this.agentName || "Our team") : "The assistant";
        this.typingEl.textContent = frame.on ? who + " is typing…" : "";
      } else if (frame.type === "queue") {
        const wait = frame.wait_seconds ? `, about ${Math.max(1, Math.round(frame.wait_seconds / 60))} min` : "";
        this.setStatus(`Waiting for a person: you're number ${frame.position}${wait}.`, "Back to the assistant",
          () => this.send(null, null, { type: "leave_queue" }));
      } else if (typeof frame.seq === "number") {
        if (frame.seq <= this.rendered) return;
        this.rendered = frame.seq;
        this.state.last_seq = frame.seq;
        this.save();
        this.event(frame);
      }
    }

    event(frame) {
      if (frame.type === "message") this.render(frame);
      else if (frame.type === "mode") {
        this.agentName = frame.mode === "agent" ? frame.agent.name : null;
        if (frame.mode !== "queued") this.setStatus("");
      } else if (frame.type === "offline_form") this.offlineForm(frame.handoff_id);
      else if (frame.type === "offline_received") this.closeCard("offline:" + frame.handoff_id);
      else if (frame.type === "csat_request") this.csatCard(frame);
      else if (frame.type === "csat_received") this.closeCard("csat:" + frame.handoff_id);
    }

    card(key, title) {
      const el = document.createElement("div");
      el.className = "card";
      const head = document.createElement("strong");
      head.textContent = title;
      el.appendChild(head);
      this.cards[key] = el;
      this.log.appendChild(el);
      this.log.scrollTop = this.log.scrollHeight;
      return el;
    }

    closeCard(key) {
      const el = this.cards[key];
      if (el) el.remove();
      delete this.cards[key];
    }

    offlineForm(handoffId) {
      const el = this.card("offline:" + handoffId, "Leave us a message");
      const form = document.createElement("form");
      form.className = "card";
      const email = document.createElement("input");
      Object.assign(email, { type: "email", required: true, placeholder: "Your email" });
      email.setAttribute("aria-label", "Your email");
      const text = document.createElement("textarea");
      Object.assign(text, { required: true, rows: 3, maxLength: 4000, placeholder: "Your message" });
      text.setAttribute("aria-label", "Your message for the team");
      const submit = document.createElement("button");
      submit.textContent = "Send message";
      form.append(email, text, submit);
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        submit.disabled = true;
        this.send(null, null, { type: "offline_message", email: email.value.trim(), text: text.value });
      });
      el.appendChild(form);
    }

    csatCard(frame) {
      const el = this.card("csat:" + frame.handoff_id, frame.text);
      const stars = document.createElement("div");
      stars.className = "stars";
      const comment = document.createElement("input");
      Object.assign(comment, { placeholder: "Anything to add? (optional)", maxLength: 1000 });
      comment.setAttribute("aria-label", "Comment on your rating");
      for (let score = 1; score <= 5; score++) {
        const b = document.createElement("button");
        b.textContent = String(score);
        b.setAttribute("aria-label", `Rate ${score} out of 5`);
        b.addEventListener("click", () => {
          const rating = { type: "csat", handoff_id: frame.handoff_id, score };
          if (comment.value.trim()) rating.comment = comment.value.trim();
          this.send(null, null, rating);
          stars.querySelectorAll("button").forEach((x) => { x.disabled = true; });
        });
        stars.appendChild(b);
      }
      el.append(stars, comment);
    }

    render(frame) {
      const pending = frame.client_id &&
        this.log.querySelector(`[data-client-id="${CSS.escape(frame.client_id)}"]`);
      if (pending) { pending.classList.remove("pending"); return; }
      const el = this.addLine(frame.author, frame.text,
        frame.author === "agent" && frame.agent ? frame.agent.name : null);
      if (frame.buttons && frame.buttons.length) {
        const row = document.createElement("div");
        row.className = "buttons";
        frame.buttons.forEach((b) => {
          const btn = document.createElement("button");
          btn.textContent = b.title;
          btn.addEventListener("click", () => this.send(b.title, b.payload));
          row.appendChild(btn);
        });
        el.after(row);
      }
    }

    addLine(author, text, who) {
      const el = document.createElement("div");
      el.className = "msg " + (author || "system");
      if (who) {
        const name = document.createElement("span");
        name.className = "who";
        name.textContent = who;
        el.appendChild(name);
      }
      el.appendChild(document.createTextNode(text));
      this.log.appendChild(el);
      this.log.scrollTop = this.log.scrollHeight;
      return el;
    }

    // Every frame with a client_id goes through the outbox: resent after a reconnect until acked.
    send(text, payload, other) {
      const client_id = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now() + Math.random()))
        .replace(/[^A-Za-z0-9_.:-]/g, "");
      const frame = other ? { ...other, client_id } : { type: "message", client_id, text };
      if (payload) frame.payload = payload;
      this.outbox.push(frame);
      this.save();
      if (!other) {
        const el = this.addLine("shopper", text);
        el.dataset.clientId = client_id;
        el.classList.add("pending");
      }
      if (this.joined && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
    }

    setStatus(text, action, onAction) {
      this.statusEl.textContent = text;
      if (action) {
        const b = document.createElement("button");
        b.textContent = action;
        b.addEventListener("click", onAction);
        this.statusEl.appendChild(b);
      }
      this.statusEl.classList.toggle("on", Boolean(text));
    }
  }

  customElements.define("shop-chat", ShopChat);
  const mount = () => document.body.appendChild(document.createElement("shop-chat"));
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
