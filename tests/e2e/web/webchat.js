// webchat.js - drives the webchat demo page in headless Chromium (Debian's,
// through playwright-core; no browser is ever downloaded) and prints TAP
// lines.  Started by tests/e2e/test_webchat_browser, which runs the daemon.
//
//   node webchat.js BASE_URL SCREENSHOT_DIR
//
// Two browser contexts are two visitors (separate localStorage, so separate
// visitor ids).  Loopback only.
'use strict';

const path = require('path');

const base = process.argv[2];
const shots = process.argv[3] || '.';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 10000;
const IBAN = 'DE89 3704 0044 0532 0130 00';
const OPENING = 'We are open Monday to Friday, 9am to 6pm.';
const ACK = "Please don't post bank details in public.";

let failed = 0;
function ok(cond, name, detail) {
  if (cond) {
    console.log('ok - ' + name);
  } else {
    failed++;
    console.log('not ok - ' + name + (detail ? ': ' + String(detail).replace(/\s+/g, ' ').slice(0, 400) : ''));
  }
  return !!cond;
}

// Resolves to true once fn() holds in the page, false after the timeout.
async function until(page, fn, arg, timeout = WAIT) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 50 });
    return true;
  } catch (e) {
    return false;
  }
}

async function visitor(browser, name, url, errors) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(name + ': ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(name + ': ' + m.text()); });
  await page.goto(url);
  const online = await until(page, () => document.getElementById('status').dataset.state === 'online');
  ok(online, name + ': page connects to the daemon');
  await page.fill('#name', name);
  await page.press('#name', 'Tab');  // "change" → the daemon learns the name
  return { ctx, page };
}

async function post(page, text) {
  await page.fill('#post-text', text);
  await page.click('#post-send');
}

async function main() {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    ok(false, 'playwright-core loads', e.message);
    return;
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Playwright gives every launch a fresh temporary profile directory.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage'],
  });
  const errors = [];
  try {
    await scenario(browser, errors);
  } finally {
    await browser.close();
  }
  ok(errors.length === 0, 'no script errors on the pages', errors.join(' | '));
}

async function scenario(browser, errors) {
  // ---- visitor A at "/" asks a question ----
  const A = await visitor(browser, 'Alice', base + '/', errors);
  const a = A.page;
  ok((await a.textContent('h1')) === 'Webchat <Test> & Co', 'title from the config, shown as text',
    await a.textContent('h1'));
  await post(a, 'What are your opening hours?');
  ok(await until(a, (want) => [...document.querySelectorAll('#board .post')].some((p) =>
    p.querySelector('.text') && p.querySelector('.text').textContent === 'What are your opening hours?' &&
    [...p.querySelectorAll('.answer p')].some((x) => x.textContent === want)), OPENING),
  'question posted, public answer appears under it');
  ok(await a.isVisible('#board .post.mine .you-badge'), 'own post is marked "you"');

  // ---- visitor B at /hooks/demo sees the same board ----
  const B = await visitor(browser, 'Bob', base + '/hooks/demo', errors);
  const b = B.page;
  ok(await until(b, (want) => [...document.querySelectorAll('#board .post')].some((p) =>
    p.querySelector('.author').textContent === 'Alice' &&
    [...p.querySelectorAll('.answer p')].some((x) => x.textContent === want)), OPENING),
  'second visitor sees the same board with the answer');
  ok(!(await b.isVisible('#board .post.mine')), "second visitor's board marks nothing as theirs");

  // ---- A posts bank details: hidden everywhere, moved to private ----
  await post(a, 'Please refund my order to ' + IBAN);
  const hiddenOn = (page) => until(page, (ack) => {
    const h = [...document.querySelectorAll('#board .post.hidden-post')];
    return h.length === 1 && !document.getElementById('board').textContent.includes('3704') &&
      [...h[0].querySelectorAll('.answer p')].some((x) => x.textContent.startsWith(ack));
  }, ACK);
  ok(await hiddenOn(a), "IBAN post hidden on the author's board, with a public acknowledgement");
  ok(await hiddenOn(b), "IBAN post hidden on the other visitor's board, with the acknowledgement");
  ok(await until(a, () => !document.getElementById('private-pane').hidden &&
    [...document.querySelectorAll('#dm-list .dm.bot')].some((d) => d.textContent.includes('bank details'))),
  "author's private pane opens with the bot's DM");
  const caseText = (await a.textContent('#case')) || '';
  ok(/^case #\d+$/.test(caseText), 'private pane shows the case', caseText);
  await b.waitForTimeout(500);
  ok(await b.isHidden('#private-pane') && (await b.$$('#dm-list .dm')).length === 0 &&
    !(await b.textContent('body')).includes('bank details, so I hid'),
  'the other visitor does not see the DM');

  // ---- A answers in the private pane; the bot replies there, same case ----
  await a.fill('#dm-text', 'It is order 4711.');
  await a.click('#dm-send');
  const num = caseText.replace(/\D/g, '');
  ok(await until(a, (n) => {
    const bots = [...document.querySelectorAll('#dm-list .dm.bot')];
    const you = [...document.querySelectorAll('#dm-list .dm.you')];
    return you.some((d) => d.textContent.includes('It is order 4711.')) &&
      bots.length >= 2 && bots[bots.length - 1].textContent.includes('case #' + n);
  }, num), "bot's private reply arrives in the pane, same case", caseText);
  ok((await b.$$('#dm-list .dm')).length === 0, 'the private talk stays private');

  // ---- markup in a post is shown as text, never run ----
  await post(b, '<img src=x onerror="window.__xss=1"><b>bold?</b> opening hours');
  ok(await until(a, () => [...document.querySelectorAll('#board .post .text')].some((t) =>
    t.textContent.startsWith('<img src=x'))), 'markup in a post is shown literally');
  ok(!(await a.evaluate(() => window.__xss === 1 || !!document.querySelector('#board img, #board b'))),
    'markup in a post is not interpreted');

  // ---- a reload keeps the visitor: same board, same private history ----
  await a.reload();
  ok(await until(a, () => document.getElementById('status').dataset.state === 'online' &&
    document.querySelectorAll('#board .post').length === 3 &&
    document.querySelectorAll('#dm-list .dm').length >= 3),
  'after a reload the visitor keeps the board and private history');
  await a.click('#open-private');
  await until(a, () => !document.getElementById('private-pane').hidden);
  await a.waitForTimeout(600);  // let entry animations finish

  await a.screenshot({ path: path.join(shots, 'webchat.png') });
  await b.screenshot({ path: path.join(shots, 'webchat-other.png') });
  await a.setViewportSize({ width: 420, height: 860 });
  await a.waitForTimeout(300);
  await a.screenshot({ path: path.join(shots, 'webchat-narrow.png') });
  ok(true, 'screenshots in ' + shots);
  await A.ctx.close();
  await B.ctx.close();
}

main().then(() => process.exit(failed ? 1 : 0), (e) => {
  ok(false, 'browser scenario ran to the end', e && e.stack ? e.stack.split('\n').slice(0, 3).join(' ') : e);
  process.exit(1);
});
