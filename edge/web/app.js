// dishpatch's pages: order (customers), kitchen (restaurant staff) and
// system (every replica's health, and which one served each call). Plain
// modules, no build step; every call goes through the REST API the edge
// serves beside this page, with the bearer token of whoever signed in.
//
// Each view runs under an AbortSignal that the next route aborts: its
// streams, timers and late answers stop with it, so a view left mid-load
// never paints over the next one.

const view = document.getElementById("view");
const who = document.getElementById("who");
const problem = document.getElementById("problem");
const announcer = document.getElementById("announcer");

// ---- small DOM helpers: elements are built, never parsed from strings ----

function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) element.append(child);
  }
  return element;
}

const money = (cents) => `$${(cents / 100).toFixed(2)}`;
const when = (rfc3339) => (rfc3339 ? new Date(rfc3339).toLocaleTimeString() : "");
const label = (status) => status.replaceAll("_", " ");
const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });

// Tells screen readers what changed, from one region that stays in the page.
function announce(text) {
  announcer.textContent = text;
}

// ---- who is signed in ----

const session = {
  get() {
    try {
      const signedIn = JSON.parse(sessionStorage.getItem("dishpatch.session"));
      return signedIn && signedIn.expiresAt > Date.now() ? signedIn : null;
    } catch {
      return null;
    }
  },
  set(signedIn) {
    signedIn.expiresAt = Date.now() + signedIn.expiresIn * 1000;
    sessionStorage.setItem("dishpatch.session", JSON.stringify(signedIn));
  },
  clear() {
    sessionStorage.removeItem("dishpatch.session");
  },
};

// ---- the API: errors shown on the page, each call noted for the system view ----

const recentCalls = [];
const RECENT_CALLS = 15;

class ApiError extends Error {
  constructor(status, body) {
    const error = body?.error ?? {};
    super(error.message ?? `the edge answered ${status}`);
    this.status = status;
    this.code = error.code ?? `http_${status}`;
    this.requestId = error.requestId;
  }
}

function headers(extra = {}) {
  const signedIn = session.get();
  const all = { ...extra };
  if (signedIn) all.authorization = `Bearer ${signedIn.token}`;
  return all;
}

// Calls the API; answers with the parsed JSON, or throws an ApiError.
async function api(method, path, body, extraHeaders = {}, signal) {
  const init = { method, headers: headers(extraHeaders), signal };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(0, { error: { message: "the edge could not be reached; check your connection" } });
  }
  note(method, path, response);
  const parsed = await response.json().catch(() => null);
  if (!response.ok) {
    const failed = new ApiError(response.status, parsed);
    if (failed.code === "invalid_token") {
      // Expired or no longer trusted: sign in again.
      session.clear();
      renderWho();
    }
    throw failed;
  }
  return parsed;
}

function note(method, path, response) {
  recentCalls.unshift({
    at: new Date(),
    method,
    path,
    status: response.status,
    servedBy: response.headers.get("x-served-by") ?? "the edge",
  });
  recentCalls.length = Math.min(recentCalls.length, RECENT_CALLS);
}

function showProblem(error) {
  if (!error) {
    problem.hidden = true;
    problem.textContent = "";
    return;
  }
  const id = error.requestId ? ` (request ${error.requestId})` : "";
  problem.textContent = `${error.message}${id}`;
  problem.hidden = false;
}

// Runs `work` (something the person asked for), showing what went wrong
// instead of throwing; clears an earlier problem when it succeeds.
async function attempt(work) {
  try {
    const result = await work();
    showProblem(null);
    return result;
  } catch (error) {
    if (error?.name !== "AbortError") {
      showProblem(error instanceof ApiError ? error : { message: String(error?.message ?? error) });
    }
    return undefined;
  }
}

// Runs `work` in the background (a redraw): shows a failure, but does not
// hide a problem the person has yet to read when it succeeds.
async function quietly(work) {
  try {
    return await work();
  } catch (error) {
    if (error?.name !== "AbortError") showProblem(error instanceof ApiError ? error : { message: String(error) });
    return undefined;
  }
}

// A redraw that runs one at a time: asked for while one runs, it runs once
// more after it, so a burst of events costs two calls, not one per event.
function coalesced(draw) {
  let running = null;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await draw();
      } while (again);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  };
  return run;
}

// ---- live notifications: Server-Sent Events read with fetch (EventSource
// cannot send a bearer token), resumed after the last id on reconnect ----

function follow(path, onEvent, onState, signal) {
  (async () => {
    let lastId = null;
    let retry = 1000;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const extra = lastId ? { "last-event-id": lastId } : {};
        const response = await fetch(path, { headers: headers(extra), signal });
        note("GET", path.split("?")[0], response);
        if (!response.ok) {
          const body = await response.json().catch(() => null);
          showProblem(new ApiError(response.status, body));
          if (response.status < 500 && response.status !== 429) {
            onState("stopped");
            return;
          }
        } else {
          onState("live");
          failures = 0;
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          let unread = "";
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            unread += value;
            // Lines may end in CRLF or CR; a CR at the end may be half of one.
            const whole = unread.endsWith("\r") ? unread.length - 1 : unread.length;
            unread = unread.slice(0, whole).replace(/\r\n?/g, "\n") + unread.slice(whole);
            let end;
            while ((end = unread.indexOf("\n\n")) >= 0) {
              const event = parseEvent(unread.slice(0, end));
              unread = unread.slice(end + 2);
              if (event.retry && Number(event.retry) >= 0) retry = Number(event.retry);
              if (event.id) lastId = event.id;
              if (event.event === "error") {
                const body = JSON.parse(event.data);
                // too_slow: reconnecting resumes after its id.
                if (body.error.code !== "too_slow") showProblem(new ApiError(0, body));
              } else if (event.event) {
                onEvent(event.event, JSON.parse(event.data));
              }
            }
          }
        }
      } catch {
        if (signal.aborted) return;
      }
      onState("reconnecting");
      failures += 1;
      // The server's `retry:` at first, then longer (at most 30 s), jittered.
      const wait = Math.min(30_000, Math.max(retry, 250) * 2 ** Math.min(failures - 1, 5));
      await sleep(wait * (0.5 + Math.random() / 2), signal);
    }
  })();
}

function parseEvent(block) {
  const event = {};
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    event[field] = field === "data" && "data" in event ? `${event.data}\n${value}` : value;
  }
  return event;
}

function liveBadge() {
  const badge = h("span", { class: "live", "data-state": "reconnecting" }, "connecting…");
  const words = { live: "live", reconnecting: "reconnecting…", stopped: "not live: reload to try again" };
  const setState = (state) => {
    badge.dataset.state = state;
    badge.textContent = words[state];
  };
  return [badge, setState];
}

// ---- signing in (the edge's development sign-in) ----

function renderWho() {
  const signedIn = session.get();
  who.replaceChildren();
  if (signedIn) {
    const what = signedIn.role === "restaurant" ? `staff of ${signedIn.restaurants.length} restaurant(s)` : signedIn.role;
    who.append(
      h("span", {}, "Signed in as ", h("strong", {}, signedIn.sub), ` (${what})`),
      h("button", { class: "quiet", type: "button", onclick: () => { session.clear(); route(); } }, "Sign out"),
    );
    return;
  }
  const name = h("input", { id: "sign-in-name", name: "sub", required: true, autocomplete: "username", value: "ana" });
  const role = h("select", { id: "sign-in-role", name: "role" },
    h("option", { value: "customer" }, "customer"),
    h("option", { value: "restaurant" }, "restaurant staff"),
    h("option", { value: "admin" }, "admin"));
  const restaurants = h("input", { id: "sign-in-restaurants", name: "restaurants", placeholder: "rst_…, for staff" });
  const form = h("form", { class: "inline", "aria-label": "Sign in" },
    h("label", { for: "sign-in-name" }, "Name", name),
    h("label", { for: "sign-in-role" }, "Role", role),
    h("label", { for: "sign-in-restaurants" }, "Restaurants you work for", restaurants),
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ids = restaurants.value.split(",").map((id) => id.trim()).filter(Boolean);
    const signedIn = await attempt(() =>
      api("POST", "/api/dev/sign-in", { sub: name.value.trim(), role: role.value, restaurants: ids }));
    if (signedIn) {
      session.set(signedIn);
      route();
    }
  });
  who.append(form);
}

function needSignIn(what) {
  return h("p", { class: "card" }, `Sign in (above) to ${what}.`);
}

// ---- the order view: restaurants, a menu, a cart, and your orders ----

// The cart outlives redraws (and views): what was typed stays typed. Any
// change to it makes it a new order, with a new idempotency key.
const cart = { restaurant: null, lines: new Map(), address: "", note: "", idempotencyKey: null };

function cartChanged() {
  cart.idempotencyKey = null;
}

async function orderView(signal) {
  const results = h("ul", { class: "plain", "aria-label": "Search results" });
  const menu = h("section", { "aria-labelledby": "menu-title" }, h("h2", { id: "menu-title" }, "Menu"),
    h("p", { class: "muted" }, "Pick a restaurant."));
  const basket = h("section", { "aria-labelledby": "cart-title" });
  const mine = h("section", { "aria-labelledby": "mine-title" });
  const q = h("input", { id: "search-q", name: "q", type: "search", placeholder: "sushi, pizza…" });
  const cuisine = h("input", { id: "search-cuisine", name: "cuisine", placeholder: "any" });
  const search = h("form", { class: "inline", role: "search" },
    h("label", { for: "search-q" }, "Name contains", q),
    h("label", { for: "search-cuisine" }, "Cuisine", cuisine),
    h("button", { type: "submit" }, "Search"));

  const list = async () => {
    const query = new URLSearchParams();
    if (q.value.trim()) query.set("q", q.value.trim());
    if (cuisine.value.trim()) query.set("cuisine", cuisine.value.trim());
    const path = query.size ? `/api/restaurants?${query}` : "/api/restaurants";
    const found = await attempt(() => api("GET", path, undefined, {}, signal));
    if (!found || signal.aborted) return;
    results.replaceChildren(...found.restaurants.map((restaurant) =>
      h("li", { class: "card" }, h("div", { class: "row" },
        h("div", {}, h("h3", {}, restaurant.name),
          h("span", { class: "muted" }, `${restaurant.cuisine} · ★ ${restaurant.rating.toFixed(1)} · ${restaurant.address}`)),
        h("button", { type: "button", onclick: () => openMenu(restaurant) }, `Menu of ${restaurant.name}`)))));
    if (found.restaurants.length === 0) results.append(h("li", { class: "muted" }, "No restaurant matches."));
    announce(`${found.restaurants.length} restaurants found`);
  };

  const openMenu = async (restaurant) => {
    const path = `/api/restaurants/${encodeURIComponent(restaurant.id)}/menu`;
    const items = await attempt(() => api("GET", path, undefined, {}, signal));
    if (!items || signal.aborted) return;
    const title = h("h2", { id: "menu-title", tabindex: "-1" }, `Menu of ${restaurant.name}`);
    menu.replaceChildren(title,
      h("ul", { class: "plain" }, items.items.map((item) =>
        h("li", { class: "card row" },
          h("div", {}, h("h3", {}, item.name), h("span", { class: "muted" }, item.description)),
          h("span", {}, money(item.priceCents)),
          h("button", {
            type: "button", disabled: !item.available,
            "aria-label": item.available ? `Add ${item.name}` : `${item.name} is unavailable`,
            onclick: () => { addToCart(restaurant, item); drawCart(); announce(`${item.name} added to the cart`); },
          }, item.available ? "Add" : "Unavailable")))));
    title.focus();
  };

  const drawCart = () => {
    basket.replaceChildren(h("h2", { id: "cart-title" }, "Your cart"));
    if (cart.lines.size === 0) {
      basket.append(h("p", { class: "muted" }, "Empty."));
      return;
    }
    const estimate = [...cart.lines.values()].reduce((sum, line) => sum + line.item.priceCents * line.quantity, 0);
    const address = h("input", { id: "delivery-address", name: "deliveryAddress", required: true,
      autocomplete: "street-address", value: cart.address,
      oninput: () => { cart.address = address.value; cartChanged(); } });
    const noteField = h("input", { id: "order-note", name: "note", value: cart.note,
      oninput: () => { cart.note = noteField.value; cartChanged(); } });
    const form = h("form", { class: "stack card", "aria-label": "Place the order" },
      h("p", {}, `From ${cart.restaurant.name}`),
      h("ul", { class: "plain" }, [...cart.lines.values()].map((line) =>
        h("li", { class: "row" }, h("span", {}, `${line.quantity} × ${line.item.name}`),
          h("span", {},
            h("button", { type: "button", class: "quiet", "aria-label": `One less ${line.item.name}`,
              onclick: () => { changeQuantity(line.item.id, -1); drawCart(); } }, "−"),
            h("button", { type: "button", class: "quiet", "aria-label": `One more ${line.item.name}`,
              onclick: () => { changeQuantity(line.item.id, 1); drawCart(); } }, "+"))))),
      h("p", { class: "muted" }, `About ${money(estimate)}: the restaurant prices the order when it is placed.`),
      h("label", { for: "delivery-address" }, "Delivery address", address),
      h("label", { for: "order-note" }, "Note for the kitchen (optional)", noteField),
      h("button", { type: "submit" }, "Place order"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const signedIn = session.get();
      if (!signedIn) {
        showProblem({ message: "Sign in (above) to place an order." });
        return;
      }
      // One key per cart: a retry after a lost answer places it once.
      cart.idempotencyKey ??= crypto.randomUUID();
      const order = {
        restaurantId: cart.restaurant.id,
        items: [...cart.lines.values()].map((line) => ({ menuItemId: line.item.id, quantity: line.quantity })),
        deliveryAddress: cart.address.trim(),
      };
      if (cart.note.trim()) order.note = cart.note.trim();
      if (signedIn.role !== "customer") order.customer = signedIn.sub;
      const placed = await attempt(() =>
        api("POST", "/api/orders", order, { "idempotency-key": cart.idempotencyKey }));
      if (placed) {
        cart.lines.clear();
        cart.note = "";
        cartChanged();
        location.hash = `#/orders/${placed.id}`;
      }
    });
    basket.append(form);
  };

  const drawMine = async () => {
    mine.replaceChildren(h("h2", { id: "mine-title" }, "Your orders"));
    const signedIn = session.get();
    if (!signedIn) {
      mine.append(needSignIn("see your orders"));
      return;
    }
    if (signedIn.role === "restaurant") {
      mine.append(h("p", { class: "muted" }, "Restaurant staff run orders in the kitchen view."));
      return;
    }
    const path = `/api/orders?customer=${encodeURIComponent(signedIn.sub)}&limit=10`;
    const listed = await quietly(() => api("GET", path, undefined, {}, signal));
    if (!listed || signal.aborted) return;
    mine.append(listed.orders.length === 0 ? h("p", { class: "muted" }, "None yet.") :
      h("ul", { class: "plain" }, listed.orders.map((order) =>
        h("li", { class: "row card" }, h("a", { href: `#/orders/${order.id}` }, order.id),
          h("span", { class: "status" }, label(order.status)), h("span", {}, money(order.totalCents))))));
  };

  search.addEventListener("submit", (event) => { event.preventDefault(); list(); });
  view.replaceChildren(h("h2", {}, "Restaurants"), search, h("div", { class: "columns" },
    h("section", { "aria-label": "Restaurants found" }, results), menu, h("div", {}, basket, mine)));
  drawCart();
  await Promise.all([list(), drawMine()]);
}

function addToCart(restaurant, item) {
  if (cart.restaurant?.id !== restaurant.id) cart.lines.clear();
  cart.restaurant = restaurant;
  const line = cart.lines.get(item.id) ?? { item, quantity: 0 };
  line.quantity += 1;
  cart.lines.set(item.id, line);
  cartChanged();
}

function changeQuantity(itemId, by) {
  const line = cart.lines.get(itemId);
  if (!line) return;
  line.quantity += by;
  if (line.quantity <= 0) cart.lines.delete(itemId);
  cartChanged();
}

// ---- one order, live ----

const NEXT = {
  placed: ["accepted", "cancelled"],
  accepted: ["preparing", "cancelled"],
  preparing: ["ready"],
  ready: ["out_for_delivery"],
  out_for_delivery: ["delivered"],
  delivered: [],
  cancelled: [],
};

async function orderPage(id, signal) {
  if (!session.get()) {
    view.replaceChildren(needSignIn("follow an order"));
    return;
  }
  const [badge, setState] = liveBadge();
  const body = h("div", {});
  view.replaceChildren(h("div", { class: "row" }, h("h2", {}, `Order ${id}`), badge), body);
  const path = `/api/orders/${encodeURIComponent(id)}`;
  let shown = null;
  const draw = coalesced(async () => {
    const order = await quietly(() => api("GET", path, undefined, {}, signal));
    if (!order || signal.aborted) return;
    if (shown && shown !== order.status) announce(`Your order is now ${label(order.status)}`);
    shown = order.status;
    const cancellable = NEXT[order.status].includes("cancelled") && session.get()?.role !== "restaurant";
    body.replaceChildren(h("div", { class: "columns" },
      h("section", { class: "card", "aria-label": "What was ordered" },
        h("p", {}, "Status: ", h("strong", { class: "status", id: "order-status" }, label(order.status))),
        h("ul", { class: "plain" }, order.items.map((item) =>
          h("li", { class: "row" }, h("span", {}, `${item.quantity} × ${item.name}`), h("span", {}, money(item.lineTotalCents))))),
        h("p", { class: "row total" }, h("span", {}, "Total"), h("span", { id: "order-total" }, money(order.totalCents))),
        h("p", { class: "muted" }, `To ${order.deliveryAddress}`),
        cancellable && h("button", { type: "button", class: "danger", onclick: async () => {
          if (await attempt(() => api("PATCH", `${path}/status`, { status: "cancelled" }))) draw();
        } }, "Cancel order")),
      h("section", { class: "card", "aria-labelledby": "timeline-title" },
        h("h3", { id: "timeline-title" }, "Timeline"),
        h("ol", { class: "timeline", id: "timeline" }, order.statusHistory.map((change) =>
          h("li", {}, h("strong", {}, label(change.status)), " ", h("span", { class: "muted" }, when(change.at))))))));
  });
  await draw();
  // Only an order that could be read is followed.
  if (shown === null || signal.aborted) return;
  follow(`/api/notifications/stream?orderId=${encodeURIComponent(id)}`, () => draw(), setState, signal);
}

// ---- the kitchen: a restaurant's orders, live, and the moves each allows ----

async function kitchenView(signal) {
  const signedIn = session.get();
  if (!signedIn || signedIn.role === "customer") {
    view.replaceChildren(needSignIn("run a kitchen (as restaurant staff or an admin)"));
    return;
  }
  let restaurants;
  if (signedIn.role === "restaurant") {
    restaurants = signedIn.restaurants.map((id) => ({ id, name: id }));
  } else {
    const listed = await attempt(() => api("GET", "/api/restaurants?limit=100", undefined, {}, signal));
    if (signal.aborted) return;
    restaurants = listed ? listed.restaurants : [];
  }
  const picker = h("select", { id: "kitchen-restaurant" },
    restaurants.map((restaurant) => h("option", { value: restaurant.id }, restaurant.name)));
  const [badge, setState] = liveBadge();
  const orders = h("ul", { class: "plain", id: "kitchen-orders" });
  view.replaceChildren(h("div", { class: "row" }, h("h2", {}, "Kitchen"), badge),
    h("label", { for: "kitchen-restaurant" }, "Restaurant", picker), orders);
  if (restaurants.length === 0) {
    orders.append(h("li", { class: "muted" }, "No restaurant to run."));
    return;
  }

  let known = null;
  const draw = coalesced(async () => {
    const path = `/api/orders?restaurantId=${encodeURIComponent(picker.value)}&limit=50`;
    const listed = await quietly(() => api("GET", path, undefined, {}, signal));
    if (!listed || signal.aborted) return;
    const open = listed.orders.filter((order) => NEXT[order.status].length > 0);
    const arrived = known ? open.filter((order) => !known.has(order.id)).length : 0;
    if (arrived) announce(`${arrived} new order${arrived > 1 ? "s" : ""}`);
    known = new Set(open.map((order) => order.id));
    orders.replaceChildren(...open.map((order) => {
      const what = order.items.map((item) => `${item.quantity} × ${item.name}`).join(", ");
      return h("li", { class: "card", "data-order": order.id },
        h("div", { class: "row" }, h("h3", {}, `${order.customer}: ${what}`),
          h("span", { class: "status" }, label(order.status))),
        order.note && h("p", { class: "muted" }, `Note: ${order.note}`),
        h("div", { class: "row" }, NEXT[order.status].map((next) =>
          h("button", {
            type: "button", class: next === "cancelled" ? "danger" : "",
            "aria-label": `${next === "cancelled" ? "Cancel" : `Mark ${label(next)}`} ${order.customer}'s order ${order.id}`,
            onclick: async () => {
              const moved = await attempt(() => api("PATCH", `/api/orders/${order.id}/status`, { status: next }));
              if (moved) {
                announce(`${order.customer}'s order is now ${label(next)}`);
                await draw();
                // Keep the keyboard on this order's next move.
                view.querySelector(`[data-order="${order.id}"] button`)?.focus();
              }
            },
          }, next === "cancelled" ? "Cancel" : `Mark ${label(next)}`))));
    }));
    if (open.length === 0) orders.append(h("li", { class: "muted" }, "No open orders."));
  });
  // One stream for the restaurant picked: new and cancelled orders.
  let listening = null;
  const listen = () => {
    listening?.abort();
    listening = new AbortController();
    signal.addEventListener("abort", () => listening.abort(), { once: true });
    const recipient = encodeURIComponent(`restaurant:${picker.value}`);
    follow(`/api/notifications/stream?recipient=${recipient}`, () => draw(), setState, listening.signal);
  };
  picker.addEventListener("change", () => { known = null; draw(); listen(); });
  await draw();
  if (!signal.aborted) listen();
}

// ---- the system: every replica of every service, and who served what ----

async function systemView(signal) {
  const services = h("div", { class: "columns", id: "services" });
  const calls = h("tbody", { id: "recent-calls" });
  view.replaceChildren(h("h2", {}, "Services"),
    h("p", { class: "muted" }, "The edge's view of every replica, every second. Kill one and watch it leave the rotation."),
    services, h("h2", {}, "This page's recent calls"),
    h("div", { class: "scrolls" }, h("table", {},
      h("thead", {}, h("tr", {}, ["When", "Call", "Status", "Served by"].map((name) => h("th", { scope: "col" }, name)))),
      calls)));
  while (!signal.aborted) {
    let health = null;
    try {
      // Polled, so not noted among the page's calls.
      health = await (await fetch("/health", { headers: headers(), signal })).json();
    } catch {
      if (signal.aborted) return;
      showProblem({ message: "the edge could not be reached" });
    }
    if (health) {
      services.replaceChildren(...Object.entries(health.services).map(([name, service]) =>
        h("section", { class: "card", "aria-label": name },
          h("h3", {}, name, " ", h("span", { class: service.healthy ? "healthy" : "down" },
            `${service.inRotation} of ${service.known} in rotation`)),
          service.replicas ? h("ul", { class: "plain" }, service.replicas.map((replica) =>
            h("li", { class: "row" }, h("code", {}, replica.addr),
              h("span", { class: replica.state }, replica.state + (replica.outOfRotation ? ` (${label(replica.outOfRotation)})` : ""))))) :
            h("p", { class: "muted" }, "This edge does not show its replicas (--show-replicas)."))));
    }
    calls.replaceChildren(...recentCalls.map((call) =>
      h("tr", {}, h("td", {}, call.at.toLocaleTimeString([], { hour12: false })), h("td", {}, `${call.method} ${call.path}`),
        h("td", {}, String(call.status)), h("td", {}, h("code", {}, call.servedBy)))));
    await sleep(1000, signal);
  }
}

// ---- routing by the URL's fragment ----

let current = null;

async function route() {
  current?.abort();
  current = new AbortController();
  const signal = current.signal;
  showProblem(null);
  renderWho();
  const path = location.hash.replace(/^#/, "") || "/order";
  const order = path.match(/^\/orders\/([A-Za-z0-9_]+)$/);
  const name = order ? "order" : path.slice(1);
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const titles = { order: "Order", kitchen: "Kitchen", system: "System" };
  document.title = `${order ? `Order ${order[1]}` : titles[name] ?? "Order"} · dishpatch`;
  view.focus();
  if (order) await orderPage(order[1], signal);
  else if (path === "/kitchen") await kitchenView(signal);
  else if (path === "/system") await systemView(signal);
  else await orderView(signal);
}

window.addEventListener("hashchange", route);
route();
