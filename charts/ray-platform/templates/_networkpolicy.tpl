{{/*
Pieces of the NetworkPolicies (networkpolicy.yaml): peers and ports from values, one policy, and
the refusal of a locked-down egress that would cut the autoscaler off the Kubernetes API. Pods are
selected by the chart's own labels (_labels.tpl).
*/}}

{{/*
A NetworkPolicyPeer (YAML map) for a source described in values as {namespace, podLabels}:
namespace "" means the release namespace.
call with: include "ray-platform.networkpolicy.ingressPeer" (dict "peer" .Values.networkPolicy.operator) | fromYaml
*/}}
{{- define "ray-platform.networkpolicy.ingressPeer" -}}
{{- $peer := dict "podSelector" (dict "matchLabels" (default dict .peer.podLabels)) }}
{{- with .peer.namespace }}
{{- $_ := set $peer "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" .)) }}
{{- end }}
{{- toYaml $peer }}
{{- end }}

{{/*
The `to` list (YAML) for a destination described in values as {namespace, podLabels, cidrs}:
one ipBlock per CIDR, plus one selector peer when namespace or podLabels is set (namespace ""
with podLabels: pods of the release namespace). Nothing set: [] - any destination.
call with: include "ray-platform.networkpolicy.egressPeers" (dict "peer" .Values.networkPolicy.dns) | fromYamlArray
*/}}
{{- define "ray-platform.networkpolicy.egressPeers" -}}
{{- $to := list }}
{{- range $cidr := default list .peer.cidrs }}
{{- $to = append $to (dict "ipBlock" (dict "cidr" $cidr)) }}
{{- end }}
{{- if or .peer.namespace .peer.podLabels }}
{{- $to = append $to (include "ray-platform.networkpolicy.ingressPeer" . | fromYaml) }}
{{- end }}
{{- toYaml $to }}
{{- end }}

{{/*
A list of NetworkPolicyPorts (YAML) from a list of port numbers or names, TCP.
call with: include "ray-platform.networkpolicy.ports" (dict "ports" (list 8265 "metrics")) | fromYamlArray
*/}}
{{- define "ray-platform.networkpolicy.ports" -}}
{{- $ports := list }}
{{- range $port := .ports }}
{{- $ports = append $ports (dict "protocol" "TCP" "port" $port) }}
{{- end }}
{{- toYaml $ports }}
{{- end }}

{{/*
One NetworkPolicy; policyTypes follow from which of ingress/egress are given (an empty list:
that direction denied, nothing listed).
call with: include "ray-platform.networkpolicy.policy" (dict "root" $ "name" "..." "component" "raycluster" "selector" $matchLabelsOrLabelSelector "ingress" $rulesOrNil "egress" $rulesOrNil)
*/}}
{{- define "ray-platform.networkpolicy.policy" -}}
{{- $types := list }}
{{- if kindIs "slice" .ingress }}{{ $types = append $types "Ingress" }}{{ end }}
{{- if kindIs "slice" .egress }}{{ $types = append $types "Egress" }}{{ end }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "ray-platform.labels.standard" .root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  podSelector:
    {{- toYaml .selector | nindent 4 }}
  policyTypes:
    {{- toYaml $types | nindent 4 }}
  {{- with .ingress }}
  ingress:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .egress }}
  egress:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
The Redis port of a GCS fault tolerance address (host:port or a redis:// URL); 6379 without one.
call with: include "ray-platform.networkpolicy.redisPort" $redisAddress
*/}}
{{- define "ray-platform.networkpolicy.redisPort" -}}
{{- $tail := regexFind ":[0-9]+(/[0-9]*)?$" . }}
{{- if $tail }}{{ regexFind "[0-9]+" $tail }}{{ else }}6379{{ end }}
{{- end }}

{{/*
Refuse a locked-down egress (egress.allowAll false) without the Kubernetes API's addresses while
an autoscaler runs: it must reach the API.
call with: include "ray-platform.networkpolicy.check" .
*/}}
{{- define "ray-platform.networkpolicy.check" -}}
{{- $np := .Values.networkPolicy }}
{{- if and $np.enabled (not $np.egress.allowAll) (not $np.kubernetesApi.cidrs) }}
{{- range $cluster := concat (include "ray-platform.cluster.list" . | fromYamlArray) (include "ray-platform.rayjob.clusters" . | fromYamlArray) }}
{{- $values := dict }}
{{- include "ray-platform.cluster.values" (dict "root" $ "key" $cluster.key "out" $values) }}
{{- $autoscaler := $values.values.autoscaler }}
{{- if and $autoscaler $autoscaler.enabled }}
{{- fail (printf "networkPolicy.kubernetesApi.cidrs is required when networkPolicy.egress.allowAll is false and %s.autoscaler is enabled: the autoscaler must reach the Kubernetes API. List the API server's addresses (kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes) as CIDRs, e.g. [10.0.0.1/32]." $cluster.key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
