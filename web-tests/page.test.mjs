// The wanmon status page in a real browser: Debian's Chromium driven by playwright-core, against
// the real daemon in network namespaces while links break. Needs root (namespaces) and
// WANMON_BIN (the daemon to test). Screenshots go to ARTIFACTS (default target/web-artifacts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const WANMON = process.env.WANMON_BIN;
const ARTIFACTS = path.resolve(process.env.ARTIFACTS || 'target/web-artifacts');
const TOKEN = '0123456789abcdef';
const XSS = '<img src=x onerror=alert(1)>';
const id = process.pid % 100000;
const ns = { router: `wbr-${id}`, a: `wba-${id}`, b: `wbb-${id}` };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wanmon-web-'));

const sh = (...args) => execFileSync(args[0], args.slice(1), { encoding: 'utf8' });
const routeDevice = () => / dev (\S+)/.exec(sh('ip', '-n', ns.router, 'route', 'get', '192.0.2.1'))?.[1];
// wanmon's table does not exist until its first route is written: no route yet, not an error.
const wanmonTable = () => { try { return sh('ip', '-n', ns.router, 'route', 'show', 'table', '22349'); } catch { return ''; } };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, seconds, check) {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(100);
  }
  assert.fail(`waited ${seconds} s for ${what}`);
}

function topology() {
  for (const n of Object.values(ns)) {
    try { sh('ip', 'netns', 'del', n); } catch {}
    sh('ip', 'netns', 'add', n);
    sh('ip', '-n', n, 'link', 'set', 'lo', 'up');
  }
  for (const [link, isp, mine, theirs] of [['wan', ns.a, '198.51.100.2/30', '198.51.100.1/30'], ['wwan', ns.b, '198.51.100.6/30', '198.51.100.5/30']]) {
    sh('ip', 'link', 'add', link, 'netns', ns.router, 'type', 'veth', 'peer', 'name', 'isp', 'netns', isp);
    sh('ip', '-n', ns.router, 'addr', 'add', mine, 'dev', link);
    sh('ip', '-n', isp, 'addr', 'add', theirs, 'dev', 'isp');
    sh('ip', '-n', ns.router, 'link', 'set', link, 'up');
    sh('ip', '-n', isp, 'link', 'set', 'isp', 'up');
    for (const target of ['192.0.2.1/32', '203.0.113.1/32']) sh('ip', '-n', isp, 'addr', 'add', target, 'dev', 'lo');
  }
  sh('ip', '-n', ns.router, 'route', 'add', 'default', 'via', '198.51.100.1', 'dev', 'wan', 'metric', '10');
  sh('ip', '-n', ns.router, 'route', 'add', 'default', 'via', '198.51.100.5', 'dev', 'wwan', 'metric', '20');
}

function dropAll(isp, on) {
  if (on) {
    sh('ip', 'netns', 'exec', isp, 'nft', 'add', 'table', 'inet', 'wbtest');
    sh('ip', 'netns', 'exec', isp, 'nft', 'add', 'chain', 'inet', 'wbtest', 'in', '{ type filter hook input priority 0; policy drop; }');
  } else {
    sh('ip', 'netns', 'exec', isp, 'nft', 'delete', 'table', 'inet', 'wbtest');
  }
}

test('the status page in a real browser', { timeout: 180_000 }, async (t) => {
  assert.ok(WANMON, 'set WANMON_BIN to the wanmon binary to test');
  assert.equal(process.getuid(), 0, 'needs root for network namespaces');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  topology();
  const config = path.join(dir, 'config.json');
  fs.writeFileSync(config, JSON.stringify({
    targets: ['192.0.2.1', '203.0.113.1'],
    web: { listen: '127.0.0.1:8080', token: TOKEN },
    links: [
      { name: 'wan', label: 'Fibre', device: 'wan' },
      { name: 'wwan', label: XSS, device: 'wwan', gateway: '198.51.100.5', bias: 20, warning: `interface wwan is in no firewall zone with masquerading ${XSS}` },
    ],
  }));
  const daemon = spawn('ip', ['netns', 'exec', ns.router, WANMON, 'run', '--config', config, '--socket', path.join(dir, 'sock')], { stdio: 'inherit' });
  // Chromium runs inside the router's namespace, where the page is served.
  const wrapper = path.join(dir, 'chromium');
  fs.writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns.router} /usr/bin/chromium "$@"\n`, { mode: 0o755 });
  const browser = await chromium.launch({
    executablePath: wrapper,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const shot = async (page, name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  try {
    await until('the first choice', 10, () => routeDevice() === 'wan' && wanmonTable().includes('wan'));
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems = [];
    const requests = [];
    let dialogs = 0;
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('request', (r) => requests.push(r.url()));
    page.on('dialog', async (d) => { dialogs += 1; await d.dismiss(); });
    const card = (name) => page.locator('.card', { has: page.locator('.muted', { hasText: `(${name}` }) });

    await t.test('loads with no console errors and no external resources', async () => {
      const response = await page.goto('http://127.0.0.1:8080/');
      assert.equal(response.status(), 200);
      await page.waitForSelector('.card.up');
      await shot(page, '01-loaded-desktop');
      assert.deepEqual(problems, []);
      assert.ok(requests.every((u) => u.startsWith('http://127.0.0.1:8080/')), requests.join(' '));
    });

    // Served as it is: the router's binary carries it plain, where LZMA packs it best.
    await t.test('the page and everything it needs fit in 8 KB', async () => {
      const size = await page.evaluate(async () => {
        const r = await fetch('/', { cache: 'no-store' });
        return { length: Number(r.headers.get('content-length')), encoding: r.headers.get('content-encoding') };
      });
      assert.equal(size.encoding, null);
      assert.ok(size.length > 0 && size.length <= 8192, `page is ${size.length} bytes`);
      console.log(`page size: ${size.length} bytes`);
    });

    await t.test('each link shows live telemetry and the route mark', async () => {
      for (const name of ['wan', 'wwan']) {
        const text = await card(name).innerText();
        assert.match(text, /\d+\.\d ms/, text);
        assert.match(text, /UP/, 'state in words, not only colour');
      }
      assert.match(await card('wan').innerText(), /DEFAULT ROUTE/);
      await until('a sparkline of the score', 10, async () => (await card('wan').locator('polyline').count()) > 0);
    });

    await t.test('a link label with markup renders as text and runs nothing', async () => {
      const label = await page.locator('.card .name').nth(1).textContent();
      assert.equal(label, XSS);
      // The OpenWrt init script's firewall warning is shown with the link, as text.
      assert.ok((await card('wwan').innerText()).includes(`no firewall zone with masquerading ${XSS}`));
      assert.ok(!(await card('wan').innerText()).includes('firewall'));
      assert.equal(await page.locator('.card img').count(), 0);
      assert.equal(dialogs, 0);
    });

    await t.test('when wan breaks, its state and the route mark change', async () => {
      dropAll(ns.a, true);
      await until('the route to move to wwan', 10, () => routeDevice() === 'wwan');
      await until('the page to mark wwan', 5, async () => /DEFAULT ROUTE/.test(await card('wwan').innerText()));
      await until('wan shown dead', 5, async () => /DEAD/.test(await card('wan').innerText()));
      await shot(page, '02-wan-dead');
      const decisions = await page.locator('#log').innerText();
      assert.match(decisions, /wan is dead/);
      dropAll(ns.a, false);
    });

    await t.test('without the token, or with a wrong one, the page refuses and nothing changes', async () => {
      await page.selectOption('#link', 'wan');
      await page.fill('#token', '');
      await page.click('#force');
      await until('the missing-token message', 5, async () => /Enter the token/.test(await page.locator('#msg').innerText()));
      await page.fill('#token', 'not-the-right-token');
      await page.click('#force');
      await until('the refusal', 5, async () => /Refused: wrong token/.test(await page.locator('#msg').innerText()));
      // The refused request is a 403 by design; the browser reports it as a failed load.
      const refused = problems.findIndex((p) => p.includes('status of 403'));
      assert.ok(refused >= 0, 'the refusal came as a 403');
      problems.splice(refused, 1);
      await shot(page, '03-refused');
      assert.equal(routeDevice(), 'wwan');
    });

    await t.test('forcing a link with the token moves the route; auto gives control back', async () => {
      await until('wan up again', 10, async () => /UP/.test(await card('wan').innerText()));
      await page.selectOption('#link', 'wan');
      await page.fill('#token', TOKEN);
      await page.click('#force');
      await until('the route to move to wan', 5, () => routeDevice() === 'wan');
      await until('the confirmation', 5, async () => /forced to wan/.test(await page.locator('#msg').innerText()));
      await until('the page to show the forced mode', 5, async () => /forced to wan/.test(await page.locator('#mode').innerText()));
      await shot(page, '04-forced');
      await page.click('#auto');
      await until('auto mode', 5, async () => /mode: auto/.test(await page.locator('#mode').innerText()));
    });

    await t.test('readable at phone width', async () => {
      await page.setViewportSize({ width: 360, height: 740 });
      await sleep(300);
      await shot(page, '05-phone');
      const overflow = await page.evaluate(() => document.scrollingElement.scrollWidth);
      const wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > 360.5)
        .map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}px`)
        .slice(0, 5));
      assert.ok(overflow <= 360, `the page is ${overflow} px wide at 360 px: ${wide.join(', ')}`);
    });
    assert.deepEqual(problems, [], 'no console errors during the whole run');
  } finally {
    await browser.close();
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('exit', r));
    for (const n of Object.values(ns)) { try { sh('ip', 'netns', 'del', n); } catch {} }
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
