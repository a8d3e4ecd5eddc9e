/**
 * The addon reports errors as `[CODE] message`; these helpers turn them into
 * `TypeError` / `RangeError` / `Error` objects with `code` set, as Node's own APIs do.
 */
export type ByolErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_BYOL_STATE_DICT'
  | 'ERR_BYOL_FILE'
  | 'ERR_BYOL_DEVICE'
  | 'ERR_BYOL_TORCH'
  | 'ERR_BYOL_STATE'
  | 'ERR_BYOL_DISPOSED'
  | 'ERR_BYOL_NON_FINITE_LOSS'
  | 'ERR_BYOL_CHECKPOINT'

export type CodedError = Error & { code: string }

export function codedError(code: string, message: string): CodedError {
  const Ctor = code === 'ERR_INVALID_ARG_TYPE' ? TypeError : code === 'ERR_OUT_OF_RANGE' ? RangeError : Error
  const err = new Ctor(message) as CodedError
  err.code = code
  return err
}

export function translate(e: unknown): unknown {
  if (!(e instanceof Error)) return e
  const m = /^\[(ERR_[A-Z_]+)\] ([\s\S]*)$/.exec(e.message)
  if (!m) return e
  return codedError(m[1], m[2])
}

/** Runs a native call and rethrows its error in JS form. */
export function guard<T>(fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    throw translate(e)
  }
}

export function typeError(arg: string, expected: string, got: unknown): CodedError {
  return codedError('ERR_INVALID_ARG_TYPE', `${arg}: expected ${expected}, got ${describe(got)}`)
}

export function rangeError(arg: string, expected: string, got: unknown): CodedError {
  return codedError('ERR_OUT_OF_RANGE', `${arg}: expected ${expected}, got ${describe(got)}`)
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
