// The dashboard in a real browser: Debian's chromium driven by playwright-core. It opens the page,
// checks the pipeline renders, uploads a file through the page, waits until the page shows it
// indexed, searches for a phrase of it and finds it, and keeps a screenshot.
// Usage: node tests/browser/dashboard_test.mjs BASE_URL FILE PHRASE SCREENSHOT
// Exit 0 on success; 1 naming the step that failed, with what the page showed.
import { chromium } from "playwright-core";
import path from "node:path";

const [base, file, phrase, shot] = process.argv.slice(2);
if (!base || !file || !phrase || !shot) {
  console.error("usage: node dashboard_test.mjs BASE_URL FILE PHRASE SCREENSHOT");
  process.exit(2);
}
const problems = [];
let step = "launching chromium";
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
page.on("pageerror", (e) => problems.push("page error: " + e.message));
page.on("console", (m) => { if (m.type() === "error") problems.push("console error: " + m.text()); });
try {
  step = "opening the dashboard";
  await page.goto(base, { waitUntil: "load" });
  step = "waiting for the pipeline's stages";
  await page.locator('#stages .stage[data-stage="parse"]').waitFor({ timeout: 15000 });
  await page.locator('#stages .stage[data-stage="index"]').waitFor({ timeout: 15000 });
  await page.locator('#status-counts .count[data-status="indexed"]').waitFor({ timeout: 15000 });

  step = "uploading " + path.basename(file) + " through the file input";
  await page.setInputFiles("#file-input", file);
  const name = path.basename(file);
  const row = page.locator("#uploads tr", { hasText: name });
  await row.waitFor({ timeout: 15000 });
  step = "waiting for the upload to reach indexed";
  await page.waitForFunction((n) => {
    for (const tr of document.querySelectorAll("#uploads tr")) {
      if (tr.textContent.includes(n) && tr.querySelector(".doc-status")?.textContent === "indexed") return true;
    }
    return false;
  }, name, { timeout: 60000 });

  step = "searching for the phrase";
  await page.fill("#search-input", phrase);
  await page.click("#search-button");
  await page.waitForFunction(([p, n]) => {
    const t = document.querySelector("#search-results")?.textContent || "";
    return t.includes(p) && t.includes(n);
  }, [phrase, name], { timeout: 15000 });

  step = "checking the counts show the document";
  await page.waitForFunction(() => {
    const b = document.querySelector('#status-counts .count[data-status="indexed"] b');
    return b && Number(b.textContent) >= 1;
  }, null, { timeout: 15000 });
  await page.screenshot({ path: shot, fullPage: true });
  if (problems.length) throw new Error(problems.join("\n"));
  console.log("dashboard test passed; screenshot at " + shot);
  await browser.close();
  process.exit(0);
} catch (e) {
  console.error(`dashboard test failed while ${step}: ${e.message}`);
  for (const p of problems) console.error(p);
  try {
    console.error("page text:\n" + (await page.locator("body").innerText()).slice(0, 3000));
    await page.screenshot({ path: shot, fullPage: true });
  } catch (_) {}
  await browser.close();
  process.exit(1);
}
