{{/*
Pieces of the Stable Diffusion RayService (rayservice.yaml, configmap-serve-app.yaml,
pvc-model-cache.yaml): its Serve config, what its pods get, its refusals. Its name is
"ray-platform.names.rayService" (_names.tpl).
*/}}

{{/*
Where the bundled app's ConfigMap is mounted; its parent goes on PYTHONPATH.
call with: include "ray-platform.stable-diffusion.appsDir" .
*/}}
{{- define "ray-platform.stable-diffusion.appsDir" -}}/opt/ray-platform/apps{{- end }}

{{/*
The model cache PersistentVolumeClaim: weights.cache.existingClaim, else <name>-model-cache.
call with: include "ray-platform.stable-diffusion.cacheClaim" .
*/}}
{{- define "ray-platform.stable-diffusion.cacheClaim" -}}
{{- $cache := .Values.stableDiffusion.weights.cache }}
{{- default (printf "%s-model-cache" (include "ray-platform.names.rayService" .)) $cache.existingClaim }}
{{- end }}

{{/*
The model deployment's user_config: the values' userConfig, plus what the weights source implies
(cache folder, local pipeline path, no hub access).
call with: include "ray-platform.stable-diffusion.modelUserConfig" .
*/}}
{{- define "ray-platform.stable-diffusion.modelUserConfig" -}}
{{- $sd := .Values.stableDiffusion }}
{{- /* Keys left null are dropped (the app's default applies): Helm 4.3 drops null defaults of
values.yaml before templates run and Helm 3 keeps them, so both majors render the same. */}}
{{- $config := dict }}
{{- range $key, $value := deepCopy $sd.model.userConfig }}
{{- if not (kindIs "invalid" $value) }}
{{- $_ := set $config $key $value }}
{{- end }}
{{- end }}
{{- $weights := $sd.weights }}
{{- if eq $weights.source "cache" }}
{{- $_ := set $config "cache_dir" $weights.cache.mountPath }}
{{- if $weights.cache.readOnly }}
{{- $_ := set $config "local_files_only" true }}
{{- end }}
{{- else if eq $weights.source "local" }}
{{- $_ := set $config "model_id" $weights.local.path }}
{{- $_ := set $config "local_files_only" true }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
The RayService's serveConfigV2 (a YAML document).
call with: include "ray-platform.stable-diffusion.serveConfig" .
*/}}
{{- define "ray-platform.stable-diffusion.serveConfig" -}}
{{- $sd := .Values.stableDiffusion }}
{{- $app := $sd.app }}
{{- $runtimeEnv := dict }}
{{- if eq $app.source "remote" }}
{{- $_ := set $runtimeEnv "working_dir" (required "stableDiffusion.app.remote.workingDir is required when stableDiffusion.app.source is remote (URL of a zip of your app)" $app.remote.workingDir) }}
{{- end }}
{{- with $app.pip }}
{{- $_ := set $runtimeEnv "pip" . }}
{{- end -}}
applications:
  - name: {{ $app.name }}
    route_prefix: {{ $app.routePrefix }}
    {{- if eq $app.source "remote" }}
    import_path: {{ required "stableDiffusion.app.remote.importPath is required when stableDiffusion.app.source is remote (module:application)" $app.remote.importPath }}
    {{- else }}
    import_path: ray_platform_sd.app:entrypoint
    {{- end }}
    {{- with $runtimeEnv }}
    runtime_env:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    deployments:
      - name: APIIngress
        num_replicas: {{ $sd.apiIngress.replicas }}
        max_ongoing_requests: {{ $sd.apiIngress.maxOngoingRequests }}
        max_queued_requests: {{ $sd.apiIngress.maxQueuedRequests }}
        backpressure_config:
          retry_after_s: {{ $sd.apiIngress.retryAfterS }}
        ray_actor_options:
          num_cpus: {{ $sd.apiIngress.numCpus }}
        user_config:
          {{- toYaml $sd.apiIngress.userConfig | nindent 10 }}
      - name: StableDiffusionModel
        max_ongoing_requests: {{ $sd.model.maxOngoingRequests }}
        max_queued_requests: {{ $sd.model.maxQueuedRequests }}
        backpressure_config:
          retry_after_s: {{ $sd.apiIngress.retryAfterS }}
        autoscaling_config:
          min_replicas: {{ $sd.model.autoscaling.minReplicas }}
          max_replicas: {{ $sd.model.autoscaling.maxReplicas }}
          target_ongoing_requests: {{ $sd.model.autoscaling.targetOngoingRequests }}
        ray_actor_options:
          num_cpus: {{ $sd.model.numCpus }}
          num_gpus: {{ $sd.model.numGpus }}
        health_check_period_s: {{ $sd.model.healthCheckPeriodS }}
        health_check_timeout_s: {{ $sd.model.healthCheckTimeoutS }}
        graceful_shutdown_timeout_s: {{ $sd.model.gracefulShutdownTimeoutS }}
        user_config:
          {{- include "ray-platform.stable-diffusion.modelUserConfig" . | nindent 10 }}
{{- end }}

{{/*
What the chart adds to every pod of the service's cluster: the app on PYTHONPATH, the model
weights' volume and environment, the hub token. Returns YAML {env, volumes, volumeMounts, annotations}.
call with: include "ray-platform.stable-diffusion.podExtras" . | fromYaml
*/}}
{{- define "ray-platform.stable-diffusion.podExtras" -}}
{{- $sd := .Values.stableDiffusion }}
{{- $weights := $sd.weights }}
{{- $env := list }}
{{- $volumes := list }}
{{- $mounts := list }}
{{- $annotations := dict }}
{{- if eq $sd.app.source "bundled" }}
{{- $appsDir := include "ray-platform.stable-diffusion.appsDir" . }}
{{- $env = append $env (dict "name" "PYTHONPATH" "value" $appsDir) }}
{{- $volumes = append $volumes (dict "name" "serve-app" "configMap" (dict "name" (printf "%s-app" (include "ray-platform.names.rayService" .)))) }}
{{- $mounts = append $mounts (dict "name" "serve-app" "mountPath" (printf "%s/ray_platform_sd" $appsDir) "readOnly" true) }}
{{- /* A changed app rolls out as a new cluster, like any other change of the pod template. */}}
{{- $_ := set $annotations "ray-platform.io/app-checksum" (include "ray-platform.stable-diffusion.appFiles" . | sha256sum) }}
{{- end }}
{{- if eq $weights.source "cache" }}
{{- $env = append $env (dict "name" "HF_HOME" "value" $weights.cache.mountPath) }}
{{- if $weights.cache.readOnly }}
{{- $env = append $env (dict "name" "HF_HUB_OFFLINE" "value" "1") }}
{{- end }}
{{- $volumes = append $volumes (dict "name" "model-cache" "persistentVolumeClaim" (dict "claimName" (include "ray-platform.stable-diffusion.cacheClaim" .) "readOnly" $weights.cache.readOnly)) }}
{{- $mounts = append $mounts (dict "name" "model-cache" "mountPath" $weights.cache.mountPath "readOnly" $weights.cache.readOnly) }}
{{- else if eq $weights.source "local" }}
{{- $env = append $env (dict "name" "HF_HUB_OFFLINE" "value" "1") }}
{{- with $weights.local.existingClaim }}
{{- $volumes = append $volumes (dict "name" "model-local" "persistentVolumeClaim" (dict "claimName" . "readOnly" true)) }}
{{- $mounts = append $mounts (dict "name" "model-local" "mountPath" $weights.local.mountPath "readOnly" true) }}
{{- end }}
{{- end }}
{{- with $weights.hubToken.existingSecret }}
{{- if ne $weights.source "local" }}
{{- $env = append $env (dict "name" "HF_TOKEN" "valueFrom" (dict "secretKeyRef" (dict "name" . "key" $weights.hubToken.key))) }}
{{- end }}
{{- end }}
{{- toYaml (dict "env" $env "volumes" $volumes "volumeMounts" $mounts "annotations" $annotations) }}
{{- end }}

{{/*
The bundled app's files as ConfigMap data (file name -> content).
call with: include "ray-platform.stable-diffusion.appFiles" .
*/}}
{{- define "ray-platform.stable-diffusion.appFiles" -}}
{{- (.Files.Glob "files/serve/ray_platform_sd/*.py").AsConfig }}
{{- end }}

{{/*
How many model replicas the enabled worker groups hold at their maxReplicas: per worker, its gpus
over model.numGpus (a GPU model), else its CPUs over model.numCpus (the CPUs KubeRay gives Ray:
rayStartParams num-cpus, else the container's CPU limit, else its request, rounded up). The
ingress's small CPU share is left out. -1 when nothing bounds it (numCpus 0 on a CPU model).
call with: include "ray-platform.stable-diffusion.replicasThatFit" .
*/}}
{{- define "ray-platform.stable-diffusion.replicasThatFit" -}}
{{- $model := .Values.stableDiffusion.model }}
{{- $gpus := float64 $model.numGpus }}
{{- $cpus := float64 $model.numCpus }}
{{- $fit := 0 }}
{{- range $name, $group := .Values.stableDiffusion.workerGroups }}
{{- if or (not (hasKey $group "enabled")) $group.enabled }}
{{- $per := 0.0 }}
{{- if gt $gpus 0.0 }}
{{- $per = floor (divf (float64 (default 0 $group.gpus)) $gpus) }}
{{- else if gt $cpus 0.0 }}
{{- $resources := default dict $group.resources }}
{{- $quantity := dig "num-cpus" (dig "cpu" (dig "cpu" "0" (default dict $resources.requests)) (default dict $resources.limits)) (default dict $group.rayStartParams) | toString }}
{{- $workerCpus := ternary (divf (float64 (trimSuffix "m" $quantity)) 1000.0) (float64 $quantity) (hasSuffix "m" $quantity) | ceil }}
{{- $per = floor (divf $workerCpus $cpus) }}
{{- end }}
{{- $fit = add $fit (mul (int $per) (int $group.maxReplicas)) }}
{{- end }}
{{- end }}
{{- if and (eq $gpus 0.0) (eq $cpus 0.0) }}-1{{ else }}{{ $fit }}{{ end }}
{{- end }}

{{/*
Refuse a service that can never become ready: model replicas asking for more GPUs than any
worker has, autoscaling bounds upside down, request limits that contradict each other.
call with: include "ray-platform.stable-diffusion.check" .
*/}}
{{- define "ray-platform.stable-diffusion.check" -}}
{{- $sd := .Values.stableDiffusion }}
{{- $gpus := float64 $sd.model.numGpus }}
{{- if gt $gpus 0.0 }}
{{- $most := 0 }}
{{- range $name, $group := $sd.workerGroups }}
{{- if and (or (not (hasKey $group "enabled")) $group.enabled) (gt (int (default 0 $group.gpus)) $most) }}
{{- $most = int $group.gpus }}
{{- end }}
{{- end }}
{{- if lt (float64 $most) $gpus }}
{{- fail (printf "stableDiffusion.model.numGpus is %v but no enabled stableDiffusion.workerGroups.<name>.gpus is that high (most: %d): the replicas would wait forever. Give a worker group gpus, or set stableDiffusion.model.numGpus: 0 and userConfig.device: cpu on CPU-only clusters." $sd.model.numGpus $most) }}
{{- end }}
{{- end }}
{{- $scaling := $sd.model.autoscaling }}
{{- if gt (int $scaling.minReplicas) (int $scaling.maxReplicas) }}
{{- fail (printf "stableDiffusion.model.autoscaling.minReplicas (%d) is greater than stableDiffusion.model.autoscaling.maxReplicas (%d)." (int $scaling.minReplicas) (int $scaling.maxReplicas)) }}
{{- end }}
{{- $fit := int (include "ray-platform.stable-diffusion.replicasThatFit" .) }}
{{- if and (ge $fit 0) (gt (int $scaling.maxReplicas) $fit) }}
{{- fail (printf "stableDiffusion.model.autoscaling.maxReplicas (%d) is more model replicas than the enabled stableDiffusion.workerGroups can hold at their maxReplicas (%d, at stableDiffusion.model.numGpus %v / numCpus %v each): Serve would keep asking for replicas that never start. Lower it, or raise a worker group's maxReplicas." (int $scaling.maxReplicas) $fit $sd.model.numGpus $sd.model.numCpus) }}
{{- end }}
{{- $limits := $sd.apiIngress.userConfig }}
{{- if not (and (le (int $limits.min_img_size) (int $limits.default_img_size)) (le (int $limits.default_img_size) (int $limits.max_img_size))) }}
{{- fail (printf "stableDiffusion.apiIngress.userConfig: need min_img_size <= default_img_size <= max_img_size, got %v, %v, %v." $limits.min_img_size $limits.default_img_size $limits.max_img_size) }}
{{- end }}
{{- if gt (int $limits.default_steps) (int $limits.max_steps) }}
{{- fail (printf "stableDiffusion.apiIngress.userConfig.default_steps (%v) is greater than max_steps (%v)." $limits.default_steps $limits.max_steps) }}
{{- end }}
{{- if gt (float64 $limits.default_guidance) (float64 $limits.max_guidance) }}
{{- fail (printf "stableDiffusion.apiIngress.userConfig.default_guidance (%v) is greater than max_guidance (%v)." $limits.default_guidance $limits.max_guidance) }}
{{- end }}
{{- $batch := int (default 1 $sd.model.userConfig.max_batch_size) }}
{{- if lt (int $sd.model.maxOngoingRequests) $batch }}
{{- fail (printf "stableDiffusion.model.maxOngoingRequests (%d) is below stableDiffusion.model.userConfig.max_batch_size (%d): batches could never fill." (int $sd.model.maxOngoingRequests) $batch) }}
{{- end }}
{{- if and (eq $sd.weights.source "cache") (not $sd.weights.cache.existingClaim) (not $sd.weights.cache.size) }}
{{- fail "stableDiffusion.weights.cache.size is required when the chart creates the model cache PVC (no stableDiffusion.weights.cache.existingClaim)." }}
{{- end }}
{{- end }}
