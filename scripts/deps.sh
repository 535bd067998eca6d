#!/usr/bin/env bash
# Installs what Trent's build and tests need beyond Go: SoftHSM2 (the PKCS#11
# module), NSS's softoken (libsoftokn3, the second module the HSM tests run
# on), OpenSC (pkcs11-tool, for inspecting tokens) and a C compiler (cgo,
# for miekg/pkcs11). Does nothing when they are present.
set -euo pipefail

module_paths=(
  /usr/lib/softhsm/libsofthsm2.so
  /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so
  /usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so
  /usr/lib64/pkcs11/libsofthsm2.so
  /usr/local/lib/softhsm/libsofthsm2.so
  /opt/homebrew/lib/softhsm/libsofthsm2.so
  /usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so
  /opt/local/lib/softhsm/libsofthsm2.so
)

nss_paths=(
  /usr/lib/x86_64-linux-gnu/libsoftokn3.so
  /usr/lib/aarch64-linux-gnu/libsoftokn3.so
  /usr/lib/x86_64-linux-gnu/nss/libsoftokn3.so
  /usr/lib64/libsoftokn3.so
  /usr/lib/libsoftokn3.so
  /usr/local/lib/libsoftokn3.so
  /opt/homebrew/lib/libsoftokn3.dylib
  /usr/local/opt/nss/lib/libsoftokn3.dylib
)

have_nss() {
  if [ -n "${TRENT_NSS_MODULE:-}" ]; then
    [ -f "$TRENT_NSS_MODULE" ] && return 0
    echo "deps: TRENT_NSS_MODULE=$TRENT_NSS_MODULE does not exist" >&2
    exit 1
  fi
  for p in "${nss_paths[@]}"; do [ -f "$p" ] && return 0; done
  return 1
}

have_module() {
  if [ -n "${TRENT_PKCS11_MODULE:-}" ]; then
    [ -f "$TRENT_PKCS11_MODULE" ] && return 0
    echo "deps: TRENT_PKCS11_MODULE=$TRENT_PKCS11_MODULE does not exist" >&2
    exit 1
  fi
  for p in "${module_paths[@]}"; do [ -f "$p" ] && return 0; done
  return 1
}

missing=()
have_module || missing+=(softhsm2)
have_nss || missing+=(libnss3)
command -v pkcs11-tool >/dev/null 2>&1 || missing+=(opensc)
command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 || missing+=(gcc)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "deps: installing ${missing[*]}" >&2
if command -v apt-get >/dev/null 2>&1; then
  pkgs=()
  for m in "${missing[@]}"; do
    case "$m" in
      gcc) pkgs+=(gcc libc6-dev) ;;
      *) pkgs+=("$m") ;;
    esac
  done
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "deps: not root and no sudo: install ${pkgs[*]} with your package manager" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
elif command -v brew >/dev/null 2>&1; then
  pkgs=()
  for m in "${missing[@]}"; do
    case "$m" in
      softhsm2) pkgs+=(softhsm) ;;
      libnss3) pkgs+=(nss) ;;
      gcc) echo "deps: install the Xcode command line tools (xcode-select --install) for cgo" >&2; exit 1 ;;
      *) pkgs+=("$m") ;;
    esac
  done
  brew install "${pkgs[@]}"
else
  echo "deps: cannot install automatically on this system. Install:" >&2
  echo "  SoftHSM2 (Debian/Ubuntu: softhsm2, Fedora: softhsm, macOS: softhsm)" >&2
  echo "  NSS      (Debian/Ubuntu: libnss3, Fedora: nss-softokn, macOS: nss)" >&2
  echo "  OpenSC   (package opensc, for pkcs11-tool)" >&2
  echo "  a C compiler for cgo (gcc or clang)" >&2
  echo "or point TRENT_PKCS11_MODULE at another PKCS#11 module." >&2
  exit 1
fi

if ! have_module; then
  echo "deps: SoftHSM2 was installed but libsofthsm2 is not in a known place; set TRENT_PKCS11_MODULE" >&2
  exit 1
fi
if ! have_nss; then
  echo "deps: NSS was installed but libsoftokn3 is not in a known place; set TRENT_NSS_MODULE" >&2
  exit 1
fi
echo "deps: done" >&2
