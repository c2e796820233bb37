"""Tools the project pins, installed before anything else: helm 3 and 4, kind, promtool.

Standard library only: `make setup` runs these with the system python3 (`python3 -m
bootstrap.install_helm`), before the virtualenv exists. Everything lands in .tools/.
"""
