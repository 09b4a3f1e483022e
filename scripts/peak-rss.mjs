// Preloaded by scripts/bench.ts (node --import): writes this process's peak resident memory (KiB) to $IMAGETRUST_BENCH_RSS on exit.
import {writeFileSync} from 'node:fs'

process.on('exit', () => {
  if (process.env.IMAGETRUST_BENCH_RSS) writeFileSync(process.env.IMAGETRUST_BENCH_RSS, String(process.resourceUsage().maxRSS))
})
