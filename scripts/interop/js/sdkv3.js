// The AWS SDK for JavaScript v3 (@aws-sdk/client-kms) against a KMS
// endpoint, configured only by the environment (AWS_ENDPOINT_URL, AWS_REGION
// and the credentials from the dev cluster's env file): the core round trips
// a user makes, and the SDK's typed exceptions for a key that does not exist
// and a signature that does not verify.
'use strict'

const crypto = require('node:crypto')
const {
  KMSClient, CreateKeyCommand, CreateAliasCommand, DescribeKeyCommand,
  EncryptCommand, DecryptCommand, GenerateDataKeyCommand, ReEncryptCommand,
  SignCommand, VerifyCommand, GetPublicKeyCommand, NotFoundException,
  ListKeysCommand, paginateListKeys, paginateListAliases,
  KMSInvalidSignatureException, InvalidCiphertextException
} = require('@aws-sdk/client-kms')
const { runCase, check, exitCode } = require('./common')

const kms = new KMSClient({})
const context = { app: 'interop', client: 'sdk-js-v3', 'ünï cödé': 'välue ✓ "quoted"' }
const enc = new TextEncoder()
const eq = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0

async function main () {
  const version = require('@aws-sdk/client-kms/package.json').version
  console.log(`version @aws-sdk/client-kms ${version}`)
  let key, key2, alias
  await runCase('create-key-alias', async () => {
    key = (await kms.send(new CreateKeyCommand({ Description: 'interop sdk-js-v3' }))).KeyMetadata
    key2 = (await kms.send(new CreateKeyCommand({ Description: 'interop sdk-js-v3 (2)' }))).KeyMetadata
    check(/^arn:aws:kms:[a-z0-9-]+:\d{12}:key\//.test(key.Arn), `key ARN ${key.Arn}`)
    check(key.CreationDate instanceof Date && Math.abs(Date.now() - key.CreationDate) < 600e3, `CreationDate ${key.CreationDate}`)
    alias = `alias/interop-sdkv3-${crypto.randomBytes(4).toString('hex')}`
    await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyId }))
    const d = await kms.send(new DescribeKeyCommand({ KeyId: alias }))
    check(d.KeyMetadata.KeyId === key.KeyId, 'DescribeKey of the alias names another key')
    return key.Arn
  })
  await runCase('encrypt-decrypt-context', async () => {
    const pt = enc.encode('hello from sdk-js-v3')
    const e = await kms.send(new EncryptCommand({ KeyId: alias, Plaintext: pt, EncryptionContext: context }))
    check(e.KeyId === key.Arn, `Encrypt KeyId ${e.KeyId}, want the key ARN`)
    const d = await kms.send(new DecryptCommand({ CiphertextBlob: e.CiphertextBlob, EncryptionContext: context }))
    check(eq(d.Plaintext, pt), 'Decrypt: other plaintext')
    check(d.KeyId === key.Arn, `Decrypt KeyId ${d.KeyId}`)
    try {
      await kms.send(new DecryptCommand({ CiphertextBlob: e.CiphertextBlob, EncryptionContext: { app: 'other' } }))
      throw new Error('Decrypt under another context succeeded')
    } catch (err) {
      check(err instanceof InvalidCiphertextException, `another context: ${err.name}, want InvalidCiphertextException`)
    }
    return `${e.CiphertextBlob.length}-byte ciphertext`
  })
  await runCase('generate-data-key', async () => {
    const g = await kms.send(new GenerateDataKeyCommand({ KeyId: key.Arn, KeySpec: 'AES_256', EncryptionContext: context }))
    check(g.Plaintext.length === 32, `data key of ${g.Plaintext.length} bytes`)
    const d = await kms.send(new DecryptCommand({ CiphertextBlob: g.CiphertextBlob, EncryptionContext: context }))
    check(eq(d.Plaintext, g.Plaintext), 'the data key decrypts to other bytes')
    return 'AES_256'
  })
  await runCase('re-encrypt', async () => {
    const pt = enc.encode('moving keys')
    const e = await kms.send(new EncryptCommand({ KeyId: key.KeyId, Plaintext: pt }))
    const r = await kms.send(new ReEncryptCommand({ CiphertextBlob: e.CiphertextBlob, DestinationKeyId: key2.KeyId }))
    check(r.SourceKeyId === key.Arn && r.KeyId === key2.Arn, `ReEncrypt SourceKeyId ${r.SourceKeyId} KeyId ${r.KeyId}`)
    const d = await kms.send(new DecryptCommand({ CiphertextBlob: r.CiphertextBlob }))
    check(eq(d.Plaintext, pt) && d.KeyId === key2.Arn, 'the re-encrypted blob decrypts to other bytes or under another key')
    return `${key.KeyId} -> ${key2.KeyId}`
  })
  await runCase('sign-verify', async () => {
    const k = (await kms.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' }))).KeyMetadata
    const msg = enc.encode('a message to sign')
    const s = await kms.send(new SignCommand({ KeyId: k.KeyId, Message: msg, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }))
    const v = await kms.send(new VerifyCommand({ KeyId: k.KeyId, Message: msg, MessageType: 'RAW', Signature: s.Signature, SigningAlgorithm: 'ECDSA_SHA_256' }))
    check(v.SignatureValid === true, 'Verify: SignatureValid is not true')
    // The signature verifies outside KMS too, with the public key.
    const pub = await kms.send(new GetPublicKeyCommand({ KeyId: k.KeyId }))
    const pk = crypto.createPublicKey({ key: Buffer.from(pub.PublicKey), format: 'der', type: 'spki' })
    check(crypto.verify('sha256', msg, pk, Buffer.from(s.Signature)), 'node:crypto does not verify the signature')
    try {
      await kms.send(new VerifyCommand({ KeyId: k.KeyId, Message: enc.encode('another message'), MessageType: 'RAW', Signature: s.Signature, SigningAlgorithm: 'ECDSA_SHA_256' }))
      throw new Error('Verify of another message succeeded')
    } catch (err) {
      check(err instanceof KMSInvalidSignatureException, `another message: ${err.name}, want KMSInvalidSignatureException`)
    }
    return 'ECC_NIST_P256 ECDSA_SHA_256'
  })
  await runCase('paginate', async () => {
    // The SDK's paginators follow Truncated and NextMarker.
    const whole = await kms.send(new ListKeysCommand({ Limit: 1000 }))
    check(!whole.Truncated, 'more than 1000 keys')
    const ids = []
    let pages = 0
    for await (const page of paginateListKeys({ client: kms, pageSize: 2 }, {})) {
      pages++
      ids.push(...page.Keys.map(k => k.KeyId))
    }
    check(JSON.stringify(ids.sort()) === JSON.stringify(whole.Keys.map(k => k.KeyId).sort()), 'the pages do not add up to ListKeys')
    check(pages >= 2, 'a single page')
    const aliases = []
    for await (const page of paginateListAliases({ client: kms, pageSize: 1 }, {})) {
      aliases.push(...page.Aliases.map(a => a.AliasName))
    }
    check(aliases.includes(alias), 'the alias is not listed')
    return `${ids.length} keys in ${pages} pages; aliases by 1`
  })
  await runCase('error-unknown-key', async () => {
    try {
      await kms.send(new EncryptCommand({ KeyId: crypto.randomUUID(), Plaintext: enc.encode('x') }))
    } catch (err) {
      check(err instanceof NotFoundException, `${err.name}, want NotFoundException`)
      check(err.$metadata.httpStatusCode === 400, `HTTP ${err.$metadata.httpStatusCode}`)
      return 'NotFoundException'
    }
    throw new Error('Encrypt under an unknown key succeeded')
  })
}

main().then(() => process.exit(exitCode()), (err) => { console.error(err); process.exit(1) })
