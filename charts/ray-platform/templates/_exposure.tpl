{{/*
Exposure of the Ray dashboard and the Stable Diffusion endpoint (ingress.yaml, httproute.yaml,
NOTES.txt): what an Ingress or HTTPRoute points at, its name and annotations, and the refusals of
contradictory or unauthenticated settings.
*/}}

{{/*
What an exposure points at: {cluster (values key), service, port, portName, component, nodeType}.
call with: include "ray-platform.exposure.backend" (dict "root" $ "endpoint" "dashboard") | fromYaml
*/}}
{{- define "ray-platform.exposure.backend" -}}
{{- $ex := index .root.Values.ingress .endpoint }}
{{- if eq .endpoint "dashboard" }}
{{- $name := include "ray-platform.names.cluster" (dict "root" .root "key" $ex.cluster) }}
{{- $component := ternary "raycluster" "stable-diffusion" (eq $ex.cluster "rayCluster") }}
{{- toYaml (dict "cluster" $ex.cluster "service" (printf "%s-head-svc" $name) "port" 8265 "portName" "dashboard" "component" $component "nodeType" "head") }}
{{- else }}
{{- toYaml (dict "cluster" "stableDiffusion" "service" (printf "%s-serve-svc" (include "ray-platform.names.rayService" .root)) "port" 8000 "portName" "serve" "component" "stable-diffusion" "nodeType" "") }}
{{- end }}
{{- end }}

{{/*
Name of an exposure's Ingress / HTTPRoute.
call with: include "ray-platform.exposure.name" (dict "root" $ "endpoint" "dashboard")
*/}}
{{- define "ray-platform.exposure.name" -}}
{{- if eq .endpoint "dashboard" }}
{{- printf "%s-dashboard" (include "ray-platform.names.fullname" .root) }}
{{- else }}
{{- include "ray-platform.names.rayService" .root }}
{{- end }}
{{- end }}

{{/*
Annotations of an exposure's Ingress: the chart's NGINX defaults for the endpoint, cert-manager,
NGINX authentication, then the user's annotations (which win).
call with: include "ray-platform.exposure.ingressAnnotations" (dict "root" $ "endpoint" "dashboard")
*/}}
{{- define "ray-platform.exposure.ingressAnnotations" -}}
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
Refusals for one enabled exposure: contradictory authentication or TLS settings, Ingress-only
settings on an HTTPRoute, and a dashboard nobody has to authenticate to.
call with: include "ray-platform.exposure.check" (dict "root" $ "ex" .Values.ingress.dashboard "key" "ingress.dashboard" "endpoint" "dashboard")
*/}}
{{- define "ray-platform.exposure.check" -}}
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
