import {access} from 'node:fs/promises'
import path from 'node:path'

import type {Capabilities} from '../host/capabilities.js'
import {ImagetrustError} from '../lib/errors.js'
import {paint} from '../lib/color.js'
import {withProgress} from '../lib/progress.js'
import {KEY_NAME} from '../trustfile/validate.js'
import {exceptionsFromFlags, type ExistingTrust, nameKey, normalizeLookaside, scopeNote, scopeOfImage, scopeProblem, untilProblem} from './core.js'
import {type HostSurvey, probeLookaside, rejectImpact, renderImpact, renderSurvey, suggestTestImages} from './host.js'
import {checkInitKey, formatKey, listKeyring, readInitKeySource, suggestKeyName} from './keys.js'
import type {DefaultChoice, InitAnswers, InitException, InitKey, InitScope} from './types.js'

type Prompts = typeof import('@inquirer/prompts')

export interface WizardContext {
  survey: HostSurvey
  capabilities: Capabilities
  existing?: ExistingTrust
  color: boolean
  log: (line: string) => void
  /** Flag values that answer a prompt in advance. */
  preset: {scopes?: string[]; default?: DefaultChoice; lookaside?: string[]; accept?: string[]; until?: string[]; reason?: string[]}
}

/** Where the wizard is, so a cancel can say at which step nothing was written. */
export const wizardStep = {current: 'start'}

function heading(ctx: WizardContext, n: number, title: string): void {
  wizardStep.current = title.toLowerCase()
  ctx.log('')
  ctx.log(paint(`${n}. ${title}`, 'bold', ctx.color))
}

/** The interactive walk through init's steps 1 to 6. Throws ExitPromptError on Ctrl-C; nothing is written here. */
export async function runWizard(ctx: WizardContext): Promise<InitAnswers> {
  const p: Prompts = await import('@inquirer/prompts')
  heading(ctx, 1, 'Engines')
  ctx.log(renderSurvey(ctx.survey))

  type Mode = 'new' | 'add-scope' | 'add-key'
  let mode = 'new' as Mode
  if (ctx.existing) {
    ctx.log(`\nThis host already has a trust file: ${ctx.existing.file}. init edits it (comments kept) instead of replacing it.`)
    const choice = await p.select({
      message: 'What do you want to do?',
      choices: [
        {name: 'Protect another registry or namespace (add a scope)', value: 'add-scope'},
        ...(ctx.existing.scopes.length > 0 ? [{name: 'Add or rotate a key for a scope', value: 'add-key'}] : []),
        {name: 'Cancel (change nothing)', value: 'cancel'},
      ],
    })
    if (choice === 'cancel') throw new InitCancelled('cancelled')
    mode = choice as Mode
  }

  heading(ctx, 2, 'Scopes')
  const scopes: string[] = []
  if (mode === 'add-key') {
    scopes.push(await p.select({message: 'Which scope gets a new key?', choices: ctx.existing!.scopes.map((s) => ({name: s, value: s}))}))
  } else if (ctx.preset.scopes?.length) {
    scopes.push(...ctx.preset.scopes)
    ctx.log(`From --scope: ${scopes.join(', ')}`)
  } else {
    ctx.log('Which registries or namespaces must serve only signed images? host[:port] for a whole registry,\nhost/namespace for a part of it, *.domain for every host below a domain.')
    for (;;) {
      const scope = await p.input({
        message: 'Registry or namespace to protect:',
        transformer: (value, {isFinal}) => {
          if (isFinal || value === '') return value
          const problem = scopeProblem(value)
          return problem ? `${value}  ${paint(`✗ ${problem}`, 'red', ctx.color)}` : `${value}  ${paint(`✓ ${scopeNote(value) ?? ''}`, 'green', ctx.color)}`
        },
        validate: (value) => {
          if (scopes.includes(value) || ctx.existing?.scopes.includes(value)) return `${value} is already listed`
          return scopeProblem(value) ?? true
        },
      })
      scopes.push(scope)
      const note = scopeNote(scope)
      if (note?.startsWith('matches only')) ctx.log(`note: ${scope} ${note}`)
      if (!(await p.confirm({message: 'Protect another registry or namespace?', default: false}))) break
    }
  }

  const answers: InitAnswers = {keys: [], scopes: []}
  heading(ctx, 3, 'Keys')
  for (const scope of scopes) {
    const key = await askKey(p, ctx, scope, answers)
    if (!answers.keys.some((k) => k.name === key.name) && !ctx.existing?.keys.some((k) => k.name === key.name)) answers.keys.push(key)
    answers.scopes.push({scope, key: key.name})
  }

  if (mode !== 'add-key') {
    heading(ctx, 4, 'Signatures (lookaside)')
    for (const [i, entry] of answers.scopes.entries()) await askLookaside(p, ctx, entry, answers, ctx.preset.lookaside?.[i] ?? ctx.preset.lookaside?.[0])
  }

  if (!ctx.existing || ctx.existing.default === undefined) {
    heading(ctx, 5, 'Default policy')
    answers.default = ctx.preset.default ?? (await askDefault(p, ctx, [...(ctx.existing?.scopes ?? []), ...scopes]))
  } else if (mode !== 'add-key') {
    heading(ctx, 5, 'Exceptions')
  }

  if (mode !== 'add-key') {
    answers.exceptions = ctx.preset.accept?.length
      ? exceptionsFromFlags({accept: ctx.preset.accept, until: ctx.preset.until, reason: ctx.preset.reason, scope: scopes}, new Date())
      : await askExceptions(p, ctx, [...(ctx.existing?.scopes ?? []), ...scopes])
  }

  heading(ctx, 6, 'Test images')
  ctx.log('verify pulls a signed test image (must be accepted) and an unsigned one (must be refused) for each scope. Both are optional.')
  for (const entry of answers.scopes) {
    if (mode === 'add-key') break
    for (const kind of ['signed', 'unsigned'] as const) {
      const image = await askTestImage(p, ctx, entry.scope, kind)
      if (image) entry.test = {...entry.test, [kind]: image}
    }
  }

  return answers
}

export class InitCancelled extends ImagetrustError {
  constructor(message: string) {
    super(`${message}: nothing was written, the host is unchanged`, {exitCode: 1})
  }
}

async function askKey(p: Prompts, ctx: WizardContext, scope: string, answers: InitAnswers): Promise<InitKey> {
  for (;;) {
    const keyring = await listKeyring()
    const source = await p.select<string>({
      message: `Which key signs the images of ${scope}?`,
      choices: [
        ...answers.keys.map((k) => ({name: `The key "${k.name}" chosen above`, value: `reuse:${k.name}`})),
        ...(keyring.length > 0 ? [{name: `A key from the local GnuPG keyring (${keyring.length} key(s))`, value: 'keyring'}] : []),
        {name: 'A file (armored or binary OpenPGP, or a PEM sigstore/cosign public key)', value: 'file'},
        {name: 'An https:// URL', value: 'url'},
        {name: 'Paste an armored key (opens $EDITOR)', value: 'paste'},
      ],
    })
    if (source.startsWith('reuse:')) return answers.keys.find((k) => k.name === source.slice(6))!
    let spec: string
    if (source === 'keyring') {
      spec = `gpg:${await p.select({
        message: 'Pick the key:',
        choices: keyring.map((k) => ({
          name: `${k.userIds[0] ?? '(no user ID)'}  ${k.fingerprint}  ${k.algorithm}${k.expires ? `  expires ${k.expires.slice(0, 10)}` : ''}${k.canSign ? '' : '  (cannot sign)'}`,
          value: k.fingerprint,
        })),
      })}`
    } else if (source === 'file') {
      spec = await p.input({
        message: 'Key file:',
        validate: async (value) =>
          access(path.resolve(value)).then(
            () => true,
            () => `${path.resolve(value)} does not exist`,
          ),
      })
    } else if (source === 'url') {
      spec = await p.input({message: 'https:// URL of the key:', validate: (value) => /^https:\/\/\S+$/.test(value) || 'an https:// URL'})
    } else {
      spec = await p.editor({message: 'Paste the armored public key:', postfix: '.asc', validate: (value) => value.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----') || value.includes('-----BEGIN PUBLIC KEY-----') || 'paste an armored public key'})
    }

    let key: InitKey
    try {
      const {bytes, origin} = await readInitKeySource(spec, {})
      key = await checkInitKey(bytes, {name: 'key', capabilities: ctx.capabilities, origin})
    } catch (error) {
      if (!(error instanceof ImagetrustError)) throw error
      ctx.log(paint(`This key cannot be used: ${error.message}`, 'red', ctx.color))
      continue
    }

    ctx.log(formatKey(key))
    for (const warning of key.warnings) ctx.log(paint(`warning: ${warning}`, 'yellow', ctx.color))
    ctx.log('This is the one time imagetrust trusts a key on first use: compare the fingerprint with its owner, out of band. It is pinned at once.')
    if (!(await p.confirm({message: `Trust this key for ${scope}?`, default: false}))) {
      ctx.log('Not trusted. Choose another key, or press Ctrl-C to stop (nothing is written).')
      continue
    }

    const named = nameKey(key, answers, ctx.existing)
    if (named.name !== 'key' && (answers.keys.some((k) => k.name === named.name) || ctx.existing?.keys.some((k) => k.name === named.name))) {
      ctx.log(`This is the key "${named.name}" already listed.`)
      return named
    }

    const taken = new Set([...answers.keys.map((k) => k.name), ...(ctx.existing?.keys.map((k) => k.name) ?? [])])
    const name = await p.input({
      message: 'Name for this key (it becomes a file name):',
      default: suggestKeyName(key.keys, taken),
      validate: (value) => (taken.has(value) ? `"${value}" is taken` : KEY_NAME.test(value) || `lowercase letters, digits, . _ - (${KEY_NAME.source})`),
    })
    return {...key, name}
  }
}

async function askLookaside(p: Prompts, ctx: WizardContext, entry: InitScope, answers: InitAnswers, preset: string | undefined): Promise<void> {
  const key = answers.keys.find((k) => k.name === entry.key)
  if (key?.type === 'sigstore' && (await p.confirm({message: `Are the signatures of ${entry.scope} attached to the images (sigstore attachments, as cosign does)?`, default: true}))) {
    entry.sigstoreAttachments = true
    return
  }

  for (;;) {
    const url =
      preset ??
      (await p.input({
        message: `Lookaside URL where the signatures of ${entry.scope} are served (http://, https:// or file://):`,
        validate: (value) => {
          try {
            normalizeLookaside(value)
            return true
          } catch (error) {
            return (error as Error).message
          }
        },
      }))
    preset = undefined
    const lookaside = normalizeLookaside(url)
    const probe = await withProgress(`checking ${lookaside}`, () => probeLookaside(lookaside), {describe: (r) => (r.ok ? `answers (${r.detail})` : `does not answer (${r.detail})`)})
    if (probe.ok || (await p.confirm({message: `${lookaside} does not answer (${probe.detail}). Keep it anyway?`, default: false}))) {
      entry.lookaside = lookaside
      return
    }
  }
}

async function askDefault(p: Prompts, ctx: WizardContext, scopes: string[]): Promise<DefaultChoice> {
  ctx.log(
    [
      'The default decides what happens to images from registries that no scope lists.',
      '  reject: they are refused. Local transports (containers-storage, oci, dir, docker-archive) stay open,',
      '          so podman load and locally built images keep working.',
      '  accept: they are pulled without any signature check.',
      "  unset:  policy.json's default is kept as found (usually accept).",
    ].join('\n'),
  )
  ctx.log(renderImpact(rejectImpact(ctx.survey, scopes)))
  return p.select<DefaultChoice>({
    message: 'Default for unlisted registries:',
    choices: [
      {name: 'reject (recommended)', value: 'reject'},
      {name: 'accept', value: 'accept'},
      {name: "unset (leave policy.json's default)", value: 'unset'},
    ],
  })
}

/** Accept scopes that end: a registry pulled unsigned for now, until a date, and why. */
async function askExceptions(p: Prompts, ctx: WizardContext, taken: string[]): Promise<InitException[]> {
  const out: InitException[] = []
  const question = 'Accept a registry or namespace unsigned for a while (an exception that ends on a date)?'
  while (await p.confirm({message: out.length === 0 ? question : 'Another exception?', default: false})) {
    const scope = await p.input({
      message: 'Registry or namespace to accept unsigned:',
      validate: (value) => ([...taken, ...out.map((e) => e.scope)].includes(value) ? `${value} is already listed` : (scopeProblem(value) ?? true)),
    })
    ctx.log('A date ends it at 00:00 UTC of that day (2027-02-01: the last day accepted is 31 January); or give an RFC 3339 time (2027-01-31T18:00:00Z).')
    const until = await p.input({message: `Accept ${scope} unsigned until:`, validate: (value) => untilProblem(value, new Date()) ?? true})
    // eslint-disable-next-line no-control-regex
    const reason = await p.input({message: 'Why (shown by check and status; empty: none):', validate: (value) => !/[\u0000-\u001f\u007f]/.test(value) || 'one line of text'})
    out.push({scope, until, ...(reason ? {reason} : {})})
  }

  return out
}

async function askTestImage(p: Prompts, ctx: WizardContext, scope: string, kind: 'signed' | 'unsigned'): Promise<string | undefined> {
  const suggestions = suggestTestImages(ctx.survey, scope)
  const message = `${kind === 'signed' ? 'Signed' : 'Unsigned'} test image under ${scope} (empty: none):`
  let typed = ''
  if (suggestions.length > 0) {
    const choice = await p.select<string>({
      message,
      choices: [...suggestions.map((s) => ({name: s, value: s})), {name: 'Type another', value: '\u0000type'}, {name: 'None', value: ''}],
    })
    if (choice !== '\u0000type') return choice || undefined
  }

  typed = await p.input({
    message,
    validate: (value) => {
      if (value === '') return true
      try {
        return scopeOfImage(value, [scope]) === scope || `${value} is not under ${scope}`
      } catch (error) {
        return (error as Error).message
      }
    },
  })
  return typed || undefined
}

/** Step 8's question: write and apply, write only, or cancel. */
export async function askCommit(): Promise<'apply' | 'write' | 'cancel'> {
  const p: Prompts = await import('@inquirer/prompts')
  wizardStep.current = 'plan'
  return p.select({
    message: 'Write the trust file and apply this plan?',
    choices: [
      {name: 'Write the trust file and apply', value: 'apply'},
      {name: 'Write only the trust file (apply later with `imagetrust apply`)', value: 'write'},
      {name: 'Cancel: write nothing', value: 'cancel'},
    ],
  })
}
