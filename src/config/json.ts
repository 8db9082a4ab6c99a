// A strict JSON reader for files people write (the config file). It accepts
// exactly what JSON.parse accepts and returns the same values, except that a
// key given twice in one object is an error naming the key by its path
// (JSON.parse silently keeps the last one), and every error names the line
// and column. Linear in the input; the nesting depth is bounded so that no
// input can exhaust the stack.

/** Deeper nesting is refused: a config file needs three levels. */
export const JSON_MAX_DEPTH = 64;

export type JsonErrorReason = 'syntax' | 'duplicate-key';

export class JsonError extends Error {
  constructor(
    readonly reason: JsonErrorReason,
    message: string,
    /** 1-based, as editors count. */
    readonly line: number,
    /** 1-based, in UTF-16 code units from the start of the line. */
    readonly column: number,
    /** The key path of the value being read ("networks[1].vni"); "" at the top. */
    readonly path: string,
  ) {
    super(`${message} at line ${line}, column ${column}`);
    this.name = 'JsonError';
  }
}

/** Parses text as one JSON value. Throws JsonError. With `keys`, records
 *  where each object member's key starts (an offset into text), by its key
 *  path ("networks[1].mtu"), so that a later complaint about a value can
 *  name its line (see lineAndColumn). */
export function parseStrictJson(text: string, keys?: Map<string, number>): unknown {
  return new Reader(text, keys).document();
}

/** The 1-based line and column (in UTF-16 code units) of offset in text. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class Reader {
  private pos = 0;
  /** Keys and indices from the document down to the value being read; only
   *  turned into text for an error. */
  private readonly path: (string | number)[] = [];

  constructor(private readonly text: string, private readonly keys?: Map<string, number>) {}

  document(): unknown {
    this.skipSpace();
    const value = this.value(0);
    this.skipSpace();
    if (this.pos < this.text.length) this.fail(`unexpected ${this.describe()} after the JSON value`);
    return value;
  }

  private value(depth: number): unknown {
    const c = this.text.charCodeAt(this.pos);
    switch (c) {
      case 0x7b: // {
        return this.object(depth + 1);
      case 0x5b: // [
        return this.array(depth + 1);
      case 0x22: // "
        return this.string();
      case 0x74: // t
        return this.literal('true', true);
      case 0x66: // f
        return this.literal('false', false);
      case 0x6e: // n
        return this.literal('null', null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        return this.fail(`unexpected ${this.describe()}, expected a value`);
    }
  }

  private object(depth: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (this.opened(depth, 0x7d)) return out;
    for (;;) {
      if (this.text.charCodeAt(this.pos) !== 0x22) this.fail(`unexpected ${this.describe()}, expected a key in double quotes`);
      const keyAt = this.pos;
      const key = this.string();
      this.path.push(key);
      if (Object.hasOwn(out, key)) this.fail(`duplicate key "${this.pathText()}"`, keyAt, 'duplicate-key');
      this.keys?.set(this.pathText(), keyAt);
      this.skipSpace();
      if (this.text.charCodeAt(this.pos) !== 0x3a) this.fail(`unexpected ${this.describe()}, expected ":"`);
      this.pos++;
      this.skipSpace();
      // defineProperty: assigning "__proto__" would set the prototype instead of a key.
      Object.defineProperty(out, key, { value: this.value(depth), writable: true, enumerable: true, configurable: true });
      this.path.pop();
      if (this.closed(0x7d)) return out;
    }
  }

  private array(depth: number): unknown[] {
    const out: unknown[] = [];
    if (this.opened(depth, 0x5d)) return out;
    for (;;) {
      this.path.push(out.length);
      out.push(this.value(depth));
      this.path.pop();
      if (this.closed(0x5d)) return out;
    }
  }

  /** Past the "{" or "[" at pos: true when `close` follows at once (empty). */
  private opened(depth: number, close: number): boolean {
    if (depth > JSON_MAX_DEPTH) this.fail(`nested deeper than ${JSON_MAX_DEPTH} levels`);
    this.pos++;
    this.skipSpace();
    if (this.text.charCodeAt(this.pos) !== close) return false;
    this.pos++;
    return true;
  }

  /** After a member: true past `close`, false past a "," (and the space after it). */
  private closed(close: number): boolean {
    this.skipSpace();
    const at = this.pos;
    const c = this.text.charCodeAt(at);
    this.pos++;
    if (c === close) return true;
    if (c !== 0x2c) this.fail(`unexpected ${this.describe(at)}, expected "," or "${String.fromCharCode(close)}"`, at);
    this.skipSpace();
    return false;
  }

  private string(): string {
    const text = this.text;
    let pos = this.pos + 1;
    let chunkStart = pos;
    let out = '';
    for (;;) {
      if (pos >= text.length) this.fail('unterminated string', this.pos);
      const c = text.charCodeAt(pos);
      if (c === 0x22) break;
      if (c < 0x20) this.fail(`unexpected ${this.describe(pos)} in a string (escape it)`, pos);
      if (c !== 0x5c) {
        pos++;
        continue;
      }
      out += text.slice(chunkStart, pos);
      const e = text[pos + 1];
      if (e === 'u') {
        const hex = text.slice(pos + 2, pos + 6);
        if (!/^[0-9A-Fa-f]{4}$/.test(hex)) this.fail('bad \\u escape, expected four hex digits', pos);
        out += String.fromCharCode(parseInt(hex, 16));
        pos += 6;
      } else if (e !== undefined && Object.hasOwn(ESCAPES, e)) {
        out += ESCAPES[e];
        pos += 2;
      } else {
        this.fail(`bad escape ${e === undefined ? '\\' : JSON.stringify('\\' + e)}`, pos);
      }
      chunkStart = pos;
    }
    this.pos = pos + 1;
    return out + text.slice(chunkStart, pos);
  }

  private number(): number {
    const text = this.text;
    const start = this.pos;
    let pos = start;
    const digits = (): number => {
      const from = pos;
      while (pos < text.length && text.charCodeAt(pos) >= 0x30 && text.charCodeAt(pos) <= 0x39) pos++;
      return pos - from;
    };
    if (text[pos] === '-') pos++;
    if (text[pos] === '0') pos++;
    else if (digits() === 0) this.fail(`unexpected ${this.describe(pos)} in a number`, pos);
    if (text[pos] === '.') {
      pos++;
      if (digits() === 0) this.fail(`unexpected ${this.describe(pos)} in a number, expected a digit after "."`, pos);
    }
    if (text[pos] === 'e' || text[pos] === 'E') {
      pos++;
      if (text[pos] === '+' || text[pos] === '-') pos++;
      if (digits() === 0) this.fail(`unexpected ${this.describe(pos)} in a number, expected an exponent`, pos);
    }
    this.pos = pos;
    return Number(text.slice(start, pos));
  }

  private literal<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail(`unexpected ${this.describe()}, expected a value`);
    this.pos += word.length;
    return value;
  }

  private skipSpace(): void {
    const text = this.text;
    let pos = this.pos;
    for (;;) {
      const c = text.charCodeAt(pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      pos++;
    }
    this.pos = pos;
  }

  /** The character at `at` as an error shows it. */
  private describe(at = this.pos): string {
    if (at >= this.text.length) return 'end of input';
    const c = this.text.codePointAt(at)!;
    return c > 0x20 && c < 0x7f ? JSON.stringify(String.fromCodePoint(c)) : `character U+${c.toString(16).toUpperCase().padStart(4, '0')}`;
  }

  private pathText(): string {
    let out = '';
    for (const part of this.path) {
      if (typeof part === 'number') out += `[${part}]`;
      else if (!IDENTIFIER.test(part)) out += `[${JSON.stringify(part)}]`;
      else out += out === '' ? part : `.${part}`;
    }
    return out;
  }

  private fail(message: string, at = this.pos, reason: JsonErrorReason = 'syntax'): never {
    const { line, column } = lineAndColumn(this.text, at);
    throw new JsonError(reason, message, line, column, this.pathText());
  }
}
