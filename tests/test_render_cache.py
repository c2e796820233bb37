"""The render cache the test session's workers share, and the validators Kubernetes minors share:
the same answers as without them, computed once."""
from __future__ import annotations

from pathlib import Path

from harness import kubernetes
from harness.render import Renderer, RenderRequest
from harness.versions import SUPPORTED_KUBE_MINORS


def counting(renderer: Renderer, calls: list[RenderRequest]) -> Renderer:
    helm = renderer._helm

    def _helm(request: RenderRequest) -> tuple[bool, str]:
        calls.append(request)
        return helm(request)

    renderer._helm = _helm  # type: ignore[method-assign]
    return renderer


def test_processes_sharing_a_cache_render_each_request_once(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("rayCluster:\n  enabled: false\n")
    request, refused = RenderRequest((values,), 4), RenderRequest((), 4, set_values=("rayClster.x=1",))
    calls: list[RenderRequest] = []
    first = counting(Renderer(cache_dir=tmp_path / "cache"), calls)
    second = counting(Renderer(cache_dir=tmp_path / "cache"), calls)  # as another worker would
    first.prefetch([request, refused])
    assert second.render(request) == first.render(request) == Renderer().render(request)
    assert second.error(refused) == first.error(refused) and "rayClster" in (second.error(refused) or "")
    assert sorted(map(repr, calls)) == sorted(map(repr, [request, refused])) and second.chart == first.chart
    # Another content under the same file name is another request.
    values.write_text("rayCluster:\n  enabled: true\n")
    fresh = counting(Renderer(cache_dir=tmp_path / "cache"), calls)
    assert fresh.render(request) != first.render(request) and len(calls) == 3


def test_minors_with_the_same_schema_share_a_validator_and_each_minor_still_checks() -> None:
    validators = {minor: kubernetes.validator(minor, "v1", "ServiceAccount") for minor in SUPPORTED_KUBE_MINORS}
    assert len({id(v) for v in validators.values()}) < len(SUPPORTED_KUBE_MINORS)
    broken = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}, "automountToken": True}
    for minor in SUPPORTED_KUBE_MINORS:
        assert any("automountToken" in problem for problem in kubernetes.problems(broken, minor)), minor
        assert kubernetes.problems(broken, minor) == kubernetes.problems(dict(broken), minor)
