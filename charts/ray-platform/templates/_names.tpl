{{/*
Names: of the chart, of the release's objects, of its Ray clusters. Every template takes a name
from here, so two objects that must agree on a name cannot drift apart.
*/}}

{{/*
The chart's name (nameOverride replaces it).
call with: include "ray-platform.names.name" .
*/}}
{{- define "ray-platform.names.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Resource name prefix: <release>-<chart>, or the release name when it already contains the chart
name. Not truncated: objects with tighter limits check their own length and say which key to set.
call with: include "ray-platform.names.fullname" .
*/}}
{{- define "ray-platform.names.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trimSuffix "-" }}
{{- else }}
{{- $name := include "ray-platform.names.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
<chart>-<version>, for the helm.sh/chart label.
call with: include "ray-platform.names.chart" .
*/}}
{{- define "ray-platform.names.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The RayCluster's name: rayCluster.name, else the fullname.
call with: include "ray-platform.names.rayCluster" .
*/}}
{{- define "ray-platform.names.rayCluster" -}}
{{- default (include "ray-platform.names.fullname" .) .Values.rayCluster.name }}
{{- end }}

{{/*
The Stable Diffusion RayService's name: stableDiffusion.name, else <fullname>-sd.
call with: include "ray-platform.names.rayService" .
*/}}
{{- define "ray-platform.names.rayService" -}}
{{- default (printf "%s-sd" (include "ray-platform.names.fullname" .)) .Values.stableDiffusion.name }}
{{- end }}

{{/*
The name of the Ray cluster whose values live under `key` ("rayCluster", "stableDiffusion" or
"rayServices.<key>.cluster": the RayService's name).
call with: include "ray-platform.names.cluster" (dict "root" $ "key" "rayCluster")
*/}}
{{- define "ray-platform.names.cluster" -}}
{{- if hasPrefix "rayServices." .key }}
{{- include "ray-platform.rayservice.name" (dict "root" .root "key" (index (splitList "." .key) 1)) }}
{{- else }}
{{- ternary (include "ray-platform.names.rayCluster" .root) (include "ray-platform.names.rayService" .root) (eq .key "rayCluster") }}
{{- end }}
{{- end }}

{{/*
Fail unless a generated object name is a DNS-1035 label of at most `max` characters.
call with: include "ray-platform.names.check" (dict "name" $name "max" 53 "kind" "RayCluster" "key" "rayCluster.name")
*/}}
{{- define "ray-platform.names.check" -}}
{{- if gt (len .name) (int .max) }}
{{- fail (printf "%s: the %s name %q is %d characters; KubeRay allows at most %d. Set %s or fullnameOverride to a shorter name." .key .kind .name (len .name) (int .max) .key) }}
{{- end }}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" .name) }}
{{- fail (printf "%s: the %s name %q is not a DNS-1035 label (lower-case letters, digits and '-', starting with a letter). Set %s or fullnameOverride." .key .kind .name .key) }}
{{- end }}
{{- end }}
