/**
 * Shell completion scripts for bash and zsh, generated from the command list:
 * commands and topics, each command's flags, and the values of flags that
 * have a fixed set of options. zsh loads the bash function through
 * bashcompinit, so both shells complete the same way.
 */
export interface CompletionCommand {
  /** Space-separated, as typed: "key add". */
  id: string
  flags: Array<{name: string; char?: string; options?: readonly string[]}>
}

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`
/** Array keys are _/key/add: no spaces or quotes, which zsh would keep as part of the key. */
const key = (id: string) => ['_', ...id.split(' ')].join('/')

export function bashCompletion(bin: string, commands: CompletionCommand[]): string {
  const fn = `_${bin.replaceAll(/\W/g, '_')}_complete`
  const subs = new Map<string, Set<string>>([['_', new Set()]])
  for (const c of commands) {
    const words = c.id.split(' ')
    for (let i = 0; i < words.length; i++) {
      const parent = ['_', ...words.slice(0, i)].join('/')
      if (!subs.has(parent)) subs.set(parent, new Set())
      subs.get(parent)!.add(words[i])
    }
  }

  const lines = [
    `# ${bin} completion for bash. Install: ${bin} completion bash > /etc/bash_completion.d/${bin}`,
    `declare -A ${fn}_subs ${fn}_flags ${fn}_opts`,
    ...[...subs].map(([k, v]) => `${fn}_subs[${k}]=${quote([...v].sort().join(' '))}`),
    ...commands.map((c) => `${fn}_flags[${key(c.id)}]=${quote(c.flags.flatMap((f) => [`--${f.name}`, ...(f.char ? [`-${f.char}`] : [])]).sort().join(' '))}`),
    ...commands.flatMap((c) =>
      c.flags.filter((f) => f.options?.length).flatMap((f) => [`--${f.name}`, ...(f.char ? [`-${f.char}`] : [])].map((flag) => `${fn}_opts[${key(c.id)}/${flag}]=${quote(f.options!.join(' '))}`)),
    ),
    `${fn}() {`,
    '  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cpath=_ i w',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    w=${COMP_WORDS[i]}',
    '    [[ $w == -* ]] && continue',
    `    if [[ " \${${fn}_subs[$cpath]} " == *" $w "* ]]; then cpath="$cpath/$w"; else break; fi`,
    '  done',
    `  if [[ -n \${${fn}_opts[$cpath/$prev]+x} ]]; then`,
    `    COMPREPLY=($(compgen -W "\${${fn}_opts[$cpath/$prev]}" -- "$cur")); return`,
    '  fi',
    `  if [[ $cur == -* && -n \${${fn}_flags[$cpath]+x} ]]; then`,
    `    COMPREPLY=($(compgen -W "\${${fn}_flags[$cpath]}" -- "$cur")); return`,
    '  fi',
    `  if [[ -n \${${fn}_subs[$cpath]+x} && -z \${${fn}_flags[$cpath]+x} ]]; then`,
    `    COMPREPLY=($(compgen -W "\${${fn}_subs[$cpath]}" -- "$cur")); return`,
    '  fi',
    '  COMPREPLY=($(compgen -f -- "$cur"))',
    '}',
    `complete -o default -F ${fn} ${bin}`,
    '',
  ]
  return lines.join('\n')
}

export function zshCompletion(bin: string, commands: CompletionCommand[]): string {
  return [
    `#compdef ${bin}`,
    `# ${bin} completion for zsh. Install: ${bin} completion zsh > "\${fpath[1]}/_${bin}", or eval "$(${bin} completion zsh)" in ~/.zshrc`,
    'autoload -U +X compinit && compinit -u',
    'autoload -U +X bashcompinit && bashcompinit',
    bashCompletion(bin, commands),
  ].join('\n')
}
