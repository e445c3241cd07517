/**
 * Confusable skeletons for handles, after Unicode TR39 §4 ("skeleton(X)"): two handles whose
 * skeletons are equal look alike, and confab gives them one owner (src/auth/handles.ts).
 *
 * TR39's skeleton is NFD, then each character replaced by its prototype from confusables.txt,
 * then NFD again. This is a small, explicit subset of that table — the look-alikes that matter
 * for confab's handles — applied after case folding, plus three deliberate widenings:
 *   - case is folded first (confab's handles are case-insensitive: `Bob` is `bob`);
 *   - `i`, `l`, `1`, `I`, `|`, `!` are one letter (TR39 maps `I`, `1`, `|` to `l` but keeps `i`;
 *     in many UI fonts `bob.smlth` and `bob.smith` are one glyph apart at best);
 *   - the separators `.`, `_`, `-` are one character (`bob_smith` passes for `bob.smith`).
 * The mapped set: digits and symbols that pass for letters (0→o, 1→l, 5→s, |→l), multi-letter
 * look-alikes (`rn`→`m`, `vv`→`w`, `cl`→`d`), and the Cyrillic and
 * Greek letters whose glyphs are Latin ones (a handle is ASCII today, HANDLE_RE; display names from
 * app tokens may not be, and the map keeps working if handles ever allow more). Combining marks are
 * dropped after NFD (`é` → `e`), and compatibility forms folded by NFKD (fullwidth `ｂ` → `b`).
 */

/** Single characters mapped to their Latin prototype (after lower-casing). */
const SINGLE: Record<string, string> = {
  // digits and ASCII symbols that pass for letters
  '0': 'o',
  '1': 'l',
  '|': 'l',
  '!': 'l',
  i: 'l',
  '5': 's',
  '$': 's',
  '@': 'a',
  // separators are one
  _: '.',
  '-': '.',
  // Cyrillic look-alikes
  а: 'a', в: 'b', с: 'c', ԁ: 'd', е: 'e', ё: 'e', һ: 'h', і: 'l', ї: 'l', ј: 'j', к: 'k', ӏ: 'l', м: 'm', н: 'h', о: 'o', р: 'p',
  ԛ: 'q', ѕ: 's', т: 't', у: 'y', ԝ: 'w', х: 'x', ү: 'y', ь: 'b', г: 'r', п: 'n', з: '3',
  // Greek look-alikes
  α: 'a', β: 'b', γ: 'y', ε: 'e', η: 'n', ι: 'l', κ: 'k', ν: 'v', ο: 'o', ρ: 'p', τ: 't', υ: 'u', χ: 'x', ω: 'w', μ: 'u', ϲ: 'c', ϳ: 'j',
};

/** Letter pairs that read as one letter (applied after the single-character map, left to right). */
const PAIRS: [string, string][] = [
  ['rn', 'm'],
  ['vv', 'w'],
  ['cl', 'd'],
];

/** The confusable skeleton of a handle: equal skeletons = handles that look alike. */
export function skeleton(handle: string): string {
  let s = handle.normalize('NFKD').toLowerCase();
  s = s.replace(/\p{M}+/gu, ''); // combining marks (accents) dropped
  let out = '';
  for (const ch of s) out += SINGLE[ch] ?? ch;
  for (const [from, to] of PAIRS) out = out.split(from).join(to);
  // runs of separators are one separator; leading/trailing separators do not tell handles apart
  return out.replace(/\.+/g, '.').replace(/^\.|\.$/g, '');
}

/** A name for the skeleton that every History adapter takes as a room (`_h-` + [a-z0-9._-] or base64url). */
export function skeletonRoom(handle: string): string {
  const sk = skeleton(handle);
  return /^[a-z0-9.]{1,64}$/.test(sk) ? `_h-${sk.replace(/\./g, '_')}` : `_h=${Buffer.from(sk, 'utf8').toString('base64url').slice(0, 120)}`;
}
