/**
 * The errors byol-torch throws, and the argument checks of the facade. The
 * addon throws its errors ready-made (`TypeError`, `RangeError` or `Error`
 * with `code` and, where they apply, `argument`, `path`, `step`); the checks
 * here give the same form to arguments JS can check before the call.
 */

/** Every `code` a byol-torch error can carry. */
export const BYOL_ERROR_CODES = [
  // The addon's, one per kind of core error (checked against it by the tests).
  'ERR_INVALID_ARG_TYPE',
  'ERR_OUT_OF_RANGE',
  'ERR_BYOL_STATE_DICT',
  'ERR_BYOL_FILE',
  'ERR_BYOL_DEVICE',
  'ERR_BYOL_NON_FINITE_LOSS',
  'ERR_BYOL_CHECKPOINT',
  'ERR_BYOL_STATE',
  'ERR_BYOL_BUSY',
  'ERR_BYOL_DISPOSED',
  'ERR_BYOL_DISTRIBUTED',
  'ERR_BYOL_TORCH',
  // Loading the addon.
  'ERR_BYOL_LIBTORCH_NOT_FOUND',
  'ERR_BYOL_LIBTORCH_LOAD',
  'ERR_BYOL_ADDON_NOT_FOUND',
  'ERR_BYOL_UNSUPPORTED_PLATFORM',
  // An aborted `Trainer.fit` (Node's code for an aborted operation).
  'ABORT_ERR',
] as const

export type ByolErrorCode = (typeof BYOL_ERROR_CODES)[number]

/** A byol-torch error: always a `code`, and the fields that apply to it. */
export interface ByolError extends Error {
  code: ByolErrorCode
  /** `ERR_INVALID_ARG_TYPE`, `ERR_OUT_OF_RANGE`: the argument (or option) at fault. */
  argument?: string
  /** `ERR_BYOL_FILE`: the file. */
  path?: string
  /** `ERR_BYOL_NON_FINITE_LOSS`: the step whose loss was not finite. */
  step?: number
}

function coded<E extends Error>(err: E, code: ByolErrorCode, argument: string): E & ByolError {
  return Object.assign(err, { code, argument })
}

/** A `TypeError` naming the argument, what was expected and what came. */
export function typeError(arg: string, expected: string, got: unknown): ByolError {
  return coded(new TypeError(`${arg}: expected ${expected}, got ${describe(got)}`), 'ERR_INVALID_ARG_TYPE', arg)
}

/** A `RangeError` naming the argument, what was expected and what came. */
export function rangeError(arg: string, expected: string, got: unknown): ByolError {
  return coded(new RangeError(`${arg}: expected ${expected}, got ${describe(got)}`), 'ERR_OUT_OF_RANGE', arg)
}

export function describe(v: unknown): string {
  if (v === null) return 'null'
  if (v === undefined) return 'undefined'
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v)
  if (typeof v === 'string') return `'${v}'`
  if (Array.isArray(v)) return `an array of length ${v.length}`
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`
  if (typeof v === 'object') return `an object of type ${(v as object).constructor?.name ?? 'Object'}`
  return typeof v
}

export function checkNumber(arg: string, v: unknown, opts: { integer?: boolean; min?: number; exclusiveMin?: number } = {}): number {
  if (typeof v !== 'number') throw typeError(arg, opts.integer ? 'an integer' : 'a number', v)
  if (Number.isNaN(v) || !Number.isFinite(v)) throw rangeError(arg, 'a finite number', v)
  if (opts.integer && !Number.isInteger(v)) throw rangeError(arg, 'an integer', v)
  if (opts.min !== undefined && v < opts.min) throw rangeError(arg, `a number >= ${opts.min}`, v)
  if (opts.exclusiveMin !== undefined && v <= opts.exclusiveMin) throw rangeError(arg, `a number > ${opts.exclusiveMin}`, v)
  return v
}

/** How one option is checked. */
export type Rule =
  | { number: { integer?: boolean; min?: number; exclusiveMin?: number } }
  | { oneOf: readonly string[] }
  | { listOf: readonly string[] }
  | 'boolean'
  | 'string'
  | 'device'
  | 'pair'
  | 'object'
  | 'objectOrNull'

/** The device names byol-torch takes. */
export const DEVICE_PATTERN = /^(cpu|cuda|auto|cuda:\d+)$/

function checkRule(arg: string, v: unknown, rule: Rule): void {
  if (rule === 'objectOrNull') {
    if (typeof v !== 'object') throw typeError(arg, 'an object or null', v)
  } else if (rule === 'boolean' || rule === 'string' || rule === 'object') {
    if (typeof v !== rule || v === null) throw typeError(arg, rule === 'object' ? 'an object' : `a ${rule}`, v)
  } else if (rule === 'device') {
    if (typeof v !== 'string' || !DEVICE_PATTERN.test(v)) throw typeError(arg, "'cpu', 'cuda', 'cuda:N' or 'auto'", v)
  } else if (rule === 'pair') {
    if (!Array.isArray(v) || v.length !== 2) throw typeError(arg, 'two numbers [a, b]', v)
    v.forEach((x, i) => checkNumber(`${arg}[${i}]`, x))
  } else if ('listOf' in rule) {
    const expected = `an array of ${rule.listOf.map((a) => `'${a}'`).join(', ')}`
    if (!Array.isArray(v)) throw typeError(arg, expected, v)
    v.forEach((x, i) => {
      if (typeof x !== 'string' || !rule.listOf.includes(x)) throw typeError(`${arg}[${i}]`, rule.listOf.map((a) => `'${a}'`).join(' | '), x)
    })
  } else if ('number' in rule) {
    checkNumber(arg, v, rule.number)
  } else if (typeof v !== 'string' || !rule.oneOf.includes(v)) {
    throw typeError(arg, rule.oneOf.map((a) => `'${a}'`).join(' | '), v)
  }
}

/**
 * Checks the type of each option of an object (an option left out or
 * undefined is not checked: the addon gives it its default; ranges are the
 * core's to check) and refuses unknown ones. `rules` must name every option
 * of `T`, so that a new option gets a check.
 */
export function checkOptions<T extends object>(arg: string, options: unknown, rules: { [K in keyof Required<T>]: Rule }): T {
  if (options === undefined) return {} as T
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw typeError(arg, 'an options object', options)
  for (const [key, value] of Object.entries(options)) {
    if (!(key in rules)) throw typeError(`${arg}.${key}`, `one of the options ${Object.keys(rules).join(', ')}`, key)
    if (value !== undefined) checkRule(arg === 'options' ? key : `${arg}.${key}`, value, rules[key as keyof T])
  }
  return options as T
}

/** A compile-time check that `Values` lists every member of the union `Union`. */
export type Exhaustive<Values extends readonly string[], Union extends string> = [Union] extends [Values[number]] ? true : never
