{{/*
Monitoring pieces: when the Prometheus Operator objects render, their labels, the PromQL label
matchers that select this release's Ray clusters, the head environment for Grafana embedding,
refusals and the NOTES.txt section. Used by podmonitor-*.yaml, prometheusrule.yaml,
configmap-dashboards.yaml, _cluster.tpl (head env) and NOTES.txt.
*/}}

{{/*
"true" when the cluster serves monitoring.coreos.com/v1, or monitoring.force says render anyway.
call with: include "ray-platform.monitoring.apiAvailable" .
*/}}
{{- define "ray-platform.monitoring.apiAvailable" -}}
{{- if or .Values.monitoring.force (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end }}
{{- end }}

{{/*
"true" when some Ray cluster of this release exists (there is something to monitor).
call with: include "ray-platform.monitoring.anyCluster" .
*/}}
{{- define "ray-platform.monitoring.anyCluster" -}}
{{- if include "ray-platform.cluster.list" . | fromYamlArray }}true{{ end }}
{{- end }}

{{/*
"true" when the object of one part renders: part is "podMonitors" or "prometheusRule".
call with: include "ray-platform.monitoring.renders" (dict "root" $ "part" "podMonitors")
*/}}
{{- define "ray-platform.monitoring.renders" -}}
{{- $root := .root }}
{{- $monitoring := $root.Values.monitoring }}
{{- if and $monitoring.enabled (get $monitoring .part).enabled (include "ray-platform.monitoring.anyCluster" $root) (include "ray-platform.monitoring.apiAvailable" $root) }}true{{ end }}
{{- end }}

{{/*
Labels of the PodMonitors and the PrometheusRule: the chart's, kube-prometheus-stack's release label, monitoring.labels.
call with: include "ray-platform.monitoring.labels" .
*/}}
{{- define "ray-platform.monitoring.labels" -}}
{{- $labels := include "ray-platform.labels.standard" . | fromYaml }}
{{- $_ := set $labels "app.kubernetes.io/component" "monitoring" }}
{{- with .Values.monitoring.prometheusStack.release }}
{{- $_ := set $labels "release" . }}
{{- end }}
{{- toYaml (mergeOverwrite $labels (deepCopy (default dict .Values.monitoring.labels))) }}
{{- end }}

{{/*
A regular expression matching the `ray.io/cluster` names of this release's Ray clusters: the
RayCluster's name, and the RayServices' clusters (<rayservice>-<generated suffix>).
call with: include "ray-platform.monitoring.clusterRegex" .
*/}}
{{- define "ray-platform.monitoring.clusterRegex" -}}
{{- $names := list }}
{{- if .Values.rayCluster.enabled }}
{{- $names = append $names (include "ray-platform.names.rayCluster" .) }}
{{- end }}
{{- if .Values.stableDiffusion.enabled }}
{{- $names = append $names (printf "%s-[a-z0-9]+" (include "ray-platform.names.rayService" .)) }}
{{- end }}
{{- range $key, $service := .Values.rayServices }}
{{- if include "ray-platform.rayservice.enabled" $service }}
{{- $names = append $names (printf "%s-[a-z0-9]+" (include "ray-platform.rayservice.name" (dict "root" $ "key" $key))) }}
{{- end }}
{{- end }}
{{- join "|" $names }}
{{- end }}

{{/*
PromQL label matchers selecting this release's Ray clusters (labels the PodMonitors set).
call with: include "ray-platform.monitoring.selector" .
*/}}
{{- define "ray-platform.monitoring.selector" -}}
namespace="{{ .Release.Namespace }}",ray_io_cluster=~"{{ include "ray-platform.monitoring.clusterRegex" . }}"
{{- end }}

{{/*
A Prometheus duration ("1h30m", "45s") in milliseconds.
call with: include "ray-platform.monitoring.durationMs" "1h30m"
*/}}
{{- define "ray-platform.monitoring.durationMs" -}}
{{- $units := dict "ms" 1 "s" 1000 "m" 60000 "h" 3600000 "d" 86400000 "w" 604800000 "y" 31536000000 }}
{{- $total := 0 }}
{{- range $part := regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" . -1 }}
{{- $unit := regexFind "(ms|s|m|h|d|w|y)$" $part }}
{{- $total = add $total (mul (trimSuffix $unit $part | atoi) (get $units $unit)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
Refusals JSON Schema cannot express (it cannot compare two keys).
call with: include "ray-platform.monitoring.check" .
*/}}
{{- define "ray-platform.monitoring.check" -}}
{{- $monitoring := .Values.monitoring }}
{{- if $monitoring.enabled }}
{{- if and $monitoring.prometheusRule.enabled (not $monitoring.podMonitors.enabled) }}
{{- fail "monitoring.prometheusRule.enabled needs monitoring.podMonitors.enabled: the rules select the labels the chart's PodMonitors add (ray_io_cluster, ray_node_type). Turn both on, or set monitoring.prometheusRule.enabled: false." }}
{{- end }}
{{- $pm := $monitoring.podMonitors }}
{{- if gt (int64 (include "ray-platform.monitoring.durationMs" $pm.scrapeTimeout)) (int64 (include "ray-platform.monitoring.durationMs" $pm.interval)) }}
{{- fail (printf "monitoring.podMonitors.scrapeTimeout (%s) is longer than monitoring.podMonitors.interval (%s); Prometheus refuses such a scrape config. Shorten the timeout or lengthen the interval." $pm.scrapeTimeout $pm.interval) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The fullname kube-prometheus-stack gives its objects (it truncates to 26 characters), and its
Grafana subchart's Service name; the embedding URLs default to them.
call with: include "ray-platform.monitoring.stackFullname" .
call with: include "ray-platform.monitoring.grafanaService" .
*/}}
{{- define "ray-platform.monitoring.stackFullname" -}}
{{- $release := .Values.monitoring.prometheusStack.release }}
{{- if contains "kube-prometheus-stack" $release }}
{{- $release | trunc 26 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-kube-prometheus-stack" $release | trunc 26 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "ray-platform.monitoring.grafanaService" -}}
{{- $release := .Values.monitoring.prometheusStack.release }}
{{- if contains "grafana" $release }}
{{- $release | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-grafana" $release | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Environment of every Ray head so the Ray dashboard embeds Grafana panels (a YAML list, maybe
empty). A variable the head's own env sets is left to it.
call with: include "ray-platform.monitoring.headEnv" (dict "root" $ "head" $headValues) | fromYamlArray
*/}}
{{- define "ray-platform.monitoring.headEnv" -}}
{{- $root := .root }}
{{- $monitoring := $root.Values.monitoring }}
{{- $embed := $monitoring.grafanaEmbedding }}
{{- $env := list }}
{{- if and $monitoring.enabled $embed.enabled }}
{{- $stack := $monitoring.prometheusStack }}
{{- $grafana := $embed.grafanaHost }}
{{- if and (not $grafana) $stack.release }}
{{- $grafana = printf "http://%s.%s.svc" (include "ray-platform.monitoring.grafanaService" $root) $stack.namespace }}
{{- end }}
{{- $prometheus := $embed.prometheusHost }}
{{- if and (not $prometheus) $stack.release }}
{{- $prometheus = printf "http://%s-prometheus.%s.svc:9090" (include "ray-platform.monitoring.stackFullname" $root) $stack.namespace }}
{{- end }}
{{- $wanted := list (list "RAY_GRAFANA_HOST" $grafana) (list "RAY_GRAFANA_IFRAME_HOST" $embed.grafanaIframeHost) (list "RAY_PROMETHEUS_HOST" $prometheus) (list "RAY_PROMETHEUS_NAME" $embed.prometheusName) (list "RAY_GRAFANA_ORG_ID" $embed.grafanaOrgId) }}
{{- $taken := list }}
{{- range $var := default list .head.env }}
{{- $taken = append $taken $var.name }}
{{- end }}
{{- range $pair := $wanted }}
{{- if and (index $pair 1) (not (has (index $pair 0) $taken)) }}
{{- $env = append $env (dict "name" (index $pair 0) "value" (index $pair 1)) }}
{{- end }}
{{- end }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/*
The NOTES.txt section: where things are, and what was skipped.
call with: include "ray-platform.monitoring.notes" .
*/}}
{{- define "ray-platform.monitoring.notes" -}}
{{- $monitoring := .Values.monitoring }}
{{- if and $monitoring.enabled (include "ray-platform.monitoring.anyCluster" .) }}
{{- $wanted := list }}
{{- if $monitoring.podMonitors.enabled }}{{ $wanted = append $wanted "PodMonitors" }}{{ end }}
{{- if $monitoring.prometheusRule.enabled }}{{ $wanted = append $wanted "PrometheusRule" }}{{ end }}

Monitoring:
{{- if and $wanted (not (include "ray-platform.monitoring.apiAvailable" .)) }}
  SKIPPED: {{ join " and " $wanted }} - this cluster does not serve the monitoring.coreos.com/v1 API
  (no Prometheus Operator). Install one (kube-prometheus-stack) and run `helm upgrade`, or set
  monitoring.force=true to render them anyway.
{{- else if $wanted }}
  {{ join " and " $wanted }} for Prometheus{{ with $monitoring.prometheusStack.release }} (label release={{ . }}){{ end }}; alerts are explained in docs/runbook.md.
{{- end }}
{{- if $monitoring.dashboards.enabled }}
  Grafana dashboards: ConfigMaps labelled {{ $monitoring.dashboards.label }}={{ $monitoring.dashboards.labelValue }} in namespace {{ default .Release.Namespace $monitoring.dashboards.namespace }}, folder "{{ $monitoring.dashboards.folder }}".
{{- end }}
{{- end }}
{{- end }}

{{/*
Relabelings of every Ray scrape: the pod's ray.io/cluster label as ray_io_cluster (dashboards and
rules filter by it) and ray.io/node-type as ray_node_type (head or worker).
call with: include "ray-platform.monitoring.relabelings" .
*/}}
{{- define "ray-platform.monitoring.relabelings" -}}
- action: replace
  sourceLabels: [__meta_kubernetes_pod_label_ray_io_cluster]
  targetLabel: ray_io_cluster
- action: replace
  sourceLabels: [__meta_kubernetes_pod_label_ray_io_node_type]
  targetLabel: ray_node_type
{{- end }}
