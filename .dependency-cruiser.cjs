/**
 * The layers of src/, top to bottom. A folder may import its own layer and
 * any layer below it, never one above, and nothing may form a cycle.
 * commands → audit/status/init → verify/explain/signing/lookaside →
 * registry/sigstore → plan → keys →
 * host → registries-d → trustfile → policy → fs/lib/exec.
 */
const LAYERS = [
  ['commands', 'hooks'],
  ['audit', 'status', 'init', 'metrics'],
  ['verify', 'explain', 'signing', 'lookaside'],
  ['registry', 'sigstore'],
  ['plan'],
  ['keys'],
  ['host'],
  ['registries-d'],
  ['trustfile'],
  ['policy'],
  ['fs', 'lib', 'exec'],
]

const folder = (names) => `^src/(${names.join('|')})/`

module.exports = {
  forbidden: [
    {name: 'no-cycles', severity: 'error', comment: 'A cycle makes the layers meaningless.', from: {path: '^src/'}, to: {circular: true}},
    ...LAYERS.slice(1).map((layer, i) => ({
      name: `no-upward-from-${layer.join('-')}`,
      severity: 'error',
      comment: `${layer.join(', ')} may not import a layer above it.`,
      from: {path: folder(layer)},
      to: {path: folder(LAYERS.slice(0, i + 1).flat())},
    })),
    {
      name: 'not-in-a-layer',
      severity: 'error',
      comment: 'Every source folder belongs to a layer (add new ones to LAYERS).',
      from: {path: '^src/', pathNot: `${folder(LAYERS.flat())}|^src/[^/]+$`},
      to: {},
    },
  ],
  options: {
    doNotFollow: {path: 'node_modules'},
    tsPreCompilationDeps: true,
    tsConfig: {fileName: 'tsconfig.json'},
    enhancedResolveOptions: {extensions: ['.ts', '.js'], conditionNames: ['import', 'node', 'default']},
  },
}
