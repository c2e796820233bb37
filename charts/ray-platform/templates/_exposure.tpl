{{/*
Exposure of the Ray dashboard, the Stable Diffusion endpoint and your RayServices' endpoints
(ingress.yaml, httproute.yaml, NOTES.txt): what an Ingress or HTTPRoute points at, its name and
annotations, and the refusals of contradictory or unauthenticated settings. An exposure is an
endpoint ("dashboard", "stableDiffusion", or "rayService" with service: the rayServices key).
*/}}

{{/*
Every exposure the release may render, enabled or not, as a YAML list of {endpoint, key (values
path of its settings), service (rayServices key, "" for the others)}.
call with: include "ray-platform.exposure.list" . | fromYamlArray
*/}}
{{- define "ray-platform.exposure.list" -}}
{{- $out := list }}
{{- range $endpoint := list "dashboard" "stableDiffusion" }}
{{- $out = append $out (dict "endpoint" $endpoint "key" (printf "ingress.%s" $endpoint) "service" "") }}
{{- end }}
{{- range $key, $service := .Values.rayServices }}
{{- if include "ray-platform.rayservice.enabled" $service }}
{{- $out = append $out (dict "endpoint" "rayService" "key" (printf "rayServices.%s.ingress" $key) "service" $key) }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
The settings of one exposure: ingress.<endpoint>, or rayServices.<service>.ingress over the
defaults of a RayService's exposure (off, Ingress at / with Prefix, NGINX timeouts, no TLS, no
authentication). Sets .out.ex.
call with: include "ray-platform.exposure.values" (dict "root" $ "exposure" $item "out" $out)
*/}}
{{- define "ray-platform.exposure.values" -}}
{{- if eq .exposure.endpoint "rayService" }}
{{- $defaults := dict "enabled" false "kind" "Ingress" "hosts" list "path" "/" "pathType" "Prefix" "className" "" "annotations" dict "nginxAnnotations" true
  "tls" (dict "secretName" "" "certManager" (dict "issuer" "" "clusterIssuer" ""))
  "gateway" (dict "name" "" "namespace" "" "sectionName" "")
  "auth" (dict "basic" (dict "existingSecret" "" "realm" "Authentication Required") "external" (dict "url" "" "signin" "" "responseHeaders" list))
  "allowUnauthenticated" false }}
{{- $given := deepCopy (default dict (index .root.Values.rayServices .exposure.service).ingress) }}
{{- $_ := set .out "ex" (mergeOverwrite $defaults $given) }}
{{- else }}
{{- $_ := set .out "ex" (index .root.Values.ingress .exposure.endpoint) }}
{{- end }}
{{- end }}

{{/*
Seconds an NGINX / HTTPRoute timeout of a Serve exposure outlasts: the app's request timeout + 30
(Stable Diffusion: apiIngress.userConfig.request_timeout_s; a RayService of yours:
serveConfig.http_options.request_timeout_s, 0 when it sets none).
call with: include "ray-platform.exposure.serveTimeout" (dict "root" $ "endpoint" "stableDiffusion" "service" "")
*/}}
{{- define "ray-platform.exposure.serveTimeout" -}}
{{- if eq .endpoint "rayService" }}
{{- $timeout := dig "serveConfig" "http_options" "request_timeout_s" 0 (index .root.Values.rayServices .service) }}
{{- if $timeout }}{{ add (int (ceil (float64 $timeout))) 30 }}{{ else }}0{{ end }}
{{- else }}
{{- add (int (ceil (float64 .root.Values.stableDiffusion.apiIngress.userConfig.request_timeout_s))) 30 }}
{{- end }}
{{- end }}

{{/*
What an exposure points at: {cluster (values key), service, port, portName, component, nodeType}.
call with: include "ray-platform.exposure.backend" (dict "root" $ "endpoint" "dashboard") | fromYaml
call with: include "ray-platform.exposure.backend" (dict "root" $ "endpoint" "rayService" "service" $key) | fromYaml
*/}}
{{- define "ray-platform.exposure.backend" -}}
{{- $ex := index .root.Values.ingress .endpoint }}
{{- if eq .endpoint "rayService" }}
{{- $name := include "ray-platform.rayservice.name" (dict "root" .root "key" .service) }}
{{- toYaml (dict "cluster" (printf "rayServices.%s.cluster" .service) "service" (printf "%s-serve-svc" $name) "port" 8000 "portName" "serve" "component" (include "ray-platform.rayservice.component" .service) "nodeType" "") }}
{{- else if eq .endpoint "dashboard" }}
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
{{- if eq .endpoint "rayService" }}
{{- include "ray-platform.rayservice.name" (dict "root" .root "key" .service) }}
{{- else if eq .endpoint "dashboard" }}
{{- printf "%s-dashboard" (include "ray-platform.names.fullname" .root) }}
{{- else }}
{{- include "ray-platform.names.rayService" .root }}
{{- end }}
{{- end }}

{{/*
Annotations of an exposure's Ingress: the chart's NGINX defaults for the endpoint, cert-manager,
NGINX authentication, then the user's annotations (which win).
call with: include "ray-platform.exposure.ingressAnnotations" (dict "root" $ "endpoint" "dashboard")
call with: include "ray-platform.exposure.ingressAnnotations" (dict "root" $ "endpoint" "rayService" "service" $key "ex" $settings)
*/}}
{{- define "ray-platform.exposure.ingressAnnotations" -}}
{{- $ex := default (index .root.Values.ingress .endpoint) .ex }}
{{- $out := dict }}
{{- if $ex.nginxAnnotations }}
{{- if eq .endpoint "rayService" }}
{{- /* Outlast the app's own request timeout, when it has one. */}}
{{- $timeout := include "ray-platform.exposure.serveTimeout" . | int }}
{{- if $timeout }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-read-timeout" (toString $timeout) }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-send-timeout" (toString $timeout) }}
{{- end }}
{{- else if eq .endpoint "dashboard" }}
{{- /* Job submissions upload their working_dir; log tails hold requests open. */}}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-body-size" "100m" }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-read-timeout" "600" }}
{{- $_ := set $out "nginx.ingress.kubernetes.io/proxy-send-timeout" "600" }}
{{- else }}
{{- /* An image takes up to the app's request_timeout_s; prompts travel in the query string. */}}
{{- $timeout := include "ray-platform.exposure.serveTimeout" . | int }}
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
"true" when the chart's NGINX authentication protects an exposure's callers (an Ingress with
auth.basic or auth.external; an HTTPRoute cannot carry it), "" otherwise.
call with: include "ray-platform.exposure.ingressAuthenticates" $settings
*/}}
{{- define "ray-platform.exposure.ingressAuthenticates" -}}
{{- if and (eq .kind "Ingress") (or .auth.basic.existingSecret .auth.external.url) }}true{{ end }}
{{- end }}

{{/*
Refusals for one enabled exposure: contradictory authentication or TLS settings, Ingress-only
settings on an HTTPRoute, a dashboard nobody has to authenticate to, and an endpoint of one of your
RayServices nobody has to authenticate to (unless allowUnauthenticated says so).
call with: include "ray-platform.exposure.check" (dict "root" $ "ex" .Values.ingress.dashboard "key" "ingress.dashboard" "endpoint" "dashboard")
(for a RayService of yours: "endpoint" "rayService", "ex" from "ray-platform.exposure.values")
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
{{- if eq .endpoint "rayService" }}
{{- /* Serve has no authentication of its own: someone must be asked for it. */}}
{{- if and (not (include "ray-platform.exposure.ingressAuthenticates" $ex)) (not $ex.allowUnauthenticated) }}
{{- if eq $ex.kind "HTTPRoute" }}
{{- fail (printf "%s: the HTTPRoute would put the Serve endpoint on the network without authentication (an HTTPRoute cannot carry the chart's NGINX auth, and Serve has none). Protect it with your Gateway's policies and set %s.allowUnauthenticated: true, or use kind: Ingress with %s.auth.basic.existingSecret / %s.auth.external.url." $key $key $key $key) }}
{{- else }}
{{- fail (printf "%s: the Ingress would put the Serve endpoint on the network without authentication (Serve has none): anyone who reaches it can call your application. Set %s.auth.basic.existingSecret or %s.auth.external.url, or %s.allowUnauthenticated: true if it is meant to be public or something else protects it." $key $key $key $key) }}
{{- end }}
{{- end }}
{{- else if eq .endpoint "dashboard" }}
{{- $target := index $root.Values $ex.cluster }}
{{- if not $target.enabled }}
{{- fail (printf "%s.cluster: %s is not enabled, so there is no dashboard to expose; set %s.enabled: true or point %s.cluster at an enabled cluster." $key $ex.cluster $ex.cluster $key) }}
{{- end }}
{{- $protected := or (eq $root.Values.auth.mode "token") (include "ray-platform.exposure.ingressAuthenticates" $ex) }}
{{- if and (not $protected) (not $ex.allowUnauthenticated) }}
{{- fail (printf "%s: the Ray dashboard would be reachable without authentication (auth.mode is disabled and %s.auth sets none): whoever reaches it can run code in your cluster (CVE-2023-48022). Set auth.mode: token, or %s.auth.basic.existingSecret / %s.auth.external.url, or %s.allowUnauthenticated: true if something else protects it." $key $key $key $key $key) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
No two enabled exposures answer the same host and path on the same ingress class (Ingress) or
Gateway (HTTPRoute): the controller would send that path's requests to one of them, which one
depending on the controller, and the other endpoint would be silently unreachable there. `seen`
maps the routes of the exposures checked before to their values keys; this one's are added.
call with: include "ray-platform.exposure.checkRoute" (dict "root" $ "ex" $settings "key" $exposureKey "seen" $seen)
*/}}
{{- define "ray-platform.exposure.checkRoute" -}}
{{- $ex := .ex }}
{{- $via := ternary (printf "Gateway %s/%s" (default .root.Release.Namespace $ex.gateway.namespace) $ex.gateway.name) (printf "ingress class %s" (default "(the default)" $ex.className)) (eq $ex.kind "HTTPRoute") }}
{{- range $host := $ex.hosts }}
{{- $route := printf "host %s path %s on the %s" $host $ex.path $via }}
{{- with get $.seen $route }}
{{- fail (printf "%s: %s is already %s's; the controller would route it to one of them only. Give one of them another host or path." $.key $route .) }}
{{- end }}
{{- $_ := set $.seen $route $.key }}
{{- end }}
{{- end }}
