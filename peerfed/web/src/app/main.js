// The web client's entry point (spec §13.10): read the node this page came from, show who it is
// and its support resources. All cryptography runs here, in the page; keys never leave it.

import { nodeDocument, nodeUrl } from './node.js';
import { renderResources } from './resources.js';
import { el, show, theirs } from './ui.js';

const main = document.getElementById('main');
const resources = document.getElementById('resources');

function failed(message, error) {
  show(
    main,
    el('h1', {}, 'Something went wrong'),
    el('p', { class: 'error', role: 'alert' }, message, ' ', error && error.code ? `(${error.code})` : ''),
  );
}

async function start() {
  const url = nodeUrl(location.origin);
  let doc;
  try {
    doc = await nodeDocument(url);
  } catch (error) {
    failed('This community’s server did not answer as it should. Try again in a little while.', error);
    return;
  }
  show(document.getElementById('community'), theirs(doc.name));
  document.title = `${doc.name} · Peer support`;
  renderResources(resources, doc);
  resources.hidden = false;
  show(
    main,
    el('h1', {}, theirs(doc.name)),
    el('p', {}, theirs(doc.description)),
  );
}

start();
