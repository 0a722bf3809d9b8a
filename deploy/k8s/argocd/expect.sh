#!/usr/bin/env bash
# Wait (at most 5 minutes) until the Argo CD Application reports the given git revision with the given sync status,
# refreshing it first so Argo CD reads the repository now instead of at its next 3-minute poll.
#   deploy/k8s/argocd/expect.sh REVISION Synced|OutOfSync [APP]
# Used by .github/workflows/gitops-kind.yml; needs kubectl with the kind cluster as its context.
set -euo pipefail
want_revision=$1
want_status=$2
app=${3:-iris}
kubectl -n argocd annotate application "${app}" argocd.argoproj.io/refresh=normal --overwrite >/dev/null
for _ in $(seq 1 60); do
  revision=$(kubectl -n argocd get application "${app}" -o jsonpath='{.status.sync.revision}')
  status=$(kubectl -n argocd get application "${app}" -o jsonpath='{.status.sync.status}')
  health=$(kubectl -n argocd get application "${app}" -o jsonpath='{.status.health.status}')
  echo "revision=${revision} sync=${status} health=${health} (want ${want_revision} ${want_status})"
  if [ "${revision}" = "${want_revision}" ] && [ "${status}" = "${want_status}" ]; then
    exit 0
  fi
  sleep 5
done
echo "Application ${app} did not reach ${want_status} at ${want_revision} within 5 minutes" >&2
exit 1
