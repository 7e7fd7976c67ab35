# The SIGNING_SECRET the histories are recorded with: the payload codec's key is derived from
# it, and the replay test needs it to open the payloads it sealed (webhook secrets).
RECORDING_SIGNING_SECRET = "recorded-histories-signing-secret"
