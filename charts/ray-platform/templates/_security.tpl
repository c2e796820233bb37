{{/*
Security pieces of every Ray pod and the release's refusals: ServiceAccounts and the autoscaler's
own API token, and the checks that keep the Ray dashboard from being reachable without
authentication (exposure in _exposure.tpl, NetworkPolicies in _networkpolicy.tpl).
*/}}

{{/*
The ServiceAccount of a cluster's pods.
call with: include "ray-platform.security.serviceAccountName" (dict "root" $ "key" "rayCluster")
*/}}
{{- define "ray-platform.security.serviceAccountName" -}}
{{- $values := dict }}
{{- include "ray-platform.cluster.values" (dict "root" .root "key" .key "out" $values) }}
{{- $cluster := $values.values }}
{{- $sa := $cluster.serviceAccount }}
{{- if $sa.create }}
{{- default (printf "%s-ray" (include "ray-platform.names.cluster" .)) $sa.name }}
{{- else }}
{{- required (printf "%s.serviceAccount.name is required when %s.serviceAccount.create is false (the name of an existing ServiceAccount)." .key .key) $sa.name }}
{{- end }}
{{- end }}

{{/*
The values path of the cluster a node group belongs to: the group's key without its last part
(".head", ".workerGroups.<name>"): "rayCluster.head" -> "rayCluster",
"rayJobs.nightly.cluster.workerGroups.gpu" -> "rayJobs.nightly.cluster".
call with: include "ray-platform.security.clusterKey" "rayCluster.head"
*/}}
{{- define "ray-platform.security.clusterKey" -}}
{{- regexReplaceAll "[.](head|workerGroups[.][^.]+)$" . "" }}
{{- end }}

{{/*
Volume name and mount path of the autoscaler's own Kubernetes API token.
call with: include "ray-platform.security.tokenVolumeName" .
call with: include "ray-platform.security.tokenMountPath" .
*/}}
{{- define "ray-platform.security.tokenVolumeName" -}}autoscaler-kube-api{{- end }}
{{- define "ray-platform.security.tokenMountPath" -}}/var/run/secrets/kubernetes.io/serviceaccount{{- end }}

{{/*
Pod spec fields for every Ray pod: the cluster's ServiceAccount and no automatic token. Ray code
never needs the Kubernetes API; the autoscaler sidecar does, and gets a token volume of its own
(see security.headVolumes).
call with: include "ray-platform.security.podIdentity" $podTemplateArguments  (the dict of "ray-platform.pod.template")
*/}}
{{- define "ray-platform.security.podIdentity" -}}
{{- $key := include "ray-platform.security.clusterKey" .key }}
{{- $values := dict }}
{{- include "ray-platform.cluster.values" (dict "root" .root "key" $key "out" $values) }}
{{- if hasKey $values.values "serviceAccount" -}}
serviceAccountName: {{ include "ray-platform.security.serviceAccountName" (dict "root" .root "key" $key) | quote }}
{{ end -}}
automountServiceAccountToken: false
{{- end }}

{{/*
Extra volumes of a Ray pod (a YAML list): on a head whose cluster runs the in-tree autoscaler,
the projected ServiceAccount token, CA bundle and namespace that the kubelet would otherwise mount
into every container. Only the autoscaler container mounts it (autoscalerOptions.volumeMounts,
which KubeRay appends to the sidecar), so user code in the Ray container cannot use the
autoscaler's permissions (patch pods, patch the RayCluster).
call with: include "ray-platform.security.headVolumes" $podTemplateArguments  (the dict of "ray-platform.pod.template")
*/}}
{{- define "ray-platform.security.headVolumes" -}}
{{- $values := dict }}
{{- include "ray-platform.cluster.values" (dict "root" .root "key" (include "ray-platform.security.clusterKey" .key) "out" $values) }}
{{- $autoscaler := default dict $values.values.autoscaler }}
{{- if and (eq .nodeType "head") $autoscaler.enabled }}
- name: {{ include "ray-platform.security.tokenVolumeName" . }}
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

{{/*
autoscalerOptions.volumeMounts: the token volume at the path the Ray autoscaler reads.
call with: include "ray-platform.security.autoscalerVolumeMounts" .
*/}}
{{- define "ray-platform.security.autoscalerVolumeMounts" -}}
- name: {{ include "ray-platform.security.tokenVolumeName" . }}
  mountPath: {{ include "ray-platform.security.tokenMountPath" . }}
  readOnly: true
{{- end }}

{{/*
Refusals that JSON Schema cannot express: head Services reachable from outside the cluster
without authentication, exposures of the dashboard without authentication or with contradictory
settings, a locked-down egress that would cut the autoscaler off the Kubernetes API, and
per-cluster names that collide.
call with: include "ray-platform.security.check" .
*/}}
{{- define "ray-platform.security.check" -}}
{{- $root := . }}
{{- $authOn := eq .Values.auth.mode "token" }}
{{- /* The RayJobs' own clusters too (_rayjob.tpl). */}}
{{- range $cluster := concat (include "ray-platform.cluster.list" . | fromYamlArray) (include "ray-platform.rayjob.clusters" . | fromYamlArray) }}
{{- $values := dict }}
{{- include "ray-platform.cluster.values" (dict "root" $root "key" $cluster.key "out" $values) }}
{{- $head := $values.values.head }}
{{- if and (has $head.serviceType (list "LoadBalancer" "NodePort")) (not $authOn) (not $head.allowUnauthenticated) }}
{{- fail (printf "%s.head.serviceType: %s puts the Ray dashboard (8265, remote code execution), Jobs API and Ray Client on the network while auth.mode is disabled (CVE-2023-48022). Keep ClusterIP and use ingress.dashboard with authentication, set auth.mode: token, or set %s.head.allowUnauthenticated: true if something else protects the Service." $cluster.key $head.serviceType $cluster.key) }}
{{- end }}
{{- end }}
{{- $routes := dict }}
{{- range $exposure := include "ray-platform.exposure.list" . | fromYamlArray }}
{{- $settings := dict }}
{{- include "ray-platform.exposure.values" (dict "root" $root "exposure" $exposure "out" $settings) }}
{{- if $settings.ex.enabled }}
{{- include "ray-platform.exposure.check" (dict "root" $root "ex" $settings.ex "key" $exposure.key "endpoint" $exposure.endpoint) }}
{{- include "ray-platform.exposure.checkRoute" (dict "root" $root "ex" $settings.ex "key" $exposure.key "seen" $routes) }}
{{- end }}
{{- end }}
{{- include "ray-platform.networkpolicy.check" . }}
{{- include "ray-platform.security.checkNames" . }}
{{- end }}

{{/*
Per-cluster objects (head Services, ServiceAccounts, policies, budgets) must not collide.
call with: include "ray-platform.security.checkNames" .
*/}}
{{- define "ray-platform.security.checkNames" -}}
{{- if and .Values.rayCluster.enabled .Values.stableDiffusion.enabled }}
{{- $rayCluster := include "ray-platform.names.rayCluster" . }}
{{- if eq $rayCluster (include "ray-platform.names.rayService" .) }}
{{- fail (printf "stableDiffusion.name: %q is also the RayCluster's name (rayCluster.name); their head Services (<name>-head-svc) and the chart's per-cluster objects would collide. Give one of them another name." $rayCluster) }}
{{- end }}
{{- if and .Values.rayCluster.serviceAccount.create .Values.stableDiffusion.serviceAccount.create }}
{{- $sa := include "ray-platform.security.serviceAccountName" (dict "root" . "key" "stableDiffusion") }}
{{- if eq $sa (include "ray-platform.security.serviceAccountName" (dict "root" . "key" "rayCluster")) }}
{{- fail (printf "stableDiffusion.serviceAccount.name: %q is also rayCluster.serviceAccount.name and both are created; name them differently, or create one and set the other's create: false." $sa) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* Every cluster's name, and every ServiceAccount the chart creates, once (your RayServices included). */}}
{{- $names := dict }}
{{- $accounts := dict }}
{{- range $cluster := include "ray-platform.cluster.list" . | fromYamlArray }}
{{- $nameKey := printf "%s.name" (trimSuffix ".cluster" $cluster.key) }}
{{- with get $names $cluster.name }}
{{- fail (printf "%s: %q is also the name of %s; their head Services (<name>-head-svc) and the chart's per-cluster objects would collide. Give one of them another name." $nameKey $cluster.name .) }}
{{- end }}
{{- $_ := set $names $cluster.name $nameKey }}
{{- $values := dict }}
{{- include "ray-platform.cluster.values" (dict "root" $ "key" $cluster.key "out" $values) }}
{{- if dig "serviceAccount" "create" false (default dict $values.values) }}
{{- $account := include "ray-platform.security.serviceAccountName" (dict "root" $ "key" $cluster.key) }}
{{- with get $accounts $account }}
{{- fail (printf "%s.serviceAccount.name: %q is also %s and both are created; name them differently, or create one and set the other's create: false." $cluster.key $account .) }}
{{- end }}
{{- $_ := set $accounts $account (printf "%s.serviceAccount.name" $cluster.key) }}
{{- end }}
{{- end }}
{{- end }}
