# ray-platform developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQUIREMENTS := $(sort $(wildcard requirements/*.txt))
CHART := charts/ray-platform
# The harness package lives in scripts/ (scripts/harness).
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
	@$(PYTHON) scripts/install_helm.py >&2

tools-promtool: ## promtool (Debian's prometheus package) for the alert rule tests; apt-get when missing
	@scripts/install_promtool.sh

test: setup tools-promtool ## set up what is missing, then run every test
	$(PY) -m pytest $(PYTEST_ARGS)

check: setup ## render + validate an overlay: make check VALUES=my.yaml [KUBE_VERSION=1.33]
	@test -n "$(VALUES)" || { echo "usage: make check VALUES=path/to/overlay.yaml [KUBE_VERSION=1.xx]" >&2; exit 2; }
	$(PY) -m harness $(VALUES) $(if $(KUBE_VERSION),--kube-version $(KUBE_VERSION))

lint: setup ## helm lint (3 and 4), yamllint, Chart.yaml schema, generated-file staleness
	$(PY) scripts/lint.py

generate: setup ## regenerate values.schema.json and docs/values.md from schemas/values.schema.yaml; the Grafana dashboards
	$(PY) scripts/generate_schema.py
	$(PY) scripts/generate_docs.py
	$(PY) scripts/generate_dashboards.py
	$(PY) scripts/generate_alert_table.py

render: setup ## print the manifests for VALUES (without the operator subchart): make render VALUES=values/dev.yaml
	@$(PY) -c 'import sys; from harness.render import Renderer, RenderRequest; r = Renderer(); \
		print(r.manifest_text(RenderRequest(tuple(sys.argv[1:]), 4))); r.close()' $(VALUES)

package: setup ## chart archive into dist/ (with the kuberay-operator subchart; OFFLINE=1 packages without it if unreachable)
	$(PY) scripts/package_chart.py package $(if $(OFFLINE),--offline)

repo-index: setup ## chart repository index.yaml in dist/: make repo-index URL=https://charts.example.com
	$(PY) scripts/package_chart.py repo-index --url "$(URL)"

bench-serve: setup ## requests/s and p50/p99 of the Serve app (tiny model, local Ray) at concurrency 1/4/8, batching on/off
	$(PY) scripts/bench_serve.py

# The real-cluster path (scripts/platform_up.py): kind + install + readiness + helm test.
.PHONY: up down e2e
up: ## kind cluster (or KUBECONFIG's), install with values/dev.yaml, wait until ready, helm test [TIMEOUT=2700]
	@$(PYTHON) scripts/platform_up.py preflight
	@$(MAKE) --no-print-directory setup
	$(PY) scripts/platform_up.py up $(if $(TIMEOUT),--timeout $(TIMEOUT))

down: ## delete make up's kind cluster (with KUBECONFIG set: uninstall the release, keep the cluster)
	@$(PYTHON) scripts/platform_up.py down

e2e: setup ## the e2e suite (tests/e2e) on kind or KUBECONFIG's cluster; skipped with a reason without either
	$(PY) -m pytest -m e2e tests/e2e $(PYTEST_ARGS)
