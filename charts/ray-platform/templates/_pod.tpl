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
             and an annotations map
call with: include "ray-platform.pod.template" (dict "root" $ "group" $group "key" "rayCluster.head" "nodeType" "head" "component" "raycluster" "ports" $ports "extra" $extra)
*/}}
{{- define "ray-platform.pod.template" -}}
{{- $root := .root }}
{{- $group := .group }}
{{- $podSecurityContext := mergeOverwrite (deepCopy $root.Values.podSecurityContext) (default dict $group.podSecurityContext) }}
{{- $securityContext := mergeOverwrite (deepCopy $root.Values.securityContext) (default dict $group.securityContext) }}
{{- $extra := default dict .extra -}}
metadata:
  labels:
    {{- include "ray-platform.labels.pod" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    ray-platform.io/node-type: {{ .nodeType }}
    {{- with .groupName }}
    ray-platform.io/group: {{ . }}
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
  {{- with $group.priorityClassName }}
  priorityClassName: {{ . }}
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
  containers:
    - name: ray-{{ .nodeType }}
      image: {{ include "ray-platform.pod.image" . | quote }}
      imagePullPolicy: {{ include "ray-platform.pod.imagePullPolicy" . }}
      {{- with .ports }}
      ports:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with concat (default list $extra.env) (default list $group.env) }}
      env:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $group.envFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      resources:
        {{- include "ray-platform.pod.resources" . | nindent 8 }}
      {{- with $securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- $mounts := concat (include "ray-platform.pod.tmpDirMounts" $root | fromYamlArray) (default list $extra.volumeMounts) (default list $group.volumeMounts) }}
      {{- with $mounts }}
      volumeMounts:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- $volumes := concat (include "ray-platform.pod.tmpDirVolumes" $root | fromYamlArray) (include "ray-platform.security.headVolumes" . | fromYamlArray) (default list $extra.volumes) (default list $group.volumes) }}
  {{- with $volumes }}
  volumes:
    {{- toYaml . | nindent 4 }}
  {{- end }}
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
requests and limits (Kubernetes needs extended resources in both, with equal values).
call with: include "ray-platform.pod.resources" (dict "group" $group "key" "rayCluster.workerGroups.gpu")
*/}}
{{- define "ray-platform.pod.resources" -}}
{{- $resources := deepCopy (default dict .group.resources) }}
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
