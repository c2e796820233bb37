{{/*
Pod Security when helm renders: every pod the chart renders (the head and worker pods of every
Ray cluster with the operator's autoscaler sidecar, the helm test Pods) is checked against
podSecurity.level with the rules of the Kubernetes Pod Security admission
(k8s.io/pod-security-admission v0.37 policy: its check IDs, the restricted checks that replace
baseline ones, the minors where a rule changed, picked by .Capabilities.KubeVersion as the
admission's default `latest` does). A pod the namespace would refuse fails `helm install` naming
the values key, instead of a RayCluster whose pods the API server refuses later, in the
operator's events. scripts/harness/podsecurity.py holds the same rules in Python; tests prove the
two agree with each other and with a real API server.
*/}}

{{/*
podSecurity.level of the release: restricted, baseline or privileged.
call with: include "ray-platform.podsecurity.level" .
*/}}
{{- define "ray-platform.podsecurity.level" -}}
{{- .Values.podSecurity.level }}
{{- end }}

{{/*
The minor of the Kubernetes helm renders for ("30+" on some providers counts as 30).
call with: include "ray-platform.podsecurity.minor" .
*/}}
{{- define "ray-platform.podsecurity.minor" -}}
{{- default "0" (regexFind "^[0-9]+" .Capabilities.KubeVersion.Minor) }}
{{- end }}

{{/*
What the Pod Security admission at `level` refuses in a pod, as a YAML list of
{rule (the admission's check ID), scope (pod | container | spec | volume | annotation |
containerField), name (container, volume or annotation), field, value (as text)}.
call with: include "ray-platform.podsecurity.violations" (dict "pod" $podWithMetadataAndSpec "level" "restricted" "minor" 37) | fromYamlArray
*/}}
{{- define "ray-platform.podsecurity.violations" -}}
{{- $level := .level }}
{{- $minor := int .minor }}
{{- $found := list }}
{{- if ne $level "privileged" }}
{{- $restricted := eq $level "restricted" }}
{{- $meta := default dict .pod.metadata }}
{{- $spec := default dict .pod.spec }}
{{- $podSc := default dict $spec.securityContext }}
{{- $userNamespace := and (hasKey $spec "hostUsers") (eq (toString $spec.hostUsers) "false") }}
{{- $windows := eq (toString (default dict $spec.os).name) "windows" }}
{{- $seccompTypes := list "RuntimeDefault" "Localhost" }}
{{- $containers := list }}
{{- range $list := list "initContainers" "containers" "ephemeralContainers" }}
{{- range $c := default list (index $spec $list) }}
{{- $containers = append $containers (dict "name" $c.name "sc" (default dict $c.securityContext) "spec" $c) }}
{{- end }}
{{- end }}
{{- /* Every securityContext: the pod's, then each container's. */}}
{{- $contexts := list (dict "scope" "pod" "name" "" "sc" $podSc) }}
{{- range $c := $containers }}
{{- $contexts = append $contexts (dict "scope" "container" "name" $c.name "sc" $c.sc) }}
{{- end }}

{{- /* baseline: windowsHostProcess */}}
{{- range $x := $contexts }}
{{- if eq (toString (default dict $x.sc.windowsOptions).hostProcess) "true" }}
{{- $found = append $found (dict "rule" "windowsHostProcess" "scope" $x.scope "name" $x.name "field" "windowsOptions.hostProcess" "value" "true") }}
{{- end }}
{{- end }}
{{- /* baseline: hostNamespaces */}}
{{- range $flag := list "hostNetwork" "hostPID" "hostIPC" }}
{{- if eq (toString (index $spec $flag)) "true" }}
{{- $found = append $found (dict "rule" "hostNamespaces" "scope" "spec" "name" "" "field" $flag "value" "true") }}
{{- end }}
{{- end }}
{{- /* baseline: privileged */}}
{{- range $c := $containers }}
{{- if eq (toString $c.sc.privileged) "true" }}
{{- $found = append $found (dict "rule" "privileged" "scope" "container" "name" $c.name "field" "privileged" "value" "true") }}
{{- end }}
{{- end }}
{{- /* capabilities: baseline's list of additions, or restricted's drop ALL and NET_BIND_SERVICE only */}}
{{- $capRule := ternary "capabilities_restricted" "capabilities_baseline" $restricted }}
{{- $addable := list "AUDIT_WRITE" "CHOWN" "DAC_OVERRIDE" "FOWNER" "FSETID" "KILL" "MKNOD" "NET_BIND_SERVICE" "SETFCAP" "SETGID" "SETPCAP" "SETUID" "SYS_CHROOT" }}
{{- if $restricted }}{{ $addable = list "NET_BIND_SERVICE" }}{{ end }}
{{- if not (and $restricted $windows) }}
{{- range $c := $containers }}
{{- $caps := default dict $c.sc.capabilities }}
{{- if $restricted }}
{{- if not (has "ALL" (default list $caps.drop)) }}
{{- $found = append $found (dict "rule" $capRule "scope" "container" "name" $c.name "field" "capabilities.drop" "value" (ternary "unset" (toJson $caps.drop) (kindIs "invalid" $caps.drop))) }}
{{- end }}
{{- end }}
{{- $beyond := list }}
{{- range $cap := default list $caps.add }}
{{- if not (has (toString $cap) $addable) }}{{ $beyond = append $beyond $cap }}{{ end }}
{{- end }}
{{- if $beyond }}
{{- $found = append $found (dict "rule" $capRule "scope" "container" "name" $c.name "field" "capabilities.add" "value" (toJson $beyond)) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* volumes: no hostPath (baseline), only the listed types (restricted) */}}
{{- $volumeTypes := list "configMap" "csi" "downwardAPI" "emptyDir" "ephemeral" "image" "persistentVolumeClaim" "projected" "secret" }}
{{- range $v := default list $spec.volumes }}
{{- if $restricted }}
{{- $allowed := false }}
{{- range $type := $volumeTypes }}
{{- if and (hasKey $v $type) (not (kindIs "invalid" (index $v $type))) }}{{ $allowed = true }}{{ end }}
{{- end }}
{{- if not $allowed }}
{{- $found = append $found (dict "rule" "restrictedVolumes" "scope" "volume" "name" $v.name "field" "" "value" (first (append (sortAlpha (without (keys $v) "name")) "unknown"))) }}
{{- end }}
{{- else if and (hasKey $v "hostPath") (not (kindIs "invalid" $v.hostPath)) }}
{{- $found = append $found (dict "rule" "hostPathVolumes" "scope" "volume" "name" $v.name "field" "" "value" "hostPath") }}
{{- end }}
{{- end }}
{{- /* baseline: hostPorts */}}
{{- range $c := $containers }}
{{- range $port := default list $c.spec.ports }}
{{- if $port.hostPort }}
{{- $found = append $found (dict "rule" "hostPorts" "scope" "containerField" "name" $c.name "field" (printf "ports[%v].hostPort" (default $port.containerPort $port.name)) "value" (toJson $port.hostPort)) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* baseline: appArmorProfile (fields and the beta annotations) */}}
{{- range $x := $contexts }}
{{- $profile := $x.sc.appArmorProfile }}
{{- if and (not (kindIs "invalid" $profile)) (not (has (toString (default dict $profile).type) (list "RuntimeDefault" "Localhost"))) }}
{{- $found = append $found (dict "rule" "appArmorProfile" "scope" $x.scope "name" $x.name "field" "appArmorProfile.type" "value" (toJson (default dict $profile).type)) }}
{{- end }}
{{- end }}
{{- range $key, $value := default dict $meta.annotations }}
{{- if and (hasPrefix "container.apparmor.security.beta.kubernetes.io/" $key) (not (or (eq (toString $value) "") (eq (toString $value) "runtime/default") (hasPrefix "localhost/" (toString $value)))) }}
{{- $found = append $found (dict "rule" "appArmorProfile" "scope" "annotation" "name" $key "field" "" "value" (toJson $value)) }}
{{- end }}
{{- end }}
{{- /* baseline: seLinuxOptions */}}
{{- $seLinuxTypes := list "" "container_t" "container_init_t" "container_kvm_t" }}
{{- if ge $minor 31 }}{{ $seLinuxTypes = append $seLinuxTypes "container_engine_t" }}{{ end }}
{{- range $x := $contexts }}
{{- $options := $x.sc.seLinuxOptions }}
{{- if not (kindIs "invalid" $options) }}
{{- $options = default dict $options }}
{{- if not (has (toString (default "" $options.type)) $seLinuxTypes) }}
{{- $found = append $found (dict "rule" "seLinuxOptions" "scope" $x.scope "name" $x.name "field" "seLinuxOptions.type" "value" (toJson $options.type)) }}
{{- end }}
{{- range $key := list "user" "role" }}
{{- if index $options $key }}
{{- $found = append $found (dict "rule" "seLinuxOptions" "scope" $x.scope "name" $x.name "field" (printf "seLinuxOptions.%s" $key) "value" (toJson (index $options $key))) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- /* procMount: restricted's own rule from 1.35, baseline's lets user-namespaced pods through from 1.35 */}}
{{- $procRule := ternary "procMount_restricted" "procMount" (and $restricted (ge $minor 35)) }}
{{- if not (and (not $restricted) (ge $minor 35) $userNamespace) }}
{{- range $c := $containers }}
{{- $mount := $c.sc.procMount }}
{{- if and (not (kindIs "invalid" $mount)) (ne (toString $mount) "Default") }}
{{- $found = append $found (dict "rule" $procRule "scope" "container" "name" $c.name "field" "procMount" "value" (toJson $mount)) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* seccompProfile: baseline refuses a set type other than RuntimeDefault or Localhost */}}
{{- if not $restricted }}
{{- range $x := $contexts }}
{{- $profile := $x.sc.seccompProfile }}
{{- if and (not (kindIs "invalid" $profile)) (not (has (toString (default dict $profile).type) $seccompTypes)) }}
{{- $found = append $found (dict "rule" "seccompProfile_baseline" "scope" $x.scope "name" $x.name "field" "seccompProfile.type" "value" (toJson (default dict $profile).type)) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* baseline: sysctls (the safe set grows with the minor) */}}
{{- $safeSysctls := list "kernel.shm_rmid_forced" "net.ipv4.ip_local_port_range" "net.ipv4.tcp_syncookies" "net.ipv4.ping_group_range" "net.ipv4.ip_unprivileged_port_start" }}
{{- if ge $minor 27 }}{{ $safeSysctls = append $safeSysctls "net.ipv4.ip_local_reserved_ports" }}{{ end }}
{{- if ge $minor 29 }}{{ $safeSysctls = concat $safeSysctls (list "net.ipv4.tcp_keepalive_time" "net.ipv4.tcp_fin_timeout" "net.ipv4.tcp_keepalive_intvl" "net.ipv4.tcp_keepalive_probes") }}{{ end }}
{{- if ge $minor 32 }}{{ $safeSysctls = concat $safeSysctls (list "net.ipv4.tcp_rmem" "net.ipv4.tcp_wmem") }}{{ end }}
{{- if ge $minor 37 }}{{ $safeSysctls = concat $safeSysctls (list "net.ipv4.tcp_slow_start_after_idle" "net.ipv4.tcp_notsent_lowat") }}{{ end }}
{{- range $sysctl := default list $podSc.sysctls }}
{{- if not (has (toString $sysctl.name) $safeSysctls) }}
{{- $found = append $found (dict "rule" "sysctls" "scope" "pod" "name" "" "field" "sysctls" "value" (toJson $sysctl.name)) }}
{{- end }}
{{- end }}
{{- /* baseline from 1.34: hostProbesAndHostLifecycle */}}
{{- if ge $minor 34 }}
{{- range $c := $containers }}
{{- $handlers := list }}
{{- range $probe := list "livenessProbe" "readinessProbe" "startupProbe" }}
{{- $handlers = append $handlers (dict "field" $probe "handler" (index $c.spec $probe)) }}
{{- end }}
{{- range $hook := list "postStart" "preStop" }}
{{- $handlers = append $handlers (dict "field" (printf "lifecycle.%s" $hook) "handler" (index (default dict $c.spec.lifecycle) $hook)) }}
{{- end }}
{{- range $h := $handlers }}
{{- range $action := list "httpGet" "tcpSocket" }}
{{- $host := (default dict (index (default dict $h.handler) $action)).host }}
{{- if $host }}
{{- $found = append $found (dict "rule" "hostProbesAndHostLifecycle" "scope" "containerField" "name" $c.name "field" (printf "%s.%s.host" $h.field $action) "value" (toJson $host)) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- if $restricted }}
{{- /* restricted: allowPrivilegeEscalation must be false (Windows pods exempt) */}}
{{- if not $windows }}
{{- range $c := $containers }}
{{- $escalation := $c.sc.allowPrivilegeEscalation }}
{{- if ne (toString $escalation) "false" }}
{{- $found = append $found (dict "rule" "allowPrivilegeEscalation" "scope" "container" "name" $c.name "field" "allowPrivilegeEscalation" "value" (ternary "unset" (toJson $escalation) (kindIs "invalid" $escalation))) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* restricted: runAsNonRoot and runAsUser (user-namespaced pods exempt from 1.35) */}}
{{- if not (and (ge $minor 35) $userNamespace) }}
{{- $podNonRoot := toString $podSc.runAsNonRoot }}
{{- $explicit := list }}
{{- $implicit := list }}
{{- if eq $podNonRoot "false" }}
{{- $explicit = append $explicit (dict "rule" "runAsNonRoot" "scope" "pod" "name" "" "field" "runAsNonRoot" "value" "false") }}
{{- end }}
{{- range $c := $containers }}
{{- $nonRoot := $c.sc.runAsNonRoot }}
{{- if eq (toString $nonRoot) "false" }}
{{- $explicit = append $explicit (dict "rule" "runAsNonRoot" "scope" "container" "name" $c.name "field" "runAsNonRoot" "value" "false") }}
{{- else if and (kindIs "invalid" $nonRoot) (ne $podNonRoot "true") }}
{{- $implicit = append $implicit (dict "rule" "runAsNonRoot" "scope" "container" "name" $c.name "field" "runAsNonRoot" "value" "unset") }}
{{- end }}
{{- end }}
{{- /* Like the admission's message: explicit false settings, else the unset ones. */}}
{{- $found = concat $found (ternary $explicit $implicit (gt (len $explicit) 0)) }}
{{- range $x := $contexts }}
{{- $user := $x.sc.runAsUser }}
{{- if and (not (kindIs "invalid" $user)) (eq (toString $user) "0") }}
{{- $found = append $found (dict "rule" "runAsUser" "scope" $x.scope "name" $x.name "field" "runAsUser" "value" "0") }}
{{- end }}
{{- end }}
{{- end }}
{{- /* restricted: seccompProfile RuntimeDefault or Localhost, on the pod or every container */}}
{{- if not $windows }}
{{- $podProfile := $podSc.seccompProfile }}
{{- $podSet := not (kindIs "invalid" $podProfile) }}
{{- $podValid := and $podSet (has (toString (default dict $podProfile).type) $seccompTypes) }}
{{- if and $podSet (not $podValid) }}
{{- $found = append $found (dict "rule" "seccompProfile_restricted" "scope" "pod" "name" "" "field" "seccompProfile.type" "value" (toJson (default dict $podProfile).type)) }}
{{- end }}
{{- range $c := $containers }}
{{- $profile := $c.sc.seccompProfile }}
{{- if not (kindIs "invalid" $profile) }}
{{- if not (has (toString (default dict $profile).type) $seccompTypes) }}
{{- $found = append $found (dict "rule" "seccompProfile_restricted" "scope" "container" "name" $c.name "field" "seccompProfile.type" "value" (toJson (default dict $profile).type)) }}
{{- end }}
{{- else if not $podValid }}
{{- $found = append $found (dict "rule" "seccompProfile_restricted" "scope" "container" "name" $c.name "field" "seccompProfile" "value" "unset") }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $found }}
{{- end }}

{{/*
The values path a violation comes from, given the pod's sources:
  where        how to name the pod where no values key is the source ("the rayCluster.head pod")
  pod          {group, groupPath, topPath}: the group's podSecurityContext values over the top-level
  containers   container name -> {group, groupPath, topPath} for its securityContext, and
               fieldsPath: the values path of its other fields (probes, lifecycle hooks, ports)
  volumes      volume name -> values path of a volume the values added
  annotations  {values, path}: the group's pod annotations
A securityContext field is the group's key when the group sets it, else the top-level key.
call with: include "ray-platform.podsecurity.valuesPath" (dict "violation" $violation "sources" $sources)
*/}}
{{- define "ray-platform.podsecurity.valuesPath" -}}
{{- $v := .violation }}
{{- $s := .sources }}
{{- $source := dict }}
{{- if eq $v.scope "pod" }}{{ $source = default dict $s.pod }}{{ end }}
{{- if eq $v.scope "container" }}{{ $source = default dict (index (default dict $s.containers) $v.name) }}{{ end }}
{{- if and (has $v.scope (list "pod" "container")) $source }}
{{- $node := default dict $source.group }}
{{- $inGroup := true }}
{{- range $part := splitList "." $v.field }}
{{- if and $inGroup (kindIs "map" $node) (hasKey $node $part) }}{{ $node = index $node $part }}{{ else }}{{ $inGroup = false }}{{ end }}
{{- end }}
{{- printf "%s.%s" (ternary $source.groupPath $source.topPath $inGroup) $v.field }}
{{- else if eq $v.scope "pod" }}
{{- printf "%s spec.securityContext.%s" $s.where $v.field }}
{{- else if eq $v.scope "container" }}
{{- printf "%s spec.containers[%s].securityContext.%s" $s.where $v.name $v.field }}
{{- else if eq $v.scope "volume" }}
{{- default (printf "%s spec.volumes[%s]" $s.where $v.name) (index (default dict $s.volumes) $v.name) }}
{{- else if eq $v.scope "annotation" }}
{{- $annotations := default dict $s.annotations }}
{{- if hasKey (default dict $annotations.values) $v.name }}
{{- printf "%s[%s]" $annotations.path $v.name }}
{{- else }}
{{- printf "%s metadata.annotations[%s]" $s.where $v.name }}
{{- end }}
{{- else if eq $v.scope "spec" }}
{{- printf "%s spec.%s" $s.where $v.field }}
{{- else if (default dict (index (default dict $s.containers) (toString $v.name))).fieldsPath }}
{{- /* A container field (probe, lifecycle hook, port) the values set: the container's values path. */}}
{{- printf "%s.%s" (index $s.containers $v.name).fieldsPath $v.field }}
{{- else }}
{{- printf "%s spec.containers[%s].%s" $s.where $v.name $v.field }}
{{- end }}
{{- end }}

{{/*
One refusal line per violation of a pod at the release's level, as a YAML list of
{line, suggest (the level to suggest: baseline when the pod meets it, else privileged)}. At every
level, also a privileged container that keeps allowPrivilegeEscalation false (the chart's
default): the API server's validation refuses that pod whatever the namespace allows (suggest "").
call with: include "ray-platform.podsecurity.refusals" (dict "root" $ "pod" $pod "sources" $sources) | fromYamlArray
*/}}
{{- define "ray-platform.podsecurity.refusals" -}}
{{- $level := include "ray-platform.podsecurity.level" .root }}
{{- $minor := include "ray-platform.podsecurity.minor" .root }}
{{- $refusals := list }}
{{- range $list := list "initContainers" "containers" }}
{{- range $c := default list (index (default dict $.pod.spec) $list) }}
{{- $sc := default dict $c.securityContext }}
{{- if and (eq (toString $sc.privileged) "true") (eq (toString $sc.allowPrivilegeEscalation) "false") }}
{{- $privileged := include "ray-platform.podsecurity.valuesPath" (dict "violation" (dict "scope" "container" "name" $c.name "field" "privileged") "sources" $.sources) }}
{{- $escalation := include "ray-platform.podsecurity.valuesPath" (dict "violation" (dict "scope" "container" "name" $c.name "field" "allowPrivilegeEscalation") "sources" $.sources) }}
{{- $source := index (default dict $.sources.containers) (toString $c.name) }}
{{- $fix := ternary (printf "%s.allowPrivilegeEscalation" (default dict $source).groupPath) $escalation (not (empty $source)) }}
{{- $refusals = append $refusals (dict "line" (printf "%s: true together with %s: false is refused by the API server (a privileged container can always escalate privileges: set %s: true)" $privileged $escalation $fix) "suggest" "") }}
{{- end }}
{{- end }}
{{- end }}
{{- $found := include "ray-platform.podsecurity.violations" (dict "pod" .pod "level" $level "minor" $minor) | fromYamlArray }}
{{- if $found }}
{{- $suggest := "privileged" }}
{{- if and (eq $level "restricted") (not (include "ray-platform.podsecurity.violations" (dict "pod" .pod "level" "baseline" "minor" $minor) | fromYamlArray)) }}
{{- $suggest = "baseline" }}
{{- end }}
{{- range $v := $found }}
{{- $path := include "ray-platform.podsecurity.valuesPath" (dict "violation" $v "sources" $.sources) }}
{{- $refusals = append $refusals (dict "line" (printf "%s: %s is not allowed at podSecurity.level %s (%s)" $path $v.value $level $v.rule) "suggest" $suggest) }}
{{- end }}
{{- end }}
{{- toYaml $refusals }}
{{- end }}

{{/*
Refusals of one Ray node group's pod: its template as the pod builder rendered it, plus on a head
the autoscaler sidecar the KubeRay operator adds, named "autoscaler" and with
autoscalerOptions.securityContext (ray-operator v1.6.2). The workers' wait-gcs-ready init
container copies the Ray container's securityContext, so its verdict is the Ray container's.
call with: include "ray-platform.podsecurity.rayPodRefusals" (dict "root" $ "template" $renderedTemplate "group" $groupValues "key" "rayCluster.head" "nodeType" "head" "clusterKey" "rayCluster" "autoscaler" $autoscalerOptionsOrEmpty) | fromYamlArray
*/}}
{{- define "ray-platform.podsecurity.rayPodRefusals" -}}
{{- $pod := .template | fromYaml }}
{{- $group := .group }}
{{- $top := "securityContext" }}
{{- $containers := dict (printf "ray-%s" .nodeType) (dict "group" (default dict $group.securityContext) "groupPath" (printf "%s.securityContext" .key) "topPath" $top "fieldsPath" .key) }}
{{- /* Containers the group adds: their own securityContext over the top-level one (_pod.tpl). */}}
{{- range $list := list "initContainers" "sidecarContainers" }}
{{- range $index, $c := default list (index $group $list) }}
{{- $path := printf "%s.%s[%d]" $.key $list $index }}
{{- $_ := set $containers (toString $c.name) (dict "group" (default dict $c.securityContext) "groupPath" (printf "%s.securityContext" $path) "topPath" $top "fieldsPath" $path) }}
{{- end }}
{{- end }}
{{- if .autoscaler }}
{{- $sidecar := dict "name" "autoscaler" }}
{{- with .autoscaler.securityContext }}{{ $_ := set $sidecar "securityContext" . }}{{ end }}
{{- $_ := set $pod.spec "containers" (append (default list $pod.spec.containers) $sidecar) }}
{{- $clusterValues := dict }}
{{- include "ray-platform.cluster.values" (dict "root" .root "key" .clusterKey "out" $clusterValues) }}
{{- $autoscalerValues := default dict $clusterValues.values.autoscaler }}
{{- $_ := set $containers "autoscaler" (dict "group" (default dict $autoscalerValues.securityContext) "groupPath" (printf "%s.autoscaler.securityContext" .clusterKey) "topPath" $top) }}
{{- end }}
{{- $volumes := dict }}
{{- range $index, $volume := default list $group.volumes }}
{{- $_ := set $volumes (toString $volume.name) (printf "%s.volumes[%d]" $.key $index) }}
{{- end }}
{{- $sources := dict "where" (printf "the %s pod" .key) "containers" $containers "volumes" $volumes "annotations" (dict "values" (default dict $group.annotations) "path" (printf "%s.annotations" .key)) "pod" (dict "group" (default dict $group.podSecurityContext) "groupPath" (printf "%s.podSecurityContext" .key) "topPath" "podSecurityContext") }}
{{- include "ray-platform.podsecurity.refusals" (dict "root" .root "pod" $pod "sources" $sources) }}
{{- end }}

{{/*
Fail the render when there are refusals: every line once, then the level to try (when a level
would admit the pods).
call with: include "ray-platform.podsecurity.fail" (dict "refusals" $refusals)
*/}}
{{- define "ray-platform.podsecurity.fail" -}}
{{- if .refusals }}
{{- $lines := list }}
{{- $suggest := "" }}
{{- range $refusal := .refusals }}
{{- $lines = append $lines $refusal.line }}
{{- if or (eq $refusal.suggest "privileged") (and (eq $refusal.suggest "baseline") (not $suggest)) }}{{ $suggest = $refusal.suggest }}{{ end }}
{{- end }}
{{- $message := join "; " (uniq $lines) }}
{{- if $suggest }}{{ $message = printf "%s; set podSecurity.level: %s if the namespace allows it" $message $suggest }}{{ end }}
{{- fail $message }}
{{- end }}
{{- end }}

{{/*
The NOTES.txt section: what the chart checked, and the label that has the API server enforce the
same level on the release's namespace.
call with: include "ray-platform.podsecurity.notes" .
*/}}
{{- define "ray-platform.podsecurity.notes" -}}
{{- $level := include "ray-platform.podsecurity.level" . }}

Pod Security (podSecurity.level: {{ $level }}):
{{- if eq $level "privileged" }}
  privileged admits everything: the chart checked nothing, and these pods may run as root,
  privileged, with host namespaces, hostPath volumes and any capability.
{{- else }}
  every pod of this release meets the "{{ $level }}" Pod Security level (checked when helm rendered it).
{{- end }}
  Have the API server enforce the same level on the namespace:
  kubectl label namespace {{ .Release.Namespace }} pod-security.kubernetes.io/enforce={{ $level }} --overwrite
{{- end }}
