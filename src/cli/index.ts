#!/usr/bin/env node
/**
 * The `byol-torch` command. Each command is a file of this folder that
 * defines its flags and loads the library only when it runs, so that `--help`
 * and `doctor` work without libtorch. `byol-torch <command> --help` lists
 * every flag with its default.
 */
import { Command } from '@commander-js/extra-typings'
import { doctorCommand } from './doctor'
import { embedCommand } from './embed'
import { evalCommand } from './eval'
import { exportCommand } from './export'
import { reportCommand } from './report'
import { trainCommand } from './train'

export function program() {
  return new Command('byol-torch')
    .description('BYOL self-supervised training on libtorch')
    .showHelpAfterError()
    .addCommand(trainCommand())
    .addCommand(embedCommand())
    .addCommand(evalCommand())
    .addCommand(exportCommand())
    .addCommand(reportCommand())
    .addCommand(doctorCommand())
}

if (require.main === module) {
  program()
    .parseAsync(process.argv)
    .catch((e: unknown) => {
      const err = e as Error & { code?: string }
      console.error(`byol-torch: ${err.message}${err.code ? ` (${err.code})` : ''}`)
      process.exit(1)
    })
}
