// The peerfed protocol core for the browser client (spec/peerfed-v1.md §2-§9, §13): pure, no I/O, no clock.
export * from './errors.js';
export * from './encoding.js';
export * from './crypto.js';
export * from './identity.js';
export * from './fields.js';
export * from './bodies.js';
export * from './node_bodies.js';
export * from './envelope.js';
export * from './sealing.js';
export * from './work.js';
export * from './connection.js';
export * from './node_document.js';
export * from './node_request.js';
export * from './sign_in.js';
export * from './backup.js';
export * from './topics.js';
export * from './web_client.js';
