/**
 * The text cleaning of OpenAI CLIP's tokenizer (`clip.simple_tokenizer.SimpleTokenizer.encode`), as far as it is
 * cheap to reproduce: `whitespace_clean(basic_clean(text)).lower()`, where `basic_clean` is
 * `html.unescape(html.unescape(ftfy.fix_text(text))).strip()`.
 *
 * Reproduced from ftfy 6 `fix_text` (default settings, looped to a fixed point per line, as ftfy does):
 * `unescape_html` (semicolon-terminated entities, numeric references and upper-cased Latin-1 names; skipped for
 * a line containing '<' and every later line), `fix_c1_controls` (U+0080..U+009F as Windows-1252),
 * `fix_latin_ligatures`, `fix_character_width` (full/half-width forms and U+3000 through NFKC),
 * `uncurl_quotes`, `fix_line_breaks`, `fix_surrogates` (lone surrogates become U+FFFD),
 * `remove_terminal_escapes`, `remove_control_chars` and NFC; then Python's `html.unescape` twice, Python's
 * `\s` whitespace collapse and strip, and lower-casing.
 *
 * Not reproduced: ftfy's mojibake repair (`fix_encoding`: text that was decoded with the wrong codec, e.g.
 * "cafÃ©" for "café"), and named HTML entities outside HTML 4 (the 253 HTML 4 names plus `&apos;` are known;
 * HTML5-only names such as `&checkmark;` stay as they are). Concept lists are plain words, which none of this
 * touches.
 */

/** HTML 4 entity names (and `apos`, the upper-case legacy aliases) → code point (hex). */
const ENTITY_TABLE =
  'AElig:c6 AMP:26 Aacute:c1 Acirc:c2 Agrave:c0 Alpha:391 Aring:c5 Atilde:c3 Auml:c4 Beta:392 COPY:a9 ' +
  'Ccedil:c7 Chi:3a7 Dagger:2021 Delta:394 ETH:d0 Eacute:c9 Ecirc:ca Egrave:c8 Epsilon:395 Eta:397 ' +
  'Euml:cb GT:3e Gamma:393 Iacute:cd Icirc:ce Igrave:cc Iota:399 Iuml:cf Kappa:39a LT:3c Lambda:39b ' +
  'Mu:39c Ntilde:d1 Nu:39d OElig:152 Oacute:d3 Ocirc:d4 Ograve:d2 Omega:3a9 Omicron:39f Oslash:d8 ' +
  'Otilde:d5 Ouml:d6 Phi:3a6 Pi:3a0 Prime:2033 Psi:3a8 QUOT:22 REG:ae Rho:3a1 Scaron:160 Sigma:3a3 ' +
  'THORN:de Tau:3a4 Theta:398 Uacute:da Ucirc:db Ugrave:d9 Upsilon:3a5 Uuml:dc Xi:39e Yacute:dd ' +
  'Yuml:178 Zeta:396 aacute:e1 acirc:e2 acute:b4 aelig:e6 agrave:e0 alefsym:2135 alpha:3b1 amp:26 ' +
  'and:2227 ang:2220 apos:27 aring:e5 asymp:2248 atilde:e3 auml:e4 bdquo:201e beta:3b2 brvbar:a6 ' +
  'bull:2022 cap:2229 ccedil:e7 cedil:b8 cent:a2 chi:3c7 circ:2c6 clubs:2663 cong:2245 copy:a9 ' +
  'crarr:21b5 cup:222a curren:a4 dArr:21d3 dagger:2020 darr:2193 deg:b0 delta:3b4 diams:2666 divide:f7 ' +
  'eacute:e9 ecirc:ea egrave:e8 empty:2205 emsp:2003 ensp:2002 epsilon:3b5 equiv:2261 eta:3b7 eth:f0 ' +
  'euml:eb euro:20ac exist:2203 fnof:192 forall:2200 frac12:bd frac14:bc frac34:be frasl:2044 gamma:3b3 ' +
  'ge:2265 gt:3e hArr:21d4 harr:2194 hearts:2665 hellip:2026 iacute:ed icirc:ee iexcl:a1 igrave:ec ' +
  'image:2111 infin:221e int:222b iota:3b9 iquest:bf isin:2208 iuml:ef kappa:3ba lArr:21d0 lambda:3bb ' +
  'lang:2329 laquo:ab larr:2190 lceil:2308 ldquo:201c le:2264 lfloor:230a lowast:2217 loz:25ca lrm:200e ' +
  'lsaquo:2039 lsquo:2018 lt:3c macr:af mdash:2014 micro:b5 middot:b7 minus:2212 mu:3bc nabla:2207 ' +
  'nbsp:a0 ndash:2013 ne:2260 ni:220b not:ac notin:2209 nsub:2284 ntilde:f1 nu:3bd oacute:f3 ocirc:f4 ' +
  'oelig:153 ograve:f2 oline:203e omega:3c9 omicron:3bf oplus:2295 or:2228 ordf:aa ordm:ba oslash:f8 ' +
  'otilde:f5 otimes:2297 ouml:f6 para:b6 part:2202 permil:2030 perp:22a5 phi:3c6 pi:3c0 piv:3d6 ' +
  'plusmn:b1 pound:a3 prime:2032 prod:220f prop:221d psi:3c8 quot:22 rArr:21d2 radic:221a rang:232a ' +
  'raquo:bb rarr:2192 rceil:2309 rdquo:201d real:211c reg:ae rfloor:230b rho:3c1 rlm:200f rsaquo:203a ' +
  'rsquo:2019 sbquo:201a scaron:161 sdot:22c5 sect:a7 shy:ad sigma:3c3 sigmaf:3c2 sim:223c spades:2660 ' +
  'sub:2282 sube:2286 sum:2211 sup:2283 sup1:b9 sup2:b2 sup3:b3 supe:2287 szlig:df tau:3c4 there4:2234 ' +
  'theta:3b8 thetasym:3d1 thinsp:2009 thorn:fe tilde:2dc times:d7 trade:2122 uArr:21d1 uacute:fa ' +
  'uarr:2191 ucirc:fb ugrave:f9 uml:a8 upsih:3d2 upsilon:3c5 uuml:fc weierp:2118 xi:3be yacute:fd ' +
  'yen:a5 yuml:ff zeta:3b6 zwj:200d zwnj:200c ';

/** Names that Python's `html.unescape` also decodes without the final ';' (the HTML5 legacy set). */
const LEGACY_NAMES =
  'AElig AMP Aacute Acirc Agrave Aring Atilde Auml COPY Ccedil ETH Eacute Ecirc Egrave Euml GT Iacute Icirc Igrave Iuml LT Ntilde Oacute Ocirc Ograve Oslash Otilde Ouml QUOT REG THORN Uacute Ucirc Ugrave Uuml Yacute aacute acirc acute aelig agrave amp aring atilde auml brvbar ccedil cedil cent copy curren deg divide eacute ecirc egrave eth euml frac12 frac14 frac34 gt iacute icirc iexcl igrave iquest iuml laquo lt macr micro middot nbsp not ntilde oacute ocirc ograve ordf ordm oslash otilde ouml para plusmn pound quot raquo reg sect shy sup1 sup2 sup3 szlig thorn times uacute ucirc ugrave uml uuml yacute yen yuml';

let entities: Map<string, string> | undefined;
let legacy: Set<string> | undefined;
let ftfyEntities: Map<string, string> | undefined;

function tables(): { entities: Map<string, string>; legacy: Set<string>; ftfyEntities: Map<string, string> } {
  if (entities === undefined || legacy === undefined || ftfyEntities === undefined) {
    entities = new Map();
    for (const pair of ENTITY_TABLE.trim().split(/\s+/)) {
      const [name, hex] = pair.split(':');
      entities.set(name, String.fromCodePoint(Number.parseInt(hex, 16)));
    }
    legacy = new Set(LEGACY_NAMES.split(' '));
    // ftfy decodes '&name;' for every entity, and '&NAME;' (upper-cased) for lower-case names whose
    // upper-cased form is not an entity itself, as the upper-cased character.
    ftfyEntities = new Map();
    for (const [name, ch] of entities) ftfyEntities.set(`&${name};`, ch);
    for (const [name, ch] of entities) {
      const upper = name.toUpperCase();
      if (name === name.toLowerCase() && upper !== name && !entities.has(upper)) {
        ftfyEntities.set(`&${upper};`, ch.toUpperCase());
      }
    }
  }
  return { entities, legacy, ftfyEntities };
}

/** Python's `html._invalid_charrefs`: 0, CR and the C1 range read as Windows-1252. */
const CP1252_C1 =
  '\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f' +
  '\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178';

function isInvalidCodepoint(cp: number): boolean {
  return (
    (cp >= 0x1 && cp <= 0x8) ||
    cp === 0xb ||
    (cp >= 0xe && cp <= 0x1f) ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe
  );
}

/** Python's `html._replace_charref` for a numeric reference (`#65`, `#x41;`). */
function numericRef(s: string): string {
  const body = s.endsWith(';') ? s.slice(0, -1) : s;
  const num =
    body[1] === 'x' || body[1] === 'X'
      ? Number.parseInt(body.slice(2), 16)
      : Number.parseInt(body.slice(1), 10);
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return CP1252_C1[num - 0x80];
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff || !Number.isFinite(num)) return '\ufffd';
  if (isInvalidCodepoint(num)) return '';
  return String.fromCodePoint(num);
}

const HTML_UNESCAPE_RE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g;

/** Python's `html.unescape` (with the HTML 4 entity names, see the module comment). */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  const { entities, legacy } = tables();
  return text.replace(HTML_UNESCAPE_RE, (_m, s: string) => {
    if (s[0] === '#') return numericRef(s);
    if (s.endsWith(';') ? entities.has(s.slice(0, -1)) : legacy.has(s)) {
      return entities.get(s.endsWith(';') ? s.slice(0, -1) : s) as string;
    }
    // The longest legacy name that starts the reference, e.g. '&ampx' -> '&x'.
    for (let x = s.length - 1; x > 1; x--) {
      const name = s.slice(0, x);
      if (legacy.has(name)) return entities.get(name) + s.slice(x);
    }
    return `&${s}`;
  });
}

const FTFY_ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;

/** ftfy's `unescape_html`: only semicolon-terminated references. */
function ftfyUnescapeHtml(text: string): string {
  if (!text.includes('&')) return text;
  const { ftfyEntities } = tables();
  return text.replace(FTFY_ENTITY_RE, (m) => {
    const ch = ftfyEntities.get(m);
    if (ch !== undefined) return ch;
    if (m.startsWith('&#')) {
      const u = htmlUnescape(m);
      return u.includes(';') ? m : u;
    }
    return m;
  });
}

const LIGATURES: Readonly<Record<string, string>> = {
  '\u0132': 'IJ',
  '\u0133': 'ij',
  '\u0149': '\u02bcn',
  '\u01f1': 'DZ',
  '\u01f2': 'Dz',
  '\u01f3': 'dz',
  '\u01c4': 'D\u017d',
  '\u01c5': 'D\u017e',
  '\u01c6': 'd\u017e',
  '\u01c7': 'LJ',
  '\u01c8': 'Lj',
  '\u01c9': 'lj',
  '\u01ca': 'NJ',
  '\u01cb': 'Nj',
  '\u01cc': 'nj',
  '\ufb00': 'ff',
  '\ufb01': 'fi',
  '\ufb02': 'fl',
  '\ufb03': 'ffi',
  '\ufb04': 'ffl',
  '\ufb05': '\u017ft',
  '\ufb06': 'st',
};
const LIGATURE_RE = /[\u0132\u0133\u0149\u01c4-\u01cc\u01f1-\u01f3\ufb00-\ufb06]/g;
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
const C1_RE = /[\u0080-\u009f]/g;
const LINE_BREAK_RE = /\r\n|[\r\u2028\u2029\u0085]/g;
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: ftfy's remove_terminal_escapes matches ESC [
const TERMINAL_ESCAPE_RE = /\x1b\[[0-9;]*[a-zA-Z]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the characters ftfy's remove_control_chars drops
const CONTROL_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

/** One pass of ftfy's fixers over one line. */
function ftfyPass(text: string, decodeEntities: boolean): string {
  if (decodeEntities) text = ftfyUnescapeHtml(text);
  text = text.replace(C1_RE, (c) => CP1252_C1[c.charCodeAt(0) - 0x80]);
  text = text.replace(LIGATURE_RE, (c) => LIGATURES[c] ?? c);
  text = text.replace(WIDTH_RE, (c) => (c === '\u3000' ? ' ' : c.normalize('NFKC')));
  text = text.replace(/[\u02bc\u2018-\u201b]/g, "'").replace(/[\u201c-\u201f]/g, '"');
  text = text.replace(LINE_BREAK_RE, '\n');
  text = text.replace(LONE_SURROGATE_RE, '\ufffd');
  text = text.replace(TERMINAL_ESCAPE_RE, '');
  text = text.replace(CONTROL_RE, '');
  return text.normalize('NFC');
}

/** ftfy's `fix_text` with its defaults, less the mojibake repair (see the module comment). */
export function ftfyFixText(text: string): string {
  let out = '';
  let decodeEntities = true;
  let pos = 0;
  while (pos < text.length) {
    const nl = text.indexOf('\n', pos);
    const end = nl < 0 ? text.length : nl + 1;
    let segment = text.slice(pos, end);
    if (segment.includes('<')) decodeEntities = false; // ftfy's unescape_html='auto', sticky for later lines
    for (let i = 0; i < 100; i++) {
      const fixed = ftfyPass(segment, decodeEntities);
      if (fixed === segment) break;
      segment = fixed;
    }
    out += segment;
    pos = end;
  }
  return out;
}

/** Python's `str.isspace()` characters (what `\s` and `strip()` match in Python 3). */
const PY_SPACE =
  '\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_SPACES_RE = new RegExp(`[${PY_SPACE}]+`, 'g');
const PY_STRIP_RE = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

/**
 * `whitespace_clean(basic_clean(text)).lower()` of OpenAI CLIP's tokenizer (see the module comment for what
 * of ftfy is left out).
 */
export function clipCleanText(text: string): string {
  let t = htmlUnescape(htmlUnescape(ftfyFixText(text)));
  t = t.replace(PY_STRIP_RE, '');
  t = t.replace(PY_SPACES_RE, ' ').replace(PY_STRIP_RE, '');
  return t.toLowerCase();
}
