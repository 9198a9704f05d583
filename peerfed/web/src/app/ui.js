// Building the page: every string goes in as text (textContent), never as HTML, and a string the
// client did not write itself is shown with its control and format characters visible (spec §9.5).

const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

/** `text` with each character of categories Cc, Cf, Zl, Zp, Cs shown as a \uXXXX escape (spec §9.5). */
export function visible(text) {
  return String(text).replace(INVISIBLE, (ch) => `\\u${ch.codePointAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A new element: `el('p', { class: 'note' }, 'text', child)`. Attributes are set one by one and
 * children that are strings become text nodes, so nothing passed here is ever parsed as HTML.
 */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/**
 * Text from a node or a peer, made safe to show (spec §9.5), in a <bdi> so its own direction never
 * reorders the words around it (a Latin name inside an Arabic sentence, or the other way).
 */
export function theirs(text) {
  const isolated = document.createElement('bdi');
  isolated.textContent = visible(text);
  return isolated;
}

/** Replace everything inside `parent` with `children`. */
export function show(parent, ...children) {
  parent.replaceChildren(...children.flat().filter(Boolean));
}
