// Invite links (spec §13.4 registration, §13.10): a community's invite code travels in the page's
// fragment, `/#invite=CODE`, which browsers never send to a server, so no node or proxy logs it.
// Opening such a link fills the join form; the link is also drawn as a QR code (uqr, a small
// dependency-free encoder) so a person can carry it to their phone, with the link as text beside it.

import { encode } from 'uqr';
import { t } from './i18n.js';
import { el } from './ui.js';

const SVG = 'http://www.w3.org/2000/svg';
// Invite codes as nodes make them are short printable words; anything else is not taken.
const CODE = /^[A-Za-z0-9._~-]{1,128}$/;

/** The invite code in `hash` ('#invite=CODE'), or null. */
export function inviteFrom(hash) {
  const params = new URLSearchParams(String(hash ?? '').replace(/^#/, ''));
  const code = params.get('invite');
  return code && CODE.test(code) ? code : null;
}

/** The link that opens this page at `origin` with `code` filled in (in the fragment, never the query). */
export function inviteLink(origin, code) {
  return `${origin}/#invite=${encodeURIComponent(code)}`;
}

/** `text` as a QR code: an SVG of squares built node by node (never parsed), described by `label`. */
export function qrCode(text, label) {
  const { data, size } = encode(text, { ecc: 'M', border: 4 });
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('class', 'qr');
  svg.setAttribute('shape-rendering', 'crispEdges');
  const light = document.createElementNS(SVG, 'rect');
  light.setAttribute('width', String(size));
  light.setAttribute('height', String(size));
  light.setAttribute('fill', '#ffffff');
  svg.append(light);
  // One path for all dark modules keeps the drawing small.
  let d = '';
  data.forEach((row, y) => row.forEach((dark, x) => {
    if (dark) d += `M${x} ${y}h1v1h-1z`;
  }));
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', d);
  path.setAttribute('fill', '#000000');
  svg.append(path);
  return svg;
}

/** The invite link for `code` with its QR code, to open on a phone. */
export function invitePanel(origin, code) {
  const link = inviteLink(origin, code);
  return el(
    'section',
    { class: 'invite', 'aria-labelledby': 'invite-title' },
    el('h2', { id: 'invite-title' }, t('device.invite.title')),
    el('p', { class: 'hint' }, t('device.invite.about')),
    el('figure', {}, qrCode(link, t('device.invite.qr_label', { link })), el('figcaption', { class: 'peer-id', id: 'invite-link' }, link)),
  );
}
