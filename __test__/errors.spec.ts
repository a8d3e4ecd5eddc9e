/**
 * Errors as users meet them: a TypeError, RangeError or Error with a `code`
 * from one list, and the argument, path or step they are about.
 */
import test from 'ava'
import { AbortError, BYOL, BYOL_ERROR_CODES, BYOLPredictionHead, BYOLProjectionHead, BYOLTransform, ByolError, DataLoader, randn, TensorDataset, Trainer } from '../src/index'
import { native } from '../src/native'
import { catchError } from './helpers'

test('every code the addon can throw is one of ByolErrorCode', (t) => {
  const listed: readonly string[] = BYOL_ERROR_CODES
  const codes = native.errorCodes()
  t.true(codes.length >= 11)
  t.deepEqual(codes.filter((c) => !listed.includes(c)), [])
})

test('the codes of loading the addon and of an aborted fit are listed too', (t) => {
  const listed: readonly string[] = BYOL_ERROR_CODES
  for (const code of ['ERR_BYOL_LIBTORCH_NOT_FOUND', 'ERR_BYOL_LIBTORCH_LOAD', 'ERR_BYOL_ADDON_NOT_FOUND', 'ERR_BYOL_UNSUPPORTED_PLATFORM', new AbortError(0, null).code]) {
    t.true(listed.includes(code), code)
  }
})

test('a wrong kind of argument is a TypeError with its code and the argument', (t) => {
  const err = catchError(() => new BYOL({ learningRate: '0.1' as unknown as number })) as ByolError
  t.true(err instanceof TypeError)
  t.is(err.code, 'ERR_INVALID_ARG_TYPE')
  t.is(err.argument, 'learningRate')
})

test('an option out of range, caught by the core, is a RangeError naming it', (t) => {
  const err = catchError(() => new BYOLTransform({ cjProb: 1.5 })) as ByolError
  t.true(err instanceof RangeError)
  t.is(err.code, 'ERR_OUT_OF_RANGE')
  t.is(err.argument, 'cjProb')
  t.is(err.message, 'cjProb: expected values in [0, 1], got 1.5')
})

test('a file that cannot be read is an error with its path', (t) => {
  const err = catchError(() => BYOL.load('/no/such/model.safetensors')) as ByolError
  t.is(err.code, 'ERR_BYOL_FILE')
  t.is(err.path, '/no/such/model.safetensors')
  t.false(/^\[/.test(err.message), 'no code prefixed to the message')
})

test('a projection head that does not take the backbone\'s features is refused, naming both sizes', (t) => {
  const err = catchError(() => new BYOL({ projectionHead: new BYOLProjectionHead(2048, 32, 16), predictionHead: new BYOLPredictionHead(16, 32, 16) })) as ByolError
  t.is(err.code, 'ERR_INVALID_ARG_TYPE')
  t.is(err.message, "projectionHead: expected a head taking the backbone's 512 features, got a head taking 2048")
})

test.serial('trainingStep while fit trains the model is ERR_BYOL_BUSY, with a sentence that says why', async (t) => {
  const model = new BYOL({ seed: 0, projectionHead: new BYOLProjectionHead(512, 32, 16), predictionHead: new BYOLPredictionHead(16, 32, 16) })
  const data = new TensorDataset(randn([16, 3, 16, 16], { seed: 1 }).to('cpu'), undefined)
  const loader = new DataLoader(data, { batchSize: 8, numWorkers: 1 })
  const controller = new AbortController()
  let busy: ByolError | undefined
  const x = randn([4, 3, 16, 16], { seed: 2 })
  const run = new Trainer({ maxSteps: 1000, logEveryNSteps: 1 }).fit(model, loader, {
    signal: controller.signal,
    onProgress: (e) => {
      if (e.kind !== 'step' || busy) return
      busy = catchError(() => model.trainingStep([x, x])) as ByolError
      controller.abort()
    },
  })
  await t.throwsAsync(run, { instanceOf: AbortError })
  t.is(busy?.code, 'ERR_BYOL_BUSY')
  t.is(busy?.message, 'trainingStep: the model is being trained by Trainer.fit; wait for fit to finish (or abort it) before using it')
  t.notThrows(() => model.trainingStep([x, x]).dispose(), 'usable again once fit has ended')
})

test('memory libtorch cannot allocate is ERR_BYOL_TORCH with its message, and the process lives on', (t) => {
  const err = catchError(() => randn([1e6, 1e6])) as ByolError
  t.is(err.code, 'ERR_BYOL_TORCH')
  t.regex(err.message, /^libtorch: .*can't allocate memory: you tried to allocate 4000000000000 bytes/)
  t.deepEqual(randn([2]).shape, [2])
})
