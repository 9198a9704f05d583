// This device, on screen (spec §9.6, §13.4): download a backup of everything this page holds, in
// the CLI's format, and continue from a backup on a new browser, which moves the identity here.
// Every word goes through t(); the backup is read and written in this page and never sent.

import { peerIdText, readBackup, writeBackup } from '../protocol/index.js';
import { currentKey, join, renewKeysIfDue } from './account.js';
import { backupOf, metaOf, talkFromBackup } from './device.js';
import { busy, field, problem } from './forms.js';
import { t } from './i18n.js';
import { deviceId, saveDevice, saveState } from './keystore.js';
import { base64, call, NodeError, publishBundle } from './node.js';
import { prekeyFor, secretsFor } from './sessions.js';
import { openBundle } from './talk.js';
import { sealState, seqFloor, stateKey } from './talk_state.js';
import { el, show, theirs } from './ui.js';

const FILE_NAME = 'peerfed-backup.peerfed';

/**
 * Renew the encryption key as the CLI does (spec §12: 60-day bundles, renewed from 20 days before
 * their end): keep the new keyring under the passphrase held in memory and publish its bundle.
 * Resolves true when it renewed. Throws NodeError, ProtocolError.
 */
export async function keepKeysFresh(ctx) {
  if (!renewKeysIfDue(ctx.keys, ctx.now())) return false;
  await saveDevice(ctx.keys, ctx.passphrase, { node: ctx.url, name: ctx.name, fromBackup: ctx.fromBackup });
  ctx.bundle = await publishBundle(ctx.url, ctx.token, ctx.keys.seed, currentKey(ctx.keys), ctx.name, prekeyFor(ctx.keys.seed, ctx.now));
  return true;
}

/** The "keep a backup" part of the home screen: a passphrase, then a download. */
export function backupPanel(ctx) {
  const pass = field('backup-passphrase', t('device.backup.passphrase'), {
    type: 'password',
    hint: t('device.backup.passphrase_hint'),
    autocomplete: 'new-password',
  });
  const outcome = el('div', { 'aria-live': 'polite' });
  const form = el('form', { id: 'backup', novalidate: true }, pass.nodes, el('p', {}, el('button', { type: 'submit' }, t('device.backup.download'))), outcome);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!pass.input.value) {
      show(outcome, el('p', { class: 'error', role: 'alert' }, t('device.backup.needs_passphrase')));
      return;
    }
    busy(form, true);
    show(outcome, el('p', { role: 'status' }, t('device.backup.making')));
    try {
      const secrets = await secretsFor(ctx.keys.seed);
      const bytes = await writeBackup(backupOf(ctx.keys, ctx.talk, { node: ctx.url, name: ctx.name, secrets }), pass.input.value);
      const link = el('a', { href: URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' })), download: FILE_NAME, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      // The object URL is dropped at once: the file is written, and the bytes need not stay reachable.
      setTimeout(() => URL.revokeObjectURL(link.href), 0);
      pass.input.value = '';
      show(outcome, el('p', { role: 'status', id: 'backup-done' }, t('device.backup.done', { file: FILE_NAME })));
    } catch (error) {
      show(outcome, problem(error));
    } finally {
      busy(form, false);
    }
  });
  return el(
    'section',
    { class: 'device', 'aria-labelledby': 'backup-title' },
    el('h2', { id: 'backup-title' }, t('device.backup.title')),
    el('p', { class: 'hint' }, t('device.backup.about')),
    form,
  );
}

// The other side's current key bundle, from our node, for a conversation whose kept bundle expired.
function bundleFrom(url, token, now) {
  return async (peer) => {
    const answer = await call(url, `/api/v1/keys/${peerIdText(peer)}`, { token });
    return openBundle(base64(answer.key_bundle), peer, now);
  };
}

/**
 * Continue from a backup file: pick it, give its passphrase; the keys and conversations it holds
 * come into this page (kept under the same passphrase), and the identity moves to this device
 * (spec §13.4: importing is the person asking to move). `done(keys, session, name)` follows.
 */
export function importScreen(main, url, { done, back }) {
  const file = field('backup-file', t('device.import.file'), { type: 'file', hint: t('device.import.file_hint') });
  const pass = field('backup-open-passphrase', t('device.import.passphrase'), {
    type: 'password',
    hint: t('device.import.passphrase_hint'),
    autocomplete: 'current-password',
  });
  const outcome = el('div', { 'aria-live': 'polite' });
  const form = el(
    'form',
    { id: 'import', novalidate: true },
    file.nodes,
    pass.nodes,
    el('p', { class: 'actions' }, el('button', { type: 'submit' }, t('device.import.open')), ' ', el('button', { type: 'button', class: 'quiet', onclick: back }, t('device.import.back'))),
    outcome,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = file.input.files?.[0];
    if (!chosen) {
      show(outcome, el('p', { class: 'error', role: 'alert' }, t('device.import.no_file')));
      return;
    }
    busy(form, true);
    show(outcome, el('p', { role: 'status' }, t('device.import.opening')));
    try {
      const backup = await readBackup(new Uint8Array(await chosen.arrayBuffer()), pass.input.value);
      const home = metaOf(backup, 'node');
      if (typeof home === 'string' && home !== url) throw new NodeError('local.other_node', home);
      const name = typeof metaOf(backup, 'name') === 'string' ? metaOf(backup, 'name') : '';
      const now = Math.floor(Date.now() / 1000);
      // The backup's sessions and pre-key secrets come in before the sign-in publishes a bundle, so
      // what the other side sealed to the device the backup came from opens here (spec §9.6, §14.4);
      // any session this browser held for the identity before is stale now and goes.
      const secrets = await secretsFor(backup.keys.seed, { fresh: true });
      secrets.takeBackup(backup.meta);
      const session = await join(url, backup.keys, { name, device: await deviceId(), takeOver: true, prekeyFor: prekeyFor(backup.keys.seed, () => now) });
      const talk = await talkFromBackup(backup, { now, bundleFor: bundleFrom(url, session.token, now) });
      // Opening a backup takes the identity over: the device it came from may have sent more since,
      // so messages are numbered from the take-over's floor on (spec §9.5, R-9.5-5). The backup's
      // sessions stay: R-9.5-6 is for a take-over that brings no backup in.
      talk.seqFloor = seqFloor(now);
      await saveState(sealState(talk, stateKey(backup.keys.seed)));
      await saveDevice(backup.keys, pass.input.value, { node: url, name, fromBackup: true });
      await secrets.keep();
      // The node let the other device's one-time pre-keys go at the take-over (spec §13.5): this
      // page's go up before anything is sent (R-9.5-7), one at a time with the sign-in's own top-up;
      // unreachable now, the next sync tries again.
      await secrets.topUp(backup.keys.seed, url, (path, options) => call(url, path, { ...options, token: session.token }), () => now);
      done(backup.keys, session, name, pass.input.value);
    } catch (error) {
      busy(form, false);
      if (error.code === 'local.other_node') show(outcome, el('p', { class: 'error', role: 'alert' }, t('device.import.other_node'), ' ', theirs(error.message)));
      else show(outcome, problem(error));
    }
  });
  show(
    main,
    el('h1', { tabindex: '-1', id: 'screen-title' }, t('device.import.title')),
    el('p', {}, t('device.import.about')),
    form,
  );
  document.getElementById('screen-title').focus();
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * The one place this page speaks about the device and its connection, above every screen: an
 * `auth.moved` said plainly (spec §13.4), and a dropped live connection said calmly. Returns
 * `{ moved(at, moveBack), connection(state, wait), clear() }`.
 */
export function deviceNotice(main) {
  let region = document.getElementById('device-notice');
  if (!region) {
    region = el('aside', { id: 'device-notice', class: 'device-notice', 'aria-label': t('device.notice.label'), hidden: true });
    main.before(region);
  }
  let isMoved = false;
  return {
    moved(at, moveBack) {
      isMoved = true;
      const outcome = el('div', { 'aria-live': 'polite' });
      const again = el('button', { type: 'button', class: 'quiet' }, t('device.moved.move_back'));
      again.addEventListener('click', async () => {
        again.disabled = true;
        try {
          await moveBack();
        } catch (error) {
          again.disabled = false;
          show(outcome, problem(error));
        }
      });
      region.hidden = false;
      show(
        region,
        el('div', { role: 'alert', id: 'moved', class: 'notice' },
          el('p', {}, el('strong', {}, t('device.moved.title'))),
          el('p', {}, at ? t('device.moved.since', { when: when(at) }) : t('device.moved.no_time')),
          el('p', {}, t('device.moved.kept'))),
        el('p', {}, again),
        outcome,
      );
    },
    connection(state, wait) {
      if (isMoved) return;
      region.hidden = false;
      if (state === 'lost') {
        show(region, el('p', { role: 'status', id: 'connection', class: 'notice calm' }, t('device.live.lost', { seconds: Math.ceil(wait / 1000) })));
      } else if (state === 'back') {
        show(region, el('p', { role: 'status', id: 'connection', class: 'notice calm' }, t('device.live.back')));
      }
    },
    clear() {
      isMoved = false;
      region.hidden = true;
      show(region);
    },
  };
}
