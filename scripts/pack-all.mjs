// npm run pack:all: builds the addon and the TypeScript, then writes the
// tarball of every package into artifacts/ (the platform packages first, as
// they are published first). Prints each tarball's name and size.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts })

run(process.execPath, [join(root, 'scripts', 'sync-versions.mjs'), '--check'])
run('npm', ['run', '--silent', 'build'])
// The other platforms, cross-compiled (scripts/toolchain.sh says how).
run('bash', [join(root, 'scripts', 'build-native.sh'), 'aarch64-unknown-linux-gnu'])
const out = join(root, 'artifacts')
rmSync(out, { recursive: true, force: true })
mkdirSync(out)
const tarballs = []
for (const dir of readdirSync(join(root, 'npm'))) {
  const pkgDir = join(root, 'npm', dir)
  const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'))
  for (const file of pkg.files) copyFileSync(join(root, file), join(pkgDir, file))
  tarballs.push(execFileSync('npm', ['pack', '--silent', '--pack-destination', out, pkgDir], { cwd: root, encoding: 'utf8' }).trim())
}
tarballs.push(execFileSync('npm', ['pack', '--silent', '--pack-destination', out], { cwd: root, encoding: 'utf8' }).trim())
for (const t of tarballs) console.log(`artifacts/${t}  ${(statSync(join(out, t)).size / 1e6).toFixed(1)} MB`)
