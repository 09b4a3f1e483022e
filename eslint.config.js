// ESLint for src/, test/, scripts/, bin/ and packaging/: typescript-eslint's recommended rules, and a few that catch real bugs here.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {ignores: ['dist/**', 'node_modules/**', 'bench/**', 'test/fixtures/**']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {globals: {process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', fetch: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextDecoder: 'readonly', TextEncoder: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', structuredClone: 'readonly', Response: 'readonly', Request: 'readonly', Headers: 'readonly'}},
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', destructuredArrayIgnorePattern: '^_'}],
      'no-empty': ['error', {allowEmptyCatch: true}],
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  // The bundles' CommonJS pieces (scripts/bundle.ts, scripts/dist.ts): require is how they load.
  {files: ['packaging/**/*.cjs'], languageOptions: {sourceType: 'commonjs', globals: {require: 'readonly', module: 'writable', exports: 'writable', __dirname: 'readonly', __filename: 'readonly'}}, rules: {'@typescript-eslint/no-require-imports': 'off'}},
  // Tests read terminal output: ANSI escapes in their patterns are the point.
  {files: ['test/**/*.ts'], rules: {'no-control-regex': 'off'}},
)
