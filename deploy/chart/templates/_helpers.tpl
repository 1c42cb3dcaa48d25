{{/* The namespace of every namespaced object: `namespace`, else the release's (-n). */}}
{{- define "arca.namespace" -}}
{{- .Values.namespace | default .Release.Namespace -}}
{{- end -}}

{{/* The image and pull policy of the operator's and the agent's container. */}}
{{- define "arca.image" -}}
image: {{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- with .Values.image.pullPolicy }}
imagePullPolicy: {{ . }}
{{- end }}
{{- end -}}
