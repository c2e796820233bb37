{{/*
RayJobs and RayCronJobs from rayJobs.<key> (rayjob.yaml, raycronjob.yaml): the list of jobs, the
RayJob spec both kinds share (a RayCronJob's jobTemplate is a RayJob spec), the restricted
submitter pod, and the refusals of what the KubeRay operator would reject. A job's own cluster
comes from "ray-platform.cluster.spec" (_cluster.tpl), like the RayCluster's.
*/}}

{{/*
The enabled jobs, as a YAML list of {key, name (object name), cron (has a schedule), own (has a
cluster of its own), component (app.kubernetes.io/component of its cluster's pods), mode}.
call with: include "ray-platform.rayjob.list" . | fromYamlArray
*/}}
{{- define "ray-platform.rayjob.list" -}}
{{- $out := list }}
{{- $fullname := include "ray-platform.names.fullname" . }}
{{- range $key, $job := .Values.rayJobs }}
{{- if or (not (hasKey $job "enabled")) $job.enabled }}
{{- $out = append $out (dict "key" $key "name" (default (printf "%s-%s" $fullname $key) $job.name) "cron" (not (empty $job.schedule)) "own" (kindIs "map" $job.cluster) "component" (printf "rayjob-%s" $key) "mode" (default "K8sJobMode" $job.submissionMode)) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
The jobs' own Ray clusters, in the shape of "ray-platform.cluster.list" ({key (values path),
component, name (the RayJob / RayCronJob name; the operator adds a suffix per cluster), serve}),
for the NetworkPolicies.
call with: include "ray-platform.rayjob.clusters" . | fromYamlArray
*/}}
{{- define "ray-platform.rayjob.clusters" -}}
{{- $out := list }}
{{- range $job := include "ray-platform.rayjob.list" . | fromYamlArray }}
{{- if $job.own }}
{{- $out = append $out (dict "key" (printf "rayJobs.%s.cluster" $job.key) "component" $job.component "name" $job.name "serve" false) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
Labels of a job's submitter pods besides the chart's pod labels (with labels.selector, they are
what a NetworkPolicy lets reach the dashboard).
call with: include "ray-platform.rayjob.submitterLabels" "nightly"
*/}}
{{- define "ray-platform.rayjob.submitterLabels" -}}
app.kubernetes.io/component: rayjob-submitter
ray-platform.io/rayjob: {{ . }}
{{- end }}

{{/*
The spec of a RayJob (also a RayCronJob's jobTemplate). The dict:
  root  the chart's root context ($)
  job   an entry of "ray-platform.rayjob.list"
call with: include "ray-platform.rayjob.spec" (dict "root" $ "job" $job)
*/}}
{{- define "ray-platform.rayjob.spec" -}}
{{- $root := .root }}
{{- $job := .job }}
{{- $values := index $root.Values.rayJobs $job.key }}
{{- $key := printf "rayJobs.%s" $job.key -}}
entrypoint: {{ toJson $values.entrypoint }}
submissionMode: {{ $job.mode }}
{{- with $values.runtimeEnv }}
runtimeEnvYAML: |
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.metadata }}
metadata:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- range $field := list "entrypointNumCpus" "entrypointNumGpus" }}
{{- if not (kindIs "invalid" (index $values $field)) }}
{{ $field }}: {{ index $values $field }}
{{- end }}
{{- end }}
{{- with $values.entrypointResources }}
entrypointResources: {{ toJson . | quote }}
{{- end }}
{{- range $field := list "activeDeadlineSeconds" "preRunningDeadlineSeconds" "backoffLimit" }}
{{- if not (kindIs "invalid" (index $values $field)) }}
{{ $field }}: {{ int64 (index $values $field) }}
{{- end }}
{{- end }}
{{- if $job.own }}
shutdownAfterJobFinishes: {{ ternary true $values.shutdownAfterJobFinishes (kindIs "invalid" $values.shutdownAfterJobFinishes) }}
{{- if not (kindIs "invalid" $values.ttlSecondsAfterFinished) }}
ttlSecondsAfterFinished: {{ int64 $values.ttlSecondsAfterFinished }}
{{- end }}
{{- $cluster := dict }}
{{- include "ray-platform.rayjob.clusterValues" (dict "root" $root "key" $job.key "out" $cluster) }}
rayClusterSpec:
  {{- include "ray-platform.cluster.spec" (dict "root" $root "cluster" $cluster.values "key" (printf "%s.cluster" $key) "component" $job.component) | nindent 2 }}
{{- else }}
clusterSelector:
  ray.io/cluster: {{ include "ray-platform.names.rayCluster" $root }}
{{- end }}
{{- if eq $job.mode "K8sJobMode" }}
{{- $submitter := default dict $values.submitter }}
{{- if not (kindIs "invalid" $submitter.backoffLimit) }}
submitterConfig:
  backoffLimit: {{ int64 $submitter.backoffLimit }}
{{- end }}
submitterPodTemplate:
  {{- include "ray-platform.rayjob.submitterTemplate" (dict "root" $root "job" $job "submitter" $submitter) | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The cluster values of rayJobs.<key>.cluster: "ray-platform.cluster.derivedValues" of it (the job's
schema has no gcsFaultTolerance: a job's cluster lives as long as the job). Sets .out.values.
call with: include "ray-platform.rayjob.clusterValues" (dict "root" $ "key" $jobKey "out" $out)
*/}}
{{- define "ray-platform.rayjob.clusterValues" -}}
{{- include "ray-platform.cluster.derivedValues" (dict "root" .root "given" (index .root.Values.rayJobs .key).cluster "out" .out) }}
{{- end }}

{{/*
The submitter pod template of K8sJobMode: the Ray image (the `ray` CLI), the chart's restricted
securityContext, no ServiceAccount token (the submitter only talks HTTP to the dashboard; the
operator adds RAY_DASHBOARD_ADDRESS, RAY_JOB_SUBMISSION_ID and, with token auth, RAY_AUTH_MODE and
RAY_AUTH_TOKEN from the cluster's Secret, and sets the command of the first container). Checked
against podSecurity.level like the Ray pods.
call with: include "ray-platform.rayjob.submitterTemplate" (dict "root" $ "job" $job "submitter" $submitterValues)
*/}}
{{- define "ray-platform.rayjob.submitterTemplate" -}}
{{- $root := .root }}
{{- $submitter := .submitter }}
{{- $key := printf "rayJobs.%s.submitter" .job.key }}
{{- $podSecurityContext := mergeOverwrite (deepCopy $root.Values.podSecurityContext) (default dict $submitter.podSecurityContext) }}
{{- $securityContext := mergeOverwrite (deepCopy $root.Values.securityContext) (default dict $submitter.securityContext) }}
{{- $resources := mergeOverwrite (dict "requests" (dict "cpu" "500m" "memory" "200Mi") "limits" (dict "cpu" "1" "memory" "1Gi")) (deepCopy (default dict $submitter.resources)) }}
{{- $template := include "ray-platform.rayjob.submitterPod" (dict "root" $root "job" .job "submitter" $submitter "podSecurityContext" $podSecurityContext "securityContext" $securityContext "resources" $resources) }}
{{- $sources := dict "where" (printf "the %s pod" $key) "containers" (dict "ray-job-submitter" (dict "group" (default dict $submitter.securityContext) "groupPath" (printf "%s.securityContext" $key) "topPath" "securityContext")) "volumes" dict "annotations" (dict "values" (default dict $submitter.annotations) "path" (printf "%s.annotations" $key)) "pod" (dict "group" (default dict $submitter.podSecurityContext) "groupPath" (printf "%s.podSecurityContext" $key) "topPath" "podSecurityContext") }}
{{- include "ray-platform.podsecurity.fail" (dict "refusals" (include "ray-platform.podsecurity.refusals" (dict "root" $root "pod" ($template | fromYaml) "sources" $sources) | fromYamlArray)) }}
{{- $template }}
{{- end }}

{{/*
The submitter pod template itself (the values merged by "ray-platform.rayjob.submitterTemplate").
call with: include "ray-platform.rayjob.submitterPod" (dict "root" $ "job" $job "submitter" $s "podSecurityContext" $psc "securityContext" $sc "resources" $r)
*/}}
{{- define "ray-platform.rayjob.submitterPod" -}}
{{- $root := .root }}
{{- $submitter := .submitter -}}
metadata:
  labels:
    {{- include "ray-platform.labels.pod" $root | nindent 4 }}
    {{- include "ray-platform.rayjob.submitterLabels" .job.key | nindent 4 }}
    {{- with $submitter.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $submitter.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $submitter.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $submitter.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: ray-job-submitter
      image: {{ include "ray-platform.pod.image" (dict "root" $root "group" $submitter) | quote }}
      imagePullPolicy: {{ include "ray-platform.pod.imagePullPolicy" (dict "root" $root "group" $submitter) }}
      resources:
        {{- toYaml .resources | nindent 8 }}
      {{- with .securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/*
Refusals JSON Schema cannot say, for one job: its name (DNS-1035, at most 47 characters for a
RayJob; 36 for a RayCronJob: KubeRay 1.7 names each run's RayJob <name>-<minutes since 1970>
so that a tick cannot start two runs, and refuses longer RayCronJob names), a name another Ray
object of the release has, CPU or GPU among the entrypoint's custom resources, keys that only apply with a cluster of its own or with a schedule, a
schedule the chart's operator would never run (its RayCronJob feature gate off), and what the
operator rejects (retries of a job on an existing cluster, a TTL without shutdown).
call with: include "ray-platform.rayjob.check" (dict "root" $ "job" $job)
*/}}
{{- define "ray-platform.rayjob.check" -}}
{{- $root := .root }}
{{- $job := .job }}
{{- $values := index $root.Values.rayJobs $job.key }}
{{- $key := printf "rayJobs.%s" $job.key }}
{{- include "ray-platform.names.check" (dict "name" $job.name "max" (ternary 36 47 $job.cron) "kind" (ternary "RayCronJob" "RayJob" $job.cron) "key" (printf "%s.name" $key)) }}
{{- range $cluster := include "ray-platform.cluster.list" $root | fromYamlArray }}
{{- if eq $cluster.name $job.name }}
{{- fail (printf "%s.name: %q is also the name of %s's Ray cluster; their head Services (<name>-head-svc) would collide. Set %s.name to another name." $key $job.name $cluster.key $key) }}
{{- end }}
{{- end }}
{{- if not $job.own }}
{{- if not $root.Values.rayCluster.enabled }}
{{- fail (printf "%s.cluster is required while rayCluster.enabled is false: without a cluster of its own the job runs on the chart's RayCluster (clusterSelector). Give the job a cluster (%s.cluster.head, %s.cluster.workerGroups) or enable rayCluster." $key $key $key) }}
{{- end }}
{{- if gt (int64 (default 0 $values.backoffLimit)) 0 }}
{{- fail (printf "%s.backoffLimit: retries need a cluster of the job's own (%s.cluster); the KubeRay operator refuses backoffLimit > 0 for a job on the chart's RayCluster (clusterSelector)." $key $key) }}
{{- end }}
{{- range $field := list "shutdownAfterJobFinishes" "ttlSecondsAfterFinished" }}
{{- if hasKey $values $field }}
{{- fail (printf "%s.%s applies only to a cluster of the job's own (%s.cluster); the chart's RayCluster stays after the job." $key $field $key) }}
{{- end }}
{{- end }}
{{- else if and (eq (toString $values.shutdownAfterJobFinishes) "false") (gt (int64 (default 0 $values.ttlSecondsAfterFinished)) 0) }}
{{- fail (printf "%s.ttlSecondsAfterFinished needs %s.shutdownAfterJobFinishes: true; the KubeRay operator refuses a TTL for a cluster it does not delete." $key $key) }}
{{- end }}
{{- if $job.cron }}
{{- $operator := default dict (index $root.Values "kuberay-operator") }}
{{- if or (not (hasKey $operator "enabled")) $operator.enabled }}
{{- $gate := false }}
{{- range default list $operator.featureGates }}
{{- if and (eq (toString .name) "RayCronJob") .enabled }}{{ $gate = true }}{{ end }}
{{- end }}
{{- if not $gate }}
{{- fail (printf "%s.schedule needs the operator's RayCronJob feature gate (alpha, off by default): without it the RayCronJob is never run. Add {name: RayCronJob, enabled: true} to kuberay-operator.featureGates." $key) }}
{{- end }}
{{- end }}
{{- else }}
{{- range $field := list "timeZone" "suspend" }}
{{- if hasKey $values $field }}
{{- fail (printf "%s.%s applies only to a scheduled job (%s.schedule, a RayCronJob)." $key $field $key) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $name, $field := dict "CPU" "entrypointNumCpus" "GPU" "entrypointNumGpus" }}
{{- if hasKey (default dict $values.entrypointResources) $name }}
{{- fail (printf "%s.entrypointResources.%s: Ray refuses CPU and GPU among the entrypoint's custom resources (the job would fail at submission); set %s.%s instead." $key $name $key $field) }}
{{- end }}
{{- end }}
{{- if and (ne $job.mode "K8sJobMode") (hasKey $values "submitter") }}
{{- fail (printf "%s.submitter: %s has no submitter pod (the operator submits over HTTP); remove %s.submitter or use submissionMode K8sJobMode." $key $job.mode $key) }}
{{- end }}
{{- end }}

{{/*
Refusals across jobs: two jobs with one object name.
call with: include "ray-platform.rayjob.checkAll" .
*/}}
{{- define "ray-platform.rayjob.checkAll" -}}
{{- $seen := dict }}
{{- range $job := include "ray-platform.rayjob.list" . | fromYamlArray }}
{{- with get $seen $job.name }}
{{- fail (printf "rayJobs.%s.name: %q is also the name of rayJobs.%s; give one of them another name." $job.key $job.name .) }}
{{- end }}
{{- $_ := set $seen $job.name $job.key }}
{{- end }}
{{- end }}
