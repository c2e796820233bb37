{{/*
Shared pieces of the chart. The Ray pod template for the head and every worker group, of every
Ray cluster the chart defines, comes from "ray-platform.rayPodTemplate" below: security defaults,
labels, volumes and scheduling are written once.
*/}}

{{- define "ray-platform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Resource name prefix: <release>-<chart>, or the release name when it already contains the chart
name. Not truncated: objects with tighter limits check their own length and say which key to set.
*/}}
{{- define "ray-platform.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trimSuffix "-" }}
{{- else }}
{{- $name := include "ray-platform.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ray-platform.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that identify the release's objects; stable across chart versions. */}}
{{- define "ray-platform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ray-platform.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/* Labels for top-level objects. */}}
{{- define "ray-platform.labels" -}}
helm.sh/chart: {{ include "ray-platform.chart" . }}
{{ include "ray-platform.podLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/*
Labels for pod templates. Without helm.sh/chart and app.kubernetes.io/version on purpose: with
upgradeStrategy Recreate, any pod template change recreates the Ray pods, and a chart version bump
alone must not restart a running cluster.
*/}}
{{- define "ray-platform.podLabels" -}}
{{ include "ray-platform.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ray-platform
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Fail unless a generated object name is a DNS-1035 label of at most `max` characters.
Call with (dict "name" $name "max" 53 "kind" "RayCluster" "key" "rayCluster.name").
*/}}
{{- define "ray-platform.checkName" -}}
{{- if gt (len .name) (int .max) }}
{{- fail (printf "%s: the %s name %q is %d characters; KubeRay allows at most %d. Set %s or fullnameOverride to a shorter name." .key .kind .name (len .name) (int .max) .key) }}
{{- end }}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" .name) }}
{{- fail (printf "%s: the %s name %q is not a DNS-1035 label (lower-case letters, digits and '-', starting with a letter). Set %s or fullnameOverride." .key .kind .name .key) }}
{{- end }}
{{- end }}

{{/* "repository:tag" of a group: the group's image fields over the top-level image. */}}
{{- define "ray-platform.image" -}}
{{- $image := merge (deepCopy (default dict .group.image)) .root.Values.image }}
{{- printf "%s:%s" $image.repository $image.tag }}
{{- end }}

{{- define "ray-platform.imagePullPolicy" -}}
{{- (merge (deepCopy (default dict .group.image)) .root.Values.image).pullPolicy }}
{{- end }}

{{/*
Container resources of a Ray group: the group's resources, plus `gpus` as nvidia.com/gpu in
requests and limits (Kubernetes needs extended resources in both, with equal values).
*/}}
{{- define "ray-platform.rayResources" -}}
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
Validate a worker group's replica counts (JSON Schema cannot compare two keys).
Call with (dict "group" $group "key" "rayCluster.workerGroups.<name>").
*/}}
{{- define "ray-platform.checkReplicas" -}}
{{- $min := int .group.minReplicas }}
{{- $max := int .group.maxReplicas }}
{{- if gt $min $max }}
{{- fail (printf "%s.minReplicas (%d) is greater than %s.maxReplicas (%d); the KubeRay operator rejects such a group." .key $min .key $max) }}
{{- end }}
{{- if hasKey .group "replicas" }}
{{- $replicas := int .group.replicas }}
{{- if or (lt $replicas $min) (gt $replicas $max) }}
{{- fail (printf "%s.replicas (%d) must lie between %s.minReplicas (%d) and %s.maxReplicas (%d)." .key $replicas .key $min .key $max) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The pod template of one Ray node group. Call with a dict:
  root       the chart's root context ($)
  group      the group's values (head or a worker group)
  key        the group's values path, for error messages ("rayCluster.head")
  nodeType   "head" or "worker"
  component  app.kubernetes.io/component of the pods ("raycluster")
  groupName  worker group name (workers only)
  ports      list of {name, containerPort}
  extra      what the chart adds to every pod of this cluster: {env, volumes, volumeMounts} lists
             and an annotations map
*/}}
{{- define "ray-platform.rayPodTemplate" -}}
{{- $root := .root }}
{{- $group := .group }}
{{- $podSecurityContext := mergeOverwrite (deepCopy $root.Values.podSecurityContext) (default dict $group.podSecurityContext) }}
{{- $securityContext := mergeOverwrite (deepCopy $root.Values.securityContext) (default dict $group.securityContext) }}
{{- $extra := default dict .extra -}}
metadata:
  labels:
    {{- include "ray-platform.podLabels" $root | nindent 4 }}
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
  {{- include "ray-platform.sec.podIdentity" . | nindent 2 }}
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
      image: {{ include "ray-platform.image" . | quote }}
      imagePullPolicy: {{ include "ray-platform.imagePullPolicy" . }}
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
        {{- include "ray-platform.rayResources" . | nindent 8 }}
      {{- with $securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- $mounts := concat (include "ray-platform.rayTmpDirMounts" $root | fromYamlArray) (default list $extra.volumeMounts) (default list $group.volumeMounts) }}
      {{- with $mounts }}
      volumeMounts:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- $volumes := concat (include "ray-platform.rayTmpDirVolumes" $root | fromYamlArray) (include "ray-platform.sec.headVolumes" . | fromYamlArray) (default list $extra.volumes) (default list $group.volumes) }}
  {{- with $volumes }}
  volumes:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* The /tmp/ray emptyDir volume (a YAML list, possibly empty). */}}
{{- define "ray-platform.rayTmpDirVolumes" -}}
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

{{- define "ray-platform.rayTmpDirMounts" -}}
{{- if .Values.rayTmpDir.enabled }}
- name: ray-tmp
  mountPath: /tmp/ray
{{- else }}
[]
{{- end }}
{{- end }}

{{/* Container ports of a Ray head (names as the KubeRay operator uses them). */}}
{{- define "ray-platform.headPorts" -}}
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

{{- define "ray-platform.workerPorts" -}}
- name: metrics
  containerPort: 8080
{{- end }}

{{/*
spec.authOptions of a Ray cluster. Token auth needs Ray >= 2.52.0 (the operator rejects it
otherwise, at reconcile time); refusing here saves a trip to the operator's logs.
*/}}
{{- define "ray-platform.authOptions" -}}
{{- $auth := .Values.auth }}
{{- if eq $auth.mode "token" }}
{{- if not (semverCompare ">=2.52.0-0" .Values.rayVersion) }}
{{- fail (printf "auth.mode: token authentication needs rayVersion >= 2.52.0, but rayVersion is %q. Use a newer Ray image (image.tag and rayVersion) or set auth.mode: disabled (only behind other authentication)." .Values.rayVersion) }}
{{- end }}
{{- end -}}
mode: {{ $auth.mode }}
{{- if and (eq $auth.mode "token") $auth.existingSecret }}
secretName: {{ $auth.existingSecret }}
{{- end }}
{{- end }}

{{/*
spec.autoscalerOptions of a Ray cluster. Call with (dict "root" $ "autoscaler" $values).
The autoscaler sidecar gets the chart's restricted securityContext like every other container.
*/}}
{{- define "ray-platform.autoscalerOptions" -}}
{{- $autoscaler := .autoscaler }}
{{- $securityContext := mergeOverwrite (deepCopy .root.Values.securityContext) (default dict $autoscaler.securityContext) -}}
upscalingMode: {{ $autoscaler.upscalingMode }}
idleTimeoutSeconds: {{ $autoscaler.idleTimeoutSeconds }}
imagePullPolicy: {{ .root.Values.image.pullPolicy }}
{{- with $autoscaler.resources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $securityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $autoscaler.env }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $autoscaler.envFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- /* The autoscaler's own API token (the pods mount none automatically; _security.tpl). */}}
volumeMounts:
  {{- include "ray-platform.sec.autoscalerVolumeMounts" . | nindent 2 }}
{{- end }}

{{/* spec.gcsFaultToleranceOptions of a Ray cluster (empty when GCS fault tolerance is off). */}}
{{- define "ray-platform.gcsFaultToleranceOptions" -}}
{{- if .enabled }}
redisAddress: {{ .redisAddress | quote }}
{{- with .existingSecret }}
redisPassword:
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.existingSecretPasswordKey }}
{{- end }}
{{- with .externalStorageNamespace }}
externalStorageNamespace: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Refuse GCS fault tolerance settings the KubeRay operator rejects at reconcile time: no Redis
address, or the legacy ways of configuring Redis on the head next to gcsFaultToleranceOptions.
Call with (dict "root" $ "cluster" $clusterValues "key" "rayCluster").
*/}}
{{- define "ray-platform.checkGcsFaultTolerance" -}}
{{- $ft := .cluster.gcsFaultTolerance }}
{{- if $ft.enabled }}
{{- if not $ft.redisAddress }}
{{- fail (printf "%s.gcsFaultTolerance.redisAddress is required when %s.gcsFaultTolerance.enabled is true (host:port of an external Redis)." .key .key) }}
{{- end }}
{{- $head := .cluster.head }}
{{- if hasKey (default dict $head.rayStartParams) "redis-password" }}
{{- fail (printf "%s.head.rayStartParams.redis-password conflicts with %s.gcsFaultTolerance; put the password in a Secret and set %s.gcsFaultTolerance.existingSecret." .key .key .key) }}
{{- end }}
{{- range $env := default list $head.env }}
{{- if has $env.name (list "REDIS_PASSWORD" "RAY_REDIS_ADDRESS") }}
{{- fail (printf "%s.head.env: %s conflicts with %s.gcsFaultTolerance; the operator rejects both together. Use %s.gcsFaultTolerance.redisAddress and existingSecret." $.key $env.name $.key $.key) }}
{{- end }}
{{- end }}
{{- if hasKey (default dict .cluster.annotations) "ray.io/ft-enabled" }}
{{- fail (printf "%s.annotations: the legacy ray.io/ft-enabled annotation conflicts with %s.gcsFaultTolerance; remove the annotation." .key .key) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The spec of a Ray cluster, shared by the RayCluster and the RayService's rayClusterConfig.
Call with a dict:
  root       the chart's root context ($)
  cluster    the cluster's values (head, workerGroups, autoscaler, gcsFaultTolerance)
  key        the cluster's values path, for error messages ("rayCluster")
  component  app.kubernetes.io/component of its pods
  extra      optional {env, volumes, volumeMounts} the chart adds to every pod
  extraPorts optional ports added to head and workers (a RayService's serve port)
*/}}
{{- define "ray-platform.rayClusterSpec" -}}
{{- $root := .root }}
{{- $cluster := .cluster }}
{{- $key := .key }}
{{- $extraPorts := default list .extraPorts }}
{{- include "ray-platform.checkGcsFaultTolerance" (dict "root" $root "cluster" $cluster "key" $key) -}}
{{- /* The head's env, after the monitoring env that lets the Ray dashboard embed Grafana (_monitoring.tpl). */}}
{{- $head := $cluster.head }}
{{- with include "ray-platform.monitoring.headEnv" (dict "root" $root "head" $cluster.head) | fromYamlArray }}
{{- $head = set (deepCopy $cluster.head) "env" (concat . (default list $cluster.head.env)) }}
{{- end -}}
rayVersion: {{ $root.Values.rayVersion | quote }}
authOptions:
  {{- include "ray-platform.authOptions" $root | nindent 2 }}
{{- with (include "ray-platform.gcsFaultToleranceOptions" (default dict $cluster.gcsFaultTolerance)) }}
gcsFaultToleranceOptions:
  {{- . | nindent 2 }}
{{- end }}
{{- with $cluster.autoscaler }}
enableInTreeAutoscaling: {{ .enabled }}
{{- if .enabled }}
autoscalerOptions:
  {{- include "ray-platform.autoscalerOptions" (dict "root" $root "autoscaler" .) | nindent 2 }}
{{- end }}
{{- end }}
headGroupSpec:
  serviceType: {{ $cluster.head.serviceType }}
  rayStartParams:
    {{- toYaml (default dict $cluster.head.rayStartParams) | nindent 4 }}
  template:
    {{- include "ray-platform.rayPodTemplate" (dict "root" $root "group" $head "key" (printf "%s.head" $key) "nodeType" "head" "component" .component "extra" .extra "ports" (concat (include "ray-platform.headPorts" $root | fromYamlArray) $extraPorts)) | nindent 4 }}
{{- $groupNames := list }}
{{- range $groupName, $group := $cluster.workerGroups }}
{{- /* A group is enabled unless it says otherwise: an overlay adding a group need not say so. */}}
{{- if or (not (hasKey $group "enabled")) $group.enabled }}
{{- $groupNames = append $groupNames $groupName }}
{{- end }}
{{- end }}
{{- if not $groupNames }}
workerGroupSpecs: []
{{- else }}
workerGroupSpecs:
  {{- range $groupName := $groupNames }}
  {{- $group := get $cluster.workerGroups $groupName }}
  {{- $groupKey := printf "%s.workerGroups.%s" $key $groupName }}
  {{- include "ray-platform.checkReplicas" (dict "group" $group "key" $groupKey) }}
  - groupName: {{ $groupName }}
    replicas: {{ hasKey $group "replicas" | ternary $group.replicas $group.minReplicas }}
    minReplicas: {{ $group.minReplicas }}
    maxReplicas: {{ $group.maxReplicas }}
    rayStartParams:
      {{- toYaml (default dict $group.rayStartParams) | nindent 6 }}
    template:
      {{- include "ray-platform.rayPodTemplate" (dict "root" $root "group" $group "key" $groupKey "nodeType" "worker" "component" $.component "groupName" $groupName "extra" $.extra "ports" (concat (include "ray-platform.workerPorts" $root | fromYamlArray) $extraPorts)) | nindent 6 }}
  {{- end }}
{{- end }}
{{- end }}
