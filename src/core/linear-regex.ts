/**
 * @module A linear-time regular expression matcher (Thompson NFA, simulated Pike-style) for the
 * patterns users send in filters such as Nova's `GET /servers?name=`. JavaScript's RegExp backtracks:
 * `^(a+)+$` against 30 characters runs for seconds on the event loop. Here the cost is at most
 * pattern length x text length, whatever the pattern. Supported subset (what Nova users pass):
 * literals, `.`, `[...]` (ranges, negation), `\d \w \s \D \W \S` and escaped punctuation, `* + ?`
 * (a trailing `?` for laziness is accepted: it changes nothing for a yes/no match), `^`, `$`, `|`,
 * `(...)` and `(?:...)`. Anything else (counted repeats, backreferences, lookaround) is refused, as
 * is a pattern over MAX_PATTERN characters. Semantics are those of `RegExp.prototype.test` without
 * flags: unanchored search, case-sensitive.
 */

export const MAX_PATTERN = 256;

export class RegexRefused extends Error {}

type Pred = (c: string) => boolean;
type Node =
  | { t: 'char'; p: Pred }
  | { t: 'bol' }
  | { t: 'eol' }
  | { t: 'cat'; items: Node[] }
  | { t: 'alt'; a: Node; b: Node }
  | { t: 'rep'; op: '*' | '+' | '?'; e: Node };

type Inst =
  | { op: 'char'; p: Pred }
  | { op: 'split'; x: number; y: number }
  | { op: 'jmp'; x: number }
  | { op: 'bol' }
  | { op: 'eol' }
  | { op: 'match' };

const CLASSES: Record<string, Pred> = {
  d: (c) => c >= '0' && c <= '9',
  w: (c) => /^[A-Za-z0-9_]$/.test(c),
  s: (c) => /^\s$/.test(c),
};

function escapeClass(ch: string): Pred | undefined {
  const lower = ch.toLowerCase();
  const base = CLASSES[lower];
  if (!base) return undefined;
  return ch === lower ? base : (c) => !base(c);
}

class Parser {
  private i = 0;
  constructor(private readonly s: string) {}
  private refuse(why: string): never {
    throw new RegexRefused(`${why} at position ${this.i}`);
  }
  parse(): Node {
    const n = this.alt();
    if (this.i < this.s.length) this.refuse(`unmatched '${this.s[this.i]}'`);
    return n;
  }
  private alt(): Node {
    let n = this.cat();
    while (this.s[this.i] === '|') {
      this.i++;
      n = { t: 'alt', a: n, b: this.cat() };
    }
    return n;
  }
  private cat(): Node {
    const items: Node[] = [];
    while (this.i < this.s.length && this.s[this.i] !== '|' && this.s[this.i] !== ')') items.push(this.rep());
    return { t: 'cat', items };
  }
  private rep(): Node {
    const e = this.atom();
    const q = this.s[this.i];
    if (q !== '*' && q !== '+' && q !== '?') return e;
    if (e.t === 'bol' || e.t === 'eol') this.refuse('nothing to repeat');
    this.i++;
    if (this.s[this.i] === '?') this.i++;
    const next = this.s[this.i];
    if (next === '*' || next === '+' || next === '?' || next === '{') this.refuse('nested quantifier');
    return { t: 'rep', op: q, e };
  }
  private atom(): Node {
    const c = this.s[this.i++]!;
    switch (c) {
      case '(': {
        if (this.s[this.i] === '?') {
          if (this.s[this.i + 1] !== ':') this.refuse('unsupported group');
          this.i += 2;
        }
        const n = this.alt();
        if (this.s[this.i] !== ')') this.refuse("missing ')'");
        this.i++;
        return n;
      }
      case '[':
        return { t: 'char', p: this.bracket() };
      case '.':
        return { t: 'char', p: (x) => x !== '\n' && x !== '\r' && x !== '\u2028' && x !== '\u2029' };
      case '^':
        return { t: 'bol' };
      case '$':
        return { t: 'eol' };
      case '\\':
        return { t: 'char', p: this.escape(false) };
      case '*':
      case '+':
      case '?':
        return this.refuse('nothing to repeat');
      case '{':
      case '}':
        return this.refuse('counted repetition is not supported');
      default:
        return { t: 'char', p: (x) => x === c };
    }
  }
  /** After a backslash: a class (\d ...) or an escaped non-alphanumeric character. */
  private escape(inBracket: boolean): Pred {
    const ch = this.s[this.i++];
    if (ch === undefined) this.refuse('trailing backslash');
    const cls = escapeClass(ch);
    if (cls) return cls;
    if (/[A-Za-z0-9]/.test(ch) && !(inBracket && ch === 'b')) this.refuse(`unsupported escape \\${ch}`);
    return (x) => x === ch;
  }
  private bracket(): Pred {
    const negate = this.s[this.i] === '^';
    if (negate) this.i++;
    const parts: Pred[] = [];
    // JavaScript reads `[]` as an empty class, Python (Nova) as a literal `]`: refuse the ambiguity.
    if (this.s[this.i] === ']') this.refuse("a leading ']' in a class is ambiguous");
    for (;;) {
      const c = this.s[this.i];
      if (c === undefined) this.refuse("missing ']'");
      if (c === ']') break;
      this.i++;
      let lo: string | undefined;
      if (c === '\\') {
        const p = this.escape(true);
        const esc = this.s[this.i - 1]!;
        if (escapeClass(esc)) {
          parts.push(p);
          continue;
        }
        lo = esc;
      } else lo = c;
      if (this.s[this.i] === '-' && this.s[this.i + 1] !== ']' && this.s[this.i + 1] !== undefined) {
        this.i++;
        let hi = this.s[this.i++]!;
        if (hi === '\\') {
          hi = this.s[this.i++] ?? this.refuse('trailing backslash');
          if (escapeClass(hi)) this.refuse('class in range');
        }
        if (hi < lo) this.refuse('range out of order');
        const a = lo;
        parts.push((x) => x >= a && x <= hi);
      } else {
        const a = lo;
        parts.push((x) => x === a);
      }
    }
    this.i++;
    return negate ? (x) => !parts.some((p) => p(x)) : (x) => parts.some((p) => p(x));
  }
}

function compile(n: Node, prog: Inst[]): void {
  switch (n.t) {
    case 'char':
      prog.push({ op: 'char', p: n.p });
      return;
    case 'bol':
    case 'eol':
      prog.push({ op: n.t });
      return;
    case 'cat':
      for (const e of n.items) compile(e, prog);
      return;
    case 'alt': {
      const s = { op: 'split' as const, x: prog.length + 1, y: 0 };
      prog.push(s);
      compile(n.a, prog);
      const j = { op: 'jmp' as const, x: 0 };
      prog.push(j);
      s.y = prog.length;
      compile(n.b, prog);
      j.x = prog.length;
      return;
    }
    case 'rep': {
      const start = prog.length;
      if (n.op === '+') {
        compile(n.e, prog);
        prog.push({ op: 'split', x: start, y: prog.length + 1 });
        return;
      }
      const s = { op: 'split' as const, x: start + 1, y: 0 };
      prog.push(s);
      compile(n.e, prog);
      if (n.op === '*') prog.push({ op: 'jmp', x: start });
      s.y = prog.length;
      return;
    }
  }
}

/** Compile a user's pattern; throws RegexRefused for what the subset does not cover. */
export function linearRegex(pattern: string): { test(text: string): boolean } {
  if (pattern.length > MAX_PATTERN) throw new RegexRefused(`pattern longer than ${MAX_PATTERN} characters`);
  const prog: Inst[] = [];
  compile(new Parser(pattern).parse(), prog);
  prog.push({ op: 'match' });
  return { test: (text) => run(prog, text) };
}

function run(prog: Inst[], text: string): boolean {
  const chars = [...text];
  const seen = new Int32Array(prog.length).fill(-1);
  let gen = 0;
  let clist: number[] = [];
  let nlist: number[] = [];
  // Follow jumps, splits and assertions at position `pos`; true when the match state is reachable.
  const add = (list: number[], pc: number, pos: number): boolean => {
    const stack = [pc];
    while (stack.length) {
      const k = stack.pop()!;
      if (seen[k] === gen) continue;
      seen[k] = gen;
      const ins = prog[k]!;
      switch (ins.op) {
        case 'match':
          return true;
        case 'jmp':
          stack.push(ins.x);
          break;
        case 'split':
          stack.push(ins.y, ins.x);
          break;
        case 'bol':
          if (pos === 0) stack.push(k + 1);
          break;
        case 'eol':
          if (pos === chars.length) stack.push(k + 1);
          break;
        case 'char':
          list.push(k);
      }
    }
    return false;
  };
  for (let pos = 0; ; pos++) {
    // Unanchored search: a new thread starts at every position.
    if (add(clist, 0, pos)) return true;
    if (pos === chars.length) return false;
    gen++;
    const c = chars[pos]!;
    for (const k of clist) {
      const ins = prog[k]!;
      if (ins.op === 'char' && ins.p(c) && add(nlist, k + 1, pos + 1)) return true;
    }
    [clist, nlist] = [nlist, []];
  }
}
