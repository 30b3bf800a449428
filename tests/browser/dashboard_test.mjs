// The dashboard in a real browser: Debian's chromium driven by playwright-core. It opens the page,
// checks the pipeline renders, uploads a file through the page's file input, waits until the page
// shows that file indexed, searches for a phrase of it, finds it, and keeps a full-page screenshot.
// Any uncaught page error or console error fails the test as well.
//
// Usage: node tests/browser/dashboard_test.mjs BASE_URL FILE_TO_UPLOAD PHRASE SCREENSHOT_PATH
// Exit 0 on success; 1 naming the step that failed, with the page's text that matters for it.
// CHROMIUM overrides the browser (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";

const INDEXED_DEADLINE_MS = 60_000;  // upload → "indexed" on the page
const STEP_TIMEOUT_MS = 15_000;      // every other wait
const WHOLE_TEST_MS = 150_000;       // a last guard so the test never hangs

const [base, file, phrase, shot] = process.argv.slice(2);
if (!base || !file || !phrase || !shot) {
  console.error("usage: node tests/browser/dashboard_test.mjs BASE_URL FILE_TO_UPLOAD PHRASE SCREENSHOT_PATH");
  process.exit(1);
}
if (!fs.existsSync(file)) {
  console.error(`dashboard test failed: the file to upload, ${file}, does not exist`);
  process.exit(1);
}
const name = path.basename(file);
const problems = [];  // page errors and console errors, in order
let step = "launching chromium";
let browser = null, page = null;

setTimeout(() => {
  console.error(`dashboard test failed: still ${step} after ${WHOLE_TEST_MS / 1000} s; giving up`);
  process.exit(1);
}, WHOLE_TEST_MS).unref();

// The page's text for the sections a step is about (and the error banner), for the failure report.
async function pageText(ids) {
  if (!page) return "";
  const out = [];
  for (const id of ["banner", ...ids]) {
    try {
      const t = (await page.locator("#" + id).innerText({ timeout: 2000 })).trim();
      if (t) out.push(`--- #${id}:\n${t.slice(0, 1500)}`);
    } catch (_) { /* not there */ }
  }
  return out.join("\n");
}

async function fail(message, ids) {
  console.error(`dashboard test failed while ${step}: ${message}`);
  for (const p of problems) console.error("  " + p);
  const text = await pageText(ids);
  if (text) console.error("page text:\n" + text);
  if (page) {
    try {
      fs.mkdirSync(path.dirname(path.resolve(shot)), { recursive: true });
      await page.screenshot({ path: shot, fullPage: true, timeout: 10000 });
      console.error("screenshot of the failure at " + shot);
    } catch (_) {}
  }
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

let sections = ["stages"];
try {
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("pageerror", (e) => problems.push("page error: " + (e.stack || e.message)));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const at = m.location() && m.location().url ? ` (${m.location().url})` : "";
    problems.push("console error: " + m.text() + at);
  });
  const stopIfProblems = () => { if (problems.length) throw new Error("the page reported errors"); };

  step = `opening ${base}`;
  const res = await page.goto(base, { waitUntil: "load", timeout: STEP_TIMEOUT_MS });
  if (!res || !res.ok()) throw new Error(`GET ${base} answered ${res ? res.status() : "nothing"}`);
  const ctype = res.headers()["content-type"] || "";
  if (!/text\/html/.test(ctype) || !/utf-8/i.test(ctype + (await page.evaluate(() => document.characterSet))))
    throw new Error(`the page is not served as UTF-8 HTML (Content-Type: ${ctype})`);

  step = "waiting for the pipeline's stages (parse → embed → index)";
  for (const s of ["parse", "embed", "index"])
    await page.locator(`#stages .stage[data-stage="${s}"]`).waitFor({ timeout: STEP_TIMEOUT_MS });
  const stageText = await page.locator("#stages").innerText();
  for (const word of ["lag", "processed", "in flight", "retried", "dead-lettered"])
    if (!stageText.includes(word)) throw new Error(`the stages panel does not show "${word}"`);
  sections = ["stages", "status-counts"];
  await page.locator('#status-counts [data-status="indexed"]').waitFor({ timeout: STEP_TIMEOUT_MS });
  stopIfProblems();

  step = `uploading ${name} through #file-input`;
  sections = ["uploads"];
  const uploadedAt = Date.now();
  await page.setInputFiles("#file-input", file);
  const status = page.locator("#uploads tr", { hasText: name }).locator(".doc-status[data-doc-id]");
  await status.first().waitFor({ timeout: STEP_TIMEOUT_MS });
  const docId = await status.first().getAttribute("data-doc-id");
  if (!docId) throw new Error("the upload's row has no doc id");

  step = `waiting for ${name} (doc ${docId}) to show "indexed"`;
  const left = Math.max(1000, INDEXED_DEADLINE_MS - (Date.now() - uploadedAt));
  const seen = await page.waitForFunction((id) => {
    const el = document.querySelector(`.doc-status[data-doc-id="${CSS.escape(id)}"]`);
    const s = el ? el.textContent.trim() : "";
    return ["indexed", "failed", "skipped", "error"].includes(s) ? s : false;
  }, docId, { timeout: left, polling: 250 }).then((h) => h.jsonValue()).catch((e) => {
    if (/Timeout/i.test(e.message)) throw new Error(`not indexed within ${INDEXED_DEADLINE_MS / 1000} s of the upload`);
    throw e;
  });
  if (seen !== "indexed") throw new Error(`the page shows it "${seen}", not "indexed"`);
  console.log(`indexed ${Math.round((Date.now() - uploadedAt) / 100) / 10} s after the upload`);
  stopIfProblems();

  step = `searching for "${phrase}"`;
  sections = ["search-msg", "search-results"];
  await page.fill("#search-input", phrase);
  await page.click("#search-button");
  await page.waitForFunction(([p, n]) => {
    const t = document.querySelector("#search-results")?.textContent || "";
    const failed = document.querySelector("#search-msg.show");
    return failed || (t.includes(p) && t.includes(n));
  }, [phrase, name], { timeout: STEP_TIMEOUT_MS });
  const results = await page.locator("#search-results").innerText();
  if (!results.includes(phrase) || !results.includes(name))
    throw new Error(`the results do not show both the phrase and ${name}`);
  stopIfProblems();

  step = "waiting for the counts by status to show the document indexed";
  sections = ["status-counts"];
  await page.waitForFunction(() => {
    const b = document.querySelector('#status-counts [data-status="indexed"] b');
    return b && Number(b.textContent) >= 1;
  }, null, { timeout: STEP_TIMEOUT_MS });
  stopIfProblems();

  step = "taking the screenshot";
  fs.mkdirSync(path.dirname(path.resolve(shot)), { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  stopIfProblems();
  await browser.close();
  console.log(`dashboard test passed; screenshot at ${shot}`);
  process.exit(0);
} catch (e) {
  await fail(e.message.split("\n")[0], sections);
}
