{{/*
`helm test` hooks: which checks run against which Service, and the Pod that runs one. The checks
themselves are files/tests/helm_test.py, shipped in a hook ConfigMap and run by the Ray image's
Python (already on the nodes), so the tests pull nothing new.
*/}}

{{/*
Name prefix of the test hooks' objects.
call with: include "ray-platform.tests.name" .
*/}}
{{- define "ray-platform.tests.name" -}}
{{- include "ray-platform.names.fullname" . | trunc 48 | trimSuffix "-" }}-test
{{- end }}

{{/*
The checks to run, as a YAML list of {name, check, env, tokenSecret}: the dashboard and a Ray job
on the RayCluster (the cluster for jobs), /imagine on the Stable Diffusion service. With token
auth, the token comes from auth.existingSecret, else from the Secret the operator generates for
the RayCluster. The RayService's cluster has a generated name, so without auth.existingSecret its
Secret's name is unknown at render time: its dashboard check then only proves the dashboard
refuses requests without a token.
call with: include "ray-platform.tests.checks" . | fromYamlArray
*/}}
{{- define "ray-platform.tests.checks" -}}
{{- $root := . }}
{{- $tokenAuth := eq .Values.auth.mode "token" }}
{{- $checks := list }}
{{- if .Values.rayCluster.enabled }}
{{- $cluster := include "ray-platform.names.rayCluster" . }}
{{- $secret := "" }}
{{- if $tokenAuth }}
{{- $secret = default (include "ray-platform.kuberay.tokenSecretName" $cluster) .Values.auth.existingSecret }}
{{- end }}
{{- $dashboard := printf "http://%s-head-svc:8265" $cluster }}
{{- $checks = append $checks (dict "name" "dashboard" "check" "dashboard" "tokenSecret" $secret "env" (list (dict "name" "RAY_DASHBOARD_URL" "value" $dashboard))) }}
{{- $checks = append $checks (dict "name" "ray-job" "check" "job" "tokenSecret" $secret "env" (list (dict "name" "RAY_DASHBOARD_URL" "value" $dashboard))) }}
{{- else if .Values.stableDiffusion.enabled }}
{{- $sd := include "ray-platform.names.rayService" . }}
{{- $secret := "" }}
{{- if $tokenAuth }}
{{- $secret = .Values.auth.existingSecret }}
{{- end }}
{{- $env := list (dict "name" "RAY_DASHBOARD_URL" "value" (printf "http://%s-head-svc:8265" $sd)) }}
{{- if and $tokenAuth (not $secret) }}
{{- $env = append $env (dict "name" "AUTH_SKIP_REASON" "value" (printf "the token of RayService %s lives in a Secret named after its generated RayCluster; set auth.existingSecret to test the authenticated API" $sd)) }}
{{- end }}
{{- $checks = append $checks (dict "name" "dashboard" "check" "dashboard" "tokenSecret" $secret "env" $env) }}
{{- end }}
{{- /* Each RayService of your own (rayServices.<name>): its dashboard, as for the Stable
Diffusion service's cluster (its token Secret is named after a generated RayCluster too). */}}
{{- range $service := include "ray-platform.cluster.list" . | fromYamlArray }}
{{- if hasPrefix "rayServices." $service.key }}
{{- $secret := "" }}
{{- if $tokenAuth }}
{{- $secret = $root.Values.auth.existingSecret }}
{{- end }}
{{- $env := list (dict "name" "RAY_DASHBOARD_URL" "value" (printf "http://%s-head-svc:8265" $service.name)) }}
{{- if and $tokenAuth (not $secret) }}
{{- $env = append $env (dict "name" "AUTH_SKIP_REASON" "value" (printf "the token of RayService %s lives in a Secret named after its generated RayCluster; set auth.existingSecret to test the authenticated API" $service.name)) }}
{{- end }}
{{- $checks = append $checks (dict "name" (printf "dashboard-%s" (trimPrefix "rayservice-" $service.component)) "check" "dashboard" "tokenSecret" $secret "env" $env) }}
{{- end }}
{{- end }}
{{- if .Values.stableDiffusion.enabled }}
{{- $sd := .Values.stableDiffusion }}
{{- $prefix := trimSuffix "/" $sd.app.routePrefix }}
{{- $query := "prompt=a+red+fox+in+the+snow" }}
{{- $size := 0 }}
{{- if eq $sd.app.source "bundled" }}
{{- /* 128 px (clamped to the bundled app's limits) and two steps keep a run on a CPU short. */}}
{{- $limits := $sd.apiIngress.userConfig }}
{{- $size = int (max (int $limits.min_img_size) (min 128 (int $limits.max_img_size))) }}
{{- $query = printf "%s&img_size=%d&steps=%d&seed=1" $query $size (int (min 2 (int $limits.max_steps))) }}
{{- end }}
{{- $url := printf "http://%s-serve-svc:8000%s/imagine?%s" (include "ray-platform.names.rayService" $root) $prefix $query }}
{{- $checks = append $checks (dict "name" "imagine" "check" "imagine" "tokenSecret" "" "env" (list (dict "name" "IMAGINE_URL" "value" $url) (dict "name" "IMAGINE_SIZE" "value" (toString $size)))) }}
{{- end }}
{{- toYaml $checks }}
{{- end }}

{{/*
Labels of the test hooks: the release's labels with component helm-test.
call with: include "ray-platform.tests.labels" .
*/}}
{{- define "ray-platform.tests.labels" -}}
{{ include "ray-platform.labels.standard" . }}
app.kubernetes.io/component: helm-test
{{- end }}

{{/*
One test Pod, for an item of "ray-platform.tests.checks". Pod Security "restricted", a read-only
root filesystem, no service account token (the checks talk to Ray, not to the Kubernetes API),
and a deadline.
call with: include "ray-platform.tests.pod" (dict "root" $ "check" $check)
*/}}
{{- define "ray-platform.tests.pod" -}}
{{- $root := .root }}
{{- $check := .check }}
{{- $tests := $root.Values.tests }}
{{- $image := merge (deepCopy (default dict $tests.image)) $root.Values.image }}
{{- $scriptDir := "/opt/ray-platform-tests" }}
{{- $tokenDir := "/var/run/secrets/ray-platform" -}}
apiVersion: v1
kind: Pod
metadata:
  name: {{ printf "%s-%s" (include "ray-platform.tests.name" $root) $check.name | trunc 63 | trimSuffix "-" }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "ray-platform.tests.labels" $root | nindent 4 }}
    ray-platform.io/test: {{ $check.name }}
    {{- /* The chart's NetworkPolicies admit in-cluster clients by these labels (dashboard, Serve). */}}
    {{- $policy := default dict $root.Values.networkPolicy }}
    {{- $clients := default dict $policy.clients }}
    {{- if and $policy.enabled $clients.enabled (has (default "" $clients.namespace) (list "" $root.Release.Namespace)) }}
    {{- with $clients.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- end }}
  annotations:
    helm.sh/hook: test
    # Kept when it fails (its logs and events explain why), replaced by the next `helm test`.
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
spec:
  restartPolicy: Never
  activeDeadlineSeconds: {{ int $tests.timeoutSeconds }}
  automountServiceAccountToken: false
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    runAsGroup: 100
    fsGroup: 100
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: {{ $check.name }}
      image: {{ printf "%s:%s" $image.repository $image.tag | quote }}
      imagePullPolicy: {{ $image.pullPolicy }}
      command: ["python", "{{ $scriptDir }}/helm_test.py", "{{ $check.check }}"]
      env:
        - name: TEST_TIMEOUT_S
          # The script's own deadline ends before the Pod's, so it can say what it was waiting for.
          value: {{ sub (int $tests.timeoutSeconds) (min 30 (div (int $tests.timeoutSeconds) 4)) | quote }}
        - name: RAY_AUTH_MODE
          value: {{ $root.Values.auth.mode | quote }}
        {{- if $check.tokenSecret }}
        - name: RAY_AUTH_TOKEN_FILE
          value: {{ $tokenDir }}/auth_token
        {{- end }}
        - name: PYTHONDONTWRITEBYTECODE
          value: "1"
        - name: HOME
          value: /tmp
        {{- with $check.env }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      resources:
        {{- toYaml $tests.resources | nindent 8 }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        runAsGroup: 100
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop:
            - ALL
        seccompProfile:
          type: RuntimeDefault
      volumeMounts:
        - name: scripts
          mountPath: {{ $scriptDir }}
          readOnly: true
        - name: tmp
          mountPath: /tmp
        {{- if $check.tokenSecret }}
        - name: auth-token
          mountPath: {{ $tokenDir }}
          readOnly: true
        {{- end }}
  volumes:
    - name: scripts
      configMap:
        name: {{ include "ray-platform.tests.name" $root }}-scripts
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if $check.tokenSecret }}
    - name: auth-token
      secret:
        secretName: {{ $check.tokenSecret | quote }}
        defaultMode: 0440
        items:
          - key: auth_token
            path: auth_token
    {{- end }}
{{- end }}
