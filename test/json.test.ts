import t from 'tap';
import { JSON_MAX_DEPTH, JsonError, lineAndColumn, parseStrictJson } from '../src/config/json.js';

/** Asserts parseStrictJson refuses text with this reason and exactly this message. */
function refuses(t: tap.Test, text: string, message: string, reason: JsonError['reason'] = 'syntax'): void {
  let caught: unknown = null;
  try {
    parseStrictJson(text);
  } catch (err) {
    caught = err;
  }
  t.type(caught, JsonError);
  t.match(caught, { name: 'JsonError', reason, message }, `${JSON.stringify(text).slice(0, 40)}: ${message}`);
}

t.test('reads what JSON.parse reads, to the same values', async (t) => {
  const texts = [
    '{}', '[]', '0', '-0', '1.5e-3', '-12.25E+2', '1e400', 'true', 'false', 'null', '""',
    '"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"', '"é😀 plain"',
    ' \t\r\n{ "a" : [ 1 , { "b" : null } ] , "c" : "d" } \n',
    JSON.stringify({ vni: 42, peers: ['192.0.2.2', 'fd00::2'], fdb: [{ mac: '02:00:00:00:00:01', vtep: '192.0.2.2' }], nested: { deep: [[[1]]] } }, null, 2),
  ];
  for (const text of texts) t.same(parseStrictJson(text), JSON.parse(text), text);
  t.ok(Object.is(parseStrictJson('-0'), -0), '-0 stays negative zero');
});

t.test('a key given twice in one object is refused, named by its path', async (t) => {
  refuses(t, '{"peers": [], "peers": []}', 'duplicate key "peers" at line 1, column 15', 'duplicate-key');
  refuses(t, '{"networks": [{"vni": 1}, {"vni": 2, "vni": 3}]}', 'duplicate key "networks[1].vni" at line 1, column 38', 'duplicate-key');
  refuses(t, '{"a b": {"c": 1, "c": 2}}', 'duplicate key "["a b"].c" at line 1, column 18', 'duplicate-key');
  refuses(t, '{"a": 1, "\\u0061": 2}', 'duplicate key "a" at line 1, column 10', 'duplicate-key');
  t.same(parseStrictJson('[{"a": 1}, {"a": 2}]'), [{ a: 1 }, { a: 2 }], 'the same key in different objects is fine');
});

t.test('syntax errors name the line and column', async (t) => {
  const cases: [string, string][] = [
    ['{\n  "vni": 1,\n}', 'unexpected "}", expected a key in double quotes at line 3, column 1'],
    ['[1, 2', 'unexpected end of input, expected "," or "]" at line 1, column 6'],
    ['{"a" 1}', 'unexpected "1", expected ":" at line 1, column 6'],
    ['{"a": 1 "b": 2}', 'unexpected "\\"", expected "," or "}" at line 1, column 9'],
    ['{"a": 1} x', 'unexpected "x" after the JSON value at line 1, column 10'],
    ['', 'unexpected end of input, expected a value at line 1, column 1'],
    ["{'a': 1}", `unexpected "'", expected a key in double quotes at line 1, column 2`],
    ['[tru]', 'unexpected "t", expected a value at line 1, column 2'],
    ['01', 'unexpected "1" after the JSON value at line 1, column 2'],
    ['1.', 'unexpected end of input in a number, expected a digit after "." at line 1, column 3'],
    ['1e', 'unexpected end of input in a number, expected an exponent at line 1, column 3'],
    ['-x', 'unexpected "x" in a number at line 1, column 2'],
    ['"abc', 'unterminated string at line 1, column 1'],
    ['"a\tb"', 'unexpected character U+0009 in a string (escape it) at line 1, column 3'],
    ['"\\x"', 'bad escape "\\\\x" at line 1, column 2'],
    ['"\\u12g4"', 'bad \\u escape, expected four hex digits at line 1, column 2'],
    ['\ufeff{}', 'unexpected character U+FEFF, expected a value at line 1, column 1'],
    ['[1,\r\n 2,\r\n ]', 'unexpected "]", expected a value at line 3, column 2'],
  ];
  for (const [text, message] of cases) refuses(t, text, message);
});

t.test('nesting is bounded, so no input exhausts the stack', async (t) => {
  t.same(parseStrictJson('['.repeat(JSON_MAX_DEPTH) + ']'.repeat(JSON_MAX_DEPTH)), JSON.parse('['.repeat(JSON_MAX_DEPTH) + ']'.repeat(JSON_MAX_DEPTH)));
  refuses(t, '['.repeat(JSON_MAX_DEPTH + 1), `nested deeper than ${JSON_MAX_DEPTH} levels at line 1, column ${JSON_MAX_DEPTH + 1}`);
  refuses(t, '{"a":'.repeat(1_000_000), `nested deeper than ${JSON_MAX_DEPTH} levels at line 1, column ${5 * JSON_MAX_DEPTH + 1}`);
});

t.test('"__proto__" is an ordinary key', async (t) => {
  const value = parseStrictJson('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
  t.same(Object.keys(value), ['__proto__']);
  t.equal(Object.getPrototypeOf(value), Object.prototype, 'the prototype is untouched');
  t.equal((value as { polluted?: boolean }).polluted, undefined);
  refuses(t, '{"__proto__": 1, "__proto__": 2}', 'duplicate key "__proto__" at line 1, column 18', 'duplicate-key');
});

t.test('an error carries the key path of the value being read', async (t) => {
  const at = (text: string): unknown => {
    try {
      parseStrictJson(text);
    } catch (err) {
      return err;
    }
    return null;
  };
  t.match(at('{"networks": [{"vni": 1}, {"vni": 2, "vni": 3}]}'), { reason: 'duplicate-key', path: 'networks[1].vni', line: 1, column: 38 });
  t.match(at('{"networks": [{"vni": 1}, {"peers": [1, }]}'), { reason: 'syntax', path: 'networks[1].peers[1]' });
  t.match(at('{"a": tru}'), { reason: 'syntax', path: 'a' });
  t.match(at('nul'), { reason: 'syntax', path: '' });
});

t.test('with a map, where each key starts is recorded by its key path', async (t) => {
  const text = '{\n  "networks": [\n    {"vni": 1, "fdb": [{"mac": "x"}]}\n  ],\n  "a b": {"c": 1}\n}';
  const keys = new Map<string, number>();
  t.same(parseStrictJson(text, keys), JSON.parse(text));
  const where = Object.fromEntries([...keys].map(([p, at]) => [p, lineAndColumn(text, at)]));
  t.same(where, {
    networks: { line: 2, column: 3 }, 'networks[0].vni': { line: 3, column: 6 }, 'networks[0].fdb': { line: 3, column: 16 },
    'networks[0].fdb[0].mac': { line: 3, column: 25 }, '["a b"]': { line: 5, column: 3 }, '["a b"].c': { line: 5, column: 11 },
  });
});
