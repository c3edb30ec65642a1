{{/*
The migrate Job's spec. Its name hashes this rendering (die-hard.migrateJobName), so whatever
shapes the Job's immutable template also renames it.
*/}}
{{- define "die-hard.migrateJobSpec" -}}
{{- $component := dict "context" . "component" "migrate" }}
{{- $migrations := .Values.migrations }}
backoffLimit: {{ $migrations.backoffLimit }}
activeDeadlineSeconds: {{ $migrations.activeDeadlineSeconds }}
{{- if not (kindIs "invalid" $migrations.ttlSecondsAfterFinished) }}
ttlSecondsAfterFinished: {{ $migrations.ttlSecondsAfterFinished }}
{{- end }}
template:
  metadata:
    {{- include "die-hard.podMetadata" $component | nindent 4 }}
  spec:
    {{- include "die-hard.podCommon" $component | nindent 4 }}
    restartPolicy: Never
    containers:
      - name: migrate
        {{- include "die-hard.containerImage" . | nindent 8 }}
        args:
          - migrate
          - --timeout
          - {{ $migrations.waitTimeoutSeconds | quote }}
        env:
          - name: APP_VERSION
            value: {{ include "die-hard.imageTag" . | quote }}
          {{- with include "die-hard.extraEnv" $component }}
          {{- . | nindent 10 }}
          {{- end }}
        resources:
          {{- toYaml $migrations.resources | nindent 10 }}
        {{- include "die-hard.containerCommon" . | nindent 8 }}
    {{- include "die-hard.volumes" . | nindent 4 }}
{{- end }}
