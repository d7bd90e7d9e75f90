/* The demo shop's own script: a tiny catalogue (six of data/shop/products.yml, which the
 * bot answers from: keep the two in step), a cart in localStorage, and the
 * chat embedded the way a real shop would (window.shopchat before widget.js). */
(() => {
  "use strict";
  const CATALOG = [
    { sku: "TENT-RIDGE-2P", name: "Ridgeline 2-person tent", price: 249, category: "Tents",
      blurb: "Three-season, 2.1 kg, 3000 mm hydrostatic head." },
    { sku: "BAG-ALPINE-0C", name: "Alpine 0 °C sleeping bag", price: 179, category: "Sleeping",
      blurb: "600 g responsibly sourced down, 850 g, comfort 0 °C." },
    { sku: "JKT-STORM-M", name: "Stormline rain jacket", price: 159, category: "Clothing",
      blurb: "3-layer waterproof shell, pit zips, helmet-compatible hood." },
    { sku: "BOOT-TRAIL-W", name: "Trailrunner hiking boots", price: 139, category: "Footwear",
      blurb: "Waterproof membrane, Vibram sole, 1.1 kg the pair." },
    { sku: "PACK-SUMMIT-38", name: "Summit 38 L backpack", price: 119, category: "Packs",
      blurb: "Adjustable back length, rain cover included, 1.3 kg." },
    { sku: "STOVE-PEAK", name: "Peak gas stove", price: 49, category: "Cooking",
      blurb: "Boils a litre in about 4 minutes, 88 g." },
  ];
  const CART_KEY = "trailhead-cart";
  const money = (n) => "€" + n.toFixed(2);

  function cart() {
    try { return JSON.parse(localStorage.getItem(CART_KEY)) || []; } catch (_) { return []; }
  }
  function saveCart(items) {
    localStorage.setItem(CART_KEY, JSON.stringify(items));
    tellChat();
    renderCount();
  }
  function cartForChat() {
    const items = cart().map((i) => ({ sku: i.sku, qty: i.qty,
      price: (CATALOG.find((p) => p.sku === i.sku) || { price: 0 }).price }));
    const total = items.reduce((sum, i) => sum + i.qty * i.price, 0);
    return { items, total, currency: "EUR" };
  }
  function product(sku) { return CATALOG.find((p) => p.sku === sku); }

  function el(tag, props, ...children) {
    const node = Object.assign(document.createElement(tag), props || {});
    children.forEach((c) => node.append(c));
    return node;
  }
  function renderCount() {
    const count = cart().reduce((n, i) => n + i.qty, 0);
    document.querySelectorAll("[data-cart-count]").forEach((n) => { n.textContent = String(count); });
  }

  const page = document.body.dataset.page;
  const sku = new URLSearchParams(location.search).get("sku") || CATALOG[0].sku;

  function tellChat() {
    const info = { type: page, title: document.title, cart: cartForChat() };
    if (page === "product") info.sku = sku;
    window.shopchat("page", info);
  }

  // The chat: configured before widget.js arrives; calls are queued until it loads.
  window.shopchat = window.shopchat || function () { (window.shopchat.q = window.shopchat.q || []).push(arguments); };
  window.shopchat("config", {
    color: "#1f5f4a",
    greeting: "Hi! I'm the Trailhead assistant. Ask me about an order, a return, shipping or our gear.",
    proactive: [
      { pageType: "checkout", idleSeconds: 20, text: "Stuck at checkout? I can help, or get you a person." },
      { pageType: "product", afterSeconds: 45, text: "Questions about this product? Ask me." },
      { minCartValue: 300, afterSeconds: 30, text: "Big order! Need advice before you check out?" },
    ],
  });
  tellChat();
  // The demo customer Anna is "signed in" unless the visitor signs out: the shop's
  // backend (here, the gateway's demo route) signs her customer id, the widget passes
  // the token on and the gateway checks the signature. Signed out, the chat treats the
  // visitor as a guest who must give an order's email to see it.
  // The account link appears only where the gateway can sign for the demo (`make run`).
  const signedIn = localStorage.getItem("demo-signed-in") !== "no";
  fetch("/demo/identity").then((r) => (r.ok ? r.json() : null)).then((body) => {
    if (!body || !body.token) return;
    if (signedIn) window.shopchat("identity", body.token);
    const account = el("a", { href: "#", className: "account",
      textContent: signedIn ? "Anna Berg (demo) · sign out" : "Sign in as Anna (demo)" });
    account.addEventListener("click", (event) => {
      event.preventDefault();
      localStorage.setItem("demo-signed-in", signedIn ? "no" : "yes");
      location.reload();
    });
    const nav = document.querySelector("header.site nav");
    if (nav) nav.append(account);
  }).catch(() => {});

  const main = document.querySelector("main");
  if (page === "home") {
    const grid = el("div", { className: "grid" });
    CATALOG.forEach((p) => grid.append(el("a", { className: "card", href: "product.html?sku=" + encodeURIComponent(p.sku) },
      el("span", { className: "category", textContent: p.category }),
      el("h2", { textContent: p.name }), el("p", { textContent: p.blurb }),
      el("strong", { textContent: money(p.price) }))));
    main.append(grid);
  } else if (page === "product") {
    const p = product(sku) || CATALOG[0];
    document.title = p.name + " · Trailhead Outfitters";
    const qty = el("input", { type: "number", min: 1, max: 10, value: 1, id: "qty" });
    const add = el("button", { type: "button", className: "primary", textContent: "Add to cart" });
    add.addEventListener("click", () => {
      const items = cart();
      const line = items.find((i) => i.sku === p.sku);
      if (line) line.qty += Number(qty.value) || 1; else items.push({ sku: p.sku, qty: Number(qty.value) || 1 });
      saveCart(items);
      add.textContent = "Added ✓";
    });
    main.append(el("div", { className: "product" },
      el("span", { className: "category", textContent: p.category }),
      el("h1", { textContent: p.name }), el("p", { textContent: p.blurb }),
      el("p", { className: "price", textContent: money(p.price) }),
      el("label", { htmlFor: "qty", textContent: "Quantity " }), qty, " ", add));
  } else if (page === "cart" || page === "checkout") {
    const summary = cartForChat();
    const list = el("ul", { className: "lines" });
    summary.items.forEach((i) => list.append(el("li", {},
      el("span", { textContent: `${i.qty} × ${(product(i.sku) || { name: i.sku }).name}` }),
      el("span", { textContent: money(i.qty * i.price) }))));
    if (!summary.items.length) list.append(el("li", { textContent: "Your cart is empty." }));
    main.append(el("h1", { textContent: page === "cart" ? "Your cart" : "Checkout" }), list,
      el("p", { className: "total", textContent: "Total " + money(summary.total) }));
    if (page === "cart" && summary.items.length) {
      main.append(el("a", { className: "primary", href: "checkout.html", textContent: "Go to checkout" }));
    } else if (page === "checkout") {
      const form = el("form", { className: "checkout" });
      ["Full name", "Address", "Postcode", "City", "Card number"].forEach((label, n) => {
        const id = "f" + n;
        form.append(el("label", { htmlFor: id, textContent: label }), el("input", { id, name: id }));
      });
      form.append(el("button", { type: "submit", className: "primary", textContent: "Place order (demo)" }));
      form.addEventListener("submit", (e) => { e.preventDefault(); alert("This is a demo shop: no order was placed."); });
      main.append(form);
    }
  }
  renderCount();
})();
