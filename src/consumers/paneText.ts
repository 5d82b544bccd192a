/**
 * The texts of a user's pane hash (window state v3) as the consumer's fold reads and
 * writes them: the same formats as src/lua/includes/panes.lua, totals.lua and dedup.lua
 * (each function here names its Lua twin). Numbers are written in JavaScript's shortest
 * form that reads back as the same double, where the Lua writes %.17g: both parse to the
 * same value.
 */
import { LEVEL_PREFIX, coverPanes } from '../core/panes';

/** Distinct-value members of a time index score field * DISTINCT_BASE + time. */
export const DISTINCT_BASE = 1e13;
const MINUTE = 60_000;

/** A numeric pane: count, then (when the type has a numeric field) n, sum, min, max, last time, last value. */
export interface NumericPane {
  c: number;
  n?: number;
  s?: number;
  mn?: number;
  mx?: number;
  lt?: number;
  lv?: number;
  /** Sum of squared deviations from the pane's mean (types with a variance or stddev tag); undefined when not kept. */
  m2?: number;
  /** The oldest event's time and value (types with a first tag); undefined when not kept. */
  ft?: number;
  fv?: number;
}

/** The field at 1-based position idx of a "\x1f"-packed value list ('' when absent): packedField. */
export function packedField(packed: string, idx: number): string {
  return packed.split('\x1f')[idx - 1] ?? '';
}

/** parseNumeric: "c" or "c,n,s,mn,mx,lt,lv" (then ",m2" and ",ft,fv" where the type keeps them; m2 empty when only ft, fv are). */
export function parseNumeric(text: string): NumericPane {
  if (!text.includes(',')) return { c: Number(text) };
  const parts = text.split(',');
  const [c, n, s, mn, mx, lt, lv] = parts.slice(0, 7).map(Number);
  const p: NumericPane = { c, n, s, mn, mx, lt, lv };
  const opt = (i: number) => (parts[i] === undefined || parts[i] === '' ? undefined : Number(parts[i]));
  if (opt(7) !== undefined) p.m2 = opt(7);
  if (opt(8) !== undefined) [p.ft, p.fv] = [opt(8), opt(9)];
  return p;
}

/** paneCount: the count of a numeric pane's text. */
export function paneCount(text: string): number {
  const comma = text.indexOf(',');
  return Number(comma < 0 ? text : text.slice(0, comma));
}

/** mergeNumeric: folds b into a (a is changed and returned). */
export function mergeNumeric(a: NumericPane, b: NumericPane): NumericPane {
  a.c += b.c;
  if (b.n && b.n > 0) {
    if (!a.n) {
      Object.assign(a, { n: b.n, s: b.s, mn: b.mn, mx: b.mx, lt: b.lt, lv: b.lv, m2: b.m2, ft: b.ft, fv: b.fv });
    } else {
      if (a.ft !== undefined && b.ft !== undefined) {
        if (b.ft < a.ft || (b.ft === a.ft && b.fv! > a.fv!)) [a.ft, a.fv] = [b.ft, b.fv];
      } else {
        [a.ft, a.fv] = [undefined, undefined];
      }
      // m2 by Chan's rule, as mergeNumeric in panes.lua (same operations, same result).
      if (a.m2 !== undefined && b.m2 !== undefined) {
        const delta = b.s! / b.n - a.s! / a.n;
        a.m2 = a.m2 + b.m2 + (delta * delta * a.n * b.n) / (a.n + b.n);
      } else {
        a.m2 = undefined;
      }
      a.n += b.n;
      a.s! += b.s!;
      if (b.mn! < a.mn!) a.mn = b.mn;
      if (b.mx! > a.mx!) a.mx = b.mx;
      if (b.lt! > a.lt! || (b.lt === a.lt && b.lv! > a.lv!)) [a.lt, a.lv] = [b.lt, b.lv];
    }
  }
  return a;
}

/** formatNumeric */
export function formatNumeric(p: NumericPane): string {
  if (!p.n) return `${p.c},0,0,0,0,0,0`;
  let text = `${p.c},${p.n},${p.s},${p.mn},${p.mx},${p.lt},${p.lv}`;
  if (p.m2 !== undefined || p.ft !== undefined) text += `,${p.m2 ?? ''}`;
  if (p.ft !== undefined) text += `,${p.ft},${p.fv}`;
  return text;
}

/** sumTotal: a sum/avg running total's text "n,s" -> [n, s] ([0, 0] for none). */
export function sumTotal(text: string | null | undefined): [n: number, s: number] {
  if (!text) return [0, 0];
  const comma = text.indexOf(',');
  const n = Number(text.slice(0, comma));
  const s = Number(text.slice(comma + 1));
  return [Number.isFinite(n) ? n : 0, Number.isFinite(s) ? s : 0];
}

/** parseList: a list pane's text "ts\x1fv\x1f..." -> entries [ts, v] appended to `into`. */
export function parseList(text: string | null, into: [number, string][] = []): [number, string][] {
  if (!text) return into;
  const parts = text.split('\x1f');
  for (let i = 0; i + 1 < parts.length; i += 2) into.push([Number(parts[i]), parts[i + 1]]);
  return into;
}

/** orderList: entries in a list's order (newest: time descending, else ascending; equal times: the larger value first), cut to k. */
export function orderList(entries: [number, string][], newest: boolean, numeric: boolean, k: number): [number, string][] {
  entries.sort((a, b) => {
    if (a[0] !== b[0]) return newest ? b[0] - a[0] : a[0] - b[0];
    if (numeric) return Number(b[1]) - Number(a[1]);
    return a[1] < b[1] ? 1 : a[1] > b[1] ? -1 : 0;
  });
  entries.length = Math.min(entries.length, k);
  return entries;
}

/** formatList: entries -> a list pane's text. */
export function formatList(entries: [number, string][]): string {
  return entries.map(([ts, v]) => `${ts}\x1f${v}`).join('\x1f');
}

/** spreadTotal: a variance/stddev running total's text "n,s,q" -> [n, s, q] (0s for none). */
export function spreadTotal(text: string | null | undefined): [n: number, s: number, q: number] {
  if (!text) return [0, 0, 0];
  const [n, s, q] = text.split(',').map(Number);
  return [Number.isFinite(n) ? n : 0, Number.isFinite(s) ? s : 0, Number.isFinite(q) ? q : 0];
}

/** formatSpreadTotal: no values left is 0 exactly. */
export function formatSpreadTotal(n: number, s: number, q: number): string {
  return n <= 0 ? '0,0,0' : `${n},${s},${q}`;
}

/** formatSumTotal: no values left is 0 exactly, whatever rounding left in s. */
export function formatSumTotal(n: number, s: number): string {
  return n <= 0 ? '0,0' : `${n},${s}`;
}

/** addValues: a value pane's text ("v\x1fn\x1f...") folded into `into` with `sign`. */
export function addValues(into: Map<string, number>, text: string | null | undefined, sign = 1): Map<string, number> {
  if (!text) return into;
  const parts = text.split('\x1f').filter((x) => x !== '');
  for (let i = 0; i + 1 < parts.length; i += 2) into.set(parts[i], (into.get(parts[i]) ?? 0) + sign * Number(parts[i + 1]));
  return into;
}

/** formatValues: values whose count is not positive are left out. */
export function formatValues(counts: Map<string, number>): string {
  const parts: string[] = [];
  for (const [k, n] of counts) if (n > 0) parts.push(k, String(n));
  return parts.join('\x1f');
}

/**
 * The pane hash's meta (field T): the type's newest event time, its oldest pane minute, the
 * lowest minute that may hold one-second panes (only kept for a type whose seconds are read
 * over less than its longest window: see writeType.lua's step 5), and each running total's
 * pane offset and value.
 */
export interface PaneMeta {
  newest: number;
  oldest: number;
  seconds?: number;
  /** The one-second panes are kept a minute to a field (S<minute>: T's header ends with S). */
  secondsForm?: boolean;
  d: Map<string, number>;
  v: Map<string, string>;
}

/** parseMeta */
export function parseMeta(text: string | null): PaneMeta | null {
  if (!text) return null;
  const m = /^(\d+),(-?\d+)(?:,(-?\d+))?(S?)([\s\S]*)$/.exec(text);
  if (!m) return null;
  const newest = Number(m[1]);
  const meta: PaneMeta = { newest, oldest: (Math.floor(newest / MINUTE) - Number(m[2])) * MINUTE, d: new Map(), v: new Map() };
  if (m[3] !== undefined) meta.seconds = (Math.floor(newest / MINUTE) - Number(m[3])) * MINUTE;
  if (m[4] === 'S') meta.secondsForm = true;
  for (const x of m[5].matchAll(/\x1e([^=\x1e]+)=(-?\d+):([^\x1e]*)/g)) {
    meta.d.set(x[1], Number(x[2]));
    meta.v.set(x[1], x[3]);
  }
  return meta;
}

/** ownField: a count_by total (spec starting with its field's digit) keeps its value in field C<spec>. */
export function ownField(spec: string): boolean {
  const b = spec.charCodeAt(0);
  return b >= 48 && b <= 57;
}

/** formatMeta: T's text for newest, oldest, seconds (undefined: not kept) and totals {spec: [p, value, res]}; with secondsForm, the header ends with S. */
export function formatMeta(
  newest: number,
  oldest: number,
  totals: Map<string, [p: number, value: string, res: number]>,
  seconds?: number,
  secondsForm = false,
): string {
  let head = `${newest},${Math.floor(newest / MINUTE) - Math.floor(oldest / MINUTE)}`;
  if (seconds !== undefined) head += `,${Math.floor(newest / MINUTE) - Math.floor(seconds / MINUTE)}`;
  if (secondsForm) head += 'S';
  const parts = [head];
  for (const [spec, [p, value, res]] of totals) parts.push(`${spec}=${Math.floor(newest / res) - p}:${ownField(spec) ? '' : value}`);
  return parts.join('\x1e');
}

/**
 * coverByLevels (without a time index): the field names of the panes covering [from, to)
 * (core/panes.ts's coverPanes), with the field's prefix ('' for numeric panes); with `keep`,
 * only the panes it keeps.
 */
export function coverNames(from: number, to: number, levels: readonly number[], prefix: string, keep?: (level: number, index: number) => boolean): string[] {
  const out: string[] = [];
  for (const [level, index] of coverPanes(from, to, levels)) if (!keep || keep(level, index)) out.push(`${prefix}${LEVEL_PREFIX[level]}${index}`);
  return out;
}
