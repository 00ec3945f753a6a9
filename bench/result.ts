/** What every benchmark returns: ours divided by its same-run baseline, in the direction its issue states. */
export interface BenchResult {
  ratio: number;
}
