// Opens the queue board in headless Chromium the way an operator does: signs in at
// /board/login with a token, then reads what the apalis-board web app renders on its
// overview and task pages. Prints one JSON line: { overview, tasks, urls, errors }.
//
// usage: node board_browser.mjs <base url> <admin token>
// Chromium: $ORCH_TEST_CHROMIUM, else /usr/bin/chromium.
import { chromium } from "playwright-core";

const [base, token] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.ORCH_TEST_CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const errors = [];
const urls = [];
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("requestfailed", (r) => errors.push(`failed: ${r.url()}`));
  page.on("response", (r) => {
    if (r.status() >= 400) errors.push(`${r.status()}: ${r.url()}`);
    else urls.push(new URL(r.url()).pathname);
  });

  await page.goto(`${base}/board/login`);
  await page.fill("#token", token);
  await Promise.all([page.waitForURL(`${base}/board`), page.click("button[type=submit]")]);
  // The overview renders once the app has loaded and read the API.
  await page.getByText("Pending Jobs").waitFor({ timeout: 30000 });
  await page.getByText(/run-stage:normal/).first().waitFor({ timeout: 30000 });
  const overview = await page.evaluate(() => document.body.innerText);

  // Navigation inside the app stays under /board.
  await page.getByRole("link", { name: "Tasks" }).first().click();
  await page.waitForURL(`${base}/board/tasks`, { waitUntil: "commit" });
  await page.getByText("Pending", { exact: true }).first().waitFor({ timeout: 30000 });
  await page.locator("td", { hasText: /^[0-9A-Z]{26}$/ }).first().waitFor({ timeout: 30000 });
  const tasks = await page.evaluate(() => document.body.innerText);
  console.log(JSON.stringify({ overview, tasks, url: page.url(), urls, errors }));
} finally {
  await browser.close();
}
