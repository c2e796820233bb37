{{/*
Security pieces of the chart: which Ray clusters the release runs, the labels that select their
pods, ServiceAccounts and the autoscaler's API token, exposure (Ingress / HTTPRoute) and the
refusals that keep the Ray dashboard from being reachable without authentication.

Pods are selected by the chart's own labels (app.kubernetes.io/name, app.kubernetes.io/instance,
app.kubernetes.io/component, ray-platform.io/node-type, ray-platform.io/group), which every pod
template carries: a RayService's cluster has a generated name, so ray.io/cluster is unknown at
render time.
*/}}

{{/*
The Ray clusters of the release, as a YAML list of
{key (values path), component, name (RayCluster / RayService name), serve (has a Serve port)}.
*/}}
{{- define "ray-platform.sec.clusters" -}}
{{- $out := list }}
{{- if .Values.rayCluster.enabled }}
{{- $out = append $out (dict "key" "rayCluster" "component" "raycluster" "name" (default (include "ray-platform.fullname" .) .Values.rayCluster.name) "serve" false) }}
{{- end }}
{{- if .Values.stableDiffusion.enabled }}
{{- $out = append $out (dict "key" "stableDiffusion" "component" "stable-diffusion" "name" (include "ray-platform.sd.name" .) "serve" true) }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
matchLabels (a YAML map) selecting the pods of one cluster, optionally one node type and group.
Call with (dict "root" $ "component" "raycluster" "nodeType" "head" "group" "gpu").
*/}}
{{- define "ray-platform.sec.podLabels" -}}
{{ include "ray-platform.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- with .nodeType }}
ray-platform.io/node-type: {{ . }}
{{- end }}
{{- with .group }}
ray-platform.io/group: {{ . | quote }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of a cluster's pods. Call with (dict "root" $ "key" "rayCluster"). */}}
{{- define "ray-platform.sec.serviceAccountName" -}}
{{- $cluster := index .root.Values .key }}
{{- $sa := $cluster.serviceAccount }}
{{- if $sa.create }}
{{- $name := ternary (default (include "ray-platform.fullname" .root) $cluster.name) (include "ray-platform.sd.name" .root) (eq .key "rayCluster") }}
{{- default (printf "%s-ray" $name) $sa.name }}
{{- else }}
{{- required (printf "%s.serviceAccount.name is required when %s.serviceAccount.create is false (the name of an existing ServiceAccount)." .key .key) $sa.name }}
{{- end }}
{{- end }}

{{/* Volume name and mount path of the autoscaler's own Kubernetes API token. */}}
{{- define "ray-platform.sec.tokenVolumeName" -}}autoscaler-kube-api{{- end }}
{{- define "ray-platform.sec.tokenMountPath" -}}/var/run/secrets/kubernetes.io/serviceaccount{{- end }}

{{/*
Pod spec fields for every Ray pod (called by ray-platform.rayPodTemplate with its own arguments):
the cluster's ServiceAccount and no automatic token. Ray code never needs the Kubernetes API; the
autoscaler sidecar does, and gets a token volume of its own (see sec.headVolumes).
*/}}
{{- define "ray-platform.sec.podIdentity" -}}
{{- $key := index (splitList "." .key) 0 }}
{{- $cluster := index .root.Values $key }}
{{- if and (kindIs "map" $cluster) (hasKey $cluster "serviceAccount") -}}
serviceAccountName: {{ include "ray-platform.sec.serviceAccountName" (dict "root" .root "key" $key) | quote }}
{{ end -}}
automountServiceAccountToken: false
{{- end }}

{{/*
Extra volumes of a Ray pod (a YAML list): on a head whose cluster runs the in-tree autoscaler,
the projected ServiceAccount token, CA bundle and namespace that the kubelet would otherwise mount
into every container. Only the autoscaler container mounts it (autoscalerOptions.volumeMounts,
which KubeRay appends to the sidecar), so user code in the Ray container cannot use the
autoscaler's permissions (patch pods, patch the RayCluster).
*/}}
{{- define "ray-platform.sec.headVolumes" -}}
{{- $key := index (splitList "." .key) 0 }}
{{- $cluster := index .root.Values $key }}
{{- $autoscaler := dict }}
{{- if kindIs "map" $cluster }}{{ $autoscaler = default dict $cluster.autoscaler }}{{ end }}
{{- if and (eq .nodeType "head") $autoscaler.enabled }}
- name: {{ include "ray-platform.sec.tokenVolumeName" . }}
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3607
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                apiVersion: v1
                fieldPath: metadata.namespace
{{- else }}
[]
{{- end }}
{{- end }}

{{/* autoscalerOptions.volumeMounts: the token volume at the path the Ray autoscaler reads. */}}
{{- define "ray-platform.sec.autoscalerVolumeMounts" -}}
- name: {{ include "ray-platform.sec.tokenVolumeName" . }}
  mountPath: {{ include "ray-platform.sec.tokenMountPath" . }}
  readOnly: true
{{- end }}

{{/*
Refusals that JSON Schema cannot express: exposure of the dashboard without authentication, head
Services reachable from outside the cluster without authentication, contradictory exposure
settings, and a locked-down egress that would cut the autoscaler off the Kubernetes API.
*/}}
{{- define "ray-platform.sec.check" -}}
{{- $root := . }}
{{- $authOn := eq .Values.auth.mode "token" }}
{{- range $cluster := include "ray-platform.sec.clusters" . | fromYamlArray }}
{{- $head := (index $root.Values $cluster.key).head }}
{{- if and (has $head.serviceType (list "LoadBalancer" "NodePort")) (not $authOn) (not $head.allowUnauthenticated) }}
{{- fail (printf "%s.head.serviceType: %s puts the Ray dashboard (8265, remote code execution), Jobs API and Ray Client on the network while auth.mode is disabled (CVE-2023-48022). Keep ClusterIP and use ingress.dashboard with authentication, set auth.mode: token, or set %s.head.allowUnauthenticated: true if something else protects the Service." $cluster.key $head.serviceType $cluster.key) }}
{{- end }}
{{- end }}
{{- range $endpoint := list "dashboard" "stableDiffusion" }}
{{- $ex := index $root.Values.ingress $endpoint }}
{{- $key := printf "ingress.%s" $endpoint }}
{{- if $ex.enabled }}
{{- include "ray-platform.sec.checkExposure" (dict "root" $root "ex" $ex "key" $key "endpoint" $endpoint) }}
{{- end }}
{{- end }}
{{- include "ray-platform.sec.checkEgress" . }}
{{- include "ray-platform.sec.checkNames" . }}
{{- end }}

{{/* Per-cluster objects (head Services, ServiceAccounts, policies, budgets) must not collide. */}}
{{- define "ray-platform.sec.checkNames" -}}
{{- if and .Values.rayCluster.enabled .Values.stableDiffusion.enabled }}
{{- $rayCluster := default (include "ray-platform.fullname" .) .Values.rayCluster.name }}
{{- if eq $rayCluster (include "ray-platform.sd.name" .) }}
{{- fail (printf "stableDiffusion.name: %q is also the RayCluster's name (rayCluster.name); their head Services (<name>-head-svc) and the chart's per-cluster objects would collide. Give one of them another name." $rayCluster) }}
{{- end }}
{{- if and .Values.rayCluster.serviceAccount.create .Values.stableDiffusion.serviceAccount.create }}
{{- $sa := include "ray-platform.sec.serviceAccountName" (dict "root" . "key" "stableDiffusion") }}
{{- if eq $sa (include "ray-platform.sec.serviceAccountName" (dict "root" . "key" "rayCluster")) }}
{{- fail (printf "stableDiffusion.serviceAccount.name: %q is also rayCluster.serviceAccount.name and both are created; name them differently, or create one and set the other's create: false." $sa) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ray-platform.sec.checkExposure" -}}
{{- $ex := .ex }}
{{- $key := .key }}
{{- $root := .root }}
{{- $basic := $ex.auth.basic.existingSecret }}
{{- $external := $ex.auth.external.url }}
{{- if and $basic $external }}
{{- fail (printf "%s.auth: set either auth.basic.existingSecret or auth.external.url, not both (NGINX applies one authentication per Ingress)." $key) }}
{{- end }}
{{- if and $ex.tls.certManager.issuer $ex.tls.certManager.clusterIssuer }}
{{- fail (printf "%s.tls.certManager: set either issuer or clusterIssuer, not both." $key) }}
{{- end }}
{{- if eq $ex.kind "HTTPRoute" }}
{{- if not $ex.gateway.name }}
{{- fail (printf "%s.gateway.name is required with %s.kind: HTTPRoute (the Gateway the route attaches to)." $key $key) }}
{{- end }}
{{- if or $basic $external }}
{{- fail (printf "%s.auth: ingress-level authentication is NGINX Ingress annotations; an HTTPRoute has no standard equivalent. Use kind: Ingress, or rely on Ray token auth (auth.mode: token) and your Gateway's own policies." $key) }}
{{- end }}
{{- if or $ex.tls.secretName $ex.tls.certManager.issuer $ex.tls.certManager.clusterIssuer }}
{{- fail (printf "%s.tls: with kind HTTPRoute, TLS terminates at the Gateway listener (its certificateRefs); leave %s.tls empty." $key $key) }}
{{- end }}
{{- if eq $ex.pathType "ImplementationSpecific" }}
{{- fail (printf "%s.pathType: ImplementationSpecific has no HTTPRoute equivalent; use Prefix or Exact." $key) }}
{{- end }}
{{- end }}
{{- if eq .endpoint "dashboard" }}
{{- $target := index $root.Values $ex.cluster }}
{{- if not $target.enabled }}
{{- fail (printf "%s.cluster: %s is not enabled, so there is no dashboard to expose; set %s.enabled: true or point %s.cluster at an enabled cluster." $key $ex.cluster $ex.cluster $key) }}
{{- end }}
{{- $protected := or (eq $root.Values.auth.mode "token") (and (eq $ex.kind "Ingress") (or $basic $external)) }}
{{- if and (not $protected) (not $ex.allowUnauthenticated) }}
{{- fail (printf "%s: the Ray dashboard would be reachable without authentication (auth.mode is disabled and %s.auth sets none): whoever reaches it can run code in your cluster (CVE-2023-48022). Set auth.mode: token, or %s.auth.basic.existingSecret / %s.auth.external.url, or %s.allowUnauthenticated: true if something else protects it." $key $key $key $key $key) }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ray-platform.sec.checkEgress" -}}
{{- $np := .Values.networkPolicy }}
{{- if and $np.enabled (not $np.egress.allowAll) (not $np.kubernetesApi.cidrs) }}
{{- range $cluster := include "ray-platform.sec.clusters" . | fromYamlArray }}
{{- $autoscaler := (index $.Values $cluster.key).autoscaler }}
{{- if and $autoscaler $autoscaler.enabled }}
{{- fail (printf "networkPolicy.kubernetesApi.cidrs is required when networkPolicy.egress.allowAll is false and %s.autoscaler is enabled: the autoscaler must reach the Kubernetes API. List the API server's addresses (kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes) as CIDRs, e.g. [10.0.0.1/32]." $cluster.key) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
What an exposure points at: {cluster (values key), service, port, component, nodeType}.
Call with (dict "root" $ "endpoint" "dashboard").
*/}}
{{- define "ray-platform.sec.backend" -}}
{{- $ex := index .root.Values.ingress .endpoint }}
{{- if eq .endpoint "dashboard" }}
{{- $name := ternary (default (include "ray-platform.fullname" .root) .root.Values.rayCluster.name) (include "ray-platform.sd.name" .root) (eq $ex.cluster "rayCluster") }}
{{- $component := ternary "raycluster" "stable-diffusion" (eq $ex.cluster "rayCluster") }}
{{- toYaml (dict "cluster" $ex.cluster "service" (printf "%s-head-svc" $name) "port" 8265 "portName" "dashboard" "component" $component "nodeType" "head") }}
{{- else }}
{{- toYaml (dict "cluster" "stableDiffusion" "service" (printf "%s-serve-svc" (include "ray-platform.sd.name" .root)) "port" 8000 "portName" "serve" "component" "stable-diffusion" "nodeType" "") }}
{{- end }}
{{- end }}

{{/* Name of an exposure's Ingress / HTTPRoute. */}}
{{- define "ray-platform.sec.exposureName" -}}
{{- if eq .endpoint "dashboard" }}
{{- printf "%s-dashboard" (include "ray-platform.fullname" .root) }}
{{- else }}
{{- include "ray-platform.sd.name" .root }}
{{- end }}
{{- end }}

{{/*
Annotations of an exposure's Ingress: the chart's NGINX defaults for the endpoint, cert-manager,
NGINX authentication, then the user's annotations (which win).
*/}}
{{- define "ray-platform.sec.ingressAnnotations" -}}
{{- $ex := index .root.Values.ingress .endpoint }}
{{- $out := dict }}
{{- if $ex.nginxAnnotations }}
{{- if eq .endpoint "dashboard" }}
{{- /* Job submissions upload their working_dir; log tails hold requests open. */}}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-body-size" "100m" }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-read-timeout" "600" }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-send-timeout" "600" }}
{{- else }}
{{- /* An image takes up to the app's request_timeout_s; prompts travel in the query string. */}}
{{- $timeout := add (int (ceil (float64 .root.Values.stableDiffusion.apiIngress.userConfig.request_timeout_s))) 30 }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-read-timeout" (toString $timeout) }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-send-timeout" (toString $timeout) }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-body-size" "1m" }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-buffering" "on" }}
{{- end }}
{{- end }}
{{- with $ex.tls.certManager.issuer }}
{{- $_ := set $out "cert-manager.io/issuer" . }}
{{- end }}
{{- with $ex.tls.certManager.clusterIssuer }}
{{- $_ := set $out "cert-manager.io/cluster-issuer" . }}
{{- end }}
{{- with $ex.auth.basic.existingSecret }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/auth-type" "basic" }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/auth-secret" . }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/auth-secret-type" "auth-file" }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/auth-realm" $ex.auth.basic.realm }}
{{- end }}
{{- with $ex.auth.external.url }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/auth-url" . }}
{{- with $ex.auth.external.signin }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/auth-signin" . }}
{{- end }}
{{- with $ex.auth.external.responseHeaders }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/auth-response-headers" (join "," .) }}
{{- end }}
{{- end }}
{{- $out = mergeOverwrite $out (default dict $ex.annotations) }}
{{- if $out }}
{{- toYaml $out }}
{{- end }}
{{- end }}

{{/*
A NetworkPolicyPeer (YAML map) for a source described in values as {namespace, podLabels}:
namespace "" means the release namespace. Call with (dict "peer" $values).
*/}}
{{- define "ray-platform.sec.ingressPeer" -}}
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
*/}}
{{- define "ray-platform.sec.egressPeers" -}}
{{- $to := list }}
{{- range $cidr := default list .peer.cidrs }}
{{- $to = append $to (dict "ipBlock" (dict "cidr" $cidr)) }}
{{- end }}
{{- if or .peer.namespace .peer.podLabels }}
{{- $to = append $to (include "ray-platform.sec.ingressPeer" . | fromYaml) }}
{{- end }}
{{- toYaml $to }}
{{- end }}

{{/* A list of NetworkPolicyPorts (YAML) from a list of port numbers or names, TCP. */}}
{{- define "ray-platform.sec.ports" -}}
{{- $ports := list }}
{{- range $port := .ports }}
{{- $ports = append $ports (dict "protocol" "TCP" "port" $port) }}
{{- end }}
{{- toYaml $ports }}
{{- end }}

{{/*
One NetworkPolicy. Call with (dict "root" $ "name" "..." "component" "raycluster" "selector"
$matchLabelsOrLabelSelector "ingress" $rulesOrNil "egress" $rulesOrNil); policyTypes follow from
which of ingress/egress are given (an empty list: that direction denied, nothing listed).
*/}}
{{- define "ray-platform.sec.networkPolicy" -}}
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
    {{- include "ray-platform.labels" .root | nindent 4 }}
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

{{/* The Redis port of a GCS fault tolerance address (host:port or a redis:// URL); 6379 without one. */}}
{{- define "ray-platform.sec.redisPort" -}}
{{- $tail := regexFind ":[0-9]+(/[0-9]*)?$" . }}
{{- if $tail }}{{ regexFind "[0-9]+" $tail }}{{ else }}6379{{ end }}
{{- end }}
