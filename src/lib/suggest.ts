/** "Did you mean": the closest known words by edit distance, closest first. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({length: b.length + 1}, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const saved = row[j]
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
      // A swap of two neighbours (chekc → check) costs one, as a person typing sees it.
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j], previous)
      previous = saved
    }
  }

  return row[b.length]
}

export function suggest(word: string, known: string[], max = 3): string[] {
  const limit = Math.max(2, Math.floor(word.length / 3))
  return known
    .map((k) => ({k, d: Math.min(editDistance(word, k), k.startsWith(word) && word.length >= 2 ? 1 : Infinity)}))
    .filter((x) => x.d <= limit)
    .sort((x, y) => x.d - y.d || x.k.localeCompare(y.k))
    .slice(0, max)
    .map((x) => x.k)
}
