#!/usr/bin/env bash
# Prints, as its last stdout line, the absolute path of a folder holding executable `etcd`
# and `kube-apiserver` for the local control plane (see jobgate/testing/controlplane.py).
#
# 1. $KUBEBUILDER_ASSETS, when it names a folder with both binaries.
# 2. Otherwise the cache ${XDG_CACHE_HOME:-$HOME/.cache}/jobgate/k8s-$KUBE_VERSION/, filled
#    once (versions in scripts/versions.env):
#    - etcd: the `etcd` on PATH, else Debian's etcd-server installed with apt-get (as root);
#    - kube-apiserver: built with the machine's Go from k8s.io/kubernetes through the Go
#      module proxy, in a throwaway module that `replace`s every staging module k8s.io/<name>
#      by its v0.Y.Z release. Cold: ~4 min, ~2 GB of memory on 2 cores; 119 MB binary.
# Idempotent and safe to run concurrently (a lock serialises builders). Progress goes to
# stderr. Nothing is written into the repository.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

has_both() { [ -x "$1/etcd" ] && [ -x "$1/kube-apiserver" ]; }
log() { echo "get-control-plane: $*" >&2; }

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  if has_both "$KUBEBUILDER_ASSETS"; then
    (cd "$KUBEBUILDER_ASSETS" && pwd)
    exit 0
  fi
  log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks etcd or kube-apiserver; using the cache"
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/jobgate/k8s-$KUBE_VERSION"
case "$cache" in /*) ;; *) cache="$PWD/$cache" ;; esac
if has_both "$cache"; then  # warm path: no lock, no subprocess
  echo "$cache"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
if ! flock -n 9; then
  log "another get-control-plane.sh is filling $cache; waiting for it"
  flock 9
fi
if has_both "$cache"; then
  echo "$cache"
  exit 0
fi

# --- etcd ---------------------------------------------------------------------------------
if [ ! -x "$cache/etcd" ]; then
  etcd_bin="$(command -v etcd || true)"
  if [ -z "$etcd_bin" ]; then
    pkg="$JOBGATE_ETCD_DEBIAN_PACKAGE"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "etcd is not on PATH: installing Debian's $pkg"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >&2
      if ! apt-get install -y -qq --no-install-recommends "$pkg=$JOBGATE_ETCD_DEBIAN_VERSION" >&2
      then
        log "$pkg=$JOBGATE_ETCD_DEBIAN_VERSION is not offered here; installing the default $pkg"
        apt-get install -y -qq --no-install-recommends "$pkg" >&2
      fi
      # (A service manager may start a system etcd on 2379; the control plane uses free ports.)
      etcd_bin="$(command -v etcd)"
    else
      log "etcd is missing. Install it, e.g. 'sudo apt-get install $pkg' (Debian/Ubuntu),"
      log "or set KUBEBUILDER_ASSETS to a folder holding etcd and kube-apiserver"
      log "(e.g. from 'setup-envtest use -p path'), then run this again."
      exit 1
    fi
  fi
  ln -sfn "$etcd_bin" "$cache/etcd"
  log "etcd: $etcd_bin ($("$etcd_bin" --version 2>/dev/null | head -n1))"
fi

# --- kube-apiserver -----------------------------------------------------------------------
if [ ! -x "$cache/kube-apiserver" ]; then
  if ! command -v go >/dev/null; then
    log "Go (>= the go directive of k8s.io/kubernetes $KUBE_VERSION, i.e. 1.26) is needed to"
    log "build kube-apiserver; install it or set KUBEBUILDER_ASSETS"
    exit 1
  fi
  export GOTOOLCHAIN=local GOFLAGS=-mod=mod
  go_version="$(go env GOVERSION)"
  minor="$(echo "$go_version" | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
  if [ -n "$minor" ] && [ "$minor" -ge 27 ]; then
    # Go 1.27's encoding/json v2 breaks the apiserver's /openapi/v2 (see shared FACTS.md).
    export GOEXPERIMENT="${GOEXPERIMENT:+$GOEXPERIMENT,}nojsonv2"
    log "$go_version: building with GOEXPERIMENT=$GOEXPERIMENT"
  fi
  work="$(mktemp -d)"
  out="$(mktemp "$cache/.kube-apiserver.XXXXXX")"
  trap 'rm -rf "$work" "$out"' EXIT
  log "building kube-apiserver $KUBE_VERSION with $go_version in $work (cold: minutes, ~2 GB)"
  start=$SECONDS
  cd "$work"
  go mod init jobgate.local/kube-apiserver-build >/dev/null 2>&1
  # The release's own go.mod lists its staging modules (k8s.io/x => ./staging/src/k8s.io/x).
  download="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION")"
  field() { echo "$download" | sed -n "s/^[[:space:]]*\"$1\": \"\(.*\)\",\{0,1\}\$/\1/p"; }
  gomod="$(field GoMod)"
  [ -f "$gomod" ] || { log "could not download k8s.io/kubernetes@$KUBE_VERSION"; exit 1; }
  staging="$(sed -n 's#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\)[[:space:]]*=>[[:space:]]*\./staging/.*#\1#p' \
    "$gomod" | sort -u)"
  [ -n "$staging" ] || { log "no staging replaces found in $gomod"; exit 1; }
  staging_version="v0.${KUBE_VERSION#v1.}"
  log "replacing $(echo "$staging" | wc -l) staging modules by $staging_version"
  {
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    for module in $staging; do echo "replace $module => $module $staging_version"; done
  } >>go.mod
  cat >tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
  go mod tidy >&2
  # Stamp the version as Kubernetes' own build does (hack/lib/version.sh); unstamped, the
  # server reports v0.0.0-master and kubectl warns about version skew.
  release_time="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$(field Info)")"
  minor_version="${KUBE_VERSION#v1.}"
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1"
    ldflags+=" -X $pkg.gitMinor=${minor_version%%.*} -X $pkg.gitTreeState=clean"
    ldflags+=" -X $pkg.buildDate=${release_time:-1970-01-01T00:00:00Z}"
  done
  go build -trimpath -ldflags="$ldflags" -o "$out" k8s.io/kubernetes/cmd/kube-apiserver >&2
  chmod 0755 "$out"
  "$out" --version >&2
  mv -f "$out" "$cache/kube-apiserver"  # atomic: an interrupted build leaves no half binary
  log "built $cache/kube-apiserver in $((SECONDS - start))s"
fi
echo "$cache"
