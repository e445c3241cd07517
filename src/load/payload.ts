/**
 * The text of a load message: `L<run>:<seq>:` then padding to the wanted size.
 * `run` tells this run's messages from anything else in the room (other users,
 * earlier runs); `seq` numbers the message within its room (0, 1, 2, …).
 */

const PAD = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A run id: 6 lowercase hex-ish chars, fits in handles and message texts. */
export function newRunId(random: () => number = Math.random): string {
  let s = '';
  for (let i = 0; i < 6; i++) s += '0123456789abcdef'[Math.floor(random() * 16)];
  return s;
}

/** Encode message `seq` of a room for `run`, padded to `bytes` characters (never shorter than its header). */
export function encodePayload(run: string, seq: number, bytes: number): string {
  const head = `L${run}:${seq}:`;
  if (head.length >= bytes) return head;
  let pad = '';
  while (pad.length < bytes - head.length) pad += PAD;
  return head + pad.slice(0, bytes - head.length);
}

/** The room sequence number of a message of `run`, or undefined when the text is not one of this run's. */
export function decodePayload(run: string, text: string): number | undefined {
  if (text.length < run.length + 3 || text.charCodeAt(0) !== 76 /* L */ || !text.startsWith(run, 1) || text[run.length + 1] !== ':') return undefined;
  const end = text.indexOf(':', run.length + 2);
  if (end < 0) return undefined;
  const digits = text.slice(run.length + 2, end);
  if (!/^\d{1,9}$/.test(digits)) return undefined;
  return Number(digits);
}
