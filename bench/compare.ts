/** Interleaved load rounds against two targets (a baseline and the proxy), with medians and ratios. */
import type { ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { median } from './stats.ts'
import { load, uniqueUrlScript, type Load } from './wrk.ts'
import { fmt } from './stats.ts'

export interface Target {
  name: string
  url: string
  child: ChildProcess
  /** Every request asks for a URL never asked before (wrk Lua script), e.g. store fill. */
  fresh?: boolean
}

export interface Side { rps: number, p50: number, p99: number, cpuUsPerRequest: number, serverCpu: number }

export interface Compared {
  label: string
  baseline: string
  subject: string
  rounds: Array<{ baseline: Load, subject: Load }>
  base: Side
  proxy: Side
  /** Median of the per-round subject/baseline req/s ratios (drift cancels out round by round). */
  ratio: number
  /** Median of the per-round baseline/subject CPU-per-request ratios (> 1: the subject is cheaper). */
  cpuRatio: number
  machineBusy: number
  problems: number
}

export interface Plan { rounds: number, seconds: number, warmupSeconds: number, overBudget: () => boolean }

async function run (target: Target, seconds: number): Promise<Load> {
  const script = target.fresh === true ? uniqueUrlScript(`r${randomUUID().slice(0, 8)}`) : undefined
  return await load(target.url, seconds, target.child, script)
}

function side (loads: Load[]): Side {
  return {
    rps: median(loads.map((l) => l.rps)),
    p50: median(loads.map((l) => l.p50)),
    p99: median(loads.map((l) => l.p99)),
    cpuUsPerRequest: median(loads.map((l) => l.cpuUsPerRequest ?? NaN)),
    serverCpu: median(loads.map((l) => l.serverCpu ?? NaN))
  }
}

/** Rounds alternate which target goes first, so drift (thermal, GC, other work) favours neither. */
export async function compare (label: string, baseline: Target, subject: Target, plan: Plan): Promise<Compared> {
  await run(baseline, plan.warmupSeconds)
  await run(subject, plan.warmupSeconds)
  const rounds: Compared['rounds'] = []
  for (let round = 0; round < plan.rounds; round++) {
    if (plan.overBudget()) break
    const first = round % 2 === 0 ? baseline : subject
    const second = first === baseline ? subject : baseline
    const a = await run(first, plan.seconds)
    const b = await run(second, plan.seconds)
    const r = first === baseline ? { baseline: a, subject: b } : { baseline: b, subject: a }
    rounds.push(r)
    process.stderr.write(`  ${label} round ${round + 1}/${plan.rounds}: ${baseline.name} ${fmt(r.baseline.rps)} req/s ` +
      `${fmt(r.baseline.cpuUsPerRequest)} µs, ${subject.name} ${fmt(r.subject.rps)} req/s ${fmt(r.subject.cpuUsPerRequest)} µs\n`)
  }
  return {
    label,
    baseline: baseline.name,
    subject: subject.name,
    rounds,
    base: side(rounds.map((r) => r.baseline)),
    proxy: side(rounds.map((r) => r.subject)),
    ratio: median(rounds.map((r) => r.subject.rps / r.baseline.rps)),
    cpuRatio: median(rounds.map((r) => (r.baseline.cpuUsPerRequest ?? NaN) / (r.subject.cpuUsPerRequest ?? NaN))),
    machineBusy: median(rounds.flatMap((r) => [r.baseline.machineBusy ?? NaN, r.subject.machineBusy ?? NaN])),
    problems: rounds.reduce((n, r) => n + r.baseline.errors + r.baseline.non2xx + r.baseline.timeouts +
      r.subject.errors + r.subject.non2xx + r.subject.timeouts, 0)
  }
}
