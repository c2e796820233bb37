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

.PHONY: help setup tools node-packages images test check lint generate render package repo-index serve bench-serve bench-cluster tools-promtool

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

setup: $(VENV)/.installed tools tools-promtool images ## virtualenv with pinned Python deps + the Go-built tools in .tools/bin + promtool + the real node's images

$(VENV)/.installed: $(REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(addprefix -r ,$(REQUIREMENTS))
	@touch $@

# The harness's dependencies alone (requirements/test.txt), for the targets that only render,
# check, lint and publish: a fresh clone's `make check` waits for these, not for Ray and torch.
HARNESS_VENV := $(VENV)/.harness-installed
$(HARNESS_VENV): requirements/test.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/test.txt
	@touch $@

tools: node-packages ## build the pinned Go tools (tools/go.mod, tools/*/go.mod) into .tools/bin: helm 3 and 4, ct, kind, the control plane, kwok, the KubeRay operator, the real node's kubelet, containerd, runc, CNI plugins, CoreDNS, crictl; idempotent
	@$(PYTHON) -m bootstrap.go_tools

NODE_PACKAGES := debootstrap libseccomp-dev pkg-config iptables ipset conntrack
node-packages: ## Debian packages of the real node and its images (debootstrap, libseccomp-dev, iptables, ...); apt-get when missing
	@scripts/bootstrap/install_debian_packages.sh $(NODE_PACKAGES)

images: $(VENV)/.installed tools-node tools-control-plane tools-monitoring ## the real node's images (pause, ray, ray-serve, kuberay-operator, prometheus, prometheus-operator, prometheus-config-reloader, kube-state-metrics, redis) into .tools/images, rebuilt only when what goes into them changed
	$(PY) -m images.build

# One group of Go tools each (bootstrap/go_tools.py GROUPS): a target builds only the groups it
# uses, so that `make check` on a fresh clone needs pip and the helm build, not the control plane.
# tests/test_make_targets.py asserts which groups each target builds.
TOOL_GROUPS := helm control-plane node release monitoring
.PHONY: $(addprefix tools-,$(TOOL_GROUPS))
$(addprefix tools-,$(TOOL_GROUPS)): tools-%:
	@$(PYTHON) -m bootstrap.go_tools --group $*
# runc's seccomp support is cgo against Debian's libseccomp-dev.
tools-node: node-packages

tools-promtool: ## promtool (Debian's prometheus package) for the alert rule tests; apt-get when missing
	@scripts/bootstrap/install_promtool.sh

# The real node's suite runs after the rest, alone: its Ray containers would share the 2 cores
# with the Serve tests' latency bounds.
test: setup tools-promtool ## set up what is missing, then run every test (tests/node last, on its own)
	$(PY) -m pytest --ignore=tests/node --durations=15 $(PYTEST_ARGS)
	$(PY) -m pytest -n 0 tests/node --durations=40 $(NODE_PYTEST_ARGS)

check: $(HARNESS_VENV) tools-helm ## render + validate an overlay: make check VALUES=my.yaml [KUBE_VERSION=1.33]
	@test -n "$(VALUES)" || { echo "usage: make check VALUES=path/to/overlay.yaml [KUBE_VERSION=1.xx]" >&2; exit 2; }
	$(PY) -m harness $(VALUES) $(if $(KUBE_VERSION),--kube-version $(KUBE_VERSION))

lint: $(HARNESS_VENV) tools-helm ## helm lint (3 and 4), yamllint, Chart.yaml schema, generated-file staleness
	$(PY) -m release.lint

generate: $(HARNESS_VENV) tools-helm ## from schemas/values.schema.yaml: values.schema.json, values.yaml's comments, docs/values.md, the chart README; dashboards; alert table
	$(PY) -m generate

render: $(HARNESS_VENV) tools-helm ## print the manifests for VALUES (without the operator subchart): make render VALUES=values/dev.yaml
	@$(PY) -m harness.render $(VALUES)

package: $(HARNESS_VENV) tools-helm ## chart archive into dist/ (with the kuberay-operator subchart; OFFLINE=1 packages without it if unreachable)
	$(PY) -m release.package_chart package $(if $(OFFLINE),--offline)

repo-index: $(HARNESS_VENV) tools-helm ## chart repository index.yaml in dist/: make repo-index URL=https://charts.example.com
	$(PY) -m release.package_chart repo-index --url "$(URL)"

.PHONY: release release-local
release: $(HARNESS_VENV) tools-helm tools-release ## package, sign (OpenPGP provenance + cosign), push to REGISTRY=oci://host/path, classic repository for URL in dist/repo [OFFLINE=1]; keys from the environment (README, Publishing)
	$(PY) -m release.publish --registry "$(REGISTRY)" --url "$(URL)" $(if $(OFFLINE),--offline)

release-local: $(HARNESS_VENV) tools-helm tools-release ## release on loopback (registry with TLS and auth, HTTPS chart repository, throwaway keys), then pull --verify and cosign verify with helm 3 and 4; SERVE=1 keeps them up until Ctrl-C
	$(PY) -m release.local_release $(if $(SERVE),--serve)

bench-cluster: setup ## simulated nodes: helm install to RayCluster ready, dev.yaml and a 100-worker group; real node: helm install to every container ready and to ray status listing every worker, images just imported and warm; the autoscaler (v1, v2): demand to the new worker's first task, idle to scale-down
	$(PY) -m cluster.local.bench $(if $(WORKERS),--workers $(WORKERS))
	$(PY) -m cluster.node.bench
	$(PY) -m cluster.node.bench_autoscaler

serve: $(VENV)/.installed ## the Stable Diffusion app on a local Ray (tiny random pipeline, CPU) until Ctrl-C or SIGTERM, then every Ray process it started is stopped [VALUES=overlay.yaml]
	@test -x .tools/bin/helm4 || $(MAKE) --no-print-directory tools
	$(PY) -m serving $(if $(VALUES),--values $(VALUES))

bench-serve: setup ## cold start to the first image, served vs direct and batching on/off (tiny model, local Ray) at concurrency 1/4/8; then through the operator-deployed RayService in containers on the real node vs the pipeline called directly in the replica's container, batching on and off
	$(PY) -m serving.bench
	$(PY) -m cluster.node.bench_serve

# Locust through one of the chart's own RayServices on the real node while it is upgraded and its
# pods fail (tests/node/test_chaos_serve.py, scripts/chaos) and a node is drained (tests/node/test_drain.py,
# with real-node-2 joining); on the tests' session cluster.
.PHONY: chaos
chaos: setup ## traffic through a RayService on the real node during helm upgrades, a failed deploy, a deleted worker, an operator restart, a deleted head (GCS fault tolerance off, then on with a Redis: gcs_server killed, head deleted), kubectl drain against the PodDisruptionBudgets with a second real node; prints scenario, requests, failures, p99, recovery seconds
	$(PY) -m pytest -n 0 -s -p no:cacheprovider tests/node/test_chaos_serve.py tests/node/test_drain.py $(NODE_PYTEST_ARGS)

# The running platform (scripts/cluster/platform_up.py): the local cluster without Docker, kind with it,
# or KUBECONFIG's cluster; CLUSTER=local|kind forces one.
.PHONY: up down e2e
up: ## local cluster (no Docker) or kind (or KUBECONFIG's), install values/dev.yaml, wait until ready [CLUSTER=local|kind] [TIMEOUT=2700] [MONITORING=1: the local cluster's prometheus-operator + Prometheus scraping it]
	@$(PYTHON) -m cluster.platform_up preflight
	@$(MAKE) --no-print-directory setup
	$(PY) -m cluster.platform_up up $(if $(TIMEOUT),--timeout $(TIMEOUT))

down: ## stop make up's local cluster (every process) or delete its kind cluster (with KUBECONFIG set: uninstall the release only)
	@$(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m cluster.platform_up down

e2e: setup ## the e2e suite (tests/e2e) on kind or KUBECONFIG's cluster; skipped with a reason without either
	$(PY) -m pytest -m e2e tests/e2e $(PYTEST_ARGS)
