// The front end in a real browser (Chromium, driven by playwright-core): a
// customer orders and watches the kitchen, in a second page, move the order
// live to delivered; a second order is cancelled by the customer; an item
// that became unavailable reads as an error on the page; the system view
// shows a replica the test kills as down, then up again once restarted,
// and which replica served each of the page's calls.
//
// Run by edge/tests/api/browser.rs against a fleet it started: BASE_URL,
// RESTAURANT_ID (a seeded restaurant), CHROMIUM (its executable),
// SCREENSHOTS (a folder for them). What only the test can do (kill a
// replica, change a menu item behind the page's back) the script asks for
// on stdout (`ASK …`) and waits for its `OK` on stdin.

const { chromium } = require("playwright-core");
const readline = require("node:readline");

const base = process.env.BASE_URL;
const restaurantId = process.env.RESTAURANT_ID;
const screenshots = process.env.SCREENSHOTS;
const limit = setTimeout(() => {
  console.error("the browser test ran past its 100 s");
  process.exit(2);
}, 100_000);

const answers = readline.createInterface({ input: process.stdin });
const waiting = [];
answers.on("line", (line) => waiting.shift()?.(line));
function ask(request) {
  return new Promise((resolve) => {
    waiting.push(resolve);
    process.stdout.write(`ASK ${request}\n`);
  });
}

function check(condition, what) {
  if (!condition) throw new Error(what);
}

const money = (cents) => `$${(cents / 100).toFixed(2)}`;

async function expectText(locator, text) {
  await locator.filter({ hasText: text }).first().waitFor();
}

async function buttonsOf(locator) {
  return (await locator.getByRole("button").allTextContents()).map((text) => text.trim());
}

// The page fits a phone's width: nothing scrolls sideways.
async function fitsPhone(page, what) {
  const overflows = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  check(!overflows, `${what} fits a phone's width`);
}

async function shoot(page, name) {
  await page.screenshot({ path: `${screenshots}/${name}.png`, fullPage: true });
}

async function signIn(page, name, role, restaurants = "") {
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Role").selectOption(role);
  await page.getByLabel("Restaurants you work for").fill(restaurants);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Signed in as").waitFor();
}

// Opens the restaurant's menu on the order view.
async function openMenu(page, restaurant) {
  await page.goto(`${base}/#/order`);
  await page.getByLabel("Name contains").fill(restaurant.name);
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("button", { name: `Menu of ${restaurant.name}` }).click();
}

async function placeFromCart(page) {
  await page.getByLabel("Delivery address").fill("5 Hungry Lane");
  await page.getByRole("button", { name: "Place order" }).click();
  await page.waitForURL(/#\/orders\/ord_/);
  return page.url().split("/").pop();
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
  });
  const problems = [];
  const open = async (name) => {
    // A phone-sized screen.
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const page = await context.newPage();
    page.setDefaultTimeout(10_000);
    page.on("pageerror", (error) => problems.push(`${name}: ${error.message}`));
    page.on("console", (message) => {
      // Chromium logs every answer of 4xx or 5xx; the page shows those itself.
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) {
        problems.push(`${name}: ${message.text()}`);
      }
    });
    page.on("response", (response) => {
      const path = new URL(response.url()).pathname;
      if (["/", "/app.js", "/app.css"].includes(path) && ![200, 304].includes(response.status())) {
        problems.push(`${name}: ${path} answered ${response.status()}`);
      }
    });
    return page;
  };
  try {
    const restaurant = await (await fetch(`${base}/api/restaurants/${restaurantId}`)).json();
    const menu = await (await fetch(`${base}/api/restaurants/${restaurantId}/menu`)).json();
    const available = menu.items.filter((item) => item.available);
    check(available.length >= 2, "the seeded menu has two available items");

    // A customer finds the restaurant, fills a cart and orders.
    const customer = await open("customer");
    const page = await customer.goto(`${base}/`);
    const policy = page.headers()["content-security-policy"];
    check(
      policy === "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
      `the page's own policy: ${policy}`,
    );
    check(await customer.evaluate(() => getComputedStyle(document.body).margin === "0px"), "the style sheet applies");
    await signIn(customer, "ana", "customer");
    await openMenu(customer, restaurant);
    const addFirst = customer.getByRole("button", { name: `Add ${available[0].name}`, exact: true });
    await addFirst.click();
    await addFirst.click();
    await customer.getByRole("button", { name: `One more ${available[0].name}` }).click();
    await customer.getByLabel("Delivery address").fill("5 Hungry Lane");
    const unlabelled = await customer.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea")].filter((field) => field.labels.length === 0).length);
    check(unlabelled === 0, `every field has a label (${unlabelled} without)`);
    await fitsPhone(customer, "the order view");
    await shoot(customer, "01-cart");
    const orderId = await placeFromCart(customer);

    // The page shows the server's total and the order's history, live.
    const token = await customer.evaluate(() => JSON.parse(sessionStorage.getItem("dishpatch.session")).token);
    const order = await (await fetch(`${base}/api/orders/${orderId}`, {
      headers: { authorization: `Bearer ${token}` },
    })).json();
    check(order.items[0].quantity === 3, `three of the first item: ${JSON.stringify(order.items)}`);
    await expectText(customer.locator("#order-total"), money(order.totalCents));
    await expectText(customer.locator("#timeline"), "placed");
    await customer.locator('.live[data-state="live"]').waitFor();

    // The kitchen, in a second page, walks it to delivered with only the
    // buttons each state allows; the customer's page follows each move.
    const kitchen = await open("kitchen");
    await kitchen.goto(`${base}/#/kitchen`);
    await signIn(kitchen, "chef", "restaurant", restaurantId);
    const card = kitchen.locator(`[data-order="${orderId}"]`);
    await card.waitFor();
    await fitsPhone(kitchen, "the kitchen");
    await shoot(kitchen, "02-kitchen");
    for (const [offers, move, reached] of [
      [["Mark accepted", "Cancel"], "Mark accepted", "accepted"],
      [["Mark preparing", "Cancel"], "Mark preparing", "preparing"],
      [["Mark ready"], "Mark ready", "ready"],
      [["Mark out for delivery"], "Mark out for delivery", "out for delivery"],
      [["Mark delivered"], "Mark delivered", "delivered"],
    ]) {
      await card.getByRole("button", { name: offers[0] }).waitFor();
      const offered = await buttonsOf(card);
      check(JSON.stringify(offered) === JSON.stringify(offers), `before ${reached}: ${offered}`);
      await card.getByRole("button", { name: move }).click();
      await expectText(customer.locator("#order-status"), reached);
    }
    await card.waitFor({ state: "detached" });
    await expectText(customer.locator("#timeline"), "delivered");
    check((await customer.locator("#timeline li").count()) === 6, "six states in the timeline");
    check((await customer.getByRole("button", { name: "Cancel order" }).count()) === 0, "a delivered order stays");
    await fitsPhone(customer, "the order's page");
    await shoot(customer, "03-delivered");

    // A second order, accepted, then cancelled by the customer while it can be.
    await openMenu(customer, restaurant);
    await customer.getByRole("button", { name: `Add ${available[0].name}`, exact: true }).click();
    const secondId = await placeFromCart(customer);
    const second = kitchen.locator(`[data-order="${secondId}"]`);
    await second.getByRole("button", { name: "Mark accepted" }).click();
    await expectText(customer.locator("#order-status"), "accepted");
    await customer.getByRole("button", { name: "Cancel order" }).click();
    await expectText(customer.locator("#order-status"), "cancelled");
    check((await customer.getByRole("button", { name: "Cancel order" }).count()) === 0, "no cancelling twice");
    // The kitchen is told of the cancellation: the order leaves its list.
    await second.waitFor({ state: "detached" });

    // An item that became unavailable after it went into the cart: the
    // order is refused, and the page says why in a sentence.
    await openMenu(customer, restaurant);
    await customer.getByRole("button", { name: `Add ${available[1].name}`, exact: true }).click();
    check((await ask(`unavailable ${restaurantId} ${available[1].id}`)) === "OK", "the item made unavailable");
    await customer.getByRole("button", { name: "Place order" }).click();
    const refusal = customer.locator("#problem");
    await refusal.filter({ hasText: /not available|unavailable/i }).waitFor();
    check(/request req_/.test(await refusal.textContent()), "the error names its request");
    check(/#\/order$/.test(customer.url()), "the cart stays, to be changed");
    await shoot(customer, "04-unavailable");

    // The system view: every replica, one the test kills shown down, then
    // up again once restarted, and which replica served each call.
    await customer.goto(`${base}/#/system`);
    const restaurants = customer.getByRole("region", { name: "restaurant-svc" });
    await expectText(restaurants, "2 of 2 in rotation");
    check((await ask("kill restaurant-svc 1")) === "OK", "a replica killed");
    await expectText(restaurants, "1 of 2 in rotation");
    await expectText(restaurants, "down");
    await shoot(customer, "05-replica-down");
    check((await ask("restart restaurant-svc 1")) === "OK", "the replica restarted");
    await expectText(restaurants, "2 of 2 in rotation");
    const rows = await customer.locator("#recent-calls tr").evaluateAll((rows) =>
      rows.map((row) => [...row.cells].map((cell) => cell.textContent)));
    const replicaCalls = rows.filter(([, call]) => call.includes(" /api/") && !call.includes("/api/dev/"));
    check(replicaCalls.length > 0, `the page's calls are listed: ${JSON.stringify(rows)}`);
    for (const [, call, , servedBy] of replicaCalls) {
      check(/^127\.0\.0\.1:\d+$/.test(servedBy), `${call} names the replica that served it: ${servedBy}`);
    }
    await fitsPhone(customer, "the system view");
    await shoot(customer, "06-system");

    check(problems.length === 0, `nothing went wrong in the pages: ${problems.join("; ")}`);
    console.log("the front end works");
  } finally {
    await browser.close();
    answers.close();
    clearTimeout(limit);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
