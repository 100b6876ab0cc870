{{/*
RBAC rule blocks used by rbac.yaml. Each rule says why the operator needs it; the verbs were
checked against what the code calls (see the comment at the top of rbac.yaml).
*/}}

{{- define "provider-router.rbac.namespacedRules" -}}
# Kopf's watch-event handlers (kopf.on.event) list and watch LLMProviders and RoutingPolicies,
# and the start-up sync lists them. They are read-only: the operator registers no handler that
# makes Kopf patch an object (no finalizer, no progress annotations), and never writes a spec.
- apiGroups: ["router.zoeyos.io"]
  resources: ["llmproviders", "routingpolicies"]
  verbs: ["list", "watch"]
# Conditions, probe results and provider counts are written only as a merge-patch of the status
# subresource (KubeClient.patch_status); never get, update or create.
- apiGroups: ["router.zoeyos.io"]
  resources: ["llmproviders/status", "routingpolicies/status"]
  verbs: ["patch"]
# credentialsSecretRef: Kopf watches Secrets (list + watch, filtered in the operator to the ones
# a provider references) so that a rotated key is picked up at once, and KubeClient.read_secret
# gets one. Read-only; a value is used only for the provider's health probe.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# Kopf (kopf/_cogs/clients/events.py) and KubeClient.post_event post core/v1 Events with POST
# only: no patch/update (no aggregation), and nothing uses events.k8s.io.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}

{{- define "provider-router.rbac.crdRules" -}}
# Kopf's resource observer watches CRDs (list + watch; never get) to notice our kinds being
# installed, upgraded or removed while it runs. Discovery (/api, /apis) needs no rule.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end }}

{{- define "provider-router.rbac.leaseRules" -}}
# Leader election (replicas > 1), kubernetes.leaderelection's LeaseLock: it reads and renews
# (replace = update) the one named Lease, and creates it when it does not exist yet. A create
# cannot be limited by name (the name is not known when it is authorised).
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["create"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  resourceNames: [{{ include "provider-router.leaseName" . | quote }}]
  verbs: ["get", "update"]
# --replicas-service (operator/_peers.py): the route Service's EndpointSlices count the ready
# replicas, so that each enforces its share of every limit. Read-only; a list cannot be limited
# by name.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list"]
{{- end }}

{{- define "provider-router.rbac.reviewRules" -}}
# --auth kubernetes: each new caller's token is checked with a TokenReview and its permission to
# `use` the RoutingPolicy with a SubjectAccessReview. Both are create-only, virtual resources
# (nothing is stored), and the answers are cached, so the API server sees a few per workload.
- apiGroups: ["authentication.k8s.io"]
  resources: ["tokenreviews"]
  verbs: ["create"]
- apiGroups: ["authorization.k8s.io"]
  resources: ["subjectaccessreviews"]
  verbs: ["create"]
{{- end }}
