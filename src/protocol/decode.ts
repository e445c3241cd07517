import { ClientFrame, CLIENT_FRAME_TYPES } from './frames.js';
import type { ErrorCode } from './codes.js';

export type DecodeResult =
  | { ok: true; frame: ClientFrame }
  | { ok: false; code: ErrorCode; message: string; id?: string };

const types = new Set<string>(CLIENT_FRAME_TYPES);

/**
 * Decode one client text frame. Never throws: malformed JSON, non-objects,
 * unknown types and schema violations each come back as a typed error.
 * Unknown keys (including `__proto__`) are rejected by the strict schemas.
 */
export function decodeClientFrame(data: string): DecodeResult {
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return { ok: false, code: 'bad_json', message: 'frame is not valid JSON' };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, code: 'bad_frame', message: 'frame must be a JSON object' };
  }
  const t = (raw as { t?: unknown }).t;
  const id = typeof (raw as { id?: unknown }).id === 'string' ? ((raw as { id: string }).id.slice(0, 64)) : undefined;
  if (typeof t !== 'string' || !types.has(t)) {
    return { ok: false, code: 'unknown_type', message: `unknown frame type ${JSON.stringify(String(t).slice(0, 32))}`, id };
  }
  const parsed = ClientFrame.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path?.length ? issue.path.join('.') : '(frame)';
    return { ok: false, code: 'bad_frame', message: `${t}: ${where}: ${issue?.message ?? 'invalid'}`, id };
  }
  return { ok: true, frame: parsed.data };
}
