# ray-platform developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS := $(sort $(wildcard requirements/*.txt))
CHART := charts/ray-platform
# The project's Python packages live in scripts/ (harness, bootstrap, generate, release, cluster,
# serving) and run as `python -m <package>.<module>`.
export PYTHONPATH := $(CURDIR)/scripts

.PHONY: help setup tools test check lint generate render package repo-index bench-serve tools-promtool

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

setup: $(VENV)/.installed tools tools-promtool ## virtualenv with pinned Python deps + pinned helm 3 and 4 in .tools/ + promtool

$(VENV)/.installed: $(REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(addprefix -r ,$(REQUIREMENTS))
	@touch $@

tools: ## install (or verify) the pinned helm binaries; idempotent
	@$(PYTHON) -m bootstrap.install_helm >&2

tools-promtool: ## promtool (Debian's prometheus package) for the alert rule tests; apt-get when missing
	@scripts/bootstrap/install_promtool.sh

test: setup tools-promtool ## set up what is missing, then run every test
	$(PY) -m pytest $(PYTEST_ARGS)

check: setup ## render + validate an overlay: make check VALUES=my.yaml [KUBE_VERSION=1.33]
	@test -n "$(VALUES)" || { echo "usage: make check VALUES=path/to/overlay.yaml [KUBE_VERSION=1.xx]" >&2; exit 2; }
	$(PY) -m harness $(VALUES) $(if $(KUBE_VERSION),--kube-version $(KUBE_VERSION))

lint: setup ## helm lint (3 and 4), yamllint, Chart.yaml schema, generated-file staleness
	$(PY) -m release.lint

generate: setup ## from schemas/values.schema.yaml: values.schema.json, values.yaml's comments, docs/values.md, the chart README; dashboards; alert table
	$(PY) -m generate

render: setup ## print the manifests for VALUES (without the operator subchart): make render VALUES=values/dev.yaml
	@$(PY) -m harness.render $(VALUES)

package: setup ## chart archive into dist/ (with the kuberay-operator subchart; OFFLINE=1 packages without it if unreachable)
	$(PY) -m release.package_chart package $(if $(OFFLINE),--offline)

repo-index: setup ## chart repository index.yaml in dist/: make repo-index URL=https://charts.example.com
	$(PY) -m release.package_chart repo-index --url "$(URL)"

bench-serve: setup ## requests/s and p50/p99 of the Serve app (tiny model, local Ray) at concurrency 1/4/8, batching on/off
	$(PY) -m serving.bench

# The real-cluster path (scripts/cluster/platform_up.py): kind + install + readiness + helm test.
.PHONY: up down e2e
up: ## kind cluster (or KUBECONFIG's), install with values/dev.yaml, wait until ready, helm test [TIMEOUT=2700]
	@$(PYTHON) -m cluster.platform_up preflight
	@$(MAKE) --no-print-directory setup
	$(PY) -m cluster.platform_up up $(if $(TIMEOUT),--timeout $(TIMEOUT))

down: ## delete make up's kind cluster (with KUBECONFIG set: uninstall the release, keep the cluster)
	@$(PYTHON) -m cluster.platform_up down

e2e: setup ## the e2e suite (tests/e2e) on kind or KUBECONFIG's cluster; skipped with a reason without either
	$(PY) -m pytest -m e2e tests/e2e $(PYTEST_ARGS)
