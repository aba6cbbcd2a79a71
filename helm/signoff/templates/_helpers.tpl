{{/* Chart name, overridable. */}}
{{- define "signoff.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name (63 chars max: DNS label). */}}
{{- define "signoff.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "signoff.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "signoff.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signoff.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "signoff.labels" -}}
helm.sh/chart: {{ include "signoff.chart" . }}
{{ include "signoff.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: signoff
{{- end -}}

{{- define "signoff.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "signoff.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret with URLs and keys: existingSecret, or the one this chart creates. */}}
{{- define "signoff.secretName" -}}
{{- if .Values.existingSecret -}}
{{- .Values.existingSecret -}}
{{- else if .Values.secret.create -}}
{{- include "signoff.fullname" . -}}
{{- else -}}
{{- fail "set existingSecret to the name of a Secret with the Signoff URLs and keys (or secret.create=true for development)" -}}
{{- end -}}
{{- end -}}

{{- define "signoff.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* One env var read from the Signoff Secret. Args: (list $ "ENV_NAME" "keyName"). */}}
{{- define "signoff.secretEnv" -}}
{{- $root := index . 0 -}}
- name: {{ index . 1 }}
  valueFrom:
    secretKeyRef:
      name: {{ include "signoff.secretName" $root }}
      key: {{ index $root.Values.secret.keys (index . 2) }}
{{- end -}}

{{/* Non-secret configuration and user-supplied env, shared by every container. */}}
{{- define "signoff.commonEnv" -}}
{{- range $name, $value := .Values.config }}
{{- if ne (toString $value) "" }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Env of the web pods and CronJobs: the app role, never the owner role. */}}
{{- define "signoff.appEnv" -}}
{{ include "signoff.secretEnv" (list . "SIGNOFF_DATABASE_URL" "databaseUrl") }}
{{ include "signoff.secretEnv" (list . "SIGNOFF_REDIS_URL" "redisUrl") }}
{{ include "signoff.secretEnv" (list . "SIGNOFF_SECRET_KEY" "secretKey") }}
{{ include "signoff.secretEnv" (list . "SIGNOFF_AUDIT_KEY" "auditKey") }}
{{- include "signoff.commonEnv" . }}
{{- end -}}

{{/* Pod-level settings shared by the Deployment, the migration Job and the CronJobs. */}}
{{- define "signoff.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "signoff.tmpVolume" -}}
- name: tmp
  emptyDir:
    {{- with .Values.tmpVolume.sizeLimit }}
    sizeLimit: {{ . }}
    {{- end }}
{{- end -}}

{{- define "signoff.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}
