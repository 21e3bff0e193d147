// Drives Debian's Chromium (through playwright-core) for tests/page.rs.
// The Rust tests make the assertions; this script only acts and reports.
//
//   node drive.mjs dom URL OUT.json [--wait TEXT] [--screenshot PNG] [--phone PNG]
//       Loads URL, waits until the page's text holds TEXT (if given), and
//       writes what the page shows: its text, its destination rows, the number of script
//       elements, whether any injected script ran (window.__pwned), console
//       errors, CSP violations, and whether a phone-sized window scrolls
//       sideways.
//   node drive.mjs accept LOGIN-URL DESTINATION OUT.json
//       Opens the login address (which lands on the page), clicks "Accept"
//       in the triage row of DESTINATION and reports where it landed, the
//       triage status line, whether the row went away after the next poll,
//       and the destinations still awaiting triage.
//   node drive.mjs pdf URL OUT.pdf
//       Prints the page to PDF (A4).
// With --map-host NAME anywhere after the mode, Chromium resolves NAME to
// 127.0.0.1 (a DNS-rebinding attacker's name for the monitor).
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [mode, url, ...rest] = process.argv.slice(2);
const option = name => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : undefined;
};
const TIMEOUT_MS = 20000;
const mapped = option('--map-host');

// playwright-core gives each launch a fresh temporary profile and removes it.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  timeout: TIMEOUT_MS,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync',
    ...(mapped ? [`--host-resolver-rules=MAP ${mapped} 127.0.0.1`] : [])],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(TIMEOUT_MS);
  const consoleErrors = [];
  page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', e => consoleErrors.push(String(e)));
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', e => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });

  if (mode === 'dom') {
    const out = rest[0];
    const response = await page.goto(url, { waitUntil: 'load' });
    const wait = option('--wait');
    if (wait) await page.waitForFunction(t => document.body.innerText.includes(t), wait);
    // Let one poll of the script redraw the page (if it runs).
    await page.waitForTimeout(2500);
    const report = await page.evaluate(() => ({
      text: document.body.innerText,
      scripts: document.querySelectorAll('script').length,
      scriptSources: [...document.querySelectorAll('script')].map(s => s.getAttribute('src')),
      pwned: window.__pwned ?? null,
      csp: window.__csp,
      updated: document.body.dataset.updated ?? null,
      buttons: [...document.querySelectorAll('button')].map(b => b.textContent),
      rows: [...document.querySelectorAll('tr[data-destination]')].map(tr => ({
        section: tr.closest('section')?.id ?? null,
        device: tr.closest('article')?.dataset.mac ?? null,
        destination: tr.dataset.destination,
        text: tr.innerText,
      })),
    }));
    report.status = response?.status() ?? null;
    report.headers = response ? await response.allHeaders() : {};
    report.consoleErrors = consoleErrors;
    const shot = option('--screenshot');
    if (shot) await page.screenshot({ path: shot, fullPage: false });
    const phone = option('--phone');
    if (phone) {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(300);
      report.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
      await page.screenshot({ path: phone });
      // Keyboard: the first Tab lands on the skip link, the next on the nav.
      await page.keyboard.press('Tab');
      report.firstTab = await page.evaluate(() => document.activeElement?.textContent ?? null);
    }
    writeFileSync(out, JSON.stringify(report, null, 1));
  } else if (mode === 'accept') {
    const [destination, out] = rest;
    // URL is the login address: it sets the session cookie and redirects.
    await page.goto(url, { waitUntil: 'load' });
    const landed = page.url();
    const row = page.locator('#triage-body tr', { has: page.locator('th', { hasText: destination }) }).first();
    await row.getByRole('button', { name: 'Accept' }).click();
    await page.waitForFunction(() => document.getElementById('triage-status').textContent !== '');
    const status = await page.locator('#triage-status').textContent();
    await page.waitForTimeout(2500);
    const remaining = await page.locator('#triage-body tr', { has: page.locator('th', { hasText: destination }) }).count();
    const awaiting = await page.evaluate(() => [...document.querySelectorAll('#triage-body tr[data-destination]')].map(tr => tr.dataset.destination));
    writeFileSync(out, JSON.stringify({ landed, status, remaining, awaiting, consoleErrors }, null, 1));
  } else if (mode === 'pdf') {
    const out = rest[0];
    await page.goto(url, { waitUntil: 'load' });
    await page.emulateMedia({ media: 'print' });
    await page.pdf({ path: out, format: 'A4', printBackground: false });
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
} finally {
  await browser.close();
}
