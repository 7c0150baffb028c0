/**
 * The no-op task for the bare-Piscina baseline: returns its argument (a small integer) untouched,
 * so what is measured is the pool's own dispatch cost.
 */
export default function noop (task: number): number {
  return task
}
