// One identity moving between the CLI and a real headless Chromium (issue 13; spec §9.6, §13.4):
// the browser continues from a backup the CLI wrote, talks with Ben (a CLI peer), writes its own
// backup, and the CLI continues from that one. Each move takes the identity over.
//
//   CLI_PYTHON=... BEN_HOME=... NEXT_HOME=... PASSPHRASE=...
//   node scripts/browser-device.mjs NODE_URL SHOTS_DIR PROFILE_DIR CLI_BACKUP BROWSER_BACKUP CONNECTION
// Prints one JSON document.

import { join } from 'node:path';
import { audit, DESKTOP, eventually, launch, peerfed, PHONE } from './browser-kit.mjs';

const [url, shots, profile, cliBackup, browserBackup, connection] = process.argv.slice(2);
const WAIT = { timeout: 60_000 };
const out = { console: [], requests: [], violations: [], cli: {} };

const ben = (...args) => peerfed(process.env.BEN_HOME, args);
const next = (...args) => peerfed(process.env.NEXT_HOME, args, process.env.PASSPHRASE);

const texts = (read) => read.messages.map((m) => m.text);

const context = await launch(profile);
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') out.console.push(m.text()); });
  page.on('pageerror', (e) => out.console.push(String(e)));
  page.on('request', (r) => { if (!r.url().startsWith('blob:')) out.requests.push(new URL(r.url()).origin); });
  const check = async (screen) => out.violations.push(...(await audit(page, screen)));

  // A new browser: continue from the CLI's backup instead of joining afresh.
  await page.goto(url + '/');
  await page.getByRole('button', { name: 'I have a backup' }).click();
  await page.locator('#import').waitFor(WAIT);
  await check('import');
  await page.screenshot({ path: join(shots, 'import-phone.png'), fullPage: true });
  await page.getByLabel('The backup’s passphrase').fill('not the passphrase');
  await page.getByLabel('The backup file').setInputFiles(cliBackup);
  await page.getByRole('button', { name: 'Open backup' }).click();
  out.wrongPassphrase = await page.locator('#import [role=alert]').textContent(WAIT);
  await page.getByLabel('The backup’s passphrase').fill(process.env.PASSPHRASE);
  await page.getByRole('button', { name: 'Open backup' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.peer = await page.locator('#peer-id').textContent();
  out.joined = await page.locator('main p').first().textContent();
  await check('home after import');
  out.keysOrigin = await page.locator('#keys-origin').textContent();
  // Opened again later, the page still says the keys came from a backup (the device record keeps it).
  await page.reload();
  await page.getByLabel('Your passphrase').fill(process.env.PASSPHRASE);
  await page.getByRole('button', { name: 'Open' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.keysOriginAgain = await page.locator('#keys-origin').textContent();

  // The conversation the CLI had is here, and goes on.
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks li', { hasText: 'Ben' }).getByRole('button', { name: 'Open' }).click();
  // Ben wrote after the backup was made, sealed with the scheme-2 session it carries (spec §9.6).
  await page.locator('#messages li.message', { hasText: 'Sealed after the backup was made.' }).waitFor(WAIT);
  out.imported = await page.locator('#messages li').allTextContents();
  out.importedState = await page.locator('#talk-state').textContent();
  await page.getByLabel('Your message').fill('Now from a browser.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine', { hasText: 'Now from a browser.' }).waitFor(WAIT);
  out.cli.benRead = await eventually(() => {
    const read = ben('read', connection);
    return texts(read).includes('Now from a browser.') ? read : null;
  }, "the browser's message at Ben's CLI");
  ben('send', connection, 'Glad you found your way back.');
  await page.locator('#messages li.message', { hasText: 'Glad you found your way back.' }).waitFor(WAIT);
  // The page writes last before its backup, so the terminal goes on in the page's sending chain and
  // the page, moved back later without a backup, still holds the ratchet Ben answers on (spec §14.6).
  await page.getByLabel('Your message').fill('Making a backup now.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine', { hasText: 'Making a backup now.' }).waitFor(WAIT);
  await eventually(() => texts(ben('read', connection)).includes('Making a backup now.') || null, "the page's last message at Ben's CLI");
  out.afterImport = await page.locator('#messages li').allTextContents();
  await check('conversation after import');
  await page.screenshot({ path: join(shots, 'conversation-phone.png'), fullPage: true });

  // The browser's own backup, downloaded; the CLI on another home continues from it.
  await page.setViewportSize(DESKTOP);
  await page.getByRole('button', { name: 'Home' }).click();
  await page.getByLabel('A passphrase for the backup').fill(process.env.PASSPHRASE);
  const [download] = await Promise.all([page.waitForEvent('download', WAIT), page.getByRole('button', { name: 'Download a backup' }).click()]);
  await download.saveAs(browserBackup);
  out.downloadName = download.suggestedFilename();
  out.backupDone = await page.locator('#backup-done').textContent(WAIT);
  await check('home with backup');
  await page.screenshot({ path: join(shots, 'backup-desktop.png'), fullPage: true });
  await page.setViewportSize(PHONE);

  out.cli.imported = next('id', 'import', browserBackup);
  out.cli.nextRead = next('read', connection);
  next('send', connection, 'And now from the terminal again.');
  out.cli.benReadAgain = await eventually(() => {
    const read = ben('read', connection);
    return texts(read).includes('And now from the terminal again.') ? read : null;
  }, "the second CLI's message at Ben's");

  // The terminal took the identity over: the open page is told plainly, and stops fetching.
  await page.locator('#moved').waitFor(WAIT);
  out.movedNotice = await page.locator('#moved').textContent();
  await check('moved');
  await page.screenshot({ path: join(shots, 'moved-phone.png'), fullPage: true });
  ben('send', connection, 'Only for the terminal.');
  out.cli.nextReadMoved = await eventually(() => {
    const read = next('read', connection);
    return texts(read).includes('Only for the terminal.') ? read : null;
  }, "Ben's message at the terminal that took over");
  // The terminal answers on scheme 2 and Ben reads it: the ratchet moved on past the state the
  // page holds, and the terminal used seqs the page's stored state would give out next (§9.5, §14.6).
  next('send', connection, 'Answered from the terminal.');
  out.cli.benReadTerminal = await eventually(() => {
    const read = ben('read', connection);
    return texts(read).includes('Answered from the terminal.') ? read : null;
  }, "the terminal's answer at Ben's CLI");
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks li', { hasText: 'Ben' }).getByRole('button', { name: 'Open' }).click();
  await page.getByLabel('Your message').fill('Is anyone there?');
  await page.getByRole('button', { name: 'Send' }).click();
  out.sendRefused = await page.locator('main [role=alert]').textContent(WAIT);
  // Opened again, the page still shows what it holds, says where the identity is, and fetches nothing.
  await page.reload();
  await page.getByLabel('Your passphrase').fill(process.env.PASSPHRASE);
  await page.getByRole('button', { name: 'Open' }).click();
  await page.locator('#moved').waitFor(WAIT);
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks li', { hasText: 'Ben' }).getByRole('button', { name: 'Open' }).click();
  out.heldAfterMove = await page.locator('#messages li').allTextContents();
  await check('conversation after the move');

  // The person moves it back here: the page listens again and the terminal is the one refused.
  // The page writes first: from its take-over's seq floor and, its sessions deleted, with scheme 1
  // (spec §9.5, R-9.5-5 and R-9.5-6), so Ben takes it and follows to scheme 1 (R-14.5-2).
  await page.getByRole('button', { name: 'Move it back to this device' }).click();
  await page.locator('#welcome').waitFor(WAIT);
  out.noticeAfterMoveBack = await page.locator('#device-notice').isVisible();
  await page.getByRole('button', { name: /Talks/ }).click();
  await page.locator('#talks li', { hasText: 'Ben' }).getByRole('button', { name: 'Open' }).click();
  await page.getByLabel('Your message').fill('Back on the page now.');
  await page.getByRole('button', { name: 'Send' }).click();
  await page.locator('#messages li.message.mine', { hasText: 'Back on the page now.' }).waitFor(WAIT);
  out.cli.benReadBack = await eventually(() => {
    const read = ben('read', connection);
    return texts(read).includes('Back on the page now.') ? read : null;
  }, "the page's first message after moving back at Ben's CLI");
  ben('send', connection, 'Back in the browser.');
  await page.locator('#messages li.message', { hasText: 'Back in the browser.' }).waitFor(WAIT);
  out.afterMoveBack = await page.locator('#messages li').allTextContents();
  await check('conversation after moving back');
  await page.screenshot({ path: join(shots, 'moved-back-phone.png'), fullPage: true });
} finally {
  await context.close();
}
out.requests = [...new Set(out.requests)];
console.log(JSON.stringify(out));
