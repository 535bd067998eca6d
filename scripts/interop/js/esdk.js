// The AWS Encryption SDK for JavaScript (@aws-crypto/client-node) with KMS
// keyrings, as its users encrypt and decrypt: under the strict commitment
// policy (REQUIRE_ENCRYPT_REQUIRE_DECRYPT), with an encryption context, a
// key ARN and an alias ARN as generator, a discovery keyring on decrypt,
// and a multi-keyring of two keys, each of which decrypts alone. The KMS
// client is the SDK's default (@aws-sdk/client-kms with the region of the
// key's ARN), configured by the environment.
'use strict'

const crypto = require('node:crypto')
const {
  buildClient, CommitmentPolicy, KmsKeyringNode, MultiKeyringNode,
  AlgorithmSuiteIdentifier
} = require('@aws-crypto/client-node')
const { KMSClient, CreateKeyCommand, CreateAliasCommand } = require('@aws-sdk/client-kms')
const { runCase, check, exitCode } = require('./common')

const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
const kms = new KMSClient({})
const context = { purpose: 'interop', client: 'esdk-js' }
const committing = new Set([
  AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY,
  AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384
])

// roundTrip encrypts under one keyring and decrypts under each of the others,
// checking the suite commits to the key and the context came back.
async function roundTrip (encKeyring, decKeyrings, edks) {
  const plaintext = crypto.randomBytes(1000)
  const { result, messageHeader } = await encrypt(encKeyring, plaintext, { encryptionContext: context })
  check(committing.has(messageHeader.suiteId), `suite ${messageHeader.suiteId} does not commit to the key`)
  check(messageHeader.encryptedDataKeys.length === edks, `${messageHeader.encryptedDataKeys.length} encrypted data keys, want ${edks}`)
  for (const kr of decKeyrings) {
    const d = await decrypt(kr, result)
    check(Buffer.compare(d.plaintext, plaintext) === 0, 'decrypted to other bytes')
    for (const [k, v] of Object.entries(context)) {
      check(d.messageHeader.encryptionContext[k] === v, `context ${k} not returned`)
    }
  }
  return { result, providers: messageHeader.encryptedDataKeys.map(e => e.providerInfo) }
}

async function main () {
  console.log(`version @aws-crypto/client-node ${require('@aws-crypto/client-node/package.json').version}`)
  let a, b, aliasArn
  await runCase('setup-keys', async () => {
    a = (await kms.send(new CreateKeyCommand({ Description: 'interop esdk A' }))).KeyMetadata
    b = (await kms.send(new CreateKeyCommand({ Description: 'interop esdk B' }))).KeyMetadata
    const name = `alias/interop-esdk-${crypto.randomBytes(4).toString('hex')}`
    await kms.send(new CreateAliasCommand({ AliasName: name, TargetKeyId: a.KeyId }))
    aliasArn = a.Arn.replace(/:key\/.*$/, `:${name}`)
    return aliasArn
  })
  await runCase('keyring-key-arn', async () => {
    const kr = new KmsKeyringNode({ generatorKeyId: a.Arn })
    const { providers } = await roundTrip(kr, [kr], 1)
    check(providers[0] === a.Arn, `provider info ${providers[0]}, want the key ARN`)
    return 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT, committing suite, context'
  })
  await runCase('keyring-alias-arn-generator', async () => {
    const enc = new KmsKeyringNode({ generatorKeyId: aliasArn })
    const { providers } = await roundTrip(enc, [new KmsKeyringNode({ generatorKeyId: a.Arn })], 1)
    // The EDK names the key KMS answered with, the key ARN, not the alias.
    check(providers[0] === a.Arn, `provider info ${providers[0]}, want the key ARN`)
    return 'the EDK names the key ARN'
  })
  await runCase('keyring-discovery-decrypt', async () => {
    const disc = new KmsKeyringNode({ discovery: true, discoveryFilter: { accountIDs: [a.Arn.split(':')[4]], partition: 'aws' } })
    await roundTrip(new KmsKeyringNode({ generatorKeyId: a.Arn }), [disc], 1)
    return 'discovery filter: the account, partition aws'
  })
  await runCase('multi-keyring-two-keys', async () => {
    const ka = new KmsKeyringNode({ generatorKeyId: a.Arn })
    const kb = new KmsKeyringNode({ keyIds: [b.Arn] })
    const multi = new MultiKeyringNode({ generator: ka, children: [kb] })
    const { providers } = await roundTrip(multi, [ka, new KmsKeyringNode({ generatorKeyId: b.Arn }), multi], 2)
    check(providers.includes(a.Arn) && providers.includes(b.Arn), `provider infos ${providers}`)
    return 'two EDKs; each key decrypts alone'
  })
  await runCase('tampered-message-refused', async () => {
    const kr = new KmsKeyringNode({ generatorKeyId: a.Arn })
    const { result } = await encrypt(kr, Buffer.from('x'), { encryptionContext: context })
    const c = Buffer.from(result)
    c[c.length - 10] ^= 1
    try {
      await decrypt(kr, c)
    } catch (err) {
      return `a tampered message: ${err.message}`
    }
    throw new Error('a tampered message decrypted')
  })
}

main().then(() => process.exit(exitCode()), (err) => { console.error(err); process.exit(1) })
