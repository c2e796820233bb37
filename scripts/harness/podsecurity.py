"""The Pod Security Standards as the Kubernetes Pod Security admission applies them, on pods as
plain dicts ({metadata, spec}): which checks run at a level and Kubernetes minor, and what each
one refuses.

The facts come from k8s.io/pod-security-admission v0.37.2 (policy/check_*.go): the check IDs,
the level each belongs to, the restricted checks that replace a baseline one, the minors where a
check changed, and the reason the API server gives when it refuses. There is no Python package of
that Go code, and the harness must judge pods offline, so the rules are written out here. The
chart applies the same rules when helm renders (templates/_podsecurity.tpl):
tests/test_pod_security_level.py proves the two agree, tests/cluster/test_pod_security_admission.py
that both agree with a real API server.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

# Most permissive first.
LEVELS = ("privileged", "baseline", "restricted")
DEFAULT_LEVEL = "restricted"

BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
# Safe sysctls, by the minor that added them.
SAFE_SYSCTLS: tuple[tuple[int, frozenset[str]], ...] = (
    (0, frozenset({"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
                   "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"})),
    (27, frozenset({"net.ipv4.ip_local_reserved_ports"})),
    (29, frozenset({"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"})),
    (32, frozenset({"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"})),
    (37, frozenset({"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"})),
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_1_31 = SELINUX_TYPES | {"container_engine_t"}
RESTRICTED_VOLUME_TYPES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
                           "persistentVolumeClaim", "projected", "secret")
SECCOMP_TYPES = ("RuntimeDefault", "Localhost")
APPARMOR_TYPES = ("RuntimeDefault", "Localhost")
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"

# The reason the API server's refusal names for each check ('violates PodSecurity
# "restricted:latest": <reason> (<detail>), ...'); the AppArmor one is pluralised by count.
REASONS = {
    "windowsHostProcess": "hostProcess",
    "hostNamespaces": "host namespaces",
    "privileged": "privileged",
    "capabilities_baseline": "non-default capabilities",
    "hostPathVolumes": "hostPath volumes",
    "hostPorts": "hostPort",
    "appArmorProfile": "forbidden AppArmor profile",
    "seLinuxOptions": "seLinuxOptions",
    "procMount": "procMount",
    "seccompProfile_baseline": "seccompProfile",
    "sysctls": "forbidden sysctls",
    "hostProbesAndHostLifecycle": "probe or lifecycle host",
    "restrictedVolumes": "restricted volume types",
    "allowPrivilegeEscalation": "allowPrivilegeEscalation != false",
    "runAsNonRoot": "runAsNonRoot != true",
    "runAsUser": "runAsUser=0",
    "seccompProfile_restricted": "seccompProfile",
    "capabilities_restricted": "unrestricted capabilities",
    "procMount_restricted": "procMount",
}


@dataclass(frozen=True)
class Violation:
    rule: str  # the admission's check ID: "runAsNonRoot"
    field: str  # where in the pod: "spec.containers[ray-head].securityContext.runAsUser"
    value: Any  # the offending value; UNSET where a required field is missing

    def __str__(self) -> str:
        return f"{self.field}: {shown(self.value)} ({self.rule})"


UNSET = object()


def shown(value: Any) -> str:
    return "unset" if value is UNSET else json.dumps(value)


def parse_minor(minor: str | int) -> int:
    """37 from "1.37", "1.37.2", "v1.37" or 37."""
    if isinstance(minor, int):
        return minor
    parts = str(minor).lstrip("v").split(".")
    return int(parts[1] if len(parts) > 1 else parts[0])


Pod = dict[str, Any]
Check = Callable[[Pod, int], Iterator[Violation]]


def _spec(pod: Pod) -> dict[str, Any]:
    return pod.get("spec") or {}


def _pod_sc(pod: Pod) -> dict[str, Any]:
    return _spec(pod).get("securityContext") or {}


def _containers(pod: Pod) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field prefix, container) for init, regular and ephemeral containers, as admission visits them."""
    for list_name in ("initContainers", "containers", "ephemeralContainers"):
        for container in _spec(pod).get(list_name) or []:
            yield f"spec.{list_name}[{container.get('name')}]", container


def _sc(container: dict[str, Any]) -> dict[str, Any]:
    return container.get("securityContext") or {}


def _windows(pod: Pod) -> bool:
    return (_spec(pod).get("os") or {}).get("name") == "windows"


def _user_namespace(pod: Pod) -> bool:
    return _spec(pod).get("hostUsers") is False


def _security_contexts(pod: Pod) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field prefix, securityContext) of the pod, then of every container."""
    yield "spec.securityContext", _pod_sc(pod)
    for prefix, container in _containers(pod):
        yield f"{prefix}.securityContext", _sc(container)


# --- baseline -----------------------------------------------------------------------------

def windows_host_process(pod: Pod, minor: int) -> Iterator[Violation]:
    for prefix, sc in _security_contexts(pod):
        if (sc.get("windowsOptions") or {}).get("hostProcess") is True:
            yield Violation("windowsHostProcess", f"{prefix}.windowsOptions.hostProcess", True)


def host_namespaces(pod: Pod, minor: int) -> Iterator[Violation]:
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if _spec(pod).get(flag) is True:
            yield Violation("hostNamespaces", f"spec.{flag}", True)


def privileged(pod: Pod, minor: int) -> Iterator[Violation]:
    for prefix, container in _containers(pod):
        if _sc(container).get("privileged") is True:
            yield Violation("privileged", f"{prefix}.securityContext.privileged", True)


def _added_beyond(allowed: frozenset[str], rule: str, pod: Pod) -> Iterator[Violation]:
    for prefix, container in _containers(pod):
        added = (_sc(container).get("capabilities") or {}).get("add") or []
        beyond = [cap for cap in added if cap not in allowed]
        if beyond:
            yield Violation(rule, f"{prefix}.securityContext.capabilities.add", beyond)


def capabilities_baseline(pod: Pod, minor: int) -> Iterator[Violation]:
    yield from _added_beyond(BASELINE_CAPABILITIES, "capabilities_baseline", pod)


def host_path_volumes(pod: Pod, minor: int) -> Iterator[Violation]:
    for volume in _spec(pod).get("volumes") or []:
        if volume.get("hostPath") is not None:
            yield Violation("hostPathVolumes", f"spec.volumes[{volume.get('name')}]", "hostPath")


def host_ports(pod: Pod, minor: int) -> Iterator[Violation]:
    for prefix, container in _containers(pod):
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                yield Violation("hostPorts", f"{prefix}.ports[{port.get('name', port.get('containerPort'))}].hostPort",
                                port["hostPort"])


def app_armor_profile(pod: Pod, minor: int) -> Iterator[Violation]:
    for prefix, sc in _security_contexts(pod):
        profile = sc.get("appArmorProfile")
        if profile is not None and profile.get("type") not in APPARMOR_TYPES:
            yield Violation("appArmorProfile", f"{prefix}.appArmorProfile.type", profile.get("type"))
    for key, value in ((pod.get("metadata") or {}).get("annotations") or {}).items():
        if key.startswith(APPARMOR_ANNOTATION) and not (
                value in ("", "runtime/default") or str(value).startswith("localhost/")):
            yield Violation("appArmorProfile", f"metadata.annotations[{key}]", value)


def se_linux_options(pod: Pod, minor: int) -> Iterator[Violation]:
    allowed = SELINUX_TYPES_1_31 if minor >= 31 else SELINUX_TYPES
    for prefix, sc in _security_contexts(pod):
        options = sc.get("seLinuxOptions")
        if options is None:
            continue
        if (options.get("type") or "") not in allowed:
            yield Violation("seLinuxOptions", f"{prefix}.seLinuxOptions.type", options.get("type"))
        for key in ("user", "role"):
            if options.get(key):
                yield Violation("seLinuxOptions", f"{prefix}.seLinuxOptions.{key}", options[key])


def _unmasked_proc(rule: str, pod: Pod) -> Iterator[Violation]:
    for prefix, container in _containers(pod):
        mount = _sc(container).get("procMount")
        if mount is not None and mount != "Default":
            yield Violation(rule, f"{prefix}.securityContext.procMount", mount)


def proc_mount(pod: Pod, minor: int) -> Iterator[Violation]:
    if minor >= 35 and _user_namespace(pod):
        return
    yield from _unmasked_proc("procMount", pod)


def seccomp_profile_baseline(pod: Pod, minor: int) -> Iterator[Violation]:
    for prefix, sc in _security_contexts(pod):
        profile = sc.get("seccompProfile")
        if profile is not None and profile.get("type") not in SECCOMP_TYPES:
            yield Violation("seccompProfile_baseline", f"{prefix}.seccompProfile.type", profile.get("type"))


def sysctls(pod: Pod, minor: int) -> Iterator[Violation]:
    allowed = frozenset().union(*(names for since, names in SAFE_SYSCTLS if minor >= since))
    for sysctl in _pod_sc(pod).get("sysctls") or []:
        if sysctl.get("name") not in allowed:
            yield Violation("sysctls", "spec.securityContext.sysctls", sysctl.get("name"))


def host_probes_and_host_lifecycle(pod: Pod, minor: int) -> Iterator[Violation]:
    for prefix, container in _containers(pod):
        handlers = [(probe, container.get(probe)) for probe in ("livenessProbe", "readinessProbe", "startupProbe")]
        handlers += [(f"lifecycle.{hook}", (container.get("lifecycle") or {}).get(hook))
                     for hook in ("postStart", "preStop")]
        for name, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = ((handler or {}).get(action) or {}).get("host")
                if host:
                    yield Violation("hostProbesAndHostLifecycle", f"{prefix}.{name}.{action}.host", host)


# --- restricted ---------------------------------------------------------------------------

def restricted_volumes(pod: Pod, minor: int) -> Iterator[Violation]:
    for volume in _spec(pod).get("volumes") or []:
        if not any(volume.get(kind) is not None for kind in RESTRICTED_VOLUME_TYPES):
            kind = min((key for key in volume if key != "name"), default="unknown")
            yield Violation("restrictedVolumes", f"spec.volumes[{volume.get('name')}]", kind)


def allow_privilege_escalation(pod: Pod, minor: int) -> Iterator[Violation]:
    if _windows(pod):
        return
    for prefix, container in _containers(pod):
        value = _sc(container).get("allowPrivilegeEscalation", UNSET)
        if value is not False:
            yield Violation("allowPrivilegeEscalation", f"{prefix}.securityContext.allowPrivilegeEscalation",
                            UNSET if value is None else value)


def run_as_non_root(pod: Pod, minor: int) -> Iterator[Violation]:
    if minor >= 35 and _user_namespace(pod):
        return
    pod_value = _pod_sc(pod).get("runAsNonRoot")
    explicit: list[Violation] = []
    implicit: list[Violation] = []
    if pod_value is False:
        explicit.append(Violation("runAsNonRoot", "spec.securityContext.runAsNonRoot", False))
    for prefix, container in _containers(pod):
        value = _sc(container).get("runAsNonRoot")
        field = f"{prefix}.securityContext.runAsNonRoot"
        if value is False:
            explicit.append(Violation("runAsNonRoot", field, False))
        elif value is None and pod_value is not True:
            implicit.append(Violation("runAsNonRoot", field, UNSET))
    # Like the admission's message: explicit "false" settings first, the unset ones only without them.
    yield from explicit or implicit


def run_as_user(pod: Pod, minor: int) -> Iterator[Violation]:
    if minor >= 35 and _user_namespace(pod):
        return
    for prefix, sc in _security_contexts(pod):
        value = sc.get("runAsUser")
        if value == 0 and not isinstance(value, bool):
            yield Violation("runAsUser", f"{prefix}.runAsUser", 0)


def seccomp_profile_restricted(pod: Pod, minor: int) -> Iterator[Violation]:
    if _windows(pod):
        return
    pod_profile = _pod_sc(pod).get("seccompProfile")
    pod_valid = pod_profile is not None and pod_profile.get("type") in SECCOMP_TYPES
    if pod_profile is not None and not pod_valid:
        yield Violation("seccompProfile_restricted", "spec.securityContext.seccompProfile.type", pod_profile.get("type"))
    for prefix, container in _containers(pod):
        profile = _sc(container).get("seccompProfile")
        if profile is not None:
            if profile.get("type") not in SECCOMP_TYPES:
                yield Violation("seccompProfile_restricted", f"{prefix}.securityContext.seccompProfile.type",
                                profile.get("type"))
        elif not pod_valid:
            yield Violation("seccompProfile_restricted", f"{prefix}.securityContext.seccompProfile", UNSET)


def capabilities_restricted(pod: Pod, minor: int) -> Iterator[Violation]:
    if _windows(pod):
        return
    for prefix, container in _containers(pod):
        dropped = (_sc(container).get("capabilities") or {}).get("drop")
        if "ALL" not in (dropped or []):
            yield Violation("capabilities_restricted", f"{prefix}.securityContext.capabilities.drop",
                            UNSET if dropped is None else dropped)
    yield from _added_beyond(RESTRICTED_CAPABILITIES, "capabilities_restricted", pod)


def proc_mount_restricted(pod: Pod, minor: int) -> Iterator[Violation]:
    yield from _unmasked_proc("procMount_restricted", pod)


BASELINE_CHECKS: dict[str, Check] = {
    "windowsHostProcess": windows_host_process,
    "hostNamespaces": host_namespaces,
    "privileged": privileged,
    "capabilities_baseline": capabilities_baseline,
    "hostPathVolumes": host_path_volumes,
    "hostPorts": host_ports,
    "appArmorProfile": app_armor_profile,
    "seLinuxOptions": se_linux_options,
    "procMount": proc_mount,
    "seccompProfile_baseline": seccomp_profile_baseline,
    "sysctls": sysctls,
    "hostProbesAndHostLifecycle": host_probes_and_host_lifecycle,
}
RESTRICTED_CHECKS: dict[str, Check] = {
    "restrictedVolumes": restricted_volumes,
    "allowPrivilegeEscalation": allow_privilege_escalation,
    "runAsNonRoot": run_as_non_root,
    "runAsUser": run_as_user,
    "seccompProfile_restricted": seccomp_profile_restricted,
    "capabilities_restricted": capabilities_restricted,
    "procMount_restricted": proc_mount_restricted,
}
# check ID -> (first minor it runs in, the baseline check it replaces at restricted)
SINCE = {"hostProbesAndHostLifecycle": 34, "procMount_restricted": 35}
REPLACES = {"restrictedVolumes": "hostPathVolumes", "seccompProfile_restricted": "seccompProfile_baseline",
            "capabilities_restricted": "capabilities_baseline", "procMount_restricted": "procMount"}


def checks(level: str, minor: str | int) -> dict[str, Check]:
    """The checks the admission runs at level for a cluster of that Kubernetes minor."""
    if level not in LEVELS:
        raise ValueError(f"unknown Pod Security level {level!r}; one of {', '.join(LEVELS)}")
    number = parse_minor(minor)
    chosen: dict[str, Check] = {}
    if level in ("baseline", "restricted"):
        chosen.update(BASELINE_CHECKS)
    if level == "restricted":
        chosen.update(RESTRICTED_CHECKS)
    for rule in list(chosen):
        if number < SINCE.get(rule, 0):
            del chosen[rule]
    for rule, replaced in REPLACES.items():
        if rule in chosen:
            chosen.pop(replaced, None)
    return chosen


def violations(pod: Pod, level: str, minor: str | int) -> list[Violation]:
    """Everything the Pod Security admission at level would refuse the pod for."""
    number = parse_minor(minor)
    return [found for check in checks(level, number).values() for found in check(pod, number)]


def lowest_admitting(pod: Pod, minor: str | int) -> str:
    """The strictest level that admits the pod."""
    return next(level for level in reversed(LEVELS) if not violations(pod, level, minor))


# --- the chart's refusal and the API server's, as text ------------------------------------

CHART_REFUSAL = re.compile(r"execution error at \([^)]*\): (?P<lines>.*); set podSecurity\.level: "
                           r"(?P<suggest>\w+) if the namespace allows it\s*$", re.S)
ADMISSION_REFUSAL = re.compile(r'violates PodSecurity "(?P<level>\w+):[^"]*": (?P<items>.*)$')
WRITTEN = re.compile(r"^(?P<where>.*) \((?P<rule>\w+)\)$")


def refusal_line(where: str, level: str, rule: str) -> str:
    """One line of the chart's refusal; where is "<values path>: <value>"."""
    return f"{where} is not allowed at podSecurity.level {level} ({rule})"


def chart_refusal(message: str) -> tuple[set[str], str] | None:
    """(the lines, the level it suggests) of the chart's Pod Security refusal in helm's message."""
    match = CHART_REFUSAL.search(message)
    return (set(match["lines"].split("; ")), match["suggest"]) if match else None


def written_refusals(entries: list[str], level: str) -> tuple[set[str], set[str]]:
    """Refusals written as "<values path>: <value> (<rule>)" (tests/data/pod_security_cases.yaml):
    (the chart's lines at level, the check IDs)."""
    lines, rules = set(), set()
    for entry in entries:
        match = WRITTEN.match(entry)
        if not match:
            raise ValueError(f"{entry!r} is not '<values path>: <value> (<rule>)'")
        lines.add(refusal_line(match["where"], level, match["rule"]))
        rules.add(match["rule"])
    return lines, rules


def admission_reasons(message: str) -> set[str]:
    """The reasons in an API server's Pod Security refusal ('... violates PodSecurity
    "restricted:latest": runAsNonRoot != true (pod or container ...), seccompProfile (...)'),
    as REASONS names them; empty when the message is no such refusal."""
    match = ADMISSION_REFUSAL.search(message.strip())
    if not match:
        return set()
    reasons, depth, current = set(), 0, ""
    for char in match["items"] + ", ":
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
        if depth == 0 and current.endswith(", "):
            reason = current[:-2].split(" (", 1)[0].strip()
            if reason:
                reasons.add(reason.removesuffix("s") if reason.startswith("forbidden AppArmor") else reason)
            current = ""
    return reasons


def reasons_of(rules: set[str]) -> set[str]:
    """The reasons an API server names for refusing a pod for these check IDs."""
    return {REASONS[rule] for rule in rules}
