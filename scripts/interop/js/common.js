// Shared by the interop programs: each case prints one line,
// "case NAME pass|fail DETAIL", which scripts/interop/run.sh collects.
'use strict'

let failed = false

async function runCase (name, fn) {
  try {
    const detail = await fn()
    console.log(`case ${name} pass ${detail || ''}`.trimEnd())
  } catch (err) {
    failed = true
    const msg = `${(err && err.name) || 'Error'}: ${(err && err.message) || err}`
    console.log(`case ${name} fail ${msg.replace(/\s+/g, ' ')}`)
  }
}

function check (cond, msg) {
  if (!cond) throw new Error(msg)
}

function exitCode () {
  return failed ? 1 : 0
}

module.exports = { runCase, check, exitCode }
