{{/*
The chart's name, at most 63 characters (a DNS label).
*/}}
{{- define "aerie.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The objects' name: the release name, with the chart's name after it unless the release name
holds it already.
*/}}
{{- define "aerie.fullname" -}}
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

{{- define "aerie.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "aerie.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aerie.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "aerie.labels" -}}
helm.sh/chart: {{ include "aerie.chart" . }}
{{ include "aerie.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: aerie
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "aerie.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "aerie.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret the pods read: the operator's, or the one this chart makes.
*/}}
{{- define "aerie.secretName" -}}
{{- default (include "aerie.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
Where blobs go, and where the keys come from: the values, or the mode's own.
*/}}
{{- define "aerie.blobStore" -}}
{{- default (ternary "s3" "local" (eq .Values.mode "replicated")) .Values.blobs.store }}
{{- end }}

{{- define "aerie.keySource" -}}
{{- default (ternary "secret" "dataDir" (eq .Values.mode "replicated")) .Values.keys.source }}
{{- end }}

{{- define "aerie.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "aerie.publicUrl" -}}
{{- printf "%s://%s" .Values.server.scheme .Values.server.host }}
{{- end }}

{{- define "aerie.pluginOrigin" -}}
{{- printf "%s://{space}.%s" .Values.server.scheme .Values.server.pluginDomain }}
{{- end }}

{{/*
Settings the schema cannot check, refused with a sentence saying why.
*/}}
{{- define "aerie.validate" -}}
{{- if eq .Values.mode "replicated" }}
{{- if ne (include "aerie.blobStore" .) "s3" }}
{{- fail "mode replicated needs blobs.store s3: replicas share one bucket, never a directory" }}
{{- end }}
{{- if ne (include "aerie.keySource" .) "secret" }}
{{- fail "mode replicated needs keys.source secret: every replica must hold the same master and registry keys" }}
{{- end }}
{{- end }}
{{- if and (eq (include "aerie.blobStore" .) "s3") (not .Values.blobs.s3.bucket) }}
{{- fail "blobs.s3.bucket is required with the s3 blob store" }}
{{- end }}
{{- if or (hasPrefix "*." .Values.server.pluginDomain) (eq .Values.server.pluginDomain .Values.server.host) }}
{{- fail "server.pluginDomain is the domain under which each space gets a host (plugins.example.com), neither a wildcard nor the main host" }}
{{- end }}
{{- end }}

{{/*
The pod template, the same for the Deployment (replicated) and the StatefulSet (single).
*/}}
{{- define "aerie.podTemplate" -}}
{{- $keys := include "aerie.keySource" . -}}
{{- $blobs := include "aerie.blobStore" . -}}
{{- $replicated := eq .Values.mode "replicated" -}}
metadata:
  labels:
    {{- include "aerie.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if or (not .Values.secrets.existingSecret) .Values.metrics.podAnnotations .Values.podAnnotations }}
  annotations:
    {{- if not .Values.secrets.existingSecret }}
    checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
    {{- end }}
    {{- if .Values.metrics.podAnnotations }}
    prometheus.io/scrape: "true"
    prometheus.io/port: {{ .Values.server.port | quote }}
    prometheus.io/path: /metrics
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
spec:
  serviceAccountName: {{ include "aerie.serviceAccountName" . }}
  automountServiceAccountToken: false
  # Service links would put AERIE_PORT and the like in the environment, beside the settings.
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: aerie
      image: {{ include "aerie.image" . }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - serve
      ports:
        - name: http
          containerPort: {{ .Values.server.port }}
          protocol: TCP
      env:
        - name: AERIE_LISTEN
          value: {{ printf "0.0.0.0:%d" (int .Values.server.port) | quote }}
        - name: AERIE_DATA_DIR
          value: /data
        - name: AERIE_PUBLIC_URL
          value: {{ include "aerie.publicUrl" . | quote }}
        - name: AERIE_PLUGIN_ORIGIN
          value: {{ include "aerie.pluginOrigin" . | quote }}
        - name: AERIE_TRUSTED_PROXIES
          value: {{ .Values.server.trustedProxies | quote }}
        - name: AERIE_LOG_FORMAT
          value: {{ .Values.server.logFormat | quote }}
        {{- with .Values.server.logLevel }}
        - name: AERIE_LOG
          value: {{ . | quote }}
        {{- end }}
        - name: AERIE_DATABASE_URL
          valueFrom:
            secretKeyRef:
              name: {{ include "aerie.secretName" . }}
              key: database-url
              optional: {{ not $replicated }}
        - name: AERIE_BLOB_STORE
          value: {{ $blobs }}
        {{- if eq $blobs "s3" }}
        - name: AERIE_S3_BUCKET
          value: {{ .Values.blobs.s3.bucket | quote }}
        {{- with .Values.blobs.s3.region }}
        - name: AERIE_S3_REGION
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.blobs.s3.endpoint }}
        - name: AERIE_S3_ENDPOINT
          value: {{ . | quote }}
        {{- end }}
        {{- with .Values.blobs.s3.prefix }}
        - name: AERIE_S3_PREFIX
          value: {{ . | quote }}
        {{- end }}
        - name: AERIE_S3_ALLOW_HTTP
          value: {{ .Values.blobs.s3.allowHttp | quote }}
        - name: AERIE_S3_ACCESS_KEY_ID
          valueFrom:
            secretKeyRef:
              name: {{ include "aerie.secretName" . }}
              key: s3-access-key-id
              optional: true
        - name: AERIE_S3_SECRET_ACCESS_KEY
          valueFrom:
            secretKeyRef:
              name: {{ include "aerie.secretName" . }}
              key: s3-secret-access-key
              optional: true
        {{- end }}
        - name: AERIE_METRICS_TOKEN
          valueFrom:
            secretKeyRef:
              name: {{ include "aerie.secretName" . }}
              key: metrics-token
              optional: true
        - name: AERIE_ADMIN_PASSWORD
          valueFrom:
            secretKeyRef:
              name: {{ include "aerie.secretName" . }}
              key: admin-password
              optional: true
        {{- if eq $keys "secret" }}
        {{- if eq .Values.keys.masterKeyAs "env" }}
        - name: AERIE_MASTER_KEY
          valueFrom:
            secretKeyRef:
              name: {{ include "aerie.secretName" . }}
              key: master.key
        {{- else }}
        - name: AERIE_MASTER_KEY_FILE
          value: {{ printf "%s/master.key" .Values.keys.mountPath | quote }}
        {{- end }}
        - name: AERIE_REGISTRY_KEY_FILE
          value: {{ printf "%s/registry.key" .Values.keys.mountPath | quote }}
        {{- end }}
        {{- range $name, $value := .Values.env }}
        - name: {{ $name }}
          value: {{ $value | quote }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      startupProbe:
        httpGet:
          path: /healthz
          port: http
        {{- toYaml .Values.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        {{- toYaml .Values.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        {{- toYaml .Values.probes.readiness | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: data
          mountPath: /data
        - name: tmp
          mountPath: /tmp
        {{- if eq $keys "secret" }}
        - name: keys
          mountPath: {{ .Values.keys.mountPath }}
          readOnly: true
        {{- end }}
  volumes:
    {{- if $replicated }}
    - name: data
      emptyDir:
        {{- with .Values.scratch.medium }}
        medium: {{ . }}
        {{- end }}
        sizeLimit: {{ .Values.scratch.sizeLimit }}
    {{- else if .Values.persistence.existingClaim }}
    - name: data
      persistentVolumeClaim:
        claimName: {{ .Values.persistence.existingClaim }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: {{ .Values.tmp.sizeLimit }}
    {{- if eq $keys "secret" }}
    - name: keys
      secret:
        secretName: {{ include "aerie.secretName" . }}
        defaultMode: 0440
        items:
          {{- if ne .Values.keys.masterKeyAs "env" }}
          - key: master.key
            path: master.key
          {{- end }}
          - key: registry.key
            path: registry.key
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if or .Values.topologySpreadConstraints (and $replicated .Values.spreadAcrossNodes) }}
  topologySpreadConstraints:
    {{- if and $replicated .Values.spreadAcrossNodes }}
    - maxSkew: 1
      topologyKey: kubernetes.io/hostname
      whenUnsatisfiable: ScheduleAnyway
      labelSelector:
        matchLabels:
          {{- include "aerie.selectorLabels" . | nindent 10 }}
    {{- end }}
    {{- with .Values.topologySpreadConstraints }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end }}
