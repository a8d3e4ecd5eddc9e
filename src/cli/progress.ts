/** Step events as a progress bar on a terminal, as plain lines otherwise. */
import { SingleBar } from 'cli-progress'
import type { StepEvent } from '../train'
import { duration } from './runtime'

export class ProgressView {
  private bar?: SingleBar
  constructor(private readonly tty: boolean) {}

  step(e: StepEvent): void {
    const fields = { loss: e.loss.toFixed(4), ips: e.imagesPerSecond.toFixed(0), eta: duration(e.etaSeconds ?? NaN), epoch: e.epoch, std: e.projectionStd.toFixed(3), wait: `${Math.round(e.dataWaitFraction * 100)}%` }
    if (!this.tty) {
      console.log(`step ${e.step}/${e.totalSteps}  epoch ${e.epoch}  loss ${fields.loss}  lr ${e.learningRate.toExponential(2)}  tau ${e.momentum.toFixed(5)}  std ${fields.std}  ${fields.ips} img/s  data wait ${fields.wait}  ETA ${fields.eta}`)
      return
    }
    if (!this.bar) {
      this.bar = new SingleBar({
        format: '{bar} {value}/{total} | epoch {epoch} | loss {loss} | std {std} | {ips} img/s | data wait {wait} | ETA {eta}',
        hideCursor: true,
        clearOnComplete: false,
      })
      this.bar.start(e.totalSteps, 0, fields)
    }
    this.bar.update(e.step, fields)
  }

  line(text: string): void {
    if (this.bar) this.bar.stop()
    this.bar = undefined
    console.log(text)
  }

  stop(): void {
    this.bar?.stop()
    this.bar = undefined
  }
}
