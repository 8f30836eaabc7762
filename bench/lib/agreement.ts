/** How far a peer's result is from ours: the largest |a - b| relative to the largest |a| (Infinity if the lengths differ). */
export function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(a[i]));
  }
  return a.length === b.length ? d / (m || 1) : Infinity;
}
