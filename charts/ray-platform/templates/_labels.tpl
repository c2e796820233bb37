{{/*
Labels of the release's objects and pods, and the selectors that find a cluster's pods by them.
The Ray pods are selected by app.kubernetes.io/instance, app.kubernetes.io/part-of,
app.kubernetes.io/component, ray-platform.io/node-type and ray-platform.io/group, which every Ray
pod template carries: a RayService's cluster has a generated name, so ray.io/cluster is unknown at
render time. Their app.kubernetes.io/name is KubeRay's own, "kuberay": the head Service KubeRay
creates for a RayService (<name>-head-svc, the stable one that follows the active cluster) selects
app.kubernetes.io/name=kuberay whatever the pod template says (KubeRay 1.6 and 1.7 build it
without the template's labels), so a Ray pod named after the chart would never be its endpoint.
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
{{- include "ray-platform.labels.checkReserved" (dict "labels" .Values.commonLabels "key" "commonLabels") }}
{{ include "ray-platform.labels.selector" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ray-platform
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of the Ray pod templates (heads and workers of every Ray cluster of the release): the
chart's pod labels with KubeRay's app.kubernetes.io/name (see the top of this file).
call with: include "ray-platform.labels.rayPod" .
*/}}
{{- define "ray-platform.labels.rayPod" -}}
{{- include "ray-platform.labels.checkReserved" (dict "labels" .Values.commonLabels "key" "commonLabels") }}
app.kubernetes.io/name: kuberay
{{ include "ray-platform.labels.raySelector" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
matchLabels (a YAML map) selecting every Ray pod of the release (every cluster, head and workers).
call with: include "ray-platform.labels.raySelector" .
*/}}
{{- define "ray-platform.labels.raySelector" -}}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/part-of: ray-platform
{{- end }}

{{/*
Refuse labels that would replace one the chart or KubeRay selects pods by (a YAML map with two
equal keys keeps the last, so the pods would silently drop out of the Services, PodMonitors,
PodDisruptionBudgets and NetworkPolicies).
call with: include "ray-platform.labels.checkReserved" (dict "labels" $labels "key" "rayCluster.head.labels")
*/}}
{{- define "ray-platform.labels.checkReserved" -}}
{{- $chartKeys := list "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/part-of" "app.kubernetes.io/managed-by" "app.kubernetes.io/component" "app.kubernetes.io/version" "app.kubernetes.io/created-by" "helm.sh/chart" }}
{{- range $label, $_ := default dict .labels }}
{{- if or (has $label $chartKeys) (hasPrefix "ray.io/" $label) (hasPrefix "ray-platform.io/" $label) }}
{{- fail (printf "%s[%s]: the chart or KubeRay sets this label and selects pods by it; use another key." $.key $label) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
matchLabels (a YAML map) selecting the pods of one cluster, optionally one node type and group.
call with: include "ray-platform.labels.podSelector" (dict "root" $ "component" "raycluster" "nodeType" "head" "group" "gpu")
*/}}
{{- define "ray-platform.labels.podSelector" -}}
{{ include "ray-platform.labels.raySelector" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .nodeType }}
ray-platform.io/node-type: {{ . }}
{{- end }}
{{- with .group }}
ray-platform.io/group: {{ . | quote }}
{{- end }}
{{- end }}
