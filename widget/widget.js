/* shopchat widget: one custom element, Shadow DOM, no dependencies.
 *
 * Embed:
 *   <script src="https://HOST/widget.js" async
 *           data-page-type="product" data-sku="TENT-2P"></script>
 * Optional data- attributes: shopchat-url (gateway, default: where the script came
 * from), page-type, sku, cart (JSON), identity (a token signed by the shop's backend),
 * color, position (right|left), greeting, lang and default-lang (en, de, fr, es).
 * Language: the shopper's own choice (the menu in the chat's header), else data-lang or
 * config lang, else the page's <html lang>, else the browser's languages, else
 * data-default-lang or config defaultLang, else English. English is built in; another
 * language's strings come from the gateway (/widget/i18n/<lang>.json) when chosen.
 * Or, before the script, the queue API (calls made before it loads are kept):
 *   window.shopchat = window.shopchat || function () { (shopchat.q = shopchat.q || []).push(arguments); };
 *   shopchat("config", { color: "#1f5f4a", position: "left", greeting: "Hi!",
 *                        strings: { title: "Help" }, proactive: [{ pageType: "checkout", idleSeconds: 30,
 *                        text: "Need a hand with checkout?" }] });
 *   shopchat("page", { type: "cart", cart: { items: [...], total: 99, currency: "EUR" } });
 *   shopchat("identity", token); shopchat("open"); shopchat("close");
 * Text from the network is only ever inserted with textContent; links are made only
 * for http(s) URLs.
 * Shop pages it must survive: a strict CSP (styles are a constructed stylesheet, no
 * inline <style>), blocked site storage (memory instead), and a transform, filter,
 * will-change or contain on <body> (the chat sits in the top layer, not under it). */
(() => {
  "use strict";
  if (customElements.get("shop-chat")) return;
  const script = document.currentScript;
  const data = script ? script.dataset : {};
  const base = (data.shopchatUrl || (script ? new URL(script.src).origin : location.origin))
    .replace(/\/$/, "");
  const STORE = "shopchat:" + base;
  const SESSION = "shopchat-session:" + base;

  /* Where the browser blocks site storage (privacy settings, some embedded frames) every
     use of localStorage throws: the chat then keeps its state in memory and still works,
     it just starts afresh on the next page. */
  function storage(name) {
    try {
      const s = window[name];
      s.getItem(STORE);
      return s;
    } catch (_) {
      const m = new Map();
      return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, String(v)) };
    }
  }

  const STRINGS = {
    title: "Chat with us",
    launcher: "Chat",
    open: "Open chat",
    openUnread: "Open chat ({count} unread)",
    close: "Close chat",
    placeholder: "Type your message…",
    send: "Send",
    reconnecting: "Reconnecting… your messages will be sent when we're back.",
    botTyping: "The assistant is typing…",
    agentTyping: "{name} is typing…",
    waiting: "Waiting for a person: you're number {position}",
    waitMinutes: ", about {minutes} min",
    leaveQueue: "Back to the assistant",
    offlineTitle: "Leave us a message",
    email: "Your email",
    message: "Your message",
    sendMessage: "Send message",
    rate: "Rate {score} out of 5",
    comment: "Anything to add? (optional)",
    dismiss: "Dismiss",
    readMore: "Read more",
    byBot: "Our assistant answers right away",
    byPerson: "A person from our team will answer shortly",
    byPersonIn: "A person from our team will answer in about {minutes} min",
    byAgent: "{name} from our team is answering",
    byEmail: "Our assistant is here; our team replies by email",
    transcriptTitle: "Want a copy of this conversation by email?",
    transcriptButton: "Email me a copy",
    transcriptFailed: "We couldn't send it just now. Please try again later.",
    language: "Language",
  };

  /* The languages the chat speaks, each named in itself (the language menu). */
  const LANGUAGES = { en: "English", de: "Deutsch", fr: "Français", es: "Español" };

  /* The first supported language among the candidates ("de-AT" counts as "de"). */
  function pickLanguage(...candidates) {
    for (const candidate of candidates) {
      const primary = String(candidate || "").toLowerCase().split(/[-_]/)[0];
      if (Object.hasOwn(LANGUAGES, primary)) return primary;
    }
    return null;
  }

  const css = `
    /* !important on the host: a shop's global rules (even "* { all: unset !important }")
       reach the element itself, and only important :host rules win over them. */
    :host { all: initial !important; position: fixed !important; top: auto !important;
            bottom: 20px !important; right: 20px !important; left: auto !important;
            z-index: 2147483000 !important; display: flex !important;
            flex-direction: column !important; align-items: flex-end !important;
            font: 16px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif !important;
            color: #1b1b1b !important; visibility: visible !important; opacity: 1 !important;
            transform: none !important; pointer-events: auto !important;
            width: auto !important; height: auto !important; margin: 0 !important;
            padding: 0 !important; border: 0 !important; background: none !important;
            --accent: #1f5f4a; }
    :host([position="left"]) { left: 20px !important; right: auto !important;
                               align-items: flex-start !important; }
    * { box-sizing: border-box; }
    button { font: inherit; cursor: pointer; }
    .launcher { position: relative; border: 0; border-radius: 28px; padding: 12px 20px;
                background: var(--accent); color: #fff; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
    .badge { position: absolute; top: -6px; right: -6px; min-width: 22px; height: 22px;
             border-radius: 11px; background: #b3261e; color: #fff; font-size: 13px;
             line-height: 22px; text-align: center; padding: 0 6px; }
    .badge[hidden], .bubble[hidden] { display: none; }
    .bubble { max-width: 280px; background: #fff; border-radius: 12px; padding: 10px 34px 10px 12px;
              margin-bottom: 10px; box-shadow: 0 4px 18px rgba(0,0,0,.2); position: relative;
              font-size: 15px; cursor: pointer; }
    .bubble button { position: absolute; top: 4px; right: 4px; border: 0; background: none;
                     font-size: 18px; color: #555; padding: 2px 8px; }
    .panel { display: none; flex-direction: column; width: 370px; max-width: calc(100vw - 40px);
             height: 540px; max-height: calc(100vh - 100px); background: #fff; border-radius: 12px;
             box-shadow: 0 8px 30px rgba(0,0,0,.25); overflow: hidden; margin-bottom: 12px; }
    :host([open]) .panel { display: flex; }
    :host([open]) .bubble { display: none; }
    .head { background: var(--accent); color: #fff; padding: 12px 16px; display: flex;
             justify-content: space-between; align-items: center; font-weight: 600; }
    .head select { margin-left: auto; margin-right: 4px; font: inherit; font-size: 13px;
                   color: #fff; background: transparent; border: 1px solid rgba(255,255,255,.7);
                   border-radius: 6px; padding: 2px 4px; }
    .head select option { color: #1b1b1b; background: #fff; }
    .head button { background: none; border: 0; color: #fff; font-size: 22px; line-height: 1;
                    padding: 2px 8px; }
    .sub { display: block; font-size: 13px; font-weight: 400; }
    .status { font-size: 14px; padding: 6px 16px; background: #fff4d6; color: #3d3000; display: none; }
    .status.on { display: block; }
    .status button { margin-left: 8px; border: 1px solid #8a6d1f; background: #fff; color: #3d3000;
                     border-radius: 12px; padding: 0 8px; font-size: 13px; }
    .log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px; }
    .msg { max-width: 85%; padding: 8px 12px; border-radius: 12px; white-space: pre-wrap;
           overflow-wrap: anywhere; }
    .msg a { color: inherit; text-decoration: underline; }
    .bot, .agent { background: #eef2f0; align-self: flex-start; }
    .agent { border-left: 3px solid var(--accent); }
    .system { background: #fff4d6; color: #3d3000; align-self: center; font-size: 14px; text-align: center; }
    .shopper { background: var(--accent); color: #fff; align-self: flex-end; }
    .pending { opacity: .6; }
    .who { display: flex; align-items: center; gap: 6px; font-size: 12px; color: #4a4a4a;
           margin-bottom: 2px; font-weight: 600; }
    .av { width: 22px; height: 22px; border-radius: 50%; background: var(--accent); color: #fff;
          font-size: 10px; display: inline-flex; align-items: center; justify-content: center; }
    .msg strong { display: block; margin-bottom: 2px; }
    .more { display: block; margin-top: 6px; font-weight: 600; }
    .msg[data-time]::after { content: attr(data-time); display: block; font-size: 11px;
                             opacity: .75; text-align: right; margin-top: 2px; }
    .buttons { display: flex; flex-wrap: wrap; gap: 6px; }
    .buttons button { border: 1px solid var(--accent); background: #fff; color: var(--accent);
                      border-radius: 16px; padding: 4px 12px; }
    .card { align-self: stretch; border: 1px solid #c9ccd1; border-radius: 10px; padding: 10px;
            display: flex; flex-direction: column; gap: 6px; font-size: 14px; }
    .card input, .card textarea { border: 1px solid #8c8f94; border-radius: 6px; padding: 6px;
            font: inherit; font-size: 16px; }
    .card button { border: 0; border-radius: 6px; background: var(--accent); color: #fff; padding: 6px; }
    .stars { display: flex; gap: 4px; }
    .stars button { flex: 1; }
    .typing { font-size: 13px; color: #4a4a4a; padding: 0 16px 4px; min-height: 18px; }
    form.compose { display: flex; border-top: 1px solid #ddd; }
    form.compose input { flex: 1; border: 0; padding: 12px; font-size: 16px; min-width: 0; }
    form.compose button { border: 0; background: var(--accent); color: #fff; padding: 0 16px; }
    :focus-visible { outline: 3px solid #e8a33d; outline-offset: 2px; }
    /* The compose row touches the panel's clipped edges: its rings go inside. */
    form.compose :focus-visible { outline-offset: -3px; }
    .panel, .bubble { transition: opacity .15s ease; }
    @media (prefers-reduced-motion: reduce) { .panel, .bubble { transition: none; } }
    @media (max-width: 480px), (pointer: coarse) {
      button { min-width: 44px; min-height: 44px; }
    }
    @media (max-width: 480px) {
      :host([open]) { inset: 0 !important; }
      :host([open]) .panel { position: fixed; inset: 0; width: 100vw; max-width: none;
                             height: 100dvh; max-height: none; border-radius: 0; margin: 0; }
      :host([open]) .launcher { display: none; }
    }
  `;

  /* A constructed stylesheet is not inline style: a shop's CSP with style-src 'self'
     allows it, where it would block a <style> element. */
  let sheet = null;
  try {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
  } catch (_) {
    sheet = null;
  }

  const URL_RE = /\bhttps?:\/\/[^\s<>"']+/g;

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
  }

  function newId() {
    const raw = crypto.randomUUID ? crypto.randomUUID() : Date.now() + "-" + Math.random();
    return String(raw).replace(/[^A-Za-z0-9_.:-]/g, "");
  }

  /* A link that opens in a new tab, for http(s) URLs only; otherwise null. */
  function link(raw, text) {
    let url = null;
    try { url = new URL(raw); } catch (_) { url = null; }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) return null;
    const a = document.createElement("a");
    a.href = url.href;
    a.textContent = text;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  /* Text with http(s) links made clickable; everything else stays text. */
  function richText(parent, text) {
    let last = 0;
    for (const match of text.matchAll(URL_RE)) {
      const raw = match[0].replace(/[.,;:!?)]+$/, "");
      parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      parent.appendChild(link(raw, raw) || document.createTextNode(raw));
      last = match.index + raw.length;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  /* A message's time, in the shopper's clock and locale: drawn by CSS from data-time, so
     the message's text stays what was said; the full date is its tooltip. */
  function stamp(el, ts) {
    if (typeof ts !== "number") return;
    const at = new Date(ts * 1000);
    el.dataset.time = at.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
    el.title = at.toLocaleString();
  }

  /* "Ola Berg" → "OB": the agent's initials for the avatar. */
  function initials(name) {
    return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => [...w][0]).join("").toUpperCase();
  }

  function parseJson(text) {
    try { return text ? JSON.parse(text) : null; } catch (_) { return null; }
  }

  class ShopChat extends HTMLElement {
    constructor() {
      super();
      this.strings = { ...STRINGS };
      // The shop's own wording (config strings), kept over every language's catalog.
      this.shopStrings = {};
      this.options = { proactive: [] };
      // Not this.lang: on an element that is the lang attribute, which a constructor may not set.
      this.language = "en";
      this.page = { url: location.href, title: document.title.slice(0, 200) };
      if (data.pageType) this.page.type = data.pageType;
      if (data.sku) this.page.sku = data.sku;
      const cart = parseJson(data.cart);
      if (cart) this.page.cart = cart;
      this.identity = data.identity || null;
    }

    connectedCallback() {
      if (this.popover && !this.matches(":popover-open")) this.showPopover();
      if (this.shadowRoot) return;
      const root = this.attachShadow({ mode: "open" });
      root.innerHTML = `<div class="bubble" hidden role="status"><span class="bubble-text"></span>
          <button class="dismiss" type="button">×</button></div>
        <div class="panel" role="dialog" aria-modal="false">
          <div class="head"><div><span class="title"></span><span class="sub"></span></div>
            <select class="lang"></select>
            <button class="close" type="button">×</button></div>
          <div class="status" role="status"></div>
          <div class="log" role="log" aria-live="polite" aria-relevant="additions"></div>
          <div class="typing" aria-live="polite"></div>
          <form class="compose"><input name="text" autocomplete="off" maxlength="4000" enterkeyhint="send">
            <button type="submit"></button></form>
        </div>
        <button class="launcher" type="button" aria-expanded="false"><span class="label"></span>
          <span class="badge" hidden></span></button>`;
      if (sheet) root.adoptedStyleSheets = [sheet];
      else root.prepend(Object.assign(document.createElement("style"), { textContent: css }));
      const $ = (sel) => root.querySelector(sel);
      this.panel = $(".panel");
      this.log = $(".log");
      this.statusEl = $(".status");
      this.typingEl = $(".typing");
      this.input = $("form.compose input");
      this.launcher = $(".launcher");
      this.badge = $(".badge");
      this.bubble = $(".bubble");
      this.launcher.addEventListener("click", () => this.toggle(!this.hasAttribute("open"), true));
      $(".close").addEventListener("click", () => this.toggle(false, true));
      this.panel.addEventListener("keydown", (e) => {
        if (e.key === "Escape") this.toggle(false, true);
      });
      $("form.compose").addEventListener("submit", (e) => {
        e.preventDefault();
        const text = this.input.value.trim();
        if (text) { this.send(text); this.input.value = ""; this.sendTyping(false); }
      });
      this.input.addEventListener("input", () => this.sendTyping(Boolean(this.input.value)));
      this.bubble.addEventListener("click", (e) => {
        if (e.target.closest("button")) return;
        this.hideBubble();
        this.toggle(true, true);
      });
      $(".dismiss").addEventListener("click", () => this.hideBubble());
      this.langMenu = $("select.lang");
      for (const [code, name] of Object.entries(LANGUAGES)) {
        this.langMenu.append(Object.assign(document.createElement("option"),
                                           { value: code, textContent: name, lang: code }));
      }
      this.langMenu.addEventListener("change", () => this.setLanguage(this.langMenu.value, true));
      this.applyOptions({ color: data.color, position: data.position, greeting: data.greeting });
      this.setWho("byBot");

      this.local = storage("localStorage");
      this.session = storage("sessionStorage");
      this.state = parseJson(this.local.getItem(STORE)) || {};
      this.setLanguage(this.state.lang || pickLanguage(
        this.options.lang, data.lang, document.documentElement.lang,
        ...(navigator.languages || [navigator.language]),
        this.options.defaultLang, data.defaultLang) || "en", false);
      this.outbox = this.state.outbox || [];
      this.unread = 0;
      // Highest seq shown in this page: a fresh page replays the whole transcript.
      this.rendered = 0;
      this.cards = {};
      this.backoff = 500;
      if (this.openOnStart ?? this.state.open) this.toggle(true, false);
      this.connect();
      this.startProactive();
    }

    // -- configuration (data attributes and window.shopchat) -----------------------

    command(name, arg) {
      if (name === "config") this.applyOptions(arg || {});
      else if (name === "page") this.setPage(arg || {});
      else if (name === "identity") this.setIdentity(typeof arg === "string" ? arg : null);
      else if (name === "open" || name === "close") this.openOrClose(name === "open");
    }

    // Queued before the script ran, the element is not built yet: it opens once it is.
    openOrClose(open) {
      if (this.shadowRoot) this.toggle(open, false);
      else this.openOnStart = open;
    }

    // A token signed by the shop's backend; the gateway checks the signature (never the widget).
    setIdentity(token) {
      this.identity = token;
      if (token && this.joined && this.ws.readyState === WebSocket.OPEN) {
        this.ws.send(JSON.stringify({ type: "identity", token }));
      }
    }

    applyOptions(options) {
      if (options.color && /^#[0-9a-fA-F]{3,8}$/.test(options.color)) {
        // Custom properties are not reset by "all: unset", so the shop's colour survives.
        this.style.setProperty("--accent", options.color);
      }
      if (options.position === "left" || options.position === "right") {
        this.setAttribute("position", options.position);
      }
      if (options.greeting) this.options.greeting = String(options.greeting);
      if (options.strings) {
        Object.assign(this.shopStrings, options.strings);
        Object.assign(this.strings, options.strings);
      }
      if (options.defaultLang) this.options.defaultLang = options.defaultLang;
      if (options.lang) {
        this.options.lang = options.lang;
        // The shop named the language: it wins over the page's, not over the shopper's own.
        if (this.state && !this.state.lang && pickLanguage(options.lang)) {
          this.setLanguage(pickLanguage(options.lang), false);
        }
      }
      if (Array.isArray(options.proactive)) this.options.proactive = options.proactive;
      if (this.shadowRoot) this.renderStrings();
    }

    /* Speak ``lang`` from now on: its strings (fetched from the gateway once), the
       panel's lang attribute, and the conversation's language at the gateway (which
       the bot and the agents go by). ``byUser``: the shopper chose it in the menu,
       and it stays their choice on every page. */
    async setLanguage(lang, byUser) {
      if (!Object.hasOwn(LANGUAGES, lang)) return;
      this.language = lang;
      this.langMenu.value = lang;
      if (byUser) { this.state.lang = lang; this.save(); }
      let catalog = {};
      if (lang !== "en") {
        try {
          const response = await fetch(`${base}/widget/i18n/${lang}.json`);
          if (response.ok) catalog = await response.json();
        } catch (_) { /* unreachable: English until the next page */ }
      }
      if (this.language !== lang) return;  // another choice came while this one loaded
      this.strings = { ...STRINGS, ...catalog, ...this.shopStrings };
      this.panel.setAttribute("lang", lang);
      this.renderStrings();
      this.setWho(...(this.whoSaid || ["byBot"]));
      if (this.joined) this.ws.send(JSON.stringify({ type: "language", lang }));
    }

    renderStrings() {
      const root = this.shadowRoot;
      const s = this.strings;
      root.querySelector("select.lang").setAttribute("aria-label", s.language);
      root.querySelector(".title").textContent = s.title;
      root.querySelector(".panel").setAttribute("aria-label", s.title);
      root.querySelector(".close").setAttribute("aria-label", s.close);
      root.querySelector(".launcher .label").textContent = s.launcher;
      this.labelLauncher();
      this.input.placeholder = s.placeholder;
      this.input.setAttribute("aria-label", s.placeholder);
      root.querySelector("form.compose button").textContent = s.send;
      root.querySelector(".dismiss").setAttribute("aria-label", s.dismiss);
    }

    setPage(page) {
      const next = { ...this.page };
      for (const key of ["type", "sku", "title", "url", "cart"]) {
        if (page[key] !== undefined) next[key] = page[key];
      }
      this.page = next;
      if (this.joined) this.ws.send(JSON.stringify({ type: "page", page: this.page }));
    }

    // -- panel, badge, proactive bubble ---------------------------------------------

    toggle(open, byUser) {
      this.toggleAttribute("open", open);
      this.launcher.setAttribute("aria-expanded", String(open));
      this.state.open = open;
      if (open) this.state.seen = this.rendered;
      this.save();
      if (open) {
        this.showUnread(0);
        this.hideBubble();
        // Focus moves only when the shopper asked for the chat, never on a page load.
        if (byUser) this.input.focus();
        this.log.scrollTop = this.log.scrollHeight;
      } else {
        this.labelLauncher();
        if (byUser) this.launcher.focus();
      }
    }

    // Messages (the bot's, an agent's, a shop's order update) that came while the chat
    // was closed or the shopper away: on the badge, and in the launcher's name for
    // screen readers, which do not read the badge.
    showUnread(count) {
      this.unread = count;
      this.badge.textContent = String(count);
      this.badge.hidden = count === 0;
      this.labelLauncher();
    }

    labelLauncher() {
      const s = this.strings;
      const label = this.hasAttribute("open") ? s.close
        : this.unread ? fill(s.openUnread, { count: this.unread }) : s.open;
      this.launcher.setAttribute("aria-label", label);
    }

    startProactive() {
      const shown = this.session.getItem(SESSION + ":prompted");
      if (shown || this.state.conversation_id) return;
      const started = Date.now();
      let lastActivity = Date.now();
      const bump = () => { lastActivity = Date.now(); };
      ["mousemove", "keydown", "scroll", "touchstart"].forEach((e) =>
        addEventListener(e, bump, { passive: true }));
      const cartValue = () => Number((this.page.cart && this.page.cart.total) || 0);
      this.proactiveTimer = setInterval(() => {
        if (this.hasAttribute("open")) return;
        const now = Date.now();
        const rule = this.options.proactive.find((r) =>
          (!r.pageType || r.pageType === this.page.type) &&
          (!r.afterSeconds || now - started >= r.afterSeconds * 1000) &&
          (!r.idleSeconds || now - lastActivity >= r.idleSeconds * 1000) &&
          (!r.minCartValue || cartValue() >= r.minCartValue));
        if (rule && rule.text) {
          clearInterval(this.proactiveTimer);
          this.session.setItem(SESSION + ":prompted", "1");
          this.shadowRoot.querySelector(".bubble-text").textContent = String(rule.text);
          this.bubble.hidden = false;
        }
      }, 1000);
    }

    hideBubble() { this.bubble.hidden = true; }

    // -- connection -----------------------------------------------------------------

    save() {
      this.state.outbox = this.outbox;
      try {
        this.local.setItem(STORE, JSON.stringify(this.state));
      } catch (_) { /* storage full: this page still has the state */ }
    }

    connect() {
      const ws = new WebSocket(base.replace(/^http/, "ws") + "/ws/chat");
      this.ws = ws;
      ws.onopen = () => {
        const hello = { type: "hello", page: this.page, lang: this.language };
        if (this.identity) hello.identity = this.identity;
        // The page may pass a new identity or page before the welcome: sent on welcome.
        this.announced = { page: this.page, identity: this.identity };
        if (this.state.conversation_id) {
          Object.assign(hello, { conversation_id: this.state.conversation_id,
            resume_token: this.state.resume_token, last_seq: this.rendered });
        }
        ws.send(JSON.stringify(hello));
      };
      ws.onmessage = (e) => this.receive(JSON.parse(e.data));
      ws.onclose = () => {
        this.joined = false;
        this.setStatus(this.strings.reconnecting);
        this.classList.add("reconnecting");
        setTimeout(() => this.connect(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, 15000);
      };
    }

    receive(frame) {
      if (frame.type === "welcome") {
        this.joined = true;
        this.backoff = 500;
        this.classList.remove("reconnecting");
        this.setStatus("");
        if (frame.resume_token) {
          this.state = { ...this.state, conversation_id: frame.conversation_id,
                         resume_token: frame.resume_token, last_seq: 0, seen: 0 };
          this.log.textContent = "";
          this.rendered = 0;
          this.save();
        }
        if (frame.last_seq === 0 && this.options.greeting && !this.log.childElementCount) {
          this.addLine("bot", this.options.greeting);
        }
        if (this.identity && this.identity !== this.announced.identity) {
          this.ws.send(JSON.stringify({ type: "identity", token: this.identity }));
        }
        if (this.page !== this.announced.page) {
          this.ws.send(JSON.stringify({ type: "page", page: this.page }));
        }
        this.outbox.forEach((m) => this.ws.send(JSON.stringify(m)));
      } else if (frame.type === "error" && frame.code === "resume_rejected") {
        this.state = { open: this.state.open };
        this.outbox = [];
        this.save();
        this.ws.close();
      } else if (frame.type === "error") {
        // A refused frame would be refused again: drop it from the outbox, say why.
        if (frame.client_id && frame.code !== "bot_unavailable") {
          this.outbox = this.outbox.filter((m) => m.client_id !== frame.client_id);
          this.save();
          const el = this.pendingLine(frame.client_id);
          if (el) el.classList.remove("pending");
        }
        this.addLine("system", frame.reason);
      } else if (frame.type === "ack") {
        this.outbox = this.outbox.filter((m) => m.client_id !== frame.client_id);
        this.save();
      } else if (frame.type === "typing") {
        const text = frame.author === "agent"
          ? fill(this.strings.agentTyping, { name: this.agentName || "" })
          : this.strings.botTyping;
        this.typingEl.textContent = frame.on ? text : "";
      } else if (frame.type === "queue") {
        const minutes = frame.wait_seconds ? Math.max(1, Math.round(frame.wait_seconds / 60)) : 0;
        const text = fill(this.strings.waiting, { position: frame.position }) +
          (minutes ? fill(this.strings.waitMinutes, { minutes }) : "") + ".";
        this.setStatus(text, this.strings.leaveQueue,
          () => this.send(null, null, { type: "leave_queue" }));
        this.setWho(minutes ? "byPersonIn" : "byPerson", { minutes });
      } else if (typeof frame.seq === "number") {
        if (frame.seq <= this.rendered) return;
        this.rendered = frame.seq;
        this.state.last_seq = frame.seq;
        if (this.hasAttribute("open")) this.state.seen = frame.seq;
        this.save();
        this.event(frame);
      }
    }

    event(frame) {
      if (frame.type === "message") {
        this.render(frame);
        if (frame.transcript) this.closeCard("transcript");
        // A new page replays the transcript: only what came after the shopper last had
        // the chat open is unread.
        if (frame.author !== "shopper" && frame.seq > (this.state.seen || 0)) {
          this.showUnread(this.unread + 1);
        }
      } else if (frame.type === "mode") {
        this.agentName = frame.mode === "agent" && frame.agent ? frame.agent.name : null;
        if (frame.mode !== "queued") this.setStatus("");
        this.setWho(this.agentName ? "byAgent" : frame.mode === "queued" ? "byPerson" : "byBot",
                    { name: this.agentName });
      } else if (frame.type === "offline_form") {
        this.offlineForm(frame.handoff_id);
        this.setWho("byEmail");
      }
      else if (frame.type === "offline_received") {
        this.closeCard("offline:" + frame.handoff_id);
        this.transcriptCard();
      } else if (frame.type === "csat_request") {
        this.csatCard(frame);
        this.transcriptCard();
      }
      else if (frame.type === "csat_received") this.closeCard("csat:" + frame.handoff_id);
    }

    // -- rendering --------------------------------------------------------------------

    pendingLine(clientId) {
      return this.log.querySelector(`[data-client-id="${CSS.escape(clientId)}"]`);
    }

    render(frame) {
      const pending = frame.client_id && this.pendingLine(frame.client_id);
      if (pending) {
        this.keepEnd(() => { pending.classList.remove("pending"); stamp(pending, frame.ts); });
        return;
      }
      const who = frame.author === "agent" && frame.agent ? frame.agent.name : null;
      const el = this.addLine(frame.author, frame.text, who);
      const art = frame.card;
      if (art && art.title) {
        // A card: the page's title (a help article, a product), the answer, a link to it.
        const title = document.createElement("strong");
        title.textContent = art.title;
        el.prepend(title);
        const more = art.url && link(art.url, this.strings.readMore);
        if (more) {
          more.className = "more";
          more.setAttribute("aria-label", this.strings.readMore + ": " + art.title);
          el.appendChild(more);
        }
      }
      stamp(el, frame.ts);
      if (frame.buttons && frame.buttons.length) {
        const row = document.createElement("div");
        row.className = "buttons";
        frame.buttons.forEach((b) => {
          const btn = document.createElement("button");
          btn.type = "button";
          btn.textContent = b.title;
          btn.addEventListener("click", () => this.send(b.title, b.payload));
          row.appendChild(btn);
        });
        el.after(row);
      }
      this.log.scrollTop = this.log.scrollHeight;
    }

    addLine(author, text, who) {
      const el = document.createElement("div");
      el.className = "msg " + (["bot", "agent", "shopper"].includes(author) ? author : "system");
      if (who) {
        const name = document.createElement("span");
        name.className = "who";
        const av = document.createElement("span");
        av.className = "av";
        av.setAttribute("aria-hidden", "true");
        av.textContent = initials(who);
        name.append(av, who);
        el.appendChild(name);
      }
      if (author === "shopper") el.appendChild(document.createTextNode(text));
      else richText(el, String(text));
      this.log.appendChild(el);
      this.log.scrollTop = this.log.scrollHeight;
      return el;
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
      const s = this.strings;
      const el = this.card("offline:" + handoffId, s.offlineTitle);
      const form = document.createElement("form");
      form.className = "card";
      const email = document.createElement("input");
      Object.assign(email, { type: "email", required: true, placeholder: s.email, autocomplete: "email" });
      email.setAttribute("aria-label", s.email);
      const text = document.createElement("textarea");
      Object.assign(text, { required: true, rows: 3, maxLength: 4000, placeholder: s.message });
      text.setAttribute("aria-label", s.message);
      const submit = document.createElement("button");
      submit.textContent = s.sendMessage;
      form.append(email, text, submit);
      form.addEventListener("submit", (e) => {
        e.preventDefault();
        submit.disabled = true;
        this.send(null, null, { type: "offline_message", email: email.value.trim(), text: text.value });
      });
      el.appendChild(form);
    }

    csatCard(frame) {
      const s = this.strings;
      const el = this.card("csat:" + frame.handoff_id, frame.text);
      const stars = document.createElement("div");
      stars.className = "stars";
      const comment = document.createElement("input");
      Object.assign(comment, { placeholder: s.comment, maxLength: 1000 });
      comment.setAttribute("aria-label", s.comment);
      for (let score = 1; score <= 5; score++) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = String(score);
        b.setAttribute("aria-label", fill(s.rate, { score }));
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

    // After a chat ends: a copy by email, to the address the conversation already has
    // (the one left with a message, or the signed-in customer's); the server decides.
    transcriptCard() {
      if (this.cards.transcript) return;
      const s = this.strings;
      const el = this.card("transcript", s.transcriptTitle);
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = s.transcriptButton;
      const note = document.createElement("span");
      note.setAttribute("role", "status");
      button.addEventListener("click", async () => {
        button.disabled = true;
        note.textContent = "";
        let response = null;
        let body = {};
        try {
          response = await fetch(base + "/api/chat/transcript", {
            method: "POST", headers: { "Content-Type": "application/json" },
            body: JSON.stringify({ conversation_id: this.state.conversation_id,
                                   resume_token: this.state.resume_token }),
          });
          body = await response.json().catch(() => ({}));
        } catch (_) { response = null; }
        if (response && response.ok) return;  // the notice that follows closes the card
        note.textContent = (response && body.detail) || s.transcriptFailed;
        button.disabled = Boolean(response && response.status === 409);
      });
      el.append(button, note);
    }

    // -- sending ----------------------------------------------------------------------

    // Every frame with a client_id goes through the outbox: resent after a reconnect until acked.
    send(text, payload, other) {
      const client_id = newId();
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

    sendTyping(on) {
      if (this.typingOn === on || !this.joined || this.ws.readyState !== WebSocket.OPEN) return;
      this.typingOn = on;
      this.ws.send(JSON.stringify({ type: "typing", on }));
      clearTimeout(this.typingTimer);
      if (on) this.typingTimer = setTimeout(() => this.sendTyping(false), 5000);
    }

    // The header's second line: who answers now, and how soon (a string's key, kept to
    // say it again in another language).
    setWho(key, values = {}) {
      this.whoSaid = [key, values];
      const text = fill(this.strings[key], values);
      this.keepEnd(() => { this.shadowRoot.querySelector(".sub").textContent = text; });
    }

    // A taller header or banner takes room from the message list: keep the newest in view.
    keepEnd(change) {
      const log = this.log;
      const atEnd = log.scrollHeight - log.scrollTop - log.clientHeight < 4;
      change();
      if (atEnd) log.scrollTop = log.scrollHeight;
    }

    setStatus(text, action, onAction) {
      this.keepEnd(() => this.status(text, action, onAction));
    }

    status(text, action, onAction) {
      this.statusEl.textContent = text;
      if (action) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = action;
        b.addEventListener("click", onAction);
        this.statusEl.appendChild(b);
      }
      this.statusEl.classList.toggle("on", Boolean(text));
    }
  }

  customElements.define("shop-chat", ShopChat);

  const mount = () => {
    const el = document.createElement("shop-chat");
    const queued = (window.shopchat && window.shopchat.q) || [];
    queued.forEach((args) => el.command(args[0], args[1]));
    window.shopchat = (name, arg) => el.command(name, arg);
    // A transform, filter, will-change or contain on an ancestor makes position: fixed
    // relative to that ancestor (the launcher scrolls away with a long page). The top
    // layer has no ancestors' effects; without popover, <html> is the safest parent.
    if (el.showPopover) {
      el.popover = "manual";
      document.body.appendChild(el);
    } else {
      document.documentElement.appendChild(el);
    }
  };
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
