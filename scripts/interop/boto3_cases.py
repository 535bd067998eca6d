"""boto3 against a KMS endpoint, configured only by the environment
(AWS_ENDPOINT_URL, AWS_REGION and the credentials of the dev cluster's env
file): the core round trips a user makes and the client's typed exception for
a key that does not exist. Prints one line per case, "case NAME pass|fail
DETAIL", for scripts/interop/run.sh; exits 1 if a case failed."""

import datetime
import os
import re
import sys
import uuid

import boto3
import botocore

failed = False


def run_case(name, fn):
    global failed
    try:
        detail = fn() or ""
        print(f"case {name} pass {detail}".rstrip(), flush=True)
    except Exception as err:  # every failure is reported, then the next case runs
        failed = True
        msg = " ".join(f"{type(err).__name__}: {err}".split())
        print(f"case {name} fail {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


kms = boto3.client("kms")
context = {"app": "interop", "client": "boto3", "ünï cödé": "välue ✓ \"quoted\""}
keys = {}


def create_key_alias():
    keys["a"] = kms.create_key(Description="interop boto3")["KeyMetadata"]
    keys["b"] = kms.create_key(Description="interop boto3 (2)")["KeyMetadata"]
    arn = keys["a"]["Arn"]
    check(re.match(r"^arn:aws:kms:[a-z0-9-]+:\d{12}:key/", arn), f"key ARN {arn}")
    created = keys["a"]["CreationDate"]
    check(isinstance(created, datetime.datetime) and abs(
        (datetime.datetime.now(datetime.timezone.utc) - created).total_seconds()) < 600,
        f"CreationDate {created!r}")
    keys["alias"] = f"alias/interop-boto3-{uuid.uuid4().hex[:8]}"
    kms.create_alias(AliasName=keys["alias"], TargetKeyId=keys["a"]["KeyId"])
    d = kms.describe_key(KeyId=keys["alias"])["KeyMetadata"]
    check(d["KeyId"] == keys["a"]["KeyId"], "DescribeKey of the alias names another key")
    return arn


def encrypt_decrypt_context():
    pt = b"hello from boto3"
    e = kms.encrypt(KeyId=keys["alias"], Plaintext=pt, EncryptionContext=context)
    check(e["KeyId"] == keys["a"]["Arn"], f"Encrypt KeyId {e['KeyId']}, want the key ARN")
    d = kms.decrypt(CiphertextBlob=e["CiphertextBlob"], EncryptionContext=context)
    check(d["Plaintext"] == pt and d["KeyId"] == keys["a"]["Arn"], "Decrypt: other plaintext or key")
    try:
        kms.decrypt(CiphertextBlob=e["CiphertextBlob"], EncryptionContext={"app": "other"})
    except kms.exceptions.InvalidCiphertextException:
        pass
    else:
        raise AssertionError("Decrypt under another context succeeded")
    return f"{len(e['CiphertextBlob'])}-byte ciphertext"


def generate_data_key():
    g = kms.generate_data_key(KeyId=keys["a"]["Arn"], KeySpec="AES_256", EncryptionContext=context)
    check(len(g["Plaintext"]) == 32, f"data key of {len(g['Plaintext'])} bytes")
    d = kms.decrypt(CiphertextBlob=g["CiphertextBlob"], EncryptionContext=context)
    check(d["Plaintext"] == g["Plaintext"], "the data key decrypts to other bytes")
    return "AES_256"


def re_encrypt():
    pt = b"moving keys"
    e = kms.encrypt(KeyId=keys["a"]["KeyId"], Plaintext=pt)
    r = kms.re_encrypt(CiphertextBlob=e["CiphertextBlob"], DestinationKeyId=keys["b"]["KeyId"])
    check(r["SourceKeyId"] == keys["a"]["Arn"] and r["KeyId"] == keys["b"]["Arn"],
          f"ReEncrypt SourceKeyId {r['SourceKeyId']} KeyId {r['KeyId']}")
    d = kms.decrypt(CiphertextBlob=r["CiphertextBlob"])
    check(d["Plaintext"] == pt and d["KeyId"] == keys["b"]["Arn"], "the re-encrypted blob decrypts wrongly")
    return f"{keys['a']['KeyId']} -> {keys['b']['KeyId']}"


def sign_verify():
    k = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    msg = b"a message to sign"
    s = kms.sign(KeyId=k["KeyId"], Message=msg, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
    v = kms.verify(KeyId=k["KeyId"], Message=msg, MessageType="RAW", Signature=s["Signature"],
                   SigningAlgorithm="ECDSA_SHA_256")
    check(v["SignatureValid"] is True, "Verify: SignatureValid is not True")
    try:
        kms.verify(KeyId=k["KeyId"], Message=b"another message", MessageType="RAW",
                   Signature=s["Signature"], SigningAlgorithm="ECDSA_SHA_256")
    except kms.exceptions.KMSInvalidSignatureException:
        pass
    else:
        raise AssertionError("Verify of another message succeeded")
    return "ECC_NIST_P256 ECDSA_SHA_256"


def paginate():
    """boto3's paginators follow Truncated and NextMarker."""
    whole = kms.list_keys(Limit=1000)
    check(not whole.get("Truncated"), "more than 1000 keys")
    pages = list(kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 2}))
    ids = [k["KeyId"] for p in pages for k in p["Keys"]]
    check(sorted(ids) == sorted(k["KeyId"] for k in whole["Keys"]), "the pages do not add up to ListKeys")
    check(len(pages) >= 2, "a single page")
    aliases = [a["AliasName"] for p in kms.get_paginator("list_aliases").paginate(PaginationConfig={"PageSize": 1})
               for a in p["Aliases"]]
    check(keys["alias"] in aliases, "the alias is not listed")
    return f"{len(ids)} keys in {len(pages)} pages; aliases by 1"


def error_unknown_key():
    try:
        kms.encrypt(KeyId=str(uuid.uuid4()), Plaintext=b"x")
    except kms.exceptions.NotFoundException as err:
        check(err.response["ResponseMetadata"]["HTTPStatusCode"] == 400, "not HTTP 400")
        return "kms.exceptions.NotFoundException"
    raise AssertionError("Encrypt under an unknown key succeeded")


print(f"version boto3 {boto3.__version__} botocore {botocore.__version__}", flush=True)
check(os.environ.get("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL is not set")
run_case("create-key-alias", create_key_alias)
run_case("encrypt-decrypt-context", encrypt_decrypt_context)
run_case("generate-data-key", generate_data_key)
run_case("re-encrypt", re_encrypt)
run_case("sign-verify", sign_verify)
run_case("paginate", paginate)
run_case("error-unknown-key", error_unknown_key)
sys.exit(1 if failed else 0)
