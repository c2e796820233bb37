{{/*
The Ray pod template: one builder for the head and every worker group, of every Ray cluster the
chart defines (the RayCluster and the RayService's cluster). Security defaults, labels, volumes,
ports and scheduling are written once, here.
*/}}

{{/*
The pod template of one Ray node group. The dict:
  root       the chart's root context ($)
  group      the group's values (head or a worker group)
  key        the group's values path, for error messages ("rayCluster.head")
  nodeType   "head" or "worker"
  component  app.kubernetes.io/component of the pods ("raycluster")
  groupName  worker group name (workers only)
  ports      list of {name, containerPort}
  extra      what the chart adds to every pod of this cluster: {env, volumes, volumeMounts} lists
             and an annotations map (the chart's env: the top-level `env` and the group's `env`
             replace a variable of the same name)
The group's pod settings (podSettings in the schema: initContainers, sidecarContainers,
runtimeClassName, lifecycle, livenessProbe, readinessProbe, dnsPolicy, dnsConfig, hostAliases,
terminationGracePeriodSeconds, resourceClaims) come from `group`; containers the user adds get the
top-level securityContext under their own. Refuses what the API server would refuse later
(duplicate container, env, volume names and mount paths, a second mount at /tmp/ray).
call with: include "ray-platform.pod.template" (dict "root" $ "group" $group "key" "rayCluster.head" "nodeType" "head" "component" "raycluster" "ports" $ports "extra" $extra)
*/}}
{{- define "ray-platform.pod.template" -}}
{{- $root := .root }}
{{- $group := .group }}
{{- $key := .key }}
{{- $podSecurityContext := mergeOverwrite (deepCopy $root.Values.podSecurityContext) (default dict $group.podSecurityContext) }}
{{- $securityContext := mergeOverwrite (deepCopy $root.Values.securityContext) (default dict $group.securityContext) }}
{{- $extra := default dict .extra }}
{{- $chartVolumes := concat (include "ray-platform.pod.tmpDirVolumes" $root | fromYamlArray) (include "ray-platform.security.headVolumes" . | fromYamlArray) (default list $extra.volumes) }}
{{- $chartMounts := concat (include "ray-platform.pod.tmpDirMounts" $root | fromYamlArray) (default list $extra.volumeMounts) }}
{{- include "ray-platform.pod.checkVolumes" (dict "root" $root "group" $group "key" $key "chartVolumes" $chartVolumes "chartMounts" $chartMounts) }}
{{- $volumes := concat $chartVolumes (default list $group.volumes) }}
{{- $mounts := concat $chartMounts (default list $group.volumeMounts) }}
{{- $env := include "ray-platform.pod.env" (dict "root" $root "group" $group "key" $key "extra" $extra) | fromYamlArray }}
{{- $envFrom := concat (default list $root.Values.envFrom) (default list $group.envFrom) }}
{{- $added := include "ray-platform.pod.addedContainers" (dict "root" $root "group" $group "key" $key "volumes" $volumes) | fromYaml }}
{{- $claims := include "ray-platform.pod.resourceClaims" (dict "root" $root "group" $group "key" $key) | fromYamlArray -}}
{{- include "ray-platform.labels.checkReserved" (dict "labels" $group.labels "key" (printf "%s.labels" $key)) }}
metadata:
  labels:
    {{- include "ray-platform.labels.rayPod" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    ray-platform.io/node-type: {{ .nodeType }}
    {{- with .groupName }}
    ray-platform.io/group: {{ . | quote }}
    {{- end }}
    {{- with $group.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with merge (deepCopy (default dict $group.annotations)) (default dict $extra.annotations) }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- /* ServiceAccount, no automatic token (_security.tpl). */}}
  {{- include "ray-platform.security.podIdentity" . | nindent 2 }}
  {{- with $podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $group.runtimeClassName }}
  runtimeClassName: {{ . }}
  {{- end }}
  {{- with $group.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- if not (kindIs "invalid" $group.terminationGracePeriodSeconds) }}
  terminationGracePeriodSeconds: {{ int64 $group.terminationGracePeriodSeconds }}
  {{- end }}
  {{- with $group.dnsPolicy }}
  dnsPolicy: {{ . }}
  {{- end }}
  {{- with $group.dnsConfig }}
  dnsConfig:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $group.hostAliases }}
  hostAliases:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $group.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $group.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $group.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $group.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $claims }}
  resourceClaims:
    {{- range . }}
    - name: {{ .name }}
      {{- with .resourceClaimName }}
      resourceClaimName: {{ . }}
      {{- end }}
      {{- with .resourceClaimTemplateName }}
      resourceClaimTemplateName: {{ . }}
      {{- end }}
    {{- end }}
  {{- end }}
  {{- /* The user's init containers run before the ones KubeRay appends (a worker's wait-gcs-ready). */}}
  {{- with $added.initContainers }}
  initContainers:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    {{- /* The Ray container comes first: KubeRay takes the first container as Ray's. */}}
    - name: ray-{{ .nodeType }}
      image: {{ include "ray-platform.pod.image" . | quote }}
      imagePullPolicy: {{ include "ray-platform.pod.imagePullPolicy" . }}
      {{- with .ports }}
      ports:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $env }}
      env:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $envFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      resources:
        {{- include "ray-platform.pod.resources" (dict "group" $group "key" $key "claims" $claims) | nindent 8 }}
      {{- with $securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- /* Set, they replace the probes KubeRay injects into the Ray container (unset, it adds its own). */}}
      {{- with $group.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $group.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $group.lifecycle }}
      lifecycle:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $mounts }}
      volumeMounts:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- with $added.sidecarContainers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $volumes }}
  volumes:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
The Ray container's env: what the chart adds (extra.env), then the top-level `env`, then the
group's `env`; a later source replaces a variable of the same name (the group wins), so no name
appears twice in the container. A name twice in one list is refused, naming the list.
call with: include "ray-platform.pod.env" (dict "root" $ "group" $group "key" "rayCluster.head" "extra" $extra) | fromYamlArray
*/}}
{{- define "ray-platform.pod.env" -}}
{{- $top := default list .root.Values.env }}
{{- $own := default list .group.env }}
{{- range $source := list (dict "list" $top "key" "env") (dict "list" $own "key" (printf "%s.env" .key)) }}
{{- $seen := dict }}
{{- range $index, $var := $source.list }}
{{- if hasKey $seen (toString $var.name) }}
{{- fail (printf "%s[%d].name: %s is already set by %s[%v]; a container takes each variable once (keep one entry)." $source.key $index $var.name $source.key (get $seen (toString $var.name))) }}
{{- end }}
{{- $_ := set $seen (toString $var.name) $index }}
{{- end }}
{{- end }}
{{- $ownNames := list }}
{{- range $own }}{{ $ownNames = append $ownNames (toString .name) }}{{ end }}
{{- $laterNames := $ownNames }}
{{- range $top }}{{ $laterNames = append $laterNames (toString .name) }}{{ end }}
{{- $out := list }}
{{- range $var := default list .extra.env }}
{{- if not (has (toString $var.name) $laterNames) }}{{ $out = append $out $var }}{{ end }}
{{- end }}
{{- range $var := $top }}
{{- if not (has (toString $var.name) $ownNames) }}{{ $out = append $out $var }}{{ end }}
{{- end }}
{{- toYaml (concat $out $own) }}
{{- end }}

{{/*
The volumes the KubeRay operator adds to Ray pods, which a container may mount but a group must
not define again: /dev/shm, and the head's log volume with the autoscaler (a YAML list).
call with: include "ray-platform.pod.kuberayVolumeNames" . | fromYamlArray
*/}}
{{- define "ray-platform.pod.kuberayVolumeNames" -}}
- shared-mem
- ray-logs
{{- end }}

{{/*
Refuse volumes and Ray-container mounts the API server would refuse: a group volume named like
one the chart adds or like an earlier one, a mount path used twice (a mount at /tmp/ray while
rayTmpDir.enabled says how to take over that path), a mount of a volume the pod does not have.
call with: include "ray-platform.pod.checkVolumes" (dict "root" $ "group" $group "key" "rayCluster.head" "chartVolumes" $list "chartMounts" $list)
*/}}
{{- define "ray-platform.pod.checkVolumes" -}}
{{- $key := .key }}
{{- $names := dict }}
{{- range .chartVolumes }}{{ $_ := set $names (toString .name) "the chart" }}{{ end }}
{{- range $index, $volume := default list .group.volumes }}
{{- $name := toString $volume.name }}
{{- if hasKey $names $name }}
{{- fail (printf "%s.volumes[%d].name: a volume %q is already defined (by %s); volume names must be unique in a pod, rename this one." $key $index $name (get $names $name)) }}
{{- end }}
{{- $_ := set $names $name (printf "%s.volumes[%d]" $key $index) }}
{{- end }}
{{- range include "ray-platform.pod.kuberayVolumeNames" . | fromYamlArray }}{{ $_ := set $names . "KubeRay" }}{{ end }}
{{- $paths := dict }}
{{- range .chartMounts }}{{ $_ := set $paths (trimSuffix "/" (toString .mountPath)) "the chart" }}{{ end }}
{{- range $index, $mount := default list .group.volumeMounts }}
{{- $path := trimSuffix "/" (toString $mount.mountPath) }}
{{- if and (eq $path "/tmp/ray") $.root.Values.rayTmpDir.enabled }}
{{- fail (printf "%s.volumeMounts[%d].mountPath: /tmp/ray is where the chart mounts its rayTmpDir emptyDir; to mount your own volume there (e.g. for Ray's logs), set rayTmpDir.enabled: false." $key $index) }}
{{- end }}
{{- if hasKey $paths $path }}
{{- fail (printf "%s.volumeMounts[%d].mountPath: %s is already mounted (by %s); a container mounts each path once." $key $index $path (get $paths $path)) }}
{{- end }}
{{- $_ := set $paths $path (printf "%s.volumeMounts[%d]" $key $index) }}
{{- if not (hasKey $names (toString $mount.name)) }}
{{- fail (printf "%s.volumeMounts[%d].name: the pod has no volume %q; add it to %s.volumes." $key $index (toString $mount.name) $key) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The init and sidecar containers a group adds, as YAML {initContainers, sidecarContainers}: each
with the top-level securityContext under its own keys (so an added container is restricted
unless it says otherwise). Refuses names of the Ray, autoscaler and wait-gcs-ready containers or a
name twice, mounts of volumes the pod lacks and a mount path twice in one container.
call with: include "ray-platform.pod.addedContainers" (dict "root" $ "group" $group "key" "rayCluster.head" "volumes" $podVolumes) | fromYaml
*/}}
{{- define "ray-platform.pod.addedContainers" -}}
{{- $reserved := list "ray-head" "ray-worker" "autoscaler" "wait-gcs-ready" }}
{{- $volumeNames := include "ray-platform.pod.kuberayVolumeNames" . | fromYamlArray }}
{{- range .volumes }}{{ $volumeNames = append $volumeNames (toString .name) }}{{ end }}
{{- $seen := dict }}
{{- $out := dict }}
{{- range $list := list "initContainers" "sidecarContainers" }}
{{- $containers := list }}
{{- range $index, $c := default list (index $.group $list) }}
{{- $path := printf "%s.%s[%d]" $.key $list $index }}
{{- $name := toString $c.name }}
{{- if has $name $reserved }}
{{- fail (printf "%s.name: %q is the name of a container KubeRay runs in Ray pods (ray-head, ray-worker, autoscaler, wait-gcs-ready); pick another name." $path $name) }}
{{- end }}
{{- if hasKey $seen $name }}
{{- fail (printf "%s.name: %q is already the name of %s; container names must be unique in a pod." $path $name (get $seen $name)) }}
{{- end }}
{{- $_ := set $seen $name $path }}
{{- $paths := dict }}
{{- range $m, $mount := default list $c.volumeMounts }}
{{- if not (has (toString $mount.name) $volumeNames) }}
{{- fail (printf "%s.volumeMounts[%d].name: the pod has no volume %q; add it to %s.volumes (or mount one the chart adds, such as ray-tmp at /tmp/ray)." $path $m (toString $mount.name) $.key) }}
{{- end }}
{{- $mountPath := trimSuffix "/" (toString $mount.mountPath) }}
{{- if hasKey $paths $mountPath }}
{{- fail (printf "%s.volumeMounts[%d].mountPath: %s is already mounted by %s.volumeMounts[%v]; a container mounts each path once." $path $m $mountPath $path (get $paths $mountPath)) }}
{{- end }}
{{- $_ := set $paths $mountPath $m }}
{{- end }}
{{- $copy := deepCopy $c }}
{{- $_ := set $copy "securityContext" (mergeOverwrite (deepCopy $.root.Values.securityContext) (default dict $c.securityContext)) }}
{{- $containers = append $containers $copy }}
{{- end }}
{{- $_ := set $out $list $containers }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
The group's resourceClaims (dynamic resource allocation) as a YAML list of {name,
resourceClaimName | resourceClaimTemplateName, request}: each becomes an entry of the pod's
spec.resourceClaims and of the Ray container's resources.claims. The pod fields have this shape
from Kubernetes 1.31 on; older minors are refused.
call with: include "ray-platform.pod.resourceClaims" (dict "root" $ "group" $group "key" "rayCluster.head") | fromYamlArray
*/}}
{{- define "ray-platform.pod.resourceClaims" -}}
{{- $claims := default list .group.resourceClaims }}
{{- if and $claims (semverCompare "<1.31.0-0" .root.Capabilities.KubeVersion.Version) }}
{{- fail (printf "%s.resourceClaims needs Kubernetes 1.31 or newer (dynamic resource allocation with the pod's resourceClaims fields), but helm renders for %s." .key .root.Capabilities.KubeVersion.Version) }}
{{- end }}
{{- $names := list }}
{{- range $index, $claim := $claims }}
{{- if has (toString $claim.name) $names }}
{{- fail (printf "%s.resourceClaims[%d].name: %q is already the name of another claim of the group." $.key $index (toString $claim.name)) }}
{{- end }}
{{- $names = append $names (toString $claim.name) }}
{{- if eq (len (compact (list (toString (default "" $claim.resourceClaimName)) (toString (default "" $claim.resourceClaimTemplateName))))) 1 | not }}
{{- fail (printf "%s.resourceClaims[%d]: set exactly one of resourceClaimName (a claim all pods share) and resourceClaimTemplateName (one claim per pod)." $.key $index) }}
{{- end }}
{{- end }}
{{- range $list := list "initContainers" "sidecarContainers" }}
{{- range $index, $c := default list (index $.group $list) }}
{{- range $i, $ref := default list (default dict $c.resources).claims }}
{{- if not (has (toString $ref.name) $names) }}
{{- fail (printf "%s.%s[%d].resources.claims[%d].name: %q is not one of %s.resourceClaims." $.key $list $index $i (toString $ref.name) $.key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $i, $ref := default list (default dict .group.resources).claims }}
{{- if not (has (toString $ref.name) $names) }}
{{- fail (printf "%s.resources.claims[%d].name: %q is not one of %s.resourceClaims." $.key $i (toString $ref.name) $.key) }}
{{- end }}
{{- end }}
{{- toYaml $claims }}
{{- end }}

{{/*
"repository:tag" of a group: the group's image fields over the top-level image. A rayproject/ray
tag that starts with another Ray version than rayVersion is refused: KubeRay would manage the
cluster as a Ray it is not.
call with: include "ray-platform.pod.image" (dict "root" $ "group" $group)
*/}}
{{- define "ray-platform.pod.image" -}}
{{- $image := merge (deepCopy (default dict .group.image)) .root.Values.image }}
{{- $tagVersion := regexFind "^[0-9]+[.][0-9]+[.][0-9]+" (toString $image.tag) }}
{{- if and (contains "rayproject/ray" $image.repository) $tagVersion (ne $tagVersion (toString .root.Values.rayVersion)) }}
{{- fail (printf "image.tag %q (or a group's image.tag) carries Ray %s, but rayVersion is %q: set both to the same Ray version." $image.tag $tagVersion .root.Values.rayVersion) }}
{{- end }}
{{- printf "%s:%s" $image.repository $image.tag }}
{{- end }}

{{/*
The imagePullPolicy of a group: the group's over the top-level image's.
call with: include "ray-platform.pod.imagePullPolicy" (dict "root" $ "group" $group)
*/}}
{{- define "ray-platform.pod.imagePullPolicy" -}}
{{- (merge (deepCopy (default dict .group.image)) .root.Values.image).pullPolicy }}
{{- end }}

{{/*
Container resources of a Ray group: the group's resources, plus `gpus` as nvidia.com/gpu in
requests and limits (Kubernetes needs extended resources in both, with equal values), plus a
claims entry for each of the group's resourceClaims that resources.claims does not name already.
call with: include "ray-platform.pod.resources" (dict "group" $group "key" "rayCluster.workerGroups.gpu" "claims" $resourceClaims)
*/}}
{{- define "ray-platform.pod.resources" -}}
{{- $resources := deepCopy (default dict .group.resources) }}
{{- /* What the scheduler places by and what bounds a node's memory; Ray also sizes its object
store from the memory limit. A group added by an overlay has no defaults to inherit. */}}
{{- range $required := list (list "requests" "cpu") (list "requests" "memory") (list "limits" "memory") }}
{{- if not (hasKey (default dict (get $resources (first $required))) (last $required)) }}
{{- fail (printf "%s.resources.%s.%s is not set: every Ray container needs requests.cpu, requests.memory and limits.memory (the scheduler places pods by requests; Ray sizes its object store from the memory limit)." $.key (first $required) (last $required)) }}
{{- end }}
{{- end }}
{{- $gpus := int (default 0 .group.gpus) }}
{{- if gt $gpus 0 }}
{{- range $section := list "requests" "limits" }}
{{- $values := default dict (get $resources $section) }}
{{- if hasKey $values "nvidia.com/gpu" }}
{{- fail (printf "%s.resources.%s: nvidia.com/gpu is set while %s.gpus is %d; set the GPU count only in %s.gpus." $.key $section $.key $gpus $.key) }}
{{- end }}
{{- $_ := set $values "nvidia.com/gpu" $gpus }}
{{- $_ := set $resources $section $values }}
{{- end }}
{{- end }}
{{- $refs := default list $resources.claims }}
{{- $named := list }}
{{- range $refs }}{{ $named = append $named (toString .name) }}{{ end }}
{{- range $claim := default list .claims }}
{{- if not (has (toString $claim.name) $named) }}
{{- $ref := dict "name" $claim.name }}
{{- with $claim.request }}{{ $_ := set $ref "request" . }}{{ end }}
{{- $refs = append $refs $ref }}
{{- end }}
{{- end }}
{{- if $refs }}{{ $_ := set $resources "claims" $refs }}{{ end }}
{{- toYaml $resources }}
{{- end }}

{{/*
The /tmp/ray emptyDir volume (a YAML list, possibly empty).
call with: include "ray-platform.pod.tmpDirVolumes" .
*/}}
{{- define "ray-platform.pod.tmpDirVolumes" -}}
{{- if .Values.rayTmpDir.enabled }}
- name: ray-tmp
  {{- /* `with` skips 0 too: an emptyDir without a limit must still be an object, not null. */}}
  {{- with .Values.rayTmpDir.sizeLimit }}
  emptyDir:
    sizeLimit: {{ . }}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- else }}
[]
{{- end }}
{{- end }}

{{/*
Its mount at /tmp/ray (a YAML list, possibly empty).
call with: include "ray-platform.pod.tmpDirMounts" .
*/}}
{{- define "ray-platform.pod.tmpDirMounts" -}}
{{- if .Values.rayTmpDir.enabled }}
- name: ray-tmp
  mountPath: /tmp/ray
{{- else }}
[]
{{- end }}
{{- end }}

{{/*
Container ports of a Ray head (names as the KubeRay operator uses them).
call with: include "ray-platform.pod.headPorts" .
*/}}
{{- define "ray-platform.pod.headPorts" -}}
- name: gcs-server
  containerPort: 6379
- name: dashboard
  containerPort: 8265
- name: client
  containerPort: 10001
- name: metrics
  containerPort: 8080
{{- /* Served by the autoscaler and the dashboard on every head; declared so PodMonitors can name them. */}}
- name: as-metrics
  containerPort: 44217
- name: dash-metrics
  containerPort: 44227
{{- end }}

{{/*
Container ports of a Ray worker.
call with: include "ray-platform.pod.workerPorts" .
*/}}
{{- define "ray-platform.pod.workerPorts" -}}
- name: metrics
  containerPort: 8080
{{- end }}
