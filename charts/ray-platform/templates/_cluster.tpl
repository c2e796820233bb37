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
The values of a Ray cluster by its values path: "rayCluster", "stableDiffusion",
"rayServices.<key>.cluster" (with the defaults of "ray-platform.rayservice.clusterValues") or
"rayJobs.<key>.cluster" (with those of "ray-platform.rayjob.clusterValues"). Sets .out.values.
call with: include "ray-platform.cluster.values" (dict "root" $ "key" $clusterKey "out" $out)
*/}}
{{- define "ray-platform.cluster.values" -}}
{{- $parts := splitList "." .key }}
{{- if and (eq (index $parts 0) "rayServices") (eq (len $parts) 3) }}
{{- include "ray-platform.rayservice.clusterValues" (dict "root" .root "key" (index $parts 1) "out" .out) }}
{{- else if and (eq (index $parts 0) "rayJobs") (eq (len $parts) 3) }}
{{- /* A RayJob's own cluster with its defaults (_rayjob.tpl). */}}
{{- include "ray-platform.rayjob.clusterValues" (dict "root" .root "key" (index $parts 1) "out" .out) }}
{{- else }}
{{- $_ := set .out "values" (index .root.Values .key) }}
{{- end }}
{{- end }}

{{/*
The values of a cluster that the chart derives from rayCluster (rayServices.<key>.cluster,
rayJobs.<key>.cluster): the given head over rayCluster.head and the given autoscaler over
rayCluster.autoscaler (maps merge key by key, lists are replaced), except the head's `resources`,
which replace rayCluster.head's as a whole when given, so that a larger request never meets the
default's smaller limit; only the worker groups given; GCS fault tolerance off unless given.
Sets .out.values (no YAML round trip, so numbers stay numbers).
call with: include "ray-platform.cluster.derivedValues" (dict "root" $ "given" $clusterValues "out" $out)
*/}}
{{- define "ray-platform.cluster.derivedValues" -}}
{{- $given := deepCopy (default dict .given) }}
{{- $givenHead := default dict $given.head }}
{{- $head := mergeOverwrite (deepCopy .root.Values.rayCluster.head) $givenHead }}
{{- with $givenHead.resources }}{{ $_ := set $head "resources" . }}{{ end }}
{{- $autoscaler := mergeOverwrite (deepCopy .root.Values.rayCluster.autoscaler) (default dict $given.autoscaler) }}
{{- $gcsOff := dict "enabled" false "redisAddress" "" "existingSecret" "" "existingSecretPasswordKey" "password" "externalStorageNamespace" "" }}
{{- $gcs := mergeOverwrite $gcsOff (default dict $given.gcsFaultTolerance) }}
{{- $_ := set .out "values" (dict "head" $head "workerGroups" (default dict $given.workerGroups) "autoscaler" $autoscaler "gcsFaultTolerance" $gcs) }}
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
{{- $head := $cluster.head }}
{{- /* The head's chart env: the cluster's, then the monitoring env that lets the Ray dashboard
embed Grafana (_monitoring.tpl); the top-level and the head's own env replace its variables. */}}
{{- $headExtra := deepCopy (default dict .extra) }}
{{- with include "ray-platform.monitoring.headEnv" (dict "root" $root "head" $cluster.head) | fromYamlArray }}
{{- $_ := set $headExtra "env" (concat (default list $headExtra.env) .) }}
{{- end }}
{{- $headEnv := include "ray-platform.pod.env" (dict "root" $root "group" $head "key" (printf "%s.head" $key) "extra" $headExtra) | fromYamlArray }}
{{- include "ray-platform.cluster.checkGcsFaultTolerance" (dict "root" $root "cluster" $cluster "key" $key "headEnv" $headEnv) }}
{{- include "ray-platform.cluster.checkAutoscaler" (dict "root" $root "cluster" $cluster "key" $key "headEnv" $headEnv) }}
{{- /* autoscaler.version v1 as the head's RAY_enable_autoscaler_v2=false, after the check above
(which refuses a user's variable next to a version). Ray >= 2.48 started by KubeRay runs the v2
autoscaler unless that variable says otherwise; KubeRay 1.7 sets it to "false" itself for
autoscalerOptions.version v1, but 1.6 sets nothing (so v1 ran v2), and both refuse the field and
the variable together: the variable alone gives v1 on both. */}}
{{- $autoscalerValues := default dict $cluster.autoscaler }}
{{- if and $autoscalerValues.enabled (eq (toString $autoscalerValues.version) "v1") }}
{{- $_ := set $headExtra "env" (concat (default list $headExtra.env) (list (dict "name" "RAY_enable_autoscaler_v2" "value" "false"))) }}
{{- end }}
{{- include "ray-platform.cluster.checkRayGroup" (dict "group" $head "key" (printf "%s.head" $key)) -}}
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
{{- $headTemplate := include "ray-platform.pod.template" (dict "root" $root "group" $head "key" $headKey "nodeType" "head" "component" .component "extra" $headExtra "ports" (concat (include "ray-platform.pod.headPorts" $root | fromYamlArray) $extraPorts)) }}
{{- $refusals := include "ray-platform.podsecurity.rayPodRefusals" (dict "root" $root "template" $headTemplate "group" $head "key" $headKey "nodeType" "head" "clusterKey" $key "autoscaler" (default dict (fromYaml $autoscalerOptions))) | fromYamlArray }}
headGroupSpec:
  serviceType: {{ $cluster.head.serviceType }}
  {{- with include "ray-platform.cluster.headService" (dict "head" $head "key" $headKey) }}
  headService:
    {{- . | nindent 4 }}
  {{- end }}
  rayStartParams:
    {{- toYaml (default dict $cluster.head.rayStartParams) | nindent 4 }}
  {{- with include "ray-platform.cluster.rayGroupFields" $head }}
  {{- . | nindent 2 }}
  {{- end }}
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
  {{- include "ray-platform.cluster.checkRayGroup" (dict "group" $group "key" $groupKey) }}
  {{- include "ray-platform.cluster.checkWorkerGroup" (dict "root" $root "cluster" $cluster "group" $group "key" $groupKey "clusterKey" $key) }}
  {{- $workerTemplate := include "ray-platform.pod.template" (dict "root" $root "group" $group "key" $groupKey "nodeType" "worker" "component" $.component "groupName" $groupName "extra" $.extra "ports" (concat (include "ray-platform.pod.workerPorts" $root | fromYamlArray) $extraPorts)) }}
  {{- $refusals = concat $refusals (include "ray-platform.podsecurity.rayPodRefusals" (dict "root" $root "template" $workerTemplate "group" $group "key" $groupKey "nodeType" "worker" "clusterKey" $key) | fromYamlArray) }}
  - groupName: {{ $groupName | quote }}
    replicas: {{ hasKey $group "replicas" | ternary $group.replicas $group.minReplicas }}
    minReplicas: {{ $group.minReplicas }}
    maxReplicas: {{ $group.maxReplicas }}
    {{- if and (not (kindIs "invalid" $group.numOfHosts)) (ne (int $group.numOfHosts) 1) }}
    numOfHosts: {{ int $group.numOfHosts }}
    {{- end }}
    {{- if not (kindIs "invalid" $group.idleTimeoutSeconds) }}
    idleTimeoutSeconds: {{ int $group.idleTimeoutSeconds }}
    {{- end }}
    {{- if $group.suspend }}
    suspend: true
    {{- end }}
    {{- /* As the operator writes the group back when it adds its finalizer. Without it, that
    write changes the (atomic) workerGroupSpecs list, the operator becomes its owner, and the
    next Helm 4 (server-side apply) upgrade fails with a conflict on workerGroupSpecs. */}}
    scaleStrategy: {}
    rayStartParams:
      {{- toYaml (default dict $group.rayStartParams) | nindent 6 }}
    {{- with include "ray-platform.cluster.rayGroupFields" $group }}
    {{- . | nindent 4 }}
    {{- end }}
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
{{- /* v1 is the head's RAY_enable_autoscaler_v2=false ("ray-platform.cluster.spec"). */}}
{{- if eq (toString $autoscaler.version) "v2" }}
version: v2
{{- end }}
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
{{- if .existingSecretUsernameKey }}
redisUsername:
  valueFrom:
    secretKeyRef:
      name: {{ .existingSecret }}
      key: {{ .existingSecretUsernameKey }}
{{- else if .redisUsername }}
redisUsername:
  value: {{ .redisUsername | quote }}
{{- end }}
{{- with .externalStorageNamespace }}
externalStorageNamespace: {{ . | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Refuse GCS fault tolerance settings the KubeRay operator rejects at reconcile time: no Redis
address, the legacy ways of configuring Redis on the head next to gcsFaultToleranceOptions,
RAY_REDIS_ADDRESS without them, and a Redis username anywhere but gcsFaultToleranceOptions.
headEnv is the head's Ray container env as rendered (the top-level and the head's `env`).
call with: include "ray-platform.cluster.checkGcsFaultTolerance" (dict "root" $ "cluster" $clusterValues "key" "rayCluster" "headEnv" $headEnv)
*/}}
{{- define "ray-platform.cluster.checkGcsFaultTolerance" -}}
{{- $ft := .cluster.gcsFaultTolerance }}
{{- $head := .cluster.head }}
{{- $envKeys := dict }}
{{- range $var := default list $.root.Values.env }}{{ $_ := set $envKeys (toString $var.name) "env" }}{{ end }}
{{- range $var := default list $head.env }}{{ $_ := set $envKeys (toString $var.name) (printf "%s.head.env" $.key) }}{{ end }}
{{- $headEnvNames := list }}
{{- range default list .headEnv }}{{ $headEnvNames = append $headEnvNames (toString .name) }}{{ end }}
{{- if or (hasKey (default dict $head.rayStartParams) "redis-username") (has "REDIS_USERNAME" $headEnvNames) }}
{{- $where := ternary (printf "%s.head.rayStartParams.redis-username" .key) (printf "%s: REDIS_USERNAME" (get $envKeys "REDIS_USERNAME")) (hasKey (default dict $head.rayStartParams) "redis-username") }}
{{- fail (printf "%s: KubeRay refuses a Redis username set on the head; set %s.gcsFaultTolerance.redisUsername (or existingSecretUsernameKey) instead." $where .key) }}
{{- end }}
{{- if $ft.enabled }}
{{- if not $ft.redisAddress }}
{{- fail (printf "%s.gcsFaultTolerance.redisAddress is required when %s.gcsFaultTolerance.enabled is true (host:port of an external Redis)." .key .key) }}
{{- end }}
{{- if and $ft.redisUsername $ft.existingSecretUsernameKey }}
{{- fail (printf "%s.gcsFaultTolerance.redisUsername and existingSecretUsernameKey are both set; keep one (the username as text, or its key in existingSecret)." .key) }}
{{- end }}
{{- if and $ft.existingSecretUsernameKey (not $ft.existingSecret) }}
{{- fail (printf "%s.gcsFaultTolerance.existingSecretUsernameKey needs %s.gcsFaultTolerance.existingSecret (the Secret that holds the username)." .key .key) }}
{{- end }}
{{- if hasKey (default dict $head.rayStartParams) "redis-password" }}
{{- fail (printf "%s.head.rayStartParams.redis-password conflicts with %s.gcsFaultTolerance; put the password in a Secret and set %s.gcsFaultTolerance.existingSecret." .key .key .key) }}
{{- end }}
{{- range $name := list "REDIS_PASSWORD" "RAY_REDIS_ADDRESS" }}
{{- if has $name $headEnvNames }}
{{- fail (printf "%s: %s conflicts with %s.gcsFaultTolerance; the operator rejects both together. Use %s.gcsFaultTolerance.redisAddress and existingSecret." (get $envKeys $name) $name $.key $.key) }}
{{- end }}
{{- end }}
{{- if hasKey (default dict .cluster.annotations) "ray.io/ft-enabled" }}
{{- fail (printf "%s.annotations: the legacy ray.io/ft-enabled annotation conflicts with %s.gcsFaultTolerance; remove the annotation." .key .key) }}
{{- end }}
{{- else if has "RAY_REDIS_ADDRESS" $headEnvNames }}
{{- fail (printf "%s: RAY_REDIS_ADDRESS turns on GCS fault tolerance behind KubeRay's back, which the operator rejects; set %s.gcsFaultTolerance.enabled: true and redisAddress instead." (get $envKeys "RAY_REDIS_ADDRESS") .key) }}
{{- end }}
{{- end }}

{{/*
Refuse autoscaler settings the KubeRay operator rejects: autoscaler.version together with the
RAY_enable_autoscaler_v2 env var on the head, and that variable turned on without the autoscaler.
call with: include "ray-platform.cluster.checkAutoscaler" (dict "root" $ "cluster" $clusterValues "key" "rayCluster" "headEnv" $headEnv)
*/}}
{{- define "ray-platform.cluster.checkAutoscaler" -}}
{{- $autoscaler := default dict .cluster.autoscaler }}
{{- range $var := default list .headEnv }}
{{- if eq (toString $var.name) "RAY_enable_autoscaler_v2" }}
{{- if and $autoscaler.enabled $autoscaler.version }}
{{- fail (printf "%s.autoscaler.version and the env var RAY_enable_autoscaler_v2 of the head are both set; KubeRay accepts only one: remove the variable and keep %s.autoscaler.version." $.key $.key) }}
{{- end }}
{{- if and (not $autoscaler.enabled) (has (toString $var.value) (list "1" "true")) }}
{{- fail (printf "RAY_enable_autoscaler_v2 is turned on for the %s head while %s.autoscaler.enabled is false; KubeRay rejects that: enable the autoscaler (and set %s.autoscaler.version: v2) or remove the variable." $.key $.key $.key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Refuse Ray group settings KubeRay rejects: rayResources together with resources in
rayStartParams (num-cpus, num-gpus, memory, resources).
call with: include "ray-platform.cluster.checkRayGroup" (dict "group" $group "key" "rayCluster.head")
*/}}
{{- define "ray-platform.cluster.checkRayGroup" -}}
{{- if .group.rayResources }}
{{- range $param := list "num-cpus" "num-gpus" "memory" "resources" }}
{{- if hasKey (default dict $.group.rayStartParams) $param }}
{{- fail (printf "%s.rayResources and %s.rayStartParams.%s are both set; KubeRay accepts Ray resources in one place only: move it into rayResources (num-cpus as CPU, num-gpus as GPU, memory as memory) and set %s.rayStartParams.%s: null." $.key $.key $param $.key $param) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Refuse worker group settings KubeRay rejects: a per-group idleTimeoutSeconds without autoscaler
v2, and a suspended group while the autoscaler runs or (with this release's operator) without
the operator's RayJobDeletionPolicy feature gate.
call with: include "ray-platform.cluster.checkWorkerGroup" (dict "root" $ "cluster" $clusterValues "group" $group "key" "rayCluster.workerGroups.<name>" "clusterKey" "rayCluster")
*/}}
{{- define "ray-platform.cluster.checkWorkerGroup" -}}
{{- $autoscaler := default dict .cluster.autoscaler }}
{{- if not (kindIs "invalid" .group.idleTimeoutSeconds) }}
{{- if not (and $autoscaler.enabled (eq (toString $autoscaler.version) "v2")) }}
{{- fail (printf "%s.idleTimeoutSeconds needs the autoscaler v2 (%s.autoscaler.enabled: true and %s.autoscaler.version: v2); KubeRay rejects per-group idle timeouts otherwise. With v1, set %s.autoscaler.idleTimeoutSeconds for every group." .key .clusterKey .clusterKey .clusterKey) }}
{{- end }}
{{- end }}
{{- if .group.suspend }}
{{- if $autoscaler.enabled }}
{{- fail (printf "%s.suspend: KubeRay cannot suspend a worker group while the autoscaler runs; set %s.autoscaler.enabled: false (or scale the group with minReplicas/maxReplicas)." .key .clusterKey) }}
{{- end }}
{{- $operator := default dict (index .root.Values "kuberay-operator") }}
{{- if or (not (hasKey $operator "enabled")) $operator.enabled }}
{{- $gate := false }}
{{- range default list $operator.featureGates }}
{{- if and (eq (toString .name) "RayJobDeletionPolicy") .enabled }}{{ $gate = true }}{{ end }}
{{- end }}
{{- if not $gate }}
{{- fail (printf "%s.suspend needs the operator's RayJobDeletionPolicy feature gate; KubeRay rejects suspended groups without it. Add {name: RayJobDeletionPolicy, enabled: true} to kuberay-operator.featureGates." .key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The Ray-level fields of a group (headGroupSpec / workerGroupSpecs[]): its Ray node labels
(rayLabels as `labels`) and logical resources (rayResources as `resources`); empty when unset.
call with: include "ray-platform.cluster.rayGroupFields" $group
*/}}
{{- define "ray-platform.cluster.rayGroupFields" -}}
{{- with .rayLabels }}
labels:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .rayResources }}
resources:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
headGroupSpec.headService of a cluster: the metadata of head.service (annotations, labels), empty
when neither is set. KubeRay builds the head Service from it: its own labels and selector win,
the ports and the type (headGroupSpec.serviceType) are added. A user-provided headService is not
made headless by the operator as its default one is, so a ClusterIP head keeps clusterIP None and
publishNotReadyAddresses here, as without it. Label keys KubeRay owns are refused (it would
silently replace them).
call with: include "ray-platform.cluster.headService" (dict "head" $headValues "key" "rayCluster.head")
*/}}
{{- define "ray-platform.cluster.headService" -}}
{{- $service := default dict .head.service }}
{{- if or $service.annotations $service.labels }}
{{- range $label, $_ := default dict $service.labels }}
{{- if or (hasPrefix "ray.io/" $label) (has $label (list "app.kubernetes.io/name" "app.kubernetes.io/created-by")) }}
{{- fail (printf "%s.service.labels[%s]: KubeRay sets this label on the head Service itself (and drops yours); use another key." $.key $label) }}
{{- end }}
{{- end -}}
metadata:
  {{- with $service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $service.labels }}
  labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- if has (toString .head.serviceType) (list "" "ClusterIP") }}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
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
