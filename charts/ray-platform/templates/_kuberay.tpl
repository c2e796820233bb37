{{/* Names the KubeRay operator generates, for templates that must refer to them. */}}

{{/*
The Secret the KubeRay operator (v1.7.0) generates for a token-auth RayCluster that names none in
authOptions.secretName: utils.CheckName(<RayCluster name>), i.e. the name itself, cut to its
last 50 characters, with a leading digit or punctuation replaced by "r". scripts/harness/readiness.py
(operator_secret_name) computes the same; a test keeps the two in step. Used by the helm test
hooks and NOTES.txt.
call with: include "ray-platform.kuberay.tokenSecretName" $rayClusterName
*/}}
{{- define "ray-platform.kuberay.tokenSecretName" -}}
{{- $name := . }}
{{- if gt (len $name) 50 }}
{{- $name = substr (int (sub (len $name) 50)) (len $name) $name }}
{{- end }}
{{- if regexMatch "^[^a-zA-Z]" $name }}
{{- $name = printf "r%s" (substr 1 (len $name) $name) }}
{{- end }}
{{- $name }}
{{- end }}
