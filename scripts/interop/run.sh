#!/usr/bin/env bash
# make interop: real KMS clients, at pinned versions, against a fresh dev
# cluster (docs/conformance.md, "Clients").
#
# It installs the clients into a cache dir that git ignores (INTEROP_CACHE,
# default .interop/ in the repo) from the registries these machines reach: the
# Go module proxy (SOPS, go-kms-wrapping), Debian's packages (AWS CLI v2) and
# npm (the AWS SDK for JavaScript v3, the AWS Encryption SDK for JavaScript).
# The AWS CLI v1 and boto3 come from PyPI, which these machines do not reach:
# they are used as installed (pyenv here) and their cases are skipped, with
# the reason, where they are absent. Then it starts `trent dev` in a
# temporary dir with free loopback ports, runs every case with the cluster's
# credentials (DIR/env), prints a table (client, version, case, result) and
# exits non-zero naming the cases that failed. During the cases every proxy
# variable points at a dead loopback port, so a client that ignored the
# endpoint would fail here rather than reach AWS.
#
# Each client program prints "case NAME pass|fail DETAIL" per case. A case
# listed in XFAIL below is a known failure: it is shown as xfail with its
# reason and does not fail the run; if it passes, the run fails until the
# entry is removed.
#
# Environment: TRENT (default bin/trent), INTEROP_CACHE, INTEROP_KEEP=1 (keep
# the cluster's dir), INTEROP_KMS_LISTEN (default 127.0.0.1:0), INTEROP_ONLY
# (a space-separated list of clients to run: aws-cli-v1 aws-cli-v2 boto3
# sdk-js-v3 esdk-js sops go-kms-wrapping).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/scripts/interop
CACHE=${INTEROP_CACHE:-$ROOT/.interop}
TRENT=${TRENT:-$ROOT/bin/trent}
KMS_LISTEN=${INTEROP_KMS_LISTEN:-127.0.0.1:0}
ONLY=${INTEROP_ONLY:-}

# The pins. The npm packages are pinned in js/package.json and
# js/package-lock.json, go-kms-wrapping in gokmswrapping/go.mod and go.sum.
SOPS_VERSION=v3.13.3
AWSCLI_DEB_VERSION=2.9.19-1

# Known failures: "client/case" -> the reason (none today).
declare -A XFAIL=()

LOGS=$CACHE/logs
mkdir -p "$CACHE/bin" "$LOGS"
rm -f "$LOGS"/*.log
START=$SECONDS

RC=() RV=() RN=() RR=() RD=()
record() { # client version case result detail
  RC+=("$1") RV+=("$2") RN+=("$3") RR+=("$4") RD+=("${5:-}")
}
exec 3>&2 # say writes here, also from the install steps whose output goes to logs
say() { printf 'interop: %s\n' "$*" >&3; }
wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# collect CLIENT VERSION LOG: records the "case" lines of a client program's
# output, applying XFAIL. Returns 1 if it found no case line.
collect() {
  local client=$1 version=$2 log=$3 n=0 name result detail key
  while read -r _ name result detail; do
    n=$((n + 1))
    key=$client/$name
    if [ -n "${XFAIL[$key]:-}" ]; then
      if [ "$result" = fail ]; then
        result=xfail detail="${XFAIL[$key]} (${detail})"
      else
        result=fail detail="listed as an expected failure but passed: remove it from XFAIL"
      fi
    fi
    record "$client" "$version" "$name" "$result" "$detail"
  done < <(grep '^case ' "$log")
  [ "$n" -gt 0 ]
}

# program CLIENT VERSION CMD...: runs a client program that prints case lines.
program() {
  local client=$1 version=$2 log=$LOGS/$1.log rc
  shift 2
  say "$client ($version)"
  ("$@") >"$log" 2>&1
  rc=$?
  if ! collect "$client" "$version" "$log"; then
    record "$client" "$version" run fail "exit $rc, no case ran (log: ${log#"$ROOT"/})"
  elif [ "$rc" -ne 0 ] && ! grep -q '^case .* fail' "$log"; then
    record "$client" "$version" run fail "exit $rc after its cases (log: ${log#"$ROOT"/})"
  fi
}

# ---- install ---------------------------------------------------------------

install_sops() {
  local v
  v=$("$CACHE/bin/sops" --version --disable-version-check 2>/dev/null | head -1)
  [ "$v" = "sops ${SOPS_VERSION#v}" ] && return 0
  say "installing sops $SOPS_VERSION (go install)"
  GOBIN=$CACHE/bin go install "github.com/getsops/sops/v3/cmd/sops@$SOPS_VERSION"
}

install_gokmswrapping() {
  say "building the go-kms-wrapping program"
  (cd "$HERE/gokmswrapping" && go build -o "$CACHE/bin/gokmswrapping" .)
}

install_js() {
  local stamp=$CACHE/js/.lock-installed
  if [ -d "$CACHE/js/node_modules" ] && cmp -s "$HERE/js/package-lock.json" "$stamp"; then
    return 0
  fi
  say "installing the JavaScript clients (npm ci)"
  mkdir -p "$CACHE/js"
  cp "$HERE/js/package.json" "$HERE/js/package-lock.json" "$CACHE/js/"
  (cd "$CACHE/js" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) &&
    cp "$HERE/js/package-lock.json" "$stamp"
}

install_awscli_v2() {
  local have
  have=$(dpkg-query -W -f '${Version}' awscli 2>/dev/null)
  [ "$have" = "$AWSCLI_DEB_VERSION" ] && return 0
  say "installing Debian's awscli $AWSCLI_DEB_VERSION (apt-get)"
  apt-get install -y -qq --no-install-recommends "awscli=$AWSCLI_DEB_VERSION" >/dev/null ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "awscli=$AWSCLI_DEB_VERSION" >/dev/null; }
}

# find_aws MAJOR: the first aws on PATH (or /usr/bin/aws) of that major version.
find_aws() {
  local a
  for a in $(type -ap aws) /usr/bin/aws; do
    [ -x "$a" ] || continue
    if "$a" --version 2>&1 | grep -q "^aws-cli/$1\."; then
      echo "$a"
      return 0
    fi
  done
  return 1
}

SKIPS=()
skip() { # client reason
  SKIPS+=("$1")
  record "$1" - all skip "$2"
}

if [ ! -x "$TRENT" ]; then
  say "no $TRENT: run make build"
  exit 1
fi
wanted sops && { install_sops >"$LOGS/install-sops.log" 2>&1 || record sops "$SOPS_VERSION" install fail "go install failed (log: .interop/logs/install-sops.log)"; }
wanted go-kms-wrapping && { install_gokmswrapping >"$LOGS/install-gokmswrapping.log" 2>&1 || record go-kms-wrapping - install fail "go build failed (log: .interop/logs/install-gokmswrapping.log)"; }
if wanted sdk-js-v3 || wanted esdk-js; then
  if ! command -v node >/dev/null || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
    wanted sdk-js-v3 && skip sdk-js-v3 "needs Node 20 or later (have: $(node --version 2>/dev/null || echo none))"
    wanted esdk-js && skip esdk-js "needs Node 20 or later (have: $(node --version 2>/dev/null || echo none))"
  elif ! install_js >"$LOGS/install-js.log" 2>&1; then
    record sdk-js-v3 - install fail "npm ci failed (log: .interop/logs/install-js.log)"
    record esdk-js - install fail "npm ci failed (log: .interop/logs/install-js.log)"
  fi
fi
if wanted aws-cli-v2; then
  if ! command -v apt-get >/dev/null; then
    skip aws-cli-v2 "no apt-get: Debian's awscli $AWSCLI_DEB_VERSION cannot be installed here"
  elif ! install_awscli_v2 >"$LOGS/install-awscli.log" 2>&1; then
    record aws-cli-v2 "$AWSCLI_DEB_VERSION" install fail "apt-get install awscli=$AWSCLI_DEB_VERSION failed (log: .interop/logs/install-awscli.log)"
  fi
fi
AWS1=$(find_aws 1) || AWS1=
AWS2=$(find_aws 2) || AWS2=
wanted aws-cli-v1 && [ -z "$AWS1" ] && skip aws-cli-v1 "no AWS CLI v1 on PATH (it comes from PyPI, which this machine does not reach)"
wanted boto3 && ! python3 -c 'import boto3' 2>/dev/null && skip boto3 "python3 has no boto3 (it comes from PyPI, which this machine does not reach)"
INSTALLED=$((SECONDS - START))

# ---- the cluster -----------------------------------------------------------

DEV=$(mktemp -d "${TMPDIR:-/tmp}/trent-interop.XXXXXX")
WORK=$DEV/work
mkdir -p "$WORK"
say "starting trent dev in $DEV"
"$TRENT" dev --dir "$DEV/cluster" --listen 127.0.0.1:0 --kms-listen "$KMS_LISTEN" \
  --rotation-interval -1s >"$LOGS/trent-dev.log" 2>&1 &
DEVPID=$!
cleanup() {
  if kill -0 "$DEVPID" 2>/dev/null; then
    kill -TERM "$DEVPID"
    for _ in $(seq 100); do kill -0 "$DEVPID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$DEVPID" 2>/dev/null && kill -KILL "$DEVPID"
  fi
  wait "$DEVPID" 2>/dev/null
  if [ "${INTEROP_KEEP:-}" = 1 ]; then
    say "kept $DEV"
  else
    rm -rf "$LOGS/cluster"
    cp -r "$DEV/cluster/logs" "$LOGS/cluster" 2>/dev/null
    rm -rf "$DEV"
  fi
}
trap cleanup EXIT
# The env file is written once the hosts serve; "Started" once every HSM
# holds the domain's state.
for _ in $(seq 600); do
  [ -s "$DEV/cluster/env" ] && grep -q '^Started' "$LOGS/trent-dev.log" && break
  kill -0 "$DEVPID" 2>/dev/null || break
  sleep 0.2
done
if ! [ -s "$DEV/cluster/env" ] || ! grep -q '^Started' "$LOGS/trent-dev.log"; then
  say "trent dev did not start (log: .interop/logs/trent-dev.log):"
  tail -20 "$LOGS/trent-dev.log" >&2
  exit 1
fi
# shellcheck disable=SC1091
. "$DEV/cluster/env"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL
say "KMS API at $AWS_ENDPOINT_URL"
export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY=127.0.0.1,localhost
export http_proxy=$HTTP_PROXY https_proxy=$HTTPS_PROXY no_proxy=$NO_PROXY
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=$WORK/aws-config AWS_SHARED_CREDENTIALS_FILE=$WORK/aws-credentials
export AWS_PAGER="" AWS_CLI_AUTO_PROMPT=off
CASES_START=$SECONDS

# ---- the AWS CLI (v1 and v2): the README's quick start and more ------------

# cli_cases CLIENT AWS...: the AWS CLI's cases, each a function printing its
# case line; AWS is the command (with --endpoint-url where the CLI does not
# read AWS_ENDPOINT_URL).
cli_case() { # NAME CMD...: runs CMD in this shell; its status and its last line make the case line
  local name=$1 out=$WORK/case.out
  shift
  if "$@" >"$out" 2>&1; then
    echo "case $name pass $(tail -1 "$out")"
  else
    echo "case $name fail $(tr '\n' ' ' <"$out" | cut -c1-300)"
  fi
}
cli_cases() {
  local d=$WORK/$1
  shift
  mkdir -p "$d"
  cd "$d" || return 1
  # The quick start, as README.md gives it.
  quickstart() {
    KEY=$("${AWS[@]}" kms create-key --description demo --query KeyMetadata.KeyId --output text) || return 1
    ALIAS=alias/demo-$RANDOM$RANDOM
    "${AWS[@]}" kms create-alias --alias-name "$ALIAS" --target-key-id "$KEY" || return 1
    printf hello >pt.txt
    "${AWS[@]}" kms encrypt --key-id "$ALIAS" --plaintext fileb://pt.txt --encryption-context app=demo \
      --query CiphertextBlob --output text | base64 -d >ct.bin || return 1
    local got
    got=$("${AWS[@]}" kms decrypt --ciphertext-blob fileb://ct.bin --encryption-context app=demo \
      --query Plaintext --output text | base64 -d) || return 1
    [ "$got" = hello ] || { echo "decrypted \"$got\", not hello"; return 1; }
    echo "create-key, create-alias, encrypt and decrypt with fileb:// and a context"
  }
  generate_data_key() {
    local out pt ct got
    out=$("${AWS[@]}" kms generate-data-key --key-id "$KEY" --key-spec AES_256 --encryption-context app=demo \
      --query '[Plaintext,CiphertextBlob]' --output text) || return 1
    read -r pt ct <<<"$out"
    [ "$(printf %s "$pt" | base64 -d | wc -c)" -eq 32 ] || { echo "a data key of other than 32 bytes"; return 1; }
    printf %s "$ct" | base64 -d >dk.bin
    got=$("${AWS[@]}" kms decrypt --ciphertext-blob fileb://dk.bin --encryption-context app=demo \
      --query Plaintext --output text) || return 1
    [ "$got" = "$pt" ] || { echo "the data key decrypts to other bytes"; return 1; }
    echo "AES_256, decrypted back"
  }
  re_encrypt() {
    local key2 arn2 out got keyid
    key2=$("${AWS[@]}" kms create-key --query KeyMetadata.KeyId --output text) || return 1
    arn2=$("${AWS[@]}" kms describe-key --key-id "$key2" --query KeyMetadata.Arn --output text) || return 1
    "${AWS[@]}" kms re-encrypt --ciphertext-blob fileb://ct.bin --source-encryption-context app=demo \
      --destination-key-id "$key2" --destination-encryption-context app=moved \
      --query CiphertextBlob --output text | base64 -d >re.bin || return 1
    out=$("${AWS[@]}" kms decrypt --ciphertext-blob fileb://re.bin --encryption-context app=moved \
      --query '[KeyId,Plaintext]' --output text) || return 1
    read -r keyid got <<<"$out"
    [ "$keyid" = "$arn2" ] || { echo "decrypted under $keyid, not $arn2"; return 1; }
    [ "$(printf %s "$got" | base64 -d)" = hello ] || { echo "re-encrypted blob decrypts to other bytes"; return 1; }
    echo "to a second key and a new context"
  }
  sign_verify() {
    local sk valid err
    sk=$("${AWS[@]}" kms create-key --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY \
      --query KeyMetadata.KeyId --output text) || return 1
    printf 'a message to sign' >msg.txt
    "${AWS[@]}" kms sign --key-id "$sk" --message fileb://msg.txt --message-type RAW \
      --signing-algorithm ECDSA_SHA_256 --query Signature --output text | base64 -d >sig.bin || return 1
    valid=$("${AWS[@]}" kms verify --key-id "$sk" --message fileb://msg.txt --message-type RAW \
      --signature fileb://sig.bin --signing-algorithm ECDSA_SHA_256 --query SignatureValid --output text) || return 1
    [ "$valid" = True ] || { echo "SignatureValid $valid"; return 1; }
    printf 'another message' >other.txt
    if err=$("${AWS[@]}" kms verify --key-id "$sk" --message fileb://other.txt --message-type RAW \
      --signature fileb://sig.bin --signing-algorithm ECDSA_SHA_256 2>&1); then
      echo "verify of another message succeeded"
      return 1
    fi
    [[ $err == *KMSInvalidSignatureException* ]] || { echo "another message: $err"; return 1; }
    echo "ECC_NIST_P256 ECDSA_SHA_256 with fileb://; another message: KMSInvalidSignatureException"
  }
  error_unknown_key() { # the CLI's exit status for a service error: 255 in v1, 254 in v2
    local err rc want=255
    [[ $("${AWS[0]}" --version 2>&1) == aws-cli/2.* ]] && want=254
    err=$("${AWS[@]}" kms describe-key --key-id "$(cat /proc/sys/kernel/random/uuid)" 2>&1)
    rc=$?
    [ "$rc" -eq "$want" ] && [[ $err == *"(NotFoundException)"* ]] || { echo "exit $rc (want $want): $err"; return 1; }
    echo "exit $rc, NotFoundException"
  }
  paginate() { # the CLI follows NextMarker when it pages
    local all paged
    all=$("${AWS[@]}" kms list-keys --query 'Keys[].KeyId' --output text | wc -w) || return 1
    paged=$("${AWS[@]}" kms list-keys --page-size 1 --query 'Keys[].KeyId' --output text | wc -w) || return 1
    [ "$all" = "$paged" ] && [ "$all" -ge 2 ] || { echo "list-keys: $all keys, $paged by pages of 1"; return 1; }
    echo "list-keys --page-size 1: $paged keys"
  }
  # Key import as AWS's developer guide shows it ("Encrypt the key
  # material", openssl): 32 bytes under RSAES_OAEP_SHA_256, and an
  # ECC_NIST_P256 private key (PKCS#8 DER) under RSA_AES_KEY_WRAP_SHA_256.
  import_key() {
    local ik ek out tok pub got want
    params() { # KEY ALG SPEC: ImportToken.bin and WrappingPublicKey.bin
      out=$("${AWS[@]}" kms get-parameters-for-import --key-id "$1" --wrapping-algorithm "$2" --wrapping-key-spec "$3" \
        --query '[ImportToken,PublicKey]' --output text) || return 1
      read -r tok pub <<<"$out"
      printf %s "$tok" | base64 -d >ImportToken.bin
      printf %s "$pub" | base64 -d >WrappingPublicKey.bin
    }
    oaep256() { # IN OUT
      openssl pkeyutl -encrypt -in "$1" -out "$2" -inkey WrappingPublicKey.bin -keyform DER -pubin \
        -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
    }
    import() { # KEY
      "${AWS[@]}" kms import-key-material --key-id "$1" --encrypted-key-material fileb://EncryptedKeyMaterial.bin \
        --import-token fileb://ImportToken.bin --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE
    }
    ik=$("${AWS[@]}" kms create-key --origin EXTERNAL --query KeyMetadata.KeyId --output text) || return 1
    params "$ik" RSAES_OAEP_SHA_256 RSA_2048 || return 1
    openssl rand -out PlaintextKeyMaterial.bin 32 || return 1
    oaep256 PlaintextKeyMaterial.bin EncryptedKeyMaterial.bin || return 1
    import "$ik" || return 1
    "${AWS[@]}" kms encrypt --key-id "$ik" --plaintext fileb://pt.txt --query CiphertextBlob --output text | base64 -d >ict.bin || return 1
    got=$("${AWS[@]}" kms decrypt --ciphertext-blob fileb://ict.bin --query Plaintext --output text | base64 -d) || return 1
    [ "$got" = hello ] || { echo "the imported key decrypted \"$got\", not hello"; return 1; }

    ek=$("${AWS[@]}" kms create-key --origin EXTERNAL --key-spec ECC_NIST_P256 --key-usage SIGN_VERIFY \
      --query KeyMetadata.KeyId --output text) || return 1
    params "$ek" RSA_AES_KEY_WRAP_SHA_256 RSA_3072 || return 1
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem &&
      openssl pkcs8 -topk8 -outform DER -nocrypt -in ec.pem -out ec.bin &&
      openssl rand -out aes-key.bin 32 &&
      openssl enc -id-aes256-wrap-pad -K "$(od -An -tx1 aes-key.bin | tr -d ' \n')" -iv A65959A6 \
        -in ec.bin -out key-material-wrapped.bin &&
      oaep256 aes-key.bin aes-key-wrapped.bin &&
      cat aes-key-wrapped.bin key-material-wrapped.bin >EncryptedKeyMaterial.bin || return 1
    import "$ek" || return 1
    want=$(openssl pkey -in ec.pem -pubout -outform DER | base64 -w0) || return 1
    got=$("${AWS[@]}" kms get-public-key --key-id "$ek" --query PublicKey --output text) || return 1
    [ "$got" = "$want" ] || { echo "get-public-key is not the imported key's"; return 1; }
    echo "SYMMETRIC_DEFAULT by RSAES_OAEP_SHA_256 (encrypts, decrypts) and ECC_NIST_P256 by RSA_AES_KEY_WRAP_SHA_256 (its public key), wrapped by openssl"
  }
  last_usage() { # after re-encrypt: the quick start's key was last used as ReEncrypt's source
    local out
    out=$("${AWS[@]}" kms get-key-last-usage --key-id "$KEY" --query KeyLastUsage.Operation --output text) || return 1
    [ "$out" = ReEncrypt ] || { echo "last usage $out, not ReEncrypt"; return 1; }
    echo "ReEncrypt (the key was its source)"
  }
  cli_case quickstart quickstart
  cli_case generate-data-key generate_data_key
  cli_case re-encrypt re_encrypt
  if [[ $("${AWS[@]}" kms get-key-last-usage </dev/null 2>&1) == *"Invalid choice"* ]]; then
    echo "case get-key-last-usage skip this CLI has no get-key-last-usage (botocore's model predates it)"
  else
    cli_case get-key-last-usage last_usage
  fi
  if command -v openssl >/dev/null; then
    cli_case import-key import_key
  else
    echo "case import-key skip no openssl to wrap the key material"
  fi
  cli_case sign-verify sign_verify
  cli_case paginate paginate
  cli_case error-unknown-key error_unknown_key
}

if wanted aws-cli-v1 && [ -n "$AWS1" ]; then
  AWS=("$AWS1")
  V=$("$AWS1" --version 2>&1 | awk '{print $1, $4}')
  program aws-cli-v1 "$V" cli_cases aws-cli-v1
fi
if wanted aws-cli-v2 && [ -n "$AWS2" ]; then
  V=$("$AWS2" --version 2>&1 | awk '{print $1}')
  # AWS CLI v2 reads AWS_ENDPOINT_URL from 2.13.0 on; before, the endpoint
  # must be given with --endpoint-url (checked by the first case).
  v2_endpoint() {
    local err
    if err=$("$AWS2" kms list-keys --max-items 1 --cli-connect-timeout 2 --cli-read-timeout 5 2>&1); then
      echo "case endpoint-from-env pass AWS_ENDPOINT_URL honoured"
    else
      echo "case endpoint-from-env fail $(echo "$err" | tr '\n' ' ' | cut -c1-200)"
    fi
  }
  minor=$(echo "$V" | sed -E 's|aws-cli/2\.([0-9]+).*|\1|')
  if [ "$minor" -lt 13 ]; then
    XFAIL[aws-cli-v2/endpoint-from-env]="AWS CLI v2 reads AWS_ENDPOINT_URL only from 2.13.0; older ones need --endpoint-url, which the other cases pass"
    AWS=("$AWS2" --endpoint-url "$AWS_ENDPOINT_URL")
  else
    AWS=("$AWS2")
  fi
  v2_cases() { v2_endpoint && cli_cases aws-cli-v2; }
  program aws-cli-v2 "$V" v2_cases
fi

# ---- boto3 -----------------------------------------------------------------

if wanted boto3 && [[ " ${SKIPS[*]} " != *" boto3 "* ]]; then
  V=$(python3 -c 'import boto3, botocore; print(f"boto3 {boto3.__version__} (botocore {botocore.__version__})")')
  program boto3 "$V" python3 "$HERE/boto3_cases.py"
fi

# ---- the AWS SDK for JavaScript v3 and the AWS Encryption SDK --------------

if [ -d "$CACHE/js/node_modules" ]; then
  export NODE_PATH=$CACHE/js/node_modules
  jsv() { node -p "require('$1/package.json').version"; }
  if wanted sdk-js-v3 && [[ " ${SKIPS[*]} " != *" sdk-js-v3 "* ]]; then
    program sdk-js-v3 "@aws-sdk/client-kms $(jsv @aws-sdk/client-kms)" node "$HERE/js/sdkv3.js"
  fi
  if wanted esdk-js && [[ " ${SKIPS[*]} " != *" esdk-js "* ]]; then
    program esdk-js "@aws-crypto/client-node $(jsv @aws-crypto/client-node)" node "$HERE/js/esdk.js"
  fi
fi

# ---- SOPS ------------------------------------------------------------------

sops_cases() {
  local S=$CACHE/bin/sops d=$WORK/sops arn arn2 ctx=app:interop,env:dev
  mkdir -p "$d" && cd "$d" || return 1
  arn=$(aws_api create-key --query KeyMetadata.Arn) && arn2=$(aws_api create-key --query KeyMetadata.Arn) ||
    { echo "case setup fail could not create keys"; return 1; }
  # Inputs in the layout SOPS writes, so that a round trip is byte for byte.
  printf 'db:\n    user: admin\n    password: hunter2\nport: 5432\n' >secrets.yaml
  printf '{\n\t"api_key": "abc123",\n\t"n": 7\n}\n' >secrets.json
  roundtrip() { # file: encrypt with --kms and a context, check, decrypt
    local f=$1 ext=${1##*.}
    "$S" encrypt --kms "$arn" --encryption-context "$ctx" "$f" >"enc.$ext" || return 1
    grep -q 'ENC\[AES256_GCM' "enc.$ext" && ! grep -q hunter2 "enc.$ext" && ! grep -q abc123 "enc.$ext" ||
      { echo "the encrypted file is not encrypted"; return 1; }
    grep -q "$arn" "enc.$ext" || { echo "the file does not name the key"; return 1; }
    "$S" decrypt "enc.$ext" >"dec.$ext" || return 1
    cmp -s "$f" "dec.$ext" || { echo "decrypts to other content: $(tr '\n' ' ' <"dec.$ext")"; return 1; }
    echo "--kms ARN, --encryption-context $ctx"
  }
  context_bound() { # the context is bound to the data key: a file whose context was changed does not open
    sed 's/env: dev/env: prod/' enc.yaml >tampered.yaml
    cmp -s enc.yaml tampered.yaml && { echo "no context in the file"; return 1; }
    if "$S" decrypt tampered.yaml >/dev/null 2>&1; then
      echo "a file whose context was changed decrypted"
      return 1
    fi
    echo "a changed context does not decrypt"
  }
  rotate() { # a new data key, a second key added, the first removed; still opens
    cp enc.yaml rot.yaml
    "$S" rotate -i --add-kms "$arn2" --encryption-context "$ctx" rot.yaml || return 1
    "$S" rotate -i --rm-kms "$arn" --encryption-context "$ctx" rot.yaml || return 1
    grep -q "$arn2" rot.yaml && ! grep -q "$arn" rot.yaml || { echo "the keys are not the ones rotated to"; return 1; }
    [ "$(grep 'password:' enc.yaml)" != "$(grep 'password:' rot.yaml)" ] || { echo "the data key did not change"; return 1; }
    "$S" decrypt rot.yaml >rot.dec.yaml && cmp -s secrets.yaml rot.dec.yaml || { echo "the rotated file does not decrypt"; return 1; }
    echo "new data key; --add-kms ARN2, --rm-kms ARN; opens under ARN2 alone"
  }
  cli_case yaml-roundtrip roundtrip secrets.yaml
  cli_case json-roundtrip roundtrip secrets.json
  cli_case context-bound context_bound
  cli_case rotate rotate
}
# aws_api OPERATION ARGS...: one KMS call for a case's setup, through whichever CLI is here.
aws_api() {
  local a=${AWS1:-$AWS2} extra=()
  [ "$a" = "$AWS2" ] && extra=(--endpoint-url "$AWS_ENDPOINT_URL")
  "$a" "${extra[@]}" kms "$@" --output text
}

if wanted sops && [ -x "$CACHE/bin/sops" ]; then
  V=$("$CACHE/bin/sops" --version --disable-version-check 2>/dev/null | head -1)
  program sops "$V" sops_cases
fi

# ---- go-kms-wrapping (Vault's and OpenBao's awskms seal) ---------------------

if wanted go-kms-wrapping && [ -x "$CACHE/bin/gokmswrapping" ]; then
  V=$(cd "$HERE/gokmswrapping" && go list -m -f '{{.Version}}' github.com/hashicorp/go-kms-wrapping/wrappers/awskms/v2)
  gkw() {
    local key alias=alias/vault-seal-$RANDOM$RANDOM
    key=$(aws_api create-key --query KeyMetadata.KeyId) && aws_api create-alias --alias-name "$alias" --target-key-id "$key" ||
      { echo "case setup fail could not create the seal key"; return 1; }
    "$CACHE/bin/gokmswrapping" -key-id "$alias"
  }
  program go-kms-wrapping "awskms/v2 $V" gkw
fi

# ---- the table -------------------------------------------------------------

CASES=$((SECONDS - CASES_START))
pass=0 fail=0 xfail=0 skipped=0 failed=()
printf '\n%-16s %-34s %-28s %-6s %s\n' client version case result detail
for i in "${!RC[@]}"; do
  printf '%-16s %-34s %-28s %-6s %s\n' "${RC[$i]}" "${RV[$i]}" "${RN[$i]}" "${RR[$i]}" "${RD[$i]}"
  case ${RR[$i]} in
  pass) pass=$((pass + 1)) ;;
  xfail) xfail=$((xfail + 1)) ;;
  skip) skipped=$((skipped + 1)) ;;
  *) fail=$((fail + 1)) failed+=("${RC[$i]}/${RN[$i]}") ;;
  esac
done
echo
say "install ${INSTALLED}s, cases ${CASES}s, all $((SECONDS - START))s; logs in ${LOGS#"$ROOT"/}/"
[ "$xfail" -gt 0 ] && say "$xfail expected failures (xfail above, with the reason)"
echo "interop: $pass passed, $fail failed, $skipped skipped"
if [ "$fail" -gt 0 ]; then
  echo "interop: FAILED: ${failed[*]}"
  exit 1
fi
