/**
 * A fleet of hosts reached over real SSH, on this one machine. Each host is
 * an sshd (Debian's openssh-server) on its own 127.0.0.1 port, started in a
 * private mount namespace of its own:
 * - /etc, /usr, /var and /root are throw-away overlays (a package install,
 *   dpkg's database, root's dotfiles and Ansible's temp files land there);
 * - /etc/containers, /etc/pki/containers, /etc/imagetrust,
 *   /var/lib/imagetrust and /usr/local are the host's own directories under
 *   the test dir, bound over the real paths: the role manages the real paths
 *   (no imagetrust_root), and the test reads the host's files from outside;
 * - optionally Node.js is gone (node and nodejs removed from the /usr overlay,
 *   /usr/lib/node_modules hidden), as on a host that never installed it.
 * The sshd has its own host key, config and pid file, accepts only a client
 * key made for the test, and the client trusts only that host key (its own
 * known_hosts). stop() kills every process in each host's namespace, by PID;
 * so does process exit, if a test dies first. This machine's own /etc is
 * never written.
 */
import {type ChildProcess, spawn} from 'node:child_process'
import {closeSync, openSync, readdirSync, readlinkSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {connect} from 'node:net'
import path from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {type RunResult, REPO_ROOT, freePort, mustRun, run} from './lab.ts'

/** The host directories bound over the real paths (the files the role manages, and the install prefix). */
export const BOUND = ['/etc/containers', '/etc/pki/containers', '/etc/imagetrust', '/var/lib/imagetrust', '/usr/local'] as const

export interface FleetHost {
  name: string
  port: number
  /** The sshd's PID (the namespace's first process). */
  pid: number
  /** The mount namespace, as /proc/PID/ns/mnt names it. */
  namespace: string
  dir: string
  nodeHidden: boolean
}

export interface Play {
  code: number
  output: string
  recap: Record<string, {changed: number; failed: number}>
}

export interface HostSpec {
  name: string
  /** No node, nodejs or /usr/lib/node_modules on this host. */
  hideNode?: boolean
}

/** Kills every process whose mount namespace is one of these (sync: also runs on process exit). */
function killNamespaces(namespaces: Set<string>): number {
  let found = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    let ns: string
    try {
      ns = readlinkSync(`/proc/${entry}/ns/mnt`)
    } catch {
      continue
    }

    if (!namespaces.has(ns)) continue
    found++
    try {
      process.kill(Number(entry), 'SIGKILL')
    } catch {}
  }

  return found
}

/** What runs in each host's namespace before sshd: the overlays, the bound directories, Node.js gone. */
function namespaceScript(dir: string, hideNode: boolean): string {
  const lines = ['set -e', 'mount -t tmpfs -o mode=0755 tmpfs /run', 'mkdir -m 0755 /run/sshd', 'mount -t tmpfs -o mode=0700 tmpfs /root']
  for (const top of ['etc', 'usr', 'var']) {
    const layer = path.join(dir, 'layers', top)
    lines.push(`mkdir -p ${layer}/upper ${layer}/work`, `mount -t overlay overlay -o lowerdir=/${top},upperdir=${layer}/upper,workdir=${layer}/work /${top}`)
  }

  for (const bound of BOUND) lines.push(`mkdir -p ${bound}`, `mount --bind ${path.join(dir, 'fs', bound)} ${bound}`)
  if (hideNode) {
    lines.push('rm -f /usr/bin/node /usr/bin/nodejs /usr/bin/npm /usr/bin/npx /usr/bin/corepack')
    lines.push(`mkdir -p ${dir}/empty`, `[ ! -d /usr/lib/node_modules ] || mount --bind ${dir}/empty /usr/lib/node_modules`)
  }

  // A watchdog: should this process die without stop() (SIGKILL), it kills everything in the namespace.
  const watchdog = [
    `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done`,
    'me=$(readlink /proc/$$/ns/mnt)',
    'for p in /proc/[0-9]*; do n=${p#/proc/}; [ "$n" = $$ ] || [ "$(readlink $p/ns/mnt 2>/dev/null)" != "$me" ] || kill -9 $n; done',
  ].join('; ')
  lines.push(`sh -c '${watchdog}' </dev/null >/dev/null 2>&1 &`)
  lines.push(`exec /usr/sbin/sshd -D -e -f ${path.join(dir, 'sshd_config')}`)
  return lines.join('\n')
}

function sshdConfig(dir: string, port: number, authorizedKeys: string): string {
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'ssh_host_ed25519_key')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${authorizedKeys}`,
    'PermitRootLogin prohibit-password',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    // The test dir is below /tmp (world-writable): sshd's ownership checks of the key's path do not apply.
    'StrictModes no',
    'Subsystem sftp internal-sftp',
    'MaxStartups 100',
    'MaxSessions 100',
    'LogLevel ERROR',
    '',
  ].join('\n')
}

async function waitForPort(port: number, child: ChildProcess, log: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd on port ${port} exited (${child.exitCode}):\n${await readFile(log, 'utf8')}`)
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy()
        resolve(true)
      })
      socket.on('error', () => resolve(false))
    })
    if (open) return
    await sleep(50)
  }

  throw new Error(`sshd on port ${port} did not listen within ${timeoutMs} ms:\n${await readFile(log, 'utf8')}`)
}

export class Fleet {
  readonly hosts: FleetHost[] = []
  private readonly namespaces = new Set<string>()
  /** A file descriptor on each host's namespace, so that its number names no other while the fleet runs. */
  private readonly pins: number[] = []
  private readonly children: ChildProcess[] = []
  private readonly onExit = (): void => {
    for (const child of this.children) if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGKILL')
    killNamespaces(this.namespaces)
  }

  private constructor(
    readonly dir: string,
    readonly clientKey: string,
    readonly knownHosts: string,
  ) {
    process.on('exit', this.onExit)
  }

  /** Starts one sshd per host; on any failure, stops those already started. */
  static async start(dir: string, specs: HostSpec[]): Promise<Fleet> {
    if (process.getuid?.() !== 0) throw new Error('the fleet needs root (mount namespaces, sshd)')
    await mkdir(dir, {recursive: true})
    const clientKey = path.join(dir, 'client_key')
    await mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'imagetrust-fleet-test', '-f', clientKey])
    await writeFile(path.join(dir, 'authorized_keys'), await readFile(`${clientKey}.pub`))
    const fleet = new Fleet(dir, clientKey, path.join(dir, 'known_hosts'))
    try {
      // One at a time: each port is taken before the next free one is asked for.
      for (const spec of specs) fleet.hosts.push(await fleet.startHost(spec))
      const lines = await Promise.all(fleet.hosts.map(async (h) => `[127.0.0.1]:${h.port} ${(await readFile(path.join(h.dir, 'ssh_host_ed25519_key.pub'), 'utf8')).trim()}`))
      await writeFile(fleet.knownHosts, lines.join('\n') + '\n')
    } catch (error) {
      await fleet.stop()
      throw error
    }

    return fleet
  }

  private async startHost(spec: HostSpec): Promise<FleetHost> {
    const dir = path.join(this.dir, spec.name)
    for (const bound of BOUND) await mkdir(path.join(dir, 'fs', bound), {recursive: true})
    await mustRun('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', spec.name, '-f', path.join(dir, 'ssh_host_ed25519_key')])
    const port = await freePort()
    await writeFile(path.join(dir, 'sshd_config'), sshdConfig(dir, port, path.join(this.dir, 'authorized_keys')))
    const log = path.join(dir, 'sshd.log')
    const out = openSync(log, 'a')
    const script = namespaceScript(dir, spec.hideNode ?? false)
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {stdio: ['ignore', out, out], detached: true})
    closeSync(out)
    this.children.push(child)
    // unshare and sh exec: the PID is sshd's, and its namespace is the host's.
    const namespace = await this.namespaceOf(child, log)
    // Held open until stop(): the kernel hands a freed namespace's number to the next
    // unshare -m, and killNamespaces() kills by number (a lab.sh crio-down that did so killed another test's chroot).
    this.pins.push(openSync(`/proc/${child.pid}/ns/mnt`, 'r'))
    if (readlinkSync(`/proc/self/fd/${this.pins.at(-1)}`) !== namespace) throw new Error('a fleet host\'s namespace changed while it started')
    this.namespaces.add(namespace)
    await waitForPort(port, child, log)
    return {name: spec.name, port, pid: child.pid!, namespace, dir, nodeHidden: spec.hideNode ?? false}
  }

  private async namespaceOf(child: ChildProcess, log: string): Promise<string> {
    const own = readlinkSync('/proc/self/ns/mnt')
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`the namespace of a fleet host did not start (${child.exitCode}):\n${await readFile(log, 'utf8')}`)
      try {
        const ns = readlinkSync(`/proc/${child.pid}/ns/mnt`)
        if (ns !== own) return ns
      } catch {}

      await sleep(10)
    }

    throw new Error('the namespace of a fleet host did not start')
  }

  host(name: string): FleetHost {
    const found = this.hosts.find((h) => h.name === name)
    if (!found) throw new Error(`no fleet host ${name}`)
    return found
  }

  /** A host's own copy of a path the role manages (one of BOUND, or below one), as seen from outside. */
  path(name: string, hostPath: string): string {
    if (!BOUND.some((b) => hostPath === b || hostPath.startsWith(`${b}/`))) throw new Error(`${hostPath} is not one of a fleet host's own directories`)
    return path.join(this.host(name).dir, 'fs', hostPath)
  }

  /** ssh options that trust exactly the fleet's host keys and offer exactly the test's client key. */
  sshOptions(): string[] {
    return ['-o', `UserKnownHostsFile=${this.knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'StrictHostKeyChecking=yes', '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR']
  }

  /** Runs a shell command on a host over SSH, as root. */
  ssh(name: string, command: string): Promise<RunResult> {
    const h = this.host(name)
    return run('ssh', [...this.sshOptions(), '-i', this.clientKey, '-p', String(h.port), '-F', '/dev/null', 'root@127.0.0.1', command])
  }

  /** Ansible's connection variables for every host (ssh with the test's key; no become: the session is root). */
  inventoryHosts(): Record<string, Record<string, unknown>> {
    return Object.fromEntries(
      this.hosts.map((h) => [
        h.name,
        {
          ansible_connection: 'ssh',
          ansible_host: '127.0.0.1',
          ansible_port: h.port,
          ansible_user: 'root',
          ansible_ssh_private_key_file: this.clientKey,
          ansible_ssh_common_args: this.sshOptions().join(' '),
          ansible_python_interpreter: '/usr/bin/python3',
        },
      ]),
    )
  }

  /**
   * Runs a playbook (of ansible/, or an absolute path) on the whole fleet over SSH (forks 5): the fleet's connection variables plus
   * each host's own, and group vars; returns the exit code, the output and each host's recap.
   */
  async play(playbook: string, hostVars: Record<string, Record<string, unknown>>, vars: Record<string, unknown>, extra: string[] = []): Promise<Play> {
    const inventory = path.join(this.dir, 'inventory.json')
    const connections = this.inventoryHosts()
    const hosts = Object.fromEntries(this.hosts.map((h) => [h.name, {...connections[h.name], ...hostVars[h.name]}]))
    await writeFile(inventory, JSON.stringify({all: {children: {container_hosts: {hosts}}, vars}}))
    const env = {
      ...process.env,
      HOME: this.dir,
      ANSIBLE_LOCAL_TEMP: path.join(this.dir, 'ansible-tmp'),
      ANSIBLE_SSH_CONTROL_PATH_DIR: path.join(this.dir, 'cp'),
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_PIPELINING: '1',
      ANSIBLE_RETRY_FILES_ENABLED: '0',
      ...(process.env.FLEET_LOG ? {ANSIBLE_LOG_PATH: process.env.FLEET_LOG} : {}),
    }
    const result = await run('ansible-playbook', ['-i', inventory, '--forks', '5', path.resolve(REPO_ROOT, 'ansible', playbook), ...extra], {env})
    const output = result.stdout + result.stderr
    const recap: Play['recap'] = {}
    for (const h of this.hosts) {
      const m = new RegExp(`^${h.name}\\s*:\\s*ok=\\d+\\s+changed=(\\d+)\\s+unreachable=(\\d+)\\s+failed=(\\d+)`, 'm').exec(result.stdout)
      if (!m) throw new Error(`no recap for ${h.name}:\n${output}`)
      if (Number(m[2]) !== 0) throw new Error(`${h.name} unreachable:\n${output}`)
      recap[h.name] = {changed: Number(m[1]), failed: Number(m[3])}
    }

    return {code: result.code, output, recap}
  }

  /** Stops every sshd by its PID, then every process left in a host's namespace (sessions), and waits until none is left. */
  async stop(): Promise<void> {
    for (const child of this.children) if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGTERM')
    for (let i = 0; i < 100; i++) {
      const left = killNamespaces(this.namespaces) + this.children.filter((c) => c.exitCode === null && c.signalCode === null).length
      if (left === 0) break
      await sleep(50)
    }

    for (const pin of this.pins.splice(0)) closeSync(pin)
    process.off('exit', this.onExit)
  }

  /** The processes still running in any of the fleet's namespaces (none after stop()). */
  survivors(): number[] {
    const pids: number[] = []
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        if (this.namespaces.has(readlinkSync(`/proc/${entry}/ns/mnt`))) pids.push(Number(entry))
      } catch {}
    }

    return pids
  }
}
