#!/bin/sh
# `make doctor`: what `make run` and `make test` need from the machine, one line per thing missing, saying how to
# get it. Plain POSIX sh, so that it runs where Python 3.11 is the thing missing. Exit 1 when something is.
#
# Overridable for a machine laid out otherwise: PYTHON (python3.11), CHROMIUM (/usr/bin/chromium).

PYTHON=${PYTHON:-python3.11}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
GO_MIN=1.24      # Helm, compose and kube-apiserver are built with it
JAVA_MIN=17      # Keycloak 26
NODE_MIN=20.19   # Vite 8 (the portal's build)
missing=0

say() {
    printf 'missing: %s\n' "$1"
    missing=$((missing + 1))
}

# version_at_least FOUND WANTED: dotted versions compared number by number.
version_at_least() {
    found=$1 wanted=$2
    while [ -n "$wanted" ]; do
        f=${found%%.*} w=${wanted%%.*}
        f=${f:-0}
        [ "$f" -gt "$w" ] 2>/dev/null && return 0
        [ "$f" -lt "$w" ] 2>/dev/null && return 1
        case $found in *.*) found=${found#*.} ;; *) found=0 ;; esac
        case $wanted in *.*) wanted=${wanted#*.} ;; *) wanted= ;; esac
    done
    return 0
}

has() { command -v "$1" >/dev/null 2>&1; }

# Python 3.11: every deployable and tool runs on it.
if ! has "$PYTHON"; then
    say "Python 3.11 ($PYTHON) — Debian 12: apt-get install python3.11 python3.11-venv; elsewhere pyenv install 3.11, or PYTHON=/path/to/python3.11"
elif ! "$PYTHON" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    say "Python 3.11 with venv ($PYTHON is $("$PYTHON" -V 2>&1)) — apt-get install python3.11-venv, or PYTHON=/path/to/python3.11"
fi

# Go: the docstore (FerretDB embedded), Helm, kubeconform, compose, kube-apiserver are built from the module proxy.
if ! has go; then
    say "Go ≥ $GO_MIN — https://go.dev/dl/ (Debian 12's golang is too old: take go.dev's tarball or bookworm-backports' golang-1.24)"
else
    go_version=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
    version_at_least "$go_version" "$GO_MIN" || say "Go ≥ $GO_MIN (found $go_version) — https://go.dev/dl/"
fi

# Java and Maven: Keycloak's distribution comes from Maven Central, and runs on Java.
if ! has java; then
    say "Java ≥ $JAVA_MIN — apt-get install openjdk-17-jre-headless"
else
    java_version=$(java -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n 1)
    version_at_least "${java_version:-0}" "$JAVA_MIN" || say "Java ≥ $JAVA_MIN (found ${java_version:-an unknown version}) — apt-get install openjdk-17-jre-headless"
fi
has mvn || say "Maven (mvn) — apt-get install maven (it fetches Keycloak's distribution from Maven Central)"

# Node.js and npm: the portal is built with Vite.
if ! has node || ! has npm; then
    say "Node.js ≥ $NODE_MIN and npm — https://nodejs.org/ or NodeSource's Debian packages"
else
    node_version=$(node --version 2>/dev/null | sed 's/^v//')
    version_at_least "$node_version" "$NODE_MIN" || say "Node.js ≥ $NODE_MIN (found $node_version) — https://nodejs.org/"
fi

has git || say "git — apt-get install git"
has tar || say "tar — apt-get install tar"

# Debian's packages, unpacked into .cache without installing them: xmlsec1 (the SAML peers sign with it), etcd and
# Prometheus (tests). Without apt-get, an xmlsec1 on the PATH is used instead.
if ! has apt-get || ! has dpkg-deb; then
    has xmlsec1 || say "xmlsec1 — without Debian's apt-get, install your distribution's xmlsec1 (with its OpenSSL plugin) on the PATH"
    echo "note: no apt-get — the tests' etcd and Prometheus come from Debian's packages; \`make run\` does not need them" >&2
fi

# Chromium: the portal's browser tests and bench (the browser Playwright downloads is not reachable here).
if [ ! -x "$CHROMIUM" ]; then
    if [ "$(id -u)" = 0 ] && has apt-get; then
        echo "note: Chromium is not installed yet — \`make setup\` installs Debian's chromium (as root)" >&2
    else
        say "Chromium ($CHROMIUM) — as root: apt-get install chromium, or CHROMIUM=/path/to/chromium"
    fi
fi

if [ "$missing" -gt 0 ]; then
    printf '%d prerequisite(s) missing: install them, then run make again\n' "$missing"
    exit 1
fi
echo "doctor: every prerequisite is here"
