import type { StoreLogger, StoreOptions } from './contract.ts'

export const DEFAULT_MAX_BYTES = 1024 ** 3
const DEFAULT_SWEEP_INTERVAL_MS = 60_000
const DEFAULT_CHANGE_POLL_MS = 200
const DEFAULT_REOPEN_INTERVAL_MS = 2000
export const DEFAULT_COMMAND_TIMEOUT_MS = 50

/** StoreOptions with every default filled in. */
export interface Settings {
  maxBytes: number
  sweepIntervalMs: number
  changePollMs: number
  reopenIntervalMs: number
  commandTimeoutMs: number
  log: StoreLogger | undefined
}

export function resolveSettings (options: StoreOptions): Settings {
  const settings: Settings = {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    sweepIntervalMs: options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS,
    changePollMs: options.changePollMs ?? DEFAULT_CHANGE_POLL_MS,
    reopenIntervalMs: options.reopenIntervalMs ?? DEFAULT_REOPEN_INTERVAL_MS,
    commandTimeoutMs: options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS,
    log: options.log
  }
  if (!(settings.maxBytes > 0)) throw new Error(`maxBytes must be positive, got ${settings.maxBytes}`)
  if (!(settings.reopenIntervalMs > 0)) throw new Error(`reopenIntervalMs must be positive, got ${settings.reopenIntervalMs}`)
  if (!(settings.commandTimeoutMs > 0)) throw new Error(`commandTimeoutMs must be positive, got ${settings.commandTimeoutMs}`)
  return settings
}

export function noop (): void {}
