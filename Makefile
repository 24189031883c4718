# Maille — the map. `make help` lists every target; CI (.ci/run) runs `make test`.
# Everything downloaded or built goes into .cache/ (git-ignored); run-time data into .var/.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT        := $(abspath .)
CACHE       := $(ROOT)/.cache
BIN         := $(CACHE)/bin
PYTHON      ?= python3.11
UV_VERSION  := 0.13.9
UV          := $(CACHE)/uv/bin/uv
KEYCLOAK_VERSION := 26.4.7
KEYCLOAK    := $(CACHE)/keycloak-$(KEYCLOAK_VERSION)
BUF_VERSION := v1.75.0
COMPOSE_VERSION := v2.40.3
HELM_VERSION := v3.19.0
CRANE_VERSION := v0.22.1
REGISTRY_VERSION := v3.1.2
KUBECONFORM_VERSION := v0.7.0
# The Kubernetes versions the charts are validated against (oldest supported, newest).
K8S_VERSIONS := 1.30.0 1.35.0
# A real Kubernetes API server for maille-ops' tests: kube-apiserver built from Kubernetes' own Go module (its
# go.mod points at ./staging, which a module download leaves out: the published staging modules are used), on
# Debian's etcd.
KUBE_VERSION := 1.34.1
KUBE_APISERVER := $(BIN)/kube-apiserver
ETCD        := $(CACHE)/debs/etcd/root/usr/bin/etcd
# Debian's Prometheus and promtool: the metrics test scrapes `make run`'s stack; `make charts` checks the alerts.
PROMETHEUS  := $(CACHE)/debs/prometheus/root/usr/bin/prometheus
HELM        := $(BIN)/helm
CRANE       := $(BIN)/crane
REGISTRY_BIN := $(BIN)/registry
DEBOOTSTRAP := $(CACHE)/debs/debootstrap/root/usr/sbin/debootstrap
KUBECONFORM := $(BIN)/kubeconform
K8S_SCHEMAS := $(CACHE)/k8s-schemas
DOCSTORE    := $(BIN)/maille-docstore
MAILPIT_VERSION := v1.33.1
MAILPIT     := $(BIN)/mailpit
BUF         := $(BIN)/buf
COMPOSE     := $(CACHE)/docker/cli-plugins/docker-compose
VENV        := $(ROOT)/.venv
XMLSEC1     := $(BIN)/xmlsec1
PORTAL      := $(ROOT)/portal/dist/index.html
PORTAL_SRC  := $(shell find portal/src portal/public portal/scripts -type f) portal/index.html portal/vite.config.ts portal/tsconfig.json
CHROMIUM    := /usr/bin/chromium
REDMINE     := /usr/share/redmine/config.ru
PROTOS      := $(shell find proto/maille -name '*.proto' | sort)

export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_CACHE_DIR := $(CACHE)/uv-cache
export UV_PROJECT_ENVIRONMENT := $(VENV)
export GOFLAGS := -mod=readonly
export MAVEN_OPTS ?= -Xmx512m

.PHONY: release help doctor setup run stop lint test test-fast proto proto-check compose-check charts ops-cluster bench bench-tools clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

doctor: ## what the machine lacks for `make run` and `make test`, one line each with how to get it
	@PYTHON=$(PYTHON) CHROMIUM=$(CHROMIUM) sh tools/doctor.sh

setup: doctor $(VENV)/.synced $(DOCSTORE) $(MAILPIT) $(KEYCLOAK)/bin/kc.sh $(XMLSEC1) $(PORTAL) $(CHROMIUM) ## every set-up step: Python env, nats-server, docstore, Mailpit, Keycloak, xmlsec1, the portal, Chromium

$(UV):
	$(PYTHON) -m venv $(CACHE)/uv
	$(CACHE)/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# One environment for the workspace: every deployable, the devstack, nats-server (from its wheel).
# maille_contracts.py is copied into the environment (a file of its own beside the generated package): installed again
# when it changes.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml */pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml tests/peers/pyproject.toml \
		proto/python/maille_contracts.py
	$(UV) sync --all-packages --locked --reinstall-package maille-proto
	touch $@

# FerretDB v1 on SQLite, embedded in a tiny Go program (tools/docstore), built from the Go module proxy.
# FerretDB v1 is no longer released: its fixes are diffs in tools/docstore/patches, built in by patch-ferretdb.sh.
$(DOCSTORE): $(wildcard tools/docstore/*.go) tools/docstore/go.mod tools/docstore/go.sum tools/docstore/patch-ferretdb.sh \
		$(wildcard tools/docstore/patches/*.patch)
	mkdir -p $(BIN)
	cd tools/docstore && go build -trimpath -modfile $$(./patch-ferretdb.sh $(CACHE)/build/ferretdb) -o $@ .

# Mailpit, the SMTP server of `make run` and the tests (the timeline's e-mails; its API reads what it received), built
# from the Go module proxy.
$(MAILPIT):
	GOBIN=$(BIN) GOFLAGS= go install github.com/axllent/mailpit@$(MAILPIT_VERSION)

# Keycloak's distribution from Maven Central.
$(KEYCLOAK)/bin/kc.sh:
	mkdir -p $(CACHE)/downloads
	mvn -q -B -Dmaven.repo.local=$(CACHE)/m2 \
	  org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
	  -Dartifact=org.keycloak:keycloak-quarkus-dist:$(KEYCLOAK_VERSION):tar.gz \
	  -DoutputDirectory=$(CACHE)/downloads
	tar -xzf $(CACHE)/downloads/keycloak-quarkus-dist-$(KEYCLOAK_VERSION).tar.gz -C $(CACHE)
	touch $@

# xmlsec1 (pysaml2 signs and checks SAML with it, in the peers): Debian's packages unpacked into the
# cache behind a small wrapper that finds their libraries (no root, nothing installed system-wide).
$(XMLSEC1):
	mkdir -p $(CACHE)/debs/xmlsec $(BIN)
	if command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then \
	  cd $(CACHE)/debs/xmlsec && apt-get download xmlsec1 libxmlsec1 libxmlsec1-openssl \
	  && for deb in $(CACHE)/debs/xmlsec/*.deb; do dpkg-deb -x "$$deb" $(CACHE)/debs/xmlsec/root; done \
	  && printf '#!/bin/sh\nLD_LIBRARY_PATH="%s$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}" exec "%s" "$$@"\n' \
	    $(CACHE)/debs/xmlsec/root/usr/lib/x86_64-linux-gnu $(CACHE)/debs/xmlsec/root/usr/bin/xmlsec1 > $@; \
	else printf '#!/bin/sh\nexec "%s" "$$@"\n' "$$(command -v xmlsec1)" > $@; fi  # no apt-get: the PATH's (doctor checks)
	chmod +x $@
	$@ --version

$(BUF):
	GOBIN=$(BIN) GOFLAGS= go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)

# The compose CLI plugin (built from the Go module proxy), so that `docker compose config` checks
# docker-compose.yml on a machine with the docker client but no engine.
$(COMPOSE): $(VENV)/.synced
	mkdir -p $(dir $(COMPOSE))
	cd "$$(GOFLAGS= go mod download -json github.com/docker/compose/v2@$(COMPOSE_VERSION) | $(VENV)/bin/python -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')" \
	  && GOFLAGS=-mod=mod go build -trimpath -o $@ ./cmd

# Helm and kubeconform, built from the Go module proxy; Kubernetes' JSON schemas from PyPI (offline validation).
$(HELM):
	GOBIN=$(BIN) GOFLAGS= go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

# For `make release`: crane (appends layers, sets an image's configuration, pushes; no daemon), the CNCF distribution
# registry (a real OCI registry, started locally when none is named), Debian's debootstrap (the images' root).
$(CRANE):
	GOBIN=$(BIN) GOFLAGS= go install github.com/google/go-containerregistry/cmd/crane@$(CRANE_VERSION)

$(REGISTRY_BIN):
	GOBIN=$(BIN) GOFLAGS= go install github.com/distribution/distribution/v3/cmd/registry@$(REGISTRY_VERSION)

$(DEBOOTSTRAP):
	mkdir -p $(CACHE)/debs/debootstrap
	cd $(CACHE)/debs/debootstrap && apt-get download debootstrap && dpkg-deb -x debootstrap_*.deb root

release: setup $(HELM) $(CRANE) $(REGISTRY_BIN) $(DEBOOTSTRAP) ## charts and one image per deployable, built without a Docker engine, pushed to REGISTRY (default: a local one)
	@[ "$$(id -u)" = 0 ] || { echo "make release builds the images' root with debootstrap and chroot: run it as root"; exit 1; }
	registry="$(REGISTRY)"; plain=""; \
	if [ -z "$$registry" ]; then registry=$$($(VENV)/bin/python tools/release/registry.py start); plain=--plain-http; fi; \
	$(VENV)/bin/python tools/release/release.py --registry "$$registry" $$plain $(if $(RELEASE_PLAIN_HTTP),--plain-http)

$(KUBECONFORM):
	GOBIN=$(BIN) GOFLAGS= go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)

$(K8S_SCHEMAS)/.done: $(VENV)/.synced tools/charts/schemas.py
	rm -rf $(K8S_SCHEMAS)
	$(VENV)/bin/python tools/charts/schemas.py $(K8S_SCHEMAS) $(K8S_VERSIONS)

$(KUBE_APISERVER): $(VENV)/.synced
	rm -rf $(CACHE)/build/kubernetes && mkdir -p $(CACHE)/build $(BIN)
	cp -r "$$(GOFLAGS= go mod download -json k8s.io/kubernetes@v$(KUBE_VERSION) | $(VENV)/bin/python -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')" \
	  $(CACHE)/build/kubernetes
	chmod -R u+w $(CACHE)/build/kubernetes
	cd $(CACHE)/build/kubernetes && for module in $$(grep '=> ./staging' go.mod | awk '{print $$1}'); do \
	  go mod edit -dropreplace=$$module -require=$$module@v0.$(word 2,$(subst ., ,$(KUBE_VERSION))).$(word 3,$(subst ., ,$(KUBE_VERSION))); done
	cd $(CACHE)/build/kubernetes && GOWORK=off GOFLAGS=-mod=mod go build -trimpath \
	  -ldflags "-X k8s.io/component-base/version.gitVersion=v$(KUBE_VERSION)" -o $@ ./cmd/kube-apiserver
	rm -rf $(CACHE)/build/kubernetes

$(ETCD):
	mkdir -p $(CACHE)/debs/etcd
	cd $(CACHE)/debs/etcd && apt-get download etcd-server && dpkg-deb -x etcd-server_*.deb root
	$@ --version

$(PROMETHEUS):
	mkdir -p $(CACHE)/debs/prometheus
	cd $(CACHE)/debs/prometheus && apt-get download prometheus && dpkg-deb -x prometheus_*.deb root
	$@ --version

# The portal: its npm packages as portal/package-lock.json says, then the build (TypeScript checked, Vite, gzip).
portal/node_modules/.package-lock.json: portal/package-lock.json
	cd portal && npm ci --no-audit --no-fund

$(PORTAL): portal/node_modules/.package-lock.json portal/package.json $(PORTAL_SRC)
	cd portal && npm run build

# Debian's Chromium, for the portal's browser tests and bench/portal.py (the browser Playwright would download is
# not reachable here). Installed as a package: it needs its libraries, which an unpacked .deb would lack.
$(CHROMIUM):
	@[ "$$(id -u)" = 0 ] || { echo "Debian's chromium is missing: as root, apt-get install chromium"; exit 1; }
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

# Debian's Redmine on SQLite, for support's tests (a desk's tracker): each test session runs an instance of its own
# (maille_devstack.processes.RedmineServer). A package with its Ruby gems, installed as root like Chromium.
$(REDMINE):
	@[ "$$(id -u)" = 0 ] || { echo "Debian's redmine is missing: as root, apt-get install redmine redmine-sqlite"; exit 1; }
	[ -n "$$(ls /var/lib/apt/lists/*_Packages 2>/dev/null)" ] || apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redmine redmine-sqlite

ops-cluster: $(KUBE_APISERVER) $(ETCD) ## kube-apiserver and etcd for maille-ops' tests against a real API server

charts: $(HELM) $(KUBECONFORM) $(K8S_SCHEMAS)/.done $(PROMETHEUS) ## helm lint --strict, helm template over the values matrix, kubeconform (strict, offline)
	$(VENV)/bin/python tools/charts/check.py

run: setup ## set up, then start the whole platform in the foreground (Ctrl-C stops it)
	$(VENV)/bin/maille-devstack run

stop: ## stop a platform started by `make run` in another terminal (and the registry of `make release`)
	@if [ -x $(VENV)/bin/maille-devstack ]; then $(VENV)/bin/maille-devstack stop; fi
	@if [ -f .var/run/registry.pid ]; then $(VENV)/bin/python tools/release/registry.py stop; fi

proto: $(VENV)/.synced ## generate the Python code of proto/ into proto/python/
	rm -rf proto/python/maille
	mkdir -p proto/python
	$(VENV)/bin/python -m grpc_tools.protoc -Iproto --python_out=proto/python --pyi_out=proto/python $(PROTOS)

proto-check: proto $(BUF) ## fail on stale generated code, lint errors, or a breaking change against the previous commit
	@git diff --quiet --exit-code -- proto/python && test -z "$$(git ls-files --others --exclude-standard proto/python)" \
	  || { echo "proto/python is stale: run 'make proto' and commit it"; git status --short proto/python; exit 1; }
	cd proto && $(BUF) lint
	@if git rev-parse --verify -q HEAD~1 >/dev/null && git cat-file -e HEAD~1:proto/buf.yaml 2>/dev/null; then \
	  echo "buf breaking against HEAD~1"; cd proto && $(BUF) breaking --against "$(ROOT)/.git#ref=HEAD~1,subdir=proto"; \
	else echo "buf breaking: no previous commit with proto/ to compare against"; fi

compose-check: $(COMPOSE) ## check docker-compose.yml with `docker compose config` (no engine needed)
	DOCKER_CONFIG=$(CACHE)/docker docker compose -f docker-compose.yml config --quiet

# The maintainer's tools: one format, one lint (with import order), types checked strictly where the services live.
lint: $(VENV)/.synced ## ruff format --check, ruff check, mypy (strict) on the deployables
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy services/kit/src services/catalog/src services/messaging/src services/library/src services/timeline/src services/support/src services/observatory/src identity/src gateway/src

test: setup lint proto-check charts ops-cluster $(COMPOSE) $(CRANE) $(REGISTRY_BIN) $(DEBOOTSTRAP) $(REDMINE) ## every set-up step, then every check and test
	DOCKER_CONFIG=$(CACHE)/docker $(VENV)/bin/pytest

test-fast: setup $(REDMINE) ## the tests only, without the proto and compose checks
	$(VENV)/bin/pytest

# nginx and wrk for bench/gateway.py: Debian's packages, unpacked into the cache (no root, nothing installed).
BENCH_TOOLS := $(CACHE)/debs/root/usr/sbin/nginx
LIGHTHOUSE  := $(CACHE)/lighthouse/node_modules/.bin/lighthouse
# PostgreSQL's server for `bench/sso.py --db postgres` (Keycloak as production runs it): the machine's, else Debian's
# package unpacked into the cache.
POSTGRES    := $(CACHE)/debs/postgresql/.done
bench-tools: $(BENCH_TOOLS) $(LIGHTHOUSE) $(POSTGRES) ## nginx and wrk (Debian) for bench/gateway.py, Lighthouse (npm) for bench/portal.py, PostgreSQL (Debian) for bench/sso.py

$(POSTGRES):
	mkdir -p $(CACHE)/debs/postgresql
	if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
	  cd $(CACHE)/debs/postgresql && apt-get download postgresql-15 && dpkg-deb -x postgresql-15_*.deb root; fi
	touch $@

$(LIGHTHOUSE):
	mkdir -p $(CACHE)/lighthouse
	npm install --no-audit --no-fund --prefix $(CACHE)/lighthouse lighthouse@12.8.2

$(BENCH_TOOLS):
	mkdir -p $(CACHE)/debs
	cd $(CACHE)/debs && apt-get download nginx wrk libluajit2-5.1-2 libluajit-5.1-common
	for deb in $(CACHE)/debs/*.deb; do dpkg-deb -x "$$deb" $(CACHE)/debs/root; done

bench: setup bench-tools ## run the benchmarks under bench/ and print their figures
	$(VENV)/bin/python bench/events.py
	$(VENV)/bin/python bench/directory.py
	$(VENV)/bin/python bench/rules.py
	$(VENV)/bin/python bench/gateway.py
	$(VENV)/bin/python bench/sso.py
	$(VENV)/bin/python bench/sso.py --db postgres --seconds 600
	$(VENV)/bin/python bench/mediacentre.py
	$(VENV)/bin/python bench/messaging.py
	$(VENV)/bin/python bench/library.py
	$(VENV)/bin/python bench/timeline.py
	$(VENV)/bin/python bench/support.py
	$(VENV)/bin/python bench/observatory.py
	$(VENV)/bin/python bench/portal.py

clean: ## remove run-time data (.var/); keeps the download cache
	rm -rf .var
