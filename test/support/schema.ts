/** The --json contracts under schema/, compiled once (strict), for tests that run commands for real. */
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import path from 'node:path'

import {Ajv2020, type ValidateFunction} from 'ajv/dist/2020.js'

import {REPO_ROOT} from './lab.ts'

const ajv = new Ajv2020({allErrors: true, strict: true})
const compiled = new Map<string, ValidateFunction>()

/** Asserts that a command's --json output matches schema/NAME.schema.json. */
export function assertMatchesSchema(name: string, output: unknown): void {
  let validate = compiled.get(name)
  if (!validate) {
    validate = ajv.compile(JSON.parse(readFileSync(path.join(REPO_ROOT, 'schema', `${name}.schema.json`), 'utf8')))
    compiled.set(name, validate)
  }

  assert.ok(validate(output), `${name} --json does not match schema/${name}.schema.json: ${ajv.errorsText(validate.errors)}`)
}
