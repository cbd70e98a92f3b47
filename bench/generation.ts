/**
 * The cost that read-your-writes adds to every memory-tier hit: one read of the shared
 * generation word (src/store/sqlite/generation.ts), measured against an empty call in the same run.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SharedGeneration } from '../src/store/sqlite/generation.ts'

export interface GenerationCost { calls: number, checkNs: number, emptyNs: number }

export function measureGenerationCheck (calls = 1_000_000): GenerationCost {
  const dir = mkdtempSync(join(tmpdir(), 'cpx-bench-gen-'))
  const generation = SharedGeneration.open(join(dir, 'gen'))
  generation.bump() // a word to read, as a store's file holds (a read at the end of an empty file copies nothing)
  try {
    let changed = 0
    const empty = (): boolean => false
    const time = (fn: () => boolean): number => {
      const start = process.hrtime.bigint()
      for (let i = 0; i < calls; i++) if (fn()) changed++
      return Number(process.hrtime.bigint() - start) / calls
    }
    time(() => generation.changed()) // warm-up
    const emptyNs = time(empty)
    const checkNs = time(() => generation.changed())
    if (changed < 0) throw new Error('unreachable')
    return { calls, checkNs, emptyNs }
  } finally {
    generation.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cost = measureGenerationCheck()
  console.log(`generation check: ${cost.checkNs.toFixed(0)} ns per memory-tier hit (empty call ${cost.emptyNs.toFixed(0)} ns), ${cost.calls} calls`)
}
