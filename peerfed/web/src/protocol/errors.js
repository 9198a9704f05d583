// Errors with stable codes (spec §10). Every refusal of outside input is a ProtocolError whose
// `code` is one of the spec's codes; a program acts on the code, the message is for people.

export class ProtocolError extends Error {
  /**
   * @param {string} code a stable code of spec §10 or §13.8 (or `local.*` for a client's own refusal)
   * @param {string} message for people
   */
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = 'ProtocolError';
    this.code = code;
  }
}

/** A body field breaks its rule (spec §6.1); turned into `schema.invalid` at the envelope layer. */
export function invalid(message) {
  return new ProtocolError('schema.invalid', message);
}
