{{/* Names and labels. */}}
{{- define "warden.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "warden.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "warden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "warden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "warden.labels" -}}
{{ include "warden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "warden.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "warden.tlsSecret" -}}
{{- if .Values.tls.certManager.enabled -}}
{{- printf "%s-tls" (include "warden.fullname" .) -}}
{{- else -}}
{{- .Values.tls.secretName -}}
{{- end -}}
{{- end -}}

{{- define "warden.scheme" -}}
{{- if .Values.tls.enabled -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/* Seconds the pod may take to stop: see values.yaml, timeouts. */}}
{{- define "warden.modelPreStopSeconds" -}}
{{- add .Values.timeouts.drainDelaySeconds .Values.timeouts.shutdownSeconds -}}
{{- end -}}

{{- define "warden.gracePeriod" -}}
{{- $t := .Values.timeouts -}}
{{- if eq .Values.mode "sidecar" -}}
{{- add (include "warden.modelPreStopSeconds" . | int) .Values.modelServer.terminationSeconds $t.drainDelaySeconds 10 -}}
{{- else -}}
{{- add $t.drainDelaySeconds $t.shutdownSeconds 10 -}}
{{- end -}}
{{- end -}}

{{/* The upstream of the one route. */}}
{{- define "warden.upstream" -}}
{{- if eq .Values.mode "sidecar" -}}
{{- printf "http://127.0.0.1:%v" .Values.modelServer.port -}}
{{- else -}}
{{- .Values.gateway.upstream -}}
{{- end -}}
{{- end -}}

{{/*
warden.yaml, built as a structure (never as text) so that values cannot
change its shape; values.config is merged over it.
*/}}
{{- define "warden.config" -}}
{{- $v := .Values -}}
{{- $route := dict "name" $v.routes.name "path_prefix" $v.routes.pathPrefix "upstream" (include "warden.upstream" .) "profile" $v.routes.profile -}}
{{- if eq $v.mode "gateway" -}}
{{- $ut := dict -}}
{{- with $v.gateway.upstreamTLS -}}
{{- if .caSecret.name }}{{ $_ := set $ut "ca_file" "/etc/warden/upstream-ca/ca.crt" }}{{ end -}}
{{- if .clientCertSecret.name }}{{ $_ := set $ut "cert_file" "/etc/warden/upstream-client/tls.crt" }}{{ $_ := set $ut "key_file" "/etc/warden/upstream-client/tls.key" }}{{ end -}}
{{- if .serverName }}{{ $_ := set $ut "server_name" .serverName }}{{ end -}}
{{- end -}}
{{- if $ut }}{{ $_ := set $route "upstream_tls" $ut }}{{ end -}}
{{- end -}}
{{- if $v.modelServer.apiKeySecret.name -}}
{{- $_ := set $route "upstream_credential" (dict "value" "Bearer ${MODEL_API_KEY}") -}}
{{- end -}}
{{- $cfg := dict
  "listen" (printf "0.0.0.0:%v" $v.ports.gateway)
  "admin_listen" (printf "0.0.0.0:%v" $v.ports.admin)
  "data_dir" "/var/lib/warden"
  "instance" "${POD_NAME}"
  "timeouts" (dict "drain_delay" (printf "%vs" $v.timeouts.drainDelaySeconds) "shutdown" (printf "%vs" $v.timeouts.shutdownSeconds) "upstream_header" (printf "%vs" $v.timeouts.upstreamHeaderSeconds))
  "routes" (list $route)
  "identity" $v.identity
  "policy" (dict "file" "/etc/warden/config/policy.yaml" "watch" true)
  "masking" (deepCopy $v.masking)
  "admin" (dict "roles" (dict "auditor" $v.admin.auditorGroups "admin" $v.admin.adminGroups))
-}}
{{- if $v.maskKeySecret.name -}}
{{- $_ := set $cfg.masking "key" "${WARDEN_MASK_KEY}" -}}
{{- end -}}
{{- if $v.tls.enabled -}}
{{- $tls := dict "cert_file" "/etc/warden/tls/tls.crt" "key_file" "/etc/warden/tls/tls.key" "min_version" $v.tls.minVersion -}}
{{- $_ := set $cfg "tls" $tls -}}
{{- $admin := deepCopy $tls -}}
{{- if $v.admin.clientCASecret.name -}}
{{- $_ := set $admin "client_ca_file" "/etc/warden/admin-ca/ca.crt" -}}
{{- $_ := set $admin "client_auth" "require_except_probes" -}}
{{- end -}}
{{- $_ := set $cfg "admin_tls" $admin -}}
{{- end -}}
{{- $audit := dict "store" $v.store -}}
{{- if eq $v.store "postgres" }}{{ $_ := set $audit "dsn" "${WARDEN_AUDIT_DSN}" }}{{ end -}}
{{- if $v.auditKeySecret.name }}{{ $_ := set $audit "signing_key_file" "/etc/warden/audit-key/audit.signer" }}{{ end -}}
{{- $_ := set $cfg "audit" $audit -}}
{{- $rec := dict "mode" $v.recordings.mode "default" $v.recordings.default "retention" $v.recordings.retention -}}
{{- if eq $v.store "postgres" -}}
{{- $s3 := dict "endpoint" $v.recordings.s3.endpoint "bucket" $v.recordings.s3.bucket "access_key" "${WARDEN_S3_ACCESS_KEY}" "secret_key_file" "/etc/warden/s3/secret-key" -}}
{{- with $v.recordings.s3.region }}{{ $_ := set $s3 "region" . }}{{ end -}}
{{- with $v.recordings.s3.prefix }}{{ $_ := set $s3 "prefix" . }}{{ end -}}
{{- if $v.recordings.s3.pathStyle }}{{ $_ := set $s3 "path_style" true }}{{ end -}}
{{- $_ := set $rec "store" "s3" -}}
{{- $_ := set $rec "catalog" "postgres" -}}
{{- $_ := set $rec "catalog_dsn" "${WARDEN_AUDIT_DSN}" -}}
{{- $_ := set $rec "key_file" "/etc/warden/recordings-kek/recordings.kek" -}}
{{- $_ := set $rec "s3" $s3 -}}
{{- end -}}
{{- $_ := set $cfg "recordings" $rec -}}
{{- toYaml (mustMergeOverwrite $cfg $v.config) -}}
{{- end -}}

{{/* The Warden container; in sidecar mode it is a native sidecar. */}}
{{- define "warden.container" -}}
{{- $v := .Values -}}
{{- $scheme := include "warden.scheme" . -}}
- name: warden
  image: {{ include "warden.image" . }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  {{- if eq $v.mode "sidecar" }}
  # A native sidecar: started (and its startup probe passed) before the
  # model server, stopped after it.
  restartPolicy: Always
  {{- end }}
  args: ["--config", "/etc/warden/config/warden.yaml", "--log-format", "json"]
  ports:
    - name: gateway
      containerPort: {{ $v.ports.gateway }}
      protocol: TCP
    - name: admin
      containerPort: {{ $v.ports.admin }}
      protocol: TCP
  env:
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    {{- if $v.maskKeySecret.name }}
    - name: WARDEN_MASK_KEY
      valueFrom:
        secretKeyRef:
          name: {{ $v.maskKeySecret.name }}
          key: {{ $v.maskKeySecret.key }}
    {{- end }}
    {{- if eq $v.store "postgres" }}
    - name: WARDEN_AUDIT_DSN
      valueFrom:
        secretKeyRef:
          name: {{ $v.postgres.dsnSecret.name }}
          key: {{ $v.postgres.dsnSecret.key }}
    {{- end }}
    {{- if eq $v.store "postgres" }}
    - name: WARDEN_S3_ACCESS_KEY
      valueFrom:
        secretKeyRef:
          name: {{ $v.recordings.s3.credentialsSecret.name }}
          key: access-key
    {{- end }}
    {{- if $v.modelServer.apiKeySecret.name }}
    - name: MODEL_API_KEY
      valueFrom:
        secretKeyRef:
          name: {{ $v.modelServer.apiKeySecret.name }}
          key: {{ $v.modelServer.apiKeySecret.key }}
    {{- end }}
  startupProbe:
    httpGet:
      path: /healthz
      port: admin
      scheme: {{ $scheme }}
    periodSeconds: 2
    # Start-up verifies the audit log (about 150k entries/s): allow 5 min.
    failureThreshold: 150
  livenessProbe:
    httpGet:
      path: /healthz
      port: admin
      scheme: {{ $scheme }}
    periodSeconds: 10
    timeoutSeconds: 3
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: admin
      scheme: {{ $scheme }}
    periodSeconds: 5
    timeoutSeconds: 3
    failureThreshold: 2
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities:
      drop: ["ALL"]
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    # A directory mount (no subPath), so the kubelet's symlink swap
    # reaches Warden and the policy reloads.
    - name: config
      mountPath: /etc/warden/config
      readOnly: true
    {{- if $v.tls.enabled }}
    - name: tls
      mountPath: /etc/warden/tls
      readOnly: true
    {{- end }}
    {{- if and $v.tls.enabled $v.admin.clientCASecret.name }}
    - name: admin-ca
      mountPath: /etc/warden/admin-ca
      readOnly: true
    {{- end }}
    {{- if $v.auditKeySecret.name }}
    - name: audit-key
      mountPath: /etc/warden/audit-key
      readOnly: true
    {{- end }}
    {{- if eq $v.store "postgres" }}
    - name: recordings-kek
      mountPath: /etc/warden/recordings-kek
      readOnly: true
    - name: s3
      mountPath: /etc/warden/s3
      readOnly: true
    {{- end }}
    {{- if and (eq $v.mode "gateway") $v.gateway.upstreamTLS.caSecret.name }}
    - name: upstream-ca
      mountPath: /etc/warden/upstream-ca
      readOnly: true
    {{- end }}
    {{- if and (eq $v.mode "gateway") $v.gateway.upstreamTLS.clientCertSecret.name }}
    - name: upstream-client
      mountPath: /etc/warden/upstream-client
      readOnly: true
    {{- end }}
    - name: data
      mountPath: /var/lib/warden
    - name: tmp
      mountPath: /tmp
{{- end -}}
