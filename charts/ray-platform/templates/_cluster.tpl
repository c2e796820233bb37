{{/*
The Ray clusters of the release and the spec builder they share: the RayCluster and the
RayService's rayClusterConfig both come from "ray-platform.cluster.spec", whose head and worker
pods come from "ray-platform.pod.template" (_pod.tpl).
*/}}

{{/*
The Ray clusters of the release, as a YAML list of {key (values path of the cluster's values:
"rayCluster", "stableDiffusion", "rayServices.<key>.cluster"; "ray-platform.cluster.values" reads
them), component, name (RayCluster / RayService name), serve (has a Serve port), serveExposed (its
Serve port has an enabled Ingress / HTTPRoute)}.
call with: include "ray-platform.cluster.list" . | fromYamlArray
*/}}
{{- define "ray-platform.cluster.list" -}}
{{- $out := list }}
{{- if .Values.rayCluster.enabled }}
{{- $out = append $out (dict "key" "rayCluster" "component" "raycluster" "name" (include "ray-platform.names.rayCluster" .) "serve" false) }}
{{- end }}
{{- if .Values.stableDiffusion.enabled }}
{{- $out = append $out (dict "key" "stableDiffusion" "component" "stable-diffusion" "name" (include "ray-platform.names.rayService" .) "serve" true "serveExposed" .Values.ingress.stableDiffusion.enabled) }}
{{- end }}
{{- range $key, $service := .Values.rayServices }}
{{- if include "ray-platform.rayservice.enabled" $service }}
{{- $out = append $out (dict "key" (printf "rayServices.%s.cluster" $key) "component" (include "ray-platform.rayservice.component" $key) "name" (include "ray-platform.rayservice.name" (dict "root" $ "key" $key)) "serve" true "serveExposed" (dig "enabled" false (default dict $service.ingress))) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
The spec of a Ray cluster, shared by the RayCluster and the RayService's rayClusterConfig. The dict:
  root       the chart's root context ($)
  cluster    the cluster's values (head, workerGroups, autoscaler, gcsFaultTolerance)
  key        the cluster's values path, for error messages ("rayCluster")
  component  app.kubernetes.io/component of its pods
  extra      optional {env, volumes, volumeMounts} the chart adds to every pod
  extraPorts optional ports added to head and workers (a RayService's serve port)
call with: include "ray-platform.cluster.spec" (dict "root" $ "cluster" .Values.rayCluster "key" "rayCluster" "component" "raycluster")
*/}}
{{- define "ray-platform.cluster.spec" -}}
{{- $root := .root }}
{{- $cluster := .cluster }}
{{- $key := .key }}
{{- $extraPorts := default list .extraPorts }}
{{- include "ray-platform.cluster.checkGcsFaultTolerance" (dict "root" $root "cluster" $cluster "key" $key) -}}
{{- /* The head's env, after the monitoring env that lets the Ray dashboard embed Grafana (_monitoring.tpl). */}}
{{- $head := $cluster.head }}
{{- with include "ray-platform.monitoring.headEnv" (dict "root" $root "head" $cluster.head) | fromYamlArray }}
{{- $head = set (deepCopy $cluster.head) "env" (concat . (default list $cluster.head.env)) }}
{{- end -}}
rayVersion: {{ $root.Values.rayVersion | quote }}
authOptions:
  {{- include "ray-platform.cluster.authOptions" $root | nindent 2 }}
{{- with (include "ray-platform.cluster.gcsFaultToleranceOptions" (default dict $cluster.gcsFaultTolerance)) }}
gcsFaultToleranceOptions:
  {{- . | nindent 2 }}
{{- end }}
{{- /* The sidecar's options, kept for the head pod's Pod Security check (_podsecurity.tpl). */}}
{{- $autoscalerOptions := "" }}
{{- with $cluster.autoscaler }}
enableInTreeAutoscaling: {{ .enabled }}
{{- if .enabled }}
{{- $autoscalerOptions = include "ray-platform.cluster.autoscalerOptions" (dict "root" $root "autoscaler" .) }}
autoscalerOptions:
  {{- $autoscalerOptions | nindent 2 }}
{{- end }}
{{- end }}
{{- $headKey := printf "%s.head" $key }}
{{- $headTemplate := include "ray-platform.pod.template" (dict "root" $root "group" $head "key" $headKey "nodeType" "head" "component" .component "extra" .extra "ports" (concat (include "ray-platform.pod.headPorts" $root | fromYamlArray) $extraPorts)) }}
{{- $refusals := include "ray-platform.podsecurity.rayPodRefusals" (dict "root" $root "template" $headTemplate "group" $head "key" $headKey "nodeType" "head" "clusterKey" $key "autoscaler" (default dict (fromYaml $autoscalerOptions))) | fromYamlArray }}
headGroupSpec:
  serviceType: {{ $cluster.head.serviceType }}
  rayStartParams:
    {{- toYaml (default dict $cluster.head.rayStartParams) | nindent 4 }}
  template:
    {{- $headTemplate | nindent 4 }}
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
  {{- include "ray-platform.cluster.checkReplicas" (dict "group" $group "key" $groupKey) }}
  {{- $workerTemplate := include "ray-platform.pod.template" (dict "root" $root "group" $group "key" $groupKey "nodeType" "worker" "component" $.component "groupName" $groupName "extra" $.extra "ports" (concat (include "ray-platform.pod.workerPorts" $root | fromYamlArray) $extraPorts)) }}
  {{- $refusals = concat $refusals (include "ray-platform.podsecurity.rayPodRefusals" (dict "root" $root "template" $workerTemplate "group" $group "key" $groupKey "nodeType" "worker" "clusterKey" $key) | fromYamlArray) }}
  - groupName: {{ $groupName }}
    replicas: {{ hasKey $group "replicas" | ternary $group.replicas $group.minReplicas }}
    minReplicas: {{ $group.minReplicas }}
    maxReplicas: {{ $group.maxReplicas }}
    {{- /* As the operator writes the group back when it adds its finalizer. Without it, that
    write changes the (atomic) workerGroupSpecs list, the operator becomes its owner, and the
    next Helm 4 (server-side apply) upgrade fails with a conflict on workerGroupSpecs. */}}
    scaleStrategy: {}
    rayStartParams:
      {{- toYaml (default dict $group.rayStartParams) | nindent 6 }}
    template:
      {{- $workerTemplate | nindent 6 }}
  {{- end }}
{{- end }}
{{- /* Every pod of this cluster against podSecurity.level, all refusals in one message. */}}
{{- include "ray-platform.podsecurity.fail" (dict "refusals" $refusals) }}
{{- end }}

{{/*
spec.authOptions of a Ray cluster. Token auth needs Ray >= 2.52.0 (the operator rejects it
otherwise, at reconcile time); refusing here saves a trip to the operator's logs.
call with: include "ray-platform.cluster.authOptions" .
*/}}
{{- define "ray-platform.cluster.authOptions" -}}
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
spec.autoscalerOptions of a Ray cluster. The autoscaler sidecar gets the chart's restricted
securityContext like every other container (and the head pod's Pod Security check judges it).
call with: include "ray-platform.cluster.autoscalerOptions" (dict "root" $ "autoscaler" $values)
*/}}
{{- define "ray-platform.cluster.autoscalerOptions" -}}
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
  {{- include "ray-platform.security.autoscalerVolumeMounts" . | nindent 2 }}
{{- end }}

{{/*
spec.gcsFaultToleranceOptions of a Ray cluster (empty when GCS fault tolerance is off).
call with: include "ray-platform.cluster.gcsFaultToleranceOptions" $clusterValues.gcsFaultTolerance
*/}}
{{- define "ray-platform.cluster.gcsFaultToleranceOptions" -}}
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
call with: include "ray-platform.cluster.checkGcsFaultTolerance" (dict "root" $ "cluster" $clusterValues "key" "rayCluster")
*/}}
{{- define "ray-platform.cluster.checkGcsFaultTolerance" -}}
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
Validate a worker group's replica counts (JSON Schema cannot compare two keys).
call with: include "ray-platform.cluster.checkReplicas" (dict "group" $group "key" "rayCluster.workerGroups.<name>")
*/}}
{{- define "ray-platform.cluster.checkReplicas" -}}
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
