"""Tools the project pins, installed before anything else.

go_tools builds the Go-pinned tools (helm 3 and 4, kind, ct, the local control plane, the KubeRay
operator) from tools/go.mod into .tools/bin (`make tools`); install_kind names the kind binary and
node image `make up` uses; install_promtool.sh installs Debian's prometheus for promtool.
Standard library only: `make setup` runs these with the system python3 (`python3 -m
bootstrap.go_tools`), before the virtualenv exists. Everything lands in .tools/.
"""
