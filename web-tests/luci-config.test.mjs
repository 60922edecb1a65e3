// LuCI's wanmon configuration view (openwrt-image/luci/.../view/wanmon/config.js) in a real
// browser: Debian's Chromium via playwright-core. LuCI's own JavaScript runtime is not on this
// machine, so a small stand-in gives the view what it uses (view.extend, rpc.declare,
// ui.createHandlerFn, E, _), loading the file the way LuCI's loader does (its body as a
// function). What the form saves is checked by the real `wanmon check-config` (WANMON_BIN);
// the real rpcd plugin and its save path are tested over JSON-RPC in `cargo xtask openwrt`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const WANMON = process.env.WANMON_BIN;
const ARTIFACTS = path.resolve(process.env.ARTIFACTS || 'target/web-artifacts');
const VIEW = fs.readFileSync(new URL('../openwrt-image/luci/www/luci-static/resources/view/wanmon/config.js', import.meta.url), 'utf8');
const SHIPPED = fs.readFileSync(new URL('../openwrt-image/files/etc/wanmon/config.json', import.meta.url), 'utf8');
const XSS = '<img src=x onerror=window.pwned=1>';

// The stand-in runtime: LuCI's E() (attributes, event handlers, children), _(), and an rpc
// whose calls are recorded; 'save' answers what window.saveAnswer says.
const RUNTIME = `(() => {
window._ = (s) => s;
window.E = (tag, attrs, children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (typeof value === 'function') node.addEventListener(key, value);
    else if (value != null) node.setAttribute(key, value);
  }
  for (const child of [].concat(children || [])) node.append(child instanceof Node ? child : String(child));
  return node;
};
window.saved = [];
window.saveAnswer = { message: 'saved and applied' };
const rpc = { declare: (d) => (...args) => {
  if (d.method === 'config') return Promise.resolve({ config: window.initialConfig });
  window.saved.push(args[0]);
  return Promise.resolve(window.saveAnswer);
} };
const ui = { createHandlerFn: (ctx, fn) => (ev) => fn.call(ctx, ev) };
const view = { extend: (o) => o };
window.start = async (source) => {
  const v = new Function('view', 'rpc', 'ui', source)(view, rpc, ui);
  document.body.replaceChildren(v.render(await v.load()));
};
})();`;

function checkConfig(text) {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wanmon-luci-')), 'config.json');
  fs.writeFileSync(file, text);
  try {
    return { ok: true, said: execFileSync(WANMON, ['check-config', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    return { ok: false, said: String(e.stderr) };
  }
}

test('the LuCI configuration form', { timeout: 120_000 }, async (t) => {
  assert.ok(WANMON, 'set WANMON_BIN to the wanmon binary that checks what the form saves');
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = [];
    page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
    page.on('pageerror', (e) => problems.push(String(e)));
    const open = async (config) => {
      await page.setContent(`<!doctype html><html><head><script>${RUNTIME}</script></head><body></body></html>`);
      await page.evaluate(([config, source]) => { window.initialConfig = config; return window.start(source); }, [config, VIEW]);
    };
    const rows = () => page.locator('#wanmon-form tbody tr');
    const cell = (row, n) => rows().nth(row).locator('td').nth(n).locator('input');
    const save = async () => {
      await page.click('#wanmon-form-save');
      return JSON.parse(await page.evaluate(() => window.saved.at(-1)));
    };

    await t.test('shows the shipped config as a form', async () => {
      await open(SHIPPED);
      assert.equal(await rows().count(), 2);
      assert.equal(await cell(0, 2).inputValue(), 'wan');
      assert.equal(await cell(1, 2).inputValue(), 'wwan');
      assert.equal(await cell(1, 4).inputValue(), '30');
      assert.deepEqual(problems, []);
      await page.screenshot({ path: path.join(ARTIFACTS, 'luci-config-form.png'), fullPage: true });
    });

    await t.test('edits links, their order and the holds; keeps every other key', async () => {
      await open(SHIPPED);
      await cell(1, 4).fill('40');
      await rows().nth(1).locator('button[title="Up"]').click();
      await page.click('text=Add link');
      await cell(2, 0).fill('lte');
      await cell(2, 2).fill('lte');
      await cell(2, 5).fill('192.0.2.7, 192.0.2.8');
      await rows().nth(2).locator('input[type=checkbox]').uncheck();
      await page.locator('#wanmon-form tr', { hasText: 'Failback hold' }).locator('input').fill('');
      await page.locator('#wanmon-form tr', { hasText: 'Web page token' }).locator('input').fill('q8J2vX0rT5mW9zL4nB7c');
      const saved = await save();
      assert.deepEqual(saved.links.map((l) => l.name), ['wwan', 'wan', 'lte']);
      assert.equal(saved.links[0].bias, 40);
      assert.equal(saved.links[0].label, 'Phone hotspot', 'keys the form does not show are kept');
      assert.deepEqual(saved.links[2], { name: 'lte', interface: 'lte', targets: ['192.0.2.7', '192.0.2.8'], enabled: false });
      assert.equal(saved.failback_hold_ms, undefined, 'an emptied field takes the default');
      assert.equal(saved.switch_hold_ms, 5000);
      assert.deepEqual(saved.web, { listen: 'br-lan:8080', token: 'q8J2vX0rT5mW9zL4nB7c' });
      const checked = checkConfig(JSON.stringify(saved));
      assert.ok(checked.ok, checked.said);
      assert.match(checked.said, /ok, 3 links: wwan, wan, lte/);
      assert.equal(await page.inputValue('textarea'), JSON.stringify(saved, null, 2), 'the text follows a saved form');
    });

    await t.test('a mistake goes to check-config, which names it; the answer is shown as text', async () => {
      await open(SHIPPED);
      await cell(0, 4).fill('fast');
      await page.evaluate((xss) => { window.saveAnswer = { errors: [`line 9: links[0].bias: got "fast" ${xss}`] }; }, XSS);
      const saved = await save();
      assert.equal(saved.links[0].bias, 'fast');
      const checked = checkConfig(JSON.stringify(saved, null, 2));
      assert.ok(!checked.ok);
      assert.match(checked.said, /links\[0\]\.bias: got "fast", expected/);
      assert.match(await page.locator('.alert-message.warning').innerText(), /Not saved[\s\S]*links\[0\]\.bias/);
      assert.equal(await page.evaluate(() => window.pwned), undefined);
      assert.equal(await page.locator('.alert-message img').count(), 0);
      assert.notEqual(await page.inputValue('textarea'), JSON.stringify(saved, null, 2), 'a refused save leaves the text');
    });

    await t.test('no links: the zone is used, the form adds none', async () => {
      await page.evaluate(() => { window.saveAnswer = { message: 'saved and applied' }; });
      await open('{"targets": ["192.0.2.1"]}');
      assert.equal(await rows().count(), 0);
      const saved = await save();
      assert.equal(saved.links, undefined);
      const checked = checkConfig(JSON.stringify(saved));
      assert.match(checked.said, /links from the firewall zone wan/);
    });

    await t.test('a file that is not JSON is edited as text', async () => {
      await open('{"links": [');
      assert.equal(await page.locator('#wanmon-form').count(), 0);
      await page.click('summary');
      await page.fill('textarea', '{"links": [{"name": "wan", "interface": "wan"}]}');
      await page.click('#wanmon-text-save');
      assert.equal(await page.evaluate(() => window.saved.at(-1)), '{"links": [{"name": "wan", "interface": "wan"}]}');
      assert.deepEqual(problems, []);
    });
  } finally {
    await browser.close();
  }
});
