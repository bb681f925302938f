{{- define "btc.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "btc.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "btc.selectorLabels" -}}
app.kubernetes.io/name: {{ include "btc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "btc.labels" -}}
{{ include "btc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: bytemark-ticket-cache
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "btc.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "btc.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-env" (include "btc.fullname" .)) -}}
{{- end -}}

{{/* What every pod of the chart shares: no API token, non-root, the image, config and secrets. */}}
{{- define "btc.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "btc.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "btc.podCommon" -}}
automountServiceAccountToken: false
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "btc.podSecurityContext" . | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- end -}}

{{/* Non-secret configuration as env items; a container adds its own after them. */}}
{{- define "btc.configEnv" -}}
{{- range $name, $value := .Values.config }}
{{- if ne (toString $value) "" }}
- name: {{ $name }}
  value: {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The bulk Jobs' environment: the config, and where they push their run summary. */}}
{{- define "btc.jobEnv" -}}
{{ include "btc.configEnv" . }}
{{- with .Values.pushgateway.url }}
- name: PUSHGATEWAY_URL
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Container fields shared by the server and the jobs: image, secrets, /tmp. */}}
{{- define "btc.containerCommon" -}}
image: {{ include "btc.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
securityContext:
  {{- include "btc.containerSecurityContext" . | nindent 2 }}
envFrom:
  - secretRef:
      name: {{ include "btc.secretName" . }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
{{- end -}}

{{- define "btc.terminationGracePeriodSeconds" -}}
{{- add .Values.grpc.preStopSleepSeconds .Values.grpc.shutdownGraceSeconds .Values.grpc.terminationMarginSeconds -}}
{{- end -}}
