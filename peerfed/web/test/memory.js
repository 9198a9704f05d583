// Shared by the tests that run two devices in one process: a node URL that is never reached, the
// clock in seconds, and a store in memory standing in for an IndexedDB record ({ load, save }).

export const NODE = 'https://node.example';
export const now = () => Math.floor(Date.now() / 1000);
export const memory = () => {
  let held = null;
  return { load: async () => held, save: async (bytes) => { held = bytes; } };
};
