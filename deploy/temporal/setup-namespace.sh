#!/bin/sh
# One-shot job (temporalio/admin-tools): make sure the namespace exists with the configured
# retention and that this project's search attributes are registered. Safe to run again.
#   TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_RETENTION (e.g. 876000h),
#   SEARCH_ATTRIBUTES ("Name=Type ...", the list in models/search_attributes.py)
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${TEMPORAL_RETENTION:?}" "${SEARCH_ATTRIBUTES:?}"
export TEMPORAL_ADDRESS

until temporal operator cluster health >/dev/null 2>&1; do echo "waiting for Temporal at $TEMPORAL_ADDRESS"; sleep 2; done

if temporal operator namespace describe --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
  temporal operator namespace update --namespace "$TEMPORAL_NAMESPACE" --retention "$TEMPORAL_RETENTION"
else
  temporal operator namespace create --namespace "$TEMPORAL_NAMESPACE" --retention "$TEMPORAL_RETENTION"
fi
echo "namespace $TEMPORAL_NAMESPACE keeps closed workflows for $TEMPORAL_RETENTION"

registered=$(temporal operator search-attribute list --namespace "$TEMPORAL_NAMESPACE")
for attribute in $SEARCH_ATTRIBUTES; do
  name=${attribute%%=*}
  type=${attribute#*=}
  if printf '%s\n' "$registered" | grep -qw "$name"; then
    echo "search attribute $name is registered"
  else
    temporal operator search-attribute create --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type "$type"
  fi
done
