{{/*
Labels of the release's objects and pods, and the selectors that find a cluster's pods by them.
Pods are selected by the chart's own labels (app.kubernetes.io/name, app.kubernetes.io/instance,
app.kubernetes.io/component, ray-platform.io/node-type, ray-platform.io/group), which every pod
template carries: a RayService's cluster has a generated name, so ray.io/cluster is unknown at
render time.
*/}}

{{/*
Labels that identify the release's objects; stable across chart versions.
call with: include "ray-platform.labels.selector" .
*/}}
{{- define "ray-platform.labels.selector" -}}
app.kubernetes.io/name: {{ include "ray-platform.names.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/*
Labels for top-level objects.
call with: include "ray-platform.labels.standard" .
*/}}
{{- define "ray-platform.labels.standard" -}}
helm.sh/chart: {{ include "ray-platform.names.chart" . }}
{{ include "ray-platform.labels.pod" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/*
Labels for pod templates. Without helm.sh/chart and app.kubernetes.io/version on purpose: with
upgradeStrategy Recreate, any pod template change recreates the Ray pods, and a chart version bump
alone must not restart a running cluster.
call with: include "ray-platform.labels.pod" .
*/}}
{{- define "ray-platform.labels.pod" -}}
{{ include "ray-platform.labels.selector" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ray-platform
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
matchLabels (a YAML map) selecting the pods of one cluster, optionally one node type and group.
call with: include "ray-platform.labels.podSelector" (dict "root" $ "component" "raycluster" "nodeType" "head" "group" "gpu")
*/}}
{{- define "ray-platform.labels.podSelector" -}}
{{ include "ray-platform.labels.selector" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .nodeType }}
ray-platform.io/node-type: {{ . }}
{{- end }}
{{- with .group }}
ray-platform.io/group: {{ . | quote }}
{{- end }}
{{- end }}
