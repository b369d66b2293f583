"""Builds each function's service from its settings: the one place adapters are chosen.

One module per function (``tollgate.wiring.gateway`` ...), so that a handler imports only what its
own function needs: a cold start pays for its own adapters, not for every function's (the
provisioner's Bedrock control plane and CloudWatch, the notifier's formatting ...). Handlers call
them once per container (cached); the local emulator runs the very same handlers, so it goes
through here too, with only the endpoints differing.
"""
