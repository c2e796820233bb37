"""`make check VALUES=overlay.yaml [KUBE_VERSION=1.xx]`: render the chart with an overlay and run
every check the test suite runs, printing a readable report; exit 1 naming each problem."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.check import CHECKS, check_objects, values_problems
from harness.crds import registry
from harness.podsecurity import DEFAULT_LEVEL
from harness.render import Renderer, RenderError, RenderRequest, normalise_paths
from harness.tools import ToolMissing, crd_dir
from harness.values import merged_values
from harness.versions import HELM_MAJORS, SUPPORTED_KUBE_MINORS


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make check", description=__doc__.splitlines()[0])
    parser.add_argument("values", nargs="*", type=Path, help="values files, applied in order")
    parser.add_argument("--kube-version", help="one Kubernetes minor (default: every supported one)")
    parser.add_argument("--helm", type=int, choices=HELM_MAJORS, action="append",
                        help="helm major to render with (default: all)")
    parser.add_argument("--crd-dir", type=Path, default=None, help="folder of CRDs (default: $RAY_PLATFORM_CRD_DIR or ../shared/crds)")
    return parser.parse_args(argv)


def kube_minors(requested: str | None) -> list[str]:
    if not requested:
        return list(SUPPORTED_KUBE_MINORS)
    minor = ".".join(requested.lstrip("v").split(".")[:2])
    if minor not in SUPPORTED_KUBE_MINORS:
        raise SystemExit(f"check: Kubernetes {requested} is not supported; pick one of {', '.join(SUPPORTED_KUBE_MINORS)}")
    return [minor]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for path in args.values:
        if not path.is_file():
            print(f"check: values file {path} not found", file=sys.stderr)
            return 2
    minors = kube_minors(args.kube_version)
    try:
        crds = registry(args.crd_dir or crd_dir())
    except FileNotFoundError as missing:
        print(f"check: {missing}", file=sys.stderr)
        return 2
    renderer = Renderer()
    failures = 0
    try:
        rendered = {}
        requests = {major: RenderRequest(tuple(p.resolve() for p in args.values), major, f"{minors[-1]}.0")
                    for major in args.helm or HELM_MAJORS}
        renderer.prefetch(requests.values())  # the helm majors side by side
        for major, request in requests.items():
            try:
                rendered[major] = renderer.render(request)
            except RenderError as refused:
                print(f"FAIL render (helm {major}): the chart refused these values:\n{normalise_paths(str(refused))}")
                failures += 1
                continue
            print(f"ok   render (helm {major}): {len(rendered[major])} objects")
        majors = sorted(rendered)
        if len(majors) > 1 and any(rendered[m] != rendered[majors[0]] for m in majors[1:]):
            print(f"FAIL render: helm majors {majors} produced different manifests")
            failures += 1
        if rendered:
            values = merged_values(args.values)
            level = (values.get("podSecurity") or {}).get("level", DEFAULT_LEVEL)
            print(f"     Pod Security level {level} (podSecurity.level)")
            problems = check_objects(rendered[majors[-1]], crds, minors, level) + values_problems(values)
            for check in CHECKS:
                mine = [p for p in problems if p.check == check]
                print(f"{'FAIL' if mine else 'ok  '} {check}" + (f": {len(mine)} problem(s)" if mine else ""))
                for problem in mine:
                    print(f"       - {problem.where}: {problem.message}")
            failures += len(problems)
    except ToolMissing as missing:
        print(f"check: {missing}", file=sys.stderr)
        return 2
    finally:
        renderer.close()
    kubes = ", ".join(minors)
    print(f"\n{'FAILED' if failures else 'PASSED'}: {failures} problem(s); Kubernetes {kubes}; CRDs from {crds.directory}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
