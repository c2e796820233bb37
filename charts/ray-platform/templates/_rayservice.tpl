{{/*
The RayServices of the release, all built by "ray-platform.rayservice.object": the Stable
Diffusion service (its Serve config and pod extras from _stable-diffusion.tpl) and each of your own
under rayServices.<key> (Serve config from its applications, cluster from rayServices.<key>.cluster).
*/}}

{{/*
"true" when a rayServices.<key> entry renders (enabled unless it says otherwise).
call with: include "ray-platform.rayservice.enabled" $serviceValues
*/}}
{{- define "ray-platform.rayservice.enabled" -}}
{{- if or (not (hasKey . "enabled")) .enabled }}true{{ end }}
{{- end }}

{{/*
The RayService name of rayServices.<key>: its name, else <fullname>-<key>.
call with: include "ray-platform.rayservice.name" (dict "root" $ "key" $key)
*/}}
{{- define "ray-platform.rayservice.name" -}}
{{- $service := index .root.Values.rayServices .key }}
{{- default (printf "%s-%s" (include "ray-platform.names.fullname" .root) .key) $service.name }}
{{- end }}

{{/*
app.kubernetes.io/component of rayServices.<key>'s objects and pods.
call with: include "ray-platform.rayservice.component" $key
*/}}
{{- define "ray-platform.rayservice.component" -}}rayservice-{{ . }}{{- end }}

{{/*
The cluster values of rayServices.<key>: "ray-platform.cluster.derivedValues" of its cluster, with
a created ServiceAccount unless its cluster names one. Sets .out.values.
call with: include "ray-platform.rayservice.clusterValues" (dict "root" $ "key" $key "out" $out)
*/}}
{{- define "ray-platform.rayservice.clusterValues" -}}
{{- $given := default dict (index .root.Values.rayServices .key).cluster }}
{{- include "ray-platform.cluster.derivedValues" (dict "root" .root "given" $given "out" .out) }}
{{- $serviceAccount := dict "create" true "name" "" "annotations" dict }}
{{- $_ := set .out.values "serviceAccount" (mergeOverwrite $serviceAccount (deepCopy (default dict $given.serviceAccount))) }}
{{- end }}

{{/*
The Serve config (serveConfigV2, a YAML document) of rayServices.<key>: its serveConfig keys and
its applications, as given.
call with: include "ray-platform.rayservice.serveConfig" $serviceValues
*/}}
{{- define "ray-platform.rayservice.serveConfig" -}}
{{- $config := deepCopy (default dict .serveConfig) }}
{{- $_ := set $config "applications" .applications }}
{{- toYaml $config }}
{{- end }}

{{/*
Refusals for rayServices.<key> that JSON Schema cannot express: names and route prefixes shared
by two applications, deployments named twice, settings Ray Serve or the operator rejects
together, a cluster that can never start a replica.
call with: include "ray-platform.rayservice.check" (dict "root" $ "key" $key "name" $name "cluster" $clusterValues)
*/}}
{{- define "ray-platform.rayservice.check" -}}
{{- $key := printf "rayServices.%s" .key }}
{{- $service := index .root.Values.rayServices .key }}
{{- include "ray-platform.names.check" (dict "name" .name "max" 47 "kind" "RayService" "key" (printf "%s.name" $key)) }}
{{- $names := dict }}
{{- $prefixes := dict }}
{{- range $i, $app := $service.applications }}
{{- $at := printf "%s.applications[%d]" $key $i }}
{{- with get $names $app.name }}
{{- fail (printf "%s.name: %q is also the name of %s; Serve application names must be unique within a RayService." $at $app.name .) }}
{{- end }}
{{- $_ := set $names $app.name $at }}
{{- /* No route_prefix means Serve's "/"; an explicit null means no HTTP route. */}}
{{- if or (not (hasKey $app "route_prefix")) (not (kindIs "invalid" $app.route_prefix)) }}
{{- $prefix := default "/" $app.route_prefix }}
{{- with get $prefixes $prefix }}
{{- fail (printf "%s.route_prefix: %q is also the route prefix of %s; two applications cannot share one prefix (Serve refuses the config). Give each its own, or null for an application reached only through handles." $at $prefix .) }}
{{- end }}
{{- $_ := set $prefixes $prefix $at }}
{{- end }}
{{- $deployments := dict }}
{{- range $j, $dep := default list $app.deployments }}
{{- $dAt := printf "%s.deployments[%d]" $at $j }}
{{- if hasKey $deployments $dep.name }}
{{- fail (printf "%s.name: %q is listed twice in %s.deployments; give each deployment's overrides once." $dAt $dep.name $at) }}
{{- end }}
{{- $_ := set $deployments $dep.name true }}
{{- with $dep.autoscaling_config }}
{{- if and (hasKey $dep "num_replicas") (ne (toString $dep.num_replicas) "auto") }}
{{- fail (printf "%s: num_replicas and autoscaling_config conflict (Serve refuses a fixed replica count with autoscaling); remove one." $dAt) }}
{{- end }}
{{- if and (hasKey . "min_replicas") (hasKey . "max_replicas") (gt (int .min_replicas) (int .max_replicas)) }}
{{- fail (printf "%s.autoscaling_config.min_replicas (%d) is greater than max_replicas (%d)." $dAt (int .min_replicas) (int .max_replicas)) }}
{{- end }}
{{- if $app.external_scaler_enabled }}
{{- fail (printf "%s.autoscaling_config: %s.external_scaler_enabled is true, and Serve refuses built-in autoscaling next to an external scaler; remove one." $dAt $at) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- $serve := default dict $service.serveConfig }}
{{- if and (eq (toString $serve.proxy_location) "HeadOnly") $service.excludeHeadPodFromServeSvc }}
{{- fail (printf "%s.excludeHeadPodFromServeSvc: with %s.serveConfig.proxy_location HeadOnly the only Serve proxy runs on the head, so %s-serve-svc would have no endpoints. Drop one of the two." $key $key .name) }}
{{- end }}
{{- $cluster := .cluster }}
{{- $upgrade := default dict $service.upgradeStrategy }}
{{- if and (eq (toString $upgrade.type) "NewClusterWithIncrementalUpgrade") (not $cluster.autoscaler.enabled) }}
{{- fail (printf "%s.upgradeStrategy.type: NewClusterWithIncrementalUpgrade needs the Ray autoscaler (%s.cluster.autoscaler.enabled: true): the operator scales the clusters through Serve's target capacity." $key $key) }}
{{- end }}
{{- $groups := 0 }}
{{- range $groupName, $group := $cluster.workerGroups }}
{{- if and (or (not (hasKey $group "enabled")) $group.enabled) (gt (int $group.maxReplicas) 0) }}{{ $groups = add1 $groups }}{{ end }}
{{- end }}
{{- if and (eq $groups 0) (eq (toString (dig "num-cpus" "" (default dict $cluster.head.rayStartParams))) "0") }}
{{- fail (printf "%s.cluster: no worker group can start (none listed with maxReplicas > 0) and the head has rayStartParams num-cpus \"0\" (taken from rayCluster.head unless set), so no Serve replica could ever run. Add %s.cluster.workerGroups.<name>, or give the head CPUs (%s.cluster.head.rayStartParams.num-cpus)." $key $key $key) }}
{{- end }}
{{- end }}

{{/*
One RayService. The dict:
  root             the chart's root context ($)
  name             the RayService name (checked by the caller)
  component        app.kubernetes.io/component of the object and its pods
  service          the service's values (labels, annotations, excludeHeadPodFromServeSvc)
  upgradeStrategy  spec.upgradeStrategy (a map)
  thresholds       optional list of [field, value] pairs rendered after upgradeStrategy, in order
  serveConfig      serveConfigV2 (a YAML document)
  cluster          the cluster's values; clusterKey their values path, for messages
  extra            optional {env, volumes, volumeMounts, annotations} for every pod
call with: include "ray-platform.rayservice.object" (dict "root" $ "name" $name "component" "stable-diffusion" "service" $values "upgradeStrategy" $strategy "serveConfig" $config "cluster" $values "clusterKey" "stableDiffusion" "extra" $extra)
*/}}
{{- define "ray-platform.rayservice.object" -}}
{{- $root := .root }}
---
apiVersion: ray.io/v1
kind: RayService
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "ray-platform.labels.standard" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
    {{- with .service.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  upgradeStrategy:
    type: {{ .upgradeStrategy.type }}
    {{- with .upgradeStrategy.clusterUpgradeOptions }}
    clusterUpgradeOptions:
      {{- toYaml . | nindent 6 }}
    {{- end }}
  {{- range $pair := default list .thresholds }}
  {{ index $pair 0 }}: {{ index $pair 1 }}
  {{- end }}
  {{- /* kindIs "invalid": unset keeps the operator's default (60 s), while 0 must still render. */}}
  {{- if not (kindIs "invalid" .service.rayClusterDeletionDelaySeconds) }}
  rayClusterDeletionDelaySeconds: {{ int64 .service.rayClusterDeletionDelaySeconds }}
  {{- end }}
  excludeHeadPodFromServeSvc: {{ default false .service.excludeHeadPodFromServeSvc }}
  serveConfigV2: |
    {{- .serveConfig | nindent 4 }}
  rayClusterConfig:
    {{- $serve := list (dict "name" "serve" "containerPort" 8000) }}
    {{- include "ray-platform.cluster.spec" (dict "root" $root "cluster" .cluster "key" .clusterKey "component" .component "extra" .extra "extraPorts" $serve) | nindent 4 }}
{{- end }}
