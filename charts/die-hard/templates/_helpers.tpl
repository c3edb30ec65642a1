{{/* The chart name, or nameOverride. */}}
{{- define "die-hard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The resource name prefix: fullnameOverride, or `<release>-<chart>` (just the release name when
it already contains the chart name), at most 63 characters.
*/}}
{{- define "die-hard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* `<fullname>-<component>`; the prefix is shortened so the whole stays within 63. */}}
{{- define "die-hard.componentName" -}}
{{- $prefix := include "die-hard.fullname" .context | trunc (int (sub 62 (len .component))) | trimSuffix "-" }}
{{- printf "%s-%s" $prefix .component }}
{{- end }}

{{- define "die-hard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: name, instance and component only (never the version: selectors are immutable). */}}
{{- define "die-hard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "die-hard.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* Labels of every object: call with (dict "context" $ "component" "web"); component may be empty. */}}
{{- define "die-hard.labels" -}}
helm.sh/chart: {{ include "die-hard.chart" .context }}
{{ include "die-hard.selectorLabels" . }}
app.kubernetes.io/version: {{ include "die-hard.imageTag" .context | quote }}
app.kubernetes.io/part-of: die-hard
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
{{- end }}

{{/* The image tag: image.tag, else the chart's appVersion; `latest` is refused. */}}
{{- define "die-hard.imageTag" -}}
{{- $tag := toString (default .Chart.AppVersion .Values.image.tag) }}
{{- if or (not $tag) (eq $tag "latest") }}
{{- fail "image.tag must name a version (not empty, not `latest`): set image.tag or the chart's appVersion" }}
{{- end }}
{{- $tag }}
{{- end }}

{{- define "die-hard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository (include "die-hard.imageTag" .) .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "die-hard.imageTag" .) }}
{{- end }}
{{- end }}

{{- define "die-hard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "die-hard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the pods read: existingSecret, or the chart's own. */}}
{{- define "die-hard.secretName" -}}
{{- default (include "die-hard.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* The web Service's in-cluster names, always in ALLOWED_HOSTS. */}}
{{- define "die-hard.webServiceHosts" -}}
{{- $service := include "die-hard.componentName" (dict "context" . "component" "web") }}
{{- $hosts := list $service (printf "%s.%s.svc" $service .Release.Namespace) (printf "%s.%s.svc.cluster.local" $service .Release.Namespace) }}
{{- join "," $hosts }}
{{- end }}

{{/*
A host name as Django's ALLOWED_HOSTS matches it: an ingress wildcard `*.example.com` is
Django's `.example.com` (the domain and its subdomains); Django never matches a `*.` entry.
*/}}
{{- define "die-hard.allowedHost" -}}
{{- regexReplaceAll "^\\*\\." . "." }}
{{- end }}

{{/* ALLOWED_HOSTS: config.ALLOWED_HOSTS, the ingress hosts and the web Service's names. */}}
{{- define "die-hard.allowedHosts" -}}
{{- $hosts := list }}
{{- range (splitList "," (toString .Values.config.ALLOWED_HOSTS)) }}
{{- if trim . }}{{ $hosts = append $hosts (include "die-hard.allowedHost" (trim .)) }}{{ end }}
{{- end }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- $hosts = append $hosts (include "die-hard.allowedHost" .host) }}
{{- end }}
{{- end }}
{{- $hosts = concat $hosts (splitList "," (include "die-hard.webServiceHosts" .)) }}
{{- join "," (uniq $hosts) }}
{{- end }}

{{/*
The migrate Job's name: `<fullname>-migrate-<10 hex of a sha256>` over everything that shapes
the Job: its whole rendered spec (image, pull policy, resources, scheduling, pod annotations and
the configuration checksum in them), the chart version and `migrations.rerun`. A Job's template
is immutable, so any change to it must come with a new name; an upgrade that changes none of
it keeps the finished Job.
*/}}
{{- define "die-hard.migrateJobName" -}}
{{- $inputs := list (include "die-hard.migrateJobSpec" .) .Chart.Version (toString .Values.migrations.rerun) }}
{{- $hash := join "\n---\n" $inputs | sha256sum | trunc 10 }}
{{- printf "%s-%s" (include "die-hard.componentName" (dict "context" . "component" "migrate") | trunc 52 | trimSuffix "-") $hash }}
{{- end }}

{{/*
Changes whenever the shared configuration changes, so pods roll on a config change: the data of
the ConfigMap and Secret (not their labels, so a new chart version alone rolls nothing), or the
existingSecret's name and existingSecretChecksum.
*/}}
{{- define "die-hard.configChecksum" -}}
{{- $config := (fromYaml (include (print .Template.BasePath "/configmap.yaml") .)).data }}
{{- $secret := printf "existingSecret=%s\nchecksum=%s" .Values.existingSecret .Values.existingSecretChecksum }}
{{- if not .Values.existingSecret }}
{{- $secret = toJson (fromYaml (include (print .Template.BasePath "/secret.yaml") .)).data }}
{{- end }}
{{- printf "%s\n---\n%s" (toJson $config) $secret | sha256sum }}
{{- end }}

{{/* A role's own values (web, worker, beat, relay, migrate): (dict "context" $ "component" "web"). */}}
{{- define "die-hard.roleValues" -}}
{{- $values := .context.Values }}
{{- $roles := dict "web" $values.web "worker" $values.worker "beat" $values.beat "relay" $values.relay "migrate" $values.migrations }}
{{- toYaml (get $roles .component | default dict) }}
{{- end }}

{{/* Pod metadata of every workload: (dict "context" $ "component" "web"). */}}
{{- define "die-hard.podMetadata" -}}
{{- $role := fromYaml (include "die-hard.roleValues" .) }}
{{- $labels := merge (dict) ($role.podLabels | default dict) .context.Values.podLabels }}
{{- $annotations := merge (dict) ($role.podAnnotations | default dict) .context.Values.podAnnotations }}
labels:
  {{- include "die-hard.selectorLabels" . | nindent 2 }}
  app.kubernetes.io/version: {{ include "die-hard.imageTag" .context | quote }}
  app.kubernetes.io/part-of: die-hard
  {{- with omit $labels "app.kubernetes.io/name" "app.kubernetes.io/instance" "app.kubernetes.io/component" "app.kubernetes.io/version" "app.kubernetes.io/part-of" }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include "die-hard.configChecksum" .context }}
  {{- with omit $annotations "checksum/config" }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/*
Pod spec fields shared by every workload (service account, security, scheduling):
(dict "context" $ "component" "web"). A role's own nodeSelector, tolerations and affinity
replace the global ones. No service links: a Service named `clickhouse`, `redis` or
`postgres` in the namespace would otherwise set CLICKHOUSE_PORT=tcp://... and the like.
*/}}
{{- define "die-hard.podCommon" -}}
{{- $values := .context.Values }}
{{- $role := fromYaml (include "die-hard.roleValues" .) }}
serviceAccountName: {{ include "die-hard.serviceAccountName" .context }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with $values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $values.podSecurityContext | nindent 2 }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $role.nodeSelector | default $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $role.tolerations | default $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $role.affinity | default $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The extra env entries of a die-hard container: extraEnv, then the role's. */}}
{{- define "die-hard.extraEnv" -}}
{{- $role := fromYaml (include "die-hard.roleValues" .) }}
{{- with concat .context.Values.extraEnv ($role.extraEnv | default list) }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* The sidecars of a Deployment's pods: sidecars, then the role's. */}}
{{- define "die-hard.sidecars" -}}
{{- $role := fromYaml (include "die-hard.roleValues" .) }}
{{- with concat .context.Values.sidecars ($role.sidecars | default list) }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/* Spread a component's pods over nodes and zones, never blocking scheduling. */}}
{{- define "die-hard.topologySpread" -}}
topologySpreadConstraints:
{{- range .context.Values.topologySpread.topologyKeys }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    # Only the pods of the same ReplicaSet count: a rollout spreads the new pods.
    matchLabelKeys:
      - pod-template-hash
    labelSelector:
      matchLabels:
        {{- include "die-hard.selectorLabels" $ | nindent 8 }}
{{- end }}
{{- end }}

{{/* The writable /tmp of every pod (the root filesystem is read-only). */}}
{{- define "die-hard.volumes" -}}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: {{ .Values.tmpSizeLimit }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{- define "die-hard.containerImage" -}}
image: {{ include "die-hard.image" . }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
{{- end }}

{{/* Container fields shared by every die-hard container: the shared env, security, /tmp. */}}
{{- define "die-hard.containerCommon" -}}
envFrom:
  - configMapRef:
      name: {{ include "die-hard.fullname" . }}
  - secretRef:
      name: {{ include "die-hard.secretName" . }}
  {{- with .Values.extraEnvFrom }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- with .Values.extraVolumeMounts }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/*
An init container that waits until every migration of this image is applied, PostgreSQL's and
the ClickHouse schema's (each `--check` changes nothing): (dict "context" $ "component" "worker").
*/}}
{{- define "die-hard.waitForMigrations" -}}
initContainers:
  - name: wait-for-migrations
    {{- include "die-hard.containerImage" .context | nindent 4 }}
    command:
      - /bin/sh
      - -c
      - |
        until /app/docker/entrypoint.sh manage migrate --check --verbosity 0 \
            && /app/docker/entrypoint.sh manage clickhouse_migrate --check --verbosity 0; do
          echo "waiting for the migrate Job to apply this version's migrations"
          sleep 5
        done
    env:
      - name: APP_VERSION
        value: {{ include "die-hard.imageTag" .context | quote }}
      {{- with include "die-hard.extraEnv" . }}
      {{- . | nindent 6 }}
      {{- end }}
    resources:
      {{- toYaml .context.Values.migrations.resources | nindent 6 }}
    {{- include "die-hard.containerCommon" .context | nindent 4 }}
{{- end }}

{{/* An exec probe running `python -m app.config.probe CHECK`: (dict "check" "worker-live" "timing" ...). */}}
{{- define "die-hard.execProbe" -}}
exec:
  command:
    - python
    - -m
    - app.config.probe
    - {{ .check }}
{{- toYaml .timing | nindent 0 }}
{{- end }}

{{/* An HTTP probe of the web role: (dict "path" "/healthz/live" "timing" ...). */}}
{{- define "die-hard.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: http
{{- toYaml .timing | nindent 0 }}
{{- end }}

{{/* METRICS_BIND of a long-running role's container: the metrics port, or off. */}}
{{- define "die-hard.metricsEnv" -}}
- name: METRICS_BIND
  value: {{ ternary (printf "0.0.0.0:%d" (int .Values.metrics.port)) "off" .Values.metrics.enabled | quote }}
{{- end }}

{{/* The container port named `metrics` of a long-running role, when metrics are enabled. */}}
{{- define "die-hard.metricsPort" -}}
{{- if .Values.metrics.enabled }}
- name: metrics
  containerPort: {{ .Values.metrics.port }}
  protocol: TCP
{{- end }}
{{- end }}
