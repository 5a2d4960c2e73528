"""The Kopf operator for CoffeePipeline resources (never a package named ``operator``).

Layout: ``handlers`` (thin Kopf wiring) -> ``observe`` (Flink + Kubernetes facts) ->
``decide`` (a pure function: what to do next) -> ``act`` (do it, write status, emit events).
"""
