/** Orders two stream entry ids (ms-seq) as Redis does: negative, 0 or positive. */
export function compareEntryIds(a: string, b: string): number {
  const [am, as = 0n] = a.split('-').map(BigInt);
  const [bm, bs = 0n] = b.split('-').map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as === bs ? 0 : as < bs ? -1 : 1;
}
