/**
 * A real pseudo-terminal for interactive tests: a tmux server on its own
 * socket, driven with send-keys and read with capture-pane. kill() stops the
 * server this helper started, by its PID.
 */
import {writeFile} from 'node:fs/promises'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {mustRun, run} from './lab.ts'

export class Tmux {
  private serverPid?: number
  private constructor(
    readonly socket: string,
    readonly dir: string,
  ) {}

  /** Starts `command` (a shell command line) in a 200x50 terminal; the pane stays after it exits, to read its output and status. */
  static async start(dir: string, name: string, command: string, env: Record<string, string> = {}): Promise<Tmux> {
    const tmux = new Tmux(path.join(dir, `tmux-${name}.sock`), dir)
    const conf = path.join(dir, 'tmux.conf')
    await writeFile(conf, 'set -g remain-on-exit on\nset -g history-limit 20000\nset -g default-terminal xterm-256color\n')
    const script = path.join(dir, `tmux-${name}.sh`)
    const exports = Object.entries(env).map(([k, v]) => `export ${k}=${JSON.stringify(v)}`)
    // The shell waits for the program and prints its status: tmux itself can take a long time to reap a pane's process.
    await writeFile(script, ['#!/bin/sh', ...exports, command, 'echo "@@exit:$?"', ''].join('\n'), {mode: 0o755})
    await mustRun('tmux', ['-S', tmux.socket, '-f', conf, 'new-session', '-d', '-s', name, '-x', '200', '-y', '50', script])
    tmux.serverPid = Number((await mustRun('tmux', ['-S', tmux.socket, 'display-message', '-p', '#{pid}'])).stdout.trim())
    return tmux
  }

  async send(...keys: string[]): Promise<void> {
    for (const key of keys) {
      // A literal string is typed as is (-l); names such as Enter, C-c, Down are keys.
      const literal = !/^(Enter|C-c|Down|Up|Space|Escape|BSpace)$/.test(key)
      await mustRun('tmux', ['-S', this.socket, 'send-keys', '-t', '0', ...(literal ? ['-l', key] : [key])])
      await sleep(60)
    }
  }

  /** Types text and presses Enter. */
  async answer(text: string): Promise<void> {
    if (text) await this.send(text)
    await this.send('Enter')
  }

  /** The whole pane with its history; with escapes, colours are kept as ANSI sequences. */
  async screen(options: {escapes?: boolean} = {}): Promise<string> {
    return (await mustRun('tmux', ['-S', this.socket, 'capture-pane', '-p', '-J', ...(options.escapes ? ['-e'] : []), '-S', '-20000', '-t', '0'])).stdout
  }

  /** Waits until the screen matches, counting matches after `after` occurrences (a prompt asked twice). */
  async waitFor(pattern: RegExp, options: {timeoutMs?: number; count?: number} = {}): Promise<string> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000)
    const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`)
    for (;;) {
      const text = await this.screen()
      if ((text.match(global)?.length ?? 0) >= (options.count ?? 1)) return text
      if (await this.exitStatus() !== undefined) throw new Error(`the program exited before ${pattern} appeared:\n${text}`)
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; screen:\n${text}`)
      await sleep(100)
    }
  }

  /** The program's exit status once it has exited (the line the wrapper script prints). */
  async exitStatus(): Promise<number | undefined> {
    const match = /^@@exit:(\d+)$/m.exec(await this.screen())
    return match ? Number(match[1]) : undefined
  }

  async waitExit(timeoutMs = 60_000): Promise<number> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const status = await this.exitStatus()
      if (status !== undefined) return status
      if (Date.now() > deadline) throw new Error(`still running after ${timeoutMs} ms:\n${await this.screen()}`)
      await sleep(100)
    }
  }

  async kill(): Promise<void> {
    const killed = await run('tmux', ['-S', this.socket, 'kill-server'])
    if (killed.code !== 0 && this.serverPid) {
      try {
        process.kill(this.serverPid, 'SIGKILL')
      } catch {}
    }
  }
}

/**
 * A shell command line that runs the built CLI in a private mount namespace
 * whose /etc and /var/lib are throw-away overlays (as lab.imagetrust() does),
 * for use inside tmux.
 */
export async function isolatedCli(dir: string, name: string, args: string[], repoRoot: string): Promise<string> {
  const layer = path.join(dir, `layer-${name}`)
  const script = path.join(dir, `isolated-${name}.sh`)
  await writeFile(
    script,
    [
      '#!/bin/sh',
      'set -e',
      `mkdir -p ${layer}/u ${layer}/w ${layer}/vu ${layer}/vw`,
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${layer}/u,workdir=${layer}/w /etc`,
      `mount -t overlay overlay -o lowerdir=/var/lib,upperdir=${layer}/vu,workdir=${layer}/vw /var/lib`,
      `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(repoRoot, 'bin/run.js'))} "$@"`,
      '',
    ].join('\n'),
    {mode: 0o755},
  )
  return ['unshare', '-m', '--propagation', 'private', script, ...args.map((a) => JSON.stringify(a))].join(' ')
}
